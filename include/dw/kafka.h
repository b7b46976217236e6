/* What the Kafka modules (consumer, producer, and the offline commands) share: librdkafka
 * configurations and clients made from the worker's config, and the waker that serves a
 * librdkafka queue on the loop. Included by the Kafka modules, the offline commands' ops.c and,
 * for check-config alone, main.c; the rest of the worker sees dw/consumer.h, dw/producer.h and
 * dw/record.h, which name no librdkafka type. */
#ifndef DW_KAFKA_H
#define DW_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"
#include "dw/record.h"

struct rd_kafka_conf_s;

/* A librdkafka configuration of a consumer (consumer != 0) or a producer: `defaults` (name,
 * value pairs, NULL-terminated; may be NULL), kafka.brokers, then the shared properties that
 * librdkafka applies to this kind of client (kafka.properties_file, kafka.properties, -X),
 * then the client's own list (kafka.consumer_properties or kafka.producer_properties), each
 * later one winning; logging through the worker's log. NULL with err naming where the refused
 * property was set (a secret's value is never repeated). */
struct rd_kafka_conf_s *dw_kafka_conf_new(const struct dw_config *cfg, int consumer,
                                          const char *const *defaults, char *err,
                                          size_t errlen);

/* Checks cfg's Kafka settings as librdkafka takes them (names, values, features of this
 * build), without connecting: check-config. 0, or DW_EINVAL with err set. */
int dw_kafka_conf_check(const struct dw_config *cfg, char *err, size_t errlen);

/* One line on the loaded librdkafka for people: its version, which OAUTHBEARER OIDC client
 * cfg uses (librdkafka's own where its builtin.features has "oidc", else the worker's,
 * dw/oidc.h) and whether SASL connections re-authenticate (dw/features.h). cfg NULL: what
 * this build offers, for `version`. buf is always NUL-terminated. */
void dw_kafka_describe_features(const struct dw_config *cfg, char *buf, size_t size);

/* "librdkafka 2.0.2 (builtin.features: gzip, snappy, ...)" into buf (NUL-terminated). */
void dw_kafka_version(char *buf, size_t size);

/* The loaded librdkafka's builtin.features ("gzip,snappy,...") into buf, "" when it cannot be
 * read (buf is always NUL-terminated). */
void dw_kafka_builtin_features(char *buf, size_t size);

struct rd_kafka_s;

/* rd_kafka_new of a consumer or a producer from conf (taken over, also on failure), then the
 * token refreshes of OIDC done here (dw/oidc.h). NULL with err naming `what` ("the Kafka
 * consumer"). */
struct rd_kafka_s *dw_kafka_client_new(int consumer, struct rd_kafka_conf_s *conf,
                                       const char *what, char *err, size_t errlen);

struct rd_kafka_message_s;
struct rd_kafka_queue_s;
struct rd_kafka_topic_partition_list_s;

/* Records served per wake-up before the loop gets a turn (a uv_idle continues). */
#define DW_KAFKA_SERVE_BUDGET 500

/* The wake-up of one librdkafka queue on the loop: rd_kafka_queue_io_event_enable writes to a
 * pipe when the queue goes from empty to non-empty, a uv_poll on it calls serve, a uv_idle
 * continues while serve says more may be queued, and a one-second uv_timer serves it anyway
 * (librdkafka counts max.poll.interval.ms from the last poll). Embedded in its owner. */
struct dw_kafka_waker {
  uv_poll_t poll;
  uv_idle_t idle;
  uv_timer_t tick;
  int fds[2];
  struct rd_kafka_queue_s *queue;
  int (*serve)(void *owner); /* serves up to a budget; returns 1 if more may be queued */
  void *owner;
  int open_handles;
  void (*closed)(void *owner);
};

/* Starts serving queue (still the caller's) on loop; serves once at the next idle, for what was
 * queued before the wake-up was enabled. 0, or DW_EIO when no pipe can be made (errno set). */
int dw_kafka_waker_init(struct dw_kafka_waker *w, uv_loop_t *loop,
                        struct rd_kafka_queue_s *queue, int (*serve)(void *), void *owner);

/* Stops the wake-ups and closes the handles; closed(owner) runs once libuv has closed them.
 * The queue may be destroyed right after this call. */
void dw_kafka_waker_close(struct dw_kafka_waker *w, void (*closed)(void *owner));

/* A consumed message copied into one allocation (dw_record_free); NULL when out of memory. */
struct dw_record *dw_kafka_record_copy(struct rd_kafka_message_s *m);

/* A partition list of topic with offsets and metadata strings (metadata and each entry may be
 * NULL); the caller destroys it (rd_kafka_topic_partition_list_destroy). */
struct rd_kafka_topic_partition_list_s *dw_kafka_offsets_list(const char *topic,
                                                              const int32_t *parts,
                                                              const int64_t *offsets,
                                                              const char *const *metadata,
                                                              size_t n);

/* The error callback of every client: logs, and remembers a critical resource error. Runs
 * where librdkafka serves the client's main queue (on the loop, through the waker). */
void dw_kafka_on_error(struct rd_kafka_s *rk, int err, const char *reason, void *opaque);

/* The first critical resource error any client reported ("" when none): the client is
 * crippled for good and the worker must stop. */
const char *dw_kafka_critical(void);

struct dw_consumer;
struct rd_kafka_consumer_group_metadata_s;

/* For the producer's exactly-once commit: the input topic, and the consumer's group metadata
 * (the caller destroys it with rd_kafka_consumer_group_metadata_destroy; NULL once the consumer
 * is leaving its group or gone: its offsets can no longer be committed). */
const char *dw_consumer_topic(const struct dw_consumer *c);
struct rd_kafka_consumer_group_metadata_s *dw_consumer_group_metadata(struct dw_consumer *c);

#endif
