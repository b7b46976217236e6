/* OAUTHBEARER tokens for Kafka from an OpenID Connect token endpoint (the client-credentials
 * grant), configured with librdkafka's own property names:
 *
 *   sasl.mechanism=OAUTHBEARER, sasl.oauthbearer.method=oidc, sasl.oauthbearer.client.id,
 *   sasl.oauthbearer.client.secret, sasl.oauthbearer.token.endpoint.url and optionally
 *   sasl.oauthbearer.scope and sasl.oauthbearer.extensions (key=value,...).
 *
 * A librdkafka built with its `oidc` feature does this itself and gets the properties as they
 * are. One built without it (Debian 12's 2.0.2 has no libcurl inside, and refuses
 * sasl.oauthbearer.method) gets them from here instead: the properties stay out of
 * librdkafka's configuration, and a token refresh callback fetches the token with libcurl on
 * librdkafka's background thread (never on the worker's loop), reads exp and sub from the
 * JWT, and hands it over; librdkafka calls it again at 80% of the token's lifetime and, after
 * a failure, keeps retrying. Process-wide: one Kafka configuration per process. */
#ifndef DW_OIDC_H
#define DW_OIDC_H

#include <stddef.h>

struct dw_config;
struct rd_kafka_conf_s;
struct rd_kafka_s;

/* Whether this process fetches the tokens for cfg itself (sasl.oauthbearer.method is "oidc"
 * and the librdkafka loaded lacks the feature: dw_features_oidc_path of dw/features.h). */
int dw_oidc_needed(const struct dw_config *cfg);

/* Whether a kafka.properties name is one of the OIDC properties taken here. */
int dw_oidc_is_property(const char *name);

/* Checks the OIDC properties of cfg and installs the token refresh callback on conf. 0, or
 * DW_EINVAL with the reason (never a secret) in err. */
int dw_oidc_configure(struct rd_kafka_conf_s *conf, const struct dw_config *cfg, char *err,
                      size_t errlen);

/* After rd_kafka_new with a conf from dw_oidc_configure: refresh callbacks go to librdkafka's
 * background thread. 0 (also for any other client), or DW_EIO with the reason in err: the
 * client would never get a token, destroy it. */
int dw_oidc_started(struct rd_kafka_s *rk, char *err, size_t errlen);

#endif
