/* Unit tests of the admin endpoint on a private loop: every route, keep-alive (requests reuse
 * one connection), HEAD, 405 with a body, render failures, readiness reasons, IPv6, bad
 * addresses, a port in use, closing with connections still open, and floods of real sockets
 * (idle, half-sent, connect/close cycles, scrapes that never read their answer, connections
 * arriving while probes run) that must neither lock the endpoint out for good nor keep probes
 * from being answered while they last. The client is libcurl's
 * multi interface driven from the same loop (as in curl's multi-uv example), so
 * nothing blocks the loop; each wait runs the loop until the answer arrived or a deadline
 * passed. Every test ends with uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "dw/admin.h"
#include "dw/common.h"

#define DEADLINE_MS 5000

/* curl's timeout for the next fetch_start (the admin flood tests want answers within 1 s). */
static long fetch_timeout_ms = DEADLINE_MS;

/* One HTTP exchange, as the client saw it. */
struct fetch {
  CURL *easy;
  int done;
  CURLcode result;
  long status;
  long new_connections; /* CURLINFO_NUM_CONNECTS: 0 when a kept-alive connection was reused */
  long local_port;
  char body[8192];
  size_t body_len;
  char content_type[128];
  char allow[64];
  int connection_close; /* a "Connection: close" header came back */
  char errbuf[CURL_ERROR_SIZE];
};

struct client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  uv_timer_t deadline;
  int timed_out;
};

struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct client *c;
};

/* What the handler callbacks answer. */
struct app {
  int ready;
  const char *reason;
  int render_fails;
  int renders;
  const char *metrics;
};

static void on_sock_closed(uv_handle_t *h)
{
  free(h);
}

static void check_done(struct client *c)
{
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(c->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    struct fetch *f = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
    f->result = msg->data.result;
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_getinfo(f->easy, CURLINFO_NUM_CONNECTS, &f->new_connections);
    curl_easy_getinfo(f->easy, CURLINFO_LOCAL_PORT, &f->local_port);
    curl_multi_remove_handle(c->multi, f->easy);
    f->done = 1;
  }
}

static void on_curl_timeout(uv_timer_t *t)
{
  struct client *c = t->data;
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static void on_sock_event(uv_poll_t *p, int status, int events)
{
  struct sock *s = (struct sock *)p;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
  check_done(s->c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  (void)easy;
  struct client *c = userp;
  struct sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_sock_closed);
      curl_multi_assign(c->multi, fd, NULL);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof(*s));
    if (!s || uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->c = c;
    curl_multi_assign(c->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_sock_event);
  return 0;
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
  (void)multi;
  struct client *c = userp;
  if (ms < 0)
    uv_timer_stop(&c->timer);
  else
    uv_timer_start(&c->timer, on_curl_timeout, ms == 0 ? 1 : (uint64_t)ms, 0);
  return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  struct fetch *f = userdata;
  size_t n = size * nmemb;
  if (f->body_len + n >= sizeof(f->body))
    return 0;
  memcpy(f->body + f->body_len, ptr, n);
  f->body_len += n;
  f->body[f->body_len] = '\0';
  return n;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
  size_t nl = strlen(name);
  if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return;
  const char *v = line + nl + 1, *end = line + len;
  while (v < end && *v == ' ')
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n'))
    end--;
  size_t n = DW_MIN((size_t)(end - v), size - 1);
  memcpy(out, v, n);
  out[n] = '\0';
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
  struct fetch *f = userdata;
  size_t len = size * nmemb;
  char conn[32] = "";
  header_value(line, len, "Content-Type", f->content_type, sizeof(f->content_type));
  header_value(line, len, "Allow", f->allow, sizeof(f->allow));
  header_value(line, len, "Connection", conn, sizeof(conn));
  if (strcasecmp(conn, "close") == 0)
    f->connection_close = 1;
  return len;
}

static void on_deadline(uv_timer_t *t)
{
  struct client *c = t->data;
  c->timed_out = 1;
}

static void client_init(struct client *c, uv_loop_t *loop)
{
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->multi = curl_multi_init();
  assert_non_null(c->multi);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  uv_timer_init(loop, &c->timer);
  uv_timer_init(loop, &c->deadline);
  c->timer.data = c;
  c->deadline.data = c;
}

/* Closes the client's connections and handles (the loop must run for the closes). */
static void client_cleanup(struct client *c)
{
  curl_multi_cleanup(c->multi); /* CURL_POLL_REMOVE for every socket still open */
  uv_close((uv_handle_t *)&c->timer, NULL);
  uv_close((uv_handle_t *)&c->deadline, NULL);
}

/* Runs the loop until *flag is at least min or ms passed; returns whether it is. */
static int run_until_at_least(struct client *c, const int *flag, int min, uint64_t ms)
{
  c->timed_out = 0;
  uv_timer_start(&c->deadline, on_deadline, ms, 0);
  while (*flag < min && !c->timed_out)
    uv_run(c->loop, UV_RUN_ONCE);
  uv_timer_stop(&c->deadline);
  return *flag >= min;
}

/* Runs the loop until *flag is set or DEADLINE_MS passed; returns *flag. */
static int run_until(struct client *c, const int *flag)
{
  run_until_at_least(c, flag, 1, DEADLINE_MS);
  return *flag;
}

static void fetch_start(struct client *c, struct fetch *f, const char *method, const char *url,
                        const char *post_body)
{
  memset(f, 0, sizeof(*f));
  f->easy = curl_easy_init();
  assert_non_null(f->easy);
  CURL *e = f->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, f);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, fetch_timeout_ms);
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (post_body)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, post_body);
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  assert_int_equal(curl_multi_add_handle(c->multi, e), CURLM_OK);
}

static void fetch_cleanup(struct fetch *f)
{
  curl_easy_cleanup(f->easy);
  f->easy = NULL;
}

/* One request, waited for; the easy handle is cleaned up (the connection stays in the
 * multi's pool for the next one). */
static void fetch(struct client *c, struct fetch *f, const char *method, const char *url,
                  const char *post_body)
{
  fetch_start(c, f, method, url, post_body);
  assert_true(run_until(c, &f->done));
  if (f->result != CURLE_OK)
    fail_msg("%s %s: %s", method, url, f->errbuf[0] ? f->errbuf : curl_easy_strerror(f->result));
  fetch_cleanup(f);
}

static int app_render(void *arg, char **body, size_t *len)
{
  struct app *app = arg;
  app->renders++;
  if (app->render_fails)
    return DW_ENOMEM;
  *body = strdup(app->metrics);
  if (!*body)
    return DW_ENOMEM;
  *len = strlen(app->metrics);
  return 0;
}

static int app_ready(void *arg, char *why, size_t whylen)
{
  struct app *app = arg;
  if (!app->ready && app->reason)
    dw_strlcpy(why, app->reason, whylen);
  return app->ready;
}

static void url_of(char *out, size_t size, const char *host, int port, const char *path)
{
  assert_true((size_t)snprintf(out, size, "http://%s:%d%s", host, port, path) < size);
}

static void close_loop(uv_loop_t *loop)
{
  /* Run until every close callback ran: nothing may be left for uv_loop_close. */
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void test_routes(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256], url[128];
  struct app app = {.ready = 1,
                    .metrics = "# TYPE dw_events_consumed_total counter\n"
                               "dw_events_consumed_total 3\n"};
  const struct dw_admin_handler h = {.render = app_render, .ready = app_ready, .arg = &app};
  struct fetch f;

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", &h, err, sizeof(err)), 0);
  int port = dw_admin_port(a);
  assert_true(port > 0 && port < 65536);
  client_init(&c, &loop);

  url_of(url, sizeof(url), "127.0.0.1", port, "/metrics");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, app.metrics);
  assert_string_equal(f.content_type, "text/plain; version=0.0.4; charset=utf-8");
  assert_int_equal(f.new_connections, 1);
  assert_false(f.connection_close);
  long first_port = f.local_port;
  assert_int_equal(app.renders, 1);

  /* Every later request rides on the same connection. */
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, "ok\n");
  assert_string_equal(f.content_type, "text/plain; charset=utf-8");
  assert_int_equal(f.new_connections, 0);
  assert_int_equal(f.local_port, first_port);
  assert_false(f.connection_close);

  url_of(url, sizeof(url), "127.0.0.1", port, "/readyz");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, "ready\n");
  assert_int_equal(f.new_connections, 0);

  app.ready = 0;
  app.reason = "kafka: no partitions assigned yet";
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 503);
  assert_string_equal(f.body, "kafka: no partitions assigned yet\n");
  assert_string_equal(f.content_type, "text/plain; charset=utf-8");
  assert_int_equal(f.new_connections, 0);

  app.reason = NULL; /* not ready without a reason */
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 503);
  assert_string_equal(f.body, "not ready\n");

  /* A reason longer than the buffer is cut, not overrun. */
  static char long_reason[4 * DW_ADMIN_MAX_REASON];
  memset(long_reason, 'r', sizeof(long_reason) - 1);
  app.reason = long_reason;
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 503);
  assert_int_equal(f.body_len, DW_ADMIN_MAX_REASON - 1);
  assert_int_equal(f.body[f.body_len - 1], '\n');
  assert_int_equal(f.new_connections, 0);

  url_of(url, sizeof(url), "127.0.0.1", port, "/nope");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 404);
  assert_int_equal(f.new_connections, 0);
  url_of(url, sizeof(url), "127.0.0.1", port, "/metrics/");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 404);
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz?verbose=1");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200); /* the query string is not part of the path */

  /* HEAD answers like GET, without a body. */
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");
  fetch(&c, &f, "HEAD", url, NULL);
  assert_int_equal(f.status, 200);
  assert_int_equal(f.body_len, 0);
  assert_int_equal(f.new_connections, 0);
  assert_int_equal(f.local_port, first_port);

  /* Other methods: 405 with Allow, also with a request body. */
  fetch(&c, &f, "DELETE", url, NULL);
  assert_int_equal(f.status, 405);
  assert_string_equal(f.allow, "GET, HEAD");
  url_of(url, sizeof(url), "127.0.0.1", port, "/metrics");
  fetch(&c, &f, "POST", url, "{\"a\": 1}");
  assert_int_equal(f.status, 405);
  assert_string_equal(f.allow, "GET, HEAD");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_int_equal(app.renders, 2); /* neither 405 rendered */

  /* A render failure is a 500, and the next scrape works again. */
  app.render_fails = 1;
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 500);
  app.render_fails = 0;
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, app.metrics);

  /* Concurrent scrapes on separate connections. */
  struct fetch many[8];
  for (size_t i = 0; i < DW_ARRAY_SIZE(many); i++)
    fetch_start(&c, &many[i], "GET", url, NULL);
  for (size_t i = 0; i < DW_ARRAY_SIZE(many); i++) {
    assert_true(run_until(&c, &many[i].done));
    assert_int_equal(many[i].result, CURLE_OK);
    assert_int_equal(many[i].status, 200);
    assert_string_equal(many[i].body, app.metrics);
    fetch_cleanup(&many[i]);
  }

  /* Close while the client still holds kept-alive connections open. */
  dw_admin_close(a, NULL, NULL);
  client_cleanup(&c);
  close_loop(&loop);
}

/* A raw TCP client on the loop, for what libcurl does not do: pipelined requests in one
 * segment, and a request split across writes. */
struct raw {
  uv_tcp_t tcp;
  uv_connect_t connect;
  int connected;
  int eof;
  char in[8192];
  size_t in_len;
};

static void on_raw_connect(uv_connect_t *req, int status)
{
  struct raw *r = req->data;
  assert_int_equal(status, 0);
  r->connected = 1;
}

static void on_raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  struct raw *r = h->data;
  (void)suggested;
  *buf = uv_buf_init(r->in + r->in_len, (unsigned)(sizeof(r->in) - 1 - r->in_len));
}

static void on_raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct raw *r = s->data;
  (void)buf;
  if (n < 0) {
    r->eof = 1;
    uv_read_stop(s);
    return;
  }
  r->in_len += (size_t)n;
  r->in[r->in_len] = '\0';
}

static void raw_write(struct raw *r, const char *text)
{
  uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
  /* Loopback takes a few hundred bytes at once: uv_try_write writes them all or fails. */
  assert_int_equal(uv_try_write((uv_stream_t *)&r->tcp, &b, 1), (int)b.len);
}

static size_t count(const char *hay, const char *needle)
{
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

/* Complete when n responses arrived and the last one's body ("ready\n") is in. */
struct raw_wait {
  struct raw *r;
  size_t responses;
  int done;
};

static void on_raw_check(uv_idle_t *idle)
{
  struct raw_wait *w = idle->data;
  w->done = w->r->eof || (count(w->r->in, "HTTP/1.1 200 OK\r\n") == w->responses &&
                          strlen(w->r->in) >= 6 && strcmp(w->r->in + strlen(w->r->in) - 6,
                                                          "ready\n") == 0);
}

static void test_pipelined_raw(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256];
  struct raw r;
  struct sockaddr_in sin;
  uv_idle_t idle;
  struct raw_wait w = {.r = &r};

  memset(&r, 0, sizeof(r));
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  client_init(&c, &loop); /* for run_until's deadline */
  assert_int_equal(uv_ip4_addr("127.0.0.1", dw_admin_port(a), &sin), 0);
  uv_tcp_init(&loop, &r.tcp);
  r.tcp.data = &r;
  r.connect.data = &r;
  assert_int_equal(uv_tcp_connect(&r.connect, &r.tcp, (struct sockaddr *)&sin, on_raw_connect),
                   0);
  assert_true(run_until(&c, &r.connected));
  uv_read_start((uv_stream_t *)&r.tcp, on_raw_alloc, on_raw_read);
  uv_idle_init(&loop, &idle);
  idle.data = &w;
  uv_idle_start(&idle, on_raw_check);

  /* Two requests in one segment: the second is already in MHD's buffer when the first is
   * answered, and an edge-triggered socket announces nothing more. */
  raw_write(&r, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
  w.responses = 2;
  assert_true(run_until(&c, &w.done));
  assert_false(r.eof);
  assert_int_equal(count(r.in, "HTTP/1.1 200 OK\r\n"), 2);
  assert_non_null(strstr(r.in, "\r\n\r\nok\nHTTP/1.1 200 OK\r\n"));

  /* A request in three pieces, on the same connection. */
  w.done = 0;
  w.responses = 3;
  raw_write(&r, "GET /rea");
  uv_run(&loop, UV_RUN_NOWAIT);
  raw_write(&r, "dyz HTTP/1.1\r\nHo");
  uv_run(&loop, UV_RUN_NOWAIT);
  raw_write(&r, "st: t\r\n\r\n");
  assert_true(run_until(&c, &w.done));
  assert_false(r.eof);
  assert_int_equal(count(r.in, "HTTP/1.1 200 OK\r\n"), 3);

  /* HTTP/1.0 without keep-alive: answered, then closed by the server. */
  w.done = 0;
  r.in_len = 0;
  r.in[0] = '\0';
  raw_write(&r, "GET /readyz HTTP/1.0\r\n\r\n");
  assert_true(run_until(&c, &r.eof));
  assert_true(strncmp(r.in, "HTTP/1.1 200 OK\r\n", 17) == 0); /* MHD answers in 1.1 */
  assert_non_null(strstr(r.in, "\r\nConnection: close\r\n"));
  assert_non_null(strstr(r.in, "\r\n\r\nready\n"));

  uv_close((uv_handle_t *)&idle, NULL);
  uv_close((uv_handle_t *)&r.tcp, NULL);
  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

static void test_no_callbacks(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256], url[128];
  struct fetch f;
  assert_int_equal(uv_loop_init(&loop), 0);
  /* A NULL handler: /metrics is 404, /readyz always ready. */
  assert_int_equal(dw_admin_start(&a, &loop, "localhost:0", NULL, err, sizeof(err)), 0);
  client_init(&c, &loop);
  url_of(url, sizeof(url), "127.0.0.1", dw_admin_port(a), "/metrics");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 404);
  url_of(url, sizeof(url), "127.0.0.1", dw_admin_port(a), "/readyz");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, "ready\n");
  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

static void test_ipv6(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256], url[128];
  struct fetch f;
  assert_int_equal(uv_loop_init(&loop), 0);
  if (dw_admin_start(&a, &loop, "[::]:0", NULL, err, sizeof(err)) != 0) {
    assert_int_equal(uv_loop_close(&loop), 0);
    skip(); /* no IPv6 on this machine */
  }
  client_init(&c, &loop);
  url_of(url, sizeof(url), "[::1]", dw_admin_port(a), "/healthz");
  fetch_start(&c, &f, "GET", url, NULL);
  assert_true(run_until(&c, &f.done));
  if (f.result == CURLE_OK) /* ::1 may be missing even when sockets exist */
    assert_int_equal(f.status, 200);
  fetch_cleanup(&f);
  /* "[::]" is dual-stack: IPv4 clients get in too. */
  url_of(url, sizeof(url), "127.0.0.1", dw_admin_port(a), "/healthz");
  fetch(&c, &f, "GET", url, NULL);
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, "ok\n");
  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

static void test_bad_addresses(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct dw_admin *a = (struct dw_admin *)1;
  char err[256];
  static const char *const bad[] = {
      "127.0.0.1",       "127.0.0.1:",      ":9464",          "127.0.0.1:65536",
      "127.0.0.1:-1",    "127.0.0.1:80x",   "127.0.0.1: 80",  "256.0.0.1:80",
      "example.com:80",  "::1:80",          "[::1:80",        "[127.0.0.1]:80",
      "[]:80",           "[::1]x:80",
  };
  assert_int_equal(uv_loop_init(&loop), 0);
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    err[0] = '\0';
    assert_int_equal(dw_admin_start(&a, &loop, bad[i], NULL, err, sizeof(err)), DW_EINVAL);
    assert_null(a);
    a = (struct dw_admin *)1;
    if (!strstr(err, bad[i]))
      fail_msg("%s: error does not name the address: %s", bad[i], err);
  }
  assert_int_equal(dw_admin_start(&a, &loop, NULL, NULL, err, sizeof(err)), DW_EINVAL);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_port_in_use(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct dw_admin *a = NULL, *b = (struct dw_admin *)1;
  char err[256], listen[64];
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", dw_admin_port(a));
  assert_int_equal(dw_admin_start(&b, &loop, listen, NULL, err, sizeof(err)), DW_EIO);
  assert_null(b);
  if (!strstr(err, "Address already in use") || !strstr(err, listen))
    fail_msg("unexpected error text: %s", err);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

static void test_close_unused(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct dw_admin *a = NULL;
  char err[256];
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  dw_admin_close(a, NULL, NULL);
  dw_admin_close(NULL, NULL, NULL);
  close_loop(&loop);
}

static void on_closed(void *arg)
{
  ++*(int *)arg;
}

/* done runs once, from the last handle's close callback: not before the loop runs. */
static void test_close_done(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct dw_admin *a = NULL;
  char err[256];
  int closed = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  dw_admin_close(a, on_closed, &closed);
  assert_int_equal(closed, 0);
  close_loop(&loop);
  assert_int_equal(closed, 1);
}


/* ---- floods of real sockets ---- */

#define FLOOD_IDLE 300
#define FLOOD_SLOW 200
#define FLOOD_CYCLES 600
#define PROBE_MS 1000 /* a probe must be answered within this */
#define SLOW_READ_BODY (4 << 20) /* more than a socket takes (net.ipv4.tcp_wmem) */

/* PROBE_MS, or three times that in a sanitized build (tests/run.sh sets DW_SANITIZED=1 for
 * it): the requirement is 1 s, the sanitizers' slowdown on a loaded machine is not. */
static long probe_ms(void)
{
  const char *s = getenv("DW_SANITIZED");
#if defined(__SANITIZE_ADDRESS__)
  s = "1";
#endif
  return s && strcmp(s, "1") == 0 ? 3 * PROBE_MS : PROBE_MS;
}

/* A connect to 127.0.0.1:port, non-blocking (or, for a client that must send at once,
 * blocking until connected), with a receive buffer of rcvbuf bytes (0: the default); the fd,
 * or -1. */
static int flood_connect_with(int port, int nonblock, int rcvbuf)
{
  struct sockaddr_in sin;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0)
    return -1;
  /* Before connect: the window offered in the handshake follows it. */
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

/* A non-blocking connect to 127.0.0.1:port; the fd, or -1. */
static int flood_connect(int port)
{
  return flood_connect_with(port, 1, 0);
}

/* Runs the loop without waiting, a few times: the endpoint takes what arrived. */
static void pump(uv_loop_t *loop)
{
  for (int i = 0; i < 4; i++)
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Opens n connections, each sending prefix (NULL: nothing), the loop running in between. */
static void flood_open(uv_loop_t *loop, int port, int *fds, size_t n, const char *prefix)
{
  for (size_t i = 0; i < n; i++) {
    fds[i] = flood_connect(port);
    assert_true(fds[i] >= 0);
    if (i % 16 == 15)
      pump(loop);
  }
  pump(loop);
  if (!prefix)
    return;
  for (size_t i = 0; i < n; i++) {
    /* Loopback connects at once; a socket still connecting just sends nothing. */
    ssize_t w = send(fds[i], prefix, strlen(prefix), MSG_NOSIGNAL);
    (void)w;
  }
  pump(loop);
}

static void flood_close(int *fds, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
}

/* GET url on a new connection, answered 200 "ok\n" within ms. */
static void probe_within(struct client *c, const char *url, const char *when, long ms)
{
  struct fetch f;
  fetch_timeout_ms = ms;
  fetch_start(c, &f, "GET", url, NULL);
  curl_easy_setopt(f.easy, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(f.easy, CURLOPT_FORBID_REUSE, 1L);
  assert_true(run_until_at_least(c, &f.done, 1, (uint64_t)ms + DEADLINE_MS));
  fetch_timeout_ms = DEADLINE_MS;
  if (f.result != CURLE_OK)
    fail_msg("%s: GET %s: %s", when, url,
             f.errbuf[0] ? f.errbuf : curl_easy_strerror(f.result));
  assert_int_equal(f.status, 200);
  assert_string_equal(f.body, "ok\n");
  fetch_cleanup(&f);
}

/* GET url on a new connection, answered 200 "ok\n" within PROBE_MS (see probe_ms). */
static void probe(struct client *c, const char *url, const char *when)
{
  probe_within(c, url, when, probe_ms());
}

/* Hundreds of idle connections, then hundreds of half-sent requests (slowloris): probes are
 * answered while they are open, and at once after they are gone. */
static void test_flood_idle_and_slow(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256], url[128];
  static int idle[FLOOD_IDLE], slow[FLOOD_SLOW];

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  client_init(&c, &loop);
  int port = dw_admin_port(a);
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");
  probe(&c, url, "before the flood");

  flood_open(&loop, port, idle, FLOOD_IDLE, NULL);
  probe(&c, url, "with hundreds of idle connections open");
  flood_close(idle, FLOOD_IDLE);
  probe(&c, url, "after the idle connections closed");

  flood_open(&loop, port, slow, FLOOD_SLOW, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  probe(&c, url, "with hundreds of half-sent requests open");
  probe(&c, url, "again with hundreds of half-sent requests open");
  flood_close(slow, FLOOD_SLOW);
  probe(&c, url, "after the half-sent requests closed");

  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

/* Connections that reach the limit and all go away at once, then fast connect/close cycles
 * (some reset): the endpoint answers within PROBE_MS afterwards, every time. */
static void test_flood_cycles(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  char err[256], url[128];
  static int fds[DW_ADMIN_MAX_CONNECTIONS * 2];

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", NULL, err, sizeof(err)), 0);
  client_init(&c, &loop);
  int port = dw_admin_port(a);
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");

  for (int round = 0; round < 3; round++) {
    flood_open(&loop, port, fds, DW_ARRAY_SIZE(fds), NULL);
    /* Let the endpoint take them all before they go. */
    for (int i = 0; i < 50; i++)
      pump(&loop);
    flood_close(fds, DW_ARRAY_SIZE(fds));
    pump(&loop);
    probe(&c, url, "after a burst over the connection limit closed");
  }

  for (int i = 0; i < FLOOD_CYCLES; i++) {
    int fd = flood_connect(port);
    assert_true(fd >= 0);
    if (i % 3 == 0) { /* a reset instead of a FIN */
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    } else if (i % 3 == 1) {
      ssize_t w = send(fd, "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
      (void)w;
    }
    if (i % 8 == 0)
      pump(&loop);
    close(fd);
  }
  pump(&loop);
  probe(&c, url, "after fast connect/close cycles");

  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

/* A /metrics scrape that never reads its answer: a tiny receive window, the request sent,
 * nothing read, so the endpoint is "answering" it until it gives up on it. The fd, or -1. */
static int slow_reader(int port)
{
  static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  int fd = flood_connect_with(port, 0, 1); /* the kernel raises 1 to its minimum */
  if (fd < 0)
    return -1;
  if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
    close(fd);
    return -1;
  }
  return fd;
}

/* An app whose /metrics body is SLOW_READ_BODY bytes. */
static void big_metrics_app(struct app *app)
{
  static char big[SLOW_READ_BODY + 1];
  for (size_t i = 0; i < SLOW_READ_BODY; i++)
    big[i] = i % 64 == 63 ? '\n' : '#';
  memset(app, 0, sizeof(*app));
  app->ready = 1;
  app->metrics = big;
}

/* Slow-read scrapes (request sent, answer never read) hold the connection limit: a probe is
 * answered within PROBE_MS beside them, and once they also fill libmicrohttpd's own limit, it
 * is answered after they stalled for DW_ADMIN_STALL_S. */
static void test_flood_slow_read(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  struct app app;
  char err[256], url[128];
  enum { OVER = DW_ADMIN_MAX_CONNECTIONS + DW_ADMIN_SHED_HEADROOM + 8 };
  static int fds[OVER];

  big_metrics_app(&app);
  const struct dw_admin_handler h = {.render = app_render, .arg = &app};
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", &h, err, sizeof(err)), 0);
  client_init(&c, &loop);
  int port = dw_admin_port(a);
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");
  probe(&c, url, "before the slow readers");

  for (size_t i = 0; i < DW_ADMIN_MAX_CONNECTIONS; i++) {
    fds[i] = slow_reader(port);
    assert_true(fds[i] >= 0);
  }
  /* Every one of them is being answered (its body rendered, stuck in the socket). */
  assert_true(run_until_at_least(&c, &app.renders, DW_ADMIN_MAX_CONNECTIONS, DEADLINE_MS));
  probe(&c, url, "with the connection limit taken by slow readers");
  probe(&c, url, "again with the connection limit taken by slow readers");

  /* Past libmicrohttpd's own limit: nothing new is accepted until slow readers are shed. */
  for (size_t i = DW_ADMIN_MAX_CONNECTIONS; i < OVER; i++) {
    fds[i] = slow_reader(port);
    assert_true(fds[i] >= 0);
  }
  assert_true(run_until_at_least(&c, &app.renders,
                                 DW_ADMIN_MAX_CONNECTIONS + DW_ADMIN_SHED_HEADROOM, DEADLINE_MS));
  probe_within(&c, url, "with libmicrohttpd's limit taken by slow readers",
               DW_ADMIN_STALL_S * 1000L + 4 * probe_ms());
  probe(&c, url, "once stalled slow readers were shed");

  flood_close(fds, OVER);
  probe(&c, url, "after the slow readers closed");
  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

/* New connections keep arriving while probes run. */
struct arrivals {
  uv_timer_t timer;
  int port;
  int fds[256]; /* the latest ones; the oldest is closed when its slot is needed */
  size_t next;
  int opened;
};

static void on_arrival(uv_timer_t *t)
{
  struct arrivals *ar = t->data;
  size_t i = ar->next++ % DW_ARRAY_SIZE(ar->fds);
  if (ar->fds[i] >= 0)
    close(ar->fds[i]);
  ar->fds[i] = flood_connect(ar->port);
  ar->opened++;
}

/* With the connection limit held by slow readers, new idle connections arrive every few
 * milliseconds, each one past the limit; probes connecting among them are answered within
 * PROBE_MS every time. */
static void test_flood_while_probing(void **state)
{
  (void)state;
  uv_loop_t loop;
  struct client c;
  struct dw_admin *a = NULL;
  struct app app;
  char err[256], url[128];
  static int slow[DW_ADMIN_MAX_CONNECTIONS];
  struct arrivals ar;

  big_metrics_app(&app);
  const struct dw_admin_handler h = {.render = app_render, .arg = &app};
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(dw_admin_start(&a, &loop, "127.0.0.1:0", &h, err, sizeof(err)), 0);
  client_init(&c, &loop);
  int port = dw_admin_port(a);
  url_of(url, sizeof(url), "127.0.0.1", port, "/healthz");

  for (size_t i = 0; i < DW_ARRAY_SIZE(slow); i++) {
    slow[i] = slow_reader(port);
    assert_true(slow[i] >= 0);
  }
  assert_true(run_until_at_least(&c, &app.renders, (int)DW_ARRAY_SIZE(slow), DEADLINE_MS));

  memset(&ar, 0, sizeof(ar));
  for (size_t i = 0; i < DW_ARRAY_SIZE(ar.fds); i++)
    ar.fds[i] = -1;
  ar.port = port;
  uv_timer_init(&loop, &ar.timer);
  ar.timer.data = &ar;
  uv_timer_start(&ar.timer, on_arrival, 2, 2);
  assert_true(run_until_at_least(&c, &ar.opened, 20, DEADLINE_MS));
  for (int i = 0; i < 10; i++)
    probe(&c, url, "while new connections keep arriving");
  uv_close((uv_handle_t *)&ar.timer, NULL);
  flood_close(ar.fds, DW_ARRAY_SIZE(ar.fds));
  flood_close(slow, DW_ARRAY_SIZE(slow));

  probe(&c, url, "after the flood");
  client_cleanup(&c);
  dw_admin_close(a, NULL, NULL);
  close_loop(&loop);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes),        cmocka_unit_test(test_pipelined_raw),
      cmocka_unit_test(test_no_callbacks),
      cmocka_unit_test(test_ipv6),          cmocka_unit_test(test_bad_addresses),
      cmocka_unit_test(test_port_in_use),   cmocka_unit_test(test_close_unused),
      cmocka_unit_test(test_close_done),
      cmocka_unit_test(test_flood_idle_and_slow), cmocka_unit_test(test_flood_cycles),
      cmocka_unit_test(test_flood_slow_read),     cmocka_unit_test(test_flood_while_probing),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
