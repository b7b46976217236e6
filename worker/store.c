/* The shared budget store (dw/store.h): the poller asks it for call permits when limits.store
 * is set. One connection to Redis or Valkey through hiredis's asynchronous API on the loop (its
 * libuv adapter watches the socket); each ask is one EVAL of the script below, whose answers
 * come back in order, so the oldest pending ask is the one a timeout looks at. A connection
 * whose oldest ask is late is dropped (hiredis fails every pending ask with it) and made again
 * on the next ask, after the host name is resolved again on libuv's thread pool. */
#include "dw/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/hostport.h"
#include "dw/log.h"

#ifdef DW_HAVE_HIREDIS
#include <arpa/inet.h>
#include <netdb.h>
#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define KEY_MAX 1024
/* A TCP connect may take longer than an answer: at least a second. */
#define CONNECT_TIMEOUT_MIN_MS 1000

/* The sliding log of one app and tenant: a sorted set of call times (ms, the store's clock),
 * members numbered by a counter so that calls in the same millisecond all count. Grants as
 * many of the wanted permits as both windows allow, or none and the wait until one is free.
 * KEYS: the log, the counter (one hash tag: one slot). ARGV: per second, per minute (0:
 * unlimited), the two windows in ms (widened by the slack), permits wanted. Answers {granted,
 * wait ms when none, calls in the 1 s window, in the 60 s window}. TIME before writes
 * needs effects replication: Redis 7 and Valkey do it by default, older ones are asked. */
static const char script[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ps, pm = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local ws, wm = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local free, wait = tonumber(ARGV[5]), 0\n"
    "local keep = math.max(ws, wm)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)\n"
    "local function limit(n, w)\n"
    "  if n <= 0 then return 0 end\n"
    "  local c = redis.call('ZCOUNT', KEYS[1], now - w + 1, '+inf')\n"
    "  if c >= n then\n"
    "    local e = redis.call('ZRANGE', KEYS[1], -n, -n, 'WITHSCORES')\n"
    "    wait = math.max(wait, tonumber(e[2]) + w - now)\n"
    "    free = 0\n"
    "  elseif n - c < free then\n"
    "    free = n - c\n"
    "  end\n"
    "  return c\n"
    "end\n"
    "local cs = limit(ps, ws)\n"
    "local cm = limit(pm, wm)\n"
    "if free > 0 then\n"
    "  local seq = redis.call('INCRBY', KEYS[2], free)\n"
    "  for i = seq - free + 1, seq do redis.call('ZADD', KEYS[1], now, i) end\n"
    "  redis.call('PEXPIRE', KEYS[1], keep + 1000)\n"
    "  redis.call('PEXPIRE', KEYS[2], keep + 1000)\n"
    "end\n"
    "if ps > 0 then cs = cs + free end\n"
    "if pm > 0 then cm = cm + free end\n"
    "return {free, wait, cs, cm}\n";

enum conn_state { CONN_IDLE, CONN_RESOLVING, CONN_CONNECTING, CONN_UP };

/* An ask waiting for its answer, oldest first. */
struct ask {
  struct dw_store *s;
  struct ask *prev, *next;
  uint64_t deadline_ms;
  dw_store_cb cb;
  void *arg;
};

struct dw_store {
  uv_loop_t *loop;
  char host[256];
  char port[8];
  uint64_t timeout_ms;
  dw_store_ready_cb on_ready;
  void *arg;
  enum conn_state state;
  redisAsyncContext *ac;
  uint64_t connect_deadline_ms;
  uv_getaddrinfo_t gai;
  int resolving;          /* gai in flight (its callback still to run) */
  uv_timer_t timer;       /* the oldest ask's deadline, or the connect's */
  struct ask *head, *tail;
  int drop_err;           /* what the asks failed by a drop get */
  int closing, timer_closed;
  int down_said;          /* the store's failure was logged as a warning since it was last up */
  void (*done)(void *arg);
  void *done_arg;
};

static void rearm(struct dw_store *s);

/* The first failure since the store was last up is a warning; while it stays down, the retries
 * that fail again are debug lines. */
#define SAY_DOWN(s, ...)                                                                        \
  do {                                                                                          \
    dw_log_write((s)->down_said ? DW_LOG_DEBUG : DW_LOG_WARN, DW_LOG_CTX_NONE, __VA_ARGS__);    \
    (s)->down_said = 1;                                                                         \
  } while (0)

static void ask_unlink(struct dw_store *s, struct ask *a)
{
  if (a->prev)
    a->prev->next = a->next;
  else
    s->head = a->next;
  if (a->next)
    a->next->prev = a->prev;
  else
    s->tail = a->prev;
}

static void maybe_free(struct dw_store *s)
{
  if (!s->closing || !s->timer_closed || s->resolving)
    return;
  void (*done)(void *) = s->done;
  void *arg = s->done_arg;
  free(s);
  if (done)
    done(arg);
}

/* Fails every pending ask with the connection: hiredis calls each callback with no reply. */
static void drop(struct dw_store *s, int err, const char *why)
{
  redisAsyncContext *ac = s->ac;
  if (!s->closing)
    SAY_DOWN(s, "shared budget store %s:%s: %s; using this replica's share until it answers",
             s->host, s->port, why);
  s->ac = NULL;
  s->state = CONN_IDLE;
  s->drop_err = err;
  if (ac)
    redisAsyncFree(ac);
  rearm(s);
}

static void on_timer(uv_timer_t *t)
{
  struct dw_store *s = t->data;
  uint64_t now = uv_now(s->loop);
  if (s->state == CONN_CONNECTING && now >= s->connect_deadline_ms)
    drop(s, DW_ETIMEDOUT, "no connection within the timeout");
  else if (s->state == CONN_UP && s->head && now >= s->head->deadline_ms)
    drop(s, DW_ETIMEDOUT, "no answer within limits.store_timeout_ms");
  else
    rearm(s);
}

static void rearm(struct dw_store *s)
{
  uint64_t now = uv_now(s->loop), at;
  if (s->closing)
    return;
  if (s->state == CONN_CONNECTING)
    at = s->connect_deadline_ms;
  else if (s->state == CONN_UP && s->head)
    at = s->head->deadline_ms;
  else {
    uv_timer_stop(&s->timer);
    return;
  }
  uv_timer_start(&s->timer, on_timer, at > now ? at - now : 0, 0);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
  struct dw_store *s = ac->data;
  if (s->ac != ac)
    return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback. */
    SAY_DOWN(s, "shared budget store %s:%s: cannot connect: %s; using this replica's share "
             "until it answers", s->host, s->port, ac->errstr);
    s->ac = NULL;
    s->state = CONN_IDLE;
    rearm(s);
    return;
  }
  s->state = CONN_UP;
  s->down_said = 0;
  s->drop_err = 0;
  dw_info("shared budget store %s:%s connected", s->host, s->port);
  rearm(s);
  if (s->on_ready)
    s->on_ready(s->arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
  struct dw_store *s = ac->data;
  (void)status;
  if (s->ac != ac)
    return; /* dropped by us: said already */
  SAY_DOWN(s, "shared budget store %s:%s: connection lost: %s; using this replica's share "
           "until it answers", s->host, s->port,
           ac->errstr[0] ? ac->errstr : "closed by the server");
  s->ac = NULL;
  s->state = CONN_IDLE;
  rearm(s);
}

static void connect_to(struct dw_store *s, const char *ip)
{
  long port = strtol(s->port, NULL, 10); /* validated by dw_store_new */
  redisAsyncContext *ac = redisAsyncConnect(ip, (int)port);
  if (!ac || ac->err) {
    SAY_DOWN(s, "shared budget store %s:%s: cannot connect: %s", s->host, s->port,
             ac ? ac->errstr : "out of memory");
    if (ac)
      redisAsyncFree(ac);
    s->state = CONN_IDLE;
    return;
  }
  ac->data = s;
  if (redisLibuvAttach(ac, s->loop) != REDIS_OK) {
    SAY_DOWN(s, "shared budget store %s:%s: cannot watch its socket", s->host, s->port);
    redisAsyncFree(ac);
    s->state = CONN_IDLE;
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  s->ac = ac;
  s->state = CONN_CONNECTING;
  s->connect_deadline_ms = uv_now(s->loop) + DW_MAX(s->timeout_ms, CONNECT_TIMEOUT_MIN_MS);
  rearm(s);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  struct dw_store *s = req->data;
  char ip[INET6_ADDRSTRLEN] = "";
  s->resolving = 0;
  if (s->closing) {
    uv_freeaddrinfo(res);
    maybe_free(s);
    return;
  }
  if (status == 0 && res) {
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    if (!inet_ntop(res->ai_family, addr, ip, sizeof(ip)))
      ip[0] = '\0';
  }
  uv_freeaddrinfo(res);
  if (!ip[0]) {
    SAY_DOWN(s, "shared budget store: cannot resolve %s: %s", s->host,
             status ? uv_strerror(status) : "no address");
    s->state = CONN_IDLE;
    return;
  }
  connect_to(s, ip);
}

/* Starts a connection when none is up or on its way. */
static void kick(struct dw_store *s)
{
  struct addrinfo hints;
  if (s->state != CONN_IDLE || s->closing)
    return;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  s->gai.data = s;
  s->state = CONN_RESOLVING;
  if (uv_getaddrinfo(s->loop, &s->gai, on_resolved, s->host, s->port, &hints) != 0) {
    s->state = CONN_IDLE;
    return;
  }
  s->resolving = 1;
}

/* The script's answer: four integers, none negative. */
static int answer_of(const redisReply *reply, struct dw_store_answer *ans)
{
  long long v[4];
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
    return DW_EINVAL;
  for (size_t i = 0; i < 4; i++) {
    if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0)
      return DW_EINVAL;
    v[i] = DW_MIN(reply->element[i]->integer, (long long)UINT32_MAX);
  }
  ans->granted = (uint32_t)v[0];
  ans->wait_ms = (uint64_t)v[1];
  ans->in_second = (uint32_t)v[2];
  ans->in_minute = (uint32_t)v[3];
  return 0;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
  struct ask *a = privdata;
  struct dw_store *s = a->s;
  redisReply *reply = r;
  int err = 0;
  struct dw_store_answer ans = {0};
  (void)ac;
  ask_unlink(s, a);
  if (!reply) {
    err = s->closing ? DW_ECANCELED : s->drop_err ? s->drop_err : DW_EIO;
  } else if (answer_of(reply, &ans) < 0) {
    dw_warn("shared budget store %s:%s: unexpected answer to the budget script: %s", s->host,
            s->port, reply->type == REDIS_REPLY_ERROR ? reply->str : "not four integers");
    err = DW_EIO;
  }
  if (!s->closing && s->ac)
    rearm(s);
  a->cb(a->arg, err, err ? NULL : &ans);
  free(a);
}

int dw_store_new(struct dw_store **out, uv_loop_t *loop, const char *url, uint64_t timeout_ms,
                 dw_store_ready_cb on_ready, void *arg, char *err, size_t errlen)
{
  struct dw_hostport hp;
  struct dw_store *s;
  if (strncmp(url, "redis://", 8) != 0 || dw_hostport_parse(url + 8, &hp) != DW_HOSTPORT_OK ||
      !hp.host[0] || hp.port == 0) {
    snprintf(err, errlen, "limits.store: %s is not redis://HOST:PORT", url);
    return DW_EINVAL;
  }
  s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return DW_ENOMEM;
  }
  dw_strlcpy(s->host, hp.host, sizeof(s->host)); /* both 256 bytes */
  snprintf(s->port, sizeof(s->port), "%u", (unsigned)hp.port);
  s->loop = loop;
  s->timeout_ms = timeout_ms;
  s->on_ready = on_ready;
  s->arg = arg;
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_unref((uv_handle_t *)&s->timer);
  kick(s);
  *out = s;
  return 0;
}

int dw_store_take(struct dw_store *s, const struct dw_store_request *req, dw_store_cb cb,
                  void *arg)
{
  char key[KEY_MAX + 16], seq[KEY_MAX + 24], ps[24], pm[24], ws[24], wm[24], want[24];
  if (s->closing)
    return DW_ESTATE;
  if (s->state != CONN_UP) {
    kick(s);
    return DW_EAGAIN;
  }
  /* One hash tag: both keys in one slot of a cluster. */
  int n = snprintf(key, sizeof(key), "{%s}", req->key);
  if (n < 0 || (size_t)n >= sizeof(key))
    return DW_ERANGE;
  snprintf(seq, sizeof(seq), "%s:seq", key);
  snprintf(ps, sizeof(ps), "%u", req->per_second);
  snprintf(pm, sizeof(pm), "%u", req->per_minute);
  snprintf(ws, sizeof(ws), "%llu", (unsigned long long)(1000 + req->slack_ms));
  snprintf(wm, sizeof(wm), "%llu", (unsigned long long)(60000 + req->slack_ms));
  snprintf(want, sizeof(want), "%u", DW_MAX(1u, req->want));
  const char *argv[] = {"EVAL", script, "2", key, seq, ps, pm, ws, wm, want};
  size_t lens[DW_ARRAY_SIZE(argv)];
  for (size_t i = 0; i < DW_ARRAY_SIZE(argv); i++)
    lens[i] = strlen(argv[i]);
  struct ask *a = calloc(1, sizeof(*a));
  if (!a)
    return DW_ENOMEM;
  a->s = s;
  a->cb = cb;
  a->arg = arg;
  a->deadline_ms = uv_now(s->loop) + s->timeout_ms;
  if (redisAsyncCommandArgv(s->ac, on_reply, a, (int)DW_ARRAY_SIZE(argv), argv, lens) !=
      REDIS_OK) {
    free(a);
    return DW_EIO;
  }
  a->prev = s->tail;
  if (s->tail)
    s->tail->next = a;
  else
    s->head = a;
  s->tail = a;
  if (s->head == a)
    rearm(s);
  return 0;
}

int dw_store_connected(const struct dw_store *s)
{
  return s && s->state == CONN_UP;
}

static void on_timer_closed(uv_handle_t *h)
{
  struct dw_store *s = h->data;
  s->timer_closed = 1;
  maybe_free(s);
}

void dw_store_close(struct dw_store *s, void (*done)(void *arg), void *arg)
{
  if (!s) {
    if (done)
      done(arg);
    return;
  }
  s->done = done;
  s->done_arg = arg;
  s->closing = 1;
  if (s->ac) {
    redisAsyncContext *ac = s->ac;
    s->ac = NULL;
    redisAsyncFree(ac); /* pending asks get DW_ECANCELED; the adapter closes its handle */
  }
  if (s->resolving)
    uv_cancel((uv_req_t *)&s->gai);
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

#else /* no hiredis */

int dw_store_new(struct dw_store **out, uv_loop_t *loop, const char *url, uint64_t timeout_ms,
                 dw_store_ready_cb on_ready, void *arg, char *err, size_t errlen)
{
  (void)out, (void)loop, (void)url, (void)timeout_ms, (void)on_ready, (void)arg;
  snprintf(err, errlen, "limits.store is set but this build has no shared budget store: "
           "build with libhiredis-dev installed, or empty limits.store");
  return DW_ESTATE;
}

int dw_store_take(struct dw_store *s, const struct dw_store_request *req, dw_store_cb cb,
                  void *arg)
{
  (void)s, (void)req, (void)cb, (void)arg;
  return DW_ESTATE;
}

int dw_store_connected(const struct dw_store *s)
{
  (void)s;
  return 0;
}

void dw_store_close(struct dw_store *s, void (*done)(void *arg), void *arg)
{
  (void)s;
  if (done)
    done(arg);
}

#endif
