/* The offset tracker of one partition: records arrive in offset order, finish in any order;
 * the committable offset is the lowest unfinished one (or one past the last record when all
 * are finished). Pure. */
#ifndef DW_TRACKER_H
#define DW_TRACKER_H

#include <stddef.h>
#include <stdint.h>

struct dw_tracker {
  int64_t *offsets;   /* ring of offsets in flight, in arrival (= offset) order */
  uint8_t *done;
  size_t cap, head, count;
  size_t finished;    /* entries in the ring already done (waiting behind an unfinished head) */
  int64_t next;       /* one past the last offset added; -1 before the first */
};

void dw_tracker_init(struct dw_tracker *t);
void dw_tracker_cleanup(struct dw_tracker *t);

/* A record at this offset was taken. Offsets must increase (gaps allowed). DW_EINVAL if not. */
int dw_tracker_add(struct dw_tracker *t, int64_t offset);

/* The record at this offset is finished (result or dead letter acknowledged). DW_ENOENT if
 * the offset is not in flight (never added, or already finished). */
int dw_tracker_done(struct dw_tracker *t, int64_t offset);

/* The offset to commit (the next record to read after a restart), or -1 before any record. */
int64_t dw_tracker_committable(const struct dw_tracker *t);

/* Records taken and not finished. */
size_t dw_tracker_in_flight(const struct dw_tracker *t);

/* Forgets everything (the partition was revoked). */
void dw_tracker_reset(struct dw_tracker *t);

#endif
