/* The HTTP client of the poller and the token manager. libcurl's multi interface runs on the
 * libuv loop as in curl's multi-uv example: libcurl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to call it back (CURLMOPT_TIMERFUNCTION); we watch them
 * with uv_poll and uv_timer and hand events back with curl_multi_socket_action. Finished
 * transfers are collected with curl_multi_info_read after each action, never from inside a
 * curl callback. Response bodies are capped; X-Tt-Logid and x-ogw-ratelimit-reset are kept.
 * TLS: every https:// transfer verifies the peer's certificate (against feishu.ca_file or the
 * system's bundle) and the host name; nothing here or in the config turns that off. */
#include "dw/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dw/common.h"
#include "dw/log.h"

struct dw_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  long connect_timeout_ms;
  size_t max_response_bytes;
  char *ca_file; /* owned copy of feishu.ca_file, NULL = the system's bundle */
  size_t active;
  unsigned open_handles; /* uv handles not yet closed (the timer and socket polls) */
  int closing;
  void (*done)(void *);
  void *done_arg;
  struct transfer *transfers; /* doubly linked list of active transfers */
  CURL *idle[64];             /* easy handles kept for reuse (curl_easy_reset on return) */
  size_t nidle;
  struct dw_metric *m_duration; /* dw_api_call_duration_seconds, by endpoint */
};

struct transfer {
  struct dw_http *h;
  CURL *easy;
  struct curl_slist *headers;
  dw_http_cb cb;
  void *arg;
  char *body;
  size_t body_len, body_cap;
  int too_large;
  const char *endpoint; /* the request's, for m_duration; NULL = not measured */
  char log_id[128];
  int64_t ratelimit_reset_s;
  char errbuf[CURL_ERROR_SIZE];
  struct transfer *prev, *next;
};

struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  struct dw_http *h;
};

static void check_info(struct dw_http *h);

static void on_handle_closed(uv_handle_t *handle)
{
  struct dw_http *h = handle->data;
  if (handle->type == UV_POLL)
    free(handle);  /* the uv_poll_t is the first member of its sock_ctx */
  if (--h->open_handles == 0 && h->closing) {
    void (*done)(void *) = h->done;
    void *arg = h->done_arg;
    free(h->ca_file);
    free(h);
    if (done)
      done(arg);
  }
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  struct transfer *t = userdata;
  size_t n = size * nmemb;
  if (t->body_len + n > t->h->max_response_bytes) {
    t->too_large = 1;
    return 0; /* makes libcurl fail the transfer with CURLE_WRITE_ERROR */
  }
  if (t->body_len + n + 1 > t->body_cap) {
    size_t cap = t->body_cap ? t->body_cap : 1024;
    while (cap < t->body_len + n + 1)
      cap *= 2;
    char *p = realloc(t->body, cap);
    if (!p)
      return 0;
    t->body = p;
    t->body_cap = cap;
  }
  memcpy(t->body + t->body_len, ptr, n);
  t->body_len += n;
  t->body[t->body_len] = '\0';
  return n;
}

/* Copies a header's value (trimmed) if the line is "name: value". */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
  size_t nl = strlen(name);
  if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return 0;
  const char *v = line + nl + 1;
  const char *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
    end--;
  size_t vl = (size_t)(end - v);
  if (vl >= size)
    vl = size - 1;
  memcpy(out, v, vl);
  out[vl] = '\0';
  return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
  struct transfer *t = userdata;
  size_t len = size * nmemb;
  char value[64];
  if (header_value(line, len, "X-Tt-Logid", t->log_id, sizeof(t->log_id)))
    return len;
  if (!t->log_id[0] && header_value(line, len, "X-Request-Id", t->log_id, sizeof(t->log_id)))
    return len;
  if (header_value(line, len, "x-ogw-ratelimit-reset", value, sizeof(value))) {
    char *endp;
    errno = 0;
    long long v = strtoll(value, &endp, 10);
    if (errno == 0 && endp != value && *endp == '\0' && v >= 0) /* the limiter bounds it */
      t->ratelimit_reset_s = v;
  }
  return len;
}

static void transfer_free(struct transfer *t)
{
  if (!t)
    return;
  if (t->easy) {
    struct dw_http *h = t->h;
    if (!h->closing && h->nidle < DW_ARRAY_SIZE(h->idle)) {
      curl_easy_reset(t->easy);
      h->idle[h->nidle++] = t->easy;
    } else {
      curl_easy_cleanup(t->easy);
    }
  }
  curl_slist_free_all(t->headers);
  free(t->body);
  free(t);
}

static void transfer_unlink(struct transfer *t)
{
  struct dw_http *h = t->h;
  if (t->prev)
    t->prev->next = t->next;
  else
    h->transfers = t->next;
  if (t->next)
    t->next->prev = t->prev;
  h->active--;
}

static void transfer_finish(struct transfer *t, CURLcode rc, int canceled)
{
  struct dw_http_response resp = {0};
  long status = 0;
  double elapsed = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &elapsed);
  resp.status = status;
  resp.elapsed_s = elapsed;
  if (!canceled && t->endpoint)
    dw_metric_observe_label(t->h->m_duration, t->endpoint, elapsed);
  resp.body = t->body ? t->body : "";
  resp.body_len = t->body_len;
  resp.log_id = t->log_id;
  resp.ratelimit_reset_s = t->ratelimit_reset_s;
  if (canceled) {
    resp.error = DW_ECANCELED;
    resp.error_text = "cancelled";
  } else if (rc != CURLE_OK) {
    resp.error = t->too_large ? DW_ERANGE
                 : rc == CURLE_OPERATION_TIMEDOUT ? DW_ETIMEDOUT
                                                  : DW_EIO;
    resp.error_text = t->too_large ? "response body larger than feishu.max_response_bytes"
                      : t->errbuf[0] ? t->errbuf
                                     : curl_easy_strerror(rc);
  }
  t->cb(t->arg, &resp);
}

static void check_info(struct dw_http *h)
{
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(h->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    struct transfer *t = NULL;
    CURLcode rc = msg->data.result;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    curl_multi_remove_handle(h->multi, t->easy);
    transfer_unlink(t);
    transfer_finish(t, rc, 0);
    transfer_free(t);
  }
}

static void on_timer(uv_timer_t *timer)
{
  struct dw_http *h = timer->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_info(h);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
  struct sock_ctx *sc = (struct sock_ctx *)poll;
  struct dw_http *h = sc->h;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(h->multi, sc->fd, flags, &running);
  check_info(h);
}

/* CURLMOPT_SOCKETFUNCTION: only uv calls here, no curl_multi_* (we are inside libcurl). */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  (void)easy;
  struct dw_http *h = userp;
  struct sock_ctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc) {
      uv_poll_stop(&sc->poll);
      uv_close((uv_handle_t *)&sc->poll, on_handle_closed);
      curl_multi_assign(h->multi, fd, NULL);
    }
    return 0;
  }
  if (!sc) {
    sc = calloc(1, sizeof(*sc));
    if (!sc)
      return -1;
    sc->fd = fd;
    sc->h = h;
    if (uv_poll_init_socket(h->loop, &sc->poll, fd) != 0) {
      free(sc);
      return -1;
    }
    sc->poll.data = h;
    h->open_handles++;
    curl_multi_assign(h->multi, fd, sc);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&sc->poll, events, on_poll);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "as soon as possible", which we turn
 * into the next loop iteration so callbacks never run inside dw_http_send. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
  (void)multi;
  struct dw_http *h = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timer, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
  return 0;
}

int dw_http_new(struct dw_http **out, uv_loop_t *loop, const struct dw_config_feishu *feishu)
{
  static int global_done;
  int rc = DW_ENOMEM;
  struct dw_http *h = NULL;
  if (!global_done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      dw_error("curl_global_init failed");
      return DW_EIO;
    }
    global_done = 1;
  }
  h = calloc(1, sizeof(*h));
  if (!h)
    goto out;
  h->loop = loop;
  h->connect_timeout_ms = (long)feishu->connect_timeout_ms;
  h->max_response_bytes = (size_t)feishu->max_response_bytes;
  if (h->max_response_bytes == 0)
    h->max_response_bytes = 65536;
  if (feishu->ca_file && feishu->ca_file[0] && !(h->ca_file = strdup(feishu->ca_file)))
    goto out;
  h->multi = curl_multi_init();
  if (!h->multi)
    goto out;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)feishu->max_connections);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)feishu->max_connections);
  curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->open_handles = 1;
  *out = h;
  return 0;
out:
  if (h && h->multi)
    curl_multi_cleanup(h->multi);
  if (h)
    free(h->ca_file);
  free(h);
  return rc;
}

int dw_http_send(struct dw_http *h, const struct dw_http_request *req, dw_http_cb cb,
                 void *arg)
{
  if (h->closing)
    return DW_ESTATE;
  struct transfer *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  int rc = DW_ENOMEM;
  t->h = h;
  t->cb = cb;
  t->arg = arg;
  t->endpoint = req->endpoint;
  t->ratelimit_reset_s = -1;
  t->easy = h->nidle ? h->idle[--h->nidle] : curl_easy_init();
  if (!t->easy)
    goto fail;
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* libcurl's defaults, set anyway so that no reuse of a handle can carry other values: the
   * peer's chain and the host name are always checked. Redirects are not followed (so an
   * https:// call is never sent on to http://). */
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  if (h->ca_file)
    curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "delivery-worker/" DW_VERSION);
  if (req->authorization) {
    char auth[4200];
    if ((size_t)snprintf(auth, sizeof(auth), "Authorization: %s", req->authorization) >=
        sizeof(auth)) {
      rc = DW_ERANGE;
      goto fail;
    }
    struct curl_slist *l = curl_slist_append(t->headers, auth);
    if (!l)
      goto fail;
    t->headers = l;
  }
  if (req->method && strcmp(req->method, "POST") == 0) {
    struct curl_slist *l =
        curl_slist_append(t->headers, "Content-Type: application/json; charset=utf-8");
    if (!l)
      goto fail;
    t->headers = l;
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
  }
  if (t->headers)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
    rc = DW_EIO;
    goto fail;
  }
  t->next = h->transfers;
  if (h->transfers)
    h->transfers->prev = t;
  h->transfers = t;
  h->active++;
  return 0;
fail:
  transfer_free(t);
  return rc;
}

#ifdef CURLU_GET_EMPTY
#define URL_GET_EMPTY CURLU_GET_EMPTY
#else
#define URL_GET_EMPTY 0 /* before 8.8 an empty part is reported as present */
#endif

const char *dw_http_version_line(void)
{
  return curl_version();
}

const char *dw_http_url_check(const char *url)
{
  static const struct {
    CURLUPart part;
    const char *why;
  } absent[] = {
      {CURLUPART_USER, "must not hold a user name or password (credentials in a URL end up in "
                       "logs and check-config output)"},
      {CURLUPART_PASSWORD, "must not hold a user name or password (credentials in a URL end up "
                           "in logs and check-config output)"},
      {CURLUPART_OPTIONS, "must not hold login options (;...)"},
      {CURLUPART_QUERY, "must not have a query (?...): request paths are appended to it"},
      {CURLUPART_FRAGMENT, "must not have a fragment (#...): request paths are appended to it"},
  };
  const char *why = NULL;
  char *part = NULL;
  CURLU *u = curl_url();
  CURLUcode rc;
  if (!u)
    return "cannot be checked: out of memory";
  rc = curl_url_set(u, CURLUPART_URL, url, 0);
  switch (rc) {
  case CURLUE_OK:
    break;
  case CURLUE_BAD_IPV6:
    why = "must be a valid URL: an IPv6 address goes in closed brackets (http://[::1]:8080)";
    goto out;
  case CURLUE_BAD_PORT_NUMBER:
    why = "must be a valid URL: the port must be a number 1-65535";
    goto out;
  case CURLUE_NO_HOST:
  case CURLUE_BAD_HOSTNAME:
    why = "must be a valid URL: a host name or address after the scheme";
    goto out;
  default:
    why = "must be a valid URL (libcurl cannot parse it)";
    goto out;
  }
  if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
      (strcasecmp(part, "http") != 0 && strcasecmp(part, "https") != 0)) {
    why = "must start with http:// or https://";
    goto out;
  }
  curl_free(part);
  part = NULL;
  if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK || !part[0]) {
    why = "must name a host after the scheme";
    goto out;
  }
  for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
    curl_free(part);
    part = NULL;
    /* Present, even empty ("http://@host", "http://host?"): refused as written. libcurl
     * 8.8 and later report an empty part as absent unless asked with CURLU_GET_EMPTY. */
    if (curl_url_get(u, absent[i].part, &part, URL_GET_EMPTY) == CURLUE_OK) {
      why = absent[i].why;
      goto out;
    }
  }
out:
  curl_free(part);
  curl_url_cleanup(u);
  return why;
}

size_t dw_http_active(const struct dw_http *h)
{
  return h->active;
}

void dw_http_close(struct dw_http *h, void (*done)(void *arg), void *arg)
{
  h->closing = 1;
  h->done = done;
  h->done_arg = arg;
  while (h->transfers) {
    struct transfer *t = h->transfers;
    curl_multi_remove_handle(h->multi, t->easy);
    transfer_unlink(t);
    transfer_finish(t, CURLE_OK, 1);
    transfer_free(t);
  }
  while (h->nidle)
    curl_easy_cleanup(h->idle[--h->nidle]);
  curl_multi_cleanup(h->multi); /* may call on_socket with CURL_POLL_REMOVE */
  h->multi = NULL;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_handle_closed);
}

/* Feishu's API answers in tens to hundreds of milliseconds; token endpoints and a loaded
 * gateway take longer, and feishu.request_timeout_ms (10 s by default) ends the tail. */
static const double duration_buckets[] = {0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1,
                                          1.5,   2.5,  5,   10,  30};

void dw_http_metrics(struct dw_http *h, struct dw_metrics *reg)
{
  h->m_duration = dw_metrics_histogram_labelled(
      reg, "dw_api_call_duration_seconds",
      "Feishu API calls from start to answer (or failure), by endpoint (delivery_task, "
      "tenant_access_token_internal, app_access_token, tenant_access_token, app_ticket_resend).",
      "endpoint", duration_buckets, DW_ARRAY_SIZE(duration_buckets));
}

const char *dw_http_version(void)
{
  return curl_version_info(CURLVERSION_NOW)->version;
}
