/* The consumer of the input topic, the front of the flow: it feeds records to the worker,
 * follows rebalances, holds and resumes partitions, and commits offsets. Also the app_ticket
 * topic reader of store apps. Served on the loop by the waker (dw/kafka.h).
 *
 * Nothing here waits for the broker on the loop. librdkafka lets the application take or give
 * up partitions after the rebalance callback has returned (the group waits for it), so a
 * new assignment is taken only once each partition's committed offset and map are read off
 * the loop, at those offsets; and revoked partitions are given up when the worker says their
 * commit is over (dw_consumer_revoke_done). One rebalance step runs at a time; an event that
 * comes meanwhile waits its turn. Leaving the group (rd_kafka_consumer_close_queue) serves its
 * events on the loop too. */
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

#define COMMITTED_TIMEOUT_MS 10000

/* A rebalance event that came while another step was still going on. */
struct queued_event {
  rd_kafka_resp_err_t err;
  int lost, cooperative; /* as the callback saw them: later they may have changed */
  rd_kafka_topic_partition_list_t *parts;
  struct queued_event *next;
};

struct dw_consumer {
  rd_kafka_t *rk;
  uv_loop_t *loop;
  struct dw_kafka_waker waker;
  struct dw_consumer_handler h;
  char *topic;
  int ever_assigned;
  int paused;
  /* The commit whose outcome a revoke waits for (dw_consumer_commit_then). */
  void (*then)(void *arg, int rc);
  void *then_arg;
  unsigned *holds;      /* per partition id: reasons to keep it paused */
  uint32_t *assign_seq; /* per partition id: bumped on each assign and revoke */
  unsigned char *taken; /* per partition id: in the assignment we gave librdkafka; read instead
                           of rd_kafka_assignment, which waits on the group handler */
  size_t nparts;
  /* Reads of committed offsets run on libuv's thread pool (rd_kafka_committed blocks); the
   * client outlives them. */
  int requests;         /* reads whose completion has not run on the loop yet */
  int closing, closed;
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
  int must_read;        /* exactly-once: never go on without the map (duplicates) */
  /* The rebalance step going on: an assignment waiting for its committed offsets, or a
   * revoke waiting for its commit; and the events that came meanwhile. */
  rd_kafka_topic_partition_list_t *assigning, *revoking;
  int assign_cooperative, revoke_cooperative; /* the protocol when the step began */
  struct queued_event *queued, *queued_tail;
  uv_timer_t next;      /* takes the next queued event, or ends the close, off any callback */
  /* Leaving the group: its events arrive on close_q, served on the loop. */
  rd_kafka_queue_t *close_q;
  struct dw_kafka_waker close_waker;
  int finishing;        /* the close is over: handles are closing */
  int handles;          /* open handles (wakers count as one each, and the timer) */
  /* The lag of each assigned partition as of librdkafka's last statistics. */
  struct dw_kstats_lag *lags; /* DW_KSTATS_MAX_PARTITIONS entries, from the first statistics */
  size_t nlags;
  int read_committed;   /* isolation.level: which end offset the lag counts to */
  size_t topic_partitions; /* the topic's partition count, last read (0: not yet) */
  int counting;         /* reads of the partition count still on the pool */
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
  unsigned char *t = realloc(c->taken, n);
  if (t)
    c->taken = t;
  if (!h || !q || !t)
    return DW_ENOMEM;
  for (size_t i = c->nparts; i < n; i++) {
    c->holds[i] = 0;
    c->assign_seq[i] = 0;
    c->taken[i] = 0;
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

static void consumer_free(struct dw_consumer *c)
{
  void (*done)(void *) = c->done;
  void *arg = c->done_arg;
  while (c->queued) {
    struct queued_event *q = c->queued;
    c->queued = q->next;
    rd_kafka_topic_partition_list_destroy(q->parts);
    free(q);
  }
  if (c->assigning)
    rd_kafka_topic_partition_list_destroy(c->assigning);
  if (c->revoking)
    rd_kafka_topic_partition_list_destroy(c->revoking);
  free(c->holds);
  free(c->taken);
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
}

static void finish_assign(struct dw_consumer *c);
static void maybe_finish_close(struct dw_consumer *c);

/* A work item on the pool is over: a closed consumer with nothing left there is freed, else
 * the close may go on. */
static void pool_done(struct dw_consumer *c)
{
  if (c->closed && c->requests == 0 && c->counting == 0)
    consumer_free(c);
  else
    maybe_finish_close(c);
}
static void take(struct dw_consumer *c, rd_kafka_topic_partition_list_t *parts);

/* The entry of partition id in l (the assignment being taken, a read's list), NULL when none. */
static rd_kafka_topic_partition_t *find(const rd_kafka_topic_partition_list_t *l, int32_t id)
{
  for (int i = 0; l && i < l->cnt; i++)
    if (l->elems[i].partition == id)
      return &l->elems[i];
  return NULL;
}

static int has_id(const int32_t *ids, size_t n, int32_t id)
{
  for (size_t i = 0; i < n; i++)
    if (ids[i] == id)
      return 1;
  return 0;
}

/* Exactly-once, cooperative: of the partitions just read, those whose committed offset came
 * are taken now; those still unreadable (an open transaction of a killed replica) wait for
 * their retry without holding the others back. */
static void take_ready(struct dw_consumer *c, const rd_kafka_topic_partition_list_t *read,
                       const int32_t *again, size_t nagain)
{
  rd_kafka_topic_partition_list_t *ready = rd_kafka_topic_partition_list_new(read->cnt);
  rd_kafka_topic_partition_list_t *rest = rd_kafka_topic_partition_list_new(c->assigning->cnt);
  for (int i = 0; i < c->assigning->cnt; i++) {
    const rd_kafka_topic_partition_t *e = &c->assigning->elems[i];
    int now = find(read, e->partition) && !has_id(again, nagain, e->partition);
    rd_kafka_topic_partition_list_add(now ? ready : rest, e->topic, e->partition)->offset =
        e->offset;
  }
  if (ready->cnt > 0) {
    take(c, ready);
    rd_kafka_topic_partition_list_destroy(c->assigning);
    c->assigning = rest;
    rest = NULL;
  }
  rd_kafka_topic_partition_list_destroy(ready);
  if (rest)
    rd_kafka_topic_partition_list_destroy(rest);
}

static void committed_done(uv_work_t *req, int status)
{
  struct committed_read *r = req->data;
  struct dw_consumer *c = r->c;
  int32_t *again = calloc((size_t)r->list->cnt + 1, sizeof(*again));
  size_t nagain = 0;
  c->requests--;
  for (int i = 0; status == 0 && i < r->list->cnt; i++) {
    rd_kafka_topic_partition_t *e = &r->list->elems[i];
    rd_kafka_topic_partition_t *to = find(c->assigning, e->partition);
    if (!to || (size_t)e->partition >= c->nparts || c->assign_seq[e->partition] != r->seq[i])
      continue; /* not part of the assignment being taken (cannot happen: one at a time) */
    rd_kafka_resp_err_t err = r->err ? r->err : e->err;
    if (err && c->must_read && again && !c->closing) {
      /* Exactly-once: records beyond the committed offset may have outputs committed
       * already; only the map says which. A transaction left open by a killed replica keeps
       * the offset unstable until the broker aborts it: wait for it (the partition is not
       * taken until then). */
      dw_warn("partition %d: cannot read the committed offset yet (%s); retrying",
              (int)e->partition, rd_kafka_err2str(err));
      again[nagain++] = e->partition;
      continue;
    }
    if (c->closing)
      continue; /* taken only to be given up: the group waits for the assignment first */
    if (err)
      dw_warn("partition %d: cannot read the committed offset (%s); its records are "
              "processed without the map of finished tasks", (int)e->partition,
              rd_kafka_err2str(err));
    int ok = !err && e->offset >= 0;
    if (ok)
      to->offset = e->offset; /* fetching starts there: no second read, no stale position */
    c->h.on_committed(c->h.arg, e->partition, ok ? e->offset : -1,
                      ok ? e->metadata : NULL, ok ? e->metadata_size : 0);
  }
  if (nagain && status == 0 && !c->closing && c->assign_cooperative && c->assigning)
    take_ready(c, r->list, again, nagain);
  rd_kafka_topic_partition_list_destroy(r->list);
  free(r->seq);
  free(r);
  if (nagain)
    read_committed(c, again, nagain, 1);
  free(again);
  if (c->requests == 0 && c->assigning)
    finish_assign(c);
  pool_done(c);
}

/* Reads the committed offsets and metadata of new partitions off the loop; the assignment is
 * taken when no read is left. On failure they are taken at once, without a map. */
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
  c->requests++;
  if (uv_queue_work(c->loop, &r->req, committed_work, committed_done) != 0) {
    c->requests--;
    rd_kafka_topic_partition_list_destroy(r->list);
    free(r->seq);
    free(r);
  }
}

static void partitions_changed(struct dw_consumer *c, int assign);

/* Our copy of the assignment: the partitions given to librdkafka (on = 1) or taken back. */
static void mark_taken(struct dw_consumer *c, const rd_kafka_topic_partition_list_t *parts,
                       int on)
{
  for (int i = 0; parts && i < parts->cnt; i++) {
    int32_t id = parts->elems[i].partition;
    if (id >= 0 && (size_t)id < c->nparts)
      c->taken[id] = (unsigned char)on;
  }
}

static void untake_all(struct dw_consumer *c)
{
  if (c->nparts)
    memset(c->taken, 0, c->nparts);
}

/* Takes the partitions (at the offsets set in the list, where read), and pauses or resumes
 * each explicitly, since librdkafka 2.0.2 keeps a partition's pause flag across revoke and
 * re-assign. */
static void take(struct dw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
  if (c->assign_cooperative) {
    rd_kafka_error_t *e = rd_kafka_incremental_assign(c->rk, parts);
    if (e) {
      dw_error("incremental assign failed: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    if (e)
      dw_error("assign failed: %s", rd_kafka_err2str(e));
  }
  for (int i = 0; i < parts->cnt; i++)
    set_fetching(c->rk, c->topic, &parts->elems[i].partition, 1,
                 held(c, parts->elems[i].partition));
  mark_taken(c, parts, 1);
  partitions_changed(c, 1);
}

/* The next queued event is taken from a timer: never from inside the callback that ended the
 * step before it. */
static void on_next(uv_timer_t *t);

static void next_step(struct dw_consumer *c)
{
  if ((c->queued || c->closing) && !c->finishing)
    uv_timer_start(&c->next, on_next, 0, 0);
}

static void finish_assign(struct dw_consumer *c)
{
  rd_kafka_topic_partition_list_t *parts = c->assigning;
  c->assigning = NULL;
  take(c, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  next_step(c);
}

/* Starts one rebalance step: an assignment is taken once its committed offsets are read, a
 * revoke waits for the worker's commit (dw_consumer_revoke_done). */
static void rebalance(struct dw_consumer *c, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, int lost, int cooperative)
{
  int32_t *ids = calloc((size_t)parts->cnt + 1, sizeof(*ids));
  size_t n = 0;
  for (int i = 0; ids && i < parts->cnt; i++)
    if (consumer_part(c, parts->elems[i].partition) == 0) {
      ids[n++] = parts->elems[i].partition;
      c->assign_seq[parts->elems[i].partition]++; /* a read still running for it is ignored */
      c->holds[parts->elems[i].partition] = 0;
    }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    c->ever_assigned = 1;
    c->assign_cooperative = cooperative;
    dw_info("assigned %d partition(s) of %s", parts->cnt, c->topic);
    c->assigning = rd_kafka_topic_partition_list_copy(parts);
    if (n)
      c->h.on_assign(c->h.arg, ids, n);
    /* Out of memory for the ids: no map, but every partition must be served. */
    if (c->h.on_committed && !c->closing && n == (size_t)parts->cnt && n > 0 && c->assigning)
      read_committed(c, ids, n, 0);
    if (c->requests == 0) {
      if (!c->assigning)
        take(c, parts);
      else
        finish_assign(c);
    }
  } else {
    dw_log_write(lost ? DW_LOG_WARN : DW_LOG_INFO, DW_LOG_CTX_NONE, "%s %d partition(s) of %s",
                 lost ? "lost" : "revoked", parts->cnt, c->topic);
    c->revoking = rd_kafka_topic_partition_list_copy(parts);
    c->revoke_cooperative = cooperative;
    if (!c->revoking) {
      /* Given up before anything is committed: to the handler they are lost. */
      dw_error("out of memory revoking partitions; giving them up at once");
      if (c->revoke_cooperative) {
        rd_kafka_error_destroy(rd_kafka_incremental_unassign(c->rk, parts));
        mark_taken(c, parts, 0);
      } else {
        rd_kafka_assign(c->rk, NULL);
        untake_all(c);
      }
      if (n)
        c->h.on_revoke(c->h.arg, ids, n, 1); /* its dw_consumer_revoke_done does nothing */
      partitions_changed(c, 0);
      next_step(c);
    } else if (n) {
      c->h.on_revoke(c->h.arg, ids, n, lost); /* it calls dw_consumer_revoke_done */
    } else {
      dw_consumer_revoke_done(c);
    }
  }
  free(ids);
}

void dw_consumer_revoke_done(struct dw_consumer *c)
{
  rd_kafka_topic_partition_list_t *parts = c->revoking;
  if (!parts)
    return;
  c->revoking = NULL;
  if (c->revoke_cooperative) {
    rd_kafka_error_t *e = rd_kafka_incremental_unassign(c->rk, parts);
    if (e) {
      dw_error("incremental unassign failed: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    mark_taken(c, parts, 0);
  } else {
    rd_kafka_assign(c->rk, NULL);
    untake_all(c);
  }
  rd_kafka_topic_partition_list_destroy(parts);
  partitions_changed(c, 0);
  next_step(c);
}

/* The rebalance callback, served on the loop: a step starts now, or after the one going on. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
  struct dw_consumer *c = opaque;
  int lost = err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rd_kafka_assignment_lost(rk);
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  if (!c->assigning && !c->revoking && !c->queued) {
    rebalance(c, err, parts, lost, cooperative);
    return;
  }
  struct queued_event *q = calloc(1, sizeof(*q));
  if (q)
    q->parts = rd_kafka_topic_partition_list_copy(parts);
  if (!q || !q->parts) {
    /* Taking it now would overwrite the step going on: the worker cannot go on safely. */
    free(q);
    c->h.on_fatal(c->h.arg, "out of memory queueing a rebalance event");
    return;
  }
  q->err = err;
  q->lost = lost;
  q->cooperative = cooperative;
  if (c->queued_tail)
    c->queued_tail->next = q;
  else
    c->queued = q;
  c->queued_tail = q;
}

static void on_next(uv_timer_t *t)
{
  struct dw_consumer *c = t->data;
  if (c->queued && !c->assigning && !c->revoking) {
    struct queued_event *q = c->queued;
    c->queued = q->next;
    if (!c->queued)
      c->queued_tail = NULL;
    rebalance(c, q->err, q->parts, q->lost, q->cooperative);
    rd_kafka_topic_partition_list_destroy(q->parts);
    free(q);
    next_step(c);
  }
  maybe_finish_close(c);
}

/* ---- the topic's partition count (the replica's share of the API budget) ---- */

#define METADATA_TIMEOUT_MS 5000

struct count_read {
  uv_work_t req;
  struct dw_consumer *c;
  size_t count;
};

static size_t assigned_count(const struct dw_consumer *c)
{
  size_t n = 0;
  for (size_t i = 0; i < c->nparts; i++)
    n += c->taken[i];
  return n;
}

/* rd_kafka_metadata blocks: on the pool's thread; the close waits for it (counting). */
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
}

static void count_done(uv_work_t *req, int status)
{
  struct count_read *r = req->data;
  struct dw_consumer *c = r->c;
  c->counting--;
  if (status == 0 && !c->closing && r->count > 0) {
    c->topic_partitions = r->count;
    c->h.on_partitions(c->h.arg, assigned_count(c), c->topic_partitions);
  }
  free(r);
  pool_done(c);
}

/* After the assignment changed: says the new count with the topic's size known so far, and
 * after an assignment reads the size again (partitions may have been added to the topic). */
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
  c->counting++;
  if (uv_queue_work(c->loop, &r->req, count_work, count_done) != 0) {
    c->counting--;
    free(r);
  }
}

/* The outcome of a commit, from the offset_commit_cb (a tick's) or from the callback of
 * dw_consumer_commit_then, both served on the loop. librdkafka sets err to the last failing
 * partition's error, so the partitions are looked at either way. A refused metadata string
 * (OFFSET_METADATA_TOO_LARGE) is the worker's to explain: it shortens its maps. Returns 0,
 * DW_ERANGE (a map refused) or DW_EIO. */
static int commit_outcome(struct dw_consumer *c, rd_kafka_resp_err_t err,
                          const rd_kafka_topic_partition_list_t *offsets)
{
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return 0;
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
  if (refused)
    c->h.on_metadata_refused(c->h.arg, refused_part, refused_len);
  if (failed && c->h.on_commit_failed)
    c->h.on_commit_failed(c->h.arg);
  return refused ? DW_ERANGE : failed ? DW_EIO : 0;
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
  (void)rk;
  commit_outcome(opaque, err, offsets);
}

static void on_commit_then(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
  struct dw_consumer *c = opaque;
  void (*then)(void *, int) = c->then;
  (void)rk;
  c->then = NULL;
  int rc = commit_outcome(c, err, offsets);
  if (then)
    then(c->then_arg, rc);
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
  uv_timer_init(loop, &c->next);
  c->next.data = c;
  *out = c;
  return 0;
fail:
  consumer_free(c);
  return DW_EINVAL;
}

/* The client, while its owner may have it asked: NULL once the group is left (librdkafka
 * 2.8.0's group handler no longer answers then) and once it is destroyed, in the loop
 * iteration before c is freed. Nothing asked of it on the loop waits for the group handler:
 * the assignment is our own copy (taken), since rd_kafka_assignment waits for an answer that
 * 2.0.2 no longer gives while the close is leaving the group, a moment before
 * rd_kafka_consumer_closed says so. */
static rd_kafka_t *client(const struct dw_consumer *c)
{
  if (!c->rk || c->finishing || (c->close_q && rd_kafka_consumer_closed(c->rk)))
    return NULL;
  return c->rk;
}

/* librdkafka 2.0.2's rd_kafka_offsets_store drops metadata; an explicit list keeps it. */
int dw_consumer_commit(struct dw_consumer *c, const int32_t *partitions,
                       const int64_t *offsets, const char *const *metadata, size_t n)
{
  if (n == 0)
    return 0;
  if (!client(c))
    return DW_EIO;
  rd_kafka_topic_partition_list_t *l =
      dw_kafka_offsets_list(c->topic, partitions, offsets, metadata, n);
  rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, 1);
  rd_kafka_topic_partition_list_destroy(l);
  if (!e || e == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return 0;
  dw_warn("offset commit failed: %s", rd_kafka_err2str(e));
  return DW_EIO;
}

/* The outcome comes back through the consumer's own queue, served on the loop by the waker
 * (rd_kafka_commit_queue: "the result of the offset commit will be posted on the provided
 * queue"), to on_commit_then rather than to the offset_commit_cb of the ticks. */
int dw_consumer_commit_then(struct dw_consumer *c, const int32_t *partitions,
                            const int64_t *offsets, const char *const *metadata, size_t n,
                            void (*then)(void *arg, int rc), void *arg)
{
  if (n == 0 || c->then)
    return n == 0 ? DW_ENOENT : DW_ESTATE;
  if (!client(c))
    return DW_EIO;
  rd_kafka_topic_partition_list_t *l =
      dw_kafka_offsets_list(c->topic, partitions, offsets, metadata, n);
  c->then = then;
  c->then_arg = arg;
  rd_kafka_resp_err_t e = rd_kafka_commit_queue(c->rk, l, c->waker.queue, on_commit_then, c);
  rd_kafka_topic_partition_list_destroy(l);
  if (!e)
    return 0;
  c->then = NULL;
  dw_warn("offset commit failed: %s", rd_kafka_err2str(e));
  return DW_EIO;
}

/* The partitions we gave librdkafka, as a list (NULL: none, or no memory). */
static rd_kafka_topic_partition_list_t *taken_list(const struct dw_consumer *c)
{
  int n = (int)assigned_count(c);
  if (n == 0)
    return NULL;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (size_t i = 0; l && i < c->nparts; i++)
    if (c->taken[i])
      rd_kafka_topic_partition_list_add(l, c->topic, (int32_t)i);
  return l;
}

void dw_consumer_pause_all(struct dw_consumer *c, int pause)
{
  rd_kafka_topic_partition_list_t *l = NULL;
  c->paused = pause;
  if (!client(c) || !(l = taken_list(c)))
    return;
  if (pause) {
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
  if (before != after && client(c))
    set_fetching(c->rk, c->topic, &partition, 1, after);
}

int64_t dw_consumer_lag(struct dw_consumer *c, size_t *assigned)
{
  rd_kafka_topic_partition_list_t *l = NULL;
  int64_t lag = 0;
  *assigned = 0;
  if (!client(c) || !(l = taken_list(c)))
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

static void consumer_freed(struct dw_consumer *c)
{
  if (--c->handles > 0)
    return;
  c->closed = 1;
  if (c->requests == 0 && c->counting == 0)
    consumer_free(c);
}

static void on_waker_closed(void *owner)
{
  consumer_freed(owner);
}

static void on_next_closed(uv_handle_t *h)
{
  consumer_freed(h->data);
}

/* The group is left (or there is nothing to leave) and no read of committed offsets is left
 * inside librdkafka on the pool: the client can be destroyed. Called from the timer, never
 * from inside a waker's serve. */
static void maybe_finish_close(struct dw_consumer *c)
{
  if (!c->closing || c->finishing || c->requests > 0 || c->counting > 0 || c->assigning ||
      c->revoking ||
      (c->close_q && !rd_kafka_consumer_closed(c->rk)))
    return;
  c->finishing = 1;
  c->handles = c->close_q ? 3 : 2;
  uv_timer_stop(&c->next);
  uv_close((uv_handle_t *)&c->next, on_next_closed);
  dw_kafka_waker_close(&c->waker, on_waker_closed);
  rd_kafka_queue_destroy(c->waker.queue);
  if (c->close_q) {
    dw_kafka_waker_close(&c->close_waker, on_waker_closed);
    rd_kafka_queue_destroy(c->close_q);
  }
  /* Left already (consumer_closed), or never joined with an assignment: librdkafka 2.0.2 can
   * crash closing a cooperative-sticky consumer that never had one (fixed in 2.3.0), so the
   * session then just times out. */
  rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  /* c lives on until its handles are closed, and its owner may still ask it (a /metrics
   * scrape served later in this loop iteration reads the lag): client() says no from now. */
  c->rk = NULL;
}

/* Serves the close's queue: its rebalance events and commit outcomes, like the consumer's;
 * the end is looked at from the timer. */
static int close_serve(void *owner)
{
  struct dw_consumer *c = owner;
  int more = consumer_serve(c);
  if (!c->finishing && rd_kafka_consumer_closed(c->rk))
    uv_timer_start(&c->next, on_next, 0, 0);
  return more && !c->finishing;
}

void dw_consumer_close(struct dw_consumer *c, void (*done)(void *arg), void *arg)
{
  c->done = done;
  c->done_arg = arg;
  c->closing = 1;
  if (c->ever_assigned) {
    /* Leaves the group without blocking: its events (the revoke of what is assigned) arrive
     * on close_q, which rd_kafka_consumer_poll serves too (the group's queue is forwarded
     * there); the close is over when rd_kafka_consumer_closed says so. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->rk, q);
    if (e) {
      dw_warn("closing the consumer: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      rd_kafka_queue_destroy(q);
    } else if (dw_kafka_waker_init(&c->close_waker, c->loop, q, close_serve, c) < 0) {
      dw_warn("closing the consumer: cannot create a pipe: %s; leaving the group at its "
              "session timeout", strerror(errno));
      rd_kafka_queue_destroy(q);
    } else {
      c->close_q = q;
    }
  }
  uv_timer_start(&c->next, on_next, 0, 0);
}

const char *dw_consumer_topic(const struct dw_consumer *c)
{
  return c->topic;
}

rd_kafka_consumer_group_metadata_t *dw_consumer_group_metadata(struct dw_consumer *c)
{
  rd_kafka_t *rk = client(c);
  return rk ? rd_kafka_consumer_group_metadata(rk) : NULL;
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
