/* Unit tests of the rate limiter on a simulated clock: burst size, waits until the oldest call
 * leaves the window, minutes of greedy and random traffic checked against a brute-force count
 * of every window, 429 blocks, unlimited limiters and a clock that does not move; a server that
 * counts arrivals late (jitter) in windows of any alignment, the replicas' shares of one
 * budget, and what a 429 teaches (the headroom, the window's end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A 429 in the 1-second window when the worker had made only a few calls (just assigned its
 * partitions, say) cuts the limit to half of the 30% cut at most: its few calls say little of
 * its share, and a limit of a few calls a second would make a storm of 429s last for ever. */
static void test_idle_worker_429(void **state)
{
  (void)state;
  struct dw_limiter l;
  uint64_t now = 100000;
  assert_int_equal(dw_limiter_init(&l, 333, 20000), 0);
  for (int k = 0; k < 3; k++)
    assert_int_equal(dw_limiter_acquire(&l, now + (uint64_t)k), 0);
  dw_limiter_on_rejected(&l, now + 100, 1000);
  assert_int_equal(l.per_second, 116); /* 333 x 0.7 / 2, not 90% of 3 */
  assert_int_equal(l.per_minute, 20000);
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

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A small deterministic generator (xorshift64*), so each run sees the same jitter. */
static uint64_t next_rand(uint64_t *s)
{
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

struct jitter_run {
  uint64_t calls;      /* sent */
  uint64_t rejected;   /* that a fixed-window server counting arrivals would refuse */
  size_t max_1s, max_60s; /* most arrivals in any sliding 1 s and 60 s window */
};

/* `replicas` backlogged limiters (each at per_second and per_minute, with slack_ms of headroom)
 * send whenever allowed for duration_ms; each call arrives 0..jitter_ms later, and the server
 * counts arrivals in fixed windows that start at `phase` ms, 50 a second and server_per_minute a
 * minute; with `worst`, calls sent in even seconds arrive jitter_ms late and the others at once
 * (cold connections, then warm ones: the delays that bunch arrivals most). The server's refusals
 * are counted afterwards, from the windows (a refused call would not count: this overstates
 * them, never understates). */
static void run_jittery(int replicas, uint32_t per_second, uint32_t per_minute,
                        uint64_t server_per_minute, uint64_t slack_ms, uint64_t jitter_ms,
                        int worst, uint64_t phase, uint64_t duration_ms, struct jitter_run *out)
{
  struct dw_limiter l[3];
  size_t cap = 40000, n = 0;
  uint64_t *arrivals = malloc(cap * sizeof(*arrivals)), rng = 0x9e3779b97f4a7c15ULL;
  assert_non_null(arrivals);
  assert_true(replicas >= 1 && replicas <= 3);
  for (int i = 0; i < replicas; i++) {
    assert_int_equal(dw_limiter_init(&l[i], per_second, per_minute), 0);
    l[i].slack_ms = slack_ms;
    dw_limiter_slow_start(&l[i], 0);
  }
  for (uint64_t now = 0; now < duration_ms; now++)
    for (int i = 0; i < replicas; i++)
      while (dw_limiter_acquire(&l[i], now) == 0) {
        dw_limiter_on_accepted(&l[i], now);
        assert_true(n < cap);
        arrivals[n++] = now + (worst ? (now / 1000 % 2 == 0 ? jitter_ms : 0)
                                     : next_rand(&rng) % (jitter_ms + 1));
      }
  qsort(arrivals, n, sizeof(*arrivals), cmp_u64);
  memset(out, 0, sizeof(*out));
  out->calls = n;
  out->max_1s = max_in_window(arrivals, n, 1000);
  out->max_60s = max_in_window(arrivals, n, 60000);
  /* Fixed windows: arrivals are sorted, so each window's calls are a run. */
  const uint64_t sizes[2] = {1000, 60000}, limits[2] = {50, server_per_minute};
  for (int w = 0; w < 2; w++) {
    uint64_t cur = UINT64_MAX, in = 0;
    for (size_t k = 0; k < n; k++) {
      uint64_t idx = (arrivals[k] + phase) / sizes[w];
      if (idx != cur) {
        cur = idx;
        in = 0;
      }
      if (++in > limits[w])
        out->rejected++;
    }
  }
  for (int i = 0; i < replicas; i++)
    dw_limiter_cleanup(&l[i]);
  free(arrivals);
}

/* One replica, backlogged for 10 simulated minutes, against a server that counts each call
 * when it arrives, 0 to 150 ms after it was sent, in fixed windows of any alignment: with the
 * default headroom (250 ms, at least the jitter) no window sees more than the limits, and the
 * budget used is at least 97% of the binding (minute) window's; random delays and the worst
 * ones alike. The old headroom of 100 ms was less than the jitter: the server saw more than
 * the limits. */
static void test_jittery_server(void **state)
{
  (void)state;
  struct jitter_run r;
  const uint64_t minutes = 10, duration = minutes * 60000;
  for (uint64_t phase = 0; phase < 60000; phase += 7919) {
    run_jittery(1, 50, 1000, 1000, 250, 150, 0, phase, duration, &r);
    assert_int_equal(r.rejected, 0);
    run_jittery(1, 50, 1000, 1000, 250, 150, 1, phase, duration, &r);
    assert_int_equal(r.rejected, 0);
  }
  assert_true(r.max_1s <= 50);
  assert_true(r.max_60s <= 1000);
  double used = (double)r.calls / (double)(1000 * minutes);
  print_message("jitter 150 ms, headroom 250 ms: %llu calls in %llu min (%.1f%% of the minute "
                "budget), none refused; most in any 1 s %zu, any 60 s %zu\n",
                (unsigned long long)r.calls, (unsigned long long)minutes, used * 100, r.max_1s,
                r.max_60s);
  assert_true(used >= 0.97);

  /* The per-second window binding (a budget raised per minute): the same, at >= 97% of it
   * less the headroom's cost (1 s of every 1.25 s). */
  run_jittery(1, 50, 1000000, 1000000, 250, 150, 1, 0, 120000, &r);
  assert_int_equal(r.rejected, 0);
  run_jittery(1, 50, 1000000, 1000000, 250, 150, 0, 0, 120000, &r);
  assert_int_equal(r.rejected, 0);
  assert_true(r.max_1s <= 50);
  assert_true((double)r.calls >= 0.97 * 50 * 120 / 1.25);

  /* Less headroom than the jitter (the 100 ms the limiter had before): the server counts more
   * than the limits when the delays bunch arrivals. */
  uint64_t refused = 0;
  for (uint64_t phase = 0; phase < 60000; phase += 7919) {
    run_jittery(1, 50, 1000000, 1000000, 100, 150, 1, phase, 120000, &r);
    refused += r.rejected;
  }
  assert_true(refused > 0);
}

/* Three replicas of one app, each at its share of a 3-partition topic: together they stay
 * inside the budget at any alignment and with jitter, and use >= 97% of it. */
static void test_replica_shares(void **state)
{
  (void)state;
  struct jitter_run r;
  uint32_t ps = dw_limiter_share(50, 1, 3), pm = dw_limiter_share(1000, 1, 3);
  assert_int_equal(ps, 16);
  assert_int_equal(pm, 333);
  for (uint64_t phase = 0; phase < 60000; phase += 12007) {
    run_jittery(3, ps, pm, 1000, 250, 150, 0, phase, 600000, &r);
    assert_int_equal(r.rejected, 0);
    run_jittery(3, ps, pm, 1000, 250, 150, 1, phase, 600000, &r);
    assert_int_equal(r.rejected, 0);
  }
  double used = (double)r.calls / 10000.0;
  print_message("3 replicas at a third each: %llu calls in 10 min (%.1f%% of the budget), none "
                "refused\n", (unsigned long long)r.calls, used * 100);
  assert_true(used >= 0.97);
}

/* Shares: proportional, rounded down (never more than the whole between them), at least 1, the
 * whole when the topic's size is not known, unlimited stays unlimited. */
static void test_share(void **state)
{
  (void)state;
  assert_int_equal(dw_limiter_share(1000, 2, 4), 500);
  assert_int_equal(dw_limiter_share(1000, 1, 3) * 3 <= 1000, 1);
  assert_int_equal(dw_limiter_share(1000, 2, 3) + dw_limiter_share(1000, 1, 3) <= 1000, 1);
  assert_int_equal(dw_limiter_share(50, 1, 100), 1);
  assert_int_equal(dw_limiter_share(50, 0, 4), 1);
  assert_int_equal(dw_limiter_share(50, 4, 4), 50);
  assert_int_equal(dw_limiter_share(50, 6, 4), 50);
  assert_int_equal(dw_limiter_share(50, 1, 0), 50);
  assert_int_equal(dw_limiter_share(0, 1, 4), 0);
}

/* A new ceiling moves the limits in force by the same ratio, never above what the limiter was
 * made for (its log's size), and back. */
static void test_set_ceiling(void **state)
{
  (void)state;
  struct dw_limiter l;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  dw_limiter_set_ceiling(&l, 25, 500);
  assert_int_equal(l.max_per_second, 25);
  assert_int_equal(l.per_second, 25);
  assert_int_equal(l.per_minute, 500);
  for (int i = 0; i < 25; i++)
    assert_int_equal(dw_limiter_acquire(&l, 0), 0);
  assert_true(dw_limiter_acquire(&l, 0) > 0);
  dw_limiter_on_rejected(&l, 100, 1000); /* cut by a 429: 30% off, or 90% of 25 */
  uint32_t cut = l.per_second;
  assert_true(cut < 25);
  dw_limiter_set_ceiling(&l, 50, 1000); /* the whole budget again: the cut stays in ratio */
  assert_int_equal(l.max_per_second, 50);
  assert_int_equal(l.per_second, cut * 2);
  dw_limiter_set_ceiling(&l, 500, 100000); /* never above the configured limits */
  assert_int_equal(l.max_per_second, 50);
  assert_int_equal(l.max_per_minute, 1000);
  dw_limiter_set_ceiling(&l, 0, 0); /* at least 1 */
  assert_int_equal(l.max_per_second, 1);
  assert_int_equal(l.per_second, 1);
  dw_limiter_cleanup(&l);

  assert_int_equal(dw_limiter_init(&l, 0, 0), 0); /* unlimited stays unlimited */
  dw_limiter_set_ceiling(&l, 10, 10);
  assert_int_equal(l.per_second, 0);
  assert_int_equal(l.per_minute, 0);
  assert_int_equal(dw_limiter_acquire(&l, 0), 0);
  dw_limiter_cleanup(&l);
}

/* A 429 tells where the server's full window ends and widens the headroom by half, at most
 * once a second, up to DW_LIMITER_SLACK_MAX_MS; a limiter without headroom keeps none. */
static void test_rejection_teaches(void **state)
{
  (void)state;
  struct dw_limiter l;
  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  l.slack_ms = 250;
  dw_limiter_on_rejected(&l, 10000, 400);
  assert_int_equal(l.window_end_ms, 10400);
  assert_int_equal(l.slack_ms, 375);
  dw_limiter_on_rejected(&l, 10500, 500); /* within a second: the window is learnt, no more */
  assert_int_equal(l.window_end_ms, 11000);
  assert_int_equal(l.slack_ms, 375);
  dw_limiter_on_rejected(&l, 12000, 1000);
  assert_int_equal(l.slack_ms, DW_LIMITER_SLACK_MAX_MS);
  dw_limiter_on_rejected(&l, 14000, 1000);
  assert_int_equal(l.slack_ms, DW_LIMITER_SLACK_MAX_MS);
  dw_limiter_cleanup(&l);

  assert_int_equal(dw_limiter_init(&l, 50, 1000), 0);
  dw_limiter_on_rejected(&l, 10000, 1000);
  assert_int_equal(l.slack_ms, 0);
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
    cmocka_unit_test(test_idle_worker_429),
      cmocka_unit_test(test_storm_recovers),
      cmocka_unit_test(test_jittery_server),
      cmocka_unit_test(test_replica_shares),
      cmocka_unit_test(test_share),
      cmocka_unit_test(test_set_ceiling),
      cmocka_unit_test(test_rejection_teaches),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
