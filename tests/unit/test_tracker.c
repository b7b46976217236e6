/* Unit tests of the offset tracker: in-order and out-of-order completion, gaps between
 * offsets, unknown and repeated completions, growth of the ring (also while it is wrapped),
 * reset after a revocation, and records delivered again after the client went back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/tracker.h"

static void test_empty(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  assert_int_equal(dw_tracker_committable(&t), -1);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  assert_int_equal(dw_tracker_done(&t, 0), DW_ENOENT);
  assert_int_equal(dw_tracker_add(&t, -1), DW_EINVAL);
  assert_int_equal(dw_tracker_add(&t, INT64_MAX), DW_EINVAL);
  dw_tracker_cleanup(&t);
  dw_tracker_cleanup(&t);
}

static void test_in_order(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  for (int64_t o = 0; o < 10; o++)
    assert_int_equal(dw_tracker_add(&t, o), 0);
  assert_int_equal(dw_tracker_committable(&t), 0);
  assert_int_equal(dw_tracker_in_flight(&t), 10);
  for (int64_t o = 0; o < 10; o++) {
    assert_int_equal(dw_tracker_done(&t, o), 0);
    assert_int_equal(dw_tracker_committable(&t), o + 1);
    assert_int_equal(dw_tracker_in_flight(&t), (size_t)(9 - o));
  }
  /* Offsets increase: a lower one was taken already. */
  assert_int_equal(dw_tracker_add(&t, 9), DW_EEXIST);
  assert_int_equal(dw_tracker_add(&t, 5), DW_EEXIST);
  assert_int_equal(dw_tracker_add(&t, 10), 0);
  assert_int_equal(dw_tracker_add(&t, 10), DW_EEXIST);
  assert_int_equal(dw_tracker_committable(&t), 10);
  dw_tracker_cleanup(&t);
}

static void test_out_of_order(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  for (int64_t o = 100; o < 105; o++)
    assert_int_equal(dw_tracker_add(&t, o), 0);
  assert_int_equal(dw_tracker_done(&t, 103), 0);
  assert_int_equal(dw_tracker_committable(&t), 100);
  assert_int_equal(dw_tracker_in_flight(&t), 4);
  assert_int_equal(dw_tracker_done(&t, 101), 0);
  assert_int_equal(dw_tracker_committable(&t), 100);
  assert_int_equal(dw_tracker_done(&t, 100), 0);
  assert_int_equal(dw_tracker_committable(&t), 102);
  assert_int_equal(dw_tracker_in_flight(&t), 2);
  assert_int_equal(dw_tracker_done(&t, 102), 0);
  assert_int_equal(dw_tracker_committable(&t), 104);
  assert_int_equal(dw_tracker_done(&t, 104), 0);
  assert_int_equal(dw_tracker_committable(&t), 105);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  dw_tracker_cleanup(&t);
}

static void test_gaps_and_unknown(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  /* Compacted topics and transaction markers leave gaps. */
  assert_int_equal(dw_tracker_add(&t, 10), 0);
  assert_int_equal(dw_tracker_add(&t, 15), 0);
  assert_int_equal(dw_tracker_add(&t, 16), 0);
  assert_int_equal(dw_tracker_add(&t, 30), 0);
  assert_int_equal(dw_tracker_done(&t, 11), DW_ENOENT);
  assert_int_equal(dw_tracker_done(&t, 9), DW_ENOENT);
  assert_int_equal(dw_tracker_done(&t, 31), DW_ENOENT);
  assert_int_equal(dw_tracker_done(&t, 29), DW_ENOENT);
  assert_int_equal(dw_tracker_done(&t, 15), 0);
  assert_int_equal(dw_tracker_done(&t, 15), DW_ENOENT); /* twice */
  assert_int_equal(dw_tracker_committable(&t), 10);
  assert_int_equal(dw_tracker_done(&t, 10), 0);
  assert_int_equal(dw_tracker_committable(&t), 16);
  assert_int_equal(dw_tracker_done(&t, 10), DW_ENOENT); /* already popped */
  assert_int_equal(dw_tracker_done(&t, 30), 0);
  assert_int_equal(dw_tracker_committable(&t), 16);
  assert_int_equal(dw_tracker_in_flight(&t), 1);
  assert_int_equal(dw_tracker_done(&t, 16), 0);
  assert_int_equal(dw_tracker_committable(&t), 31);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  dw_tracker_cleanup(&t);
}

/* 100k offsets with gaps, completed in a shuffled order, checked against a plain array. */
static void test_growth_random(void **state)
{
  enum { N = 100000 };
  struct dw_tracker t;
  int64_t *offs = malloc(N * sizeof(*offs));
  size_t *order = malloc(N * sizeof(*order));
  uint8_t *fin = calloc(N, 1);
  uint64_t rng = 7;
  size_t low = 0;
  (void)state;
  assert_non_null(offs);
  assert_non_null(order);
  assert_non_null(fin);
  dw_tracker_init(&t);
  for (size_t i = 0; i < N; i++) {
    offs[i] = (int64_t)(i * 2 + (dw_rand_next(&rng) % 2)); /* increasing, with gaps */
    assert_int_equal(dw_tracker_add(&t, offs[i]), 0);
    order[i] = i;
  }
  assert_true(t.cap >= N);
  assert_int_equal(dw_tracker_in_flight(&t), N);
  for (size_t i = N - 1; i > 0; i--) {
    size_t j = (size_t)(dw_rand_next(&rng) % (i + 1));
    size_t tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  for (size_t k = 0; k < N; k++) {
    assert_int_equal(dw_tracker_done(&t, offs[order[k]]), 0);
    fin[order[k]] = 1;
    while (low < N && fin[low])
      low++;
    assert_int_equal(dw_tracker_committable(&t), low < N ? offs[low] : offs[N - 1] + 1);
    assert_int_equal(dw_tracker_in_flight(&t), N - k - 1);
  }
  free(offs);
  free(order);
  free(fin);
  dw_tracker_cleanup(&t);
}

/* The ring wraps (head moves on) before it has to grow; growth must keep the order. */
static void test_growth_wrapped(void **state)
{
  enum { MAX = 8192 };
  struct dw_tracker t;
  uint8_t *fin = calloc(MAX, 1);
  int64_t next = 0, low = 0;
  size_t finished = 0;
  (void)state;
  assert_non_null(fin);
  dw_tracker_init(&t);
  for (int round = 0; round < 20; round++) {
    /* Add a batch bigger than what is finished next: the oldest ones in order, and the
     * newest one out of order. */
    for (int i = 0; i < 50 + round * 13; i++)
      assert_int_equal(dw_tracker_add(&t, next++), 0);
    for (int i = 0; i < 30 + round * 7; i++) {
      int64_t o = low + i;
      int rc = dw_tracker_done(&t, o);
      assert_int_equal(rc, fin[o] ? DW_ENOENT : 0);
      finished += !fin[o];
      fin[o] = 1;
    }
    assert_int_equal(dw_tracker_done(&t, next - 1), 0);
    fin[next - 1] = 1;
    finished++;
    while (low < next && fin[low])
      low++;
    assert_int_equal(dw_tracker_committable(&t), low);
    assert_int_equal(dw_tracker_in_flight(&t), (size_t)next - finished);
  }
  assert_true(next < MAX);
  /* Finish everything left, newest first. */
  for (int64_t o = next - 1; o >= 0; o--)
    assert_int_equal(dw_tracker_done(&t, o), fin[o] ? DW_ENOENT : 0);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  assert_int_equal(dw_tracker_committable(&t), next);
  free(fin);
  dw_tracker_cleanup(&t);
}

static void test_reset(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  for (int64_t o = 500; o < 700; o++)
    assert_int_equal(dw_tracker_add(&t, o), 0);
  assert_int_equal(dw_tracker_done(&t, 650), 0);
  dw_tracker_reset(&t);
  assert_int_equal(dw_tracker_committable(&t), -1);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  assert_int_equal(dw_tracker_done(&t, 500), DW_ENOENT);
  /* After re-assignment the partition starts again from the committed offset. */
  assert_int_equal(dw_tracker_add(&t, 400), 0);
  assert_int_equal(dw_tracker_add(&t, 401), 0);
  assert_int_equal(dw_tracker_committable(&t), 400);
  assert_int_equal(dw_tracker_done(&t, 401), 0);
  assert_int_equal(dw_tracker_done(&t, 400), 0);
  assert_int_equal(dw_tracker_committable(&t), 402);
  dw_tracker_cleanup(&t);
}

/* The client went back to an earlier offset (librdkafka before 2.4 can re-fetch from a stale
 * position after a rebalance) and delivers records taken already, finished or in flight: each
 * is refused as taken and nothing changes, so the first delivery's outcome is the one that
 * counts and the committable offset never moves back; new offsets are taken after them. */
static void test_taken_again(void **state)
{
  struct dw_tracker t;
  (void)state;
  dw_tracker_init(&t);
  for (int64_t o = 0; o < 10; o++)
    assert_int_equal(dw_tracker_add(&t, o), 0);
  for (int64_t o = 0; o < 4; o++)
    assert_int_equal(dw_tracker_done(&t, o), 0);
  assert_int_equal(dw_tracker_done(&t, 7), 0);
  assert_int_equal(dw_tracker_committable(&t), 4);
  assert_int_equal(dw_tracker_in_flight(&t), 5);
  for (int64_t o = 1; o < 10; o++) /* from a finished one through in-flight ones */
    assert_int_equal(dw_tracker_add(&t, o), DW_EEXIST);
  assert_int_equal(dw_tracker_committable(&t), 4);
  assert_int_equal(dw_tracker_in_flight(&t), 5);
  assert_int_equal(dw_tracker_done(&t, 7), DW_ENOENT); /* still finished once */
  assert_int_equal(dw_tracker_add(&t, 10), 0);
  for (int64_t o = 4; o < 11; o++)
    if (o != 7)
      assert_int_equal(dw_tracker_done(&t, o), 0);
  assert_int_equal(dw_tracker_committable(&t), 11);
  assert_int_equal(dw_tracker_in_flight(&t), 0);
  dw_tracker_cleanup(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),          cmocka_unit_test(test_in_order),
      cmocka_unit_test(test_out_of_order),   cmocka_unit_test(test_gaps_and_unknown),
      cmocka_unit_test(test_growth_random),  cmocka_unit_test(test_growth_wrapped),
      cmocka_unit_test(test_reset),          cmocka_unit_test(test_taken_again),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
