/* The producer of results and dead letters: idempotent, transactional in exactly-once mode,
 * sized to the cluster's limits; delivery reports reach their callbacks on the loop. No
 * librdkafka type: the Kafka side is in worker/producer.c. */
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

/* Exactly-once mode (processing.guarantee = "exactly_once"): the producer is transactional
 * and a transaction is open whenever something is produced. Commits it together with these
 * input offsets and their metadata (committed for the consumer's group, fenced by its
 * generation). Waits for the broker at most a few seconds (delivery reports are called from
 * inside while it flushes). Returns 0 (committed); DW_EAGAIN when the transaction was aborted
 * (everything produced in it is discarded and must be produced again); DW_ETIMEDOUT when the
 * outcome is not known yet: nothing may be produced until a later call, with the same or no
 * offsets, returns something else (dw_producer_txn_busy tells); DW_ERANGE when it was aborted
 * (as for DW_EAGAIN) because the broker refused an offset's metadata as longer than its
 * offset.metadata.max.bytes; DW_ESTATE when the producer can no longer be used (fenced, fatal
 * error: the worker must stop). */
int dw_producer_txn_commit(struct dw_producer *p, struct dw_consumer *c,
                           const int32_t *partitions, const int64_t *offsets,
                           const char *const *metadata, size_t n, char *err, size_t errlen);

/* Aborts the open transaction. 0 when done, DW_ETIMEDOUT (call again: busy meanwhile),
 * DW_ESTATE as above. */
int dw_producer_txn_abort(struct dw_producer *p, char *err, size_t errlen);

/* Non-zero while a commit or abort that timed out is still going on. */
int dw_producer_txn_busy(const struct dw_producer *p);

/* Non-zero when the producer is transactional. */
int dw_producer_transactional(const struct dw_producer *p);

/* Destroys the client (call when nothing is outstanding) and frees p once its handles are
 * closed; done(arg) (may be NULL) runs then. */
void dw_producer_close(struct dw_producer *p, void (*done)(void *arg), void *arg);

#endif
