/* Unit tests of the poll schedule: fixed and exponential sequences, the cap, jitter bounds
 * over many draws, and retry backoff growth, cap and overflow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>

#include "dw/common.h"
#include "dw/schedule.h"

static struct dw_schedule base_schedule(void)
{
  struct dw_schedule s = {
      .kind = DW_SCHEDULE_EXPONENTIAL,
      .first_delay_ms = 1000,
      .interval_ms = 1000,
      .max_interval_ms = 30000,
      .multiplier = 2.0,
      .jitter = 0.0,
      .retry_initial_ms = 500,
      .retry_max_ms = 60000,
  };
  return s;
}

static void test_fixed(void **state)
{
  struct dw_schedule s = base_schedule();
  uint64_t rng = 42;
  (void)state;
  s.kind = DW_SCHEDULE_FIXED;
  s.first_delay_ms = 2000;
  s.interval_ms = 5000;
  assert_int_equal(dw_schedule_next_ms(&s, 0, &rng), 2000);
  for (unsigned n = 1; n < 100; n++)
    assert_int_equal(dw_schedule_next_ms(&s, n, &rng), 5000);
  assert_int_equal(dw_schedule_next_ms(&s, UINT_MAX, &rng), 5000);
  /* No jitter: the random state is not consumed. */
  assert_int_equal(rng, 42);
  assert_int_equal(dw_schedule_next_ms(&s, 3, NULL), 5000);
}

static void test_exponential(void **state)
{
  static const uint64_t want[] = {1000, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  struct dw_schedule s = base_schedule();
  uint64_t rng = 42;
  (void)state;
  for (unsigned n = 0; n < DW_ARRAY_SIZE(want); n++)
    assert_int_equal(dw_schedule_next_ms(&s, n, &rng), want[n]);
  assert_int_equal(dw_schedule_next_ms(&s, 1000, &rng), 30000);
  assert_int_equal(dw_schedule_next_ms(&s, UINT_MAX, &rng), 30000);

  s.multiplier = 1.5;
  s.first_delay_ms = 0;
  assert_int_equal(dw_schedule_next_ms(&s, 0, &rng), 0);
  assert_int_equal(dw_schedule_next_ms(&s, 1, &rng), 1000);
  assert_int_equal(dw_schedule_next_ms(&s, 2, &rng), 1500);
  assert_int_equal(dw_schedule_next_ms(&s, 3, &rng), 2250);
  assert_int_equal(dw_schedule_next_ms(&s, 4, &rng), 3375);

  /* A multiplier of 1 (or a nonsensical one) keeps the interval. */
  s.multiplier = 1.0;
  assert_int_equal(dw_schedule_next_ms(&s, UINT_MAX, &rng), 1000);
  s.multiplier = 0.5;
  assert_int_equal(dw_schedule_next_ms(&s, 10, &rng), 1000);

  /* A cap below the interval wins; no cap grows to the end of uint64_t without overflow. */
  s.multiplier = 2.0;
  s.max_interval_ms = 700;
  assert_int_equal(dw_schedule_next_ms(&s, 1, &rng), 700);
  s.max_interval_ms = 0;
  assert_int_equal(dw_schedule_next_ms(&s, 11, &rng), 1024000);
  assert_int_equal(dw_schedule_next_ms(&s, 100, &rng), UINT64_MAX);
  assert_int_equal(dw_schedule_next_ms(&s, UINT_MAX, &rng), UINT64_MAX);
  assert_int_equal(rng, 42);
}

static void test_jitter_bounds(void **state)
{
  struct dw_schedule s = base_schedule();
  uint64_t rng = 0x9E3779B97F4A7C15ULL;
  uint64_t lo = UINT64_MAX, hi = 0;
  double sum = 0;
  const int draws = 100000;
  (void)state;

  s.kind = DW_SCHEDULE_FIXED;
  s.interval_ms = 10000;
  s.jitter = 0.2;
  for (int i = 0; i < draws; i++) {
    uint64_t v = dw_schedule_next_ms(&s, 5, &rng);
    assert_in_range(v, 8000, 12000);
    lo = DW_MIN(lo, v);
    hi = DW_MAX(hi, v);
    sum += (double)v;
  }
  /* The whole range is used and the mean is the base. */
  assert_true(lo < 8010);
  assert_true(hi > 11990);
  assert_in_range((uint64_t)(sum / draws), 9950, 10050);

  /* The exponential schedule jitters after the cap too. */
  s = base_schedule();
  s.jitter = 0.1;
  for (int i = 0; i < draws; i++)
    assert_in_range(dw_schedule_next_ms(&s, 50, &rng), 27000, 33000);

  /* Full jitter on a 1 ms delay never yields 0; a zero delay stays 0. */
  s.kind = DW_SCHEDULE_FIXED;
  s.interval_ms = 1;
  s.first_delay_ms = 0;
  s.jitter = 1.0;
  for (int i = 0; i < draws; i++) {
    assert_in_range(dw_schedule_next_ms(&s, 1, &rng), 1, 2);
    assert_int_equal(dw_schedule_next_ms(&s, 0, &rng), 0);
  }
  /* A jitter above 1 is taken as 1: still never 0, never above twice the base. */
  s.interval_ms = 100;
  s.jitter = 5.0;
  for (int i = 0; i < draws; i++)
    assert_in_range(dw_schedule_next_ms(&s, 1, &rng), 1, 200);
}

static void test_retry_growth(void **state)
{
  static const uint64_t want[] = {500, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  struct dw_schedule s = base_schedule();
  (void)state;
  /* Without a random state the top of the range is returned: the plain backoff. */
  for (unsigned n = 0; n < DW_ARRAY_SIZE(want); n++)
    assert_int_equal(dw_schedule_retry_ms(&s, n, NULL), want[n]);
  assert_int_equal(dw_schedule_retry_ms(&s, 64, NULL), 60000);
  assert_int_equal(dw_schedule_retry_ms(&s, 65, NULL), 60000);
  assert_int_equal(dw_schedule_retry_ms(&s, 200, NULL), 60000);
  assert_int_equal(dw_schedule_retry_ms(&s, UINT_MAX, NULL), 60000);

  /* Overflow: the shift would push bits out; without a cap the result saturates. */
  s.retry_initial_ms = UINT64_MAX / 3;
  assert_int_equal(dw_schedule_retry_ms(&s, 2, NULL), 60000);
  s.retry_max_ms = 0;
  assert_int_equal(dw_schedule_retry_ms(&s, 1, NULL), UINT64_MAX / 3);
  assert_int_equal(dw_schedule_retry_ms(&s, 2, NULL), (UINT64_MAX / 3) * 2);
  assert_int_equal(dw_schedule_retry_ms(&s, 3, NULL), UINT64_MAX);
  assert_int_equal(dw_schedule_retry_ms(&s, 200, NULL), UINT64_MAX);
  s.retry_initial_ms = 1;
  assert_int_equal(dw_schedule_retry_ms(&s, 64, NULL), 1ULL << 63);
  assert_int_equal(dw_schedule_retry_ms(&s, 65, NULL), UINT64_MAX);
  s.retry_initial_ms = 0;
  assert_int_equal(dw_schedule_retry_ms(&s, 200, NULL), 0);
}

static void test_retry_jitter(void **state)
{
  struct dw_schedule s = base_schedule();
  uint64_t rng = 12345;
  (void)state;
  for (unsigned n = 1; n <= 12; n++) {
    uint64_t exp = dw_schedule_retry_ms(&s, n, NULL);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 20000; i++) {
      uint64_t v = dw_schedule_retry_ms(&s, n, &rng);
      assert_in_range(v, exp / 2, exp);
      lo = DW_MIN(lo, v);
      hi = DW_MAX(hi, v);
    }
    /* Both ends are reachable. */
    assert_true(lo <= exp / 2 + exp / 100);
    assert_true(hi >= exp - exp / 100);
  }
  /* Extremes stay in range and at least 1 ms. */
  for (int i = 0; i < 20000; i++)
    assert_in_range(dw_schedule_retry_ms(&s, 200, &rng), 30000, 60000);
  s.retry_max_ms = 0;
  for (int i = 0; i < 20000; i++)
    assert_true(dw_schedule_retry_ms(&s, 200, &rng) >= UINT64_MAX / 2);
  s.retry_initial_ms = 1;
  s.retry_max_ms = 1;
  for (int i = 0; i < 1000; i++)
    assert_int_equal(dw_schedule_retry_ms(&s, 3, &rng), 1);
  s.retry_max_ms = 3;
  for (int i = 0; i < 1000; i++)
    assert_in_range(dw_schedule_retry_ms(&s, 3, &rng), 1, 3);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed),        cmocka_unit_test(test_exponential),
      cmocka_unit_test(test_jitter_bounds), cmocka_unit_test(test_retry_growth),
      cmocka_unit_test(test_retry_jitter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
