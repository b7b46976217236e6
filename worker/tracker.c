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
    return DW_EEXIST;
  if (t->count == t->cap && (rc = grow(t)) < 0)
    return rc;
  t->offsets[slot(t, t->count)] = offset;
  t->done[slot(t, t->count)] = 0;
  t->count++;
  t->next = offset + 1;
  return 0;
}

/* Ring slot of an offset in flight, or DW_ENOENT. */
static int find(const struct dw_tracker *t, int64_t offset)
{
  size_t lo = 0, hi, mid, s;

  if (!t)
    return DW_ENOENT;
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
  return t->offsets[s] == offset ? (int)s : DW_ENOENT;
}

/* Pops finished records off the head. */
static void pop_finished(struct dw_tracker *t)
{
  while (t->count > 0 && t->done[t->head] == DW_TRACKER_DONE) {
    t->head = t->head + 1 == t->cap ? 0 : t->head + 1;
    t->count--;
    t->finished--;
  }
}

int dw_tracker_done(struct dw_tracker *t, int64_t offset)
{
  int s = find(t, offset);
  /* Finished twice is a caller bug; the record is no longer in flight either way. */
  if (s < 0 || t->done[s] == DW_TRACKER_DONE)
    return DW_ENOENT;
  if (t->done[s] == DW_TRACKER_STAGED)
    t->staged--;
  t->done[s] = DW_TRACKER_DONE;
  t->finished++;
  pop_finished(t);
  return 0;
}

int dw_tracker_stage(struct dw_tracker *t, int64_t offset)
{
  int s = find(t, offset);
  if (s < 0 || t->done[s] != DW_TRACKER_PENDING)
    return DW_ENOENT;
  t->done[s] = DW_TRACKER_STAGED;
  t->staged++;
  return 0;
}

void dw_tracker_settle(struct dw_tracker *t, int committed)
{
  if (!t || t->staged == 0)
    return;
  for (size_t i = 0; i < t->count; i++) {
    size_t s = slot(t, i);
    if (t->done[s] != DW_TRACKER_STAGED)
      continue;
    t->done[s] = committed ? DW_TRACKER_DONE : DW_TRACKER_PENDING;
    t->finished += committed ? 1 : 0;
  }
  t->staged = 0;
  pop_finished(t);
}

static int finished_at(const struct dw_tracker *t, size_t i, int staged)
{
  uint8_t d = t->done[slot(t, i)];
  return d == DW_TRACKER_DONE || (staged && d == DW_TRACKER_STAGED);
}

/* Index of the first record not finished (count when all are). */
static size_t first_open(const struct dw_tracker *t, int staged)
{
  size_t i = 0;
  if (!staged)
    return t->count > 0 && !finished_at(t, 0, 0) ? 0 : t->count; /* the head is never done */
  while (i < t->count && finished_at(t, i, 1))
    i++;
  return i;
}

int64_t dw_tracker_committable_staged(const struct dw_tracker *t, int staged)
{
  if (!t)
    return -1;
  size_t i = first_open(t, staged);
  return i < t->count ? t->offsets[slot(t, i)] : t->next;
}

int64_t dw_tracker_committable(const struct dw_tracker *t)
{
  return dw_tracker_committable_staged(t, 0);
}

size_t dw_tracker_runs(const struct dw_tracker *t, int staged,
                       int (*fn)(void *arg, int64_t from, int64_t to), void *arg)
{
  size_t runs = 0;
  if (!t)
    return 0;
  for (size_t i = first_open(t, staged); i < t->count;) {
    while (i < t->count && !finished_at(t, i, staged))
      i++;
    if (i == t->count)
      break;
    int64_t from = t->offsets[slot(t, i)];
    while (i < t->count && finished_at(t, i, staged))
      i++;
    int64_t to = i < t->count ? t->offsets[slot(t, i)] : t->offsets[slot(t, i - 1)] + 1;
    runs++;
    if (fn(arg, from, to))
      break;
  }
  return runs;
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
  t->staged = 0;
  t->next = -1;
}
