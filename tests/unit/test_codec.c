/* Unit tests of the codec: event validation, classification of every documented answer shape
 * and error code, the token endpoint's answer, and result encoding (parsed back). Inputs are
 * passed as heap copies of exactly their length, without a NUL, so AddressSanitizer catches a
 * read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/codec.h"
#include "dw/common.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers */

/* A heap copy of exactly n bytes (no NUL after them). */
static char *exact(const void *p, size_t n)
{
  char *c = malloc(n ? n : 1);
  assert_non_null(c);
  if (n)
    memcpy(c, p, n);
  return c;
}

static int parse_event_n(struct dw_event *ev, const void *p, size_t n, char *why, size_t wl)
{
  char *c = exact(p, n);
  int rc = dw_event_parse(ev, c, n, why, wl);
  free(c);
  return rc;
}

static int parse_event(struct dw_event *ev, const char *s, char *why, size_t wl)
{
  return parse_event_n(ev, s, strlen(s), why, wl);
}

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

static void classify_n(struct dw_answer *a, long http, const void *body, size_t n)
{
  char *c = exact(body, n);
  dw_answer_classify(a, http, c, n);
  free(c);
}

static void classify(struct dw_answer *a, long http, const char *body)
{
  classify_n(a, http, body, strlen(body));
}

/* Nested arrays: "{"x":" + (levels - 1) brackets + "1" + closers + "}", i.e. depth = levels. */
static char *nested(const char *prefix, size_t levels, const char *suffix)
{
  size_t pl = strlen(prefix), sl = strlen(suffix), inner = levels - 1;
  size_t n = pl + 2 * inner + 1 + sl + 1;
  char *s = malloc(n);
  size_t i, k = 0;
  assert_non_null(s);
  memcpy(s + k, prefix, pl);
  k += pl;
  for (i = 0; i < inner; i++)
    s[k++] = '[';
  s[k++] = '1';
  for (i = 0; i < inner; i++)
    s[k++] = ']';
  memcpy(s + k, suffix, sl);
  k += sl;
  s[k] = '\0';
  return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Events */

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

/* ------------------------------------------------------------------------------------------ */
/* Answers */

static void test_answer_pending_shapes(void **state)
{
  static const char *bodies[] = {
      "{\"code\":0,\"msg\":\"success\"}",
      "{\"code\":0,\"msg\":\"success\",\"data\":null}",
      "{\"code\":0,\"msg\":\"success\",\"data\":{}}",
      "{\"code\":0,\"msg\":\"success\",\"data\":[]}",
      "{\"code\":0,\"msg\":\"success\",\"data\":\"\"}",
      "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":null}}",
      "{\"code\":0,\"msg\":\"success\",\"data\":{\"status_msg\":\" \",\"extra_info\":\"  \"}}",
      "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":0}}",
      "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":1,\"delivery\":{\"application_id\":"
      "\"6838119494196054285\",\"id\":\"6838119494196054285\",\"job_id\":\"6838119494196054285\","
      "\"job_post_id\":\"6838119494196054285\",\"portal_resume_id\":\"6838119494196054285\","
      "\"user_id\":\"6838119494196054285\",\"talent_id\":\"6838119494196054285\"},"
      "\"status_msg\":\" \",\"extra_info\":\"  \"}}",
  };
  static const int statuses[] = {-1, -1, -1, -1, -1, -1, -1, 0, 1};
  struct dw_answer a;
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(bodies); i++) {
    classify(&a, 200, bodies[i]);
    if (a.kind != DW_ANSWER_PENDING)
      fail_msg("body %s: kind %s", bodies[i], dw_answer_kind_name(a.kind));
    assert_int_equal(a.code, 0);
    assert_int_equal(a.status, statuses[i]);
    assert_string_equal(a.msg, "success");
    /* A placeholder delivery of a pending task is not read. */
    assert_string_equal(a.application_id, "");
    assert_string_equal(a.talent_id, "");
    assert_string_equal(a.status_msg, "");
  }
}

static void test_answer_succeeded(void **state)
{
  struct dw_answer a;
  (void)state;
  classify(&a, 200,
           "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":2,\"delivery\":{"
           "\"application_id\":\"  6987654321012345678 \\n\",\"id\":\"111\","
           "\"talent_id\":\"\\t7000000000000000001\",\"job_id\":\"7000000000000000002\","
           "\"job_post_id\":\" 7000000000000000003\",\"portal_resume_id\":\"7000000000000000004\","
           "\"user_id\":\"7000000000000000005\\r\\n\"}}}");
  assert_int_equal(a.kind, DW_ANSWER_SUCCEEDED);
  assert_int_equal(a.code, 0);
  assert_int_equal(a.status, 2);
  assert_string_equal(a.application_id, "6987654321012345678");
  assert_string_equal(a.talent_id, "7000000000000000001");
  assert_string_equal(a.job_id, "7000000000000000002");
  assert_string_equal(a.job_post_id, "7000000000000000003");
  assert_string_equal(a.portal_resume_id, "7000000000000000004");
  assert_string_equal(a.user_id, "7000000000000000005");

  /* Non-string ids are absent; the deprecated id never stands in for application_id. */
  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"5\","
           "\"talent_id\":6,\"job_id\":null,\"job_post_id\":[],\"user_id\":{}}}}");
  assert_int_equal(a.kind, DW_ANSWER_SUCCEEDED);
  assert_string_equal(a.application_id, "5");
  assert_string_equal(a.talent_id, "");
  assert_string_equal(a.job_id, "");
  assert_string_equal(a.job_post_id, "");
  assert_string_equal(a.portal_resume_id, "");
  assert_string_equal(a.user_id, "");
  assert_string_equal(a.msg, "");

  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"id\":\"111\",\"talent_id\":\"6\"}}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "status 2 without delivery.application_id");
  assert_string_equal(a.talent_id, "");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "status 2 without delivery.application_id");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2,\"delivery\":null}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"  \"}}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_int_equal(a.code, 0);
}

static void test_answer_id_too_long(void **state)
{
  struct dw_answer a;
  char body[1024], id[DW_ID_MAX + 1];
  (void)state;
  memset(id, '9', DW_ID_MAX - 1);
  id[DW_ID_MAX - 1] = '\0';
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\","
           "\"talent_id\":\"  %s  \"}}}",
           id);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_SUCCEEDED);
  assert_string_equal(a.talent_id, id);

  memset(id, '9', DW_ID_MAX);
  id[DW_ID_MAX] = '\0';
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\","
           "\"talent_id\":\"%s\"}}}",
           id);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "delivery.talent_id too long");
  assert_string_equal(a.application_id, "");
  assert_string_equal(a.talent_id, "");

  /* extra_info is a text of a final answer: carried, not a reason to ask again. */
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"same application exist\","
           "\"extra_info\":\"%s\"}}",
           id);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_string_equal(a.extra_info, id);
  assert_string_equal(a.status_msg, "same application exist");
}

static void test_answer_failed(void **state)
{
  struct dw_answer a;
  (void)state;
  classify(&a, 200,
           "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":3,\"status_msg\":\"same "
           "application exist\",\"extra_info\":\"7100825663201052972\"}}");
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_int_equal(a.status, 3);
  assert_string_equal(a.status_msg, "same application exist");
  assert_string_equal(a.extra_info, "7100825663201052972");
  assert_string_equal(a.application_id, "");

  classify(&a, 200,
           "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":3,\"status_msg\":\"  resume "
           "could not be parsed\\n\",\"extra_info\":\"  \",\"delivery\":{\"application_id\":"
           "\"1\"}}}");
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_string_equal(a.status_msg, "resume could not be parsed");
  assert_string_equal(a.extra_info, "");
  assert_string_equal(a.application_id, "");

  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":3}}");
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_string_equal(a.status_msg, "");
  assert_string_equal(a.extra_info, "");
}

static void test_answer_unknown_status(void **state)
{
  struct dw_answer a;
  (void)state;
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":4}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_int_equal(a.status, 4);
  assert_string_equal(a.msg, "unknown status 4");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":-7}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "unknown status -7");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":4294967298}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_int_equal(a.status, -1);
  assert_string_equal(a.msg, "unknown status 4294967298");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":\"2\"}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "status is not an integer");
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2.5}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":1e30}}");
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "status is not an integer");
}

static void test_answer_error_codes(void **state)
{
  static const struct {
    long code;
    enum dw_answer_kind kind;
  } cases[] = {
      {1002008, DW_ANSWER_NOT_FOUND},      {1002002, DW_ANSWER_INVALID},
      {1002001, DW_ANSWER_RETRY},          {99991400, DW_ANSWER_RATE_LIMITED},
      {1000004, DW_ANSWER_RATE_LIMITED},   {1000005, DW_ANSWER_RATE_LIMITED},
      {99991663, DW_ANSWER_TOKEN_INVALID}, {99991664, DW_ANSWER_TOKEN_INVALID},
      {99991665, DW_ANSWER_TOKEN_INVALID}, {99991671, DW_ANSWER_TOKEN_INVALID},
      {20013, DW_ANSWER_TOKEN_INVALID},    {99991672, DW_ANSWER_APP_FAILURE},
      {99991401, DW_ANSWER_APP_FAILURE},   {99991662, DW_ANSWER_APP_FAILURE},
      {99991673, DW_ANSWER_APP_FAILURE},   {99991676, DW_ANSWER_APP_FAILURE},
      {10014, DW_ANSWER_APP_FAILURE},      {10015, DW_ANSWER_APP_FAILURE},
      {99991403, DW_ANSWER_APP_FAILURE},   {99991661, DW_ANSWER_APP_FAILURE},
      {1002011, DW_ANSWER_RETRY},          {2200, DW_ANSWER_RETRY},
      {5000, DW_ANSWER_RETRY},             {99991668, DW_ANSWER_RETRY},
      {-5, DW_ANSWER_RETRY},               {1, DW_ANSWER_RETRY},
  };
  static const long https[] = {400, 500, 200, 403, 429};
  struct dw_answer a;
  char body[512];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
    for (size_t h = 0; h < DW_ARRAY_SIZE(https); h++) {
      snprintf(body, sizeof(body),
               "{\"code\":%ld,\"msg\":\" error %ld \",\"error\":{\"log_id\":\"2024\","
               "\"permission_violations\":[{\"subject\":\"hire:site_application\"}]},"
               "\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\"}}}",
               cases[i].code, cases[i].code);
      classify(&a, https[h], body);
      if (a.kind != cases[i].kind)
        fail_msg("code %ld HTTP %ld: kind %s, want %s", cases[i].code, https[h],
                 dw_answer_kind_name(a.kind), dw_answer_kind_name(cases[i].kind));
      assert_int_equal(a.code, cases[i].code);
      snprintf(body, sizeof(body), "error %ld", cases[i].code);
      assert_string_equal(a.msg, body);
      assert_int_equal(a.status, -1);
      assert_string_equal(a.application_id, "");
    }
  }
  /* The documented rate-limit answer, and a code given as 1.002008e6. */
  classify(&a, 429, "{\"code\":99991400,\"msg\":\"request trigger frequency limit\"}");
  assert_int_equal(a.kind, DW_ANSWER_RATE_LIMITED);
  assert_string_equal(a.msg, "request trigger frequency limit");
  classify(&a, 400, "{\"code\":1.002008e6,\"msg\":\"task not found\"}");
  assert_int_equal(a.kind, DW_ANSWER_NOT_FOUND);
  /* Code 0 decides even under a 5xx status. */
  classify(&a, 503, "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"x\"}}");
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
}

static void test_answer_unusable_bodies(void **state)
{
  struct dw_answer a;
  static const char with_nul[] = "{\"code\":0,\0\"data\":{}}";
  char *s;
  (void)state;

  dw_answer_classify(&a, 0, "{\"code\":0}", 10);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_int_equal(a.code, -1);
  assert_int_equal(a.status, -1);
  assert_string_equal(a.msg, "transport error");

  dw_answer_classify(&a, 429, NULL, 0);
  assert_int_equal(a.kind, DW_ANSWER_RATE_LIMITED);
  assert_int_equal(a.code, -1);
  assert_string_equal(a.msg, "HTTP 429 with empty body");
  classify(&a, 429, "Too Many Requests");
  assert_int_equal(a.kind, DW_ANSWER_RATE_LIMITED);
  assert_string_equal(a.msg, "HTTP 429 with unparsable body");

  classify(&a, 502, "<html><body>502 Bad Gateway</body></html>");
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_int_equal(a.code, -1);
  assert_string_equal(a.msg, "HTTP 502 with unparsable body");
  dw_answer_classify(&a, 200, "", 0);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_string_equal(a.msg, "HTTP 200 with empty body");

  static const char *bad[] = {
      "{\"code\":0,\"data\":{\"status\":2",     /* truncated */
      "{\"code\":0,\"data\":{}} trailing",       /* trailing garbage */
      "[{\"code\":0}]",                          /* not an object */
      "\"code\"",                                /* not an object */
      "{\"msg\":\"no code\"}",                   /* no code */
      "{\"code\":\"0\"}",                        /* code as a string */
      "{\"code\":null}",                         /* null code */
      "{\"code\":0.5}",                          /* fraction */
      "{\"code\":1e400}",                        /* overflows a double */
      "{\"code\":-1e400}",
      "{\"code\":99999999999999999999999}",      /* beyond 2^53 */
      "{\"code\":9007199254740993}",           /* rounds to 2^53 */
      "{\"code\":9007199254740992}",
      "{\"code\":0,\"msg\":\"a\\u0000b\"}",      /* escaped NUL */
  };
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    classify(&a, 500, bad[i]);
    if (a.kind != DW_ANSWER_RETRY || a.code != -1)
      fail_msg("body %s: kind %s code %ld", bad[i], dw_answer_kind_name(a.kind), a.code);
    assert_true(strncmp(a.msg, "HTTP 500 with ", 14) == 0);
    classify(&a, 429, bad[i]);
    assert_int_equal(a.kind, DW_ANSWER_RATE_LIMITED);
  }
  classify(&a, 200, "{\"msg\":\"x\"}");
  assert_string_equal(a.msg, "HTTP 200 with body without an integer code");

  classify_n(&a, 200, with_nul, sizeof(with_nul) - 1);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_string_equal(a.msg, "HTTP 200 with body with a NUL");

  /* Large integers that are exact still classify. */
  classify(&a, 200, "{\"code\":9007199254740991,\"msg\":\"big\"}");
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_int_equal(a.code, 9007199254740991L);

  s = nested("{\"code\":0,\"data\":", DW_JSON_MAX_DEPTH, "}");
  classify(&a, 200, s);
  assert_int_equal(a.kind, DW_ANSWER_PENDING);
  free(s);
  s = nested("{\"code\":0,\"data\":", DW_JSON_MAX_DEPTH + 1, "}");
  classify(&a, 200, s);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_string_equal(a.msg, "HTTP 200 with body nested too deep");
  free(s);
  s = nested("{\"code\":0,\"data\":", 200000, "}");
  classify(&a, 200, s);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  free(s);
}

static void test_answer_long_msg(void **state)
{
  struct dw_answer a;
  char body[4096];
  size_t k = 0;
  (void)state;
  /* 600 bytes of two-byte UTF-8 ("é" = C3 A9): the cut must land between sequences. */
  k += (size_t)snprintf(body, sizeof(body), "{\"code\":1002001,\"msg\":\"xy");
  for (int i = 0; i < 600; i++) {
    body[k++] = (char)0xC3;
    body[k++] = (char)0xA9;
  }
  k += (size_t)snprintf(body + k, sizeof(body) - k, "\"}");
  classify_n(&a, 500, body, k);
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_int_equal(a.code, 1002001);
  assert_int_equal(strlen(a.msg), DW_TEXT_MAX - 2); /* "xy" + 254 pairs, not half a 255th */
  assert_int_equal((unsigned char)a.msg[strlen(a.msg) - 1], 0xA9);
}

static void test_answer_kind_names(void **state)
{
  (void)state;
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_PENDING), "pending");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_SUCCEEDED), "succeeded");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_FAILED), "failed");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_NOT_FOUND), "not_found");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_INVALID), "invalid_request");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_RETRY), "retry");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_RATE_LIMITED), "rate_limited");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_TOKEN_INVALID), "token_invalid");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_APP_FAILURE), "app_failure");
  assert_string_equal(dw_answer_kind_name(DW_ANSWER_MALFORMED), "malformed");
}

/* The one UTF-8 validator (events, answers, results, the fuzz targets' checks). */
static void test_utf8_valid(void **state)
{
  static const struct {
    const char *s;
    int valid;
  } cases[] = {
      {"", 1},
      {"plain ascii", 1},
      {"\xC3\xA9t\xC3\xA9", 1},             /* é */
      {"\xE2\x80\xA6", 1},                  /* U+2026 */
      {"\xEF\xBF\xBF", 1},                  /* U+FFFF */
      {"\xF0\x9F\x98\x80", 1},              /* U+1F600 */
      {"\xF4\x8F\xBF\xBF", 1},              /* U+10FFFF */
      {"\xED\x9F\xBF", 1},                  /* U+D7FF, just below the surrogates */
      {"\x80", 0},                          /* a lone continuation byte */
      {"\xC3", 0},                          /* cut short */
      {"\xE6\x97", 0},                      /* cut short */
      {"\xC0\xAF", 0},                      /* overlong "/" */
      {"\xC1\xBF", 0},                      /* overlong */
      {"\xE0\x80\xAF", 0},                  /* overlong, three bytes */
      {"\xF0\x80\x80\xAF", 0},              /* overlong, four bytes */
      {"\xED\xA0\x80", 0},                  /* U+D800, a UTF-16 surrogate */
      {"\xED\xBF\xBF", 0},                  /* U+DFFF */
      {"\xF4\x90\x80\x80", 0},              /* U+110000 */
      {"\xF5\x80\x80\x80", 0},
      {"\xFE", 0},
      {"\xFF", 0},
      {"ok\xC3\x28", 0},                    /* a lead byte, then no continuation */
  };
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
    size_t n = strlen(cases[i].s);
    char *c = exact(cases[i].s, n);
    if (dw_utf8_valid(c, n) != cases[i].valid)
      fail_msg("case %zu: want %d", i, cases[i].valid);
    free(c);
  }
  /* A NUL is a character; the length is the caller's. */
  assert_int_equal(dw_utf8_valid("a\0b", 3), 1);
  assert_int_equal(dw_utf8_valid("\xC3\xA9", 1), 0);
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

/* Code 0 with data the API does not send: named, never "pending", never final. */
static void test_answer_malformed_shapes(void **state)
{
  static const struct {
    const char *body;
    const char *msg;
  } cases[] = {
      {"{\"code\":0,\"data\":{\"status\":\"2\",\"delivery\":{\"application_id\":\"1\"}}}",
       "status is not an integer"},
      {"{\"code\":0,\"data\":{\"status\":true}}", "status is not an integer"},
      {"{\"code\":0,\"data\":{\"status\":{}}}", "status is not an integer"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":[{\"application_id\":\"1\"}]}}",
       "delivery is not an object"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":\"1\"}}", "delivery is not an object"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":7}}}",
       "delivery.application_id is not a string"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":[\"1\"]}}}",
       "delivery.application_id is not a string"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"talent_id\":\"2\"}}}",
       "status 2 without delivery.application_id"},
      {"{\"code\":0,\"data\":{\"status\":9}}", "unknown status 9"},
  };
  struct dw_answer a;
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
    classify(&a, 200, cases[i].body);
    if (a.kind != DW_ANSWER_MALFORMED || strcmp(a.msg, cases[i].msg) != 0)
      fail_msg("body %s: kind %s msg \"%s\", want malformed \"%s\"", cases[i].body,
               dw_answer_kind_name(a.kind), a.msg, cases[i].msg);
    assert_int_equal(a.code, 0);
    assert_string_equal(a.application_id, "");
    /* The same whatever status carries it. */
    classify(&a, 400, cases[i].body);
    assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  }

  /* An application id of 5,000 characters names no application: malformed, not cut. */
  char body[6000], *id = malloc(5001);
  assert_non_null(id);
  memset(id, '7', 5000);
  id[5000] = '\0';
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"%s\"}}}", id);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_MALFORMED);
  assert_string_equal(a.msg, "delivery.application_id too long");
  assert_string_equal(a.application_id, "");
  free(id);
}

/* Status 3 is final however long its texts: carried when they fit, else cut and marked. */
static void test_answer_failed_long_text(void **state)
{
  struct dw_answer a;
  char body[4096], text[1024];
  const size_t mark = strlen(DW_TEXT_CUT_MARK);
  size_t k;
  (void)state;

  /* 200 characters of extra_info: carried whole. */
  memset(text, 'x', 200);
  text[200] = '\0';
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"same application exist\","
           "\"extra_info\":\"%s\"}}",
           text);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_int_equal(a.status, 3);
  assert_string_equal(a.extra_info, text);

  /* 900 bytes of extra_info and status_msg: cut at DW_TEXT_MAX, ending with the mark. */
  memset(text, '9', 900);
  text[900] = '\0';
  snprintf(body, sizeof(body),
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"%s\",\"extra_info\":\"%s\"}}",
           text, text);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_int_equal(strlen(a.extra_info), DW_TEXT_MAX - 1);
  assert_string_equal(a.extra_info + DW_TEXT_MAX - 1 - mark, DW_TEXT_CUT_MARK);
  assert_int_equal(strncmp(a.extra_info, text, DW_TEXT_MAX - 1 - mark), 0);
  assert_int_equal(strlen(a.status_msg), DW_TEXT_MAX - 1);
  assert_string_equal(a.status_msg + DW_TEXT_MAX - 1 - mark, DW_TEXT_CUT_MARK);

  /* Two-byte characters: the cut lands between characters, and the text stays UTF-8. */
  k = 0;
  for (int i = 0; i < 400; i++) {
    text[k++] = (char)0xC3;
    text[k++] = (char)0xA9;
  }
  text[k] = '\0';
  snprintf(body, sizeof(body), "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"x%s\"}}",
           text);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_true(dw_utf8_valid(a.status_msg, strlen(a.status_msg)));
  assert_string_equal(a.status_msg + strlen(a.status_msg) - mark, DW_TEXT_CUT_MARK);
  assert_true(strlen(a.status_msg) < DW_TEXT_MAX);

  /* Exactly DW_TEXT_MAX - 1 bytes fit: no mark. */
  memset(text, 'y', DW_TEXT_MAX - 1);
  text[DW_TEXT_MAX - 1] = '\0';
  snprintf(body, sizeof(body), "{\"code\":0,\"data\":{\"status\":3,\"extra_info\":\"%s\"}}",
           text);
  classify(&a, 200, body);
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_string_equal(a.extra_info, text);
}

/* Invalid UTF-8 in a code 0 answer: malformed, with the field named where it is one we read. */
static void test_answer_invalid_utf8(void **state)
{
  static const struct {
    const char *body;
    const char *msg;
  } cases[] = {
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\xC0\xAF\"}}}",
       "delivery.application_id is not valid UTF-8"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\","
       "\"user_id\":\"\xED\xA0\x80\"}}}",
       "delivery.user_id is not valid UTF-8"},
      {"{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"bad \xFF\"}}",
       "status_msg is not valid UTF-8"},
      {"{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"dup\",\"extra_info\":\"\x80\"}}",
       "extra_info is not valid UTF-8"},
      /* Elsewhere: msg, a key, a field not read, a pending answer. */
      {"{\"code\":0,\"msg\":\"succ\xE6\x97\",\"data\":{\"status\":2,\"delivery\":"
       "{\"application_id\":\"1\"}}}",
       "answer is not valid UTF-8"},
      {"{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\","
       "\"id\":\"\xFE\"}}}",
       "answer is not valid UTF-8"},
      {"{\"code\":0,\"data\":{\"status\":1,\"\xC1\xBF\":1}}", "answer is not valid UTF-8"},
  };
  struct dw_answer a;
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(cases); i++) {
    classify(&a, 200, cases[i].body);
    if (a.kind != DW_ANSWER_MALFORMED || strcmp(a.msg, cases[i].msg) != 0)
      fail_msg("case %zu: kind %s msg \"%s\", want malformed \"%s\"", i,
               dw_answer_kind_name(a.kind), a.msg, cases[i].msg);
    assert_string_equal(a.application_id, "");
    assert_string_equal(a.status_msg, "");
    assert_string_equal(a.extra_info, "");
  }
  /* An error answer is decided by its code; only its msg (for logs) has the bytes. */
  classify(&a, 500, "{\"code\":1002001,\"msg\":\"system \xC0\xAF error\"}");
  assert_int_equal(a.kind, DW_ANSWER_RETRY);
  assert_int_equal(a.code, 1002001);
  classify(&a, 400, "{\"code\":1002008,\"msg\":\"\xFF\"}");
  assert_int_equal(a.kind, DW_ANSWER_NOT_FOUND);
}

/* Only 200, 4xx and 5xx carry an answer of the API; a redirect's body is never a result. */
static void test_answer_http_status_without_answer(void **state)
{
  static const long statuses[] = {301, 302, 303, 304, 307, 308, 300, 201, 202, 204, 206,
                                  100, 199, 600, 999, -1};
  static const char *bodies[] = {
      "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":2,\"delivery\":{\"application_id\":"
      "\"6987654321012345678\"}}}",
      "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"x\"}}",
      "{\"code\":1002008,\"msg\":\"task not found\"}",
      "{\"code\":99991672,\"msg\":\"scope\"}",
      "",
  };
  struct dw_answer a;
  char want[64];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(statuses); i++) {
    for (size_t b = 0; b < DW_ARRAY_SIZE(bodies); b++) {
      classify(&a, statuses[i], bodies[b]);
      if (a.kind != DW_ANSWER_RETRY)
        fail_msg("HTTP %ld body %s: kind %s", statuses[i], bodies[b],
                 dw_answer_kind_name(a.kind));
      assert_int_equal(a.code, -1);
      assert_int_equal(a.status, -1);
      assert_string_equal(a.application_id, "");
      snprintf(want, sizeof(want), "HTTP %ld is not an answer of the API", statuses[i]);
      assert_string_equal(a.msg, want);
    }
  }
  /* The statuses Feishu uses still carry one. */
  static const long used[] = {200, 400, 401, 403, 404, 429, 499, 500, 502, 503, 504, 599};
  for (size_t i = 0; i < DW_ARRAY_SIZE(used); i++) {
    classify(&a, used[i], bodies[0]);
    assert_int_equal(a.kind, DW_ANSWER_SUCCEEDED);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Token endpoint */

static int token_parse(const char *body, char *token, size_t tsize, int64_t *expire, long *code,
                       char *msg, size_t msize)
{
  size_t n = strlen(body);
  char *c = exact(body, n);
  int rc = dw_token_answer_parse(c, n, token, tsize, expire, code, msg, msize);
  free(c);
  return rc;
}

static int oauth_parse(const char *body, char *token, size_t size, int64_t *expires_in,
                       char *why, size_t why_size)
{
  return dw_oauth_answer_parse(body, strlen(body), token, size, expires_in, why, why_size);
}

static void test_oauth_answer(void **state)
{
  char token[64], why[128];
  int64_t expires_in = 0;
  (void)state;
  assert_int_equal(oauth_parse("{\"access_token\":\"a.b.c\",\"token_type\":\"Bearer\","
                               "\"expires_in\":300}",
                               token, sizeof(token), &expires_in, why, sizeof(why)),
                   0);
  assert_string_equal(token, "a.b.c");
  assert_int_equal(expires_in, 300);
  assert_int_equal(oauth_parse("{\"access_token\":\"a.b.c\"}", token, sizeof(token),
                               &expires_in, why, sizeof(why)),
                   0);
  assert_int_equal(expires_in, -1);
  /* RFC 6749 5.2 error answers name their error */
  assert_int_equal(oauth_parse("{\"error\":\"invalid_client\",\"error_description\":"
                               "\"bad secret\"}",
                               token, sizeof(token), &expires_in, why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "error invalid_client: bad secret");
  assert_int_equal(oauth_parse("{\"token_type\":\"Bearer\"}", token, sizeof(token),
                               &expires_in, why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "no access_token in the answer");
  assert_int_equal(oauth_parse("{\"access_token\":\"a b\"}", token, sizeof(token), &expires_in,
                               why, sizeof(why)),
                   DW_EINVAL);
  assert_int_equal(oauth_parse("<html>", token, sizeof(token), &expires_in, why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "the answer is not a JSON object");
  assert_int_equal(oauth_parse("{\"access_token\":\"0123456789\"}", token, 8, &expires_in,
                               why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "access_token longer than 7 bytes");
}

static void test_jwt_claims(void **state)
{
  char sub[32], why[128];
  int64_t exp = 0;
  (void)state;
  /* header {"alg":"RS256"}, payload {"sub":"delivery-worker","exp":1795000000}, a signature */
  assert_int_equal(dw_jwt_claims_parse("eyJhbGciOiJSUzI1NiJ9."
                                       "eyJzdWIiOiJkZWxpdmVyeS13b3JrZXIiLCJleHAiOjE3OTUwMDAwMDB9.c2ln",
                                       &exp, sub, sizeof(sub), why, sizeof(why)),
                   0);
  assert_int_equal(exp, 1795000000);
  assert_string_equal(sub, "delivery-worker");
  /* payload {"iss":"x"}: neither claim */
  assert_int_equal(dw_jwt_claims_parse("e30.eyJpc3MiOiJ4In0.", &exp, sub, sizeof(sub), why,
                                       sizeof(why)),
                   0);
  assert_int_equal(exp, -1);
  assert_string_equal(sub, "");
  /* payload {"exp":"soon"} */
  assert_int_equal(dw_jwt_claims_parse("e30.eyJleHAiOiJzb29uIn0.", &exp, sub, sizeof(sub), why,
                                       sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "the JWT's exp claim is not a positive number");
  assert_int_equal(dw_jwt_claims_parse("opaque-token", &exp, sub, sizeof(sub), why, sizeof(why)),
                   DW_EINVAL);
  assert_int_equal(dw_jwt_claims_parse("a.b.c.d", &exp, sub, sizeof(sub), why, sizeof(why)),
                   DW_EINVAL);
  assert_int_equal(dw_jwt_claims_parse("e30.!!!.x", &exp, sub, sizeof(sub), why, sizeof(why)),
                   DW_EINVAL);
  assert_string_equal(why, "the JWT's payload is not base64url of a JSON object");
}

static void test_token_answer(void **state)
{
  char token[4096], msg[128];
  int64_t expire = 0;
  long code = 7;
  (void)state;

  assert_int_equal(token_parse("{\"code\":0,\"msg\":\"ok\",\"tenant_access_token\":"
                               "\"t-caecc734c2e3328a62489fe0648c4b98779515d3\",\"expire\":7200}",
                               token, sizeof(token), &expire, &code, msg, sizeof(msg)),
                   0);
  assert_string_equal(token, "t-caecc734c2e3328a62489fe0648c4b98779515d3");
  assert_int_equal(expire, 7200);
  assert_int_equal(code, 0);
  assert_string_equal(msg, "ok");

  assert_int_equal(token_parse("{\"code\":10014,\"msg\":\"app secret invalid\"}", token,
                               sizeof(token), &expire, &code, msg, sizeof(msg)),
                   DW_EINVAL);
  assert_int_equal(code, 10014);
  assert_string_equal(msg, "app secret invalid");
  assert_int_equal(token_parse("{\"code\":10015}", token, sizeof(token), &expire, &code, msg,
                               sizeof(msg)),
                   DW_EINVAL);
  assert_string_equal(msg, "token endpoint answered code 10015");

  assert_int_equal(token_parse("<html>", token, sizeof(token), &expire, &code, msg,
                               sizeof(msg)),
                   DW_EINVAL);
  assert_int_equal(code, -1);
  assert_string_equal(msg, "unparsable token answer");
  assert_int_equal(token_parse("{\"msg\":\"x\"}", token, sizeof(token), &expire, &code, msg,
                               sizeof(msg)),
                   DW_EINVAL);
  assert_int_equal(code, -1);
  assert_int_equal(dw_token_answer_parse("", 0, token, sizeof(token), &expire, &code, msg,
                                         sizeof(msg)),
                   DW_EINVAL);
  assert_int_equal(code, -1);

  static const char *bad[] = {
      "{\"code\":0,\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":\"\",\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":5,\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":\"t-a b\",\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\\r\\nX-Evil: 1\",\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":\"t-\\u00e9\",\"expire\":7200}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\"}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\",\"expire\":0}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\",\"expire\":-5}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\",\"expire\":\"7200\"}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\",\"expire\":7200.5}",
      "{\"code\":0,\"tenant_access_token\":\"t-a\",\"expire\":1e400}",
  };
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    dw_strlcpy(token, "old", sizeof(token));
    if (token_parse(bad[i], token, sizeof(token), &expire, &code, msg, sizeof(msg)) !=
        DW_EINVAL)
      fail_msg("token answer %s accepted", bad[i]);
    assert_int_equal(code, 0);
    assert_string_equal(token, "");
    assert_true(msg[0] != '\0');
  }

  /* Exactly fits / one too long for the buffer. */
  {
    char small[8];
    assert_int_equal(token_parse("{\"code\":0,\"tenant_access_token\":\"t-12345\",\"expire\":1}",
                                 small, sizeof(small), &expire, &code, msg, sizeof(msg)),
                     0);
    assert_string_equal(small, "t-12345");
    assert_int_equal(token_parse("{\"code\":0,\"tenant_access_token\":\"t-123456\",\"expire\":1}",
                                 small, sizeof(small), &expire, &code, msg, sizeof(msg)),
                     DW_EINVAL);
  }
  /* A JWT-sized token (4000 bytes) fits the recommended buffer. */
  {
    char *body = malloc(5000);
    size_t k;
    assert_non_null(body);
    k = (size_t)snprintf(body, 5000, "{\"code\":0,\"tenant_access_token\":\"");
    memset(body + k, 'A', 4000);
    k += 4000;
    snprintf(body + k, 5000 - k, "\",\"expire\":7200}");
    assert_int_equal(token_parse(body, token, sizeof(token), &expire, &code, NULL, 0), 0);
    assert_int_equal(strlen(token), 4000);
    free(body);
  }
}

static void test_token_request(void **state)
{
  char *out = NULL;
  size_t len = 0;
  cJSON *j;
  (void)state;
  assert_int_equal(dw_token_request_encode("cli_a1b2", "se\"cr\\et", &out, &len), 0);
  assert_non_null(out);
  assert_int_equal(len, strlen(out));
  assert_string_equal(out, "{\"app_id\":\"cli_a1b2\",\"app_secret\":\"se\\\"cr\\\\et\"}");
  j = cJSON_Parse(out);
  assert_non_null(j);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "app_secret")->valuestring,
                      "se\"cr\\et");
  cJSON_Delete(j);
  free(out);
  assert_int_equal(dw_token_request_encode(NULL, "x", &out, &len), DW_EINVAL);
  assert_null(out);
}

/* ------------------------------------------------------------------------------------------ */
/* Results */

/* Parses a result back and checks its keys, in order, and their string values. */
static void expect_result(const char *text, const char *const *keys, const char *const *values,
                          size_t n)
{
  cJSON *j = cJSON_Parse(text);
  const cJSON *c;
  size_t i = 0;
  assert_non_null(j);
  assert_true(cJSON_IsObject(j));
  cJSON_ArrayForEach(c, j)
  {
    if (i >= n)
      fail_msg("extra key %s in %s", c->string, text);
    if (strcmp(c->string, keys[i]) != 0)
      fail_msg("key %zu is %s, want %s in %s", i, c->string, keys[i], text);
    if (values[i]) {
      assert_true(cJSON_IsString(c));
      assert_string_equal(c->valuestring, values[i]);
    }
    i++;
  }
  assert_int_equal(i, n);
  assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "polls")->valuedouble, 3);
  cJSON_Delete(j);
}

static void test_result_succeeded(void **state)
{
  struct dw_event ev;
  struct dw_answer a;
  struct dw_result r;
  char *out = NULL;
  size_t len = 0;
  char why[64];
  (void)state;

  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"7047318856652261676\",\"task_id\":"
                               "\"f1c2a0f138ec492d99d7ab73594158ad\",\"event_id\":\"e-1\","
                               "\"tenant_key\":\"tk\"}",
                               why, sizeof(why)),
                   0);
  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\" 1 \","
           "\"id\":\"deprecated\",\"talent_id\":\"2\",\"job_id\":\"3\",\"job_post_id\":\"4\","
           "\"portal_resume_id\":\"5\",\"user_id\":\"6\\\"\"}}}");
  assert_int_equal(a.kind, DW_ANSWER_SUCCEEDED);
  r.event = &ev;
  r.answer = &a;
  r.polls = 3;
  r.resolved_at_ms = 1795490884123LL;
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  assert_int_equal(len, strlen(out));
  {
    static const char *const keys[] = {
        "website_id", "delivery_task_id", "event_id",         "tenant_key",
        "outcome",    "application_id",   "talent_id",        "job_id",
        "job_post_id", "portal_resume_id", "user_id",         "polls",
        "resolved_at"};
    static const char *const values[] = {"7047318856652261676",
                                         "f1c2a0f138ec492d99d7ab73594158ad",
                                         "e-1",
                                         "tk",
                                         "succeeded",
                                         "1",
                                         "2",
                                         "3",
                                         "4",
                                         "5",
                                         "6\"",
                                         NULL,
                                         "2026-11-24T03:28:04.123Z"};
    expect_result(out, keys, values, DW_ARRAY_SIZE(keys));
  }
  assert_null(strstr(out, "deprecated"));
  assert_null(strchr(out, '\n'));
  free(out);

  /* Without event_id and tenant_key, and with API ids missing: the keys stay, empty. */
  assert_int_equal(parse_event(&ev, "{\"website_id\":\"1\",\"delivery_task_id\":\"t\"}", why,
                               sizeof(why)),
                   0);
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"9\"}}}");
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  {
    static const char *const keys[] = {"website_id", "delivery_task_id", "outcome",
                                       "application_id", "talent_id", "job_id",
                                       "job_post_id", "portal_resume_id", "user_id",
                                       "polls", "resolved_at"};
    static const char *const values[] = {"1", "t", "succeeded", "9", "", "", "", "", "",
                                         NULL, "2026-11-24T03:28:04.123Z"};
    expect_result(out, keys, values, DW_ARRAY_SIZE(keys));
  }
  free(out);
}

static void test_result_failed(void **state)
{
  struct dw_event ev;
  struct dw_answer a;
  struct dw_result r;
  char *out = NULL;
  size_t len;
  char why[64];
  (void)state;

  assert_int_equal(parse_event(&ev,
                               "{\"website_id\":\"12\",\"delivery_task_id\":\"abc\","
                               "\"event_id\":\"e-2\"}",
                               why, sizeof(why)),
                   0);
  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"same application exist\","
           "\"extra_info\":\" 7100825663201052972 \"}}");
  r.event = &ev;
  r.answer = &a;
  r.polls = 3;
  r.resolved_at_ms = 1795490884123LL;
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  {
    static const char *const keys[] = {"website_id", "delivery_task_id", "event_id",
                                       "outcome", "status_msg", "existing_application_id",
                                       "polls", "resolved_at"};
    static const char *const values[] = {"12", "abc", "e-2", "failed",
                                         "same application exist", "7100825663201052972",
                                         NULL, "2026-11-24T03:28:04.123Z"};
    expect_result(out, keys, values, DW_ARRAY_SIZE(keys));
  }
  free(out);

  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"resume unreadable\","
           "\"extra_info\":\"  \"}}");
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  {
    static const char *const keys[] = {"website_id", "delivery_task_id", "event_id", "outcome",
                                       "status_msg", "polls", "resolved_at"};
    static const char *const values[] = {"12", "abc", "e-2", "failed", "resume unreadable",
                                         NULL, "2026-11-24T03:28:04.123Z"};
    expect_result(out, keys, values, DW_ARRAY_SIZE(keys));
  }
  free(out);

  /* Only final answers are results. */
  classify(&a, 200, "{\"code\":0}");
  assert_int_equal(dw_result_encode(&r, &out, &len), DW_EINVAL);
  assert_null(out);
  assert_int_equal(dw_result_encode(NULL, &out, &len), DW_EINVAL);
}

/* Valid UTF-8 in, valid JSON out: every string is escaped by cJSON; a string that is not valid
 * UTF-8 (only a caller filling the structs by hand can have one) is refused. */
static void test_result_utf8(void **state)
{
  struct dw_event ev = {.website_id = "1", .task_id = "t"};
  struct dw_answer a;
  struct dw_result r = {.event = &ev, .answer = &a, .polls = 1, .resolved_at_ms = 0};
  char *out = NULL;
  size_t len = 0;
  cJSON *root;
  (void)state;

  dw_strlcpy(ev.event_id, "e\"\\\n\x01\x7f\xC3\xA9\xF0\x9F\x98\x80</script>", sizeof(ev.event_id));
  classify(&a, 200,
           "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"\\\"q\\\" \\\\ \\n \\u0001 "
           "\xE5\xB7\xB2\xE5\xAD\x98\xE5\x9C\xA8\",\"extra_info\":\"71\"}}");
  assert_int_equal(a.kind, DW_ANSWER_FAILED);
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  assert_true(dw_utf8_valid(out, len));
  assert_null(memchr(out, '\n', len));
  root = cJSON_ParseWithLength(out, len);
  assert_non_null(root);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "event_id")->valuestring,
                      ev.event_id);
  assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "status_msg")->valuestring,
                      a.status_msg);
  cJSON_Delete(root);
  free(out);

  static const char *bad[] = {"\xFF", "a\xC0\xAF", "\xED\xA0\x80", "\xE6\x97"};
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    dw_strlcpy(ev.event_id, bad[i], sizeof(ev.event_id));
    assert_int_equal(dw_result_encode(&r, &out, &len), DW_EINVAL);
    assert_null(out);
    ev.event_id[0] = '\0';
    dw_strlcpy(a.extra_info, bad[i], sizeof(a.extra_info));
    assert_int_equal(dw_result_encode(&r, &out, &len), DW_EINVAL);
    assert_null(out);
    a.extra_info[0] = '\0';
    dw_strlcpy(ev.tenant_key, bad[i], sizeof(ev.tenant_key));
    assert_int_equal(dw_result_encode(&r, &out, &len), DW_EINVAL);
    ev.tenant_key[0] = '\0';
  }
  classify(&a, 200, "{\"code\":0,\"data\":{\"status\":2,\"delivery\":{\"application_id\":\"1\"}}}");
  dw_strlcpy(a.job_id, "\xF5\x80\x80\x80", sizeof(a.job_id));
  assert_int_equal(dw_result_encode(&r, &out, &len), DW_EINVAL);
  assert_null(out);

  /* A failure whose texts were cut and marked encodes, marked. */
  char body[2048], text[1000];
  memset(text, '8', 999);
  text[999] = '\0';
  snprintf(body, sizeof(body), "{\"code\":0,\"data\":{\"status\":3,\"extra_info\":\"%s\"}}", text);
  classify(&a, 200, body);
  assert_int_equal(dw_result_encode(&r, &out, &len), 0);
  assert_non_null(strstr(out, DW_TEXT_CUT_MARK "\""));
  assert_true(dw_utf8_valid(out, len));
  free(out);
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
      cmocka_unit_test(test_answer_pending_shapes),
      cmocka_unit_test(test_answer_succeeded),
      cmocka_unit_test(test_answer_id_too_long),
      cmocka_unit_test(test_answer_failed),
      cmocka_unit_test(test_answer_unknown_status),
      cmocka_unit_test(test_answer_error_codes),
      cmocka_unit_test(test_answer_unusable_bodies),
      cmocka_unit_test(test_answer_long_msg),
      cmocka_unit_test(test_answer_kind_names),
      cmocka_unit_test(test_utf8_valid),
      cmocka_unit_test(test_event_invalid_utf8),
      cmocka_unit_test(test_answer_malformed_shapes),
      cmocka_unit_test(test_answer_failed_long_text),
      cmocka_unit_test(test_answer_invalid_utf8),
      cmocka_unit_test(test_answer_http_status_without_answer),
      cmocka_unit_test(test_token_answer),
      cmocka_unit_test(test_oauth_answer),
      cmocka_unit_test(test_jwt_claims),
      cmocka_unit_test(test_token_request),
      cmocka_unit_test(test_result_succeeded),
      cmocka_unit_test(test_result_failed),
      cmocka_unit_test(test_result_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
