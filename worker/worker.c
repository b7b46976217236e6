/* The worker owns the loop and wires the flow together:
 *   consumer -> event (parse, validate) -> poller -> answer -> producer -> committer.
 * A record becomes a job; the job lives until its result or dead letter is acknowledged by
 * Kafka, and only then is its offset marked done in the committer. A timer commits each
 * partition's committable offset (the lowest unfinished record) with the map the committer
 * writes, so completions that arrive out of order never commit past unfinished work; the
 * committer decides, the worker carries out (commits, holds, logs) through the commit
 * strategy picked at start: at-least-once or exactly-once. Partitions are paused above
 * worker.max_in_flight, while the app is failing, and while draining. */
#include "dw/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "dw/admin.h"
#include "dw/committer.h"
#include "dw/common.h"
#include "dw/consumer.h"
#include "dw/dlq.h"
#include "dw/http.h"
#include "dw/job.h"
#include "dw/producer.h"
#include "dw/result.h"
#include "dw/log.h"
#include "dw/metrics.h"
#include "dw/offsetmap.h"
#include "dw/poller.h"
#include "dw/procstat.h"
#include "dw/token.h"
#include "dw/text.h"

#define PRODUCE_RETRY_MS 1000
#define FLUSH_TIMEOUT_MS 30000
/* The shutdown's own time, after the drain (worker.drain_timeout_ms) and the flush
 * (FLUSH_TIMEOUT_MS): its last commit, at most SHUTDOWN_COMMIT_TIMEOUT_MS, then leaving the
 * group, which takes a second or two (librdkafka 2.0.2's can hang). The deployment files'
 * grace period (75 s) is 30 + 30 + 15 s, so the watchdog ends the process before the
 * orchestrator's SIGKILL would, with a line that says why. */
#define SHUTDOWN_WATCHDOG_S 14
#define SHUTDOWN_COMMIT_TIMEOUT_MS 10000
/* How long a revoke (or the shutdown's last commit) waits for its commit before it gives the
 * partitions up anyway. The group's rebalance waits for them meanwhile, so it is bounded; it is
 * above the worst a healthy path takes (exactly-once: a tick's commit in flight, then its own,
 * each at most 20 s on a cluster that stops answering) and well below max.poll.interval.ms
 * (300 s), after which the coordinator would evict the member. */
#define REVOKE_TIMEOUT_MS 45000
/* Start-up (creating the clients) takes well under a second; exactly-once adds the wait for
 * the transaction coordinator (rd_kafka_init_transactions, 60 s in producer.c). */
#define STARTUP_TIMEOUT_S 30
#define STARTUP_TXN_INIT_S 60

enum state { S_RUNNING, S_DRAINING, S_FLUSHING, S_STOPPED };

struct dw_worker;
struct job;

/* How outputs and input offsets are committed, picked at start by processing.guarantee: at
 * least once (the consumer commits the offsets of acknowledged outputs) or exactly once (the
 * outputs are staged in a transaction that carries the offsets, and settled when it commits or
 * aborts). The committer decides what to commit in either; a strategy carries it out. */
struct strategy {
  const char *starting; /* the start-up step that creates the producer */
  /* A job's output is about to be produced: 0 to produce it now; otherwise it waits for a
   * later transaction or left the flow. */
  int (*admit)(struct dw_worker *w, struct job *j);
  /* Producing it failed with an error worth another try. */
  void (*send_failed)(struct dw_worker *w, struct job *j);
  /* Its delivery report arrived. */
  void (*delivered)(struct dw_worker *w, struct job *j, int err, const char *errstr, int fatal);
  /* It can never be written: the worker stops without committing its offset. */
  void (*abandon)(struct dw_worker *w);
  /* Commits what is finished (each tick), without waiting; force: every partition known. */
  void (*commit)(struct dw_worker *w, int force);
  /* Starts a revoke's commit of these partitions (ids NULL: every one, the shutdown), lost
   * when they are someone else's already; its outcome comes back on the loop to
   * revoke_next. */
  void (*revoke_commit)(struct dw_worker *w, const int32_t *ids, size_t n, int lost);
  /* Whether a commit is in flight, which a revoke waits for. */
  int (*in_flight)(const struct dw_worker *w);
  /* How often commit runs, in milliseconds. */
  int64_t (*interval_ms)(const struct dw_config *cfg);
};

#define HOLD_MAP_FULL 1u /* the partition's commit-metadata map is near its limit */

/* The revoke going on, or the shutdown's last commit (final, of every partition); a revoke
 * that comes during the last commit follows it. */
struct revoke {
  int active, final;
  int32_t *ids;
  size_t n;
  struct dw_committer_revoke st;
  int has_next, next_lost;
  int32_t *next_ids;
  size_t next_n;
};

/* The headers a dead letter adds, with room for their values (the topic name points at the
 * config instead): the first `base` explain the failure, markers of left-out parts follow.
 * `orig` are the record's own headers with dlq.* names renamed (dw/dlq.h), in the same
 * allocation. */
#define DLQ_HEADERS 12
struct dlq_headers {
  struct dw_header h[DLQ_HEADERS];
  size_t count;
  size_t base;
  char buf[DLQ_HEADERS][DW_TEXT_MAX];
  struct dw_header *orig;
};

struct job {
  struct dw_worker *w;
  enum dw_job_state state; /* where it is in its life (dw/job.h) */
  struct dw_record *rec;
  struct dw_task *task;   /* while polling */
  int32_t partition;
  uint32_t generation;
  int is_result;          /* what is being produced */
  char *payload;          /* encoded result, while producing */
  size_t payload_len;
  char key[DW_TASK_ID_MAX + 1];
  struct dlq_headers *dlq; /* only for a dead letter: most jobs never need it */
  unsigned shed;          /* DW_DLQ_* parts the dead letter goes without (too large for Kafka) */
  unsigned sends;         /* produced, delivery report not yet received */
  const char *outcome;    /* "succeeded" or "failed", for the metrics */
  const char *reason;     /* the dead letter's reason, for the metrics */
  uint64_t taken_ms;      /* uv_now when the record was taken, for the outcome line */
  const struct dw_event *ev; /* borrowed while its outcome is decided, for the outcome line */
  struct job *prev, *next;      /* every job */
  struct job *retry_next;       /* waiting to be produced again */
  enum dw_job_action then;      /* exactly-once: what the end of its transaction decided */
  struct job *park_next;        /* exactly-once: waiting for room in the next transaction */
};

struct dw_worker {
  const struct dw_config *cfg;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  uv_timer_t commit_timer;
  uv_timer_t drain_timer;
  uv_timer_t retry_timer;
  uv_timer_t stop_timer; /* runs shutdown_all outside of any library callback */
  uv_timer_t revoke_timer; /* the deadline of the revoke going on */
  struct dw_http *http;
  struct dw_token *token;
  struct dw_ticket *ticket; /* store apps: the app_ticket source */
  struct dw_poller *poller;
  struct dw_consumer *consumer;
  struct dw_producer *producer;
  struct dw_admin *admin;
  struct dw_metrics *metrics;
  struct dw_metric *m_consumed, *m_resolved, *m_dead, *m_token_refreshes, *m_produce_retries;
  struct dw_metric *m_token_failures, *m_skipped, *m_txns, *m_log_dropped, *m_redelivered;
  uint64_t log_dropped; /* dw_log_dropped() as last added to m_log_dropped */
  struct dw_procstat proc; /* the process_* metrics, read at each scrape */
  const struct strategy *strategy; /* at_least_once or exactly_once */
  int txn_doomed;   /* something in the open transaction failed: abort it, produce again */
  int txn_doom_next; /* the same, learnt while a commit was in flight: for the next one */
  size_t txn_longest; /* the longest map of the transaction call in flight */
  struct job *parked; /* exactly-once: outputs waiting for the next transaction */
  struct dw_committer commit; /* the partitions' ledgers and commit decisions */
  struct revoke rv;
  int alo_committing; /* at-least-once: a revoke's commit is on its way */
  int final_done;     /* shutdown: the last commit is over */
  int consumer_closing;
  int ever_assigned;
  int healthy;
  char unhealthy_reason[DW_TEXT_MAX + 64];
  struct job *jobs;
  struct job *retry_head;
  size_t in_flight;
  int paused;       /* why partitions are paused: bit 1 backpressure, 2 app failure, 4 drain */
  enum state state;
  int exit_code;
  int signals;
  int drain_gave_up;
  uint64_t drain_started;
  uint64_t consumed, results, dead_letters;
};

static void begin_drain(struct dw_worker *w, int exit_code);
static void maybe_stop(struct dw_worker *w);

static void set_paused(struct dw_worker *w, int bit, int on)
{
  int before = w->paused != 0;
  w->paused = on ? (w->paused | bit) : (w->paused & ~bit);
  int after = w->paused != 0;
  if (before != after && w->consumer) {
    dw_consumer_pause_all(w->consumer, after);
    dw_debug("partitions %s", after ? "paused" : "resumed");
  }
}

static void job_release(struct job *j)
{
  dw_record_free(j->rec);
  free(j->payload);
  free(j->dlq);
  free(j);
}

/* The job leaves the flow. If a delivery report is still due for it (a fatal producer error
 * or an abort purges records asynchronously), its memory stays until the report arrives. */
static void job_free(struct dw_worker *w, struct job *j)
{
  if (j->prev)
    j->prev->next = j->next;
  else
    w->jobs = j->next;
  if (j->next)
    j->next->prev = j->prev;
  j->prev = j->next = NULL;
  if (j->sends)
    j->state = DW_JOB_ORPHAN;
  else
    job_release(j);
  w->in_flight--;
  if (w->in_flight < (size_t)w->cfg->worker.resume_in_flight)
    set_paused(w, 1, 0);
}

/* The job's output is safely in Kafka (or the job no longer matters): mark its offset done. */
static void job_done(struct dw_worker *w, struct job *j)
{
  dw_committer_done(&w->commit, j->partition, j->generation, j->rec->offset);
  job_free(w, j);
}

static void produce(struct dw_worker *w, struct job *j);
static void on_retry_timer(uv_timer_t *t);
static void add_header(struct job *j, const char *name, const char *value);
static void dead_letter(struct dw_worker *w, struct job *j, const char *reason, long code,
                        const char *msg, const char *log_id, unsigned attempts);

static struct dw_log_ctx job_ctx(const struct dw_worker *w, const struct job *j)
{
  struct dw_log_ctx ctx = {.task = j->key[0] ? j->key : NULL,
                           .topic = w->cfg->kafka.input_topic,
                           .partition = j->partition,
                           .offset = j->rec->offset};
  return ctx;
}

/* A dead letter Kafka cannot take even without its key, value and original headers. Its
 * offset must not be committed without an output, so the worker stops: the record is taken
 * again after a restart (once Kafka's limits let the worker's headers through). */
static void never_writable(struct dw_worker *w, struct job *j, const char *why)
{
  struct dw_log_ctx ctx = job_ctx(w, j);
  dw_log_write(DW_LOG_ERROR, &ctx, "dead letter cannot be written even without its key, value "
               "and original headers (%s; the producer's message.max.bytes is %zu); stopping "
               "without committing its offset", why, dw_producer_max_bytes(w->producer));
  w->strategy->abandon(w);
  job_free(w, j);
  begin_drain(w, 1);
}

static struct dw_dlq_parts dlq_parts(const struct job *j)
{
  struct dw_dlq_parts p = {.key = j->rec->key ? j->rec->key_len : 0,
                           .value = j->rec->value ? j->rec->value_len : 0,
                           .headers = dw_dlq_headers_size(j->dlq->orig, j->rec->header_count),
                           .own = dw_dlq_headers_size(j->dlq->h, j->dlq->base)};
  return p;
}

/* Leaves out of the dead letter what does not fit the producer's message.max.bytes
 * (dw_dlq_fit), and the parts in `more` whatever their size (Kafka refused the letter with
 * them, saying `why`); each part newly left out gets its marker header. Returns 0, or
 * DW_ERANGE when not even the worker's own headers fit. */
static int shed_to_fit(struct dw_worker *w, struct job *j, unsigned more, const char *why)
{
  static const struct {
    unsigned bit;
    const char *header, *what;
  } marks[] = {{DW_DLQ_VALUE, "dlq.value_omitted", "value"},
               {DW_DLQ_HEADERS, "dlq.headers_omitted", "original headers"},
               {DW_DLQ_KEY, "dlq.key_omitted", "key"}};
  struct dw_dlq_parts parts = dlq_parts(j);
  size_t limit = dw_producer_max_bytes(w->producer);
  unsigned shed;
  char over[96], note[DW_DLQ_MARKER_TEXT + 1];
  if (dw_dlq_fit(&parts, limit, j->shed | more, &shed) < 0)
    return DW_ERANGE;
  if (!why) {
    snprintf(over, sizeof(over), "larger than the producer's message.max.bytes (%zu)", limit);
    why = over;
  }
  for (size_t i = 0; i < DW_ARRAY_SIZE(marks); i++) {
    if (!(shed & marks[i].bit) || (j->shed & marks[i].bit))
      continue;
    size_t len = marks[i].bit == DW_DLQ_KEY     ? parts.key
                 : marks[i].bit == DW_DLQ_VALUE ? parts.value
                                                : parts.headers;
    snprintf(note, sizeof(note), "%s of %zu bytes omitted: %s", marks[i].what, len, why);
    struct dw_log_ctx ctx = job_ctx(w, j);
    dw_log_write(DW_LOG_ERROR, &ctx, "dead letter too large for Kafka: %s", note);
    add_header(j, marks[i].header, note);
  }
  j->shed = shed;
  return 0;
}

/* Kafka refused this record as it is. A result becomes a dead letter; a dead letter gives up
 * one more part (value, original headers, key; the worker's headers are kept) so the
 * partition moves on with an output for every record. */
static void unwritable(struct dw_worker *w, struct job *j, const char *why)
{
  if (j->is_result) {
    free(j->payload);
    j->payload = NULL;
    dead_letter(w, j, "internal_error", -1, why, NULL, 0);
    return;
  }
  struct dw_dlq_parts parts = dlq_parts(j);
  unsigned more = dw_dlq_shed_more(&parts, j->shed);
  if (more == j->shed || shed_to_fit(w, j, more, why) < 0) {
    never_writable(w, j, why);
    return;
  }
  produce(w, j);
}

/* The job's result or dead letter is safely in Kafka: count it. */
static void count_output(struct dw_worker *w, const struct job *j)
{
  if (j->is_result) {
    w->results++;
    dw_metric_inc(w->m_resolved, j->outcome, 1);
  } else {
    w->dead_letters++;
    dw_metric_inc(w->m_dead, j->reason, 1);
  }
}

/* Exactly-once: a delivery report only notes what went wrong; the transaction's commit (or
 * abort) decides what becomes of the job. This may run while the commit is in flight (its
 * outcome is settled after the reports). */
static void eos_delivered(struct dw_worker *w, struct job *j, int err, const char *errstr,
                          int fatal)
{
  struct dw_job_decision d;
  dw_job_on_delivered(&j->state, 1, err, fatal, j->sends, &d);
  if (d.doom)
    w->txn_doomed = 1;
  if (d.stop) {
    dw_error("could not write the %s: %s", j->is_result ? "result" : "dead letter", errstr);
    begin_drain(w, 1);
  }
}

static void on_delivered(void *arg, int err, const char *errstr, int fatal)
{
  struct job *j = arg;
  struct dw_worker *w = j->w;
  j->sends--;
  if (j->state == DW_JOB_ORPHAN) {
    struct dw_job_decision d;
    dw_job_on_delivered(&j->state, 0, err, fatal, j->sends, &d);
    if (d.action == DW_JOB_RELEASE)
      job_release(j);
    return;
  }
  w->strategy->delivered(w, j, err, errstr, fatal);
}

/* At-least-once: an acknowledged output finishes its job (the offset may be committed); one
 * Kafka refused as too large is written smaller, another failure is retried. */
static void alo_delivered(struct dw_worker *w, struct job *j, int err, const char *errstr,
                          int fatal)
{
  struct dw_job_decision d;
  dw_job_on_delivered(&j->state, 0, err, fatal, j->sends, &d);
  if (d.action == DW_JOB_SHRINK) {
    unwritable(w, j, errstr);
    maybe_stop(w);
    return;
  }
  if (d.action == DW_JOB_FINISH) {
    count_output(w, j);
    job_done(w, j);
    maybe_stop(w);
    return;
  }
  struct dw_log_ctx ctx = {.task = j->key[0] ? j->key : NULL,
                           .topic = w->cfg->kafka.input_topic,
                           .partition = j->partition,
                           .offset = j->rec->offset};
  dw_log_write(DW_LOG_ERROR, &ctx, "could not write the %s: %s%s",
               j->is_result ? "result" : "dead letter", errstr,
               fatal ? "" : "; retrying");
  if (d.action == DW_JOB_DROP) {
    job_free(w, j); /* its offset is not committed: it is processed again after a restart */
    begin_drain(w, 1);
    return;
  }
  dw_metric_inc(w->m_produce_retries, NULL, 1);
  j->retry_next = w->retry_head;
  w->retry_head = j;
  if (!uv_is_active((uv_handle_t *)&w->retry_timer))
    uv_timer_start(&w->retry_timer, on_retry_timer, PRODUCE_RETRY_MS, 0);
}

static void on_retry_timer(uv_timer_t *t)
{
  struct dw_worker *w = t->data;
  struct job *j = w->retry_head;
  w->retry_head = NULL;
  while (j) {
    struct job *next = j->retry_next;
    produce(w, j);
    j = next;
  }
}

/* Exactly-once: stages the job's offset with its output in the open transaction (the
 * committer decides whether it joins it now, waits for the next one, or is dropped). Returns
 * 0 when the job is to be produced now; otherwise it was parked or dropped. */
static int stage(struct dw_worker *w, struct job *j)
{
  switch (dw_committer_stage(&w->commit, j->partition, j->generation, j->rec->offset,
                             dw_producer_txn_busy(w->producer))) {
  case DW_COMMITTER_STAGE:
    j->state = DW_JOB_STAGED;
    return 0;
  case DW_COMMITTER_PARK:
    j->state = DW_JOB_PARKED;
    j->park_next = w->parked;
    w->parked = j;
    return -1;
  case DW_COMMITTER_DROP:
    break;
  }
  job_free(w, j); /* no longer ours (or never committable): processed again by the next owner */
  maybe_stop(w);
  return -1;
}

/* At-least-once: every output is produced at once. */
static int alo_admit(struct dw_worker *w, struct job *j)
{
  (void)w;
  j->state = DW_JOB_OUTPUT;
  return 0;
}

/* Exactly-once: an output joins the open transaction when the committer lets it (once: a job
 * produced again within the same transaction is staged already). */
static int eos_admit(struct dw_worker *w, struct job *j)
{
  return dw_job_staged(j->state) ? 0 : stage(w, j);
}

/* Exactly-once: after a commit or an abort, the parked outputs try again. */
static void unpark(struct dw_worker *w)
{
  struct job *j = w->parked;
  w->parked = NULL;
  while (j) {
    struct job *next = j->park_next;
    produce(w, j);
    j = next;
  }
}

static void produce(struct dw_worker *w, struct job *j)
{
  const struct dw_config *c = w->cfg;
  int rc;
  if (w->strategy->admit(w, j) < 0)
    return;
  struct dw_message m;
  struct dw_header carried[DW_RESULT_MAX_HEADERS];
  if (j->is_result)
    m = (struct dw_message){
        .topic = c->kafka.results_topic, .key = j->key, .key_len = strlen(j->key),
        .value = j->payload, .value_len = j->payload_len, .headers = carried,
        .header_count = dw_result_headers(j->rec->headers, j->rec->header_count, carried,
                                          DW_ARRAY_SIZE(carried))};
  else
    m = (struct dw_message){
        .topic = c->kafka.dlq_topic,
        .key = (j->shed & DW_DLQ_KEY) ? NULL : j->rec->key,
        .key_len = (j->shed & DW_DLQ_KEY) ? 0 : j->rec->key_len,
        .value = (j->shed & DW_DLQ_VALUE) ? NULL : j->rec->value,
        .value_len = (j->shed & DW_DLQ_VALUE) ? 0 : j->rec->value_len,
        .headers = (j->shed & DW_DLQ_HEADERS) ? NULL : j->dlq->orig,
        .header_count = (j->shed & DW_DLQ_HEADERS) ? 0 : j->rec->header_count,
        .extra = j->dlq->h,
        .extra_count = j->dlq->count};
  rc = dw_producer_send(w->producer, &m, on_delivered, j);
  if (rc == 0)
    j->sends++;
  if (rc == DW_ERANGE) {
    unwritable(w, j, "the producer refused it as too large");
  } else if (rc == DW_ESTATE) {
    job_free(w, j); /* not committed: processed again after a restart */
    begin_drain(w, 1);
  } else if (rc < 0) {
    w->strategy->send_failed(w, j);
  }
}

/* At-least-once: produced again from the retry timer. */
static void alo_send_failed(struct dw_worker *w, struct job *j)
{
  j->state = DW_JOB_RETRYING;
  j->retry_next = w->retry_head;
  w->retry_head = j;
  uv_timer_start(&w->retry_timer, on_retry_timer, PRODUCE_RETRY_MS, 0);
}

/* Exactly-once: the abort produces everything in the transaction again. */
static void eos_send_failed(struct dw_worker *w, struct job *j)
{
  (void)j;
  w->txn_doomed = 1;
}

static void add_header(struct job *j, const char *name, const char *value)
{
  struct dlq_headers *d = j->dlq;
  if (!d || d->count == DLQ_HEADERS)
    return;
  size_t i = d->count++;
  dw_text_copy(d->buf[i], sizeof(d->buf[i]), value); /* texts: a cut ends with a mark */
  d->h[i].name = name;
  d->h[i].value = d->buf[i];
  d->h[i].len = strlen(d->buf[i]);
}

/* A header whose value lives as long as the worker (not copied, never cut). */
static void add_header_static(struct job *j, const char *name, const char *value)
{
  struct dlq_headers *d = j->dlq;
  if (!d || d->count == DLQ_HEADERS)
    return;
  size_t i = d->count++;
  d->h[i].name = name;
  d->h[i].value = value;
  d->h[i].len = strlen(value);
}

/* A task's outcome line: msg stays readable, and the task's facts are fields of their own. */
static void log_outcome(struct dw_worker *w, const struct job *j, enum dw_log_level level,
                        const char *outcome, const char *reason, unsigned calls,
                        const char *log_id, const char *msg)
{
  const struct dw_event *ev = j->ev;
  struct dw_log_outcome o = {.website = ev ? ev->website_id : NULL,
                             .tenant = ev ? ev->tenant_key : NULL,
                             .event_id = ev ? ev->event_id : NULL,
                             .outcome = outcome,
                             .reason = reason,
                             .calls = calls,
                             .duration_ms = (int64_t)(uv_now(&w->loop) - j->taken_ms)};
  struct dw_log_ctx ctx = job_ctx(w, j);
  ctx.log_id = log_id && log_id[0] ? log_id : NULL;
  ctx.outcome = &o;
  dw_log_write(level, &ctx, "%s", msg);
}

static void dead_letter(struct dw_worker *w, struct job *j, const char *reason, long code,
                        const char *msg, const char *log_id, unsigned attempts)
{
  char num[32], ts[32];
  size_t nh = j->rec->header_count, names = dw_dlq_rename_bytes(j->rec->headers, nh);
  j->is_result = 0;
  j->reason = reason;
  j->shed = 0;
  free(j->dlq);
  j->dlq = calloc(1, sizeof(*j->dlq) + nh * sizeof(struct dw_header) + names);
  if (!j->dlq) { /* without its headers a dead letter would be unexplained: stop instead */
    dw_error("out of memory writing a dead letter; stopping");
    job_free(w, j);
    begin_drain(w, 1);
    return;
  }
  /* The record's headers as they are, but for dlq.* names: those are the worker's. */
  j->dlq->orig = (struct dw_header *)(j->dlq + 1);
  dw_dlq_rename(j->rec->headers, nh, j->dlq->orig, (char *)(j->dlq->orig + nh));
  add_header(j, "dlq.reason", reason);
  if (code >= 0) {
    snprintf(num, sizeof(num), "%ld", code);
    add_header(j, "dlq.error_code", num);
  }
  add_header(j, "dlq.error_msg", msg ? msg : "");
  if (log_id && log_id[0])
    add_header(j, "dlq.log_id", log_id);
  add_header_static(j, "dlq.source_topic", w->cfg->kafka.input_topic);
  snprintf(num, sizeof(num), "%d", (int)j->partition);
  add_header(j, "dlq.source_partition", num);
  snprintf(num, sizeof(num), "%lld", (long long)j->rec->offset);
  add_header(j, "dlq.source_offset", num);
  snprintf(num, sizeof(num), "%u", attempts);
  add_header(j, "dlq.attempts", num);
  add_header(j, "dlq.failed_at", dw_rfc3339(dw_wallclock_ms(), ts, sizeof(ts)));
  j->dlq->base = j->dlq->count;
  char line[4096]; /* the API's msg and why an event is invalid are far shorter */
  snprintf(line, sizeof(line), "dead letter %s: %s", reason, msg ? msg : "");
  log_outcome(w, j, DW_LOG_WARN, "dead_letter", reason, attempts, log_id, line);
  j->ev = NULL; /* borrowed for the line only; the job may be gone once produce returns */
  if (shed_to_fit(w, j, 0, NULL) < 0) {
    never_writable(w, j, "the worker's own headers exceed it");
    return;
  }
  produce(w, j);
}

static void on_outcome(void *arg, void *owner, const struct dw_outcome *o)
{
  struct dw_worker *w = arg;
  struct job *j = owner;
  j->task = NULL;
  j->ev = o->event; /* the task's, freed after this callback */
  if (o->kind == DW_OUTCOME_DEAD_LETTER) {
    dead_letter(w, j, o->reason, o->error_code, o->error_msg, o->log_id, o->attempts);
    return;
  }
  struct dw_result res = {.event = o->event, .answer = o->answer, .polls = o->attempts,
                          .resolved_at_ms = dw_wallclock_ms()};
  if (dw_result_encode(&res, &j->payload, &j->payload_len) < 0) {
    dead_letter(w, j, "internal_error", -1, "cannot encode the result", o->log_id,
                o->attempts);
    return;
  }
  j->is_result = 1;
  j->outcome = o->answer->kind == DW_ANSWER_SUCCEEDED ? "succeeded" : "failed";
  if (dw_log_enabled(DW_LOG_INFO)) { /* not formatted to be dropped, once per task */
    char line[96];
    snprintf(line, sizeof(line), "resolved: %s after %u call(s)", j->outcome, o->attempts);
    log_outcome(w, j, DW_LOG_INFO, j->outcome, NULL, o->attempts, o->log_id, line);
  }
  j->ev = NULL;
  produce(w, j);
}

static void on_health(void *arg, int healthy, const char *reason)
{
  struct dw_worker *w = arg;
  w->healthy = healthy;
  dw_text_copy(w->unhealthy_reason, sizeof(w->unhealthy_reason), healthy ? "" : reason);
  set_paused(w, 2, !healthy); /* stop taking new work; tasks in flight wait, nothing is lost */
}

static void on_token(void *arg, const char *tenant_key, int err, const char *reason)
{
  struct dw_worker *w = arg;
  if (!err)
    dw_metric_inc(w->m_token_refreshes, NULL, 1);
  else /* refused: the endpoint said no (credentials, app not installed); no_ticket: a store
        * app waits for its app_ticket; unreachable: transport errors, 5xx, unreadable answers */
    dw_metric_inc(w->m_token_failures,
                  err == DW_EAGAIN ? "no_ticket" : err == DW_EINVAL ? "refused" : "unreachable", 1);
  dw_poller_on_token(w->poller, tenant_key, err, reason);
}

/* /readyz: ready while running once the group has given this member its assignment, and the
 * app healthy. An empty assignment is ready too ("idle"): a replica beyond the partition count
 * is not broken, and holding it unready would stall a rolling update for ever. A worker the
 * API's rate limit holds back stays ready (nothing a restart or another replica would do
 * better: they share the budget) but says so. */
static int on_ready(void *arg, char *why, size_t whylen)
{
  struct dw_worker *w = arg;
  size_t assigned = 0;
  if (w->state != S_RUNNING)
    snprintf(why, whylen, "draining: shutting down");
  else if (!w->ever_assigned && !(w->consumer && dw_consumer_joined(w->consumer)))
    snprintf(why, whylen, "waiting for the first partition assignment of %s",
             w->cfg->kafka.input_topic);
  else if (!w->healthy)
    dw_text_format(why, whylen, "app-level failure: %s", w->unhealthy_reason);
  else if (w->consumer && (dw_consumer_lag(w->consumer, &assigned), assigned == 0)) {
    snprintf(why, whylen, "ready (idle: no partitions of %s assigned)",
             w->cfg->kafka.input_topic);
    return 1;
  } else {
    size_t lanes = 0;
    uint64_t held = w->poller ? dw_poller_held_back_ms(w->poller, &lanes) : 0;
    if (held && lanes > 1)
      snprintf(why, whylen, "ready (held back by the API rate limit for %llu s, %zu tenants)",
               (unsigned long long)(held + 999) / 1000, lanes);
    else if (held)
      snprintf(why, whylen, "ready (held back by the API rate limit for %llu s)",
               (unsigned long long)(held + 999) / 1000);
    return 1;
  }
  return 0;
}

static int on_render(void *arg, char **body, size_t *len)
{
  struct dw_worker *w = arg;
  /* The log counts its dropped lines itself (any thread drops them); catch up here. */
  uint64_t dropped = dw_log_dropped();
  dw_metric_inc(w->m_log_dropped, NULL, (double)(dropped - w->log_dropped));
  w->log_dropped = dropped;
  dw_procstat_read(&w->proc); /* a few bounded reads of /proc; zeros if it is not there */
  return dw_metrics_render(w->metrics, body, len);
}

static double gauge_in_flight(void *arg)
{
  return (double)((struct dw_worker *)arg)->in_flight;
}

static double gauge_paused(void *arg)
{
  struct dw_worker *w = arg;
  size_t assigned = 0;
  if (!w->consumer)
    return 0;
  dw_consumer_lag(w->consumer, &assigned);
  return w->paused ? (double)assigned : 0;
}

static double gauge_lag(void *arg)
{
  struct dw_worker *w = arg;
  size_t assigned;
  return w->consumer ? (double)dw_consumer_lag(w->consumer, &assigned) : 0;
}

static double gauge_ready(void *arg)
{
  char why[DW_TEXT_MAX + 128];
  return on_ready(arg, why, sizeof(why));
}

static double gauge_map_bytes(void *arg)
{
  return (double)((struct dw_worker *)arg)->commit.map_bytes;
}

static double proc_cpu(void *arg)
{
  return ((struct dw_worker *)arg)->proc.cpu_seconds;
}

static double proc_resident(void *arg)
{
  return ((struct dw_worker *)arg)->proc.resident_bytes;
}

static double proc_open_fds(void *arg)
{
  return ((struct dw_worker *)arg)->proc.open_fds;
}

static double proc_max_fds(void *arg)
{
  return ((struct dw_worker *)arg)->proc.max_fds;
}

static double proc_start_time(void *arg)
{
  return ((struct dw_worker *)arg)->proc.start_time_seconds;
}

/* The per-partition lags of librdkafka's last statistics: committed or fetched. */
static void partition_lags(struct dw_worker *w, struct dw_metrics_sink *sink, int committed)
{
  const struct dw_kstats_lag *l = NULL;
  size_t n = w->consumer ? dw_consumer_partition_lags(w->consumer, &l) : 0;
  char id[16];
  for (size_t i = 0; i < n; i++) {
    int64_t v = committed ? l[i].committed : l[i].fetched;
    if (v < 0)
      continue; /* unknown yet */
    snprintf(id, sizeof(id), "%d", (int)l[i].partition);
    dw_metrics_sink_add(sink, id, (double)v);
  }
}

static void lag_committed(void *arg, struct dw_metrics_sink *sink)
{
  partition_lags(arg, sink, 1);
}

static void lag_fetched(void *arg, struct dw_metrics_sink *sink)
{
  partition_lags(arg, sink, 0);
}

/* When the first token held expires, as Unix time (loop time is monotonic). */
static double gauge_token_expiry(void *arg)
{
  struct dw_worker *w = arg;
  uint64_t at = w->token ? dw_token_earliest_expiry(w->token) : 0;
  if (!at)
    return 0;
  double left_ms = (double)at - (double)uv_now(&w->loop);
  return ((double)dw_wallclock_ms() + left_ms) / 1000.0;
}

static void register_metrics(struct dw_worker *w)
{
  struct dw_metrics *r = w->metrics;
  w->m_consumed = dw_metrics_counter(r, "dw_tasks_consumed_total",
                                     "Task-created events taken from the input topic.", NULL);
  w->m_resolved = dw_metrics_counter(r, "dw_tasks_resolved_total",
                                     "Results acknowledged by Kafka, by outcome.", "outcome");
  w->m_dead = dw_metrics_counter(r, "dw_dead_letters_total",
                                 "Dead letters acknowledged by Kafka, by reason.", "reason");
  w->m_token_refreshes = dw_metrics_counter(r, "dw_token_refreshes_total",
                                            "Tenant access tokens obtained.", NULL);
  w->m_token_failures = dw_metrics_counter(r, "dw_token_refresh_failures_total",
                                           "Token requests that failed and will be retried, by "
                                           "cause (unreachable, refused, no_ticket).", "cause");
  /* Every cause from the start at 0, so that rate() and increase() see the first failure. */
  static const char *const token_causes[] = {"unreachable", "refused", "no_ticket"};
  for (size_t i = 0; i < sizeof(token_causes) / sizeof(token_causes[0]); i++)
    dw_metric_inc(w->m_token_failures, token_causes[i], 0);
  w->m_produce_retries = dw_metrics_counter(r, "dw_produce_retries_total",
                                            "Results or dead letters produced again after a "
                                            "failed delivery.", NULL);
  w->m_skipped = dw_metrics_counter(r, "dw_tasks_skipped_total",
                                    "Records skipped because the commit metadata shows they "
                                    "were finished before a restart or rebalance.", NULL);
  w->m_redelivered = dw_metrics_counter(r, "dw_records_redelivered_total",
                                        "Records the Kafka client delivered again after going "
                                        "back to an earlier offset; dropped, since they were "
                                        "taken already.", NULL);
  w->m_txns = dw_metrics_counter(r, "dw_transactions_total",
                                 "Exactly-once transactions, by result (committed, aborted).",
                                 "result");
  w->m_log_dropped = dw_metrics_counter(r, "dw_log_lines_dropped_total",
                                       "Log lines dropped because stderr could not take them "
                                       "(a full pipe, a reader that went away).", NULL);
  dw_metrics_gauge_fn(r, "dw_ready",
                      "1 when /readyz answers 200 (running, assignment received, app healthy), "
                      "else 0.",
                      gauge_ready, w);
  dw_metrics_gauge_fn(r, "dw_commit_metadata_bytes",
                      "Largest map of finished tasks in the last commit, in bytes (limit: "
                      "kafka.commit_metadata_max_bytes).", gauge_map_bytes, w);
  dw_metrics_gauge_fn(r, "dw_tasks_in_flight",
                      "Records taken whose result or dead letter is not yet acknowledged.",
                      gauge_in_flight, w);
  dw_metrics_gauge_fn(r, "dw_partitions_paused",
                      "Assigned partitions paused (backpressure, app failure or draining).",
                      gauge_paused, w);
  dw_metrics_gauge_fn(r, "dw_consumer_lag",
                      "Records of the assigned partitions not yet fetched (cached watermarks).",
                      gauge_lag, w);
  dw_metrics_gauge_vec_fn(r, "dw_consumer_committed_lag",
                          "Records of an assigned partition not yet committed as done (end "
                          "offset - committed offset), from librdkafka's last statistics.",
                          "partition", lag_committed, w);
  dw_metrics_gauge_vec_fn(r, "dw_consumer_fetched_lag",
                          "Records of an assigned partition not yet fetched (end offset - next "
                          "fetch offset), from librdkafka's last statistics.",
                          "partition", lag_fetched, w);
  dw_metrics_gauge_fn(r, "dw_token_expiry_timestamp_seconds",
                      "Unix time the first access token held expires (it is refreshed before); "
                      "0 while none is held.",
                      gauge_token_expiry, w);
  const char *build[] = {"version",    DW_VERSION,
                         "commit",     DW_COMMIT,
                         "librdkafka", dw_consumer_kafka_version(),
                         "libcurl",    dw_http_version(),
                         "libuv",      uv_version_string()};
  dw_metrics_info(r, "dw_build_info",
                  "Always 1: the worker's version and commit, and its libraries' versions.",
                  build, DW_ARRAY_SIZE(build) / 2);
  /* Prometheus's standard process metrics, as its client libraries name them. */
  dw_metrics_counter_fn(r, "process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.", proc_cpu, w);
  dw_metrics_gauge_fn(r, "process_resident_memory_bytes", "Resident memory size in bytes.",
                      proc_resident, w);
  dw_metrics_gauge_fn(r, "process_open_fds", "Number of open file descriptors.",
                      proc_open_fds, w);
  dw_metrics_gauge_fn(r, "process_max_fds", "Maximum number of open file descriptors.",
                      proc_max_fds, w);
  dw_metrics_gauge_fn(r, "process_start_time_seconds",
                      "Start time of the process since unix epoch in seconds.",
                      proc_start_time, w);
}

static void on_record(void *arg, struct dw_record *rec)
{
  struct dw_worker *w = arg;
  struct dw_committer_arrival a;
  if (w->state != S_RUNNING) {
    /* Not taken: its offset is not committed, so it comes back later. */
    dw_record_free(rec);
    return;
  }
  dw_committer_on_record(&w->commit, rec->partition, rec->offset, &a);
  switch (a.verdict) {
  case DW_COMMITTER_NOT_OURS: /* not taken: its offset is not committed, so it comes back */
    dw_record_free(rec);
    return;
  case DW_COMMITTER_TAKEN_ALREADY:
    /* The first delivery is in flight or finished; this copy is dropped (dw/committer.h). */
    if (a.rewound)
      dw_warn("partition %d: the Kafka client went back to offset %lld, below the next "
              "offset to take (%lld); records taken already are not taken again",
              (int)rec->partition, (long long)rec->offset, (long long)a.next);
    dw_metric_inc(w->m_redelivered, NULL, 1);
    dw_record_free(rec);
    return;
  case DW_COMMITTER_UNTRACKABLE:
    /* Later records could then commit past this one: stop instead. */
    dw_error("cannot track offset %lld of partition %d (%s); stopping",
             (long long)rec->offset, (int)rec->partition, dw_strerror(a.err));
    dw_record_free(rec);
    begin_drain(w, 1);
    return;
  case DW_COMMITTER_TAKE:
  case DW_COMMITTER_SKIP:
    break;
  }
  if (a.caught_up)
    dw_info("partition %d: caught up again at offset %lld", (int)rec->partition,
            (long long)rec->offset);
  if (a.verdict == DW_COMMITTER_SKIP) {
    /* Finished before a restart or rebalance: its output is already in Kafka. */
    dw_metric_inc(w->m_skipped, NULL, 1);
    dw_record_free(rec);
    return;
  }
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    dw_error("out of memory taking a record; stopping");
    dw_record_free(rec);
    begin_drain(w, 1);
    return;
  }
  j->w = w;
  j->rec = rec;
  j->taken_ms = uv_now(&w->loop);
  j->partition = rec->partition;
  j->generation = a.generation;
  j->next = w->jobs;
  if (w->jobs)
    w->jobs->prev = j;
  w->jobs = j;
  w->in_flight++;
  w->consumed++;
  dw_metric_inc(w->m_consumed, NULL, 1);
  if (w->in_flight >= (size_t)w->cfg->worker.max_in_flight)
    set_paused(w, 1, 1);

  struct dw_event ev;
  char why[200];
  if (rec->value_len > (size_t)w->cfg->worker.max_event_bytes) {
    snprintf(why, sizeof(why), "value of %zu bytes is larger than worker.max_event_bytes",
             rec->value_len);
    dead_letter(w, j, "invalid_event", -1, why, NULL, 0);
    return;
  }
  if (dw_event_parse(&ev, rec->value, rec->value_len, why, sizeof(why)) < 0) {
    dead_letter(w, j, "invalid_event", -1, why, NULL, 0);
    return;
  }
  dw_strlcpy(j->key, ev.task_id, sizeof(j->key));
  j->ev = &ev; /* for the outcome line, until this function returns */
  if (!ev.tenant_key[0] && strcmp(w->cfg->feishu.app_type, "store") == 0) {
    dead_letter(w, j, "invalid_event", -1, "tenant_key is required by a store app", NULL, 0);
    return;
  }
  j->state = DW_JOB_POLLING;
  int rc = dw_poller_submit(w->poller, &ev, rec->timestamp_ms, j, &j->task);
  if (rc < 0)
    dead_letter(w, j, "internal_error", -1, dw_strerror(rc), NULL, 0);
  else
    j->ev = NULL;
}

static void on_assign(void *arg, const int32_t *ids, size_t n)
{
  struct dw_worker *w = arg;
  w->ever_assigned = 1;
  dw_committer_assign(&w->commit, ids, n);
}

/* The replica's part of the input topic: its share of the API budget follows it. */
static void on_partitions(void *arg, size_t assigned, size_t total)
{
  struct dw_worker *w = arg;
  if (w->poller)
    dw_poller_set_partitions(w->poller, assigned, total);
}

/* The committed offset and metadata of a new partition, before its first record. */
static void on_committed(void *arg, int32_t id, int64_t offset, const char *meta, size_t len)
{
  struct dw_worker *w = arg;
  int64_t base = -1, count = 0;
  switch (dw_committer_on_committed(&w->commit, id, offset, meta, len, &base, &count)) {
  case DW_COMMITTER_MAP_FOREIGN:
    dw_warn("partition %d: ignoring commit metadata not written by delivery-worker (or "
            "corrupt); records after offset %lld are processed again", (int)id,
            (long long)offset);
    break;
  case DW_COMMITTER_MAP_RESET:
    dw_info("partition %d: the committed offset %lld is not the one the finished-task map "
            "was written for (%lld): the offsets were reset; ignoring the map", (int)id,
            (long long)offset, (long long)base);
    break;
  case DW_COMMITTER_MAP_LOADED:
    dw_info("partition %d: %lld task(s) after offset %lld were finished before; they are "
            "skipped", (int)id, (long long)count, (long long)offset);
    break;
  case DW_COMMITTER_MAP_NONE:
    break;
  }
}

/* Holds the partitions whose maps passed three quarters of their room, and releases those
 * back under half, as the committer decided while collecting a commit. */
static void hold_partitions(struct dw_worker *w, const struct dw_committer_batch *b)
{
  for (size_t i = 0; i < b->nholds; i++) {
    const struct dw_committer_hold *h = &b->holds[i];
    if (h->on)
      dw_warn("partition %d: the map of finished tasks beyond offset %lld fills %zu of %zu "
              "bytes; taking no new records from it until it shrinks", (int)h->partition,
              (long long)h->base, h->len, w->commit.mapmax);
    else
      dw_info("partition %d: the map of finished tasks is back to %zu bytes; taking records "
              "again", (int)h->partition, h->len);
    dw_consumer_hold(w->consumer, h->partition, HOLD_MAP_FULL, h->on);
  }
}

/* The offsets to commit with their maps (dw_committer_collect), partitions held or released
 * on the way. */
static const struct dw_committer_batch *collect_commits(struct dw_worker *w, const int32_t *only,
                                                        size_t only_n, int force)
{
  const struct dw_committer_batch *b = dw_committer_collect(&w->commit, only, only_n, force);
  hold_partitions(w, b);
  return b;
}

/* The broker refused a map of `refused` bytes: its offset.metadata.max.bytes is below
 * kafka.commit_metadata_max_bytes, and the committer gave maps less room. Said once as a
 * warning (the cause and the fix); a further lowering is only noted. */
static void say_room(struct dw_worker *w, int32_t partition, size_t refused,
                     const struct dw_committer_room *r)
{
  char where[48] = "";
  if (!r->lowered)
    return;
  if (partition >= 0)
    snprintf(where, sizeof(where), "partition %d: ", (int)partition);
  if (r->lowered == 2) {
    dw_info("%sthe broker refused commit metadata of %zu bytes again; using %zu bytes from now "
            "on", where, refused, r->room);
    return;
  }
  if (r->room > 0)
    dw_warn("%sthe broker refused commit metadata of %zu bytes (OFFSET_METADATA_TOO_LARGE: "
            "longer than its offset.metadata.max.bytes); using %zu bytes from now on: set "
            "kafka.commit_metadata_max_bytes (%zu) to at most the broker's "
            "offset.metadata.max.bytes", where, refused, r->room, w->commit.mapcap);
  else
    dw_warn("%sthe broker refused commit metadata of %zu bytes (OFFSET_METADATA_TOO_LARGE: "
            "longer than its offset.metadata.max.bytes); committing offsets without the map of "
            "finished tasks from now on (tasks finished beyond the committed offset are polled "
            "again after a restart): set kafka.commit_metadata_max_bytes (%zu) to at most the "
            "broker's offset.metadata.max.bytes", where, refused, w->commit.mapcap);
}

/* At-least-once: a commit was refused for a map too long for the broker (the shortest such
 * map of the commit). on_commit_failed follows, so everything is committed again, with the
 * shorter maps, on the next tick. */
static void on_metadata_refused(void *arg, int32_t partition, size_t len)
{
  struct dw_worker *w = arg;
  struct dw_committer_room r;
  dw_committer_refused(&w->commit, len, &r);
  say_room(w, partition, len, &r);
}

/* Exactly-once: the transaction whose longest map had `refused` bytes was aborted because the
 * broker refused a map. Returns 0 when maps have less room from now on (or already had),
 * DW_ERANGE when the broker cannot take even the committed map (dw_committer_refused_txn). */
static int lower_map_room_txn(struct dw_worker *w, size_t refused)
{
  struct dw_committer_room r;
  if (dw_committer_refused_txn(&w->commit, refused, &r) < 0) {
    dw_error("exactly-once: the broker refused commit metadata of %zu bytes "
             "(OFFSET_METADATA_TOO_LARGE: longer than its offset.metadata.max.bytes), and "
             "shorter maps would leave out tasks whose outputs are committed (the committed "
             "map takes %zu bytes; maps need at least %d), so a restart would write them "
             "again: set the broker's offset.metadata.max.bytes to at least "
             "kafka.commit_metadata_max_bytes (%zu); stopping", refused, r.settled,
             DW_OFFSETMAP_MIN_BYTES, w->commit.mapcap);
    return DW_ERANGE;
  }
  say_room(w, -1, refused, &r);
  return 0;
}

static void txn_commit(struct dw_worker *w, int force);
static size_t drop_polling(struct dw_worker *w, int stale_only);
static void revoke_next(struct dw_worker *w);

static void commit_now(struct dw_worker *w, int force)
{
  if (!w->consumer || w->commit.nparts == 0)
    return;
  w->strategy->commit(w, force);
}

/* At-least-once: the consumer commits each tick without waiting. */
static void alo_commit(struct dw_worker *w, int force)
{
  const struct dw_committer_batch *b = collect_commits(w, NULL, 0, force);
  dw_consumer_commit(w->consumer, b->partitions, b->offsets, b->metadata, b->n);
}

/* Exactly-once: the open transaction committed (its jobs are finished) or was aborted (its
 * jobs are produced again, except those of partitions no longer ours: their new owner redoes
 * them). */
static void txn_settle(struct dw_worker *w, int committed)
{
  dw_committer_settle(&w->commit, committed);
  dw_metric_inc(w->m_txns, committed ? "committed" : "aborted", 1);
  struct job *again = NULL;
  for (struct job *j = w->jobs, *next; j; j = next) {
    struct dw_job_decision d;
    next = j->next;
    dw_job_on_settle(&j->state, committed,
                     dw_committer_ours(&w->commit, j->partition, j->generation), &d);
    if (d.action == DW_JOB_FINISH) {
      count_output(w, j);
      job_free(w, j);
    } else if (d.action == DW_JOB_DROP) {
      job_free(w, j);
    } else if (d.action != DW_JOB_NONE) {
      j->then = d.action; /* carried out once every job is looked at */
      j->retry_next = again;
      again = j;
    }
  }
  w->txn_doomed = w->txn_doom_next;
  w->txn_doom_next = 0;
  while (again) {
    struct job *j = again;
    again = j->retry_next;
    if (j->then == DW_JOB_SHRINK)
      unwritable(w, j, "Kafka refused it as too large");
    else
      produce(w, j);
  }
  unpark(w);
  maybe_stop(w);
}

/* Exactly-once: a transaction call is over, on the loop: its outputs are settled (committed,
 * or aborted and produced again), or the worker stops. */
static void txn_outcome(struct dw_worker *w, int rc, const char *err)
{
  if (rc == DW_ETIMEDOUT) {
    /* The outcome is not known yet; outputs wait (parked) until it is. */
    dw_warn("exactly-once: %s; trying again", err[0] ? err : "the transaction is not done yet");
    return;
  }
  if (rc == 0) {
    txn_settle(w, 1);
    return;
  }
  dw_committer_forget(&w->commit);
  if (rc == DW_ERANGE && lower_map_room_txn(w, w->txn_longest) < 0) {
    rc = DW_ESTATE; /* stuck: every later transaction would be refused the same way */
    drop_polling(w, 0);
  }
  if (rc == DW_ESTATE) {
    /* Nothing of the open transaction is committed: it is all processed again after a
     * restart, by this replica or another. */
    if (!w->commit.stuck)
      dw_error("exactly-once: %s; stopping", err);
    for (struct job *j = w->jobs, *next; j; j = next) {
      next = j->next;
      if (dw_job_staged(j->state))
        job_free(w, j);
    }
    while (w->parked) {
      struct job *j = w->parked;
      w->parked = j->park_next;
      job_free(w, j);
    }
    begin_drain(w, 1);
    return;
  }
  dw_warn("exactly-once: transaction aborted%s%s; producing its outputs again",
          err[0] ? ": " : "", err);
  txn_settle(w, 0);
}

/* Exactly-once: a transaction call is over (dw_txn_done_cb); a revoke waiting for it goes
 * on. */
static void txn_done(void *arg, int rc, const char *err)
{
  struct dw_worker *w = arg;
  txn_outcome(w, rc, err);
  if (w->rv.active)
    revoke_next(w);
}

/* Exactly-once: an abort the worker asked for is over; aborted means produce again. */
static void txn_aborted(void *arg, int rc, const char *err)
{
  txn_done(arg, rc == 0 ? DW_EAGAIN : rc, err);
}

/* Exactly-once: commits the open transaction with the offsets and maps of every assigned
 * partition (each tick of processing.transaction_interval_ms, on revoke and at shutdown; force:
 * every partition's offset). The call runs on libuv's thread pool and txn_done settles it on
 * the loop; no second call starts beside one in flight (a revoke waits for it first,
 * revoke_next). */
static void txn_commit(struct dw_worker *w, int force)
{
  int rc = 0, staged = 0;
  for (;;) {
    switch (dw_committer_txn_step(&w->commit, dw_producer_txn_in_flight(w->producer),
                                  dw_producer_txn_busy(w->producer), w->txn_doomed, force)) {
    case DW_COMMITTER_TXN_NONE:
      return;
    case DW_COMMITTER_TXN_WAIT:
      return; /* a revoke starts only once nothing is in flight */
    case DW_COMMITTER_TXN_RESUME:
      /* Resume the commit or abort that timed out, with the offsets it already has. */
      w->txn_longest = 0;
      rc = dw_producer_txn_commit(w->producer, w->consumer, NULL, NULL, NULL, 0, txn_done, w);
      break;
    case DW_COMMITTER_TXN_ABORT:
      w->txn_longest = 0;
      rc = dw_producer_txn_abort(w->producer, txn_aborted, w);
      break;
    case DW_COMMITTER_TXN_COMMIT: {
      for (struct job *j = w->jobs; j && !staged; j = j->next)
        staged = dw_job_staged(j->state);
      const struct dw_committer_batch *b = collect_commits(w, NULL, 0, force);
      if (b->n == 0 && !staged) {
        unpark(w); /* nothing to commit, but the maps were measured again */
        return;
      }
      w->txn_longest = b->longest; /* the longest map sent */
      rc = dw_producer_txn_commit(w->producer, w->consumer, b->partitions, b->offsets,
                                  b->metadata, b->n, txn_done, w);
      break;
    }
    }
    break;
  }
  if (rc < 0) {
    /* Not started: nothing changed, the next tick tries again. */
    dw_committer_forget(&w->commit);
    dw_warn("exactly-once: cannot start the transaction call (%s); trying again",
            dw_strerror(rc));
    return;
  }
}

/* Stops the jobs still polling (with stale_only, those of partitions revoked or being
 * revoked only) without an outcome: their offsets are not committed, so whoever owns the
 * partition next takes them again. Returns how many. */
static size_t drop_polling(struct dw_worker *w, int stale_only)
{
  size_t n = 0;
  struct job *j = w->jobs;
  while (j) {
    struct job *next = j->next;
    if (j->task &&
        (!stale_only || !dw_committer_ours(&w->commit, j->partition, j->generation))) {
      dw_poller_cancel(w->poller, j->task);
      j->task = NULL;
      job_free(w, j);
      n++;
    }
    j = next;
  }
  return n;
}

static void shutdown_continue(struct dw_worker *w);
static void on_revoke_timer(uv_timer_t *t);

/* Starts a revoke of ids (or, final, the shutdown's last commit of every partition): its
 * commit runs while the loop goes on, and revoke_next gives the partitions up when its outcome
 * is known or REVOKE_TIMEOUT_MS passed. */
static void revoke_start(struct dw_worker *w, int32_t *ids, size_t n, int lost, int final)
{
  struct revoke *r = &w->rv;
  r->active = 1;
  r->final = final;
  r->ids = ids;
  r->n = n;
  memset(&r->st, 0, sizeof(r->st));
  r->st.lost = lost;
  /* Tasks of partitions being revoked stop polling: the new owner takes them from the
   * committed offset. Jobs already producing finish, but store no offset once revoked. */
  drop_polling(w, 1);
  uv_timer_start(&w->revoke_timer, on_revoke_timer,
                 final ? SHUTDOWN_COMMIT_TIMEOUT_MS : REVOKE_TIMEOUT_MS, 0);
  revoke_next(w);
}

/* The revoke is over: its partitions are forgotten and given up; the next step follows. */
static void revoke_finish(struct dw_worker *w)
{
  struct revoke *r = &w->rv;
  uv_timer_stop(&w->revoke_timer);
  r->active = 0;
  if (r->final) {
    w->final_done = 1;
  } else {
    dw_committer_revoke(&w->commit, r->ids, r->n);
    drop_polling(w, 1);
    dw_consumer_revoke_done(w->consumer);
  }
  free(r->ids);
  r->ids = NULL;
  if (r->has_next) {
    r->has_next = 0;
    revoke_start(w, r->next_ids, r->next_n, r->next_lost, 0);
    return;
  }
  maybe_stop(w);
  shutdown_continue(w);
}

/* Carries out the committer's next step of the revoke going on. */
static void revoke_next(struct dw_worker *w)
{
  struct revoke *r = &w->rv;
  while (r->active) {
    r->st.in_flight = w->strategy->in_flight(w);
    switch (dw_committer_revoke_next(&w->commit, &r->st)) {
    case DW_COMMITTER_REVOKE_WAIT:
      return;
    case DW_COMMITTER_REVOKE_COMMIT:
      r->st.started = 1;
      r->st.rc = 0;
      r->st.room = w->commit.mapmax;
      w->strategy->revoke_commit(w, r->ids, r->n, r->st.lost);
      break;
    case DW_COMMITTER_REVOKE_LATE:
      dw_warn("%s: the commit is not over after %d ms; %s anyway (what it did not commit is "
              "processed again by the next owner)", r->final ? "shutdown" : "revoke",
              r->final ? SHUTDOWN_COMMIT_TIMEOUT_MS : REVOKE_TIMEOUT_MS,
              r->final ? "leaving the group" : "giving the partitions up");
      revoke_finish(w);
      return;
    case DW_COMMITTER_REVOKE_DONE:
      revoke_finish(w);
      return;
    }
  }
}

static void on_revoke_timer(uv_timer_t *t)
{
  struct dw_worker *w = t->data;
  w->rv.st.expired = 1;
  revoke_next(w);
}

static void on_revoke(void *arg, const int32_t *ids, size_t n, int lost)
{
  struct dw_worker *w = arg;
  int32_t *copy = malloc(n * sizeof(*copy));
  dw_committer_revoking(&w->commit, ids, n);
  if (!copy) {
    /* Nothing can be committed for them: the next owner processes them again. */
    dw_error("out of memory revoking %zu partition(s); giving them up without a commit", n);
    dw_committer_revoke(&w->commit, ids, n);
    drop_polling(w, 1);
    dw_consumer_revoke_done(w->consumer);
    maybe_stop(w);
    return;
  }
  memcpy(copy, ids, n * sizeof(*copy));
  if (w->rv.active) {
    /* Only the shutdown's last commit can be going on (the consumer takes one rebalance step
     * at a time): this revoke follows it. */
    w->rv.has_next = 1;
    w->rv.next_ids = copy;
    w->rv.next_n = n;
    w->rv.next_lost = lost;
    return;
  }
  revoke_start(w, copy, n, lost, 0);
}

/* At-least-once: the revoke's commit has its outcome. */
static void alo_revoke_committed(void *arg, int rc)
{
  struct dw_worker *w = arg;
  w->alo_committing = 0;
  if (!w->rv.active)
    return; /* given up after its deadline already */
  w->rv.st.rc = rc;
  revoke_next(w);
}

/* At-least-once: commits the partitions' offsets and maps (nothing after a loss: the
 * committer's decision), the outcome to alo_revoke_committed. */
static void alo_revoke_commit(struct dw_worker *w, const int32_t *ids, size_t n, int lost)
{
  (void)lost;
  const struct dw_committer_batch *b = collect_commits(w, ids, n, 1);
  int rc = dw_consumer_commit_then(w->consumer, b->partitions, b->offsets, b->metadata, b->n,
                                   alo_revoke_committed, w);
  if (rc == 0)
    w->alo_committing = 1;
  else if (rc != DW_ENOENT)
    w->rv.st.rc = rc;
}

static int alo_in_flight(const struct dw_worker *w)
{
  return w->alo_committing;
}

/* Exactly-once: commits the open transaction, with these partitions' offsets, while they are
 * still ours; after a loss the group would refuse the offsets, so it is aborted instead. The
 * outcome reaches revoke_next through txn_done. */
static void eos_revoke_commit(struct dw_worker *w, const int32_t *ids, size_t n, int lost)
{
  (void)ids;
  (void)n;
  if (lost)
    w->txn_doomed = 1;
  txn_commit(w, 1);
}

static int eos_in_flight(const struct dw_worker *w)
{
  return dw_producer_txn_in_flight(w->producer);
}

static void on_commit_failed(void *arg)
{
  struct dw_worker *w = arg;
  dw_committer_forget(&w->commit); /* commit again on the next tick */
}

static void on_fatal(void *arg, const char *reason)
{
  struct dw_worker *w = arg;
  dw_error("stopping: %s", reason);
  begin_drain(w, 1);
}

static void on_commit_timer(uv_timer_t *t)
{
  commit_now(t->data, 0);
}

static void close_cb_noop(uv_handle_t *h)
{
  (void)h;
}

static volatile sig_atomic_t close_exit_code;

static void on_close_watchdog(int signum)
{
  static const char msg[] =
      "delivery-worker: the shutdown's last commit and leaving the consumer group did not "
      "finish within 14 s; exiting without them (what was not committed is processed again "
      "by the next owner; the group notices at its session timeout)\n";
  (void)signum;
  dw_log_raw(msg, sizeof(msg) - 1);
  _exit(close_exit_code);
}

/* Closes what is left once the consumer has left the group. */
static void close_rest(struct dw_worker *w)
{
  dw_admin_close(w->admin, NULL, NULL);
  w->admin = NULL;
  if (w->poller)
    dw_poller_close(w->poller, NULL, NULL);
  if (w->token)
    dw_token_close(w->token, NULL, NULL);
  if (w->ticket)
    dw_ticket_close(w->ticket, NULL, NULL);
  if (w->http)
    dw_http_close(w->http, NULL, NULL);
  if (w->producer)
    dw_producer_close(w->producer, NULL, NULL);
  uv_close((uv_handle_t *)&w->sigterm, close_cb_noop);
  uv_close((uv_handle_t *)&w->sigint, close_cb_noop);
  uv_close((uv_handle_t *)&w->commit_timer, close_cb_noop);
  uv_close((uv_handle_t *)&w->drain_timer, close_cb_noop);
  uv_close((uv_handle_t *)&w->retry_timer, close_cb_noop);
  uv_close((uv_handle_t *)&w->stop_timer, close_cb_noop);
  uv_close((uv_handle_t *)&w->revoke_timer, close_cb_noop);
}

static void on_consumer_closed(void *arg)
{
  struct dw_worker *w = arg;
  alarm(0);
  w->consumer = NULL;
  close_rest(w);
}

/* Leaves the group, on the loop: the revoke of what is assigned goes the way of any revoke.
 * librdkafka 2.0.2's cooperative-sticky close can hang when an assignment arrives meanwhile
 * (fixed in 2.4.0): the shutdown's watchdog ends the process then. */
static void close_consumer(struct dw_worker *w)
{
  close_exit_code = w->exit_code;
  w->consumer_closing = 1;
  dw_consumer_close(w->consumer, on_consumer_closed, w);
}

/* The shutdown's next step, once no revoke is going on: the last commit of every partition
 * (asynchronous, as a revoke's), then leaving the group, then the rest. */
static void shutdown_continue(struct dw_worker *w)
{
  if (w->state != S_STOPPED || w->rv.active || w->consumer_closing)
    return;
  if (!w->final_done && w->consumer && w->commit.nparts > 0) {
    revoke_start(w, NULL, 0, 0, 1);
    return;
  }
  if (w->consumer)
    close_consumer(w);
  else
    close_rest(w);
}

/* Everything in flight is finished or given up: commit, leave, close, without blocking the
 * loop (the admin endpoint answers until the group is left). */
static void shutdown_all(struct dw_worker *w)
{
  if (w->state == S_STOPPED)
    return;
  w->state = S_STOPPED;
  uv_timer_stop(&w->commit_timer);
  uv_timer_stop(&w->drain_timer);
  if (w->consumer) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_close_watchdog;
    sigemptyset(&sa.sa_mask);
    close_exit_code = w->exit_code;
    sigaction(SIGALRM, &sa, NULL);
    alarm(SHUTDOWN_WATCHDOG_S);
  }
  shutdown_continue(w);
}

static void on_stop_timer(uv_timer_t *t)
{
  struct dw_worker *w = t->data;
  if (w->state == S_FLUSHING)
    shutdown_all(w);
}

static void maybe_stop(struct dw_worker *w)
{
  if (w->state == S_RUNNING || w->state == S_STOPPED)
    return;
  if (w->state == S_DRAINING && w->in_flight == 0) {
    dw_info("drained: %llu consumed, %llu results, %llu dead letters",
            (unsigned long long)w->consumed, (unsigned long long)w->results,
            (unsigned long long)w->dead_letters);
    w->state = S_FLUSHING;
  }
  /* Usually called from a delivery report, inside rd_kafka_poll: the producer cannot be
   * destroyed from there, so the shutdown runs from a timer on the next loop iteration. */
  if (w->state == S_FLUSHING && dw_producer_outstanding(w->producer) == 0 && !w->retry_head)
    uv_timer_start(&w->stop_timer, on_stop_timer, 0, 0);
}

static void on_drain_timer(uv_timer_t *t)
{
  struct dw_worker *w = t->data;
  /* Give up on tasks still polling; jobs already producing are waited for once more. */
  size_t given_up = drop_polling(w, 0);
  if (given_up)
    dw_warn("drain timeout: %zu task(s) still polling are left for the next run", given_up);
  if (w->drain_gave_up || w->state == S_FLUSHING) {
    /* Results Kafka would not take for a whole flush timeout: stop without them (their
     * offsets are not committed, so they are processed again after the restart). */
    dw_error("%zu result(s) or dead letter(s) still not acknowledged by Kafka after %d ms; "
             "stopping without them", w->in_flight, FLUSH_TIMEOUT_MS);
    w->exit_code = 1;
    w->state = S_FLUSHING;
    shutdown_all(w);
    return;
  }
  w->drain_gave_up = 1;
  uv_timer_start(&w->drain_timer, on_drain_timer, FLUSH_TIMEOUT_MS, 0);
  maybe_stop(w);
}

static void begin_drain(struct dw_worker *w, int exit_code)
{
  if (exit_code)
    w->exit_code = exit_code;
  if (w->state != S_RUNNING)
    return;
  w->state = S_DRAINING;
  set_paused(w, 4, 1);
  dw_info("draining %zu task(s) in flight (up to %lld ms)", w->in_flight,
          (long long)w->cfg->worker.drain_timeout_ms);
  uv_timer_start(&w->drain_timer, on_drain_timer, (uint64_t)w->cfg->worker.drain_timeout_ms, 0);
  maybe_stop(w);
}

/* ---- start-up guard ----
 * Until the loop runs, no uv_signal can answer a signal, and librdkafka blocks every signal in
 * the calling thread while rd_kafka_new creates its threads; when that goes wrong (no memory
 * for thread stacks under an address-space limit) rd_kafka_new may never return or abort.
 * So from the first moment SIGTERM and SIGINT end the process at once (nothing is consumed
 * yet), a guard thread that never blocks them is there to take them, and it ends a start-up
 * that outlives its bound with the step it was stuck in. An abort while starting becomes the
 * same "cannot start" exit. Only async-signal-safe calls in the handlers. */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int running;
  int done;
  unsigned timeout_s;
} guard = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic(const char *) startup_step = "starting";

/* Appends s to buf (len bytes used, size bytes in all), cutting if needed. */
static void append(char *buf, size_t *len, size_t size, const char *s)
{
  while (*s && *len + 1 < size)
    buf[(*len)++] = *s++;
}

static void startup_message(const char *what, const char *detail)
{
  char msg[256];
  size_t len = 0;
  append(msg, &len, sizeof(msg), "delivery-worker: ");
  append(msg, &len, sizeof(msg), what);
  append(msg, &len, sizeof(msg), " (");
  append(msg, &len, sizeof(msg), atomic_load(&startup_step));
  append(msg, &len, sizeof(msg), ")");
  append(msg, &len, sizeof(msg), detail);
  append(msg, &len, sizeof(msg), "\n");
  dw_log_raw(msg, len);
}

static void on_startup_signal(int signum)
{
  startup_message(signum == SIGTERM ? "SIGTERM during start-up" : "SIGINT during start-up",
                  ": exiting");
  _exit(128 + signum);
}

static void on_startup_abort(int signum)
{
  (void)signum;
  startup_message("cannot start: aborted while starting", "");
  _exit(2);
}

static void *guard_main(void *arg)
{
  struct timespec deadline;
  int timed_out = 0;
  sigset_t set;
  (void)arg;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += guard.timeout_s;
  pthread_mutex_lock(&guard.mu);
  while (!guard.done && !timed_out)
    timed_out = pthread_cond_timedwait(&guard.cv, &guard.mu, &deadline) == ETIMEDOUT;
  timed_out = !guard.done;
  pthread_mutex_unlock(&guard.mu);
  if (timed_out) {
    /* Only startup_message, never dw_log_write: the thread stuck starting may hold the log's
     * lock, and the bound must fire all the same. */
    char detail[64];
    snprintf(detail, sizeof(detail), " did not finish within %u s", guard.timeout_s);
    startup_message("cannot start: start-up", detail);
    _exit(2);
  }
  return NULL;
}

/* Installs the start-up handlers and starts the guard (a start-up without the guard still
 * has the handlers). */
static void startup_guard_start(unsigned timeout_s)
{
  struct sigaction sa;
  pthread_condattr_t ca;
  pthread_attr_t ta;
  memset(&sa, 0, sizeof(sa));
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_startup_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_startup_abort;
  sigaction(SIGABRT, &sa, NULL);
  guard.timeout_s = timeout_s;
  guard.done = 0;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&guard.cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_attr_init(&ta);
  pthread_attr_setstacksize(&ta, 256 << 10); /* little address space may be left */
  int rc = pthread_create(&guard.thread, &ta, guard_main, NULL);
  pthread_attr_destroy(&ta);
  guard.running = rc == 0;
  if (rc != 0)
    dw_warn("start-up guard: cannot create a thread: %s; start-up is not bounded",
            strerror(rc));
}

/* Start-up is over (the loop is about to run, or the failed start-up was cleaned up). */
static void startup_guard_stop(void)
{
  struct sigaction sa;
  if (guard.running) {
    pthread_mutex_lock(&guard.mu);
    guard.done = 1;
    pthread_cond_signal(&guard.cv);
    pthread_mutex_unlock(&guard.mu);
    pthread_join(guard.thread, NULL);
    guard.running = 0;
  }
  pthread_cond_destroy(&guard.cv);
  memset(&sa, 0, sizeof(sa));
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  sigaction(SIGABRT, &sa, NULL);
}

/* After the first signal the loop may block in librdkafka's close; a second signal must end
 * the process even then, so it gets a plain handler (only async-signal-safe calls). */
static void on_second_signal(int signum)
{
  static const char msg[] =
      "delivery-worker: second signal: exiting now; unfinished tasks are taken again after a "
      "restart\n";
  dw_log_raw(msg, sizeof(msg) - 1);
  _exit(128 + signum);
}

static void on_signal(uv_signal_t *s, int signum)
{
  struct dw_worker *w = s->data;
  struct sigaction sa;
  dw_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  uv_signal_stop(&w->sigterm);
  uv_signal_stop(&w->sigint);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_second_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  begin_drain(w, 0);
}

static void alo_abandon(struct dw_worker *w)
{
  (void)w;
}

/* Exactly-once: the abandoned output's offset may be staged: the open transaction must not
 * commit. */
static void eos_abandon(struct dw_worker *w)
{
  /* While a commit is in flight its output can only wait for the next transaction. */
  if (dw_producer_txn_in_flight(w->producer))
    w->txn_doom_next = 1;
  else
    w->txn_doomed = 1;
}

static int64_t alo_interval_ms(const struct dw_config *cfg)
{
  return cfg->kafka.commit_interval_ms;
}

static int64_t eos_interval_ms(const struct dw_config *cfg)
{
  return cfg->processing.transaction_interval_ms;
}

static const struct strategy at_least_once = {
    .starting = "creating the Kafka producer",
    .admit = alo_admit,
    .send_failed = alo_send_failed,
    .delivered = alo_delivered,
    .abandon = alo_abandon,
    .commit = alo_commit,
    .revoke_commit = alo_revoke_commit,
    .in_flight = alo_in_flight,
    .interval_ms = alo_interval_ms,
};

static const struct strategy exactly_once = {
    .starting = "creating the Kafka producer and starting transactions",
    .admit = eos_admit,
    .send_failed = eos_send_failed,
    .delivered = eos_delivered,
    .abandon = eos_abandon,
    .commit = txn_commit,
    .revoke_commit = eos_revoke_commit,
    .in_flight = eos_in_flight,
    .interval_ms = eos_interval_ms,
};

int dw_worker_run(const struct dw_config *cfg)
{
  int eos = strcmp(cfg->processing.guarantee, "exactly_once") == 0;
  startup_guard_start(STARTUP_TIMEOUT_S + (eos ? STARTUP_TXN_INIT_S : 0));
  struct dw_worker *w = calloc(1, sizeof(*w));
  char err[1024] = "";
  int rc = 1;
  if (!w) {
    startup_guard_stop();
    return 1;
  }
  char insecure[512];
  if (dw_config_insecure_tls(cfg, insecure, sizeof(insecure)) > 0)
    dw_warn("kafka.allow_insecure_tls: the brokers' TLS is not fully verified (%s): anyone on "
            "the network path can read and change the traffic", insecure);
  w->cfg = cfg;
  w->healthy = 1;
  w->strategy = eos ? &exactly_once : &at_least_once;
  if (dw_committer_init(&w->commit, (size_t)cfg->kafka.commit_metadata_max_bytes, eos) < 0) {
    free(w);
    startup_guard_stop();
    return 1;
  }
  w->metrics = dw_metrics_new();
  if (!w->metrics) {
    dw_committer_cleanup(&w->commit);
    free(w);
    startup_guard_stop();
    return 1;
  }
  register_metrics(w);
  uv_loop_init(&w->loop);
  uv_signal_init(&w->loop, &w->sigterm);
  uv_signal_init(&w->loop, &w->sigint);
  uv_timer_init(&w->loop, &w->commit_timer);
  uv_timer_init(&w->loop, &w->drain_timer);
  uv_timer_init(&w->loop, &w->retry_timer);
  uv_timer_init(&w->loop, &w->stop_timer);
  uv_timer_init(&w->loop, &w->revoke_timer);
  w->sigterm.data = w->sigint.data = w->commit_timer.data = w->drain_timer.data =
      w->retry_timer.data = w->stop_timer.data = w->revoke_timer.data = w;

  struct dw_admin_handler ah = {.render = on_render, .ready = on_ready, .arg = w};
  struct dw_consumer_handler ch = {
      .on_record = on_record,
      .on_assign = on_assign,
      .on_revoke = on_revoke,
      .on_partitions = on_partitions,
      .on_fatal = on_fatal,
      .on_commit_failed = on_commit_failed,
      .on_metadata_refused = on_metadata_refused,
      .on_committed = w->commit.mapmax > 0 ? on_committed : NULL,
      .arg = w,
  };
  if (strcmp(cfg->feishu.app_type, "store") == 0) {
    atomic_store(&startup_step, "setting up the app_ticket source");
    if (dw_ticket_new(&w->ticket, &w->loop, cfg, err, sizeof(err)) < 0)
      goto fail;
  }
  atomic_store(&startup_step, "setting up the HTTP client");
  if (dw_http_new(&w->http, &w->loop, &cfg->feishu) < 0 ||
      dw_token_new(&w->token, &w->loop, w->http, &cfg->feishu, w->ticket, on_token, w) < 0 ||
      dw_poller_new(&w->poller, &w->loop, w->http, w->token, cfg, w->metrics, on_outcome,
                    on_health, w) < 0) {
    snprintf(err, sizeof(err), "cannot set up the HTTP client");
    goto fail;
  }
  dw_http_metrics(w->http, w->metrics);
  atomic_store(&startup_step, "opening the admin endpoint");
  if (dw_admin_start(&w->admin, &w->loop, cfg->admin.listen, &ah, err, sizeof(err)) < 0)
    goto fail;
  atomic_store(&startup_step, w->strategy->starting);
  if (dw_producer_new(&w->producer, &w->loop, cfg, err, sizeof(err)) < 0)
    goto fail;
  atomic_store(&startup_step, "creating the Kafka consumer");
  if (dw_consumer_new(&w->consumer, &w->loop, cfg, &ch, err, sizeof(err)) < 0)
    goto fail;
  dw_info("admin endpoint on port %d: /metrics /healthz /readyz", dw_admin_port(w->admin));
  /* From here the loop answers signals (uv_signal_start replaces the start-up handlers). */
  startup_guard_stop();
  uv_signal_start(&w->sigterm, on_signal, SIGTERM);
  uv_signal_start(&w->sigint, on_signal, SIGINT);
  uint64_t every = (uint64_t)w->strategy->interval_ms(cfg);
  uv_timer_start(&w->commit_timer, on_commit_timer, every, every);
  dw_info("delivery-worker %s running: %s -> %s / %s, group %s, API %s, %s", DW_VERSION,
          cfg->kafka.input_topic, cfg->kafka.results_topic, cfg->kafka.dlq_topic,
          cfg->kafka.group_id, cfg->feishu.base_url, cfg->processing.guarantee);
  dw_token_value(w->token, NULL); /* fetch the first token now, not with the first poll */

  uv_run(&w->loop, UV_RUN_DEFAULT);
  rc = w->exit_code;
  goto out;
fail:
  dw_error("cannot start: %s", err);
  fprintf(stderr, "delivery-worker: cannot start: %s\n", err);
  w->state = S_DRAINING;
  w->exit_code = 2;
  atomic_store(&startup_step, "cleaning up after a failed start-up");
  shutdown_all(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  startup_guard_stop();
  rc = 2;
out:
  while (w->jobs) /* only left when Kafka never acknowledged them */
    job_free(w, w->jobs);
  if (uv_loop_close(&w->loop) != 0)
    dw_warn("event loop closed with handles still open");
  free(w->rv.ids);
  if (w->rv.has_next)
    free(w->rv.next_ids);
  dw_committer_cleanup(&w->commit);
  dw_metrics_free(w->metrics);
  free(w);
  return rc;
}
