/* The consumer of the input topic: records in, rebalances, holds and commits, served on the
 * loop; and the app_ticket topic reader of store apps. The handler's callbacks run on the loop,
 * and nothing here waits for the broker there. Off the loop: the read of a new partition's
 * committed offset (rd_kafka_committed blocks) and of the topic's partition count
 * (rd_kafka_metadata) run on libuv's thread pool, and their answers come back on the loop; a
 * new assignment is taken once its committed offsets are read. A revoke waits for the
 * handler's commit (dw_consumer_revoke_done) while the group waits for it; one rebalance step
 * at a time. No librdkafka type: the Kafka side is in worker/consumer.c. */
#ifndef DW_CONSUMER_H
#define DW_CONSUMER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"
#include "dw/kstats.h"
#include "dw/record.h"

struct dw_consumer;

struct dw_consumer_handler {
  /* A record of an assigned partition; ownership passes to the handler. */
  void (*on_record)(void *arg, struct dw_record *rec);
  /* Partitions added to the assignment (their records come after on_committed). */
  void (*on_assign)(void *arg, const int32_t *partitions, size_t n);
  /* Partitions about to be taken away (lost: someone else's already): commit what is done
   * (dw_consumer_commit_then, or a transaction) and call dw_consumer_revoke_done when its
   * outcome is known, from here or later; the group waits until then, and records of these
   * partitions that still arrive meanwhile are the handler's to refuse. Also at the close. */
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
   * records is handed over (optional; with it, new partitions are taken, at their committed
   * offsets, only once every one is read). offset is -1 and metadata NULL when nothing is
   * committed or it could not be read (exactly-once: the read is retried until it can be). */
  void (*on_committed)(void *arg, int32_t partition, int64_t offset, const char *metadata,
                       size_t metadata_len);
  /* How many of the input topic's partitions are assigned, and how many it has (0 while not
   * known: its metadata is read off the loop after each assignment), after each rebalance and
   * once the topic's size is read (optional). */
  void (*on_partitions)(void *arg, size_t assigned, size_t total);
  void *arg;
};

int dw_consumer_new(struct dw_consumer **out, uv_loop_t *loop, const struct dw_config *cfg,
                    const struct dw_consumer_handler *handler, char *err, size_t errlen);

/* Commits offsets (the next offset to read) of the input topic, asynchronously, each with its
 * metadata string (metadata may be NULL, and so may each entry); a failure reaches
 * on_metadata_refused and on_commit_failed. */
int dw_consumer_commit(struct dw_consumer *c, const int32_t *partitions,
                       const int64_t *offsets, const char *const *metadata, size_t n);
/* The same, and then(arg, rc) runs on the loop with the outcome, after on_metadata_refused and
 * on_commit_failed: 0, DW_ERANGE when metadata was refused as too long, DW_EIO for other
 * failures. One at a time. Returns 0 (then will run), DW_ENOENT (n is 0), DW_ESTATE (one is
 * on its way) or DW_EIO (not started); then does not run on an error. */
int dw_consumer_commit_then(struct dw_consumer *c, const int32_t *partitions,
                            const int64_t *offsets, const char *const *metadata, size_t n,
                            void (*then)(void *arg, int rc), void *arg);

/* The revoke's commit is over (or given up): the partitions of the last on_revoke are given
 * up, and the next rebalance step may start. Nothing when no revoke waits. */
void dw_consumer_revoke_done(struct dw_consumer *c);

/* Holds one partition (no records are fetched) for a reason, a bit of the caller's; the
 * partition resumes when no reason is left and partitions are not all paused. */
void dw_consumer_hold(struct dw_consumer *c, int32_t partition, unsigned reason, int on);

/* Records behind the end of the assigned partitions (high watermark minus position, from
 * librdkafka's cached watermarks: no request is made), and how many partitions are assigned. */
int64_t dw_consumer_lag(struct dw_consumer *c, size_t *assigned);

/* Non-zero once the group has handed this member an assignment, even an empty one (a member
 * beyond the partition count): it is then a member in good standing, idle. */
int dw_consumer_joined(const struct dw_consumer *c);

/* The lag of each assigned partition as of librdkafka's last statistics (every
 * statistics.interval.ms, 15 s unless kafka.properties says otherwise; "0" means none), by
 * partition id: *lags points into c, valid until the next statistics. Returns how many. */
size_t dw_consumer_partition_lags(const struct dw_consumer *c, const struct dw_kstats_lag **lags);

/* librdkafka's version ("2.0.2"), for dw_build_info. */
const char *dw_consumer_kafka_version(void);

/* Pauses or resumes fetching of every assigned partition (backpressure, draining). */
void dw_consumer_pause_all(struct dw_consumer *c, int pause);

/* Leaves the group without blocking the loop (shutdown only): the revoke of what is assigned
 * reaches on_revoke as any other, and records are still served (the handler refuses them).
 * c is freed once the group is left, its handles are closed and no read of committed offsets
 * is left; done(arg) (may be NULL) runs then. Until then c may still be asked: from the
 * moment the group is left (its Kafka client is destroyed right after) dw_consumer_lag
 * answers 0 with nothing assigned, commits return DW_EIO, and holds and pauses change
 * nothing. */
void dw_consumer_close(struct dw_consumer *c, void (*done)(void *arg), void *arg);

/* ---- app_ticket topic reader (store apps) ---- */

struct dw_ticket_reader;

/* A record's value, valid during the call only. */
typedef void (*dw_ticket_record_cb)(void *arg, const void *value, size_t len);

/* Reads cfg->feishu.app_ticket_topic from its start in a consumer group of its own (every
 * replica sees every ticket) and passes each record's value to cb on the loop. */
int dw_ticket_reader_new(struct dw_ticket_reader **out, uv_loop_t *loop,
                         const struct dw_config *cfg, dw_ticket_record_cb cb, void *arg,
                         char *err, size_t errlen);

/* Stops reading; r is freed once its handles are closed, and done(arg) (may be NULL) runs
 * then. */
void dw_ticket_reader_close(struct dw_ticket_reader *r, void (*done)(void *arg), void *arg);

#endif
