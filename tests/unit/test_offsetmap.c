/* Unit tests of the commit-metadata map: round trips of maps built from a tracker, exact text
 * length against the limit (a map cut short stays valid), foreign and corrupt metadata
 * (prefix, base64, CRC, truncation, every single-byte change), lookups, and the room left
 * after the broker refuses a map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/offsetmap.h"
#include "dw/tracker.h"

static uint8_t bin[8192];

struct build {
  struct dw_offsetmap_writer w;
};

static int add_run(void *arg, int64_t from, int64_t to)
{
  struct build *b = arg;
  return dw_offsetmap_add(&b->w, from, to) < 0;
}

/* Encodes the tracker's finished runs into text within max_text; returns the length. */
static int encode(const struct dw_tracker *t, int staged, size_t max_text, char *text,
                  size_t textlen, struct dw_offsetmap_writer *out)
{
  struct build b;
  int64_t base = dw_tracker_committable_staged(t, staged);
  if (dw_offsetmap_begin(&b.w, bin, sizeof(bin), base, max_text) < 0)
    return -1;
  dw_tracker_runs(t, staged, add_run, &b);
  int n = dw_offsetmap_finish(&b.w, text, textlen);
  if (out)
    *out = b.w;
  return n;
}

static void test_round_trip(void **state)
{
  (void)state;
  struct dw_tracker t;
  char text[4097];
  struct dw_offsetmap m;
  dw_tracker_init(&t);
  for (int64_t o = 100; o < 200; o++)
    assert_int_equal(dw_tracker_add(&t, o), 0);
  assert_int_equal(dw_tracker_add(&t, 250), 0); /* a gap: 200..249 hold no record */
  assert_int_equal(dw_tracker_add(&t, 251), 0);
  /* Finished: 101-103, 110, 150-199 and 250 (the gap joins them), not 100 or 251. */
  for (int64_t o = 101; o <= 103; o++)
    dw_tracker_done(&t, o);
  dw_tracker_done(&t, 110);
  for (int64_t o = 150; o < 200; o++)
    dw_tracker_done(&t, o);
  dw_tracker_done(&t, 250);
  int n = encode(&t, 0, 4096, text, sizeof(text), NULL);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(text));
  assert_memory_equal(text, "dw1.", 4);
  assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)n), 0);
  assert_int_equal(m.base, 100);
  assert_int_equal(m.runs, 3);
  assert_int_equal(m.from[0], 101);
  assert_int_equal(m.to[0], 104);
  assert_int_equal(m.from[1], 110);
  assert_int_equal(m.to[1], 111);
  assert_int_equal(m.from[2], 150);
  assert_int_equal(m.to[2], 251);
  for (int64_t o = 100; o < 260; o++) {
    int want = (o >= 101 && o <= 103) || o == 110 || (o >= 150 && o <= 250);
    assert_int_equal(dw_offsetmap_contains(&m, o), want);
  }
  assert_int_equal(dw_offsetmap_count(&m), 3 + 1 + 101);
  dw_offsetmap_free(&m);
  dw_tracker_cleanup(&t);
}

static void test_empty_map(void **state)
{
  (void)state;
  struct dw_tracker t;
  char text[64];
  struct dw_offsetmap m;
  dw_tracker_init(&t);
  dw_tracker_add(&t, 7);
  int n = encode(&t, 0, 4096, text, sizeof(text), NULL);
  assert_true(n > 0);
  assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)n), 0);
  assert_int_equal(m.base, 7);
  assert_int_equal(m.runs, 0);
  assert_false(dw_offsetmap_contains(&m, 7));
  dw_offsetmap_free(&m);
  dw_tracker_cleanup(&t);
}

/* Every other record finished: the map passes any limit; it is cut exactly at the limit and
 * what it keeps is right. */
static void test_limit_exact(void **state)
{
  (void)state;
  struct dw_tracker t;
  static char text[70000];
  struct dw_offsetmap_writer w;
  struct dw_offsetmap m;
  dw_tracker_init(&t);
  for (int64_t o = 0; o < 20000; o++)
    dw_tracker_add(&t, o * 3);
  for (int64_t o = 1; o < 20000; o += 2)
    dw_tracker_done(&t, o * 3);
  for (size_t limit = 16; limit <= 4096; limit = limit * 2 + 1) {
    int n = encode(&t, 0, limit, text, sizeof(text), &w);
    assert_true(n > 0);
    assert_true((size_t)n <= limit);
    assert_true(w.truncated);
    assert_true((size_t)n + 3 > limit - 4); /* no room left for another run */
    assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)n), 0);
    assert_int_equal(m.runs, w.runs);
    for (size_t i = 0; i < m.runs; i++) {
      assert_int_equal(m.from[i], (int64_t)(2 * i + 1) * 3);
      assert_int_equal(m.to[i], (int64_t)(2 * i + 2) * 3);
    }
    dw_offsetmap_free(&m);
  }
  /* Too small for even an empty map. */
  struct dw_offsetmap_writer w2;
  assert_int_equal(dw_offsetmap_begin(&w2, bin, sizeof(bin), 0, 8), DW_ERANGE);
  dw_tracker_cleanup(&t);
}

static void test_foreign_and_corrupt(void **state)
{
  (void)state;
  struct dw_tracker t;
  char text[512], bad[512];
  struct dw_offsetmap m;
  const char *foreign[] = {"", "dw1", "dw1.", "dw2.AQA", "{\"pc\":1}", "dw1.!!!!",
                           "dw1.AQ", "dw1.A", "dw1.AQAAAAAA", "dw1.AQAAAAAAA="};
  for (size_t i = 0; i < DW_ARRAY_SIZE(foreign); i++)
    assert_int_equal(dw_offsetmap_decode(&m, foreign[i], strlen(foreign[i])), DW_EINVAL);
  assert_int_equal(dw_offsetmap_decode(&m, NULL, 0), DW_EINVAL);

  dw_tracker_init(&t);
  for (int64_t o = 1000; o < 1100; o++)
    dw_tracker_add(&t, o);
  for (int64_t o = 1001; o < 1100; o += 3)
    dw_tracker_done(&t, o);
  int n = encode(&t, 0, 4096, text, sizeof(text), NULL);
  assert_true(n > 8);
  /* Every change of one character and every cut is refused (the CRC, or the base64). */
  for (int i = 4; i < n; i++) {
    for (const char *c = "AZaz09-_+/="; *c; c++) {
      if (text[i] == *c)
        continue;
      memcpy(bad, text, (size_t)n);
      bad[i] = *c;
      assert_int_equal(dw_offsetmap_decode(&m, bad, (size_t)n), DW_EINVAL);
    }
    assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)i), DW_EINVAL);
  }
  assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)n), 0);
  dw_offsetmap_free(&m);
  dw_tracker_cleanup(&t);
}

/* Exactly-once: staged records count as finished for the offset and the map sent with the
 * transaction; an abort makes them pending again, a commit finishes them. */
static void test_staged(void **state)
{
  (void)state;
  struct dw_tracker t;
  char text[256];
  struct dw_offsetmap m;
  dw_tracker_init(&t);
  for (int64_t o = 0; o < 6; o++)
    dw_tracker_add(&t, o);
  assert_int_equal(dw_tracker_stage(&t, 0), 0);
  assert_int_equal(dw_tracker_stage(&t, 3), 0);
  assert_int_equal(dw_tracker_stage(&t, 3), DW_ENOENT);
  assert_int_equal(dw_tracker_committable(&t), 0);
  assert_int_equal(dw_tracker_committable_staged(&t, 1), 1);
  int n = encode(&t, 1, 4096, text, sizeof(text), NULL);
  assert_int_equal(dw_offsetmap_decode(&m, text, (size_t)n), 0);
  assert_int_equal(m.base, 1);
  assert_int_equal(m.runs, 1);
  assert_int_equal(m.from[0], 3);
  dw_offsetmap_free(&m);
  dw_tracker_settle(&t, 0); /* aborted */
  assert_int_equal(dw_tracker_committable_staged(&t, 1), 0);
  assert_int_equal(dw_tracker_in_flight(&t), 6);
  assert_int_equal(dw_tracker_stage(&t, 0), 0);
  assert_int_equal(dw_tracker_stage(&t, 1), 0);
  dw_tracker_done(&t, 2); /* at-least-once style finish mixed in */
  dw_tracker_settle(&t, 1); /* committed */
  assert_int_equal(dw_tracker_committable(&t), 3);
  assert_int_equal(dw_tracker_in_flight(&t), 3);
  dw_tracker_cleanup(&t);
}

/* The room left after the broker refuses a map: half, or below the refused length when that
 * is smaller; nothing under the floor; a refusal of a map longer than the room in use (written
 * before an earlier shrink) changes nothing; repeated refusals reach 0 in a few steps. */
static void test_shrink(void **state)
{
  (void)state;
  assert_int_equal(dw_offsetmap_shrink(4096, 300), 299);  /* below the refused length */
  assert_int_equal(dw_offsetmap_shrink(4096, 4096), 2048); /* half */
  assert_int_equal(dw_offsetmap_shrink(299, 280), 149);
  assert_int_equal(dw_offsetmap_shrink(4096, 0), 4096);    /* no map: not a length problem */
  assert_int_equal(dw_offsetmap_shrink(299, 300), 299);    /* stale: nothing new */
  assert_int_equal(dw_offsetmap_shrink(0, 10), 0);
  assert_int_equal(dw_offsetmap_shrink(128, 128), DW_OFFSETMAP_MIN_BYTES);
  assert_int_equal(dw_offsetmap_shrink(127, 127), 0);      /* 63: under the floor */
  assert_int_equal(dw_offsetmap_shrink(4096, DW_OFFSETMAP_MIN_BYTES), 0);
  assert_int_equal(dw_offsetmap_shrink(4096, DW_OFFSETMAP_MIN_BYTES + 1), DW_OFFSETMAP_MIN_BYTES);
  size_t room = 1048576;
  int steps = 0;
  while (room > 0) {
    size_t next = dw_offsetmap_shrink(room, room);
    assert_true(next < room);
    assert_true(next == 0 || next >= DW_OFFSETMAP_MIN_BYTES);
    room = next;
    steps++;
  }
  assert_true(steps <= 15);
  /* Any room the floor allows still holds an empty map and a run, for any base. */
  struct dw_offsetmap_writer w;
  char text[DW_OFFSETMAP_MIN_BYTES + 1];
  assert_int_equal(
      dw_offsetmap_begin(&w, bin, sizeof(bin), INT64_MAX - 10, DW_OFFSETMAP_MIN_BYTES), 0);
  assert_int_equal(dw_offsetmap_add(&w, INT64_MAX - 8, INT64_MAX - 7), 0);
  assert_true(dw_offsetmap_finish(&w, text, sizeof(text)) > 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_empty_map),
      cmocka_unit_test(test_limit_exact),        cmocka_unit_test(test_foreign_and_corrupt),
      cmocka_unit_test(test_staged),             cmocka_unit_test(test_shrink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
