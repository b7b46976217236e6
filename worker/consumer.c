/* The consumer of the input topic, the front of the flow: it feeds records to the worker,
 * follows rebalances (reading each new partition's committed offset and map off the loop before
 * its records are handed over), holds and resumes partitions, and commits offsets. Also the
 * app_ticket topic reader of store apps. Served on the loop by the waker (dw/kafka.h). */
#include "dw/consumer.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/kafka.h"
#include "dw/kstats.h"
#include "dw/log.h"

#define HOLD_FETCH 0x80000000u /* reading the committed metadata of a new assignment */
#define COMMITTED_TIMEOUT_MS 10000

struct dw_consumer {
  rd_kafka_t *rk;
  uv_loop_t *loop;
  struct dw_kafka_waker waker;
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
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
  int must_read;        /* exactly-once: never go on without the map (duplicates) */
  /* The lag of each assigned partition as of librdkafka's last statistics. */
  struct dw_kstats_lag *lags; /* DW_KSTATS_MAX_PARTITIONS entries, from the first statistics */
  size_t nlags;
  int read_committed;   /* isolation.level: which end offset the lag counts to */
  size_t topic_partitions; /* the topic's partition count, last read (0: not yet) */
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
  void (*done)(void *) = c->done;
  void *arg = c->done_arg;
  uv_mutex_destroy(&c->lock);
  uv_cond_destroy(&c->idle);
  free(c->holds);
  free(c->assign_seq);
  free(c->lags);
  free(c->topic);
  free(c);
  if (done)
    done(arg);
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

static void partitions_changed(struct dw_consumer *c, int assign);

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
  partitions_changed(c, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS);
}

/* ---- the topic's partition count (the replica's share of the API budget) ---- */

#define METADATA_TIMEOUT_MS 5000

struct count_read {
  uv_work_t req;
  struct dw_consumer *c;
  size_t count;
};

static size_t assigned_count(struct dw_consumer *c)
{
  rd_kafka_topic_partition_list_t *l = NULL;
  size_t n = 0;
  if (rd_kafka_assignment(c->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l) {
    n = (size_t)l->cnt;
    rd_kafka_topic_partition_list_destroy(l);
  }
  return n;
}

/* rd_kafka_metadata blocks: on the pool's thread, counted like a read of committed offsets so
 * that the close waits for it. */
static void count_work(uv_work_t *req)
{
  struct count_read *r = req->data;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->c->rk, r->c->topic, NULL);
  if (rkt && rd_kafka_metadata(r->c->rk, 0, rkt, &md, METADATA_TIMEOUT_MS) ==
                 RD_KAFKA_RESP_ERR_NO_ERROR && md) {
    for (int i = 0; i < md->topic_cnt; i++)
      if (!md->topics[i].err && strcmp(md->topics[i].topic, r->c->topic) == 0 &&
          md->topics[i].partition_cnt > 0)
        r->count = (size_t)md->topics[i].partition_cnt;
  }
  if (md)
    rd_kafka_metadata_destroy(md);
  if (rkt)
    rd_kafka_topic_destroy(rkt);
  uv_mutex_lock(&r->c->lock);
  r->c->fetching--;
  uv_cond_signal(&r->c->idle);
  uv_mutex_unlock(&r->c->lock);
}

static void count_done(uv_work_t *req, int status)
{
  struct count_read *r = req->data;
  struct dw_consumer *c = r->c;
  c->requests--;
  if (status == 0 && !c->closing && r->count > 0) {
    c->topic_partitions = r->count;
    c->h.on_partitions(c->h.arg, assigned_count(c), c->topic_partitions);
  }
  free(r);
  if (c->closed && c->requests == 0)
    consumer_free(c);
}

/* After a rebalance: says the new count with the topic's size known so far, and after an
 * assignment reads the size again (partitions may have been added to the topic). */
static void partitions_changed(struct dw_consumer *c, int assign)
{
  if (!c->h.on_partitions || c->closing)
    return;
  c->h.on_partitions(c->h.arg, assigned_count(c), c->topic_partitions);
  if (!assign)
    return;
  struct count_read *r = calloc(1, sizeof(*r));
  if (!r)
    return; /* the share stays as it was: the next assignment reads again */
  r->c = c;
  r->req.data = r;
  uv_mutex_lock(&c->lock);
  c->fetching++;
  uv_mutex_unlock(&c->lock);
  c->requests++;
  if (uv_queue_work(c->loop, &r->req, count_work, count_done) != 0) {
    uv_mutex_lock(&c->lock);
    c->fetching--;
    uv_mutex_unlock(&c->lock);
    c->requests--;
    free(r);
  }
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


/* librdkafka's statistics, every statistics.interval.ms, served on the loop by
 * rd_kafka_consumer_poll like the other callbacks (the main queue is forwarded to the
 * consumer's). Returning 0 leaves json to librdkafka. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
  struct dw_consumer *c = opaque;
  size_t n = 0;
  (void)rk;
  if (!c->lags)
    c->lags = calloc(DW_KSTATS_MAX_PARTITIONS, sizeof(*c->lags));
  if (!c->lags)
    return 0;
  int rc = dw_kstats_lags(json, len, c->topic, c->read_committed, c->lags,
                          DW_KSTATS_MAX_PARTITIONS, &n);
  if (rc < 0)
    dw_debug("consumer: librdkafka statistics not read: %s", dw_strerror(rc));
  c->nlags = rc < 0 ? 0 : n;
  return 0;
}

static int consumer_serve(void *owner)
{
  struct dw_consumer *c = owner;
  for (int i = 0; i < DW_KAFKA_SERVE_BUDGET; i++) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
    if (!m) {
      char buf[512];
      if (rd_kafka_fatal_error(c->rk, buf, sizeof(buf)))
        c->h.on_fatal(c->h.arg, buf);
      else if (dw_kafka_critical()[0])
        c->h.on_fatal(c->h.arg, dw_kafka_critical());
      return 0;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        dw_warn("consumer: %s", rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      continue;
    }
    struct dw_record *rec = dw_kafka_record_copy(m);
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
      /* For the per-partition lag metrics (dw_consumer_committed_lag, ...); "0" turns them
       * off. */
      "statistics.interval.ms", "15000",
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
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, 1, defaults, err, errlen);
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
  char iso[32] = "";
  size_t isolen = sizeof(iso);
  c->read_committed = rd_kafka_conf_get(conf, "isolation.level", iso, &isolen) ==
                          RD_KAFKA_CONF_OK &&
                      strcmp(iso, "read_committed") == 0;
  rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
  rd_kafka_conf_set_stats_cb(conf, on_stats);
  rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
  rd_kafka_conf_set_error_cb(conf, dw_kafka_on_error);
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
  if (dw_kafka_waker_init(&c->waker, loop, rd_kafka_queue_get_consumer(c->rk), consumer_serve, c) <
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

/* librdkafka 2.0.2's rd_kafka_offsets_store drops metadata; an explicit list keeps it. A
 * synchronous commit goes through rd_kafka_commit_queue without a queue, which serves
 * on_commit (with each partition's error) before it returns, instead of rd_kafka_commit, which
 * returns one error code and leaves the partitions to a later offset_commit_cb. */
static int commit(struct dw_consumer *c, const int32_t *parts, const int64_t *offsets,
                  const char *const *metadata, size_t n, int async)
{
  if (n == 0)
    return 0;
  rd_kafka_topic_partition_list_t *l = dw_kafka_offsets_list(c->topic, parts, offsets, metadata, n);
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

int dw_consumer_joined(const struct dw_consumer *c)
{
  return c->ever_assigned;
}

size_t dw_consumer_partition_lags(const struct dw_consumer *c, const struct dw_kstats_lag **lags)
{
  *lags = c->lags;
  return c->nlags;
}

static void consumer_freed(void *owner)
{
  struct dw_consumer *c = owner;
  c->closed = 1;
  if (c->requests == 0)
    consumer_free(c);
}

void dw_consumer_close(struct dw_consumer *c, void (*done)(void *arg), void *arg)
{
  rd_kafka_queue_t *q = c->waker.queue;
  c->done = done;
  c->done_arg = arg;
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
  dw_kafka_waker_close(&c->waker, consumer_freed);
  rd_kafka_queue_destroy(q);
  /* librdkafka 2.0.2 can crash closing a cooperative-sticky consumer that never had an
   * assignment (fixed in 2.3.0): then skip the close and let the session time out. */
  rd_kafka_destroy_flags(c->rk, c->ever_assigned ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

const char *dw_consumer_topic(const struct dw_consumer *c)
{
  return c->topic;
}

rd_kafka_consumer_group_metadata_t *dw_consumer_group_metadata(struct dw_consumer *c)
{
  return rd_kafka_consumer_group_metadata(c->rk);
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
  struct dw_kafka_waker waker;
  dw_ticket_record_cb cb;
  void *arg;
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
};

static int ticket_reader_serve(void *owner)
{
  struct dw_ticket_reader *r = owner;
  for (int i = 0; i < DW_KAFKA_SERVE_BUDGET; i++) {
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
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, 1, defaults, err, errlen);
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
  rd_kafka_conf_set_error_cb(conf, dw_kafka_on_error);
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
  if (dw_kafka_waker_init(&r->waker, loop, rd_kafka_queue_get_consumer(r->rk), ticket_reader_serve,
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
  struct dw_ticket_reader *r = owner;
  void (*done)(void *) = r->done;
  void *arg = r->done_arg;
  free(r);
  if (done)
    done(arg);
}

void dw_ticket_reader_close(struct dw_ticket_reader *r, void (*done)(void *arg), void *arg)
{
  r->done = done;
  r->done_arg = arg;
  rd_kafka_queue_t *q = r->waker.queue;
  rd_kafka_t *rk = r->rk;
  dw_kafka_waker_close(&r->waker, ticket_reader_freed);
  rd_kafka_queue_destroy(q);
  /* Nothing was committed, so there is nothing to leave cleanly; skipping the close also
   * avoids 2.0.2's crash closing a consumer that never got an assignment (fixed in 2.3.0). */
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

const char *dw_consumer_kafka_version(void)
{
  return rd_kafka_version_str();
}
