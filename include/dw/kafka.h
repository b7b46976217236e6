/* Kafka: the consumer of the input topic and the producer of results and dead letters, both
 * served on the libuv loop (librdkafka's queues wake a pipe watched by uv_poll). The only
 * module that sees rdkafka.h. */
#ifndef DW_KAFKA_H
#define DW_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"

/* A header of a record. */
struct dw_header {
  const char *name;
  const void *value; /* may be NULL */
  size_t len;
};

/* A consumed record: key, value and headers copied out of librdkafka into one allocation.
 * Freed with dw_record_free. */
struct dw_record {
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms; /* the record's timestamp (CreateTime as a rule), -1 if none */
  const void *key;     /* NULL when the record has none */
  size_t key_len;
  const void *value;   /* NULL when the record has none */
  size_t value_len;
  struct dw_header *headers;
  size_t header_count;
};

void dw_record_free(struct dw_record *rec);

struct rd_kafka_conf_s;

/* A librdkafka configuration: `defaults` (name, value pairs, NULL-terminated; may be NULL),
 * kafka.brokers, then kafka.properties (which win), logging through the worker's log. NULL
 * with err set when a value is refused (a secret's value is never repeated). */
struct rd_kafka_conf_s *dw_kafka_conf_new(const struct dw_config *cfg,
                                          const char *const *defaults, char *err,
                                          size_t errlen);

/* Checks cfg's Kafka settings as librdkafka takes them (names, values, features of this
 * build), without connecting: check-config. 0, or DW_EINVAL with err set. */
int dw_kafka_conf_check(const struct dw_config *cfg, char *err, size_t errlen);

struct rd_kafka_s;

/* rd_kafka_new of a consumer or a producer from conf (taken over, also on failure), then the
 * token refreshes of OIDC done here (dw/oidc.h). NULL with err naming `what` ("the Kafka
 * consumer"). */
struct rd_kafka_s *dw_kafka_client_new(int consumer, struct rd_kafka_conf_s *conf,
                                       const char *what, char *err, size_t errlen);

struct dw_consumer;

struct dw_consumer_handler {
  /* A record of an assigned partition; ownership passes to the handler. */
  void (*on_record)(void *arg, struct dw_record *rec);
  /* Partitions added to the assignment. */
  void (*on_assign)(void *arg, const int32_t *partitions, size_t n);
  /* Partitions about to be taken away: commit what is done now (dw_consumer_commit). */
  void (*on_revoke)(void *arg, const int32_t *partitions, size_t n, int lost);
  /* A fatal error: the worker must stop. */
  void (*on_fatal)(void *arg, const char *reason);
  /* A commit failed: the offsets must be committed again (optional). */
  void (*on_commit_failed)(void *arg);
  /* The broker refused a commit's metadata as longer than its offset.metadata.max.bytes
   * (OFFSET_METADATA_TOO_LARGE): the shortest refused metadata, and its partition (optional;
   * called once per commit, before on_commit_failed). */
  void (*on_metadata_refused)(void *arg, int32_t partition, size_t metadata_len);
  /* The committed offset and metadata of a newly assigned partition, read before any of its
   * records is handed over (optional; with it, new partitions stay paused until it is
   * called). offset is -1 and metadata NULL when nothing is committed or it could not be
   * read. */
  void (*on_committed)(void *arg, int32_t partition, int64_t offset, const char *metadata,
                       size_t metadata_len);
  void *arg;
};

int dw_consumer_new(struct dw_consumer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    const struct dw_consumer_handler *handler, char *err, size_t errlen);

/* Commits offsets (the next offset to read) of the input topic, asynchronously, each with its
 * metadata string (metadata may be NULL, and so may each entry). */
int dw_consumer_commit(struct dw_consumer *c, const int32_t *partitions,
                       const int64_t *offsets, const char *const *metadata, size_t n);
/* The same, waiting for the broker's answer (on revoke and at shutdown): its outcome reaches
 * on_metadata_refused and on_commit_failed before this returns. 0, DW_ERANGE when metadata
 * was refused as too long, DW_EIO for other failures. */
int dw_consumer_commit_sync(struct dw_consumer *c, const int32_t *partitions,
                            const int64_t *offsets, const char *const *metadata, size_t n);

/* Holds one partition (no records are fetched) for a reason, a bit of the caller's; the
 * partition resumes when no reason is left and partitions are not all paused. */
void dw_consumer_hold(struct dw_consumer *c, int32_t partition, unsigned reason, int on);

/* Records behind the end of the assigned partitions (high watermark minus position, from
 * librdkafka's cached watermarks: no request is made), and how many partitions are assigned. */
int64_t dw_consumer_lag(struct dw_consumer *c, size_t *assigned);

/* Pauses or resumes fetching of every assigned partition (backpressure, draining). */
void dw_consumer_pause_all(struct dw_consumer *c, int pause);

/* Leaves the group (blocking; shutdown only) and frees c after its handles are closed. */
void dw_consumer_close(struct dw_consumer *c);

struct dw_producer;

/* Delivery report: err 0, DW_ERANGE when this record can never be written as it is (too
 * large, invalid), DW_ECANCELED when an aborted transaction purged it, or DW_EIO (worth
 * retrying), with librdkafka's text. fatal is set when the
 * producer can no longer be used (the worker must stop). */
typedef void (*dw_delivery_cb)(void *arg, int err, const char *errstr, int fatal);

int dw_producer_new(struct dw_producer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    char *err, size_t errlen);

/* Produces a record; key, value and headers are copied. `extra` headers follow `headers`. The
 * delivery report reaches cb(arg) on the loop. Returns 0, DW_EAGAIN (queue full), DW_ERANGE
 * (too large), DW_ESTATE (the producer hit a fatal error) or DW_EIO. */
int dw_producer_send(struct dw_producer *p, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const struct dw_header *headers,
                     size_t header_count, const struct dw_header *extra, size_t extra_count,
                     dw_delivery_cb cb, void *arg);

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

/* Frees p after its handles are closed (call when nothing is outstanding). */
void dw_producer_close(struct dw_producer *p);

/* ---- app_ticket topic reader (store apps) ---- */

struct dw_ticket_reader;

/* A record's value, valid during the call only. */
typedef void (*dw_ticket_record_cb)(void *arg, const void *value, size_t len);

/* Reads cfg->feishu.app_ticket_topic from its start in a consumer group of its own (every
 * replica sees every ticket) and passes each record's value to cb on the loop. */
int dw_ticket_reader_new(struct dw_ticket_reader **out, uv_loop_t *loop,
                         const struct dw_config *cfg, dw_ticket_record_cb cb, void *arg,
                         char *err, size_t errlen);

/* Stops reading; r is freed once its handles are closed. */
void dw_ticket_reader_close(struct dw_ticket_reader *r);

#endif
