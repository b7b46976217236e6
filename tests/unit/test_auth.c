/* Unit tests of the JSON of the credential endpoints: the token endpoint's answer, an OAuth 2.0
 * answer, a JWT's claims and the token request body. Inputs are passed as heap copies of exactly
 * their length where the parser takes a length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/auth.h"
#include "dw/common.h"

#include "inputs.h"

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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_answer),
      cmocka_unit_test(test_oauth_answer),
      cmocka_unit_test(test_jwt_claims),
      cmocka_unit_test(test_token_request),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
