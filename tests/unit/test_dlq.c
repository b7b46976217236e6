/* What a dead letter keeps so that Kafka takes it, and the renaming of incoming dlq.*
 * headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dw/common.h"
#include "dw/dlq.h"

#define LIMIT 1000000 /* librdkafka's default message.max.bytes */

/* Typical worker headers: about 400 bytes. */
#define OWN 400

static void test_sizes(void **state)
{
  (void)state;
  /* what librdkafka adds up: 61 + 36 bytes of framing, key, value, headers */
  struct dw_dlq_parts p = {.key = 6, .value = 15, .headers = 0, .own = 0};
  assert_int_equal(dw_dlq_size(&p, 0), 97 + 6 + 15);
  struct dw_header h[] = {{"trace-id", "p", 1}, {"empty", NULL, 0}};
  assert_int_equal(dw_dlq_headers_size(h, 2), (8 + 1 + 20) + (5 + 0 + 20));
  /* a part left out costs its marker instead */
  assert_int_equal(dw_dlq_size(&p, DW_DLQ_VALUE), 97 + 6 + DW_DLQ_MARKER_MAX);
  /* never wraps around */
  struct dw_dlq_parts huge = {.key = SIZE_MAX, .value = SIZE_MAX, .headers = 1, .own = 1};
  assert_true(dw_dlq_size(&huge, 0) == SIZE_MAX);
}

static void test_fits_as_is(void **state)
{
  (void)state;
  unsigned shed = 99;
  struct dw_dlq_parts p = {.key = 32, .value = 3000, .headers = 40, .own = OWN};
  assert_int_equal(dw_dlq_fit(&p, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, 0);
  /* exactly at the limit still fits; one byte over does not */
  size_t exact = dw_dlq_size(&p, 0);
  assert_int_equal(dw_dlq_fit(&p, exact, 0, &shed), 0);
  assert_int_equal(shed, 0);
  assert_int_equal(dw_dlq_fit(&p, exact - 1, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_VALUE);
  /* leaving out a part smaller than its marker cannot help */
  struct dw_dlq_parts small = {.key = 6, .value = 15, .headers = 12, .own = OWN};
  assert_int_equal(dw_dlq_fit(&small, dw_dlq_size(&small, 0) - 1, 0, &shed), DW_ERANGE);
}

/* A 1 MB key (the record that once got no dead letter at all): only the key goes. */
static void test_huge_key(void **state)
{
  (void)state;
  unsigned shed;
  struct dw_dlq_parts p = {.key = 1048576, .value = 20, .headers = 40, .own = OWN};
  assert_int_equal(dw_dlq_fit(&p, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_KEY);
  assert_true(dw_dlq_size(&p, shed) <= LIMIT);
}

static void test_huge_value_or_headers(void **state)
{
  (void)state;
  unsigned shed;
  struct dw_dlq_parts v = {.key = 32, .value = 2000000, .headers = 40, .own = OWN};
  assert_int_equal(dw_dlq_fit(&v, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_VALUE);
  struct dw_dlq_parts h = {.key = 32, .value = 300, .headers = 3000000, .own = OWN};
  assert_int_equal(dw_dlq_fit(&h, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_HEADERS); /* the value given up on the way is put back */
}

/* Several large parts: value first, then headers, then key; what fits again comes back. */
static void test_order(void **state)
{
  (void)state;
  unsigned shed;
  struct dw_dlq_parts all = {.key = 1048576, .value = 1048576, .headers = 1048576, .own = OWN};
  assert_int_equal(dw_dlq_fit(&all, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_ALL);
  /* value and key over the limit together, each alone under it: the value goes */
  struct dw_dlq_parts two = {.key = 600000, .value = 600000, .headers = 40, .own = OWN};
  assert_int_equal(dw_dlq_fit(&two, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_VALUE);
  /* key and headers each over the limit, value small: both go, the value is put back */
  struct dw_dlq_parts kh = {.key = 1100000, .value = 100, .headers = 1100000, .own = OWN};
  assert_int_equal(dw_dlq_fit(&kh, LIMIT, 0, &shed), 0);
  assert_int_equal(shed, DW_DLQ_HEADERS | DW_DLQ_KEY);
}

/* Parts Kafka refused stay out even when the sizes say they would fit. */
static void test_forced(void **state)
{
  (void)state;
  unsigned shed;
  struct dw_dlq_parts p = {.key = 6, .value = 15, .headers = 12, .own = OWN};
  assert_int_equal(dw_dlq_fit(&p, LIMIT, DW_DLQ_VALUE, &shed), 0);
  assert_int_equal(shed, DW_DLQ_VALUE);
  assert_int_equal(dw_dlq_fit(&p, LIMIT, DW_DLQ_VALUE | DW_DLQ_HEADERS, &shed), 0);
  assert_int_equal(shed, DW_DLQ_VALUE | DW_DLQ_HEADERS);
}

/* The worker's own headers alone over the limit: nothing can be written. */
static void test_never_fits(void **state)
{
  (void)state;
  unsigned shed = 0;
  struct dw_dlq_parts p = {.key = 6, .value = 15, .headers = 12, .own = 5000};
  assert_int_equal(dw_dlq_fit(&p, 4000, 0, &shed), DW_ERANGE);
  assert_int_equal(dw_dlq_fit(&p, 1000, DW_DLQ_ALL, &shed), DW_ERANGE);
}

/* After a refusal: value, then original headers, then key; empty parts are skipped; nothing
 * left means it can never be written. */
static void test_shed_more(void **state)
{
  (void)state;
  struct dw_dlq_parts p = {.key = 6, .value = 15, .headers = 12, .own = OWN};
  assert_int_equal(dw_dlq_shed_more(&p, 0), DW_DLQ_VALUE);
  assert_int_equal(dw_dlq_shed_more(&p, DW_DLQ_VALUE), DW_DLQ_VALUE | DW_DLQ_HEADERS);
  assert_int_equal(dw_dlq_shed_more(&p, DW_DLQ_VALUE | DW_DLQ_HEADERS), DW_DLQ_ALL);
  assert_int_equal(dw_dlq_shed_more(&p, DW_DLQ_ALL), DW_DLQ_ALL);
  assert_int_equal(dw_dlq_shed_more(&p, DW_DLQ_KEY), DW_DLQ_KEY | DW_DLQ_VALUE);
  struct dw_dlq_parts nohdr = {.key = 0, .value = 15, .headers = 0, .own = OWN};
  assert_int_equal(dw_dlq_shed_more(&nohdr, DW_DLQ_VALUE), DW_DLQ_VALUE);
}

static void test_rename(void **state)
{
  (void)state;
  struct dw_header in[] = {{"trace-id", "t", 1},
                           {"dlq.error_code", "1002008", 7},
                           {"dlq", "x", 1},
                           {"DLQ.reason", "r", 1},
                           {"orig.dlq.reason", "o", 1},
                           {"dlq.reason", NULL, 0}};
  struct dw_header out[DW_ARRAY_SIZE(in)];
  char names[64];
  size_t need = dw_dlq_rename_bytes(in, DW_ARRAY_SIZE(in));
  assert_int_equal(need, sizeof("orig.dlq.error_code") + sizeof("orig.dlq.reason"));
  assert_true(need <= sizeof(names));
  dw_dlq_rename(in, DW_ARRAY_SIZE(in), out, names);
  assert_string_equal(out[0].name, "trace-id");
  assert_string_equal(out[1].name, "orig.dlq.error_code");
  assert_ptr_equal(out[1].value, in[1].value);
  assert_int_equal(out[1].len, 7);
  assert_string_equal(out[2].name, "dlq");
  assert_string_equal(out[3].name, "DLQ.reason"); /* header names are case-sensitive */
  assert_string_equal(out[4].name, "orig.dlq.reason");
  assert_ptr_equal(out[4].name, in[4].name);
  assert_string_equal(out[5].name, "orig.dlq.reason");
  assert_null(out[5].value);
  /* nothing to rename: no storage */
  assert_int_equal(dw_dlq_rename_bytes(in, 1), 0);
  dw_dlq_rename(in, 1, out, NULL);
  assert_string_equal(out[0].name, "trace-id");
}

static void test_producer_limit(void **state)
{
  (void)state;
  assert_int_equal(dw_dlq_producer_limit(-1, -1, 1000000), 1000000);
  /* The dead-letter topic's own limit is the one in force, smaller or larger than the
   * broker's default (a topic raised to 10 MiB on a 1 MiB broker takes 10 MiB). */
  assert_int_equal(dw_dlq_producer_limit(1048588, 200000, 1000000), 200000);
  assert_int_equal(dw_dlq_producer_limit(1048588, 10485760, 1000000), 10485760);
  /* Unknown topic: the broker's. */
  assert_int_equal(dw_dlq_producer_limit(5242880, -1, 1000000), 5242880);
  assert_int_equal(dw_dlq_producer_limit(-1, 10, 1000000), 1000);
  assert_int_equal(dw_dlq_producer_limit(-1, INT64_MAX, 1000000), 1000000000);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),       cmocka_unit_test(test_fits_as_is),
      cmocka_unit_test(test_huge_key),    cmocka_unit_test(test_huge_value_or_headers),
      cmocka_unit_test(test_order),       cmocka_unit_test(test_forced),
      cmocka_unit_test(test_never_fits),  cmocka_unit_test(test_shed_more),
      cmocka_unit_test(test_rename),      cmocka_unit_test(test_producer_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
