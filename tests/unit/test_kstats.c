/* Unit tests of the statistics reader: committed and fetched lag per assigned partition, the
 * end offset by isolation level, partitions the application did not assign and the internal
 * "-1" left out, unknown offsets, the order, the caps, and what is not statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/kstats.h"

/* Shaped as librdkafka 2.0.2 writes it (fields it has and these tests do not need left out). */
static const char STATS[] =
    "{\"name\":\"delivery-worker#consumer-1\",\"type\":\"consumer\",\"ts\":1,"
    "\"topics\":{\"other\":{\"partitions\":{\"0\":{\"partition\":0,\"desired\":true,"
    "\"hi_offset\":99,\"ls_offset\":99,\"committed_offset\":0,\"next_offset\":0}}},"
    "\"in\":{\"topic\":\"in\",\"partitions\":{"
    "\"3\":{\"partition\":3,\"desired\":true,\"fetch_state\":\"active\",\"next_offset\":40,"
    "\"committed_offset\":25,\"lo_offset\":0,\"hi_offset\":50,\"ls_offset\":45},"
    "\"1\":{\"partition\":1,\"desired\":true,\"next_offset\":-1001,\"committed_offset\":-1001,"
    "\"lo_offset\":10,\"hi_offset\":30,\"ls_offset\":30},"
    "\"2\":{\"partition\":2,\"desired\":false,\"next_offset\":0,\"committed_offset\":0,"
    "\"hi_offset\":9,\"ls_offset\":9},"
    "\"4\":{\"partition\":4,\"desired\":true,\"next_offset\":60,\"committed_offset\":60,"
    "\"lo_offset\":0,\"hi_offset\":55,\"ls_offset\":55},"
    "\"-1\":{\"partition\":-1,\"desired\":false,\"hi_offset\":-1001}}}}}";

static void test_lags(void **state)
{
  (void)state;
  struct dw_kstats_lag l[8];
  size_t n = 99;
  assert_int_equal(dw_kstats_lags(STATS, strlen(STATS), "in", 0, l, 8, &n), 0);
  assert_int_equal(n, 3);
  /* 1: nothing committed, not fetching yet: committed lag from the low watermark. */
  assert_int_equal(l[0].partition, 1);
  assert_int_equal(l[0].committed, 20);
  assert_int_equal(l[0].fetched, -1);
  /* 3: read_uncommitted ends at the high watermark. */
  assert_int_equal(l[1].partition, 3);
  assert_int_equal(l[1].committed, 25);
  assert_int_equal(l[1].fetched, 10);
  /* 4: offsets ahead of a stale watermark are no lag, never a negative one. */
  assert_int_equal(l[2].partition, 4);
  assert_int_equal(l[2].committed, 0);
  assert_int_equal(l[2].fetched, 0);

  /* read_committed ends at the last stable offset. */
  assert_int_equal(dw_kstats_lags(STATS, strlen(STATS), "in", 1, l, 8, &n), 0);
  assert_int_equal(l[1].committed, 20);
  assert_int_equal(l[1].fetched, 5);

  /* At most max, a topic not there, statistics without topics. */
  assert_int_equal(dw_kstats_lags(STATS, strlen(STATS), "in", 0, l, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(dw_kstats_lags(STATS, strlen(STATS), "absent", 0, l, 8, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(dw_kstats_lags("{\"ts\":1}", 8, "in", 0, l, 8, &n), 0);
  assert_int_equal(n, 0);
}

static void test_not_statistics(void **state)
{
  (void)state;
  struct dw_kstats_lag l[2];
  size_t n = 0;
  assert_int_equal(dw_kstats_lags("", 0, "in", 0, l, 2, &n), DW_EINVAL);
  assert_int_equal(dw_kstats_lags("[1]", 3, "in", 0, l, 2, &n), DW_EINVAL);
  assert_int_equal(dw_kstats_lags("{\"topics\":[]}", 13, "in", 0, l, 2, &n), DW_EINVAL);
  /* Not NUL-terminated: only len bytes are read. */
  assert_int_equal(dw_kstats_lags(STATS, 20, "in", 0, l, 2, &n), DW_EINVAL);
  assert_int_equal(dw_kstats_lags(STATS, DW_KSTATS_MAX_BYTES + 1, "in", 0, l, 2, &n),
                   DW_ERANGE);
  assert_int_equal(n, 0);
  /* A partition entry of the wrong shape is skipped. */
  const char *odd = "{\"topics\":{\"in\":{\"partitions\":{\"0\":{\"partition\":\"0\","
                    "\"desired\":true},\"1\":7,\"2\":{\"partition\":2,\"desired\":true,"
                    "\"hi_offset\":\"9\",\"committed_offset\":1}}}}}";
  assert_int_equal(dw_kstats_lags(odd, strlen(odd), "in", 0, l, 2, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(l[0].partition, 2);
  assert_int_equal(l[0].committed, -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lags),
      cmocka_unit_test(test_not_statistics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
