/* libmicrohttpd glue for dw-sim. One epoll internal thread (or a pool of them) serves every
 * connection; the access handler collects the body, hands the request to sim_api.c or
 * sim_control.c, and queues the answer.
 *
 * Contracts honoured (MHD 0.9.75):
 * - Never queue a response on the first handler call (*con_cls == NULL): MHD would then answer
 *   with "Connection: close" and keep-alive would be lost. The first call only allocates state.
 * - Answers with latency (or a "timeout" fault) are not slept on: the handler suspends the
 *   connection (MHD_ALLOW_SUSPEND_RESUME) and a timer thread resumes it when due; MHD then calls
 *   the handler again, which queues the answer it kept. Suspend is only legal from the handler;
 *   resume from any thread.
 * - MHD_stop_daemon must not see suspended connections: at shutdown the timer thread resumes all
 *   of them first and no new suspension is allowed after that.
 * - Hostile answers are streamed from a content reader: a truncated body returns
 *   MHD_CONTENT_READER_END_WITH_ERROR before the announced size (MHD closes the connection); a
 *   slowloris body suspends the connection from the reader (legal there too) between two bytes,
 *   through the same timer, never returning 0 without suspending (that would busy-wait). */
#include "sim.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct delayed {
  uint64_t due_ms; /* monotonic */
  struct MHD_Connection *conn;
};

struct sim_http {
  struct sim *sim;
  struct MHD_Daemon *daemon;
  int verbose;
  uint16_t port;

  pthread_t timer;
  int timer_started;
  pthread_mutex_t tlock;
  pthread_cond_t tcond;
  struct delayed *heap; /* min-heap on due_ms */
  size_t nheap;
  size_t capheap;
  int stopping;
};

/* Per-request state kept in *con_cls. */
struct request {
  struct sim_buf body;
  int delayed;           /* suspended; the next handler call sends resp */
  int reset_after_delay; /* ... or closes the connection */
  unsigned int status;
  struct MHD_Response *resp;
};

/* ---- delayed answers ---- */

static void heap_swap(struct delayed *a, struct delayed *b)
{
  struct delayed t = *a;
  *a = *b;
  *b = t;
}

static void heap_push(struct sim_http *h, struct delayed d)
{
  size_t i = h->nheap++;

  h->heap[i] = d;
  while (i > 0 && h->heap[(i - 1) / 2].due_ms > h->heap[i].due_ms) {
    heap_swap(&h->heap[(i - 1) / 2], &h->heap[i]);
    i = (i - 1) / 2;
  }
}

static struct delayed heap_pop(struct sim_http *h)
{
  struct delayed top = h->heap[0];
  size_t i = 0;

  h->heap[0] = h->heap[--h->nheap];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->nheap && h->heap[l].due_ms < h->heap[m].due_ms)
      m = l;
    if (r < h->nheap && h->heap[r].due_ms < h->heap[m].due_ms)
      m = r;
    if (m == i)
      break;
    heap_swap(&h->heap[m], &h->heap[i]);
    i = m;
  }
  return top;
}

/* Suspends conn until delay_ms from now. Returns 0, or < 0 when the answer must go out now
 * (shutting down, or no memory for the timer entry). Called from the access handler or a
 * content reader only. */
static int delay_connection(struct sim_http *h, struct MHD_Connection *conn, uint64_t delay_ms)
{
  int rc = SIM_EINVAL;

  pthread_mutex_lock(&h->tlock);
  if (h->stopping)
    goto out;
  if (h->nheap == h->capheap) {
    size_t cap = h->capheap ? h->capheap * 2 : 256;
    struct delayed *p = realloc(h->heap, cap * sizeof(*p));
    if (!p) {
      rc = SIM_ENOMEM;
      goto out;
    }
    h->heap = p;
    h->capheap = cap;
  }
  /* Suspend before the entry becomes visible: the timer may resume it as soon as we unlock. */
  MHD_suspend_connection(conn);
  heap_push(h, (struct delayed){sim_mono_ms() + delay_ms, conn});
  if (h->heap[0].conn == conn)
    pthread_cond_signal(&h->tcond);
  rc = 0;
out:
  pthread_mutex_unlock(&h->tlock);
  return rc;
}

static void *timer_main(void *arg)
{
  struct sim_http *h = arg;
  struct MHD_Connection *due[256];
  size_t n, i;

  pthread_mutex_lock(&h->tlock);
  for (;;) {
    uint64_t now = sim_mono_ms();

    n = 0;
    while (h->nheap && n < SIM_ARRAY_SIZE(due) && (h->stopping || h->heap[0].due_ms <= now))
      due[n++] = heap_pop(h).conn;
    if (n) {
      /* MHD takes its own locks in resume; do not hold ours meanwhile. */
      pthread_mutex_unlock(&h->tlock);
      for (i = 0; i < n; i++)
        MHD_resume_connection(due[i]);
      pthread_mutex_lock(&h->tlock);
      continue;
    }
    if (h->stopping)
      break;
    if (!h->nheap) {
      pthread_cond_wait(&h->tcond, &h->tlock);
    } else {
      uint64_t at = h->heap[0].due_ms;
      struct timespec ts = {(time_t)(at / 1000), (long)(at % 1000) * 1000000L};
      pthread_cond_timedwait(&h->tcond, &h->tlock, &ts);
    }
  }
  pthread_mutex_unlock(&h->tlock);
  return NULL;
}

/* ---- requests ---- */

static const char *get_arg(void *ctx, const char *name)
{
  return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static size_t body_limit(const char *url)
{
  if (strcmp(url, "/_sim/tasks") == 0)
    return SIM_BODY_MAX_TASKS;
  if (strncmp(url, "/_sim/", 6) == 0)
    return SIM_BODY_MAX_CONTROL;
  return SIM_BODY_MAX_API;
}

/* The body of a hostile answer, read by MHD through on_stream_read. */
struct stream {
  struct sim_http *h;
  struct MHD_Connection *conn;
  enum sim_stream kind;
  char *body; /* TRUNCATE, TRICKLE */
  size_t len;
  uint64_t size;    /* announced Content-Length */
  size_t keep;      /* TRUNCATE */
  uint64_t every;   /* TRICKLE: ms between bytes */
  uint64_t next_ms; /* TRICKLE: when the next byte may go (monotonic) */
};

static int delay_connection(struct sim_http *h, struct MHD_Connection *conn, uint64_t delay_ms);

static ssize_t on_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  static const char head[] = "{\"code\":0,\"msg\":\"", tail[] = "\"}";
  struct stream *st = cls;
  uint64_t now;
  size_t n;

  switch (st->kind) {
  case SIM_STREAM_TRUNCATE:
    if (pos >= st->keep)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    n = st->keep - (size_t)pos < max ? st->keep - (size_t)pos : max;
    memcpy(buf, st->body + pos, n);
    return (ssize_t)n;
  case SIM_STREAM_HUGE:
    /* {"code":0,"msg":"xxxx...x"} of exactly st->size bytes. */
    n = st->size - pos < max ? (size_t)(st->size - pos) : max;
    for (size_t i = 0; i < n; i++) {
      uint64_t at = pos + i;
      if (at < sizeof(head) - 1)
        buf[i] = head[at];
      else if (at >= st->size - (sizeof(tail) - 1))
        buf[i] = tail[at - (st->size - (sizeof(tail) - 1))];
      else
        buf[i] = 'x';
    }
    return (ssize_t)n;
  case SIM_STREAM_TRICKLE:
    if (pos >= st->len)
      return MHD_CONTENT_READER_END_OF_STREAM;
    now = sim_mono_ms();
    if (now >= st->next_ms) {
      buf[0] = st->body[pos];
      st->next_ms = now + st->every;
      return 1;
    }
    if (delay_connection(st->h, st->conn, st->next_ms - now) != 0)
      return MHD_CONTENT_READER_END_WITH_ERROR; /* shutting down */
    return 0;
  case SIM_STREAM_NONE:
    break;
  }
  return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void on_stream_free(void *cls)
{
  struct stream *st = cls;
  free(st->body);
  free(st);
}

static struct MHD_Response *make_stream(struct sim_http *h, struct MHD_Connection *conn,
                                        struct sim_answer *a)
{
  struct stream *st = calloc(1, sizeof(*st));
  struct MHD_Response *resp;

  if (!st)
    return NULL;
  st->h = h;
  st->conn = conn;
  st->kind = a->stream;
  st->body = sim_buf_take(&a->body, &st->len);
  st->size = st->kind == SIM_STREAM_HUGE ? a->stream_size : st->len;
  st->keep = a->stream_keep;
  st->every = a->trickle_ms ? a->trickle_ms : 1000;
  resp = MHD_create_response_from_callback(st->size, 4096, on_stream_read, st, on_stream_free);
  if (!resp)
    on_stream_free(st);
  return resp;
}

static struct MHD_Response *make_response(struct sim_http *h, struct MHD_Connection *conn,
                                          struct sim_answer *a)
{
  struct MHD_Response *resp;
  char num[32];
  size_t len = 0;
  char *body = NULL;

  if (a->stream != SIM_STREAM_NONE) {
    resp = make_stream(h, conn, a);
  } else {
    body = sim_buf_take(&a->body, &len);
    if (body)
      resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    else
      resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!resp) {
    free(body);
    return NULL;
  }
  MHD_add_response_header(resp, "Content-Type", a->content_type);
  MHD_add_response_header(resp, "X-Tt-Logid", a->log_id);
  if (a->rl_limit >= 0) {
    snprintf(num, sizeof(num), "%lld", a->rl_limit);
    MHD_add_response_header(resp, "x-ogw-ratelimit-limit", num);
    snprintf(num, sizeof(num), "%lld", a->rl_reset);
    MHD_add_response_header(resp, "x-ogw-ratelimit-reset", num);
  }
  return resp;
}

static enum MHD_Result send_kept(struct MHD_Connection *conn, struct request *rq)
{
  enum MHD_Result ret;

  rq->delayed = 0;
  if (rq->reset_after_delay)
    return MHD_NO;
  ret = MHD_queue_response(conn, rq->status, rq->resp);
  MHD_destroy_response(rq->resp);
  rq->resp = NULL;
  return ret;
}

static enum MHD_Result dispatch(struct sim_http *h, struct MHD_Connection *conn, const char *url,
                                const char *method, struct request *rq)
{
  struct sim_answer a;
  struct sim_req req;
  struct MHD_Response *resp = NULL;
  enum MHD_Result ret = MHD_NO;
  int control = strncmp(url, "/_sim/", 6) == 0;

  memset(&req, 0, sizeof(req));
  req.method = method;
  req.url = url;
  req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  req.body = rq->body.data;
  req.body_len = rq->body.len;
  req.body_too_large = rq->body.failed;
  req.arg = get_arg;
  req.arg_ctx = conn;
  sim_answer_init(&a);
  if (control)
    sim_control_handle(h->sim, &req, &a);
  else
    sim_api_handle(h->sim, &req, &a);
  if (h->verbose)
    fprintf(stderr, "dw-sim: %s %s -> %d%s delay=%llums log_id=%s\n", method, url, a.reset ? 0 : a.http,
            a.reset ? " (reset)" : "", (unsigned long long)a.delay_ms, a.log_id);
  sim_buf_free(&rq->body); /* not needed any more; keep idle keep-alive memory small */

  if (!a.reset) {
    resp = make_response(h, conn, &a);
    if (!resp)
      goto out;
  }
  if (a.delay_ms > 0 && delay_connection(h, conn, a.delay_ms) == 0) {
    rq->delayed = 1;
    rq->reset_after_delay = a.reset;
    rq->status = (unsigned int)a.http;
    rq->resp = resp;
    resp = NULL;
    ret = MHD_YES;
    goto out;
  }
  if (a.reset)
    goto out; /* MHD_NO: MHD closes the connection without an answer */
  ret = MHD_queue_response(conn, (unsigned int)a.http, resp);
out:
  if (resp)
    MHD_destroy_response(resp);
  sim_answer_cleanup(&a);
  return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
  struct sim_http *h = cls;
  struct request *rq = *con_cls;

  (void)version;
  if (!rq) {
    /* First call: headers only. Queueing here would cost keep-alive (see the top comment). */
    rq = calloc(1, sizeof(*rq));
    if (!rq)
      return MHD_NO;
    sim_buf_init(&rq->body, body_limit(url));
    *con_cls = rq;
    return MHD_YES;
  }
  if (rq->delayed)
    return send_kept(conn, rq);
  if (*upload_data_size) {
    /* Past the limit the rest is read and dropped; the answer is 413 (control) or 9499 (API). */
    sim_buf_add(&rq->body, upload_data, *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  return dispatch(h, conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct request *rq = *con_cls;

  (void)cls;
  (void)conn;
  (void)toe;
  if (!rq)
    return;
  if (rq->resp)
    MHD_destroy_response(rq->resp);
  sim_buf_free(&rq->body);
  free(rq);
  *con_cls = NULL;
}

int sim_http_start(struct sim_http **out, struct sim *s, const struct sockaddr *addr, unsigned threads,
                   int verbose, const char *tls_cert_pem, const char *tls_key_pem)
{
  struct sim_http *h = calloc(1, sizeof(*h));
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
  pthread_condattr_t ca;
  const union MHD_DaemonInfo *info;
  struct MHD_OptionItem opts[10];
  size_t n = 0;
  int rc = SIM_ENOMEM, cond_ok = 0, lock_ok = 0;

  *out = NULL;
  if (!h)
    return SIM_ENOMEM;
  h->sim = s;
  h->verbose = verbose;
  if (pthread_mutex_init(&h->tlock, NULL) != 0)
    goto out;
  lock_ok = 1;
  /* Timed waits on the monotonic clock, like every other deadline in the sim. */
  if (pthread_condattr_init(&ca) != 0)
    goto out;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  cond_ok = pthread_cond_init(&h->tcond, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!cond_ok)
    goto out;
  if (pthread_create(&h->timer, NULL, timer_main, h) != 0)
    goto out;
  h->timer_started = 1;

  if (addr->sa_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (verbose)
    flags |= MHD_USE_ERROR_LOG;
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 10000, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h};
  if (threads > 1)
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
  if (tls_cert_pem && tls_key_pem) { /* HTTPS (MHD with GnuTLS); both must outlive the daemon */
    flags |= MHD_USE_TLS;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)tls_cert_pem};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tls_key_pem};
  }
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

  rc = SIM_EINVAL;
  h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (!h->daemon) {
    fprintf(stderr, "dw-sim: cannot start the HTTP server (address in use, or bad address?)\n");
    goto out;
  }
  info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  if (!info || !info->port) {
    fprintf(stderr, "dw-sim: cannot read the bound port\n");
    goto out;
  }
  h->port = info->port;
  *out = h;
  h = NULL;
  rc = 0;
out:
  if (h) {
    if (!lock_ok || !cond_ok) {
      if (lock_ok)
        pthread_mutex_destroy(&h->tlock);
      free(h);
    } else {
      sim_http_stop(h);
    }
  }
  return rc;
}

uint16_t sim_http_port(const struct sim_http *h)
{
  return h->port;
}

void sim_http_stop(struct sim_http *h)
{
  if (!h)
    return;
  if (h->timer_started) {
    pthread_mutex_lock(&h->tlock);
    h->stopping = 1;
    pthread_cond_signal(&h->tcond);
    pthread_mutex_unlock(&h->tlock);
    /* The timer resumes every held connection before it exits. */
    pthread_join(h->timer, NULL);
  }
  if (h->daemon)
    MHD_stop_daemon(h->daemon);
  free(h->heap);
  pthread_cond_destroy(&h->tcond);
  pthread_mutex_destroy(&h->tlock);
  free(h);
}
