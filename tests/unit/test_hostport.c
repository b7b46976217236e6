/* Unit tests of the HOST:PORT parser every address goes through: names, IPv4, IPv6 in
 * brackets, an empty host, and each rule a text can break. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dw/hostport.h"

static void accepts(const char *text, const char *host, unsigned port, int bracketed)
{
  struct dw_hostport hp;
  assert_int_equal(dw_hostport_parse(text, &hp), DW_HOSTPORT_OK);
  assert_string_equal(hp.host, host);
  assert_int_equal(hp.port, port);
  assert_int_equal(hp.bracketed, bracketed);
}

static enum dw_hostport_error parse(const char *text)
{
  struct dw_hostport hp;
  return dw_hostport_parse(text, &hp);
}

static void test_accepts(void **state)
{
  (void)state;
  accepts("0.0.0.0:9464", "0.0.0.0", 9464, 0);
  accepts("localhost:0", "localhost", 0, 0);
  accepts("redis-0.redis.svc:6379", "redis-0.redis.svc", 6379, 0);
  accepts("[::]:9464", "::", 9464, 1);
  accepts("[fd00::1]:65535", "fd00::1", 65535, 1);
  accepts(":8080", "", 8080, 0);
  accepts("h:00080", "h", 80, 0);
  accepts("[fe80::1%eth0]:9464", "fe80::1%eth0", 9464, 1);
  accepts("worker_1:9464", "worker_1", 9464, 0);
}

static void test_refuses(void **state)
{
  (void)state;
  char long_host[300];
  memset(long_host, 'a', 256);
  strcpy(long_host + 256, ":80");
  assert_int_equal(parse(NULL), DW_HOSTPORT_FORM);
  assert_int_equal(parse("9464"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("[::1:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("[::1]80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("[]:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("a b:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("user@h:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("h/x:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("h]:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("h\t:80"), DW_HOSTPORT_FORM);
  /* nothing that would change a URL the host is put in */
  assert_int_equal(parse("127.0.0.1#:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("x?y:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("x\\y:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("x%41:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse("[::1/64]:80"), DW_HOSTPORT_FORM);
  assert_int_equal(parse(long_host), DW_HOSTPORT_FORM);
  long_host[255] = ':';
  long_host[256] = '\0';
  assert_int_equal(parse(long_host), DW_HOSTPORT_PORT); /* 255 characters is a host */
  assert_int_equal(parse("::1:9464"), DW_HOSTPORT_V6);
  assert_int_equal(parse("h:"), DW_HOSTPORT_PORT);
  assert_int_equal(parse("h:80x"), DW_HOSTPORT_PORT);
  assert_int_equal(parse("h:-1"), DW_HOSTPORT_PORT);
  assert_int_equal(parse("h:65536"), DW_HOSTPORT_PORT);
  assert_int_equal(parse("h:123456789012345678901234567890"), DW_HOSTPORT_PORT);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts),
      cmocka_unit_test(test_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
