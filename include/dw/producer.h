/* The producer of results and dead letters: idempotent, transactional in exactly-once mode,
 * sized to the cluster's limits; delivery reports reach their callbacks on the loop. A
 * transaction's commit or abort runs on libuv's thread pool (never any of the worker's code
 * there); its outcome comes back on the loop. No librdkafka type: the Kafka side is in
 * worker/producer.c. */
#ifndef DW_PRODUCER_H
#define DW_PRODUCER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"
#include "dw/consumer.h"
#include "dw/record.h"

struct dw_producer;

/* Delivery report: err 0, DW_ERANGE when this record can never be written as it is (too
 * large, invalid), DW_ECANCELED when an aborted transaction purged it, or DW_EIO (worth
 * retrying), with librdkafka's text. fatal is set when the
 * producer can no longer be used (the worker must stop). */
typedef void (*dw_delivery_cb)(void *arg, int err, const char *errstr, int fatal);

int dw_producer_new(struct dw_producer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    char *err, size_t errlen);

/* A record to produce: what it points at needs to live only during dw_producer_send. The
 * partition is librdkafka's choice (by key). */
struct dw_message {
  const char *topic;
  const void *key; /* NULL when the record has none */
  size_t key_len;
  const void *value; /* NULL when the record has none */
  size_t value_len;
  const struct dw_header *headers; /* may be NULL */
  size_t header_count;
  const struct dw_header *extra; /* headers written after `headers` (a dead letter's dlq.*) */
  size_t extra_count;
};

/* Produces m; its key, value and headers are copied. The delivery report reaches cb(arg) on
 * the loop. Returns 0, DW_EAGAIN (queue full), DW_ERANGE (too large), DW_ESTATE (the producer
 * hit a fatal error) or DW_EIO. */
int dw_producer_send(struct dw_producer *p, const struct dw_message *m, dw_delivery_cb cb,
                     void *arg);

/* Records not yet acknowledged. */
size_t dw_producer_outstanding(const struct dw_producer *p);

/* The largest record the producer sends (its message.max.bytes, as librdkafka counts a
 * record's size): kafka.properties' value, else the smallest of the broker's
 * message.max.bytes and the output topics' max.message.bytes read at start, else librdkafka's
 * default when the broker did not tell. */
size_t dw_producer_max_bytes(const struct dw_producer *p);

/* The outcome of a transaction call, on the loop: 0 (committed, or aborted for an abort);
 * DW_EAGAIN when a commit ended in an abort (everything produced in it is discarded and must be
 * produced again); DW_ETIMEDOUT when the outcome is not known yet: nothing may be produced until
 * a later commit, with no offsets, returns something else (dw_producer_txn_busy tells);
 * DW_ERANGE when it was aborted (as for DW_EAGAIN) because the broker refused an offset's
 * metadata as longer than its offset.metadata.max.bytes; DW_ESTATE when the producer can no
 * longer be used (fenced, fatal error: the worker must stop). err describes a failure. */
typedef void (*dw_txn_done_cb)(void *arg, int rc, const char *err);

/* Exactly-once mode (processing.guarantee = "exactly_once"): the producer is transactional
 * and a transaction is open whenever something is produced. Starts committing it together
 * with these input offsets and their metadata (copied; committed for the consumer's group,
 * fenced by its generation), or resuming a commit or abort that timed out (the offsets are
 * then ignored). The call runs on libuv's thread pool, each of its librdkafka calls waiting
 * at most a few seconds; the loop goes on meanwhile (delivery reports still reach their
 * callbacks on the loop) and done(arg, ...) runs on the loop when it is over, after the
 * delivery reports queued before its end. Nothing may be produced while it runs. Returns 0
 * (started), DW_ESTATE when a call is in flight already, DW_ENOMEM or DW_EIO (not started). */
int dw_producer_txn_commit(struct dw_producer *p, struct dw_consumer *c,
                           const int32_t *partitions, const int64_t *offsets,
                           const char *const *metadata, size_t n, dw_txn_done_cb done,
                           void *arg);

/* Starts aborting the open transaction, as dw_producer_txn_commit starts a commit; done gets
 * 0 when it is aborted, DW_ETIMEDOUT (a commit's outcome is not known yet, or the abort timed
 * out: call again, busy meanwhile) or DW_ESTATE as above. */
int dw_producer_txn_abort(struct dw_producer *p, dw_txn_done_cb done, void *arg);

/* Blocks the loop until the transaction call in flight is over, serving delivery reports
 * meanwhile (librdkafka waits for them before it commits), and runs its done from here.
 * Nothing when none is in flight; bounded by the call's own waits. The worker never calls it
 * (a revoke and the shutdown go on from done); tests that drive a private loop do. */
void dw_producer_txn_wait(struct dw_producer *p);

/* Non-zero while a transaction call is in flight on the thread pool. */
int dw_producer_txn_in_flight(const struct dw_producer *p);

/* Non-zero while nothing may be produced: a call is in flight, or a commit or abort that timed
 * out is still going on. */
int dw_producer_txn_busy(const struct dw_producer *p);

/* Non-zero when the producer is transactional. */
int dw_producer_transactional(const struct dw_producer *p);

/* Destroys the client (call when nothing is outstanding) and frees p once its handles are
 * closed; done(arg) (may be NULL) runs then. A transaction call still in flight is waited for
 * first, and its done is not called. */
void dw_producer_close(struct dw_producer *p, void (*done)(void *arg), void *arg);

#endif
