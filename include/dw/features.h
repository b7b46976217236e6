/* What the loaded librdkafka offers the worker, decided from its `builtin.features` string and
 * its version number (rd_kafka_version()) alone: pure functions, so the decision is tested
 * without any particular librdkafka build. kafka.c reads the two values and oidc.c follows
 * the path chosen here:
 *
 *   - OIDC (sasl.oauthbearer.method=oidc): a librdkafka whose features list "oidc" (Debian
 *     13's 2.8.0, built with libcurl) fetches and refreshes the tokens itself from the
 *     properties as configured; one without it (Debian 12's 2.0.2) gets them from the worker's
 *     own client (dw/oidc.h).
 *   - SASL re-authentication (KIP-368): librdkafka 2.2.0 and later re-authenticate a
 *     connection before the broker's connections.max.reauth.ms ends it; earlier ones do not,
 *     and such a broker closes their connections when the session expires. */
#ifndef DW_FEATURES_H
#define DW_FEATURES_H

#include <stddef.h>

/* librdkafka's version number of the first release with KIP-368 re-authentication (2.2.0). */
#define DW_FEATURES_REAUTH_VERSION 0x02020000

enum dw_oidc_path {
  DW_OIDC_OFF,        /* sasl.oauthbearer.method is not "oidc" */
  DW_OIDC_LIBRDKAFKA, /* librdkafka's own OIDC */
  DW_OIDC_OWN,        /* the worker's token refresh callback (dw/oidc.h) */
};

/* Whether the comma-separated list `features` (NULL is empty) holds `name` exactly. */
int dw_features_has(const char *features, const char *name);

/* The OIDC path for a sasl.oauthbearer.method value (NULL when not set; compared without
 * case, as librdkafka does) and a librdkafka's builtin.features. */
enum dw_oidc_path dw_features_oidc_path(const char *features, const char *method);

/* Whether a librdkafka of this version number re-authenticates SASL connections. */
int dw_features_reauth(int version);

/* One line for people (check-config, version, the start log), into buf (always
 * NUL-terminated when size > 0): the librdkafka version, which OIDC path a configuration with
 * sasl.oauthbearer.method=oidc uses, whether this one does ("in use", or "not configured"
 * for "" or another method; "available" for NULL, no configuration at all), and whether SASL
 * connections re-authenticate. */
void dw_features_describe(const char *features, int version, const char *method, char *buf,
                          size_t size);

#endif
