/* The admin endpoint (/metrics, /healthz, /readyz) on the worker's libuv loop. libmicrohttpd
 * runs in its "external epoll" mode: MHD_USE_EPOLL without an internal thread keeps all of its
 * sockets in one epoll set of its own, whose fd becomes readable when any of them has an event.
 * A uv_poll watches that fd and calls MHD_run, which accepts, reads, answers and writes without
 * blocking. MHD also has work that no socket announces (idle connections to time out, data
 * already buffered, connections on its "ready" list after an edge-triggered event), so after
 * every MHD_run a uv_timer is armed from MHD_get_timeout: "MHD_run must be called not later
 * than timeout ms" is the contract of external polling. It matters: with two pipelined
 * requests in one segment, MHD answers the first, reports a timeout of 0, and answers the
 * second only when run again; the socket, edge-triggered, announces nothing more.
 *
 * MHD re-checks whether its listen socket belongs in that epoll set only at the start of a run:
 * it takes the socket out while it holds its connection limit, and when the connections then
 * close, nothing is left in the set to wake the loop and MHD_get_timeout reports no work, so
 * the endpoint would never accept again. Hence a run that closed a connection is followed by
 * another one at once, which puts the listen socket back.
 *
 * Clients cannot take every slot: the endpoint tracks its connections (MHD_OPTION_NOTIFY_*),
 * and a connection beyond DW_ADMIN_MAX_CONNECTIONS sheds the oldest one that is not being
 * answered, preferring one that never completed a request (idle or half-sent) over a kept-alive
 * one, and else one being answered whose client stopped taking the answer (a slow reader; the
 * kernel's count of acknowledged bytes tells progress, since MHD's own activity time is not
 * exposed). The newest connections are spared: MHD accepts a batch before it reads any, so the
 * one just accepted (often a probe) has not been read yet, not even sent maybe. Shedding is
 * shutdown(2) on the socket MHD owns: MHD sees the end of the stream on its next run and
 * closes the connection itself. MHD's own limit sits above ours, so it is reached only if sheds
 * cannot keep up (every older connection answering and still progressing), and idle
 * connections still time out after DW_ADMIN_IDLE_TIMEOUT_S.
 *
 * Responses are queued on the second call of the access handler, never the first: MHD 0.9.75
 * answers "Connection: close" to a response queued on the first call, which ends keep-alive
 * (docs/design.md, "The admin endpoint"). The exception is a request announcing a body:
 * none is wanted and MHD refuses a response while one arrives, so it is answered at once. */
#include "dw/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/hostport.h"
#include "dw/log.h"
#include "dw/text.h"

#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"
/* How often connections over the limit are looked at again for stalls. */
#define SHED_CHECK_MS 1000
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* One accepted connection, from MHD's "started" to its "closed" notification. */
struct conn {
  struct conn *prev, *next; /* oldest first */
  struct dw_admin *a;
  int fd;
  unsigned requests; /* completed on this connection */
  int answering;     /* a request's headers arrived and it is not completed yet */
  uint64_t acked;       /* while answering: the client's acknowledged bytes when last sampled */
  uint64_t progress_ms; /* while answering: when acked last changed (uv_now) */
  int shed;          /* shut down by us, waiting for MHD to close it */
};

struct dw_admin {
  uv_loop_t *loop;
  struct MHD_Daemon *daemon;
  uv_poll_t poll;   /* MHD's epoll fd */
  uv_timer_t timer; /* MHD_get_timeout */
  int open_handles;
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
  int port;
  struct dw_admin_handler h;
  /* Fixed answers, created once and queued by reference (MHD counts the references). */
  struct MHD_Response *healthy, *ready, *not_found, *not_allowed;
  char start_error[256]; /* MHD's last message while starting */
  int starting;
  struct conn *oldest, *newest;
  size_t open_conns;  /* tracked connections not shed */
  int closed_in_run;  /* a connection closed during this MHD_run */
};

/* *con_cls of a request: NULL before the first access-handler call, then &request_seen, and
 * &request_answered once a response is queued. */
static int request_seen, request_answered;

/* Whether the request says a body follows (Content-Length > 0, or chunked). */
static int announces_body(struct MHD_Connection *c)
{
  const char *cl =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    return 1;
  return cl && strspn(cl, "0") != strlen(cl);
}

/* MHD_OPTION_EXTERNAL_LOGGER: while starting, keep the message for dw_admin_start's err;
 * afterwards log it (connection-level trouble: resets, timeouts, the connection limit). */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                              va_list ap)
{
  struct dw_admin *a = cls;
  char msg[256];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
    msg[--n] = '\0';
  if (a->starting)
    dw_text_copy(a->start_error, sizeof(a->start_error), msg);
  else
    dw_warn("admin: %s", msg);
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *text)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO; /* MHD closes the connection */
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE_TEXT);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result answer_metrics(struct dw_admin *a, struct MHD_Connection *c)
{
  char *body = NULL;
  size_t len = 0;
  if (!a->h.render)
    return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, a->not_found);
  int rc = a->h.render(a->h.arg, &body, &len);
  if (rc != 0 || !body) {
    free(body);
    dw_warn("admin: rendering /metrics failed: %s", dw_strerror(rc));
    return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable\n");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE_METRICS);
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result answer_readyz(struct dw_admin *a, struct MHD_Connection *c)
{
  char why[DW_ADMIN_MAX_REASON];
  why[0] = '\0';
  int ready = !a->h.ready || a->h.ready(a->h.arg, why, sizeof(why) - 1);
  why[sizeof(why) - 2] = '\0'; /* the callback's string is bounded even if it forgot the NUL */
  if (ready && why[0] == '\0')
    return MHD_queue_response(c, MHD_HTTP_OK, a->ready);
  size_t n = strlen(why);
  if (n == 0)
    n = (size_t)snprintf(why, sizeof(why), "not ready");
  why[n] = '\n';
  why[n + 1] = '\0';
  return queue_text(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
}

/* Linux's struct tcp_info as far as tcpi_bytes_acked (Linux 4.1): glibc's copy ends before
 * it, and <linux/tcp.h> clashes with <netinet/tcp.h>, which microhttpd.h includes. The
 * kernel only ever appends to the struct. */
struct tcp_info_acked {
  struct tcp_info base;
  uint64_t pacing_rate;
  uint64_t max_pacing_rate;
  uint64_t bytes_acked;
};

/* Bytes of the answer the client acknowledged so far (TCP_INFO), or 0 if unknown. */
static uint64_t bytes_acked(int fd)
{
  struct tcp_info_acked ti;
  socklen_t len = sizeof(ti);
  memset(&ti, 0, sizeof(ti));
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < sizeof(ti))
    return 0; /* an older kernel: a stall then counts from the answer's start */
  return ti.bytes_acked;
}

/* Whether k, being answered, took none of its answer for DW_ADMIN_STALL_S (a client that
 * sent a request and stopped reading). Samples the acknowledged bytes: a change since the
 * last sample is progress, now. */
static int stalled(struct conn *k, uint64_t now)
{
  uint64_t acked = bytes_acked(k->fd);
  if (acked != k->acked) {
    k->acked = acked;
    k->progress_ms = now;
  }
  return now - k->progress_ms >= (uint64_t)DW_ADMIN_STALL_S * 1000;
}

/* Whether the client sent bytes MHD has not read yet: a request on its way, so the
 * connection is not idle even if MHD has not seen it (it accepts before it reads). */
static int has_unread(int fd)
{
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* The connection to shed: the oldest among those that never completed a request (idle since
 * connecting, or still sending one), else among kept-alive ones, else among those being
 * answered that stalled. Never one of the DW_ADMIN_NEWEST_SPARED newest (the one whose
 * arrival asks for a shed is often a probe, and MHD accepts a batch before it reads any: a
 * probe has that many arrivals' time to send its request), nor one whose request is already
 * waiting in its socket. NULL if none. */
static struct conn *shed_candidate(struct dw_admin *a)
{
  struct conn *kept_alive = NULL, *stuck = NULL, *spared = a->newest;
  uint64_t now = uv_now(a->loop);
  size_t n = 0;
  for (; spared; spared = spared->prev)
    if (!spared->shed && ++n == DW_ADMIN_NEWEST_SPARED)
      break;
  if (!spared)
    return NULL;
  for (struct conn *k = a->oldest; k != spared; k = k->next) {
    if (k->shed)
      continue;
    if (k->answering) {
      if (!stuck && stalled(k, now))
        stuck = k;
      continue;
    }
    if (has_unread(k->fd))
      continue;
    if (k->requests == 0)
      return k;
    if (!kept_alive)
      kept_alive = k;
  }
  return kept_alive ? kept_alive : stuck;
}

/* Sheds connections until at most DW_ADMIN_MAX_CONNECTIONS are left or none can go. */
static void shed(struct dw_admin *a)
{
  struct conn *k;
  int n = 0;
  while (a->open_conns > DW_ADMIN_MAX_CONNECTIONS && (k = shed_candidate(a))) {
    k->shed = 1;
    a->open_conns--;
    n++;
    /* The socket stays MHD's: shutdown only ends the stream, MHD closes it on its next run. */
    if (shutdown(k->fd, SHUT_RDWR) != 0)
      dw_debug("admin: shutdown: %s", strerror(errno));
  }
  if (n > 0)
    dw_warn("admin: more than %d connections; closing the oldest idle or stalled ones",
            DW_ADMIN_MAX_CONNECTIONS);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
  struct dw_admin *a = cls;
  struct conn *k = *socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = calloc(1, sizeof(*k));
    if (!k || !info) {
      /* Untracked: never shed, but MHD's limit and timeout still hold it. */
      free(k);
      return;
    }
    k->a = a;
    k->fd = info->connect_fd;
    k->prev = a->newest;
    if (a->newest)
      a->newest->next = k;
    else
      a->oldest = k;
    a->newest = k;
    *socket_context = k;
    ++a->open_conns;
    shed(a);
    return;
  }
  /* MHD_CONNECTION_NOTIFY_CLOSED */
  a->closed_in_run = 1;
  if (!k)
    return;
  if (!k->shed)
    a->open_conns--;
  if (k->prev)
    k->prev->next = k->next;
  else
    a->oldest = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    a->newest = k->prev;
  free(k);
  *socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return info ? info->socket_context : NULL;
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over (answered, or its connection failed). */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  (void)cls;
  (void)con_cls;
  struct conn *k = conn_of(c);
  if (!k)
    return;
  k->answering = 0;
  if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    k->requests++;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
  struct dw_admin *a = cls;
  (void)version;
  (void)upload_data;
  if (*con_cls == &request_answered) {
    dw_debug("admin: %zu body bytes after the answer", *upload_data_size);
    *upload_data_size = 0;
    return MHD_YES;
  }
  if (!*con_cls) {
    struct conn *k = conn_of(c);
    if (k) {
      k->answering = 1;
      k->acked = bytes_acked(k->fd);
      k->progress_ms = uv_now(a->loop);
    }
  }
  if (!*con_cls && !announces_body(c)) {
    /* First call, headers only: answering now would cost keep-alive (see the top). */
    *con_cls = &request_seen;
    return MHD_YES;
  }
  /* Second call, or the first of a request with a body. No route takes a body, and MHD
   * refuses a response queued while one is arriving, so such a request is answered before its
   * body is read (MHD then closes the connection rather than read an unwanted body). */
  *con_cls = &request_answered;
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, a->not_allowed);
  if (strcmp(url, "/metrics") == 0)
    return answer_metrics(a, c);
  if (strcmp(url, "/healthz") == 0)
    return MHD_queue_response(c, MHD_HTTP_OK, a->healthy);
  if (strcmp(url, "/readyz") == 0)
    return answer_readyz(a, c);
  return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, a->not_found);
}

static void on_timer(uv_timer_t *timer);

/* After every MHD_run: MHD must run again within MHD_get_timeout ms even if no socket is
 * ready; MHD_NO means it has nothing timed (no connections) and only the epoll fd matters.
 * A run that closed a connection is followed by another at once: only a run's start puts
 * the listen socket back into MHD's epoll set after the connection limit (see the top). */
static void run_mhd(struct dw_admin *a)
{
  MHD_UNSIGNED_LONG_LONG ms;
  a->closed_in_run = 0;
  MHD_run(a->daemon);
  /* Over the limit, connections being answered may stall while none arrives to ask for a
   * shed (MHD accepts nothing at its own limit): look again every SHED_CHECK_MS. */
  shed(a);
  int over = a->open_conns > DW_ADMIN_MAX_CONNECTIONS;
  if (a->closed_in_run)
    uv_timer_start(&a->timer, on_timer, 0, 0);
  else if (MHD_get_timeout(a->daemon, &ms) == MHD_YES)
    uv_timer_start(&a->timer, on_timer,
                   over ? DW_MIN((uint64_t)ms, SHED_CHECK_MS) : (uint64_t)ms, 0);
  else if (over)
    uv_timer_start(&a->timer, on_timer, SHED_CHECK_MS, 0);
  else
    uv_timer_stop(&a->timer);
}

static void on_timer(uv_timer_t *timer)
{
  run_mhd(timer->data);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
  (void)events;
  struct dw_admin *a = poll->data;
  if (status < 0)
    dw_warn("admin: watching the epoll fd: %s", uv_strerror(status));
  run_mhd(a);
}

static void on_handle_closed(uv_handle_t *handle)
{
  struct dw_admin *a = handle->data;
  if (--a->open_handles == 0) {
    void (*done)(void *) = a->done;
    void *arg = a->done_arg;
    free(a);
    if (done)
      done(arg);
  }
}

/* "host:port" → a socket address. Hosts are numeric (or "localhost"): no DNS on startup. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err,
                        size_t errlen)
{
  struct dw_hostport hp;
  enum dw_hostport_error e = dw_hostport_parse(listen, &hp);
  if (e == DW_HOSTPORT_OK && !hp.host[0])
    e = DW_HOSTPORT_FORM;
  switch (e) {
  case DW_HOSTPORT_OK:
    break;
  case DW_HOSTPORT_PORT:
    snprintf(err, errlen, "admin listen address \"%s\": port must be 0-65535", listen);
    return DW_EINVAL;
  case DW_HOSTPORT_V6:
    snprintf(err, errlen, "admin listen address \"%s\": must be [IPv6]:port", listen);
    return DW_EINVAL;
  default:
    snprintf(err, errlen, "admin listen address \"%s\": must be host:port",
             listen ? listen : "(null)");
    return DW_EINVAL;
  }
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (!hp.bracketed && strcmp(hp.host, "localhost") == 0) {
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons(hp.port);
  } else if (!hp.bracketed && inet_pton(AF_INET, hp.host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(hp.port);
  } else if (hp.bracketed && inet_pton(AF_INET6, hp.host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(hp.port);
  } else {
    snprintf(err, errlen,
             "admin listen address \"%s\": host must be an IPv4 address, [IPv6 address] "
             "or localhost",
             listen);
    return DW_EINVAL;
  }
  return 0;
}

/* What binding ss as libmicrohttpd does (SO_REUSEADDR, dual-stack IPv6) fails with: errno,
 * or 0 when it binds now. */
static int bind_errno(const struct sockaddr_storage *ss)
{
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno;
  int on = 1, off = 0, e = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (ss->ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  if (bind(fd, (const struct sockaddr *)ss, len) != 0)
    e = errno;
  close(fd);
  return e;
}

static struct MHD_Response *fixed_response(const char *text)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (r)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE_TEXT);
  return r;
}

static void destroy_responses(struct dw_admin *a)
{
  struct MHD_Response **rs[] = {&a->healthy, &a->ready, &a->not_found, &a->not_allowed};
  for (size_t i = 0; i < DW_ARRAY_SIZE(rs); i++)
    if (*rs[i]) {
      MHD_destroy_response(*rs[i]);
      *rs[i] = NULL;
    }
}

int dw_admin_start(struct dw_admin **out, uv_loop_t *loop, const char *listen,
                   const struct dw_admin_handler *h, char *err, size_t errlen)
{
  struct sockaddr_storage ss;
  struct dw_admin *a = NULL;
  int rc;
  *out = NULL;
  if (errlen)
    err[0] = '\0';
  rc = parse_listen(listen, &ss, err, errlen);
  if (rc != 0)
    goto out;
  rc = DW_ENOMEM;
  a = calloc(1, sizeof(*a));
  if (!a) {
    snprintf(err, errlen, "admin: out of memory");
    goto out;
  }
  a->loop = loop;
  if (h)
    a->h = *h;
  a->healthy = fixed_response("ok\n");
  a->ready = fixed_response("ready\n");
  a->not_found = fixed_response("not found\n");
  a->not_allowed = fixed_response("method not allowed\n");
  if (!a->healthy || !a->ready || !a->not_found || !a->not_allowed) {
    snprintf(err, errlen, "admin: out of memory");
    goto out;
  }
  if (MHD_add_response_header(a->not_allowed, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) {
    snprintf(err, errlen, "admin: out of memory");
    goto out;
  }

  /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD_run on our loop does all the work. IPv6 listens
   * dual-stack, so "[::]:port" also takes IPv4 as on most servers. */
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_DUAL_STACK;
  a->starting = 1;
  errno = 0;
  a->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
      (unsigned int)(DW_ADMIN_MAX_CONNECTIONS + DW_ADMIN_SHED_HEADROOM),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)DW_ADMIN_IDLE_TIMEOUT_S,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, a, MHD_OPTION_NOTIFY_COMPLETED,
      on_completed, a, MHD_OPTION_END);
  int saved_errno = errno;
  a->starting = 0;
  if (!a->daemon) {
    /* errno is bind's or listen's. MHD's own message names "port 0" whenever the address
     * came through MHD_OPTION_SOCK_ADDR, so it is only the fallback. */
    rc = DW_EIO;
    /* libmicrohttpd 1.0 closes its socket after a failed bind, which leaves EBADF in errno:
     * bind the address once more, as MHD did, to name the cause. */
    if (saved_errno == EBADF || saved_errno == 0)
      saved_errno = bind_errno(&ss);
    if (saved_errno)
      snprintf(err, errlen, "admin listen %s: %s", listen, strerror(saved_errno));
    else
      snprintf(err, errlen, "admin listen %s: %s", listen,
               a->start_error[0] ? a->start_error : "libmicrohttpd could not start");
    if (a->start_error[0])
      dw_debug("admin: libmicrohttpd: %s", a->start_error);
    goto out;
  }

  const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
  a->port = info ? info->port : 0;
  info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info || info->epoll_fd < 0) {
    rc = DW_EIO;
    snprintf(err, errlen, "admin listen %s: libmicrohttpd has no epoll fd", listen);
    goto out;
  }
  rc = uv_poll_init(loop, &a->poll, info->epoll_fd);
  if (rc != 0) {
    snprintf(err, errlen, "admin listen %s: uv_poll_init: %s", listen, uv_strerror(rc));
    rc = DW_EIO;
    goto out;
  }
  uv_timer_init(loop, &a->timer);
  a->poll.data = a;
  a->timer.data = a;
  a->open_handles = 2;
  uv_poll_start(&a->poll, UV_READABLE, on_poll);
  *out = a;
  return 0;
out:
  if (a) {
    if (a->daemon)
      MHD_stop_daemon(a->daemon);
    destroy_responses(a);
    free(a);
  }
  return rc;
}

int dw_admin_port(const struct dw_admin *a)
{
  return a->port;
}

void dw_admin_close(struct dw_admin *a, void (*done)(void *arg), void *arg)
{
  if (!a)
    return;
  a->done = done;
  a->done_arg = arg;
  /* uv_close on the poll drops the epoll fd from libuv's set at once, so MHD may close it
   * right after; the memory goes when both close callbacks have run. */
  uv_close((uv_handle_t *)&a->poll, on_handle_closed);
  uv_close((uv_handle_t *)&a->timer, on_handle_closed);
  MHD_stop_daemon(a->daemon);
  a->daemon = NULL;
  destroy_responses(a);
}
