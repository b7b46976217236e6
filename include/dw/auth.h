/* The JSON of the endpoints that grant credentials: the answers of Feishu's auth endpoints
 * (tenant_access_token, app_access_token), of an OAuth 2.0 token endpoint and the claims of a
 * JWT (Kafka OAUTHBEARER), the request bodies the worker sends them, and the app_ticket event
 * Feishu pushes to a store app. Pure: no I/O. Inputs are byte ranges, not C strings. */
#ifndef DW_AUTH_H
#define DW_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Parses the tenant_access_token endpoint's answer: top level code, msg, tenant_access_token,
 * expire (seconds). Returns 0 with token and expire set, or DW_EINVAL with *code (-1 if
 * unparsable) and msg describing the failure. token_size should be >= 4096 (JWT tokens). */
int dw_token_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expire_s, long *code, char *msg, size_t msg_size);

/* The same for any auth endpoint: field names the token ("tenant_access_token" or
 * "app_access_token"). */
int dw_auth_answer_parse(const void *body, size_t len, const char *field, char *token,
                         size_t token_size, int64_t *expire_s, long *code, char *msg,
                         size_t msg_size);

/* An OAuth 2.0 token endpoint's answer to a client-credentials request: the access token and
 * expires_in (-1 when absent). DW_EINVAL with the reason in why (for an error answer, its
 * "error" and "error_description"). */
int dw_oauth_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expires_in, char *why, size_t why_size);

/* The claims of a JWT access token that a Kafka client needs: exp (seconds since the epoch,
 * -1 when absent) and sub ("" when absent). The signature is not checked (the broker does).
 * DW_EINVAL with the reason in why, DW_ENOMEM. */
int dw_jwt_claims_parse(const char *jwt, int64_t *exp, char *sub, size_t sub_size, char *why,
                        size_t why_size);

/* Encodes {"k1":"v1",...} from npairs (name, value) string pairs: the bodies of the store-app
 * auth endpoints. Caller frees *out. */
int dw_json_strings_encode(const char *const *pairs, size_t npairs, char **out, size_t *len);

/* Parses a pushed app_ticket event (v1 callback envelope, 2.0 schema, or the bare event
 * object). Returns 0 with app_id and ticket set, or DW_EINVAL with the reason in why. */
int dw_app_ticket_parse(const void *buf, size_t len, char *app_id, size_t app_id_size,
                        char *ticket, size_t ticket_size, char *why, size_t whylen);

/* Encodes the token request body {"app_id":..,"app_secret":..}. Caller frees *out. */
int dw_token_request_encode(const char *app_id, const char *app_secret, char **out,
                            size_t *len);

#endif
