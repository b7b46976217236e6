/* Unit tests of the rate limiter on a simulated clock: burst size, waits until the oldest call
 * leaves the window, minutes of greedy and random traffic checked against a brute-force count
 * of every window, 429 blocks, unlimited limiters and a clock that does not move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "dw/common.h"
#include "dw/limiter.h"

/* The largest number of calls in any window of window_ms (a half-open interval (t - w, t]).
 * The busiest window always ends at a call, so only those are checked. times is sorted. */
static size_t max_in_window(const uint64_t *times, size_t n, uint64_t window_ms)
{
  size_t best = 0, lo = 0;
  for (size_t hi = 0; hi < n; hi++) {
    while (times[hi] - times[lo] >= window_ms)
      lo++;
    best = DW_MAX(best, hi - lo + 1);
  }
  return best;
}

/* The same by brute force, for a cross-check of max_in_window on a short prefix. */
static size_t max_in_window_slow(const uint64_t *times, size_t n, uint64_t window_ms)
{
  size_t best = 0;
  for (size_t i = 0; i < n; i++) {
    size_t c = 0;
    for (size_t j = 0; j < n; j++)
      if (times[j] <= times[i] && times[i] - times[j] < window_ms)
        c++;
    best = DW_MAX(best, c);
  }
  return best;
}

static void test_burst_then_wait(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  for (int i = 0; i < 50; i++)
    assert_int_equal(dw_limiter_acquire(&l, 1000), 0);
  assert_int_equal(dw_limiter_acquire(&l, 1000), 1000);
  assert_int_equal(dw_limiter_acquire(&l, 1500), 500);
  assert_int_equal(dw_limiter_acquire(&l, 1999), 1);
  assert_int_equal(dw_limiter_acquire(&l, 2000), 0);
  assert_int_equal(l.calls_total, 51);
  dw_limiter_cleanup(&l);

  /* Spread calls: the wait is until the oldest of the last 50 is 1000 ms old. */
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  for (uint64_t i = 0; i < 50; i++)
    assert_int_equal(dw_limiter_acquire(&l, i * 10), 0);
  assert_int_equal(dw_limiter_acquire(&l, 500), 500);
  assert_int_equal(dw_limiter_acquire(&l, 1000), 0);  /* the call at 0 has left */
  assert_int_equal(dw_limiter_acquire(&l, 1000), 10); /* the call at 10 has not */
  assert_int_equal(dw_limiter_acquire(&l, 1010), 0);
  dw_limiter_cleanup(&l);
}

static void test_same_ms(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 5, 0), 0);
  assert_int_equal(l.cap, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(dw_limiter_acquire(&l, 100), 0);
  /* A clock that does not move never gets a 0 while the window is full. */
  for (int i = 0; i < 10000; i++)
    assert_int_equal(dw_limiter_acquire(&l, 100), 1000);
  assert_int_equal(dw_limiter_acquire(&l, 1099), 1);
  for (int i = 0; i < 5; i++)
    assert_int_equal(dw_limiter_acquire(&l, 1100), 0);
  assert_int_equal(dw_limiter_acquire(&l, 1100), 1000);
  assert_int_equal(l.calls_total, 10);
  dw_limiter_cleanup(&l);

  /* Per minute only. */
  assert_int_equal(dw_limiter_init(&l, 0, 3), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(dw_limiter_acquire(&l, 7), 0);
  assert_int_equal(dw_limiter_acquire(&l, 7), 60000);
  assert_int_equal(dw_limiter_acquire(&l, 60006), 1);
  assert_int_equal(dw_limiter_acquire(&l, 60007), 0);
  dw_limiter_cleanup(&l);
}

/* A greedy caller over 5 simulated minutes: whenever told to wait it comes back exactly then. */
static void test_greedy_five_minutes(void **state)
{
  struct dw_limiter l;
  const uint64_t end = 5 * 60000;
  uint64_t *times = malloc(10000 * sizeof(*times));
  size_t n = 0;
  uint64_t now = 0;
  (void)state;
  assert_non_null(times);
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  while (now < end) {
    uint64_t w = dw_limiter_acquire(&l, now);
    if (w == 0) {
      assert_true(n < 10000);
      times[n++] = now;
    } else {
      now += w;
    }
  }
  assert_true(max_in_window(times, n, 1000) <= 50);
  assert_true(max_in_window(times, n, 60000) <= 1000);
  assert_int_equal(max_in_window(times, 200, 1000), max_in_window_slow(times, 200, 1000));
  /* The full allowance: 1000 a minute. */
  assert_int_equal(n, 5000);
  assert_int_equal(l.calls_total, 5000);
  free(times);
  dw_limiter_cleanup(&l);
}

/* Random arrivals: callers show up on their own schedule and retry after the wait they are
 * told, sometimes late; the limits hold and the throughput stays close to 1000/min. */
static void test_random_traffic(void **state)
{
  struct dw_limiter l;
  const uint64_t end = 5 * 60000;
  uint64_t *times = malloc(10000 * sizeof(*times));
  size_t n = 0;
  uint64_t now = 0, rng = 0xC0FFEE;
  (void)state;
  assert_non_null(times);
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  while (now < end) {
    uint64_t w = dw_limiter_acquire(&l, now);
    if (w == 0) {
      assert_true(n < 10000);
      times[n++] = now;
      now += dw_rand_next(&rng) % 3; /* many calls share a millisecond */
    } else {
      now += w + dw_rand_next(&rng) % 5;
    }
  }
  assert_true(max_in_window(times, n, 1000) <= 50);
  assert_true(max_in_window(times, n, 60000) <= 1000);
  assert_int_equal(max_in_window(times, 500, 60000), max_in_window_slow(times, 500, 60000));
  assert_true(n >= 4950);
  assert_true(n <= 5000);
  free(times);
  dw_limiter_cleanup(&l);
}

static void test_block(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  assert_int_equal(dw_limiter_acquire(&l, 1000), 0);
  dw_limiter_block(&l, 1000, 5000);
  assert_int_equal(l.blocks_total, 1);
  assert_int_equal(dw_limiter_acquire(&l, 1000), 5000);
  assert_int_equal(dw_limiter_acquire(&l, 3000), 3000);
  /* A shorter block does not shorten the one in force; a longer one extends it. */
  dw_limiter_block(&l, 2000, 1000);
  assert_int_equal(dw_limiter_acquire(&l, 2000), 4000);
  dw_limiter_block(&l, 2000, 8000);
  assert_int_equal(l.blocks_total, 3);
  assert_int_equal(dw_limiter_acquire(&l, 9999), 1);
  assert_int_equal(dw_limiter_acquire(&l, 10000), 0);
  assert_int_equal(l.calls_total, 2);
  /* Saturates instead of wrapping (a block is at most DW_LIMITER_RESET_MAX_MS: see
   * test_block_clamped). */
  dw_limiter_block(&l, UINT64_MAX - 10, UINT64_MAX);
  assert_int_equal(l.blocked_until_ms, UINT64_MAX);
  assert_int_equal(dw_limiter_acquire(&l, 20000), UINT64_MAX - 20000);
  dw_limiter_cleanup(&l);
}

/* One 429 cannot stop the worker: a reset longer than Feishu's longest window (a minute) is
 * honoured for DW_LIMITER_RESET_MAX_MS at most, however it came. */
static void test_block_clamped(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  dw_limiter_block(&l, 1000, 86399ull * 1000); /* x-ogw-ratelimit-reset: 86399 */
  assert_int_equal(dw_limiter_acquire(&l, 1000), 65000);
  assert_int_equal(dw_limiter_held_ms(&l, 1000), 65000);
  assert_int_equal(dw_limiter_held_ms(&l, 60000), 6000);
  assert_int_equal(dw_limiter_acquire(&l, 66000), 0);
  assert_int_equal(dw_limiter_held_ms(&l, 66000), 0);
  /* A minute exactly, and what a header says, are honoured as they are. */
  dw_limiter_block(&l, 100000, 60000);
  assert_int_equal(dw_limiter_acquire(&l, 100000), 60000);
  /* The header in seconds: missing or 0 means a second; beyond the bound, the bound. */
  assert_int_equal(dw_limiter_reset_ms(-1), 1000);
  assert_int_equal(dw_limiter_reset_ms(0), 1000);
  assert_int_equal(dw_limiter_reset_ms(1), 1000);
  assert_int_equal(dw_limiter_reset_ms(42), 42000);
  assert_int_equal(dw_limiter_reset_ms(65), DW_LIMITER_RESET_MAX_MS);
  assert_int_equal(dw_limiter_reset_ms(86399), DW_LIMITER_RESET_MAX_MS);
  assert_int_equal(dw_limiter_reset_ms(INT64_MAX), DW_LIMITER_RESET_MAX_MS);
  /* A block of our own (startup) is no block by the API. */
  l.blocked_until_ms = 500000;
  assert_int_equal(dw_limiter_held_ms(&l, 200000), 0);
  dw_limiter_cleanup(&l);
}

/* A gateway that answers nothing but 429 re-blocks the lane with every call: how long it has
 * refused everything is known, so that tasks that never got a call still reach their deadline
 * (the poller's ready_overdue). One accepted call ends it. */
static void test_refused_since(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  assert_int_equal(dw_limiter_refused_ms(&l), 0);
  /* One 429, however long its block, is no evidence of a gateway refusing everything. */
  dw_limiter_block(&l, 10000, dw_limiter_reset_ms(86399));
  assert_int_equal(dw_limiter_refused_ms(&l), 0);
  assert_true(dw_limiter_held_ms(&l, 40000) > 0);
  /* The next call, 65 s later, refused again: refused from one to the other. */
  dw_limiter_block(&l, 75000, dw_limiter_reset_ms(86399));
  assert_int_equal(dw_limiter_refused_ms(&l), 65000);
  dw_limiter_block(&l, 140000, dw_limiter_reset_ms(86399));
  assert_int_equal(dw_limiter_refused_ms(&l), 130000);
  /* An accepted call ends it; later 429s count from the first of them. */
  dw_limiter_on_accepted(&l, 141000);
  assert_int_equal(dw_limiter_refused_ms(&l), 0);
  dw_limiter_block(&l, 200000, 1000);
  dw_limiter_block(&l, 201000, 1000);
  assert_int_equal(dw_limiter_refused_ms(&l), 1000);
  dw_limiter_cleanup(&l);
}

static void test_unlimited(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 0, 0), 0);
  assert_null(l.log);
  for (int i = 0; i < 1000000; i++)
    assert_int_equal(dw_limiter_acquire(&l, 5), 0);
  assert_int_equal(l.calls_total, 1000000);
  dw_limiter_block(&l, 5, 100);
  assert_int_equal(dw_limiter_acquire(&l, 5), 100);
  assert_int_equal(dw_limiter_acquire(&l, 105), 0);
  dw_limiter_cleanup(&l);
  dw_limiter_cleanup(&l); /* cleanup twice is harmless */
}

static void test_clock_back(void **state)
{
  struct dw_limiter l;
  (void)state;
  assert_int_equal(dw_limiter_init(&l, 2, 0), 0);
  assert_int_equal(dw_limiter_acquire(&l, 5000), 0);
  /* Earlier than the newest call: recorded as the newest time, so the log stays ordered. */
  assert_int_equal(dw_limiter_acquire(&l, 4000), 0);
  assert_int_equal(l.log[1], 5000);
  assert_int_equal(dw_limiter_acquire(&l, 4000), 2000);
  assert_int_equal(dw_limiter_acquire(&l, 5999), 1);
  assert_int_equal(dw_limiter_acquire(&l, 6000), 0);
  dw_limiter_cleanup(&l);
}

/* Three replicas, each configured for the whole budget, share a server that allows 50 calls
 * per fixed 1-second window and `per_minute` per fixed minute: with 429 adaptation, together
 * they settle under the budget and see few rejections (simulated clock, 1 ms steps). Returns
 * the share of calls rejected; *used gets the accepted calls over what the budget allowed. */
static double share_budget(uint32_t per_minute, uint64_t duration_ms, double *used)
{
  struct dw_limiter l[3];
  uint64_t calls = 0, rejected = 0, sec = 0, in_sec = 0, min = 0, in_min = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(dw_limiter_init(&l[i], 50, per_minute), 0);
    dw_limiter_slow_start(&l[i], 0);
  }
  for (uint64_t now = 0; now < duration_ms; now++) {
    if (now / 1000 != sec) {
      sec = now / 1000;
      in_sec = 0;
    }
    if (now / 60000 != min) {
      min = now / 60000;
      in_min = 0;
    }
    for (int i = 0; i < 3; i++) {
      if (dw_limiter_acquire(&l[i], now) != 0)
        continue;
      calls++;
      if (in_sec >= 50 || in_min >= per_minute) { /* the server's 429 and its reset */
        uint64_t reset = in_min >= per_minute ? 60000 - now % 60000 : 1000 - now % 1000;
        rejected++;
        dw_limiter_block(&l[i], now, reset);
        dw_limiter_on_rejected(&l[i], now, reset);
      } else {
        in_sec++;
        in_min++;
        dw_limiter_on_accepted(&l[i], now);
      }
    }
  }
  double budget = DW_MIN(50.0 * (double)duration_ms / 1000,
                         (double)per_minute * (double)duration_ms / 60000);
  *used = (double)(calls - rejected) / budget;
  print_message("3 replicas, 50/s and %u/min: %llu calls, %llu rejected (%.2f%%), %.0f%% of the "
                "budget used, rates now %u/%u %u/%u %u/%u\n",
                per_minute, (unsigned long long)calls, (unsigned long long)rejected,
                100.0 * (double)rejected / (double)calls, *used * 100, l[0].per_second,
                l[0].per_minute, l[1].per_second, l[1].per_minute, l[2].per_second,
                l[2].per_minute);
  for (int i = 0; i < 3; i++)
    dw_limiter_cleanup(&l[i]);
  return (double)rejected / (double)calls;
}

static void test_replicas_share_budget(void **state)
{
  (void)state;
  double used;
  /* The per-second window binding. */
  assert_true(share_budget(1000000, 120000, &used) < 0.01);
  assert_true(used >= 0.85);
  /* The per-minute window binding (Feishu's 1000/min), over ten minutes. */
  assert_true(share_budget(1000, 600000, &used) < 0.01);
  assert_true(used >= 0.85);
}

/* Alone, a limiter never rejected keeps its configured rate. */
static void test_no_rejections_no_change(void **state)
{
  (void)state;
  struct dw_limiter l;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  for (uint64_t now = 0; now < 60000; now += 7)
    if (dw_limiter_acquire(&l, now) == 0)
      dw_limiter_on_accepted(&l, now);
  assert_int_equal(l.per_second, 50);
  assert_int_equal(l.per_minute, 1000);
  /* Slow start: a quarter, doubling each second of accepted calls, up to the limits. */
  dw_limiter_slow_start(&l, 0);
  assert_int_equal(l.per_second, 12);
  dw_limiter_on_accepted(&l, 1000);
  assert_int_equal(l.per_second, 24);
  dw_limiter_on_accepted(&l, 2000);
  dw_limiter_on_accepted(&l, 3000);
  assert_int_equal(l.per_second, 50);
  assert_int_equal(l.per_minute, 1000);
  assert_int_equal(l.slow_start, 0);
  dw_limiter_cleanup(&l);
}

/* After a 429 the full window's limit drops by 30%, and to 90% of what we got through in it;
 * then the limits climb back 2% every 5 s without a 429. */
static void test_rejected_then_recovers(void **state)
{
  (void)state;
  struct dw_limiter l;
  uint64_t now;
  assert_int_equal(dw_limiter_init(&l, 50, 100000), 0);
  for (now = 0; now < 2000; now += 7)
    if (dw_limiter_acquire(&l, now) == 0)
      dw_limiter_on_accepted(&l, now);
  dw_limiter_on_rejected(&l, now, 1000); /* the second window: 50 calls in it */
  assert_int_equal(l.per_second, 35);    /* 30% off (90% of 50 would be 45) */
  assert_int_equal(l.per_minute, 100000); /* the minute window was not the full one */
  dw_limiter_on_rejected(&l, now + 500, 1000); /* at most once a second */
  assert_int_equal(l.per_second, 35);
  dw_limiter_on_rejected(&l, now + 1500, 30000); /* the minute window: ~100 calls in it */
  assert_true(l.per_minute >= 80 && l.per_minute <= 95);
  for (now += 1500; now < 2000000; now += 100)
    dw_limiter_on_accepted(&l, now);
  assert_int_equal(l.per_second, 50);
  assert_int_equal(l.per_minute, 100000);
  dw_limiter_cleanup(&l);
}

/* A storm of 429s (the server refusing everything for a while, one second at a time) must not
 * leave the limiter near zero for minutes: once it passes, the limits come back to 90% of the
 * level the first 429 left within seconds. */
static void test_storm_recovers(void **state)
{
  (void)state;
  struct dw_limiter l;
  uint64_t now;
  assert_int_equal(dw_limiter_init(&l, 1000, 1000000), 0);
  for (now = 0; now < 10000; now += 3) /* 333 calls a second: our demand, under the limit */
    if (dw_limiter_acquire(&l, now) == 0)
      dw_limiter_on_accepted(&l, now);
  for (int s = 0; s < 20; s++) { /* 20 s of storm: a 429 each second, a trickle of calls */
    dw_limiter_on_rejected(&l, now, 1000);
    dw_limiter_block(&l, now, 1000);
    now += 1000;
    for (int k = 0; k < 3; k++)
      if (dw_limiter_acquire(&l, now + (uint64_t)k) == 0)
        dw_limiter_on_accepted(&l, now + (uint64_t)k);
  }
  assert_true(l.per_second < 50); /* the storm did cut it */
  /* The level to come back to: the first 429's 30% cut (700), since our ~333 calls a second
   * were demand, not the budget; later 429s of the storm do not lower it. */
  uint32_t share = l.good_per_second;
  assert_int_equal(share, 700);
  for (uint64_t end = now + 10000; now < end; now += 3)
    if (dw_limiter_acquire(&l, now) == 0)
      dw_limiter_on_accepted(&l, now);
  assert_true(l.per_second >= share * 9 / 10 - 1);
  dw_limiter_cleanup(&l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_burst_then_wait), cmocka_unit_test(test_same_ms),
      cmocka_unit_test(test_greedy_five_minutes), cmocka_unit_test(test_random_traffic),
      cmocka_unit_test(test_block),           cmocka_unit_test(test_unlimited),
      cmocka_unit_test(test_block_clamped),
      cmocka_unit_test(test_refused_since),
      cmocka_unit_test(test_clock_back),
      cmocka_unit_test(test_replicas_share_budget),
      cmocka_unit_test(test_no_rejections_no_change),
      cmocka_unit_test(test_rejected_then_recovers),
      cmocka_unit_test(test_storm_recovers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
