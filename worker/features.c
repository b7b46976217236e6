/* The choice between librdkafka's own OIDC and the worker's, and whether SASL connections
 * re-authenticate, from librdkafka's builtin.features and version (see dw/features.h). No
 * library is called here: kafka.c hands in what the loaded librdkafka reports. */
#include "dw/features.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int dw_features_has(const char *features, const char *name)
{
  size_t n = strlen(name);
  if (!features || !n)
    return 0;
  for (const char *p = features; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0)
      return 1;
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

enum dw_oidc_path dw_features_oidc_path(const char *features, const char *method)
{
  if (!method || strcasecmp(method, "oidc") != 0)
    return DW_OIDC_OFF;
  return dw_features_has(features, "oidc") ? DW_OIDC_LIBRDKAFKA : DW_OIDC_OWN;
}

int dw_features_reauth(int version)
{
  return version >= DW_FEATURES_REAUTH_VERSION;
}

void dw_features_describe(const char *features, int version, const char *method, char *buf,
                          size_t size)
{
  /* Which client fetches the tokens when OIDC is configured, and whether it is. */
  const char *oidc = dw_features_has(features, "oidc")
                         ? "librdkafka itself (builtin feature oidc)"
                         : "the worker's own client (librdkafka has no builtin feature oidc)";
  const char *use = !method ? "available"
                    : dw_features_oidc_path(features, method) == DW_OIDC_OFF ? "not configured"
                                                                             : "in use";
  if (!size)
    return;
  snprintf(buf, size,
           "librdkafka %d.%d.%d: OAUTHBEARER OIDC (sasl.oauthbearer.method=oidc) by %s: %s; "
           "SASL re-authentication (KIP-368): %s",
           (version >> 24) & 0xff, (version >> 16) & 0xff, (version >> 8) & 0xff, oidc, use,
           dw_features_reauth(version) ? "yes" : "no (needs librdkafka 2.2.0)");
}
