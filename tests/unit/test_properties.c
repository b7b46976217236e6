/* Unit tests of the Java-style properties parser (separators, comments, trimming,
 * continuations, escapes, bounds and the line of each error) and of the scope lookup in
 * librdkafka's property table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/properties.h"

struct seen {
  char text[4096]; /* "line:name=value;" per entry */
  int stop_at;     /* entry number whose callback fails (0: none) */
  int count;
};

static int on_entry(void *ctx, int line, const char *name, const char *value)
{
  struct seen *s = ctx;
  size_t n = strlen(s->text);
  snprintf(s->text + n, sizeof(s->text) - n, "%d:%s=%s;", line, name, value);
  return ++s->count == s->stop_at ? DW_ERANGE : 0;
}

static int parse(const char *text, struct seen *s, int *at, char *err)
{
  memset(s, 0, sizeof(*s));
  *at = -1;
  err[0] = '\0';
  return dw_properties_parse(text, strlen(text), on_entry, s, at, err, 256);
}

static void test_forms(void **state)
{
  (void)state;
  struct seen s;
  char err[256];
  int at;
  assert_int_equal(parse("# a comment\n"
                         "  ! another\n"
                         "\n"
                         "security.protocol=SASL_SSL\n"
                         "  sasl.mechanism :  SCRAM-SHA-512  \n"
                         "client.id\t=\tworker\r\n"
                         "ssl.ca.location=\n"
                         "url=http://h:1/x=y\n",
                         &s, &at, err),
                   0);
  assert_string_equal(s.text, "4:security.protocol=SASL_SSL;5:sasl.mechanism=SCRAM-SHA-512;"
                              "6:client.id=worker;7:ssl.ca.location=;8:url=http://h:1/x=y;");
}

static void test_continuations_and_escapes(void **state)
{
  (void)state;
  struct seen s;
  char err[256];
  int at;
  assert_int_equal(parse("sasl.oauthbearer.config=a=1 \\\n"
                         "     b=2\n"
                         "path=C:\\\\dir\\\\\n"
                         "tab=x\\ty\n"
                         "odd\\=name\\:x = v\n"
                         "space=\\ kept\\ \n"
                         "uni=\\u00e9\\u4e2d\n"
                         "other=\\q\n"
                         "pair=\\ud83d\\ude00\n"
                         "last=end\\",
                         &s, &at, err),
                   0);
  assert_string_equal(s.text, "1:sasl.oauthbearer.config=a=1 b=2;3:path=C:\\dir\\;"
                              "4:tab=x\ty;5:odd=name:x=v;6:space= kept ;"
                              "7:uni=\xc3\xa9\xe4\xb8\xad;8:other=q;9:pair=\xf0\x9f\x98\x80;"
                              "10:last=end;");
}

static void test_errors(void **state)
{
  (void)state;
  struct seen s;
  char err[256];
  int at;
  assert_int_equal(parse("a=1\nnoseparator\n", &s, &at, err), DW_EINVAL);
  assert_int_equal(at, 2);
  assert_non_null(strstr(err, "expected name=value"));
  assert_int_equal(parse("a=1\n\n= value\n", &s, &at, err), DW_EINVAL);
  assert_int_equal(at, 3);
  assert_non_null(strstr(err, "name before the separator is empty"));
  assert_int_equal(parse("x=\\u12g4\n", &s, &at, err), DW_EINVAL);
  assert_int_equal(at, 1);
  assert_int_equal(parse("x=\\u0000\n", &s, &at, err), DW_EINVAL);
  /* A surrogate outside a pair would be invalid UTF-8. */
  assert_int_equal(parse("x=\\ud83d\n", &s, &at, err), DW_EINVAL);
  assert_non_null(strstr(err, "surrogate only in a pair"));
  assert_int_equal(parse("x=\\ude00\n", &s, &at, err), DW_EINVAL);
  assert_int_equal(parse("x=\\ud83d\\u0041\n", &s, &at, err), DW_EINVAL);
  /* A NUL byte: the line it is on. */
  memset(&s, 0, sizeof(s));
  assert_int_equal(dw_properties_parse("a=1\nb=\0\n", 7, on_entry, &s, &at, err, sizeof(err)),
                   DW_EINVAL);
  assert_int_equal(at, 2);
  assert_non_null(strstr(err, "NUL"));
  /* The callback's error stops the parse and is returned. */
  memset(&s, 0, sizeof(s));
  s.stop_at = 2;
  assert_int_equal(dw_properties_parse("a=1\nb=2\nc=3\n", 12, on_entry, &s, &at, err,
                                       sizeof(err)),
                   DW_ERANGE);
  assert_string_equal(s.text, "1:a=1;2:b=2;");
}

static void test_line_bound(void **state)
{
  (void)state;
  size_t n = DW_PROPERTIES_LINE_MAX + 16;
  char *text = malloc(n + 32);
  struct seen s;
  char err[256];
  int at = 0;
  assert_non_null(text);
  /* A logical line of at most the bound is fine, one byte more is not (also when joined). */
  memcpy(text, "ok=1\nk=", 7);
  memset(text + 7, 'v', DW_PROPERTIES_LINE_MAX - 2);
  text[7 + DW_PROPERTIES_LINE_MAX - 2] = '\0';
  memset(&s, 0, sizeof(s));
  assert_int_equal(dw_properties_parse(text, strlen(text), on_entry, &s, &at, err, sizeof(err)),
                   0);
  assert_int_equal(s.count, 2);
  memcpy(text + 7 + DW_PROPERTIES_LINE_MAX - 2, "\\\nvv", 5);
  memset(&s, 0, sizeof(s));
  assert_int_equal(dw_properties_parse(text, strlen(text), on_entry, &s, &at, err, sizeof(err)),
                   DW_EINVAL);
  assert_int_equal(at, 2);
  assert_non_null(strstr(err, "longer than"));
  free(text);
}

static const char table[] =
    "## Global configuration properties\n\n"
    "Property                                 | C/P | Range | Default | Importance | Desc\n"
    "-----------------------------------------|-----|-------|--------:|------------| ----\n"
    "client.id                                |  *  |       | rdkafka | low        | x\n"
    "fetch.wait.max.ms                        |  C  | 0 .. 300000 | 500 | low | x\n"
    "linger.ms                                |  P  | 0 .. 900000 | 5 | high | x\n"
    "linger                                   |  P  | | | | not a real one\n"
    "## Topic configuration properties\n"
    "acks                                     |  P  | -1 .. 1000 | -1 | high | x\n"
    "auto.offset.reset                        |  C  | smallest | largest | high | x\n";

static void test_scope(void **state)
{
  (void)state;
  assert_int_equal(dw_properties_scope(table, "client.id"), DW_PROPERTIES_BOTH);
  assert_int_equal(dw_properties_scope(table, "fetch.wait.max.ms"), DW_PROPERTIES_CONSUMER);
  assert_int_equal(dw_properties_scope(table, "linger.ms"), DW_PROPERTIES_PRODUCER);
  assert_int_equal(dw_properties_scope(table, "acks"), DW_PROPERTIES_PRODUCER);
  assert_int_equal(dw_properties_scope(table, "auto.offset.reset"), DW_PROPERTIES_CONSUMER);
  assert_int_equal(dw_properties_scope(table, "linger.msec"), DW_PROPERTIES_UNKNOWN);
  assert_int_equal(dw_properties_scope(table, "client"), DW_PROPERTIES_UNKNOWN);
  assert_int_equal(dw_properties_scope(table, "Property"), DW_PROPERTIES_UNKNOWN);
  assert_int_equal(dw_properties_scope(table, ""), DW_PROPERTIES_UNKNOWN);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_forms),
    cmocka_unit_test(test_continuations_and_escapes),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_line_bound),
    cmocka_unit_test(test_scope),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
