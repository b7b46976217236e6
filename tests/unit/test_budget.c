/* Unit tests of the budget across replicas: the ceiling a replica's limiters climb to (its share
 * of the partitions, or the whole budget while the shared store is in use), and the store's
 * fallback and return: at once to the share when it fails, asked again after 1 s then less
 * often, back to the whole budget when it answers and no replica can still be calling on its
 * share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dw/budget.h"

/* Most checks look at a time long after any call made without the store. */
#define NOW 10000000u

/* Without a store: the share of the partitions, the whole budget before the topic's size is
 * known, or always with limits.share = whole. */
static void test_share_from_assignment(void **state)
{
  (void)state;
  struct dw_budget b;
  dw_budget_init(&b, 1, 0, 0);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000); /* size not known yet */
  assert_int_equal(dw_budget_set_partitions(&b, 2, 6), 1);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 333);
  assert_int_equal(dw_budget_ceiling(&b, 0, 50, 60000, NOW), 16);
  assert_int_equal(dw_budget_ceiling(&b, 0, 0, 60000, NOW), 0);
  assert_int_equal(dw_budget_set_partitions(&b, 2, 6), 0); /* no change */
  assert_int_equal(dw_budget_set_partitions(&b, 6, 6), 1); /* the others left */
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
  assert_int_equal(dw_budget_set_partitions(&b, 0, 6), 1); /* none: one call a window */
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1);
  assert_int_equal(dw_budget_ask_store(&b, 0), 0);

  dw_budget_init(&b, 0, 0, 0);
  dw_budget_set_partitions(&b, 1, 3);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
}

/* With a store: asked at once; the share holds until it answers, the whole budget while it
 * does; a failure brings the share back at once and the store is asked again after 1 s, 2 s,
 * 4 s ... at most 30 s while it keeps failing; an answer resets that. */
static void test_store_fallback_and_return(void **state)
{
  (void)state;
  struct dw_budget b;
  dw_budget_init(&b, 1, 1, 5000);
  dw_budget_set_partitions(&b, 1, 3);
  assert_int_equal(dw_budget_ask_store(&b, 5000), 1);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 333); /* not answered yet */
  assert_int_equal(dw_budget_on_store_answer(&b, 1, 0, 0), 1);  /* the ceilings change */
  assert_int_equal(b.in_use, 1);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
  assert_int_equal(dw_budget_on_store_answer(&b, 1, 0, 0), 0);
  /* The assignment changes no ceiling while the store is in use. */
  dw_budget_set_partitions(&b, 2, 3);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);

  /* The store fails: the share at once, not asked for a second. */
  assert_int_equal(dw_budget_on_store_failure(&b, 10000), 1);
  assert_int_equal(b.in_use, 0);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 666);
  assert_int_equal(dw_budget_ask_store(&b, 10999), 0);
  assert_int_equal(dw_budget_ask_store(&b, 11000), 1);
  /* It fails again: 2 s, then 4 s, ... up to 30 s. */
  assert_int_equal(dw_budget_on_store_failure(&b, 11000), 0);
  assert_int_equal(dw_budget_ask_store(&b, 12999), 0);
  assert_int_equal(dw_budget_ask_store(&b, 13000), 1);
  dw_budget_on_store_failure(&b, 13000);
  assert_int_equal(b.retry_at_ms, 17000);
  uint64_t now = 17000;
  for (int i = 0; i < 10; i++) {
    dw_budget_on_store_failure(&b, now);
    now = b.retry_at_ms;
  }
  dw_budget_on_store_failure(&b, now);
  assert_int_equal(b.retry_at_ms - now, DW_BUDGET_RETRY_MAX_MS);
  assert_int_equal(b.failures_total, 14);
  /* It answers: the whole budget again, and the next failure waits 1 s again. */
  assert_int_equal(dw_budget_on_store_answer(&b, 1, 0, 0), 1);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
  assert_int_equal(dw_budget_on_store_failure(&b, 100000), 1);
  assert_int_equal(b.retry_at_ms, 100000 + DW_BUDGET_RETRY_MIN_MS);
}

/* The store does not know the calls made without it: the share holds until the last of them
 * has left the window (here made at start, before its first answer). With no such call, the
 * whole at once. */
static void test_store_return_waits_a_window(void **state)
{
  (void)state;
  struct dw_budget b;
  dw_budget_init(&b, 1, 1, 0);
  dw_budget_set_partitions(&b, 1, 2);
  dw_budget_on_store_answer(&b, 1, 0, 0);
  assert_int_equal(dw_budget_ceiling(&b, 0, 50, 1250, 1), 50);
  dw_budget_init(&b, 1, 1, 0);
  dw_budget_set_partitions(&b, 1, 2);
  dw_budget_on_local_call(&b, 1500);
  dw_budget_on_local_call(&b, 2000);
  dw_budget_on_store_answer(&b, 2050, 0, 0);
  assert_int_equal(dw_budget_ceiling(&b, 0, 50, 1250, 2100), 25);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60250, 3250), 500);
  assert_int_equal(dw_budget_ceiling(&b, 0, 50, 1250, 3249), 25);
  assert_int_equal(dw_budget_ceiling(&b, 0, 50, 1250, 3250), 50);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60250, 62249), 500);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60250, 62250), 1000);
}

/* The store restarts under two replicas with 2 of 4 partitions each: both fall back to 10 of
 * 20 calls/s, and their next asks find it back 1.5 s apart (what a repeated run of the
 * integration test saw). Until the later one is back and its last call without the store has
 * left the window, the store does not know its calls: the earlier one keeps its share, so the
 * two never take more than the budget. It takes the whole once every replica that fell back
 * has asked again (within DW_BUDGET_RETRY_MAX_MS) and a window has passed. */
static void test_store_return_waits_for_the_others(void **state)
{
  (void)state;
  struct dw_budget a, b;
  dw_budget_init(&a, 1, 1, 0);
  dw_budget_init(&b, 1, 1, 0);
  dw_budget_set_partitions(&a, 2, 4);
  dw_budget_set_partitions(&b, 2, 4);
  dw_budget_on_store_answer(&a, 1000, 0, 0);
  dw_budget_on_store_answer(&b, 1000, 0, 0);
  dw_budget_on_store_failure(&a, 5000);
  dw_budget_on_store_failure(&b, 5000);
  for (uint64_t t = 5000; t < 20000; t += 100) {
    dw_budget_on_local_call(&a, t);
    dw_budget_on_local_call(&b, t);
  }
  dw_budget_on_store_answer(&a, 20000, 0, 0); /* a is back */
  for (uint64_t t = 20000; t < 21500; t += 100)
    dw_budget_on_local_call(&b, t); /* b is not, yet */
  dw_budget_on_store_answer(&b, 21500, 0, 0);
  /* a's own calls without the store have left the window; b's have not. */
  uint64_t now = 21300;
  assert_int_equal(dw_budget_ceiling(&a, 0, 20, 1250, now), 10);
  assert_int_equal(dw_budget_ceiling(&b, 0, 20, 1250, now), 10);
  now = 22800; /* b's have left it too: a takes the whole only once b surely could */
  assert_int_equal(dw_budget_ceiling(&a, 0, 20, 1250, now), 10);
  now = 20000 + DW_BUDGET_RETRY_MAX_MS + 1249;
  assert_int_equal(dw_budget_ceiling(&a, 0, 20, 1250, now), 10);
  assert_int_equal(dw_budget_ceiling(&a, 0, 20, 1250, now + 1), 20);
  assert_int_equal(dw_budget_ceiling(&a, 1, 1000, 60250, now + 1), 500); /* the minute's */
  assert_int_equal(dw_budget_ceiling(&b, 0, 20, 1250, 21500 + DW_BUDGET_RETRY_MAX_MS + 1250), 20);
  /* The first answer at start is no return: the whole at once. */
  dw_budget_init(&a, 1, 1, 0);
  dw_budget_set_partitions(&a, 2, 4);
  dw_budget_on_store_answer(&a, 1000, 0, 0);
  assert_int_equal(dw_budget_ceiling(&a, 0, 20, 1250, 1000), 20);
}

/* Falling back, the others may have used more than their shares in the window before: for one
 * window after the store's last answer the ceiling leaves them what it said they had used. */
static void test_fallback_leaves_the_others_theirs(void **state)
{
  (void)state;
  struct dw_budget b;
  dw_budget_init(&b, 1, 1, 0);
  dw_budget_set_partitions(&b, 2, 4);
  dw_budget_on_store_answer(&b, 5000, 15, 700); /* others: 15 of 20 a second, 700 of 1000 */
  dw_budget_on_store_failure(&b, 5100);
  assert_int_equal(dw_budget_ceiling(&b, 0, 20, 1250, 5100), 5);
  assert_int_equal(dw_budget_ceiling(&b, 1, 1000, 60250, 5100), 300);
  assert_int_equal(dw_budget_ceiling(&b, 0, 20, 1250, 6250), 10); /* the window has passed */
  assert_int_equal(dw_budget_ceiling(&b, 1, 1000, 60250, 65249), 300);
  assert_int_equal(dw_budget_ceiling(&b, 1, 1000, 60250, 65250), 500);
  dw_budget_on_store_answer(&b, 70000, 25, 2000); /* others over the whole: still 1 */
  dw_budget_on_store_failure(&b, 70001);
  assert_int_equal(dw_budget_ceiling(&b, 0, 20, 1250, 70001), 1);
  assert_int_equal(dw_budget_ceiling(&b, 0, 0, 1250, 70001), 0); /* unlimited stays */
}

/* limits.share = whole with a store: the whole budget either way (programs outside the group
 * are met by the 429 adaptation). */
static void test_store_whole(void **state)
{
  (void)state;
  struct dw_budget b;
  dw_budget_init(&b, 0, 1, 0);
  dw_budget_set_partitions(&b, 1, 4);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
  dw_budget_on_store_failure(&b, 0);
  assert_int_equal(dw_budget_ceiling(&b, 0, 1000, 60000, NOW), 1000);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_share_from_assignment),
      cmocka_unit_test(test_store_fallback_and_return),
      cmocka_unit_test(test_store_return_waits_a_window),
      cmocka_unit_test(test_store_return_waits_for_the_others),
      cmocka_unit_test(test_fallback_leaves_the_others_theirs),
      cmocka_unit_test(test_store_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
