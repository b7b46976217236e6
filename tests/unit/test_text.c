/* Unit tests of the scrubber of upstream text: the app secret and held tokens (whole, and cut
 * at the end by an earlier bound), credential-looking text (Bearer, t-/a-/u- tokens, JWTs,
 * secret-named keys), control characters, the bound with its mark at a UTF-8 boundary, and
 * ordinary Feishu messages left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dw/common.h"
#include "dw/text.h"

#include "inputs.h"

#define SECRET "Zq9vL2mXw8R4tYp1"
#define TOKEN "t-g1044ghJUVAIJNLQBK5Q2S6BLCS2TOKENVALUE"

static const char *const secrets[] = {SECRET, TOKEN, NULL, ""};

static const char *scrub(char *buf, size_t size, const char *src)
{
  size_t n = dw_text_scrub(buf, size, src, secrets, DW_ARRAY_SIZE(secrets));
  assert_int_equal(n, strlen(buf));
  assert_true(n < size);
  return buf;
}

static void test_secret_echoed(void **state)
{
  char buf[512];
  (void)state;
  /* The token endpoint quoting the request it refused. */
  scrub(buf, sizeof(buf),
        "app secret invalid\r\nrequest: {\"app_id\":\"cli_a1\",\"app_secret\":\"" SECRET "\"}");
  assert_null(strstr(buf, SECRET));
  assert_null(strchr(buf, '\r'));
  assert_null(strchr(buf, '\n'));
  assert_non_null(strstr(buf, "app secret invalid"));
  assert_non_null(strstr(buf, "\"app_id\":\"cli_a1\""));
  assert_non_null(strstr(buf, DW_TEXT_REDACTED));
  /* Anywhere, any number of times, and inside other words. */
  scrub(buf, sizeof(buf), SECRET " and x" SECRET "y and " SECRET);
  assert_string_equal(buf, "[redacted] and x[redacted]y and [redacted]");
  /* A held token too, wherever it appears. */
  scrub(buf, sizeof(buf), "token=" TOKEN);
  assert_null(strstr(buf, "g1044ghJ"));
}

static void test_secret_cut_by_a_bound(void **state)
{
  char buf[128];
  (void)state;
  /* An earlier bound cut the text inside the secret: its start is still a secret. */
  scrub(buf, sizeof(buf), "echo: Zq9vL2");
  assert_string_equal(buf, "echo: [redacted]");
  /* Fewer than 4 bytes say too little to be a secret. */
  scrub(buf, sizeof(buf), "echo: Zq9");
  assert_string_equal(buf, "echo: Zq9");
}

static void test_credential_patterns(void **state)
{
  char buf[256];
  (void)state;
  scrub(buf, sizeof(buf), "header Authorization: Bearer t-otherTenantToken123456789 rejected");
  assert_string_equal(buf, "header Authorization: Bearer [redacted] rejected");
  scrub(buf, sizeof(buf), "bad a-appAccessToken0123456789abc and u-userTokenABCDEFGHIJKLMNOP");
  assert_string_equal(buf, "bad a-[redacted] and u-[redacted]");
  scrub(buf, sizeof(buf), "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end");
  assert_string_equal(buf, "jwt [redacted] end");
  scrub(buf, sizeof(buf), "{\"tenant_access_token\": \"whatever\", \"expire\": 7200}");
  assert_string_equal(buf, "{\"tenant_access_token\": \"[redacted]\", \"expire\": 7200}");
  scrub(buf, sizeof(buf), "{\\\"app_ticket\\\":\\\"tk-123\\\"}");
  assert_string_equal(buf, "{\\\"app_ticket\\\":\\\"[redacted]\\\"}");
  scrub(buf, sizeof(buf), "url?app_secret=abc&x=1");
  assert_string_equal(buf, "url?app_secret=[redacted]&x=1");
}

static void test_ordinary_text_kept(void **state)
{
  char buf[256];
  static const char *const kept[] = {
      "Invalid token: must start with t-/u-",
      "Invalid access token for authorization. Please make a request with token attached.",
      "request trigger frequency limit",
      "same application exist",
      "app secret invalid",
      "a t-shirt, a-b and u-turn",
      "简历解析失败",
      "",
  };
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(kept); i++)
    assert_string_equal(scrub(buf, sizeof(buf), kept[i]), kept[i]);
  /* NULL secrets and no secrets at all. */
  assert_int_equal(dw_text_scrub(buf, sizeof(buf), "plain", NULL, 0), 5);
  assert_string_equal(buf, "plain");
  assert_int_equal(dw_text_scrub(buf, sizeof(buf), NULL, NULL, 0), 0);
  assert_string_equal(buf, "");
  assert_int_equal(dw_text_scrub(buf, 0, "x", NULL, 0), 0);
}

static void test_control_characters(void **state)
{
  char buf[128];
  (void)state;
  scrub(buf, sizeof(buf), "line\none\r\ttwo\x1b[31mred\x7f");
  assert_string_equal(buf, "line one  two [31mred ");
  /* C1 controls (U+0080..U+009F), e.g. the one-byte CSI U+009B; other characters stay. */
  scrub(buf, sizeof(buf), "a\xC2\x9B" "1mb \xC2\xA9");
  assert_string_equal(buf, "a 1mb \xC2\xA9");
}

static void test_bound(void **state)
{
  char buf[16];
  char big[4096];
  (void)state;
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(dw_text_scrub(buf, sizeof(buf), big, NULL, 0), 15);
  assert_string_equal(buf, "xxxxxxxxxxxx" DW_TEXT_CUT);
  /* Exactly the buffer: no mark. */
  scrub(buf, sizeof(buf), "123456789012345");
  assert_string_equal(buf, "123456789012345");
  /* The cut never splits a character: 3-byte characters, cut before the mark. */
  scrub(buf, sizeof(buf), "ab简历解析失败");
  assert_string_equal(buf, "ab简历解" DW_TEXT_CUT);
  assert_int_equal(strlen(buf), 14);
  /* A buffer too small for the mark still ends on a whole character. */
  char tiny[3];
  assert_int_equal(dw_text_scrub(tiny, sizeof(tiny), "简历", NULL, 0), 0);
  assert_string_equal(tiny, "");
  /* A secret after the bound is never reached, one before it is still replaced. */
  scrub(buf, sizeof(buf), SECRET SECRET SECRET);
  assert_null(strstr(buf, "Zq9v"));
}

/* Invalid UTF-8 (an error answer's msg is decided by its code, not checked) leaves as U+FFFD:
 * every scrubbed text is valid UTF-8; valid characters pass whole. */
static void test_invalid_utf8_replaced(void **state)
{
  char buf[64];
  (void)state;
  scrub(buf, sizeof(buf), "bad \xC3\x28 \xFF end \xE7\xAE");
  assert_string_equal(buf, "bad \xEF\xBF\xBD( \xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD");
  assert_true(dw_utf8_valid(buf, strlen(buf)));
  scrub(buf, sizeof(buf), "简历 ok");
  assert_string_equal(buf, "简历 ok");
}

/* A text that does not fit its buffer is cut visibly, never silently (dw_text_copy and
 * dw_text_format; the poller's dead-letter reasons and the worker's header values use them). */
static void test_copy_and_format_mark_the_cut(void **state)
{
  char buf[16];
  (void)state;
  assert_int_equal(dw_text_copy(buf, sizeof(buf), "fits"), 0);
  assert_string_equal(buf, "fits");
  assert_int_equal(dw_text_copy(buf, sizeof(buf), "123456789012345"), 0);
  assert_string_equal(buf, "123456789012345");
  assert_int_equal(dw_text_copy(buf, sizeof(buf), "1234567890123456"), DW_ERANGE);
  assert_string_equal(buf, "123456789012" DW_TEXT_CUT);
  assert_int_equal(dw_text_copy(buf, sizeof(buf), "ab简历解析失败"), DW_ERANGE);
  assert_string_equal(buf, "ab简历解" DW_TEXT_CUT);
  assert_int_equal(dw_text_copy(buf, sizeof(buf), NULL), 0);
  assert_string_equal(buf, "");
  /* Formatting: the same mark, at a character boundary. */
  assert_int_equal(dw_text_format(buf, sizeof(buf), "%s-%d", "ab", 7), 0);
  assert_string_equal(buf, "ab-7");
  assert_int_equal(dw_text_format(buf, sizeof(buf), "last: %s", "简历解析失败"), DW_ERANGE);
  assert_string_equal(buf, "last: 简历" DW_TEXT_CUT);
  assert_true(dw_utf8_valid(buf, strlen(buf)));
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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secret_echoed),     cmocka_unit_test(test_secret_cut_by_a_bound),
      cmocka_unit_test(test_credential_patterns), cmocka_unit_test(test_ordinary_text_kept),
      cmocka_unit_test(test_control_characters), cmocka_unit_test(test_bound),
      cmocka_unit_test(test_copy_and_format_mark_the_cut),
      cmocka_unit_test(test_invalid_utf8_replaced),
      cmocka_unit_test(test_utf8_valid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
