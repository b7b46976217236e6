/* Unit tests of the choice between librdkafka's own OIDC and the worker's, from builtin.features
 * strings as librdkafka 2.0.2 (Debian 12) and 2.8.0 (Debian 13) report them, and of the SASL
 * re-authentication version bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dw/features.h"

/* Debian 12's librdkafka 2.0.2 (no libcurl inside) and Debian 13's 2.8.0. */
static const char bookworm[] = "gzip,snappy,ssl,sasl,regex,lz4,sasl_gssapi,sasl_plain,sasl_scram,"
                               "plugins,zstd,sasl_oauthbearer";
static const char trixie[] = "gzip,snappy,ssl,sasl,regex,lz4,sasl_gssapi,sasl_plain,sasl_scram,"
                             "plugins,zstd,sasl_oauthbearer,http,oidc";
#define V2_0_2 0x020002ff
#define V2_8_0 0x020800ff

static void test_has(void **state)
{
  (void)state;
  assert_true(dw_features_has(trixie, "oidc"));
  assert_true(dw_features_has(trixie, "gzip"));
  assert_true(dw_features_has(trixie, "sasl"));
  assert_false(dw_features_has(bookworm, "oidc"));
  assert_false(dw_features_has("sasl_oauthbearer", "sasl")); /* whole names only */
  assert_false(dw_features_has("oidcx,xoidc", "oidc"));
  assert_true(dw_features_has("oidc", "oidc"));
  assert_false(dw_features_has("", "oidc"));
  assert_false(dw_features_has(NULL, "oidc"));
  assert_false(dw_features_has(trixie, ""));
}

static void test_oidc_path(void **state)
{
  (void)state;
  assert_int_equal(dw_features_oidc_path(trixie, "oidc"), DW_OIDC_LIBRDKAFKA);
  assert_int_equal(dw_features_oidc_path(trixie, "OIDC"), DW_OIDC_LIBRDKAFKA);
  assert_int_equal(dw_features_oidc_path(bookworm, "oidc"), DW_OIDC_OWN);
  assert_int_equal(dw_features_oidc_path(NULL, "oidc"), DW_OIDC_OWN);
  assert_int_equal(dw_features_oidc_path(trixie, "default"), DW_OIDC_OFF);
  assert_int_equal(dw_features_oidc_path(bookworm, NULL), DW_OIDC_OFF);
  assert_int_equal(dw_features_oidc_path(trixie, ""), DW_OIDC_OFF);
}

static void test_reauth(void **state)
{
  (void)state;
  assert_false(dw_features_reauth(V2_0_2));
  assert_false(dw_features_reauth(0x020103ff)); /* 2.1.3 */
  assert_true(dw_features_reauth(0x020200ff));  /* 2.2.0 */
  assert_true(dw_features_reauth(V2_8_0));
}

static void test_describe(void **state)
{
  (void)state;
  char line[512];
  dw_features_describe(trixie, V2_8_0, "oidc", line, sizeof(line));
  assert_non_null(strstr(line, "librdkafka 2.8.0"));
  assert_non_null(strstr(line, "by librdkafka itself (builtin feature oidc): in use"));
  assert_non_null(strstr(line, "re-authentication (KIP-368): yes"));
  dw_features_describe(bookworm, V2_0_2, "oidc", line, sizeof(line));
  assert_non_null(strstr(line, "librdkafka 2.0.2"));
  assert_non_null(strstr(line, "by the worker's own client"));
  assert_non_null(strstr(line, ": in use;"));
  assert_non_null(strstr(line, "re-authentication (KIP-368): no (needs librdkafka 2.2.0)"));
  dw_features_describe(bookworm, V2_0_2, "", line, sizeof(line));
  assert_non_null(strstr(line, ": not configured;"));
  dw_features_describe(trixie, V2_8_0, NULL, line, sizeof(line));
  assert_non_null(strstr(line, "by librdkafka itself (builtin feature oidc): available;"));
  /* cut, still terminated */
  dw_features_describe(trixie, V2_8_0, NULL, line, 8);
  assert_string_equal(line, "librdka");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_has),
      cmocka_unit_test(test_oidc_path),
      cmocka_unit_test(test_reauth),
      cmocka_unit_test(test_describe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
