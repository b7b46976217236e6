/* The JSON of the endpoints that grant credentials: what the token manager (token.c) reads
 * from Feishu's auth endpoints and sends them, what the store app's ticket source (ticket.c)
 * reads from a pushed app_ticket event, and what the Kafka OAUTHBEARER token source (oidc.c)
 * reads from an OAuth 2.0 token endpoint and a JWT. A token read here goes into a header, so it
 * is refused unless it is printable ASCII without spaces. Every input is a byte range that is
 * not NUL-terminated; nothing here reads past its length. */
#include "dw/auth.h"

#include "dw/common.h"
#include "dw/json.h"
#include "dw/text.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int dw_auth_answer_parse(const void *body, size_t len, const char *field, char *token,
                         size_t token_size, int64_t *expire_s, long *code, char *msg,
                         size_t msg_size)
{
  const char *text = body;
  cJSON *root = NULL;
  const cJSON *item;
  int64_t c, expire;
  int trailing, rc = DW_EINVAL;
  size_t n;

  if (code)
    *code = -1;
  dw_text_reason(msg, msg_size, "%s", "");
  if (!token || token_size == 0 || !expire_s) {
    dw_text_reason(msg, msg_size, "no buffer for the token");
    return DW_EINVAL;
  }
  token[0] = '\0';
  if (!text || len == 0) {
    dw_text_reason(msg, msg_size, "empty token answer");
    goto out;
  }
  if (dw_json_scan(text, len) != DW_JSON_OK || !(root = dw_json_parse(text, len, &trailing)) ||
      !cJSON_IsObject(root)) {
    dw_text_reason(msg, msg_size, "unparsable token answer");
    goto out;
  }
  if (!dw_json_int(cJSON_GetObjectItemCaseSensitive(root, "code"), &c) || c == -1 ||
      c < LONG_MIN || c > LONG_MAX) { /* -1: the unparsable answer of *code */
    dw_text_reason(msg, msg_size, "token answer without an integer code");
    goto out;
  }
  if (code)
    *code = (long)c;
  if (msg && msg_size > 0)
    dw_json_copy_text(msg, msg_size, cJSON_GetObjectItemCaseSensitive(root, "msg"));
  if (c != 0) {
    if (msg && msg_size > 0 && msg[0] == '\0')
      dw_text_reason(msg, msg_size, "token endpoint answered code %lld", (long long)c);
    goto out;
  }

  item = cJSON_GetObjectItemCaseSensitive(root, field);
  if (!cJSON_IsString(item) || !item->valuestring || item->valuestring[0] == '\0') {
    dw_text_reason(msg, msg_size, "token answer without %s", field);
    goto out;
  }
  n = strlen(item->valuestring);
  if (n >= token_size) {
    dw_text_reason(msg, msg_size, "%s longer than %zu bytes", field, token_size - 1);
    goto out;
  }
  /* The token goes into an Authorization header: no spaces, CR, LF or other bytes that could
   * end or split it. */
  if (!dw_text_graphic_ascii(item->valuestring)) {
    dw_text_reason(msg, msg_size, "%s has characters not allowed in a header", field);
    goto out;
  }
  if (!dw_json_int(cJSON_GetObjectItemCaseSensitive(root, "expire"), &expire) || expire <= 0) {
    dw_text_reason(msg, msg_size, "token answer without a positive integer expire");
    goto out;
  }
  memcpy(token, item->valuestring, n + 1);
  *expire_s = expire;
  rc = 0;

out:
  cJSON_Delete(root);
  return rc;
}

/* An OAuth 2.0 token answer (RFC 6749 section 5.1) or error (5.2). */
int dw_oauth_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expires_in, char *why, size_t why_size)
{
  const char *text = body;
  cJSON *root = NULL;
  const cJSON *item;
  int trailing, rc = DW_EINVAL;
  size_t n;

  dw_text_reason(why, why_size, "%s", "");
  if (!token || token_size == 0 || !expires_in) {
    dw_text_reason(why, why_size, "no buffer for the token");
    return DW_EINVAL;
  }
  token[0] = '\0';
  *expires_in = -1;
  if (!text || len == 0 || dw_json_scan(text, len) != DW_JSON_OK ||
      !(root = dw_json_parse(text, len, &trailing)) || !cJSON_IsObject(root)) {
    dw_text_reason(why, why_size, "the answer is not a JSON object");
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (cJSON_IsString(item) && item->valuestring) {
    char code[64] = "", desc[200] = "";
    dw_json_copy_text(code, sizeof(code), item);
    dw_json_copy_text(desc, sizeof(desc),
                      cJSON_GetObjectItemCaseSensitive(root, "error_description"));
    dw_text_reason(why, why_size, "error %s%s%s", code, desc[0] ? ": " : "", desc);
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "access_token");
  if (!cJSON_IsString(item) || !item->valuestring || item->valuestring[0] == '\0') {
    dw_text_reason(why, why_size, "no access_token in the answer");
    goto out;
  }
  n = strlen(item->valuestring);
  if (n >= token_size) {
    dw_text_reason(why, why_size, "access_token longer than %zu bytes", token_size - 1);
    goto out;
  }
  if (!dw_text_graphic_ascii(item->valuestring)) {
    dw_text_reason(why, why_size, "access_token has characters not allowed in a token");
    goto out;
  }
  int64_t e;
  if (dw_json_int(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), &e) && e > 0 &&
      e < 1000000000) /* under 32 years: larger ones would overflow as microseconds */
    *expires_in = e;
  memcpy(token, item->valuestring, n + 1);
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

/* The payload of a JWT in compact form (RFC 7519): the second of three dot-separated base64url
 * parts. The signature is the broker's to check, not ours. */
int dw_jwt_claims_parse(const char *jwt, int64_t *exp, char *sub, size_t sub_size, char *why,
                        size_t why_size)
{
  const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  cJSON *root = NULL;
  uint8_t *payload = NULL;
  int trailing, n, rc = DW_EINVAL;
  *exp = -1;
  if (sub_size)
    sub[0] = '\0';
  dw_text_reason(why, why_size, "%s", "");
  if (!dot2 || strchr(dot2 + 1, '.')) {
    dw_text_reason(why, why_size, "the access_token is not a JWT (three dot-separated parts)");
    return DW_EINVAL;
  }
  size_t len = (size_t)(dot2 - dot1 - 1);
  if (!(payload = malloc(len * 3 / 4 + 1)))
    return DW_ENOMEM;
  if ((n = dw_base64url_decode(dot1 + 1, len, payload)) < 0 ||
      dw_json_scan((const char *)payload, (size_t)n) != DW_JSON_OK ||
      !(root = dw_json_parse((const char *)payload, (size_t)n, &trailing)) ||
      !cJSON_IsObject(root)) {
    dw_text_reason(why, why_size, "the JWT's payload is not base64url of a JSON object");
    goto out;
  }
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "exp");
  if (cJSON_IsNumber(item) && item->valuedouble > 0 && item->valuedouble < 1e11) /* year 5138 */
    *exp = (int64_t)item->valuedouble;
  else if (item) {
    dw_text_reason(why, why_size, "the JWT's exp claim is not a positive number");
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "sub");
  if (cJSON_IsString(item) && item->valuestring)
    dw_json_copy_text(sub, sub_size, item);
  rc = 0;
out:
  cJSON_Delete(root);
  free(payload);
  return rc;
}

int dw_token_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expire_s, long *code, char *msg, size_t msg_size)
{
  return dw_auth_answer_parse(body, len, "tenant_access_token", token, token_size, expire_s,
                              code, msg, msg_size);
}

int dw_token_request_encode(const char *app_id, const char *app_secret, char **out,
                            size_t *len)
{
  cJSON *root = NULL;
  int rc = DW_ENOMEM;

  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!app_id || !app_secret || !out) {
    rc = DW_EINVAL;
    goto out;
  }
  root = cJSON_CreateObject();
  if (!root || !cJSON_AddStringToObject(root, "app_id", app_id) ||
      !cJSON_AddStringToObject(root, "app_secret", app_secret))
    goto out;
  rc = dw_json_print(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

/* -------------------------------------------------------------------------------------------
 * Store apps: request bodies of the auth endpoints and the pushed app_ticket event */

int dw_json_strings_encode(const char *const *pairs, size_t npairs, char **out, size_t *len)
{
  cJSON *root = cJSON_CreateObject();
  int rc = DW_ENOMEM;

  *out = NULL;
  if (len)
    *len = 0;
  if (!root)
    goto out;
  for (size_t i = 0; i < npairs; i++)
    if (!pairs[2 * i] || !pairs[2 * i + 1] ||
        !cJSON_AddStringToObject(root, pairs[2 * i], pairs[2 * i + 1]))
      goto out;
  rc = dw_json_print(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

/* Copies a non-empty string member of obj that fits and is printable ASCII (it ends up in a
 * JSON body we send, never in a header, but a ticket with control bytes is not a ticket). */
static int ticket_field(const cJSON *obj, const char *name, char *dst, size_t size)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsString(item) || !item->valuestring || !item->valuestring[0] ||
      strlen(item->valuestring) >= size || !dw_text_graphic_ascii(item->valuestring))
    return 0;
  memcpy(dst, item->valuestring, strlen(item->valuestring) + 1);
  return 1;
}

/* Accepts what Feishu pushes (the v1 callback {"type":"event_callback","event":{"type":
 * "app_ticket",...}}, the 2.0 schema {"schema":"2.0","header":{"event_type":"app_ticket"},
 * "event":{...}}) and the bare inner object. */
int dw_app_ticket_parse(const void *buf, size_t len, char *app_id, size_t app_id_size,
                        char *ticket, size_t ticket_size, char *why, size_t whylen)
{
  const char *text = buf;
  cJSON *root = NULL;
  const cJSON *ev, *type, *header;
  int trailing, rc = DW_EINVAL;

  app_id[0] = ticket[0] = '\0';
  dw_text_reason(why, whylen, "%s", "");
  if (!text || len == 0 || dw_json_scan(text, len) != DW_JSON_OK ||
      !(root = dw_json_parse(text, len, &trailing)) || !cJSON_IsObject(root)) {
    dw_text_reason(why, whylen, "not a JSON object");
    goto out;
  }
  if (cJSON_GetObjectItemCaseSensitive(root, "encrypt")) {
    dw_text_reason(why, whylen,
                   "encrypted event: push it decrypted (no encrypt key is configured)");
    goto out;
  }
  ev = cJSON_GetObjectItemCaseSensitive(root, "event");
  if (!cJSON_IsObject(ev))
    ev = root;
  header = cJSON_GetObjectItemCaseSensitive(root, "header");
  type = cJSON_IsObject(header) ? cJSON_GetObjectItemCaseSensitive(header, "event_type")
                                : cJSON_GetObjectItemCaseSensitive(ev, "type");
  if (!cJSON_IsString(type) || !type->valuestring || strcmp(type->valuestring, "app_ticket")) {
    dw_text_reason(why, whylen, "not an app_ticket event");
    goto out;
  }
  if (!ticket_field(ev, "app_id", app_id, app_id_size) ||
      !ticket_field(ev, "app_ticket", ticket, ticket_size)) {
    dw_text_reason(why, whylen, "app_ticket event without a usable app_id and app_ticket");
    app_id[0] = ticket[0] = '\0';
    goto out;
  }
  rc = 0;

out:
  cJSON_Delete(root);
  return rc;
}
