/* Dead letters: what a dead letter keeps of its record, decided without I/O (record.h
 * gives struct dw_header; nothing here calls Kafka or the loop). A dead letter
 * carries the record's key, value and headers and the worker's own dlq.* headers. Kafka takes
 * a record only up to the producer's message.max.bytes (sized from the broker's and the
 * topics' limits at start), so parts that do not fit are left out, each with a marker header
 * (dlq.key_omitted, dlq.value_omitted, dlq.headers_omitted). Incoming headers named dlq.* are
 * renamed orig.dlq.*: only the worker writes dlq.* headers. */
#ifndef DW_DLQ_H
#define DW_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "dw/record.h"

/* The parts of a record a dead letter can leave out (bits). */
#define DW_DLQ_KEY 1u
#define DW_DLQ_VALUE 2u
#define DW_DLQ_HEADERS 4u /* the original headers; the worker's own always stay */
#define DW_DLQ_ALL (DW_DLQ_KEY | DW_DLQ_VALUE | DW_DLQ_HEADERS)

/* librdkafka's worst case for one record (rd_kafka_msg_max_wire_size): the v2 MessageSet
 * header (61 bytes) and the record's fields as their widest varints (36 bytes), on top of
 * key, value and headers. */
#define DW_DLQ_RECORD_OVERHEAD 97
/* A header's framing: its name's and its value's lengths as varints (5 bytes at most each),
 * counted at 10 each. */
#define DW_DLQ_HEADER_OVERHEAD 20
/* The most a marker value takes (cut to it). */
#define DW_DLQ_MARKER_TEXT 511
/* The most one marker header takes: the longest marker name, its longest value, framing. */
#define DW_DLQ_MARKER_MAX (sizeof("dlq.headers_omitted") - 1 + DW_DLQ_MARKER_TEXT + \
                           DW_DLQ_HEADER_OVERHEAD)

/* The prefix that incoming dlq.* headers get in a dead letter. */
#define DW_DLQ_ORIG_PREFIX "orig."

/* Bytes a header takes in a record, framing included (conservatively). */
size_t dw_dlq_header_size(size_t name_len, size_t value_len);

/* Bytes the headers take in a record (the sum of dw_dlq_header_size). */
size_t dw_dlq_headers_size(const struct dw_header *h, size_t n);

/* The sizes of a dead letter's parts, in bytes. */
struct dw_dlq_parts {
  size_t key;
  size_t value;
  size_t headers; /* the original headers (renamed), dw_dlq_headers_size */
  size_t own;     /* the worker's dlq.* headers, markers not included, dw_dlq_headers_size */
};

/* Bytes the dead letter takes with the parts in `shed` left out (each with a marker of
 * DW_DLQ_MARKER_MAX), as librdkafka counts them against message.max.bytes (saturating). */
size_t dw_dlq_size(const struct dw_dlq_parts *p, unsigned shed);

/* Which parts to leave out so the dead letter takes at most `limit` bytes. Parts are given up
 * in the order value, original headers, key; then any given up needlessly is put back, key
 * first, so a large key alone costs only the key. The parts in `shed` stay out whatever their
 * size (Kafka refused the record with them). Sets *out (a superset of shed) and returns 0, or
 * returns DW_ERANGE when even the worker's own headers and markers exceed limit. */
int dw_dlq_fit(const struct dw_dlq_parts *p, size_t limit, unsigned shed, unsigned *out);

/* After Kafka refused a dead letter that was sized to fit: shed plus the next part, in the
 * order value, original headers, key, that is not empty. Returns shed itself when there is
 * nothing left to give up: the dead letter can never be written. */
unsigned dw_dlq_shed_more(const struct dw_dlq_parts *p, unsigned shed);

/* Non-zero for a header name the worker reserves for its own dead-letter headers ("dlq."). */
int dw_dlq_reserved(const char *name);

/* Bytes of name storage dw_dlq_rename needs for h: 0 when no header is renamed. */
size_t dw_dlq_rename_bytes(const struct dw_header *h, size_t n);

/* Copies the n headers of h to out (values are shared, not copied), each reserved name written
 * as DW_DLQ_ORIG_PREFIX + name into `names` (dw_dlq_rename_bytes bytes; may be NULL when that
 * is 0). */
void dw_dlq_rename(const struct dw_header *h, size_t n, struct dw_header *out, char *names);

/* The producer's message.max.bytes from the limits the cluster reported (< 0: unknown): the
 * dead-letter topic's max.message.bytes, which is the limit in force for it (a topic's own
 * setting overrides the broker's message.max.bytes, which is only its default), else the
 * broker's; within librdkafka's bounds [1000, 1000000000]; `fallback` when neither is known.
 * Results are a few hundred bytes: the results topic's limit never binds them. */
int64_t dw_dlq_producer_limit(int64_t broker, int64_t dlq_topic, int64_t fallback);

#endif
