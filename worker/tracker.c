/* The offset tracker is the last stage of the flow: records of a partition are taken in offset
 * order, but their tasks finish in any order (each can poll for a minute). The tracker keeps
 * the offsets in flight in a ring, in arrival order, with a done flag each; finishing the
 * oldest pops it and every finished one behind it, so the head is always the lowest unfinished
 * offset, which is what may be committed (Kafka commits "the next offset to read"). Offsets
 * increase, so finding one is a binary search. The ring doubles when full and is kept across
 * resets. */
#include "dw/tracker.h"

#include "dw/common.h"

#include <stdlib.h>
#include <string.h>

#define TRACKER_FIRST_CAP 64

void dw_tracker_init(struct dw_tracker *t)
{
  if (!t)
    return;
  memset(t, 0, sizeof(*t));
  t->next = -1;
}

void dw_tracker_cleanup(struct dw_tracker *t)
{
  if (!t)
    return;
  free(t->offsets);
  free(t->done);
  dw_tracker_init(t);
}

/* Ring index of the i-th oldest entry (i < count). */
static size_t slot(const struct dw_tracker *t, size_t i)
{
  size_t s = t->head + i;
  return s >= t->cap ? s - t->cap : s;
}

/* Doubles the ring, unwrapping it so the oldest entry lands at 0. On failure the tracker is
 * unchanged. */
static int grow(struct dw_tracker *t)
{
  size_t cap = t->cap ? t->cap * 2 : TRACKER_FIRST_CAP;
  int64_t *offsets = NULL;
  uint8_t *done = NULL;
  int rc = DW_ENOMEM;

  if (cap < t->cap || cap > SIZE_MAX / sizeof(*offsets))
    goto out;
  offsets = malloc(cap * sizeof(*offsets));
  done = malloc(cap * sizeof(*done));
  if (!offsets || !done)
    goto out;
  for (size_t i = 0; i < t->count; i++) {
    offsets[i] = t->offsets[slot(t, i)];
    done[i] = t->done[slot(t, i)];
  }
  free(t->offsets);
  free(t->done);
  t->offsets = offsets;
  t->done = done;
  t->cap = cap;
  t->head = 0;
  offsets = NULL;
  done = NULL;
  rc = 0;

out:
  free(offsets);
  free(done);
  return rc;
}

int dw_tracker_add(struct dw_tracker *t, int64_t offset)
{
  int rc;

  if (!t || offset < 0 || offset == INT64_MAX)
    return DW_EINVAL;
  if (t->next >= 0 && offset < t->next)
    return DW_EINVAL;
  if (t->count == t->cap && (rc = grow(t)) < 0)
    return rc;
  t->offsets[slot(t, t->count)] = offset;
  t->done[slot(t, t->count)] = 0;
  t->count++;
  t->next = offset + 1;
  return 0;
}

int dw_tracker_done(struct dw_tracker *t, int64_t offset)
{
  size_t lo = 0, hi, mid, s;

  if (!t)
    return DW_EINVAL;
  hi = t->count;
  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    if (t->offsets[slot(t, mid)] < offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == t->count)
    return DW_ENOENT;
  s = slot(t, lo);
  /* Finished twice is a caller bug; the record is no longer in flight either way. */
  if (t->offsets[s] != offset || t->done[s])
    return DW_ENOENT;
  t->done[s] = 1;
  t->finished++;
  while (t->count > 0 && t->done[t->head]) {
    t->head = t->head + 1 == t->cap ? 0 : t->head + 1;
    t->count--;
    t->finished--;
  }
  return 0;
}

int64_t dw_tracker_committable(const struct dw_tracker *t)
{
  if (!t)
    return -1;
  return t->count > 0 ? t->offsets[t->head] : t->next;
}

size_t dw_tracker_in_flight(const struct dw_tracker *t)
{
  return t ? t->count - t->finished : 0;
}

void dw_tracker_reset(struct dw_tracker *t)
{
  if (!t)
    return;
  /* The buffers stay for the next assignment; the offsets may start lower then. */
  t->head = 0;
  t->count = 0;
  t->finished = 0;
  t->next = -1;
}
