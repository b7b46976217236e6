/* The producer at the end of the flow: it writes results and dead letters, idempotent, and in
 * exactly-once mode transactional (the input offsets committed in the same transaction). It
 * sizes its message.max.bytes from the cluster's limits at start. Delivery reports and errors
 * are events of its main queue, served on the loop by the waker (dw/kafka.h). A transaction's
 * commit or abort waits for the broker, so it runs on libuv's thread pool, and its outcome
 * comes back on the loop. */
#include "dw/producer.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/consumer.h"
#include "dw/dlq.h"
#include "dw/kafka.h"
#include "dw/log.h"

#define TXN_CALL_TIMEOUT_MS 5000 /* each transaction call waits at most this long */
#define TXN_WAIT_SERVE_MS 10     /* a synchronous wait serves delivery reports this often */

enum txn_pending { TXN_NONE, TXN_COMMITTING, TXN_ABORTING };

/* The transaction's state as the transaction calls see it. The loop owns the producer's copy;
 * a call on the thread pool works on its own copy, which the loop takes back when it is over. */
struct txn_state {
  rd_kafka_t *rk;
  int in_txn;               /* a transaction is open */
  enum txn_pending pending; /* a commit or abort timed out and continues in the background */
};

struct txn_call;

struct dw_producer {
  rd_kafka_t *rk;
  struct dw_kafka_waker waker;
  size_t outstanding;
  size_t max_bytes;         /* its message.max.bytes */
  int transactional;
  struct txn_state txn;
  struct txn_call *call;    /* the transaction call on the thread pool, NULL none */
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
};

/* One commit or abort on libuv's thread pool. The pool thread reads rk (librdkafka's calls are
 * thread-safe), the offsets and the group, and writes state, rc and err, then `finished`; the
 * loop reads them only after that (from the after-work callback, or from a synchronous wait,
 * which sets `taken` so the after-work callback only frees the call). */
struct txn_call {
  uv_work_t req;
  struct dw_producer *p;
  int abort;                                /* abort the transaction, else commit it */
  struct txn_state state;                   /* the producer's, taken back when it is over */
  rd_kafka_topic_partition_list_t *offsets; /* the offsets to commit with it, NULL none */
  rd_kafka_consumer_group_metadata_t *group;
  int rc;
  char err[512];
  atomic_int finished;
  int taken;
  dw_txn_done_cb done;
  void *arg;
};

/* The transactional.id: configured, or stable per replica when it has a group instance id
 * (a restarted replica then fences its predecessor and aborts what it left open), or unique
 * per process. DW_ERANGE when it does not fit out: a cut id could be another replica's. */
static int transactional_id(const struct dw_config *cfg, char *out, size_t outlen)
{
  char host[256] = "localhost";
  int n;
  if (cfg->kafka.transactional_id[0]) {
    n = snprintf(out, outlen, "%s", cfg->kafka.transactional_id);
  } else if (cfg->kafka.group_instance_id[0]) {
    n = snprintf(out, outlen, "%s.%s", cfg->kafka.group_id, cfg->kafka.group_instance_id);
  } else {
    gethostname(host, sizeof(host) - 1);
    n = snprintf(out, outlen, "%s.%s.%ld", cfg->kafka.group_id, host, (long)getpid());
  }
  return n < 0 || (size_t)n >= outlen ? DW_ERANGE : 0;
}

/* Turns a transaction API error into DW_ESTATE (fatal), DW_EAGAIN (abort needed) or
 * DW_ETIMEDOUT (retriable: call again), and describes it. Destroys e. */
static int txn_error(rd_kafka_error_t *e, const char *what, char *err, size_t errlen)
{
  int rc = rd_kafka_error_is_fatal(e)             ? DW_ESTATE
           : rd_kafka_error_txn_requires_abort(e) ? DW_EAGAIN
           : rd_kafka_error_is_retriable(e)        ? DW_ETIMEDOUT
                                                   : DW_EAGAIN;
  snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(e));
  rd_kafka_error_destroy(e);
  return rc;
}

/* Opens a transaction if none is open. */
static int txn_begin(struct txn_state *s, char *err, size_t errlen)
{
  if (s->in_txn)
    return 0;
  rd_kafka_error_t *e = rd_kafka_begin_transaction(s->rk);
  if (e)
    return txn_error(e, "cannot begin a transaction", err, errlen);
  s->in_txn = 1;
  return 0;
}

/* The transaction ended (committed or aborted): open the next one now, or lazily later. */
static int txn_next(struct txn_state *s, char *err, size_t errlen)
{
  s->in_txn = 0;
  s->pending = TXN_NONE;
  int rc = txn_begin(s, err, errlen);
  return rc == DW_ESTATE ? rc : 0;
}

/* On the thread pool, as every function down to txn_commit. A commit or abort that timed out
 * goes on in the background; calling the same function again resumes it (librdkafka 2.0+).
 * Neither may be swapped for the other meanwhile: an abort while a commit is in progress is
 * refused, and would wedge the producer. */
static int txn_abort(struct txn_state *s, char *err, size_t errlen)
{
  if (s->pending == TXN_COMMITTING)
    return DW_ETIMEDOUT;
  if (!s->in_txn)
    return txn_next(s, err, errlen);
  rd_kafka_error_t *e = rd_kafka_abort_transaction(s->rk, TXN_CALL_TIMEOUT_MS);
  int rc = e ? txn_error(e, "cannot abort the transaction", err, errlen) : 0;
  if (rc == DW_ESTATE)
    return rc;
  if (rc < 0) {
    s->pending = TXN_ABORTING;
    return DW_ETIMEDOUT;
  }
  return txn_next(s, err, errlen);
}

/* Commits with the offsets l (NULL: none) of group g; returns as dw_txn_done_cb has it. */
static int txn_commit(struct txn_state *s, rd_kafka_topic_partition_list_t *l,
                      rd_kafka_consumer_group_metadata_t *g, char *err, size_t errlen)
{
  rd_kafka_error_t *e = NULL;
  int rc = 0, too_long = 0;
  if (s->pending == TXN_ABORTING)
    return txn_abort(s, err, errlen) == 0 ? DW_EAGAIN : DW_ETIMEDOUT;
  if (s->pending == TXN_NONE) {
    if ((rc = txn_begin(s, err, errlen)) < 0)
      return rc == DW_ESTATE ? rc : DW_ETIMEDOUT; /* nothing was produced without one */
    if (l) {
      for (int attempt = 0; attempt < 3; attempt++) {
        e = rd_kafka_send_offsets_to_transaction(s->rk, l, g, TXN_CALL_TIMEOUT_MS);
        /* A TxnOffsetCommit refused as OFFSET_METADATA_TOO_LARGE makes the transaction
         * abortable in 2.0.2 (an error with that code that requires an abort). */
        too_long = e && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
        rc = e ? txn_error(e, "cannot add the offsets to the transaction", err, errlen) : 0;
        if (rc != DW_ETIMEDOUT)
          break;
      }
      if (rc == DW_ETIMEDOUT)
        rc = DW_EAGAIN; /* the offsets may be half added: start over */
    }
  }
  if (rc == 0) {
    e = rd_kafka_commit_transaction(s->rk, TXN_CALL_TIMEOUT_MS);
    rc = e ? txn_error(e, "cannot commit the transaction", err, errlen) : 0;
    if (rc == DW_ETIMEDOUT) {
      s->pending = TXN_COMMITTING; /* the outcome is not known yet: resume next time */
      return rc;
    }
  }
  s->pending = TXN_NONE;
  if (rc == DW_ESTATE)
    return rc;
  if (rc < 0) {
    char why[512];
    int arc = txn_abort(s, why, sizeof(why));
    if (arc == DW_ESTATE) {
      snprintf(err, errlen, "%s", why);
      return arc;
    }
    return arc == DW_ETIMEDOUT ? DW_ETIMEDOUT : too_long ? DW_ERANGE : DW_EAGAIN;
  }
  return txn_next(s, err, errlen);
}

static void on_txn_work(uv_work_t *req)
{
  struct txn_call *t = req->data;
  t->rc = t->abort ? txn_abort(&t->state, t->err, sizeof(t->err))
                   : txn_commit(&t->state, t->offsets, t->group, t->err, sizeof(t->err));
  atomic_store(&t->finished, 1);
}

/* On the loop: the call is over. The delivery reports librdkafka had queued before it ended
 * are served first, as they were when the call served them itself; then the producer takes
 * its state back and done learns the outcome (it may produce into the next transaction). */
static int producer_serve(void *owner);

static void txn_take(struct txn_call *t)
{
  struct dw_producer *p = t->p;
  while (producer_serve(p))
    ;
  t->taken = 1;
  p->txn = t->state;
  p->call = NULL;
  t->done(t->arg, t->rc, t->err);
}

static void on_txn_done(uv_work_t *req, int status)
{
  struct txn_call *t = req->data;
  (void)status; /* never cancelled */
  if (!t->taken)
    txn_take(t);
  if (t->offsets)
    rd_kafka_topic_partition_list_destroy(t->offsets);
  if (t->group)
    rd_kafka_consumer_group_metadata_destroy(t->group);
  free(t);
}

/* Queues the call (its offsets, if any, already set). */
static int txn_start(struct dw_producer *p, struct txn_call *t, dw_txn_done_cb done, void *arg)
{
  t->req.data = t;
  t->p = p;
  t->state = p->txn;
  t->done = done;
  t->arg = arg;
  atomic_init(&t->finished, 0);
  if (uv_queue_work(p->waker.poll.loop, &t->req, on_txn_work, on_txn_done) < 0) {
    if (t->offsets)
      rd_kafka_topic_partition_list_destroy(t->offsets);
    if (t->group)
      rd_kafka_consumer_group_metadata_destroy(t->group);
    free(t);
    return DW_EIO;
  }
  p->call = t;
  return 0;
}

int dw_producer_txn_commit(struct dw_producer *p, struct dw_consumer *c,
                           const int32_t *partitions, const int64_t *offsets,
                           const char *const *metadata, size_t n, dw_txn_done_cb done,
                           void *arg)
{
  if (p->call)
    return DW_ESTATE;
  struct txn_call *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  /* Offsets only with a fresh commit: one that timed out resumes with those it has. */
  if (n > 0 && p->txn.pending == TXN_NONE) {
    t->group = dw_consumer_group_metadata(c);
    if (!t->group) { /* the consumer has left its group: not started, nothing changed */
      free(t);
      return DW_EIO;
    }
    t->offsets = dw_kafka_offsets_list(dw_consumer_topic(c), partitions, offsets, metadata, n);
  }
  return txn_start(p, t, done, arg);
}

int dw_producer_txn_abort(struct dw_producer *p, dw_txn_done_cb done, void *arg)
{
  if (p->call)
    return DW_ESTATE;
  struct txn_call *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  t->abort = 1;
  return txn_start(p, t, done, arg);
}

static int serve_until(struct dw_producer *p, int timeout_ms);

void dw_producer_txn_wait(struct dw_producer *p)
{
  struct txn_call *t = p->call;
  if (!t)
    return;
  /* librdkafka's commit and abort wait for the delivery reports to be served (event mode). */
  while (!atomic_load(&t->finished))
    serve_until(p, TXN_WAIT_SERVE_MS);
  txn_take(t);
}

int dw_producer_txn_in_flight(const struct dw_producer *p)
{
  return p->call != NULL;
}

int dw_producer_txn_busy(const struct dw_producer *p)
{
  return p->call || p->txn.pending != TXN_NONE;
}

int dw_producer_transactional(const struct dw_producer *p)
{
  return p->transactional;
}

struct delivery {
  dw_delivery_cb cb;
  void *arg;
};

static void on_delivery(struct dw_producer *p, const rd_kafka_message_t *m)
{
  struct delivery *d = m->_private;
  p->outstanding--;
  int fatal = 0, err = 0;
  char buf[512] = "";
  if (m->err) {
    fatal = rd_kafka_fatal_error(p->rk, buf, sizeof(buf)) != RD_KAFKA_RESP_ERR_NO_ERROR;
    switch (m->err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
      err = DW_ERANGE; /* this record can never be written as it is */
      break;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
      err = DW_ECANCELED; /* purged by an aborted transaction */
      break;
    default:
      err = DW_EIO;
    }
  }
  d->cb(d->arg, err, m->err ? (buf[0] ? buf : rd_kafka_err2str(m->err)) : "", fatal);
  free(d);
}

/* Serves one event of the main queue: delivery reports (RD_KAFKA_EVENT_DR) and errors. Any
 * other event is only destroyed, which runs what librdkafka attached to it. Returns 0 when the
 * queue had none within timeout_ms. */
static int serve_until(struct dw_producer *p, int timeout_ms)
{
  rd_kafka_event_t *ev = rd_kafka_queue_poll(p->waker.queue, timeout_ms);
  const rd_kafka_message_t *m;
  if (!ev)
    return 0;
  switch (rd_kafka_event_type(ev)) {
  case RD_KAFKA_EVENT_DR:
    while ((m = rd_kafka_event_message_next(ev)))
      on_delivery(p, m);
    break;
  case RD_KAFKA_EVENT_ERROR:
    /* The event carries a fatal error's own code; the callback wants ERR__FATAL. */
    dw_kafka_on_error(p->rk,
                      rd_kafka_event_error_is_fatal(ev) ? RD_KAFKA_RESP_ERR__FATAL
                                                        : rd_kafka_event_error(ev),
                      rd_kafka_event_error_string(ev), p);
    break;
  default:
    break;
  }
  rd_kafka_event_destroy(ev);
  return 1;
}

static int producer_serve(void *owner)
{
  struct dw_producer *p = owner;
  for (int i = 0; i < DW_KAFKA_SERVE_BUDGET; i++)
    if (serve_until(p, 0) == 0)
      return 0;
  return 1;
}

#define LIMITS_TIMEOUT_MS 5000 /* each of the two requests that read the broker's limits */
#define LIBRDKAFKA_MAX_BYTES 1000000 /* librdkafka's default message.max.bytes */

/* Reads one limit from a DescribeConfigs answer: the entry `name`, -1 if absent or unreadable. */
static int64_t config_limit(const rd_kafka_ConfigResource_t *r, const char *name)
{
  size_t n;
  const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(r, &n);
  for (size_t i = 0; i < n; i++) {
    const char *v = rd_kafka_ConfigEntry_value(e[i]);
    if (strcmp(rd_kafka_ConfigEntry_name(e[i]), name) != 0 || !v)
      continue;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    return errno || end == v || *end || x < 0 ? -1 : (int64_t)x;
  }
  return -1;
}

/* The largest record the cluster takes on the output topics: limits[0] the broker's
 * message.max.bytes, limits[1] and limits[2] the max.message.bytes of the results and the
 * dead-letter topic (-1 when unknown; why says what failed). Asked with DescribeConfigs through
 * a short-lived client before the loop runs, each request bounded by LIMITS_TIMEOUT_MS (the
 * librdkafka mock cluster does not answer DescribeConfigs). */
static void read_limits(const struct dw_config *cfg, int64_t limits[3], char *why, size_t whylen)
{
  static const char *const defaults[] = {"client.id", "delivery-worker", NULL};
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_ConfigResource_t *res[3] = {NULL, NULL, NULL};
  rd_kafka_AdminOptions_t *opt = NULL;
  rd_kafka_queue_t *q = NULL;
  rd_kafka_event_t *ev = NULL;
  char errstr[512], id[16];
  size_t n = 0;
  limits[0] = limits[1] = limits[2] = -1;
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, 0, defaults, why, whylen);
  rd_kafka_t *rk = conf ? dw_kafka_client_new(0, conf, "a Kafka client", why, whylen) : NULL;
  if (!rk)
    return;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, LIMITS_TIMEOUT_MS);
  if (err) {
    snprintf(why, whylen, "metadata: %s", rd_kafka_err2str(err));
    goto out;
  }
  /* At most one broker per request: the one that answered. */
  snprintf(id, sizeof(id), "%d", (int)md->orig_broker_id);
  res[n++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, id);
  res[n++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cfg->kafka.results_topic);
  res[n++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cfg->kafka.dlq_topic);
  opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  rd_kafka_AdminOptions_set_request_timeout(opt, LIMITS_TIMEOUT_MS, errstr, sizeof(errstr));
  q = rd_kafka_queue_new(rk);
  rd_kafka_DescribeConfigs(rk, res, n, opt, q);
  ev = rd_kafka_queue_poll(q, LIMITS_TIMEOUT_MS + 1000);
  if (!ev || rd_kafka_event_error(ev)) {
    snprintf(why, whylen, "DescribeConfigs: %s",
             ev ? rd_kafka_event_error_string(ev) : "no answer in time");
    goto out;
  }
  size_t cnt;
  const rd_kafka_ConfigResource_t **r =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
  for (size_t i = 0; i < cnt; i++) {
    const char *name = rd_kafka_ConfigResource_name(r[i]);
    if (rd_kafka_ConfigResource_error(r[i])) {
      snprintf(why, whylen, "DescribeConfigs %s: %s", name,
               rd_kafka_ConfigResource_error_string(r[i]));
    } else if (rd_kafka_ConfigResource_type(r[i]) == RD_KAFKA_RESOURCE_BROKER) {
      limits[0] = config_limit(r[i], "message.max.bytes");
    } else {
      int64_t v = config_limit(r[i], "max.message.bytes");
      if (strcmp(name, cfg->kafka.results_topic) == 0)
        limits[1] = v;
      if (strcmp(name, cfg->kafka.dlq_topic) == 0)
        limits[2] = v;
    }
  }
out:
  if (ev)
    rd_kafka_event_destroy(ev);
  if (q)
    rd_kafka_queue_destroy(q);
  if (opt)
    rd_kafka_AdminOptions_destroy(opt);
  for (size_t i = 0; i < n; i++)
    rd_kafka_ConfigResource_destroy(res[i]);
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
}

/* Sizes the producer's message.max.bytes from the cluster's limits (see dw_dlq_producer_limit), unless
 * kafka.properties sets it, and says what was chosen. A record librdkafka lets through but the
 * broker refuses is only known when its delivery report comes back; sizing dead letters needs
 * the real limit up front. Returns the limit, or -1 with err set. */
static int64_t size_producer(rd_kafka_conf_t *conf, const struct dw_config *cfg, char *err,
                             size_t errlen)
{
  const char *own = dw_config_property(cfg, "message.max.bytes");
  char errstr[512], why[512] = "no answer", num[32];
  int64_t limits[3];
  if (own) {
    char *end;
    errno = 0;
    long long v = strtoll(own, &end, 10);
    if (errno || end == own || *end || v < 1) {
      snprintf(err, errlen, "kafka.properties: message.max.bytes: not a number");
      return -1;
    }
    dw_info("producer message.max.bytes %lld (from kafka.properties)", v);
    return v;
  }
  read_limits(cfg, limits, why, sizeof(why));
  int64_t chosen = dw_dlq_producer_limit(limits[0], limits[2], LIBRDKAFKA_MAX_BYTES);
  if (limits[0] < 0 && limits[1] < 0 && limits[2] < 0) {
    dw_warn("the broker did not tell its message.max.bytes nor the topics' max.message.bytes "
            "(%s): the producer keeps librdkafka's default message.max.bytes of %d; set it in "
            "kafka.properties if the broker or a topic takes less", why, LIBRDKAFKA_MAX_BYTES);
    return chosen;
  }
  snprintf(num, sizeof(num), "%lld", (long long)chosen);
  if (rd_kafka_conf_set(conf, "message.max.bytes", num, errstr, sizeof(errstr))) {
    snprintf(err, errlen, "message.max.bytes: %s", errstr);
    return -1;
  }
  dw_info("producer message.max.bytes %lld: the dead-letter topic's max.message.bytes, else "
          "the broker's message.max.bytes (broker %lld, %s %lld, %s %lld; -1 is unknown)",
          (long long)chosen, (long long)limits[0], cfg->kafka.results_topic,
          (long long)limits[1], cfg->kafka.dlq_topic, (long long)limits[2]);
  return chosen;
}

size_t dw_producer_max_bytes(const struct dw_producer *p)
{
  return p->max_bytes;
}

int dw_producer_new(struct dw_producer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    char *err, size_t errlen)
{
  static const char *const defaults[] = {
      "client.id", "delivery-worker",
      "enable.idempotence", "true",
      "linger.ms", "5",
      "message.timeout.ms", "300000",
      NULL,
  };
  struct dw_producer *p = calloc(1, sizeof(*p));
  char errstr[512];
  if (!p)
    return DW_ENOMEM;
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, 0, defaults, err, errlen);
  if (!conf)
    goto fail;
  int64_t max_bytes = size_producer(conf, cfg, err, errlen);
  if (max_bytes < 0) {
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  p->max_bytes = (size_t)max_bytes;
  p->transactional = strcmp(cfg->processing.guarantee, "exactly_once") == 0;
  if (p->transactional) {
    char id[512];
    if (transactional_id(cfg, id, sizeof(id)) < 0) {
      snprintf(err, errlen, "transactional.id: longer than %zu bytes", sizeof(id) - 1);
      rd_kafka_conf_destroy(conf);
      goto fail;
    }
    if (rd_kafka_conf_set(conf, "transactional.id", id, errstr, sizeof(errstr))) {
      snprintf(err, errlen, "transactional.id: %s", errstr);
      rd_kafka_conf_destroy(conf);
      goto fail;
    }
    /* A record must not outlive the transaction it belongs to (librdkafka refuses the
     * config otherwise): keep the default message timeout within transaction.timeout.ms. */
    if (!dw_config_property(cfg, "message.timeout.ms") &&
        rd_kafka_conf_set(conf, "message.timeout.ms",
                          dw_config_property(cfg, "transaction.timeout.ms") ?
                              dw_config_property(cfg, "transaction.timeout.ms") : "60000",
                          errstr, sizeof(errstr))) {
      snprintf(err, errlen, "message.timeout.ms: %s", errstr);
      rd_kafka_conf_destroy(conf);
      goto fail;
    }
    dw_info("exactly-once: transactional.id %s", id);
  }
  /* Delivery reports and errors come as events the waker serves on the loop: with a
   * delivery-report callback, the flush inside a commit would call it on the thread pool. */
  rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
  rd_kafka_conf_set_opaque(conf, p);
  p->rk = dw_kafka_client_new(0, conf, "the Kafka producer", err, errlen);
  if (!p->rk)
    goto fail;
  if (p->transactional) {
    /* Blocks until the coordinator answers; it also fences an older producer with the same
     * transactional.id and aborts what it left open. */
    rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, 60000);
    p->txn.rk = p->rk;
    if (e || txn_begin(&p->txn, errstr, sizeof(errstr)) < 0) {
      snprintf(err, errlen, "cannot start transactions (exactly_once needs Kafka 2.5 or "
               "newer and the right to use transactional ids): %s",
               e ? rd_kafka_error_string(e) : errstr);
      if (e)
        rd_kafka_error_destroy(e);
      rd_kafka_destroy(p->rk);
      goto fail;
    }
  }
  if (dw_kafka_waker_init(&p->waker, loop, rd_kafka_queue_get_main(p->rk), producer_serve, p) < 0) {
    snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
    rd_kafka_destroy(p->rk);
    goto fail;
  }
  *out = p;
  return 0;
fail:
  free(p);
  return DW_EINVAL;
}

int dw_producer_send(struct dw_producer *p, const struct dw_message *m, dw_delivery_cb cb,
                     void *arg)
{
  if (p->call) {
    dw_warn("cannot produce to %s while a transaction call is in flight", m->topic);
    return DW_EIO;
  }
  if (p->transactional && !p->txn.in_txn) {
    char why[512];
    int rc = txn_begin(&p->txn, why, sizeof(why));
    if (rc < 0) {
      dw_warn("%s", why);
      return rc == DW_ESTATE ? rc : DW_EIO;
    }
  }
  struct delivery *d = malloc(sizeof(*d));
  if (!d)
    return DW_ENOMEM;
  d->cb = cb;
  d->arg = arg;
  /* Results carry no headers: skip the allocation. */
  rd_kafka_headers_t *hdrs = NULL;
  if (m->header_count + m->extra_count) {
    hdrs = rd_kafka_headers_new(m->header_count + m->extra_count);
    for (size_t i = 0; i < m->header_count; i++)
      rd_kafka_header_add(hdrs, m->headers[i].name, -1, m->headers[i].value,
                          (ssize_t)m->headers[i].len);
    for (size_t i = 0; i < m->extra_count; i++)
      rd_kafka_header_add(hdrs, m->extra[i].name, -1, m->extra[i].value,
                          (ssize_t)m->extra[i].len);
  }
  rd_kafka_resp_err_t e;
  if (hdrs)
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                          RD_KAFKA_V_VALUE((void *)m->value, m->value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
  else
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                          RD_KAFKA_V_VALUE((void *)m->value, m->value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                          RD_KAFKA_V_END);
  if (e) { /* the headers are still ours on failure */
    if (hdrs)
      rd_kafka_headers_destroy(hdrs);
    free(d);
    dw_warn("cannot produce to %s: %s", m->topic, rd_kafka_err2str(e));
    if (e == RD_KAFKA_RESP_ERR__FATAL)
      return DW_ESTATE;
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
      return DW_ERANGE;
    return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? DW_EAGAIN : DW_EIO;
  }
  p->outstanding++;
  return 0;
}

size_t dw_producer_outstanding(const struct dw_producer *p)
{
  return p->outstanding;
}

static void producer_freed(void *owner)
{
  struct dw_producer *p = owner;
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  free(p);
  if (done)
    done(arg);
}

void dw_producer_close(struct dw_producer *p, void (*done)(void *arg), void *arg)
{
  if (p->call) { /* the client must outlive the call; its outcome no longer matters */
    while (!atomic_load(&p->call->finished))
      serve_until(p, TXN_WAIT_SERVE_MS);
    p->call->taken = 1;
    p->call = NULL;
  }
  p->done = done;
  p->done_arg = arg;
  rd_kafka_queue_t *q = p->waker.queue;
  rd_kafka_t *rk = p->rk;
  dw_kafka_waker_close(&p->waker, producer_freed);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}
