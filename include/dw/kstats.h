/* librdkafka's statistics (the JSON its stats callback is given every statistics.interval.ms),
 * read for what the metrics show of the consumer: the lag of each assigned partition of the
 * input topic. Pure: no I/O, no librdkafka type; with the codec, the only module that parses
 * JSON (cJSON). */
#ifndef DW_KSTATS_H
#define DW_KSTATS_H

#include <stddef.h>
#include <stdint.h>

/* Statistics longer than this are not parsed (a consumer of thousands of partitions stays
 * far below). */
#define DW_KSTATS_MAX_BYTES (16u << 20)
/* Partitions kept per topic; more are left out. */
#define DW_KSTATS_MAX_PARTITIONS 4096

/* One assigned partition's lag, in records; -1 when unknown. */
struct dw_kstats_lag {
  int32_t partition;
  int64_t committed; /* end offset - committed offset: records not yet committed as done */
  int64_t fetched;   /* end offset - next fetch offset: records not yet fetched */
};

/* Reads the partitions of topic the application has assigned ("desired") from the
 * statistics json (len bytes, not NUL-terminated). The end offset is the last stable offset
 * (ls_offset) when read_committed, else the high watermark (hi_offset), as librdkafka's own
 * consumer_lag; with no committed offset the committed lag counts from the low watermark
 * (auto.offset.reset = earliest: every record there is still to do). Lags are never negative.
 * Writes at most max entries to out, by partition id, and their number to *n. Returns 0,
 * DW_ERANGE (longer than DW_KSTATS_MAX_BYTES) or DW_EINVAL (not a JSON object, or out of
 * memory parsing it); a topic absent from the statistics is 0 partitions. */
int dw_kstats_lags(const char *json, size_t len, const char *topic, int read_committed,
                   struct dw_kstats_lag *out, size_t max, size_t *n);

#endif
