/* OAUTHBEARER tokens from an OpenID Connect token endpoint, for a librdkafka without its own
 * `oidc` feature (see dw/oidc.h). The request is the one librdkafka's own OIDC sends: a POST
 * of grant_type=client_credentials (and scope) with the client id and secret as HTTP Basic
 * credentials. It runs on librdkafka's background thread, so a blocking libcurl easy transfer
 * with a deadline is the simple and right tool; the worker's loop never waits for it. */
#include "dw/oidc.h"

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dw/auth.h"
#include "dw/common.h"
#include "dw/config.h"
#include "dw/features.h"
#include "dw/kafka.h"
#include "dw/log.h"

#define TOKEN_MAX 16384          /* bytes of an access token */
#define ANSWER_MAX (1024 * 1024) /* bytes of a token endpoint's answer */
#define CONNECT_TIMEOUT_MS 10000L
#define TIMEOUT_MS 20000L
#define MAX_EXTENSIONS 16

/* The settings, written once before the first client is created (so before any background
 * thread reads them) and never changed after. */
static struct settings {
  int set;
  char url[1024];
  char client_id[256];
  char client_secret[1024];
  char scope[512];
  char extensions[1024];           /* as configured, to compare */
  char ext_buf[1024];              /* split copy: the pointers below point into it */
  const char *ext[MAX_EXTENSIONS * 2];
  size_t next;                     /* entries in ext (keys and values) */
} settings;

static const char *const properties[] = {
    "sasl.oauthbearer.method",         "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret",  "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.scope",          "sasl.oauthbearer.extensions",
};

int dw_oidc_needed(const struct dw_config *cfg)
{
  char features[1024];
  dw_kafka_builtin_features(features, sizeof(features));
  return dw_features_oidc_path(features, dw_config_property(cfg, "sasl.oauthbearer.method")) ==
         DW_OIDC_OWN;
}

int dw_oidc_is_property(const char *name)
{
  for (size_t i = 0; i < DW_ARRAY_SIZE(properties); i++)
    if (strcmp(name, properties[i]) == 0)
      return 1;
  return 0;
}

/* "k1=v1,k2=v2" into s->ext; keys and values must not be empty, as librdkafka requires. */
static int split_extensions(struct settings *s, char *err, size_t errlen)
{
  s->next = 0;
  if (!s->extensions[0])
    return 0;
  size_t n = strlen(s->extensions);
  if (s->extensions[0] == ',' || s->extensions[n - 1] == ',' || strstr(s->extensions, ",,")) {
    snprintf(err, errlen, "kafka.properties: sasl.oauthbearer.extensions: an empty entry");
    return DW_EINVAL;
  }
  memcpy(s->ext_buf, s->extensions, sizeof(s->ext_buf));
  for (char *save = NULL, *kv = strtok_r(s->ext_buf, ",", &save); kv;
       kv = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(kv, '=');
    int key_ok = eq && eq > kv && strncmp(kv, "auth=", 5) != 0;
    for (const char *k = kv; key_ok && k < eq; k++) /* RFC 7628: key = 1*(ALPHA) */
      key_ok = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z');
    if (!key_ok || !eq[1] || s->next == DW_ARRAY_SIZE(s->ext)) {
      snprintf(err, errlen,
               "kafka.properties: sasl.oauthbearer.extensions: want up to %d key=value pairs "
               "separated by commas, keys of letters only and not \"auth\"",
               MAX_EXTENSIONS);
      return DW_EINVAL;
    }
    *eq = '\0';
    s->ext[s->next++] = kv;
    s->ext[s->next++] = eq + 1;
  }
  return 0;
}

static int copy_property(const struct dw_config *cfg, const char *name, char *dst, size_t size,
                         int required, char *err, size_t errlen)
{
  const char *v = dw_config_property(cfg, name);
  dst[0] = '\0';
  if (!v || !v[0]) {
    if (!required)
      return 0;
    snprintf(err, errlen,
             "kafka.properties: sasl.oauthbearer.method=oidc needs %s (with "
             "sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret and "
             "sasl.oauthbearer.token.endpoint.url)",
             name);
    return DW_EINVAL;
  }
  if (dw_strlcpy(dst, v, size) < 0) {
    snprintf(err, errlen, "kafka.properties: %s: longer than %zu bytes", name, size - 1);
    return DW_EINVAL;
  }
  return 0;
}

static void on_refresh(rd_kafka_t *rk, const char *oauthbearer_config, void *opaque);

int dw_oidc_configure(rd_kafka_conf_t *conf, const struct dw_config *cfg, char *err,
                      size_t errlen)
{
  struct settings s;
  memset(&s, 0, sizeof(s));
  if (copy_property(cfg, "sasl.oauthbearer.token.endpoint.url", s.url, sizeof(s.url), 1, err,
                    errlen) < 0 ||
      copy_property(cfg, "sasl.oauthbearer.client.id", s.client_id, sizeof(s.client_id), 1, err,
                    errlen) < 0 ||
      copy_property(cfg, "sasl.oauthbearer.client.secret", s.client_secret,
                    sizeof(s.client_secret), 1, err, errlen) < 0 ||
      copy_property(cfg, "sasl.oauthbearer.scope", s.scope, sizeof(s.scope), 0, err, errlen) <
          0 ||
      copy_property(cfg, "sasl.oauthbearer.extensions", s.extensions, sizeof(s.extensions), 0,
                    err, errlen) < 0)
    goto fail;
  size_t scheme = strncasecmp(s.url, "https://", 8) == 0  ? 8
                  : strncasecmp(s.url, "http://", 7) == 0 ? 7
                                                          : 0;
  if (!scheme) {
    snprintf(err, errlen,
             "kafka.properties: sasl.oauthbearer.token.endpoint.url: want an http:// or "
             "https:// URL");
    goto fail;
  }
  /* The URL is in every log line about tokens: credentials in it would be too. */
  const char *authority_end = s.url + scheme + strcspn(s.url + scheme, "/?#");
  const char *at = memchr(s.url + scheme, '@', (size_t)(authority_end - (s.url + scheme)));
  if (at) {
    snprintf(err, errlen,
             "kafka.properties: sasl.oauthbearer.token.endpoint.url: no user or password in "
             "the URL; they go in sasl.oauthbearer.client.id and client.secret");
    goto fail;
  }
  const char *mechanism = dw_config_property(cfg, "sasl.mechanism");
  if (!mechanism || strcmp(mechanism, "OAUTHBEARER") != 0) {
    snprintf(err, errlen,
             "kafka.properties: sasl.oauthbearer.method=oidc needs sasl.mechanism=OAUTHBEARER");
    goto fail;
  }
  const char *unsecure = dw_config_property(cfg, "enable.sasl.oauthbearer.unsecure.jwt");
  if (unsecure && strcasecmp(unsecure, "true") == 0) {
    snprintf(err, errlen,
             "kafka.properties: enable.sasl.oauthbearer.unsecure.jwt and "
             "sasl.oauthbearer.method=oidc exclude each other");
    goto fail;
  }
  if (split_extensions(&s, err, errlen) < 0)
    goto fail;
  s.set = 1;
  if (settings.set) {
    /* Written once: the background threads of clients made earlier may be reading them. */
    int same = strcmp(s.url, settings.url) == 0 && strcmp(s.client_id, settings.client_id) == 0 &&
               strcmp(s.client_secret, settings.client_secret) == 0 &&
               strcmp(s.scope, settings.scope) == 0 &&
               strcmp(s.extensions, settings.extensions) == 0;
    explicit_bzero(&s, sizeof(s));
    if (!same) {
      snprintf(err, errlen, "kafka.properties: a second, different OIDC configuration in one "
                            "process");
      return DW_EINVAL;
    }
  } else {
    settings = s;
    /* ext points into s.ext_buf: point it into the copy */
    for (size_t i = 0; i < settings.next; i++)
      settings.ext[i] = settings.ext_buf + (s.ext[i] - s.ext_buf);
    explicit_bzero(&s, sizeof(s));
  }
  /* Here, on the main thread, before any client's background thread could do it first. */
  static int curl_ready;
  if (!curl_ready && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(err, errlen, "OAUTHBEARER: cannot initialise libcurl");
    return DW_EIO;
  }
  curl_ready = 1;
  rd_kafka_conf_set_oauthbearer_token_refresh_cb(conf, on_refresh);
  rd_kafka_conf_enable_sasl_queue(conf, 1);
  return 0;
fail:
  explicit_bzero(&s, sizeof(s));
  return DW_EINVAL;
}

int dw_oidc_started(rd_kafka_t *rk, char *err, size_t errlen)
{
  if (!settings.set)
    return 0;
  rd_kafka_error_t *e = rd_kafka_sasl_background_callbacks_enable(rk);
  if (!e)
    return 0;
  /* Nobody would ever fetch a token: the client would wait for one forever. */
  snprintf(err, errlen, "OAUTHBEARER: cannot serve token refreshes on librdkafka's background "
                        "thread: %s", rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
  return DW_EIO;
}

/* ---- the token request ---- */

struct answer {
  char *buf;
  size_t len;
  int too_long;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
  struct answer *a = arg;
  size_t add = size * n;
  if (a->len + add > ANSWER_MAX) {
    a->too_long = 1;
    return 0; /* ends the transfer */
  }
  char *grown = realloc(a->buf, a->len + add + 1);
  if (!grown)
    return 0;
  a->buf = grown;
  memcpy(a->buf + a->len, data, add);
  a->len += add;
  a->buf[a->len] = '\0';
  return add;
}

/* The start of an error answer for the log: printable ASCII only, at most 160 bytes. */
static void excerpt(const struct answer *a, char *out, size_t size)
{
  size_t n = 0;
  for (size_t i = 0; a->buf && i < a->len && n + 1 < size && n < 160; i++)
    out[n++] = a->buf[i] >= 0x20 && a->buf[i] < 0x7f ? a->buf[i] : '?';
  out[n] = '\0';
}

/* POSTs the client-credentials request; 0 with the answer's body in a, or DW_EIO with why. */
static int request(const struct settings *s, struct answer *a, char *why, size_t whylen)
{
  static const char grant[] = "grant_type=client_credentials";
  char curl_err[CURL_ERROR_SIZE] = "", *body = NULL, *scope = NULL;
  long status = 0;
  int rc = DW_EIO;
  CURL *e = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
  /* The scope form-encoded (RFC 6749 appendix B): spaces between scopes become %20. */
  if (e && s->scope[0])
    scope = curl_easy_escape(e, s->scope, 0);
  size_t size = sizeof(grant) + (scope ? strlen("&scope=") + strlen(scope) : 0);
  if (!e || !headers || (s->scope[0] && !scope) || !(body = malloc(size))) {
    snprintf(why, whylen, "out of memory");
    goto out;
  }
  snprintf(body, size, "%s%s%s", grant, scope ? "&scope=" : "", scope ? scope : "");
  curl_easy_setopt(e, CURLOPT_URL, s->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
  curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
  curl_easy_setopt(e, CURLOPT_USERNAME, s->client_id);
  curl_easy_setopt(e, CURLOPT_PASSWORD, s->client_secret);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_err);
  CURLcode cc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (a->too_long) {
    snprintf(why, whylen, "%s answered more than %d bytes", s->url, ANSWER_MAX);
  } else if (cc != CURLE_OK) {
    snprintf(why, whylen, "%s unreachable: %s", s->url,
             curl_err[0] ? curl_err : curl_easy_strerror(cc));
  } else if (status < 200 || status > 299) {
    char text[200], reason[256];
    int64_t ignored;
    char token[8];
    /* An OAuth error answer names its error; anything else is shown in part. */
    if (dw_oauth_answer_parse(a->buf, a->len, token, sizeof(token), &ignored, reason,
                              sizeof(reason)) < 0 &&
        strncmp(reason, "error ", 6) == 0) {
      snprintf(why, whylen, "%s answered HTTP %ld, %s", s->url, status, reason);
    } else {
      excerpt(a, text, sizeof(text));
      snprintf(why, whylen, "%s answered HTTP %ld: %s", s->url, status, text);
    }
  } else {
    rc = 0;
  }
out:
  curl_slist_free_all(headers);
  curl_free(scope);
  free(body);
  if (e)
    curl_easy_cleanup(e);
  return rc;
}

/* Called by librdkafka on its background thread when a token is needed. */
static void on_refresh(rd_kafka_t *rk, const char *oauthbearer_config, void *opaque)
{
  (void)oauthbearer_config;
  (void)opaque;
  const struct settings *s = &settings;
  struct answer a = {0};
  /* s->url is at most 1023 bytes; %.1023s says so to the compiler's truncation check. */
  char why[2048] = "", parse_why[256], errstr[512], sub[256];
  char *token = malloc(TOKEN_MAX);
  int64_t expires_in, exp;
  int64_t now_ms = dw_wallclock_ms();
  if (!token) {
    snprintf(why, sizeof(why), "out of memory");
  } else if (request(s, &a, why, sizeof(why)) < 0) {
    /* why is set */
  } else if (dw_oauth_answer_parse(a.buf, a.len, token, TOKEN_MAX, &expires_in, parse_why,
                                   sizeof(parse_why)) < 0) {
    snprintf(why, sizeof(why), "%.1023s: %s", s->url, parse_why);
  } else if (dw_jwt_claims_parse(token, &exp, sub, sizeof(sub), parse_why, sizeof(parse_why)) <
             0) {
    snprintf(why, sizeof(why), "%.1023s: %s", s->url, parse_why[0] ? parse_why : "out of memory");
  } else {
    /* exp from the token itself, as librdkafka's own OIDC does; expires_in when it has none. */
    int64_t expiry_ms = exp > 0 ? exp * 1000 : expires_in > 0 ? now_ms + expires_in * 1000 : -1;
    const char *principal = sub[0] ? sub : s->client_id;
    if (expiry_ms < 0)
      snprintf(why, sizeof(why), "%.1023s: the token has no exp claim and the answer no expires_in",
               s->url);
    else if (expiry_ms <= now_ms)
      snprintf(why, sizeof(why), "%.1023s: the token expired %lld s ago (clock skew?)", s->url,
               (long long)((now_ms - expiry_ms) / 1000));
    else if (rd_kafka_oauthbearer_set_token(rk, token, expiry_ms, principal,
                                            (const char **)s->ext, s->next, errstr,
                                            sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR)
      snprintf(why, sizeof(why), "librdkafka refused the token of %.1023s: %s", s->url, errstr);
    else
      dw_info("OAUTHBEARER token for %s from %s, expires in %lld s (%s)", principal, s->url,
              (long long)((expiry_ms - now_ms) / 1000), rd_kafka_name(rk));
  }
  if (why[0]) {
    dw_warn("OAUTHBEARER: cannot get a token: %s; librdkafka retries (%s)", why,
            rd_kafka_name(rk));
    rd_kafka_oauthbearer_set_token_failure(rk, why);
  }
  if (token)
    explicit_bzero(token, TOKEN_MAX);
  if (a.buf)
    explicit_bzero(a.buf, a.len);
  free(token);
  free(a.buf);
}
