/* The pure parts of replay and redrive: times, partition lists, and which dead letters redrive
 * moves with which headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dw/common.h"
#include "dw/ops.h"

static void test_times(void **state)
{
  (void)state;
  int64_t ms;
  assert_int_equal(dw_ops_parse_time("1970-01-01T00:00:00Z", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(dw_ops_parse_time("2026-11-24T03:28:04.123Z", &ms), 0);
  assert_int_equal(ms, 1795490884123LL);
  /* the same instant with an offset, a lower-case t and more fraction digits */
  assert_int_equal(dw_ops_parse_time("2026-11-24t11:28:04.1239+08:00", &ms), 0);
  assert_int_equal(ms, 1795490884123LL);
  assert_int_equal(dw_ops_parse_time("2000-02-29T12:00:00-01:30", &ms), 0);
  assert_int_equal(ms, 951831000000LL);
  assert_int_equal(dw_ops_parse_time("1795490884123", &ms), 0);
  assert_int_equal(ms, 1795490884123LL);
  /* what a dw_rfc3339 header holds reads back to the same instant */
  char buf[32];
  assert_int_equal(dw_ops_parse_time(dw_rfc3339(1795490884123LL, buf, sizeof(buf)), &ms), 0);
  assert_int_equal(ms, 1795490884123LL);
}

static void test_bad_times(void **state)
{
  (void)state;
  int64_t ms;
  const char *bad[] = {"", "2026-11-24", "2026-11-24T03:28:04", "2026-13-01T00:00:00Z",
                       "2026-11-24T03:28:04.Z", "2026-11-24T03:28:04Zx", "-5", "12a",
                       "2026-11-24T03:28:04+0800", "yesterday"};
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++)
    assert_int_equal(dw_ops_parse_time(bad[i], &ms), DW_EINVAL);
}

static void test_partitions(void **state)
{
  (void)state;
  int32_t p[4];
  size_t n;
  assert_int_equal(dw_ops_parse_partitions("0,2,5", p, 4, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(p[0], 0);
  assert_int_equal(p[2], 5);
  assert_int_equal(dw_ops_parse_partitions("7", p, 4, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(dw_ops_parse_partitions("1,1", p, 4, &n), DW_EINVAL);
  assert_int_equal(dw_ops_parse_partitions("1,,2", p, 4, &n), DW_EINVAL);
  assert_int_equal(dw_ops_parse_partitions("1,", p, 4, &n), DW_EINVAL);
  assert_int_equal(dw_ops_parse_partitions("-1", p, 4, &n), DW_EINVAL);
  assert_int_equal(dw_ops_parse_partitions("0,1,2,3,4", p, 4, &n), DW_ERANGE);
}

static void test_lists(void **state)
{
  (void)state;
  assert_true(dw_ops_list_has("task_not_found,invalid_event", "invalid_event", 13));
  assert_true(dw_ops_list_has("task_not_found", "task_not_found", 14));
  assert_false(dw_ops_list_has("task_not_found", "task_not", 8));
  assert_false(dw_ops_list_has("task_not_found,x", "", 0));
  assert_false(dw_ops_list_has(NULL, "x", 1));
}

#define H(n, v) {n, v, sizeof(v) - 1}

static void test_letter_read(void **state)
{
  (void)state;
  struct dw_header h[] = {H("trace", "abc"), H("dlq.reason", "task_not_found"),
                          H("dlq.error_code", "1002008"),
                          H("dlq.failed_at", "2026-11-24T03:28:04.123Z"), H("redrive.count", "2")};
  struct dw_letter l;
  dw_ops_letter_read(h, DW_ARRAY_SIZE(h), 5, &l);
  assert_string_equal(l.reason, "task_not_found");
  assert_string_equal(l.error_code, "1002008");
  assert_int_equal(l.failed_at_ms, 1795490884123LL);
  assert_int_equal(l.redrive_count, 2);
  assert_false(l.incomplete);
  /* no dlq.failed_at: the record's timestamp; an unreadable count is never "fresh" */
  struct dw_header h2[] = {H("dlq.reason", "invalid_event"), H("redrive.count", "x"),
                           H("dlq.value_omitted", "too large")};
  dw_ops_letter_read(h2, 3, 5, &l);
  assert_true(l.incomplete);
  assert_int_equal(l.failed_at_ms, 5);
  assert_int_equal(l.redrive_count, 1);
  assert_string_equal(l.error_code, "");
  dw_ops_letter_read(NULL, 0, -1, &l);
  assert_int_equal(l.failed_at_ms, -1);
  assert_int_equal(l.redrive_count, 0);
}

/* Only the worker's own dlq.* headers count: they come last, from its dlq.reason on. Copies
 * of an event's dlq.* headers (forged, or left from an earlier dead letter) come before them
 * in letters written before incoming dlq.* headers were renamed orig.dlq.*. */
static void test_letter_forged(void **state)
{
  (void)state;
  struct dw_letter l;
  struct dw_header old[] = {H("dlq.error_code", "1002008"), H("dlq.reason", "task_not_found"),
                            H("dlq.value_omitted", "forged"), H("redrive.count", "1"),
                            H("dlq.reason", "invalid_event"), H("dlq.error_msg", "not JSON"),
                            H("dlq.failed_at", "2026-11-24T03:28:04.123Z")};
  dw_ops_letter_read(old, DW_ARRAY_SIZE(old), 5, &l);
  assert_string_equal(l.reason, "invalid_event");
  assert_string_equal(l.error_code, "");
  assert_false(l.incomplete);
  assert_int_equal(l.redrive_count, 1);
  struct dw_redrive_filter f = {NULL, "1002008", -1, -1, 3};
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
  /* a forged failure time is not the letter's either */
  struct dw_header ts[] = {H("dlq.failed_at", "2000-01-01T00:00:00Z"),
                           H("dlq.reason", "invalid_event")};
  dw_ops_letter_read(ts, DW_ARRAY_SIZE(ts), 5, &l);
  assert_int_equal(l.failed_at_ms, 5);
  /* renamed copies are not read at all */
  struct dw_header renamed[] = {H("orig.dlq.error_code", "1002008"),
                                H("orig.dlq.reason", "task_not_found"),
                                H("dlq.reason", "invalid_event"), H("dlq.key_omitted", "1 MB")};
  dw_ops_letter_read(renamed, DW_ARRAY_SIZE(renamed), 5, &l);
  assert_string_equal(l.reason, "invalid_event");
  assert_string_equal(l.error_code, "");
  assert_true(l.incomplete); /* a letter without its key is not the original event either */
}

static void test_verdict(void **state)
{
  (void)state;
  struct dw_letter l = {.reason = "task_not_found", .error_code = "1002008",
                        .failed_at_ms = 1000, .redrive_count = 0};
  struct dw_redrive_filter f = {NULL, NULL, -1, -1, 3};
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_MATCH);
  f.reasons = "invalid_event";
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
  f.reasons = "invalid_event,task_not_found";
  f.error_codes = "1002002";
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
  f.error_codes = "1002008";
  f.since_ms = 1000; /* inclusive */
  f.until_ms = 1001; /* exclusive */
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_MATCH);
  f.until_ms = 1000;
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
  f.until_ms = -1;
  l.failed_at_ms = -1; /* unknown time: outside every window */
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
  f.since_ms = -1;
  l.redrive_count = 2;
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_MATCH);
  l.redrive_count = 3;
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_EXHAUSTED);
  l.incomplete = 1;
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_INCOMPLETE);
  l.incomplete = 0;
  /* a letter the filter does not select is not counted as exhausted */
  f.reasons = "invalid_event";
  assert_int_equal(dw_ops_letter_verdict(&f, &l), DW_REDRIVE_FILTERED);
}

static void test_headers_kept(void **state)
{
  (void)state;
  assert_true(dw_ops_header_kept("trace"));
  assert_true(dw_ops_header_kept("dlqx"));
  assert_false(dw_ops_header_kept("dlq.reason"));
  assert_false(dw_ops_header_kept("dlq.value_omitted"));
  assert_false(dw_ops_header_kept("redrive.count"));
  assert_false(dw_ops_header_kept("orig.dlq.error_code"));
  assert_true(dw_ops_header_kept("orig.trace"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_times),      cmocka_unit_test(test_bad_times),
      cmocka_unit_test(test_partitions), cmocka_unit_test(test_lists),
      cmocka_unit_test(test_letter_read), cmocka_unit_test(test_letter_forged),
      cmocka_unit_test(test_verdict),
      cmocka_unit_test(test_headers_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
