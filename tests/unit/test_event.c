/* Unit tests of the task-created event: valid events, the task_id alias, IDs that could bend a
 * URL, lengths, types, shapes, nesting depth and invalid UTF-8. Inputs are passed as heap copies
 * of exactly their length, without a NUL, so AddressSanitizer catches a read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/event.h"
#include "dw/json.h"

#include "inputs.h"

/* Expects the event to be rejected with a reason containing want. */
static void expect_invalid(const char *json, const char *want)
{
  struct dw_event ev;
  char why[128];
  int rc = parse_event(&ev, json, why, sizeof(why));
  if (rc != DW_EINVAL || !strstr(why, want))
    fail_msg("event %s: rc %d, why \"%s\", wanted \"%s\"", json, rc, why, want);
  assert_string_equal(ev.website_id, "");
  assert_string_equal(ev.task_id, "");
}

static void test_event_valid(void **state)
{
  struct dw_event ev;
  char why[128];
  (void)state;
  assert_int_equal(parse_event(&ev,
                               "{\"website_id\": \"7047318856652261676\", \"delivery_task_id\": "
                               "\"f1c2a0f138ec492d99d7ab73594158ad\", \"event_id\": \"ev-1\", "
                               "\"tenant_key\": \"736588c9260f175d\", \"job_post_id\": \"1\", "
                               "\"created_at_ms\": 1700000000000, \"nested\": {\"a\": [1, 2]}}",
                               why, sizeof(why)),
                   0);
  assert_string_equal(why, "");
  assert_string_equal(ev.website_id, "7047318856652261676");
  assert_string_equal(ev.task_id, "f1c2a0f138ec492d99d7ab73594158ad");
  assert_string_equal(ev.event_id, "ev-1");
  assert_string_equal(ev.tenant_key, "736588c9260f175d");

  /* Minimal; surrounding whitespace is fine; null optional fields are absent. */
  assert_int_equal(parse_event(&ev,
                               " \n{\"website_id\":\"1\",\"delivery_task_id\":\"a_B-9\","
                               "\"event_id\":null,\"tenant_key\":\"\"}\r\n\t ",
                               why, sizeof(why)),
                   0);
  assert_string_equal(ev.website_id, "1");
  assert_string_equal(ev.task_id, "a_B-9");
  assert_string_equal(ev.event_id, "");
  assert_string_equal(ev.tenant_key, "");

  /* A NULL why buffer is allowed. */
  assert_int_equal(parse_event(&ev, "{\"website_id\":\"1\",\"task_id\":\"x\"}", NULL, 0), 0);
  assert_int_equal(parse_event(&ev, "{}", NULL, 0), DW_EINVAL);
}

static void test_event_task_id_alias(void **state)
{
  struct dw_event ev;
  char why[128];
  (void)state;
  assert_int_equal(parse_event(&ev, "{\"website_id\":\"42\",\"task_id\":\"abc\"}", why,
                               sizeof(why)),
                   0);
  assert_string_equal(ev.task_id, "abc");
  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"42\",\"task_id\":\"abc\","
                               "\"delivery_task_id\":\"abc\"}",
                               why, sizeof(why)),
                   0);
  assert_string_equal(ev.task_id, "abc");
  expect_invalid("{\"website_id\":\"42\",\"task_id\":\"abc\",\"delivery_task_id\":\"abd\"}",
                 "differ");
  /* A null alias is absent. */
  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"42\",\"task_id\":null,"
                               "\"delivery_task_id\":\"abc\"}",
                               why, sizeof(why)),
                   0);
  expect_invalid("{\"website_id\":\"42\",\"task_id\":\"../x\"}",
                 "task_id has characters outside [A-Za-z0-9_-]");
}

static void test_event_path_tricks(void **state)
{
  static const char *tasks[] = {"../x", "a/b", "a?b", "a#b", "%2e%2e", "a b", " ab", "ab ",
                                "a.b", "a\\\\b", "a\\nb", "caf\\u00e9", "\\u002e\\u002e",
                                "a;b", "a&b=c"};
  static const char *sites[] = {"../1", "1/2", "1?2", "1#2", "%31", " 1", "1 ", "+1", "-1",
                                "1.0", "1e3", "0x10", "\\u0031a"};
  char json[256];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(tasks); i++) {
    snprintf(json, sizeof(json), "{\"website_id\":\"1\",\"delivery_task_id\":\"%s\"}",
             tasks[i]);
    expect_invalid(json, "delivery_task_id has characters outside [A-Za-z0-9_-]");
  }
  for (size_t i = 0; i < DW_ARRAY_SIZE(sites); i++) {
    snprintf(json, sizeof(json), "{\"website_id\":\"%s\",\"delivery_task_id\":\"a\"}",
             sites[i]);
    expect_invalid(json, "website_id must be 1-32 digits");
  }
}

static void test_event_lengths(void **state)
{
  struct dw_event ev;
  char why[128], json[512], id[200];
  (void)state;

  memset(id, '7', 32);
  id[32] = '\0';
  snprintf(json, sizeof(json), "{\"website_id\":\"%s\",\"delivery_task_id\":\"a\"}", id);
  assert_int_equal(parse_event(&ev, json, why, sizeof(why)), 0);
  assert_string_equal(ev.website_id, id);
  memset(id, '7', 33);
  id[33] = '\0';
  snprintf(json, sizeof(json), "{\"website_id\":\"%s\",\"delivery_task_id\":\"a\"}", id);
  expect_invalid(json, "website_id must be 1-32 digits");
  expect_invalid("{\"website_id\":\"\",\"delivery_task_id\":\"a\"}",
                 "website_id must be 1-32 digits");

  memset(id, 'f', 64);
  id[64] = '\0';
  snprintf(json, sizeof(json), "{\"website_id\":\"1\",\"delivery_task_id\":\"%s\"}", id);
  assert_int_equal(parse_event(&ev, json, why, sizeof(why)), 0);
  assert_string_equal(ev.task_id, id);
  memset(id, 'f', 65);
  id[65] = '\0';
  snprintf(json, sizeof(json), "{\"website_id\":\"1\",\"delivery_task_id\":\"%s\"}", id);
  expect_invalid(json, "delivery_task_id must be 1-64 characters");
  expect_invalid("{\"website_id\":\"1\",\"delivery_task_id\":\"\"}",
                 "delivery_task_id must be 1-64 characters");

  memset(id, 'e', 128);
  id[128] = '\0';
  snprintf(json, sizeof(json),
           "{\"website_id\":\"1\",\"delivery_task_id\":\"a\",\"event_id\":\"%s\","
           "\"tenant_key\":\"%s\"}",
           id, id);
  assert_int_equal(parse_event(&ev, json, why, sizeof(why)), 0);
  assert_string_equal(ev.event_id, id);
  assert_string_equal(ev.tenant_key, id);
  memset(id, 'e', 129);
  id[129] = '\0';
  snprintf(json, sizeof(json),
           "{\"website_id\":\"1\",\"delivery_task_id\":\"a\",\"event_id\":\"%s\"}", id);
  expect_invalid(json, "event_id longer than 128 bytes");
  snprintf(json, sizeof(json),
           "{\"website_id\":\"1\",\"delivery_task_id\":\"a\",\"tenant_key\":\"%s\"}", id);
  expect_invalid(json, "tenant_key longer than 128 bytes");
}

static void test_event_types(void **state)
{
  (void)state;
  expect_invalid("{\"website_id\":7047318856652261676,\"delivery_task_id\":\"a\"}",
                 "website_id must be a string");
  expect_invalid("{\"website_id\":\"1\",\"delivery_task_id\":123}",
                 "delivery_task_id must be a string");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":123}", "task_id must be a string");
  expect_invalid("{\"website_id\":[\"1\"],\"task_id\":\"a\"}", "website_id must be a string");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"event_id\":5}",
                 "event_id must be a string");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"tenant_key\":true}",
                 "tenant_key must be a string");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"tenant_key\":\"a b\"}",
                 "tenant_key must be printable ASCII without spaces");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"tenant_key\":\"a\\r\\nb\"}",
                 "tenant_key must be printable ASCII without spaces");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"tenant_key\":\"caf\\u00e9\"}",
                 "tenant_key must be printable ASCII without spaces");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\",\"event_id\":\"a\\nb\"}",
                 "event_id has control characters");
}

static void test_event_shapes(void **state)
{
  struct dw_event ev;
  char why[128];
  static const char with_nul[] = "{\"website_id\":\"1\",\0\"task_id\":\"a\"}";
  (void)state;

  assert_int_equal(parse_event_n(&ev, "", 0, why, sizeof(why)), DW_EINVAL);
  assert_string_equal(why, "value is empty");
  assert_int_equal(dw_event_parse(&ev, NULL, 0, why, sizeof(why)), DW_EINVAL);
  assert_string_equal(why, "value is empty");
  expect_invalid("   ", "value is not valid JSON");
  expect_invalid("[]", "value must be a JSON object");
  expect_invalid("\"x\"", "value must be a JSON object");
  expect_invalid("42", "value must be a JSON object");
  expect_invalid("null", "value must be a JSON object");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\"", "value is not valid JSON");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\"} x", "trailing data");
  expect_invalid("{\"website_id\":\"1\",\"task_id\":\"a\"}{}", "trailing data");
  expect_invalid("not json at all", "value is not valid JSON");
  expect_invalid("{\"website_id\":\"1\",\"delivery_task_id\":\"a\\u0000b\"}", "escaped NUL");
  expect_invalid("{\"website_id\":\"1\"}", "missing delivery_task_id (or task_id)");
  expect_invalid("{\"task_id\":\"a\"}", "missing website_id");
  expect_invalid("{}", "missing website_id");
  expect_invalid("{\"website_id\":\"1\",\"website_id\":\"2\",\"task_id\":\"a\"}",
                 "duplicate key website_id");

  assert_int_equal(parse_event_n(&ev, with_nul, sizeof(with_nul) - 1, why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "value contains a NUL byte");
  /* A NUL right after a valid value is not "trailing whitespace" either. */
  {
    static const char tail_nul[] = "{\"website_id\":\"1\",\"task_id\":\"a\"}\0";
    assert_int_equal(parse_event_n(&ev, tail_nul, sizeof(tail_nul), why, sizeof(why)),
                     DW_EINVAL);
  }

  /* A why buffer too small is cut, not overrun. */
  {
    char small[8];
    assert_int_equal(parse_event(&ev, "[]", small, sizeof(small)), DW_EINVAL);
    assert_string_equal(small, "value m");
  }
}

static void test_event_depth(void **state)
{
  struct dw_event ev;
  char why[128];
  char *s;
  (void)state;
  /* The event object is level 1; "x" holds 15 more levels: 16 in all, allowed. */
  s = nested("{\"website_id\":\"1\",\"task_id\":\"a\",\"x\":", DW_JSON_MAX_DEPTH, "}");
  assert_int_equal(parse_event(&ev, s, why, sizeof(why)), 0);
  free(s);
  s = nested("{\"website_id\":\"1\",\"task_id\":\"a\",\"x\":", DW_JSON_MAX_DEPTH + 1, "}");
  expect_invalid(s, "nests deeper than 16 levels");
  free(s);
  s = nested("{\"x\":", 100000, "}");
  expect_invalid(s, "nests deeper than 16 levels");
  free(s);
  /* Brackets inside strings do not count, nor do escaped quotes end them. */
  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"1\",\"task_id\":\"a\",\"x\":"
                               "\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[{{{{{{{{{{{{{{{{{{\"}",
                               why, sizeof(why)),
                   0);
}

/* Invalid UTF-8 anywhere in an event makes it invalid: event_id is copied into the result. */
static void test_event_invalid_utf8(void **state)
{
  static const char *events[] = {
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"event_id\":\"e-\xC3\x28\"}",
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"event_id\":\"\xED\xA0\x80\"}",
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"event_id\":\"\xC0\xAF\"}",
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"tenant_key\":\"\xFF\"}",
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"note\":\"\x80\"}",   /* unknown field */
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"\xFE\":\"x\"}",       /* a key */
      "{\"website_id\":\"1\",\"delivery_task_id\":\"t\"}\n\xFF",                /* trailing */
  };
  struct dw_event ev;
  char why[128];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(events); i++)
    expect_invalid(events[i], "value is not valid UTF-8");
  /* Valid UTF-8, raw or escaped, is an event_id like any other. */
  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"event_id\":"
                               "\"\xC3\xA9-\\u00e9-\\ud83d\\ude00\"}",
                               why, sizeof(why)),
                   0);
  assert_string_equal(ev.event_id, "\xC3\xA9-\xC3\xA9-\xF0\x9F\x98\x80");
  /* A lone escaped surrogate is not JSON to cJSON: rejected too. */
  expect_invalid("{\"website_id\":\"1\",\"delivery_task_id\":\"t\",\"event_id\":\"\\ud800\"}",
                 "value is not valid JSON");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_valid),
      cmocka_unit_test(test_event_task_id_alias),
      cmocka_unit_test(test_event_path_tricks),
      cmocka_unit_test(test_event_lengths),
      cmocka_unit_test(test_event_types),
      cmocka_unit_test(test_event_shapes),
      cmocka_unit_test(test_event_depth),
      cmocka_unit_test(test_event_invalid_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
