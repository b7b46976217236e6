/* The Kafka ends of the flow: the consumer that feeds tasks in and the idempotent producer that
 * carries results and dead letters out. librdkafka runs its own threads; what it hands back
 * (records, rebalances, commit results, delivery reports, errors) waits on its queues, and
 * rd_kafka_queue_io_event_enable makes a queue write to a pipe when it goes from empty to
 * non-empty. A uv_poll on that pipe drains the queue on the loop, a budget at a time, and a
 * uv_idle continues when the budget stops it early, since no new wake-up will come for what is
 * already queued. */
#include "dw/kafka.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/dlq.h"
#include "dw/log.h"
#include "dw/oidc.h"

#define SERVE_BUDGET 500

/* The wake-up of one librdkafka queue on the loop. */
struct waker {
  uv_poll_t poll;
  uv_idle_t idle;
  uv_timer_t tick; /* serves the queue at least once a second: librdkafka counts
                      max.poll.interval.ms from the last poll, and a quiet topic never wakes us */
  int fds[2];
  rd_kafka_queue_t *queue;
  int (*serve)(void *owner); /* serves up to a budget; returns 1 if more may be queued */
  void *owner;
  int open_handles;
  void (*closed)(void *owner);
};

static void on_idle(uv_idle_t *idle)
{
  struct waker *w = idle->data;
  if (!w->serve(w->owner))
    uv_idle_stop(idle);
}

static void on_tick(uv_timer_t *tick)
{
  struct waker *w = tick->data;
  if (w->serve(w->owner))
    uv_idle_start(&w->idle, on_idle);
}

static void on_wake(uv_poll_t *poll, int status, int events)
{
  (void)status;
  (void)events;
  struct waker *w = poll->data;
  char buf[256];
  while (read(w->fds[0], buf, sizeof(buf)) > 0)
    ;
  if (w->serve(w->owner))
    uv_idle_start(&w->idle, on_idle);
}

static int waker_init(struct waker *w, uv_loop_t *loop, rd_kafka_queue_t *queue,
                      int (*serve)(void *), void *owner)
{
  w->queue = queue;
  w->serve = serve;
  w->owner = owner;
  if (pipe(w->fds) != 0)
    return DW_EIO;
  for (int i = 0; i < 2; i++) {
    fcntl(w->fds[i], F_SETFL, fcntl(w->fds[i], F_GETFL) | O_NONBLOCK);
    fcntl(w->fds[i], F_SETFD, FD_CLOEXEC);
  }
  uv_poll_init(loop, &w->poll, w->fds[0]);
  uv_idle_init(loop, &w->idle);
  uv_timer_init(loop, &w->tick);
  w->poll.data = w;
  w->idle.data = w;
  w->tick.data = w;
  w->open_handles = 3;
  uv_timer_start(&w->tick, on_tick, 1000, 1000);
  rd_kafka_queue_io_event_enable(queue, w->fds[1], "1", 1);
  uv_poll_start(&w->poll, UV_READABLE, on_wake);
  /* Anything queued before the wake-up was enabled would never wake us: serve it now. */
  uv_idle_start(&w->idle, on_idle);
  return 0;
}

static void on_waker_handle_closed(uv_handle_t *h)
{
  struct waker *w = h->data;
  if (--w->open_handles == 0) {
    close(w->fds[0]);
    close(w->fds[1]);
    w->closed(w->owner);
  }
}

static void waker_close(struct waker *w, void (*closed)(void *owner))
{
  w->closed = closed;
  rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
  uv_close((uv_handle_t *)&w->poll, on_waker_handle_closed);
  uv_close((uv_handle_t *)&w->idle, on_waker_handle_closed);
  uv_close((uv_handle_t *)&w->tick, on_waker_handle_closed);
}

/* librdkafka logs from its own threads; dw_log_write is thread-safe. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  (void)rk;
  enum dw_log_level l = level <= 3 ? DW_LOG_ERROR : level == 4 ? DW_LOG_WARN
                        : level <= 6 ? DW_LOG_INFO : DW_LOG_DEBUG;
  /* kafka.properties go to both clients; each ignores the other's properties with a warning
   * that would only confuse the reader. */
  if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
    l = DW_LOG_DEBUG;
  dw_log_write(l, DW_LOG_CTX_NONE, "librdkafka %s: %s", fac, buf);
}

/* Applies defaults, then the user's properties (which win). */
rd_kafka_conf_t *dw_kafka_conf_new(const struct dw_config *cfg, const char *const *defaults,
                                   char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char errstr[512];
  for (size_t i = 0; defaults && defaults[i]; i += 2) {
    if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "librdkafka property %s: %s", defaults[i], errstr);
      goto fail;
    }
  }
  if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, errstr,
                        sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "kafka.brokers: %s", errstr);
    goto fail;
  }
  /* OIDC that this librdkafka cannot do itself is done by dw/oidc.h: its properties stay out. */
  int own_oidc = dw_oidc_needed(cfg);
  for (size_t i = 0; i < cfg->kafka.properties_count; i++) {
    const struct dw_config_property *pr = &cfg->kafka.properties[i];
    if (own_oidc && dw_oidc_is_property(pr->name))
      continue;
    if (rd_kafka_conf_set(conf, pr->name, pr->value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      /* librdkafka's text may repeat the value: keep secrets out of it. */
      snprintf(err, errlen, "kafka.properties: %s: %s", pr->name,
               dw_config_property_is_secret(pr->name) ? "invalid value" : errstr);
      goto fail;
    }
  }
  if (own_oidc && dw_oidc_configure(conf, cfg, err, errlen) < 0)
    goto fail;
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

int dw_kafka_conf_check(const struct dw_config *cfg, char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, NULL, err, errlen);
  if (!conf)
    return DW_EINVAL;
  rd_kafka_conf_destroy(conf);
  return 0;
}

rd_kafka_t *dw_kafka_client_new(int consumer, rd_kafka_conf_t *conf, const char *what,
                                char *err, size_t errlen)
{
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, errstr,
                                sizeof(errstr));
  if (!rk) { /* conf is still ours on failure */
    snprintf(err, errlen, "cannot create %s: %s", what, errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (dw_oidc_started(rk, err, errlen) < 0) {
    rd_kafka_destroy(rk);
    return NULL;
  }
  return rk;
}

/* ---- records ---- */

void dw_record_free(struct dw_record *rec)
{
  free(rec);
}

/* Copies a message into one allocation: struct, header array, then the bytes. */
static struct dw_record *record_copy(rd_kafka_message_t *m)
{
  rd_kafka_headers_t *hdrs = NULL;
  size_t nh = 0, bytes = m->key_len + m->len;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    nh = rd_kafka_header_cnt(hdrs);
    for (size_t i = 0; i < nh; i++) {
      const char *name;
      const void *val;
      size_t len;
      rd_kafka_header_get_all(hdrs, i, &name, &val, &len);
      bytes += strlen(name) + 1 + len;
    }
  }
  struct dw_record *rec = malloc(sizeof(*rec) + nh * sizeof(struct dw_header) + bytes + 1);
  if (!rec)
    return NULL;
  rd_kafka_timestamp_type_t tstype;
  rec->partition = m->partition;
  rec->offset = m->offset;
  rec->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
  if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
    rec->timestamp_ms = -1;
  rec->headers = (struct dw_header *)(rec + 1);
  rec->header_count = nh;
  char *p = (char *)(rec->headers + nh);
  rec->key = m->key ? p : NULL;
  rec->key_len = m->key_len;
  if (m->key_len)
    memcpy(p, m->key, m->key_len);
  p += m->key_len;
  rec->value = m->payload ? p : NULL;
  rec->value_len = m->len;
  if (m->len)
    memcpy(p, m->payload, m->len);
  p += m->len;
  for (size_t i = 0; i < nh; i++) {
    const char *name;
    const void *val;
    size_t len;
    rd_kafka_header_get_all(hdrs, i, &name, &val, &len);
    size_t nl = strlen(name) + 1;
    memcpy(p, name, nl);
    rec->headers[i].name = p;
    p += nl;
    rec->headers[i].value = val ? p : NULL;
    rec->headers[i].len = len;
    if (len)
      memcpy(p, val, len);
    p += len;
  }
  return rec;
}

/* ---- consumer ---- */

#define HOLD_FETCH 0x80000000u /* reading the committed metadata of a new assignment */
#define COMMITTED_TIMEOUT_MS 10000

struct dw_consumer {
  rd_kafka_t *rk;
  uv_loop_t *loop;
  struct waker waker;
  struct dw_consumer_handler h;
  char *topic;
  int ever_assigned;
  int paused;
  /* What on_commit saw of the last commit (read by commit() after a synchronous one). */
  int commit_answered, commit_refused;
  unsigned *holds;      /* per partition id: reasons to keep it paused */
  uint32_t *assign_seq; /* per partition id: bumped on each assign and revoke */
  size_t nparts;
  /* Reads of committed offsets run on libuv's thread pool: rd_kafka_committed blocks. */
  uv_mutex_t lock;
  uv_cond_t idle;
  int fetching;         /* reads still inside rd_kafka_committed (under lock) */
  int requests;         /* reads whose completion has not run on the loop yet */
  int closing, closed;
  int must_read;        /* exactly-once: never go on without the map (duplicates) */
};

/* Grows the per-partition arrays to hold partition id. */
static int consumer_part(struct dw_consumer *c, int32_t id)
{
  if (id < 0)
    return DW_EINVAL;
  if ((size_t)id < c->nparts)
    return 0;
  size_t n = (size_t)id + 1;
  unsigned *h = realloc(c->holds, n * sizeof(*h));
  if (h)
    c->holds = h;
  uint32_t *q = realloc(c->assign_seq, n * sizeof(*q));
  if (q)
    c->assign_seq = q;
  if (!h || !q)
    return DW_ENOMEM;
  for (size_t i = c->nparts; i < n; i++) {
    c->holds[i] = 0;
    c->assign_seq[i] = 0;
  }
  c->nparts = n;
  return 0;
}

/* Pauses or resumes a list of partitions of the topic. */
static void set_fetching(rd_kafka_t *rk, const char *topic, const int32_t *ids, size_t n,
                         int pause)
{
  if (n == 0)
    return;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, ids[i]);
  if (pause)
    rd_kafka_pause_partitions(rk, l);
  else
    rd_kafka_resume_partitions(rk, l);
  rd_kafka_topic_partition_list_destroy(l);
}

static int held(const struct dw_consumer *c, int32_t id)
{
  return c->paused || (id >= 0 && (size_t)id < c->nparts && c->holds[id]);
}

struct committed_read {
  uv_work_t req;
  struct dw_consumer *c;
  rd_kafka_topic_partition_list_t *list;
  uint32_t *seq; /* the assignment each partition belonged to */
  int retry;     /* an earlier read failed: back off first */
  rd_kafka_resp_err_t err;
};

static void read_committed(struct dw_consumer *c, const int32_t *ids, size_t n, int retry);

/* A partition no longer waits for its committed metadata. */
static void release_fetch_hold(struct dw_consumer *c, int32_t id)
{
  if (id < 0 || (size_t)id >= c->nparts)
    return;
  c->holds[id] &= ~HOLD_FETCH;
  if (!held(c, id))
    set_fetching(c->rk, c->topic, &id, 1, 0);
}

static void consumer_free(struct dw_consumer *c)
{
  uv_mutex_destroy(&c->lock);
  uv_cond_destroy(&c->idle);
  free(c->holds);
  free(c->assign_seq);
  free(c->topic);
  free(c);
}

static void committed_work(uv_work_t *req)
{
  struct committed_read *r = req->data;
  if (r->retry) { /* a backoff on the pool's thread, not on the loop */
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  r->err = rd_kafka_committed(r->c->rk, r->list, COMMITTED_TIMEOUT_MS);
  uv_mutex_lock(&r->c->lock);
  r->c->fetching--;
  uv_cond_signal(&r->c->idle);
  uv_mutex_unlock(&r->c->lock);
}

static void committed_done(uv_work_t *req, int status)
{
  struct committed_read *r = req->data;
  struct dw_consumer *c = r->c;
  int32_t *again = calloc((size_t)r->list->cnt + 1, sizeof(*again));
  size_t nagain = 0;
  c->requests--;
  for (int i = 0; status == 0 && !c->closing && i < r->list->cnt; i++) {
    rd_kafka_topic_partition_t *e = &r->list->elems[i];
    if ((size_t)e->partition >= c->nparts || c->assign_seq[e->partition] != r->seq[i])
      continue; /* revoked (and maybe assigned again) since: a newer read is on its way */
    rd_kafka_resp_err_t err = r->err ? r->err : e->err;
    if (err && c->must_read && again) {
      /* Exactly-once: records beyond the committed offset may have outputs committed
       * already; only the map says which. A transaction left open by a killed replica keeps
       * the offset unstable until the broker aborts it: wait for it. */
      dw_warn("partition %d: cannot read the committed offset yet (%s); retrying",
              (int)e->partition, rd_kafka_err2str(err));
      again[nagain++] = e->partition;
      continue;
    }
    if (err)
      dw_warn("partition %d: cannot read the committed offset (%s); its records are "
              "processed without the map of finished tasks", (int)e->partition,
              rd_kafka_err2str(err));
    int ok = !err && e->offset >= 0;
    c->h.on_committed(c->h.arg, e->partition, ok ? e->offset : -1,
                      ok ? e->metadata : NULL, ok ? e->metadata_size : 0);
    release_fetch_hold(c, e->partition);
  }
  rd_kafka_topic_partition_list_destroy(r->list);
  free(r->seq);
  free(r);
  if (nagain)
    read_committed(c, again, nagain, 1);
  free(again);
  if (c->closed && c->requests == 0)
    consumer_free(c);
}

/* Reads the committed offsets and metadata of new partitions off the loop; they stay held
 * until then. On failure they are released at once, without a map. */
static void read_committed(struct dw_consumer *c, const int32_t *ids, size_t n, int retry)
{
  struct committed_read *r = calloc(1, sizeof(*r));
  if (r)
    r->seq = calloc(n, sizeof(*r->seq));
  if (!r || !r->seq || c->closing) {
    if (r)
      free(r->seq);
    free(r);
    if (!c->closing)
      dw_warn("out of memory reading committed offsets; processing without the map");
    for (size_t i = 0; i < n; i++)
      release_fetch_hold(c, ids[i]);
    return;
  }
  r->c = c;
  r->retry = retry;
  r->req.data = r;
  r->list = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_list_add(r->list, c->topic, ids[i]);
    r->seq[i] = c->assign_seq[ids[i]];
  }
  uv_mutex_lock(&c->lock);
  c->fetching++;
  uv_mutex_unlock(&c->lock);
  c->requests++;
  if (uv_queue_work(c->loop, &r->req, committed_work, committed_done) != 0) {
    uv_mutex_lock(&c->lock);
    c->fetching--;
    uv_mutex_unlock(&c->lock);
    c->requests--;
    rd_kafka_topic_partition_list_destroy(r->list);
    free(r->seq);
    free(r);
    for (size_t i = 0; i < n; i++)
      release_fetch_hold(c, ids[i]);
  }
}

/* New partitions: each starts with no reason to be held but the read of its committed
 * metadata; pause or resume explicitly either way, since librdkafka 2.0.2 keeps a partition's
 * pause flag across revoke and re-assign. */
static void assigned(struct dw_consumer *c, const int32_t *ids, size_t n)
{
  int fetch = c->h.on_committed != NULL && !c->closing;
  for (size_t i = 0; i < n; i++) {
    if (consumer_part(c, ids[i]) < 0) {
      fetch = 0; /* out of memory: no map, but every partition must be served */
      continue;
    }
    c->assign_seq[ids[i]]++;
    c->holds[ids[i]] = 0;
  }
  for (size_t i = 0; fetch && i < n; i++)
    c->holds[ids[i]] = HOLD_FETCH;
  for (size_t i = 0; i < n; i++)
    set_fetching(c->rk, c->topic, &ids[i], 1, held(c, ids[i]));
  c->h.on_assign(c->h.arg, ids, n);
  if (fetch)
    read_committed(c, ids, n, 0);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
  struct dw_consumer *c = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  int32_t *ids = calloc((size_t)parts->cnt + 1, sizeof(*ids));
  for (int i = 0; ids && i < parts->cnt; i++)
    ids[i] = parts->elems[i].partition;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_error_t *e = NULL;
    if (cooperative)
      e = rd_kafka_incremental_assign(rk, parts);
    else
      rd_kafka_assign(rk, parts);
    if (e) {
      dw_error("incremental assign failed: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    c->ever_assigned = 1;
    dw_info("assigned %d partition(s) of %s", parts->cnt, c->topic);
    if (ids && parts->cnt)
      assigned(c, ids, (size_t)parts->cnt);
  } else {
    int lost = rd_kafka_assignment_lost(rk);
    dw_log_write(lost ? DW_LOG_WARN : DW_LOG_INFO, DW_LOG_CTX_NONE, "%s %d partition(s) of %s",
                 lost ? "lost" : "revoked", parts->cnt, c->topic);
    if (ids && parts->cnt)
      c->h.on_revoke(c->h.arg, ids, (size_t)parts->cnt, lost);
    for (int i = 0; ids && i < parts->cnt; i++)
      if (consumer_part(c, ids[i]) == 0) {
        c->assign_seq[ids[i]]++; /* a read still running for it is ignored */
        c->holds[ids[i]] = 0;
      }
    if (cooperative) {
      rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
      if (e) {
        dw_error("incremental unassign failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk, NULL);
    }
  }
  free(ids);
}

/* The outcome of a commit, asynchronous (the offset_commit_cb) or synchronous (served inside
 * rd_kafka_commit_queue). librdkafka sets err to the last failing partition's error, so the
 * partitions are looked at either way. A refused metadata string
 * (OFFSET_METADATA_TOO_LARGE) is the worker's to explain: it shortens its maps. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
  (void)rk;
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return;
  struct dw_consumer *c = opaque;
  int failed = err != RD_KAFKA_RESP_ERR_NO_ERROR, other = 0, refused = 0;
  int32_t refused_part = -1;
  size_t refused_len = 0;
  for (int i = 0; offsets && i < offsets->cnt; i++) {
    const rd_kafka_topic_partition_t *e = &offsets->elems[i];
    if (!e->err)
      continue;
    failed = 1;
    if (e->err == RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE && c->h.on_metadata_refused) {
      dw_debug("offset commit of partition %d failed: %s (%zu bytes of metadata)",
               e->partition, rd_kafka_err2str(e->err), e->metadata_size);
      if (!refused || e->metadata_size < refused_len) {
        refused_len = e->metadata_size;
        refused_part = e->partition;
      }
      refused = 1;
    } else {
      other = 1;
      dw_warn("offset commit of partition %d failed: %s", e->partition,
              rd_kafka_err2str(e->err));
    }
  }
  if (err && (other || !refused))
    dw_warn("offset commit failed: %s", rd_kafka_err2str(err));
  c->commit_answered = 1;
  c->commit_refused = refused;
  if (refused)
    c->h.on_metadata_refused(c->h.arg, refused_part, refused_len);
  if (failed && c->h.on_commit_failed)
    c->h.on_commit_failed(c->h.arg);
}

/* librdkafka could not create what it needs (a thread without address space for its stack):
 * the client is crippled for good, unable to reach some or all brokers, and says so only
 * through the error callback. Set there (on the loop, which serves the callbacks), turned into
 * a fatal error by the consumer's next serve: exit non-zero rather than run on unable to
 * consume. */
static char crit_reason[256];

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  (void)opaque;
  if (err == RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE && !crit_reason[0])
    snprintf(crit_reason, sizeof(crit_reason), "%s: %s", rd_kafka_err2name(err),
             reason ? reason : "");
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
    dw_error("fatal Kafka error %s: %s", rd_kafka_err2name(orig), buf);
    return; /* the owner of rk checks rd_kafka_fatal_error after serving */
  }
  dw_log_write(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? DW_LOG_ERROR : DW_LOG_WARN,
               DW_LOG_CTX_NONE, "Kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static int consumer_serve(void *owner)
{
  struct dw_consumer *c = owner;
  for (int i = 0; i < SERVE_BUDGET; i++) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
    if (!m) {
      char buf[512];
      if (rd_kafka_fatal_error(c->rk, buf, sizeof(buf)))
        c->h.on_fatal(c->h.arg, buf);
      else if (crit_reason[0])
        c->h.on_fatal(c->h.arg, crit_reason);
      return 0;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        dw_warn("consumer: %s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    struct dw_record *rec = record_copy(m);
    rd_kafka_message_destroy(m);
    if (!rec) {
      /* Not taken, so its offset is never committed: it comes back after a restart. */
      c->h.on_fatal(c->h.arg, "out of memory copying a record");
      return 0;
    }
    c->h.on_record(c->h.arg, rec);
  }
  return 1;
}

int dw_consumer_new(struct dw_consumer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    const struct dw_consumer_handler *handler, char *err, size_t errlen)
{
  static const char *const defaults[] = {
      "client.id", "delivery-worker",
      "partition.assignment.strategy", "cooperative-sticky",
      "enable.auto.commit", "false",
      "enable.auto.offset.store", "false",
      "auto.offset.reset", "earliest",
      "enable.partition.eof", "false",
      NULL,
  };
  struct dw_consumer *c = calloc(1, sizeof(*c));
  char errstr[512];
  if (!c)
    return DW_ENOMEM;
  c->h = *handler;
  c->loop = loop;
  c->must_read = strcmp(cfg->processing.guarantee, "exactly_once") == 0;
  uv_mutex_init(&c->lock);
  uv_cond_init(&c->idle);
  c->topic = strdup(cfg->kafka.input_topic);
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, defaults, err, errlen);
  if (!conf || !c->topic)
    goto fail;
  if (rd_kafka_conf_set(conf, "group.id", cfg->kafka.group_id, errstr, sizeof(errstr))) {
    snprintf(err, errlen, "kafka.group_id: %s", errstr);
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  if (cfg->kafka.group_instance_id[0] &&
      rd_kafka_conf_set(conf, "group.instance.id", cfg->kafka.group_instance_id, errstr,
                        sizeof(errstr))) {
    snprintf(err, errlen, "kafka.group_instance_id: %s", errstr);
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, c);
  c->rk = dw_kafka_client_new(1, conf, "the Kafka consumer", err, errlen);
  if (!c->rk)
    goto fail;
  rd_kafka_poll_set_consumer(c->rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, c->topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", c->topic, rd_kafka_err2str(e));
    rd_kafka_destroy(c->rk);
    goto fail;
  }
  if (waker_init(&c->waker, loop, rd_kafka_queue_get_consumer(c->rk), consumer_serve, c) <
      0) {
    snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
    rd_kafka_destroy(c->rk);
    goto fail;
  }
  *out = c;
  return 0;
fail:
  consumer_free(c);
  return DW_EINVAL;
}

/* A partition list of the topic with offsets and metadata (librdkafka copies the metadata
 * and frees it with the list). */
static rd_kafka_topic_partition_list_t *offsets_list(const char *topic, const int32_t *parts,
                                                     const int64_t *offsets,
                                                     const char *const *metadata, size_t n)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_add(l, topic, parts[i]);
    e->offset = offsets[i];
    if (metadata && metadata[i] && metadata[i][0]) {
      e->metadata_size = strlen(metadata[i]);
      e->metadata = malloc(e->metadata_size);
      if (e->metadata)
        memcpy(e->metadata, metadata[i], e->metadata_size);
      else
        e->metadata_size = 0; /* committed without its map: only costs polls again */
    }
  }
  return l;
}

/* librdkafka 2.0.2's rd_kafka_offsets_store drops metadata; an explicit list keeps it. A
 * synchronous commit goes through rd_kafka_commit_queue without a queue, which serves
 * on_commit (with each partition's error) before it returns, instead of rd_kafka_commit, which
 * returns one error code and leaves the partitions to a later offset_commit_cb. */
static int commit(struct dw_consumer *c, const int32_t *parts, const int64_t *offsets,
                  const char *const *metadata, size_t n, int async)
{
  if (n == 0)
    return 0;
  rd_kafka_topic_partition_list_t *l = offsets_list(c->topic, parts, offsets, metadata, n);
  c->commit_answered = c->commit_refused = 0;
  rd_kafka_resp_err_t e = async ? rd_kafka_commit(c->rk, l, 1)
                                : rd_kafka_commit_queue(c->rk, l, NULL, on_commit, c);
  rd_kafka_topic_partition_list_destroy(l);
  /* e is the error of the last partition that failed: a refused map is told by on_commit,
   * whichever partition it was (the worker shortens its maps and commits again). */
  if (!async && c->commit_refused)
    return DW_ERANGE;
  if (!e || e == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return 0;
  if (async || !c->commit_answered) /* else on_commit logged it */
    dw_warn("offset commit failed: %s", rd_kafka_err2str(e));
  return DW_EIO;
}

int dw_consumer_commit(struct dw_consumer *c, const int32_t *partitions,
                       const int64_t *offsets, const char *const *metadata, size_t n)
{
  return commit(c, partitions, offsets, metadata, n, 1);
}

int dw_consumer_commit_sync(struct dw_consumer *c, const int32_t *partitions,
                            const int64_t *offsets, const char *const *metadata, size_t n)
{
  return commit(c, partitions, offsets, metadata, n, 0);
}

void dw_consumer_pause_all(struct dw_consumer *c, int pause)
{
  rd_kafka_topic_partition_list_t *l = NULL;
  c->paused = pause;
  if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
    return;
  if (pause) {
    if (l->cnt)
      rd_kafka_pause_partitions(c->rk, l);
  } else {
    for (int i = 0; i < l->cnt; i++)
      if (!held(c, l->elems[i].partition))
        set_fetching(c->rk, c->topic, &l->elems[i].partition, 1, 0);
  }
  rd_kafka_topic_partition_list_destroy(l);
}

void dw_consumer_hold(struct dw_consumer *c, int32_t partition, unsigned reason, int on)
{
  if (consumer_part(c, partition) < 0)
    return;
  int before = held(c, partition);
  c->holds[partition] = on ? (c->holds[partition] | reason) : (c->holds[partition] & ~reason);
  int after = held(c, partition);
  if (before != after)
    set_fetching(c->rk, c->topic, &partition, 1, after);
}

int64_t dw_consumer_lag(struct dw_consumer *c, size_t *assigned)
{
  rd_kafka_topic_partition_list_t *l = NULL;
  int64_t lag = 0;
  *assigned = 0;
  if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
    return 0;
  *assigned = (size_t)l->cnt;
  rd_kafka_position(c->rk, l);
  for (int i = 0; i < l->cnt; i++) {
    int64_t low, high;
    if (rd_kafka_get_watermark_offsets(c->rk, l->elems[i].topic, l->elems[i].partition, &low,
                                       &high) != RD_KAFKA_RESP_ERR_NO_ERROR || high < 0)
      continue;
    int64_t pos = l->elems[i].offset >= 0 ? l->elems[i].offset : low;
    if (high > pos)
      lag += high - pos;
  }
  rd_kafka_topic_partition_list_destroy(l);
  return lag;
}

static void consumer_freed(void *owner)
{
  struct dw_consumer *c = owner;
  c->closed = 1;
  if (c->requests == 0)
    consumer_free(c);
}

void dw_consumer_close(struct dw_consumer *c)
{
  rd_kafka_queue_t *q = c->waker.queue;
  /* A read of committed offsets may still be inside librdkafka on another thread: rk must
   * outlive it (it ends within COMMITTED_TIMEOUT_MS). */
  c->closing = 1;
  uv_mutex_lock(&c->lock);
  while (c->fetching > 0)
    uv_cond_wait(&c->idle, &c->lock);
  uv_mutex_unlock(&c->lock);
  if (c->ever_assigned) {
    /* Leaves the group; the revoke reaches on_rebalance from inside this call. */
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(c->rk);
    if (e)
      dw_warn("closing the consumer: %s", rd_kafka_err2str(e));
  }
  uv_mutex_lock(&c->lock); /* an assignment during the close may have started one more */
  while (c->fetching > 0)
    uv_cond_wait(&c->idle, &c->lock);
  uv_mutex_unlock(&c->lock);
  waker_close(&c->waker, consumer_freed);
  rd_kafka_queue_destroy(q);
  /* librdkafka 2.0.2 can crash closing a cooperative-sticky consumer that never had an
   * assignment (fixed in 2.3.0): then skip the close and let the session time out. */
  rd_kafka_destroy_flags(c->rk, c->ever_assigned ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* ---- producer ---- */

#define TXN_CALL_TIMEOUT_MS 5000 /* the loop waits at most this long per transaction call */

enum txn_pending { TXN_NONE, TXN_COMMITTING, TXN_ABORTING };

struct dw_producer {
  rd_kafka_t *rk;
  struct waker waker;
  size_t outstanding;
  size_t max_bytes;         /* its message.max.bytes */
  int transactional;
  int in_txn;               /* a transaction is open */
  enum txn_pending pending; /* a commit or abort timed out and continues in the background */
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
static int txn_begin(struct dw_producer *p, char *err, size_t errlen)
{
  if (p->in_txn)
    return 0;
  rd_kafka_error_t *e = rd_kafka_begin_transaction(p->rk);
  if (e)
    return txn_error(e, "cannot begin a transaction", err, errlen);
  p->in_txn = 1;
  return 0;
}

/* The transaction ended (committed or aborted): open the next one now, or lazily later. */
static int txn_next(struct dw_producer *p, char *err, size_t errlen)
{
  p->in_txn = 0;
  p->pending = TXN_NONE;
  int rc = txn_begin(p, err, errlen);
  return rc == DW_ESTATE ? rc : 0;
}

/* A commit or abort that timed out goes on in the background; calling the same function
 * again resumes it (librdkafka 2.0+). Neither may be swapped for the other meanwhile: an
 * abort while a commit is in progress is refused, and would wedge the producer. */
int dw_producer_txn_abort(struct dw_producer *p, char *err, size_t errlen)
{
  if (p->pending == TXN_COMMITTING)
    return DW_ETIMEDOUT;
  if (!p->in_txn)
    return txn_next(p, err, errlen);
  rd_kafka_error_t *e = rd_kafka_abort_transaction(p->rk, TXN_CALL_TIMEOUT_MS);
  int rc = e ? txn_error(e, "cannot abort the transaction", err, errlen) : 0;
  if (rc == DW_ESTATE)
    return rc;
  if (rc < 0) {
    p->pending = TXN_ABORTING;
    return DW_ETIMEDOUT;
  }
  return txn_next(p, err, errlen);
}

int dw_producer_txn_commit(struct dw_producer *p, struct dw_consumer *c,
                           const int32_t *partitions, const int64_t *offsets,
                           const char *const *metadata, size_t n, char *err, size_t errlen)
{
  rd_kafka_error_t *e = NULL;
  int rc = 0, too_long = 0;
  if (p->pending == TXN_ABORTING)
    return dw_producer_txn_abort(p, err, errlen) == 0 ? DW_EAGAIN : DW_ETIMEDOUT;
  if (p->pending == TXN_NONE) {
    if ((rc = txn_begin(p, err, errlen)) < 0)
      return rc == DW_ESTATE ? rc : DW_ETIMEDOUT; /* nothing was produced without one */
    if (n > 0) {
      rd_kafka_topic_partition_list_t *l = offsets_list(c->topic, partitions, offsets,
                                                        metadata, n);
      rd_kafka_consumer_group_metadata_t *g = rd_kafka_consumer_group_metadata(c->rk);
      for (int attempt = 0; attempt < 3; attempt++) {
        e = rd_kafka_send_offsets_to_transaction(p->rk, l, g, TXN_CALL_TIMEOUT_MS);
        /* A TxnOffsetCommit refused as OFFSET_METADATA_TOO_LARGE makes the transaction
         * abortable in 2.0.2 (an error with that code that requires an abort). */
        too_long = e && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
        rc = e ? txn_error(e, "cannot add the offsets to the transaction", err, errlen) : 0;
        if (rc != DW_ETIMEDOUT)
          break;
      }
      rd_kafka_consumer_group_metadata_destroy(g);
      rd_kafka_topic_partition_list_destroy(l);
      if (rc == DW_ETIMEDOUT)
        rc = DW_EAGAIN; /* the offsets may be half added: start over */
    }
  }
  if (rc == 0) {
    e = rd_kafka_commit_transaction(p->rk, TXN_CALL_TIMEOUT_MS);
    rc = e ? txn_error(e, "cannot commit the transaction", err, errlen) : 0;
    if (rc == DW_ETIMEDOUT) {
      p->pending = TXN_COMMITTING; /* the outcome is not known yet: resume next time */
      return rc;
    }
  }
  p->pending = TXN_NONE;
  if (rc == DW_ESTATE)
    return rc;
  if (rc < 0) {
    char why[512];
    int arc = dw_producer_txn_abort(p, why, sizeof(why));
    if (arc == DW_ESTATE) {
      snprintf(err, errlen, "%s", why);
      return arc;
    }
    return arc == DW_ETIMEDOUT ? DW_ETIMEDOUT : too_long ? DW_ERANGE : DW_EAGAIN;
  }
  return txn_next(p, err, errlen);
}

int dw_producer_txn_busy(const struct dw_producer *p)
{
  return p->pending != TXN_NONE;
}

int dw_producer_transactional(const struct dw_producer *p)
{
  return p->transactional;
}

struct delivery {
  dw_delivery_cb cb;
  void *arg;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  struct dw_producer *p = opaque;
  struct delivery *d = m->_private;
  p->outstanding--;
  int fatal = 0, err = 0;
  char buf[512] = "";
  if (m->err) {
    fatal = rd_kafka_fatal_error(rk, buf, sizeof(buf)) != RD_KAFKA_RESP_ERR_NO_ERROR;
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

static int producer_serve(void *owner)
{
  struct dw_producer *p = owner;
  for (int i = 0; i < SERVE_BUDGET; i++)
    if (rd_kafka_poll(p->rk, 0) == 0)
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
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, defaults, why, whylen);
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
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, defaults, err, errlen);
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
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_error_cb(conf, on_error);
  rd_kafka_conf_set_opaque(conf, p);
  p->rk = dw_kafka_client_new(0, conf, "the Kafka producer", err, errlen);
  if (!p->rk)
    goto fail;
  if (p->transactional) {
    /* Blocks until the coordinator answers; it also fences an older producer with the same
     * transactional.id and aborts what it left open. */
    rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, 60000);
    if (e || txn_begin(p, errstr, sizeof(errstr)) < 0) {
      snprintf(err, errlen, "cannot start transactions (exactly_once needs Kafka 2.5 or "
               "newer and the right to use transactional ids): %s",
               e ? rd_kafka_error_string(e) : errstr);
      if (e)
        rd_kafka_error_destroy(e);
      rd_kafka_destroy(p->rk);
      goto fail;
    }
  }
  if (waker_init(&p->waker, loop, rd_kafka_queue_get_main(p->rk), producer_serve, p) < 0) {
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

int dw_producer_send(struct dw_producer *p, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const struct dw_header *headers,
                     size_t header_count, const struct dw_header *extra, size_t extra_count,
                     dw_delivery_cb cb, void *arg)
{
  if (p->transactional && !p->in_txn) {
    char why[512];
    int rc = txn_begin(p, why, sizeof(why));
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
  if (header_count + extra_count) {
    hdrs = rd_kafka_headers_new(header_count + extra_count);
    for (size_t i = 0; i < header_count; i++)
      rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value, (ssize_t)headers[i].len);
    for (size_t i = 0; i < extra_count; i++)
      rd_kafka_header_add(hdrs, extra[i].name, -1, extra[i].value, (ssize_t)extra[i].len);
  }
  rd_kafka_resp_err_t e;
  if (hdrs)
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
  else
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE((void *)value, value_len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(d),
                          RD_KAFKA_V_END);
  if (e) { /* the headers are still ours on failure */
    if (hdrs)
      rd_kafka_headers_destroy(hdrs);
    free(d);
    dw_warn("cannot produce to %s: %s", topic, rd_kafka_err2str(e));
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
  free(owner);
}

void dw_producer_close(struct dw_producer *p)
{
  rd_kafka_queue_t *q = p->waker.queue;
  rd_kafka_t *rk = p->rk;
  waker_close(&p->waker, producer_freed);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}

/* -------------------------------------------------------------------------------------------
 * The app_ticket topic reader (store apps)
 *
 * Every replica needs every ticket, so the reader cannot share the workers' consumer group:
 * it joins a group of its own (<group_id>.app-ticket.<host>.<pid>), never commits, and starts
 * from the earliest offset, so the newest ticket still in the topic is found at startup and
 * each later push as it arrives. Records go to the callback as they are. */

struct dw_ticket_reader {
  rd_kafka_t *rk;
  struct waker waker;
  dw_ticket_record_cb cb;
  void *arg;
};

static int ticket_reader_serve(void *owner)
{
  struct dw_ticket_reader *r = owner;
  for (int i = 0; i < SERVE_BUDGET; i++) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 0);
    if (!m)
      return 0;
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        dw_warn("app_ticket topic: %s", rd_kafka_message_errstr(m));
    } else if (m->payload) {
      r->cb(r->arg, m->payload, m->len);
    }
    rd_kafka_message_destroy(m);
  }
  return 1;
}

int dw_ticket_reader_new(struct dw_ticket_reader **out, uv_loop_t *loop,
                         const struct dw_config *cfg, dw_ticket_record_cb cb, void *arg,
                         char *err, size_t errlen)
{
  static const char *const defaults[] = {
      "client.id", "delivery-worker-app-ticket",
      "enable.auto.commit", "false",
      "enable.auto.offset.store", "false",
      "auto.offset.reset", "earliest",
      "enable.partition.eof", "false",
      NULL,
  };
  struct dw_ticket_reader *r = calloc(1, sizeof(*r));
  char errstr[512], group[512], host[256] = "host";
  if (!r)
    return DW_ENOMEM;
  r->cb = cb;
  r->arg = arg;
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, defaults, err, errlen);
  if (!conf)
    goto fail;
  gethostname(host, sizeof(host) - 1);
  int n = snprintf(group, sizeof(group), "%s.app-ticket.%s.%ld", cfg->kafka.group_id, host,
                   (long)getpid());
  /* Not kafka.group_instance_id: that static membership belongs to the workers' group. A cut
   * group id could be another replica's. */
  if (n < 0 || (size_t)n >= sizeof(group) ||
      rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr))) {
    if (n < 0 || (size_t)n >= sizeof(group))
      dw_strlcpy(errstr, "group id too long", sizeof(errstr));
    snprintf(err, errlen, "app_ticket reader: %s", errstr);
    rd_kafka_conf_destroy(conf);
    goto fail;
  }
  rd_kafka_conf_set_error_cb(conf, on_error);
  r->rk = dw_kafka_client_new(1, conf, "the app_ticket reader", err, errlen);
  if (!r->rk)
    goto fail;
  rd_kafka_poll_set_consumer(r->rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, cfg->feishu.app_ticket_topic,
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(r->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) {
    snprintf(err, errlen, "cannot subscribe to feishu.app_ticket_topic %s: %s",
             cfg->feishu.app_ticket_topic, rd_kafka_err2str(e));
    rd_kafka_destroy(r->rk);
    goto fail;
  }
  if (waker_init(&r->waker, loop, rd_kafka_queue_get_consumer(r->rk), ticket_reader_serve,
                 r) < 0) {
    snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
    rd_kafka_destroy(r->rk);
    goto fail;
  }
  *out = r;
  return 0;
fail:
  free(r);
  return DW_EIO;
}

static void ticket_reader_freed(void *owner)
{
  free(owner);
}

void dw_ticket_reader_close(struct dw_ticket_reader *r)
{
  rd_kafka_queue_t *q = r->waker.queue;
  rd_kafka_t *rk = r->rk;
  waker_close(&r->waker, ticket_reader_freed);
  rd_kafka_queue_destroy(q);
  /* Nothing was committed, so there is nothing to leave cleanly; skipping the close also
   * avoids 2.0.2's crash closing a consumer that never got an assignment (fixed in 2.3.0). */
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}
