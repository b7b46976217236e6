/* Unit tests of the committer's decisions: assignment, the committed map read for a new
 * partition (none, foreign, reset, loaded), records taken, skipped, delivered again or not
 * trackable, finished in the current or an older generation, what is committed (changes,
 * force, forgetting, only some partitions, the map that goes with it), the hold at three
 * quarters of the room and the release under half, the room lowered after a refused map in
 * each mode, staging in exactly-once (staged, parked, dropped), settling, revoking (records
 * while a revoke commits) and the steps of a revoke in each mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dw/committer.h"
#include "dw/common.h"
#include "dw/offsetmap.h"

/* A committed map of `base` with the runs [from[i], to[i]) into text. */
static void make_map(char *text, size_t size, int64_t base, const int64_t *from,
                     const int64_t *to, size_t runs)
{
  uint8_t bin[256];
  struct dw_offsetmap_writer mw;
  assert_int_equal(dw_offsetmap_begin(&mw, bin, sizeof(bin), base, size - 1), 0);
  for (size_t i = 0; i < runs; i++)
    assert_int_equal(dw_offsetmap_add(&mw, from[i], to[i]), 0);
  assert_true(dw_offsetmap_finish(&mw, text, size) > 0);
}

static enum dw_committer_verdict arrive(struct dw_committer *c, int32_t part, int64_t offset)
{
  struct dw_committer_arrival a;
  dw_committer_on_record(c, part, offset, &a);
  return a.verdict;
}

static void test_init_and_parts(void **state)
{
  struct dw_committer c;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  assert_int_equal(c.mapmax, 4096);
  assert_null(dw_committer_part(&c, -1));
  struct dw_committer_part *p = dw_committer_part(&c, 3);
  assert_non_null(p);
  assert_int_equal(c.nparts, 4);
  assert_false(p->assigned);
  assert_int_equal(p->committed, -1);
  /* Nothing assigned: a record is not taken, and nothing is committed. */
  assert_int_equal(arrive(&c, 3, 0), DW_COMMITTER_NOT_OURS);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 1)->n, 0);
  dw_committer_cleanup(&c);
}

static void test_take_and_commit(void **state)
{
  struct dw_committer c;
  const int32_t ids[] = {0, 1};
  struct dw_committer_arrival a;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  dw_committer_assign(&c, ids, 2);
  dw_committer_on_record(&c, 0, 10, &a);
  assert_int_equal(a.verdict, DW_COMMITTER_TAKE);
  assert_int_equal(a.generation, 0);
  assert_false(a.caught_up);
  assert_int_equal(arrive(&c, 0, 11), DW_COMMITTER_TAKE);
  assert_int_equal(arrive(&c, 0, 12), DW_COMMITTER_TAKE);
  /* Nothing finished: the committable offset is the first record. */
  const struct dw_committer_batch *b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->n, 1);
  assert_int_equal(b->partitions[0], 0);
  assert_int_equal(b->offsets[0], 10);
  assert_null(b->metadata[0]);
  assert_int_equal(b->nholds, 0);
  /* Unchanged: nothing to commit, unless forced or forgotten. */
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->n, 0);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 1)->n, 1);
  dw_committer_forget(&c);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->n, 1);
  /* Out of order: 12 finished beyond 10 goes in the map; then 10 moves the offset. */
  dw_committer_done(&c, 0, 0, 12);
  b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->n, 1);
  assert_int_equal(b->offsets[0], 10);
  assert_non_null(b->metadata[0]);
  assert_int_equal(b->longest, strlen(b->metadata[0]));
  assert_int_equal(c.map_bytes, b->longest);
  struct dw_offsetmap m;
  assert_int_equal(dw_offsetmap_decode(&m, b->metadata[0], strlen(b->metadata[0])), 0);
  assert_int_equal(m.base, 10);
  assert_int_equal(m.runs, 1);
  assert_int_equal(m.from[0], 12);
  assert_int_equal(m.to[0], 13);
  dw_offsetmap_free(&m);
  dw_committer_done(&c, 0, 0, 10);
  b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->n, 1);
  assert_int_equal(b->offsets[0], 11);
  assert_non_null(b->metadata[0]); /* 12 is still beyond it */
  dw_committer_done(&c, 0, 0, 11);
  b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->offsets[0], 13);
  assert_null(b->metadata[0]);
  assert_int_equal(b->longest, 0);
  /* Only the partitions asked for. */
  assert_int_equal(arrive(&c, 1, 0), DW_COMMITTER_TAKE);
  b = dw_committer_collect(&c, ids + 1, 1, 1);
  assert_int_equal(b->n, 1);
  assert_int_equal(b->partitions[0], 1);
  assert_int_equal(b->offsets[0], 0);
  dw_committer_cleanup(&c);
}

static void test_taken_again_and_untrackable(void **state)
{
  struct dw_committer c;
  const int32_t id = 2;
  struct dw_committer_arrival a;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 5; o++)
    assert_int_equal(arrive(&c, 2, o), DW_COMMITTER_TAKE);
  /* The client went back: the first copy says so, the next ones do not. */
  dw_committer_on_record(&c, 2, 1, &a);
  assert_int_equal(a.verdict, DW_COMMITTER_TAKEN_ALREADY);
  assert_true(a.rewound);
  assert_int_equal(a.next, 5);
  dw_committer_on_record(&c, 2, 2, &a);
  assert_int_equal(a.verdict, DW_COMMITTER_TAKEN_ALREADY);
  assert_false(a.rewound);
  /* The first record beyond the ones taken: caught up, taken. */
  dw_committer_on_record(&c, 2, 5, &a);
  assert_int_equal(a.verdict, DW_COMMITTER_TAKE);
  assert_true(a.caught_up);
  dw_committer_on_record(&c, 2, 6, &a);
  assert_false(a.caught_up);
  /* A copy does not change what is committed. */
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->offsets[0], 0);
  /* An offset the tracker cannot take. */
  dw_committer_on_record(&c, 2, -5, &a);
  assert_int_equal(a.verdict, DW_COMMITTER_UNTRACKABLE);
  assert_int_equal(a.err, DW_EINVAL);
  dw_committer_cleanup(&c);
}

static void test_committed_map(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  const int64_t from[] = {102, 105}, to[] = {104, 106};
  char text[128];
  int64_t base = -1, count = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  dw_committer_assign(&c, &id, 1);
  make_map(text, sizeof(text), 100, from, to, 2);
  /* Nothing committed, or for a partition not assigned: nothing. */
  assert_int_equal(dw_committer_on_committed(&c, 0, -1, NULL, 0, &base, &count),
                   DW_COMMITTER_MAP_NONE);
  assert_int_equal(dw_committer_on_committed(&c, 1, 100, text, strlen(text), &base, &count),
                   DW_COMMITTER_MAP_NONE);
  /* Foreign or corrupt metadata, and a map of another offset, are ignored. */
  assert_int_equal(dw_committer_on_committed(&c, 0, 100, "hello", 5, &base, &count),
                   DW_COMMITTER_MAP_FOREIGN);
  assert_false(c.parts[0].has_map);
  assert_int_equal(dw_committer_on_committed(&c, 0, 90, text, strlen(text), &base, &count),
                   DW_COMMITTER_MAP_RESET);
  assert_int_equal(base, 100);
  assert_false(c.parts[0].has_map);
  /* A map of no runs says nothing. */
  make_map(text, sizeof(text), 100, NULL, NULL, 0);
  assert_int_equal(dw_committer_on_committed(&c, 0, 100, text, strlen(text), &base, &count),
                   DW_COMMITTER_MAP_NONE);
  /* Loaded: the records it holds are skipped, the others taken; after its last run it is
   * gone. */
  make_map(text, sizeof(text), 100, from, to, 2);
  assert_int_equal(dw_committer_on_committed(&c, 0, 100, text, strlen(text), &base, &count),
                   DW_COMMITTER_MAP_LOADED);
  assert_int_equal(count, 3);
  assert_int_equal(arrive(&c, 0, 100), DW_COMMITTER_TAKE);
  assert_int_equal(arrive(&c, 0, 101), DW_COMMITTER_TAKE);
  assert_int_equal(arrive(&c, 0, 102), DW_COMMITTER_SKIP);
  assert_int_equal(arrive(&c, 0, 103), DW_COMMITTER_SKIP);
  assert_int_equal(arrive(&c, 0, 104), DW_COMMITTER_TAKE);
  assert_true(c.parts[0].has_map);
  assert_int_equal(arrive(&c, 0, 105), DW_COMMITTER_SKIP);
  assert_int_equal(arrive(&c, 0, 106), DW_COMMITTER_TAKE);
  assert_false(c.parts[0].has_map);
  /* Skipped records count as finished. */
  dw_committer_done(&c, 0, 0, 100);
  dw_committer_done(&c, 0, 0, 101);
  dw_committer_done(&c, 0, 0, 104);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->offsets[0], 106);
  /* A new assignment forgets the map. */
  assert_int_equal(dw_committer_on_committed(&c, 0, 100, text, strlen(text), &base, &count),
                   DW_COMMITTER_MAP_LOADED);
  dw_committer_assign(&c, &id, 1);
  assert_false(c.parts[0].has_map);
  assert_int_equal(arrive(&c, 0, 102), DW_COMMITTER_TAKE);
  dw_committer_cleanup(&c);
}

static void test_revoke_generation(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  struct dw_committer_arrival a;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  dw_committer_assign(&c, &id, 1);
  dw_committer_on_record(&c, 0, 7, &a);
  assert_int_equal(a.generation, 0);
  assert_true(dw_committer_current(&c, 0, 0));
  assert_true(dw_committer_ours(&c, 0, 0));
  assert_false(dw_committer_stale(&c, 0, 0));
  assert_false(dw_committer_current(&c, 5, 0)); /* never known */
  assert_false(dw_committer_stale(&c, 5, 1));
  dw_committer_done(&c, 0, 0, 7);
  assert_non_null(dw_committer_collect(&c, NULL, 0, 0));
  /* Being revoked: still current (its offsets are committed now), no longer ours. */
  dw_committer_revoking(&c, &id, 1);
  assert_true(dw_committer_current(&c, 0, 0));
  assert_false(dw_committer_ours(&c, 0, 0));
  dw_committer_revoke(&c, &id, 1);
  assert_false(c.parts[0].assigned);
  assert_false(c.parts[0].revoking);
  assert_null(c.parts[0].meta);
  assert_false(dw_committer_current(&c, 0, 0));
  assert_true(dw_committer_stale(&c, 0, 0));
  assert_int_equal(arrive(&c, 0, 8), DW_COMMITTER_NOT_OURS);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 1)->n, 0);
  /* Assigned again: a new generation; a late completion of the old one changes nothing. */
  dw_committer_assign(&c, &id, 1);
  dw_committer_on_record(&c, 0, 8, &a);
  assert_int_equal(a.generation, 1);
  dw_committer_done(&c, 0, 0, 8);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->offsets[0], 8);
  dw_committer_done(&c, 0, 1, 8);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->offsets[0], 9);
  dw_committer_cleanup(&c);
}

/* Takes 0..n-1 and finishes every odd one, collecting after each, until a hold comes. */
static size_t fill_until_held(struct dw_committer *c, int64_t n)
{
  for (int64_t o = 0; o < n; o++)
    assert_int_equal(arrive(c, 0, o), DW_COMMITTER_TAKE);
  for (int64_t o = 1; o < n; o += 2) {
    dw_committer_done(c, 0, 0, o);
    const struct dw_committer_batch *b = dw_committer_collect(c, NULL, 0, 0);
    if (b->nholds)
      return (size_t)o;
  }
  return 0;
}

static void test_hold_and_release(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 200, 0), 0);
  dw_committer_assign(&c, &id, 1);
  size_t at = fill_until_held(&c, 400);
  assert_true(at > 0);
  const struct dw_committer_batch *b = &c.batch;
  assert_int_equal(b->nholds, 1);
  assert_int_equal(b->holds[0].partition, 0);
  assert_true(b->holds[0].on);
  assert_int_equal(b->holds[0].base, 0);
  assert_true(b->holds[0].len * 4 > 200 * 3);
  assert_true(c.parts[0].map_full);
  assert_int_equal(b->longest, b->holds[0].len);
  /* Held: more finished records cut the map short, but no second hold. */
  for (int64_t o = (int64_t)at + 2; o < (int64_t)at + 40; o += 2) {
    dw_committer_done(&c, 0, 0, o);
    b = dw_committer_collect(&c, NULL, 0, 0);
    assert_int_equal(b->nholds, 0);
    assert_true(b->longest <= 200);
  }
  /* Finishing the unfinished ones from the start shrinks it: not released between half and
   * three quarters, released under half. */
  int released = 0;
  for (int64_t o = 0; o < 400 && !released; o += 2) {
    dw_committer_done(&c, 0, 0, o);
    b = dw_committer_collect(&c, NULL, 0, 0);
    if (b->nholds) {
      assert_false(b->holds[0].on);
      assert_true(b->holds[0].len * 2 < 200);
      released = 1;
    } else {
      assert_true(c.parts[0].map_len * 2 >= 200 || c.parts[0].map_len * 4 > 200 * 3 ||
                  b->n == 0);
    }
  }
  assert_true(released);
  assert_false(c.parts[0].map_full);
  dw_committer_cleanup(&c);
}

static void test_no_room(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 0, 0), 0);
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 100; o++)
    assert_int_equal(arrive(&c, 0, o), DW_COMMITTER_TAKE);
  for (int64_t o = 1; o < 100; o += 2)
    dw_committer_done(&c, 0, 0, o);
  const struct dw_committer_batch *b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->n, 1);
  assert_null(b->metadata[0]);
  assert_int_equal(b->nholds, 0);
  dw_committer_cleanup(&c);
}

static void test_refused_at_least_once(void **state)
{
  struct dw_committer c;
  struct dw_committer_room r;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  /* Refused at 300 bytes: less than that from now on, said as the first lowering. */
  dw_committer_refused(&c, 300, &r);
  assert_int_equal(r.lowered, 1);
  assert_int_equal(r.room, dw_offsetmap_shrink(4096, 300));
  assert_int_equal(c.mapmax, r.room);
  assert_true(c.mapmax < 300);
  /* A map written before the shrink says nothing new. */
  dw_committer_refused(&c, 1000, &r);
  assert_int_equal(r.lowered, 0);
  assert_int_equal(r.room, c.mapmax);
  /* Again: a further lowering, down to no map at all. */
  size_t before = c.mapmax;
  dw_committer_refused(&c, before, &r);
  assert_int_equal(r.lowered, 2);
  assert_true(c.mapmax < before);
  while (c.mapmax > 0)
    dw_committer_refused(&c, c.mapmax, &r);
  assert_int_equal(r.room, 0);
  /* Without room, commits go without maps, and nothing is held. */
  dw_committer_assign(&c, &id, 1);
  assert_int_equal(arrive(&c, 0, 0), DW_COMMITTER_TAKE);
  assert_int_equal(arrive(&c, 0, 1), DW_COMMITTER_TAKE);
  dw_committer_done(&c, 0, 0, 1);
  const struct dw_committer_batch *b = dw_committer_collect(&c, NULL, 0, 0);
  assert_null(b->metadata[0]);
  assert_int_equal(b->nholds, 0);
  dw_committer_cleanup(&c);
}

static void test_stage_and_settle(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 1), 0);
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 4; o++)
    assert_int_equal(arrive(&c, 0, o), DW_COMMITTER_TAKE);
  /* A commit's outcome unknown: wait. */
  assert_int_equal(dw_committer_stage(&c, 0, 0, 1, 1), DW_COMMITTER_PARK);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 1, 0), DW_COMMITTER_STAGE);
  assert_int_equal(c.parts[0].staged_since, 1);
  /* Staged records count as finished in what is committed. */
  assert_int_equal(dw_committer_stage(&c, 0, 0, 0, 0), DW_COMMITTER_STAGE);
  const struct dw_committer_batch *b = dw_committer_collect(&c, NULL, 0, 0);
  assert_int_equal(b->offsets[0], 2);
  assert_int_equal(c.parts[0].staged_since, 0);
  /* Aborted: pending again. */
  dw_committer_settle(&c, 0);
  assert_int_equal(dw_tracker_committable_staged(&c.parts[0].tracker, 1), 0);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 0, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 1, 0), DW_COMMITTER_STAGE);
  /* Committed: finished. */
  dw_committer_settle(&c, 1);
  assert_int_equal(dw_tracker_committable(&c.parts[0].tracker), 2);
  /* Another generation, a partition being revoked, or a committer stuck: dropped. */
  assert_int_equal(dw_committer_stage(&c, 0, 1, 2, 0), DW_COMMITTER_DROP);
  assert_int_equal(dw_committer_stage(&c, 3, 0, 2, 0), DW_COMMITTER_DROP);
  dw_committer_revoking(&c, &id, 1);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 2, 0), DW_COMMITTER_DROP);
  dw_committer_assign(&c, &id, 1);
  assert_int_equal(arrive(&c, 0, 2), DW_COMMITTER_TAKE);
  c.stuck = 1;
  assert_int_equal(dw_committer_stage(&c, 0, 0, 2, 0), DW_COMMITTER_DROP);
  dw_committer_cleanup(&c);
}

static void test_stage_room(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 100, 1), 0);
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 20; o++)
    assert_int_equal(arrive(&c, 0, o), DW_COMMITTER_TAKE);
  /* An empty map: room for (100 - 0) / 27 = 3 more staged records beyond the lowest. */
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->n, 1);
  assert_int_equal(c.parts[0].map_len, 0);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 5, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 7, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 9, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 11, 0), DW_COMMITTER_PARK);
  /* The lowest unfinished record never waits: finishing it shrinks the map. */
  assert_int_equal(dw_committer_stage(&c, 0, 0, 0, 0), DW_COMMITTER_STAGE);
  /* A commit measures the map again. */
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->n, 1);
  assert_true(c.parts[0].map_len > 0);
  assert_int_equal(c.parts[0].staged_since, 0);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 11, 0), DW_COMMITTER_STAGE);
  dw_committer_cleanup(&c);
}

static void test_refused_exactly_once(void **state)
{
  struct dw_committer c;
  struct dw_committer_room r;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 1), 0);
  /* No map, or one written with more room than there is: nothing learnt. */
  assert_int_equal(dw_committer_refused_txn(&c, 0, &r), 0);
  assert_int_equal(r.lowered, 0);
  assert_int_equal(dw_committer_refused_txn(&c, 5000, &r), 0);
  assert_int_equal(c.mapmax, 4096);
  /* Nothing committed yet: lowered below the refused map. */
  assert_int_equal(dw_committer_refused_txn(&c, 2000, &r), 0);
  assert_int_equal(r.lowered, 1);
  assert_int_equal(r.settled, 0);
  assert_int_equal(c.mapmax, dw_offsetmap_shrink(4096, 2000));
  /* Finished (committed) records beyond the committed offset: their map is the floor. */
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 200; o++)
    assert_int_equal(arrive(&c, 0, o), DW_COMMITTER_TAKE);
  for (int64_t o = 1; o < 200; o += 2)
    dw_committer_done(&c, 0, 0, o);
  size_t before = c.mapmax;
  assert_int_equal(dw_committer_refused_txn(&c, before, &r), 0);
  assert_true(r.settled > 0);
  assert_int_equal(r.lowered, 2);
  assert_int_equal(c.mapmax, DW_MAX(dw_offsetmap_shrink(before, before), r.settled));
  assert_false(c.stuck);
  /* Refused at or below the committed map: stuck. */
  assert_int_equal(dw_committer_refused_txn(&c, r.settled, &r), DW_ERANGE);
  assert_true(c.stuck);
  dw_committer_cleanup(&c);
}

static void test_refused_exactly_once_no_room(void **state)
{
  struct dw_committer c;
  struct dw_committer_room r;
  (void)state;
  /* Room that would fall below DW_OFFSETMAP_MIN_BYTES: stuck. */
  assert_int_equal(dw_committer_init(&c, 100, 1), 0);
  assert_int_equal(dw_committer_refused_txn(&c, 100, &r), DW_ERANGE);
  assert_int_equal(r.settled, 0);
  assert_true(c.stuck);
  assert_int_equal(c.mapmax, 100);
  dw_committer_cleanup(&c);
}

static void test_txn_step(void **state)
{
  struct dw_committer c;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 1), 0);
  /* Nothing in flight: commit, abort a doomed transaction, resume one whose outcome is
   * unknown (never swapped for an abort, even doomed); the same with force. */
  for (int force = 0; force < 2; force++) {
    assert_int_equal(dw_committer_txn_step(&c, 0, 0, 0, force), DW_COMMITTER_TXN_COMMIT);
    assert_int_equal(dw_committer_txn_step(&c, 0, 0, 1, force), DW_COMMITTER_TXN_ABORT);
    assert_int_equal(dw_committer_txn_step(&c, 0, 1, 0, force), DW_COMMITTER_TXN_RESUME);
    assert_int_equal(dw_committer_txn_step(&c, 0, 1, 1, force), DW_COMMITTER_TXN_RESUME);
  }
  /* A call in flight: a tick starts no second one; a revoke or the shutdown waits for it. */
  for (int unknown = 0; unknown < 2; unknown++)
    for (int doomed = 0; doomed < 2; doomed++) {
      assert_int_equal(dw_committer_txn_step(&c, 1, unknown, doomed, 0), DW_COMMITTER_TXN_NONE);
      assert_int_equal(dw_committer_txn_step(&c, 1, unknown, doomed, 1), DW_COMMITTER_TXN_WAIT);
    }
  /* Stuck (the broker cannot take the maps): nothing more, whatever else holds. */
  c.stuck = 1;
  for (int i = 0; i < 16; i++)
    assert_int_equal(dw_committer_txn_step(&c, i & 1, i >> 1 & 1, i >> 2 & 1, i >> 3 & 1),
                     DW_COMMITTER_TXN_NONE);
  dw_committer_cleanup(&c);
}

static void test_stage_while_committing(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 1), 0);
  dw_committer_assign(&c, &id, 1);
  for (int64_t o = 0; o < 3; o++)
    assert_int_equal(arrive(&c, 0, o), DW_COMMITTER_TAKE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 0, 0), DW_COMMITTER_STAGE);
  dw_committer_collect(&c, NULL, 0, 0);
  /* A commit in flight (txn_busy): an output waits for the next transaction, even the lowest
   * unfinished record's, and nothing is staged into the one being committed. */
  assert_int_equal(dw_committer_stage(&c, 0, 0, 1, 1), DW_COMMITTER_PARK);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 2, 1), DW_COMMITTER_PARK);
  assert_int_equal(c.parts[0].staged_since, 0);
  /* Committed: the staged record is finished; the parked ones join the next transaction. */
  dw_committer_settle(&c, 1);
  assert_int_equal(dw_tracker_committable(&c.parts[0].tracker), 1);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 1, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 2, 0), DW_COMMITTER_STAGE);
  assert_int_equal(dw_committer_collect(&c, NULL, 0, 0)->offsets[0], 3);
  /* A partition revoked while the commit was in flight: its output is dropped. */
  dw_committer_revoking(&c, &id, 1);
  assert_int_equal(dw_committer_stage(&c, 0, 0, 3, 1), DW_COMMITTER_DROP);
  dw_committer_cleanup(&c);
}

/* A record of a partition being revoked is not taken: its commit is on its way, and the next
 * owner starts from it. */
static void test_record_while_revoking(void **state)
{
  struct dw_committer c;
  const int32_t id = 0;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  dw_committer_assign(&c, &id, 1);
  assert_int_equal(arrive(&c, 0, 0), DW_COMMITTER_TAKE);
  dw_committer_done(&c, 0, 0, 0);
  dw_committer_revoking(&c, &id, 1);
  assert_int_equal(arrive(&c, 0, 1), DW_COMMITTER_NOT_OURS);
  /* What was finished is still committed with the revoke. */
  const struct dw_committer_batch *b = dw_committer_collect(&c, &id, 1, 1);
  assert_int_equal(b->n, 1);
  assert_int_equal(b->offsets[0], 1);
  /* Revoked, then assigned again (the same partition back): taken again from the start. */
  dw_committer_revoke(&c, &id, 1);
  dw_committer_assign(&c, &id, 1);
  assert_int_equal(arrive(&c, 0, 1), DW_COMMITTER_TAKE);
  dw_committer_cleanup(&c);
}

static enum dw_committer_revoke_step next(const struct dw_committer *c, int lost, int started,
                                          int in_flight, int rc, size_t room, int expired)
{
  struct dw_committer_revoke r = {.lost = lost, .started = started, .in_flight = in_flight,
                                  .rc = rc, .room = room, .expired = expired};
  return dw_committer_revoke_next(c, &r);
}

/* At-least-once: commit, wait for the outcome, give up; again while a refused map shrinks the
 * room; nothing after a loss; the deadline ends any step. */
static void test_revoke_next_at_least_once(void **state)
{
  struct dw_committer c;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 0), 0);
  assert_int_equal(next(&c, 0, 0, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_COMMIT);
  assert_int_equal(next(&c, 0, 1, 1, 0, 4096, 0), DW_COMMITTER_REVOKE_WAIT);
  assert_int_equal(next(&c, 0, 1, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  /* A failed commit goes on: the next owner processes again what is not committed. */
  assert_int_equal(next(&c, 0, 1, 0, DW_EIO, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  /* Refused as too long: again once the room shrank, not when it could not. */
  struct dw_committer_room room;
  dw_committer_refused(&c, 4000, &room);
  assert_true(c.mapmax < 4096);
  assert_int_equal(next(&c, 0, 1, 0, DW_ERANGE, 4096, 0), DW_COMMITTER_REVOKE_COMMIT);
  assert_int_equal(next(&c, 0, 1, 0, DW_ERANGE, c.mapmax, 0), DW_COMMITTER_REVOKE_DONE);
  /* Lost: the group would refuse the commit. */
  assert_int_equal(next(&c, 1, 0, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  /* The deadline: given up while waiting, whatever else. */
  assert_int_equal(next(&c, 0, 1, 1, 0, 4096, 1), DW_COMMITTER_REVOKE_LATE);
  assert_int_equal(next(&c, 0, 0, 0, 0, 4096, 1), DW_COMMITTER_REVOKE_LATE);
  dw_committer_cleanup(&c);
}

/* Exactly-once: wait for a tick's commit in flight, then commit (or abort, after a loss) once,
 * wait for it, and give up whatever its outcome. */
static void test_revoke_next_exactly_once(void **state)
{
  struct dw_committer c;
  (void)state;
  assert_int_equal(dw_committer_init(&c, 4096, 1), 0);
  assert_int_equal(next(&c, 0, 0, 1, 0, 4096, 0), DW_COMMITTER_REVOKE_WAIT);
  assert_int_equal(next(&c, 0, 0, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_COMMIT);
  assert_int_equal(next(&c, 1, 0, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_COMMIT);
  assert_int_equal(next(&c, 0, 1, 1, 0, 4096, 0), DW_COMMITTER_REVOKE_WAIT);
  assert_int_equal(next(&c, 0, 1, 0, 0, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  assert_int_equal(next(&c, 0, 1, 0, DW_ERANGE, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  assert_int_equal(next(&c, 0, 1, 0, DW_ETIMEDOUT, 4096, 0), DW_COMMITTER_REVOKE_DONE);
  assert_int_equal(next(&c, 0, 1, 1, 0, 4096, 1), DW_COMMITTER_REVOKE_LATE);
  dw_committer_cleanup(&c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_and_parts),
      cmocka_unit_test(test_take_and_commit),
      cmocka_unit_test(test_taken_again_and_untrackable),
      cmocka_unit_test(test_committed_map),
      cmocka_unit_test(test_revoke_generation),
      cmocka_unit_test(test_hold_and_release),
      cmocka_unit_test(test_no_room),
      cmocka_unit_test(test_refused_at_least_once),
      cmocka_unit_test(test_stage_and_settle),
      cmocka_unit_test(test_stage_room),
      cmocka_unit_test(test_refused_exactly_once),
      cmocka_unit_test(test_refused_exactly_once_no_room),
      cmocka_unit_test(test_txn_step),
      cmocka_unit_test(test_stage_while_committing),
      cmocka_unit_test(test_record_while_revoking),
      cmocka_unit_test(test_revoke_next_at_least_once),
      cmocka_unit_test(test_revoke_next_exactly_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
