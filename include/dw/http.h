/* The HTTP client: libcurl's multi interface driven by the libuv loop (one uv_poll per socket,
 * one uv_timer), keep-alive and HTTP/2 where offered; it times each call by the endpoint its
 * caller names (dw_http_metrics). The only module on the loop that sees
 * curl.h (oidc.c uses libcurl's easy interface on librdkafka's background thread). */
#ifndef DW_HTTP_H
#define DW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"
#include "dw/metrics.h"

struct dw_http;

struct dw_http_request {
  const char *method;       /* "GET" or "POST" */
  const char *url;
  const char *authorization; /* "Bearer t-..." or NULL */
  const char *body;          /* POST body (JSON) or NULL */
  size_t body_len;
  long timeout_ms;
  /* The endpoint's name for the call duration histogram ("delivery_task", ...); a string
   * that outlives the request (a literal); NULL = not measured. */
  const char *endpoint;
};

struct dw_http_response {
  int error;                 /* 0, or DW_ETIMEDOUT / DW_EIO / DW_ERANGE / DW_ECANCELED */
  const char *error_text;    /* libcurl's text when error != 0 */
  long status;               /* HTTP status, 0 when no response */
  const char *body;          /* NUL-terminated copy; valid during the callback only */
  size_t body_len;
  const char *log_id;        /* X-Tt-Logid (or X-Request-Id), "" when absent */
  int64_t ratelimit_reset_s; /* x-ogw-ratelimit-reset, -1 when absent */
  double elapsed_s;
};

/* Called once per request, on the loop, never from inside dw_http_send. */
typedef void (*dw_http_cb)(void *arg, const struct dw_http_response *resp);

/* Reads from the feishu section: max_connections (total connections kept to the API),
 * connect_timeout_ms, max_response_bytes (larger bodies fail the transfer with DW_ERANGE) and
 * ca_file (PEM CA bundle for https://, "" = the system's; copied). https:// URLs are always
 * verified (peer certificate against ca_file or the system's bundle, and host name); there is
 * no option to turn that off. A verification failure is a DW_EIO answer whose error_text is
 * libcurl's ("SSL certificate problem: ..."). */
int dw_http_new(struct dw_http **out, uv_loop_t *loop, const struct dw_config_feishu *feishu);

/* Starts a request; the request's strings are copied. cb gets the answer later. */
int dw_http_send(struct dw_http *h, const struct dw_http_request *req, dw_http_cb cb,
                 void *arg);

/* Checks a base URL as libcurl's URL API parses it: NULL when it is an http:// or https:// URL
 * with a host and nothing libcurl would send differently from what it says, else the tail of a
 * message ("must ..."). Refused: other schemes, no host, user or password (credentials do not
 * belong in a URL that is printed and logged), ;options, a query or a fragment, and anything
 * libcurl cannot parse (an unclosed [ of an IPv6 address, a bad port). Pure: no I/O. */
const char *dw_http_url_check(const char *url);

/* Registers dw_api_call_duration_seconds{endpoint} in reg: the time of every answered or
 * failed request that named an endpoint (cancelled ones are not measured), as libcurl counts
 * it (CURLINFO_TOTAL_TIME: name lookup, connect, TLS, request, answer). Once, before requests. */
void dw_http_metrics(struct dw_http *h, struct dw_metrics *reg);

/* libcurl's version ("7.88.1"), for dw_build_info. */
const char *dw_http_version(void);

/* libcurl's version line ("libcurl/7.88.1 OpenSSL/3.0.x zlib/..."), for `version`. */
const char *dw_http_version_line(void);

/* Transfers in progress. */
size_t dw_http_active(const struct dw_http *h);

/* Aborts transfers in progress (their callbacks run with DW_ECANCELED), closes the handles and
 * frees h once libuv has closed them; done(arg) is called then. */
void dw_http_close(struct dw_http *h, void (*done)(void *arg), void *arg);

#endif
