/* Unit tests of the answer of the delivery-task endpoint: classification of every documented
 * answer shape and error code, bodies that cannot be used, HTTP statuses without an answer,
 * malformed data, long and invalid texts. Bodies are passed as heap copies of exactly their
 * length, without a NUL, so AddressSanitizer catches a read past len. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/answer.h"
#include "dw/common.h"
#include "dw/json.h"
#include "dw/text.h"

#include "inputs.h"

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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_answer_pending_shapes),
      cmocka_unit_test(test_answer_succeeded),
      cmocka_unit_test(test_answer_id_too_long),
      cmocka_unit_test(test_answer_failed),
      cmocka_unit_test(test_answer_unknown_status),
      cmocka_unit_test(test_answer_error_codes),
      cmocka_unit_test(test_answer_unusable_bodies),
      cmocka_unit_test(test_answer_long_msg),
      cmocka_unit_test(test_answer_kind_names),
      cmocka_unit_test(test_answer_malformed_shapes),
      cmocka_unit_test(test_answer_failed_long_text),
      cmocka_unit_test(test_answer_invalid_utf8),
      cmocka_unit_test(test_answer_http_status_without_answer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
