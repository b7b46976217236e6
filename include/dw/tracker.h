/* The offset tracker of one partition: records arrive in offset order, finish in any order;
 * the committable offset is the lowest unfinished one (or one past the last record when all
 * are finished). In exactly-once mode a record is first staged (its output is in the open
 * transaction) and becomes finished when the transaction commits, or pending again when it
 * aborts. Pure. */
#ifndef DW_TRACKER_H
#define DW_TRACKER_H

#include <stddef.h>
#include <stdint.h>

struct dw_tracker {
  int64_t *offsets;   /* ring of offsets in flight, in arrival (= offset) order */
  uint8_t *done;      /* DW_TRACKER_PENDING, _STAGED or _DONE */
  size_t cap, head, count;
  size_t finished;    /* entries in the ring already done (waiting behind an unfinished head) */
  size_t staged;      /* entries staged in the open transaction */
  int64_t next;       /* one past the last offset added; -1 before the first */
};

void dw_tracker_init(struct dw_tracker *t);
void dw_tracker_cleanup(struct dw_tracker *t);

/* A record at this offset was taken. Offsets increase (gaps allowed): an offset below the
 * next one expected was taken already (the client delivered it again after going back to an
 * earlier offset), DW_EEXIST and nothing changes; DW_EINVAL for a negative offset. */
int dw_tracker_add(struct dw_tracker *t, int64_t offset);

/* The record at this offset is finished (result or dead letter acknowledged). DW_ENOENT if
 * the offset is not in flight (never added, or already finished). */
int dw_tracker_done(struct dw_tracker *t, int64_t offset);

enum { DW_TRACKER_PENDING = 0, DW_TRACKER_STAGED = 1, DW_TRACKER_DONE = 2 };

/* The output of the record at this offset is in the open transaction. DW_ENOENT if the offset
 * is not pending. */
int dw_tracker_stage(struct dw_tracker *t, int64_t offset);

/* The open transaction committed (staged records are finished) or aborted (they are pending
 * again). */
void dw_tracker_settle(struct dw_tracker *t, int committed);

/* The offset to commit (the next record to read after a restart), or -1 before any record.
 * With `staged`, staged records count as finished (the offset to send with the transaction). */
int64_t dw_tracker_committable(const struct dw_tracker *t);
int64_t dw_tracker_committable_staged(const struct dw_tracker *t, int staged);

/* Calls fn for each run [from, to) of finished offsets beyond the committable offset, in
 * order, until fn returns non-zero. A run extends over gaps up to the next record (offsets
 * that hold no record are never read, so they may as well count as finished). With
 * `staged`, staged records count as finished. Returns the number of runs visited. */
size_t dw_tracker_runs(const struct dw_tracker *t, int staged,
                       int (*fn)(void *arg, int64_t from, int64_t to), void *arg);

/* Records taken and not finished. */
size_t dw_tracker_in_flight(const struct dw_tracker *t);

/* Forgets everything (the partition was revoked). */
void dw_tracker_reset(struct dw_tracker *t);

#endif
