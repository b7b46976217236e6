/* Unit tests of the result record: a success and a failure encoded with their keys in order
 * (parsed back), optional keys left out, and only valid UTF-8 ever written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/result.h"
#include "dw/text.h"

#include "inputs.h"

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

/* The input's headers ride on the result in order; one too large is skipped (a later, small
 * traceparent still goes), and the count is capped. */
static void test_result_headers(void **state)
{
  (void)state;
  static char big[DW_RESULT_MAX_HEADER_BYTES];
  memset(big, 'x', sizeof(big));
  const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  struct dw_header in[DW_RESULT_MAX_HEADERS + 8] = {
      {.name = "tenant", .value = "t1", .len = 2},
      {.name = "blob", .value = big, .len = sizeof(big)},
      {.name = "empty", .value = NULL, .len = 0},
      {.name = "traceparent", .value = tp, .len = strlen(tp)},
  };
  struct dw_header out[DW_RESULT_MAX_HEADERS + 8];
  size_t n = dw_result_headers(in, 4, out, DW_ARRAY_SIZE(out));
  assert_int_equal(n, 3);
  assert_string_equal(out[0].name, "tenant");
  assert_string_equal(out[1].name, "empty");
  assert_null(out[1].value);
  assert_string_equal(out[2].name, "traceparent");
  assert_memory_equal(out[2].value, tp, strlen(tp));

  for (size_t i = 0; i < DW_ARRAY_SIZE(in); i++)
    in[i] = (struct dw_header){.name = "h", .value = "v", .len = 1};
  assert_int_equal(dw_result_headers(in, DW_ARRAY_SIZE(in), out, DW_ARRAY_SIZE(out)),
                   DW_RESULT_MAX_HEADERS);
  assert_int_equal(dw_result_headers(in, DW_ARRAY_SIZE(in), out, 2), 2);
  assert_int_equal(dw_result_headers(in, 0, out, DW_ARRAY_SIZE(out)), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_result_succeeded),
      cmocka_unit_test(test_result_failed),
      cmocka_unit_test(test_result_utf8),
      cmocka_unit_test(test_result_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
