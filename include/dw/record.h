/* A Kafka record as the rest of the worker sees it: partition, offset, timestamp, key, value
 * and headers, copied out of the client (no librdkafka type). Types only, besides the free. */
#ifndef DW_RECORD_H
#define DW_RECORD_H

#include <stddef.h>
#include <stdint.h>

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

#endif
