/* The last step of the flow: a record's output is acknowledged, and its offset may be
 * committed once every record before it is finished too. Per partition, the offset tracker
 * restores the commit order of records finished out of order, and the map of finished
 * records beyond the committed offset travels with it in the commit metadata, so that the next
 * owner skips them. This module keeps that ledger and makes its decisions: what a record that
 * arrives is, what to commit, how much room maps get and when a partition is held because its
 * map is near that room. The worker carries the decisions out. Pure. */
#include "dw/committer.h"

#include <stdlib.h>
#include <string.h>

#include "dw/common.h"

int dw_committer_init(struct dw_committer *c, size_t mapcap, int staged)
{
  memset(c, 0, sizeof(*c));
  c->staged = staged;
  c->mapcap = c->mapmax = mapcap;
  c->mapbuf = malloc(mapcap + 16);
  c->maptext = malloc(mapcap + 1);
  if (!c->mapbuf || !c->maptext) {
    dw_committer_cleanup(c);
    return DW_ENOMEM;
  }
  return 0;
}

static void forget_map(struct dw_committer_part *p)
{
  dw_offsetmap_free(&p->map);
  p->has_map = 0;
}

void dw_committer_cleanup(struct dw_committer *c)
{
  for (size_t i = 0; i < c->nparts; i++) {
    dw_tracker_cleanup(&c->parts[i].tracker);
    forget_map(&c->parts[i]);
    free(c->parts[i].meta);
  }
  free(c->parts);
  free(c->mapbuf);
  free(c->maptext);
  free(c->batch.partitions);
  free(c->batch.offsets);
  free(c->batch.metadata);
  free(c->batch.holds);
  memset(c, 0, sizeof(*c));
}

/* The batch holds an entry per partition known. */
static int grow_batch(struct dw_committer_batch *b, size_t n)
{
  int32_t *ids = realloc(b->partitions, n * sizeof(*ids));
  if (ids)
    b->partitions = ids;
  int64_t *offs = realloc(b->offsets, n * sizeof(*offs));
  if (offs)
    b->offsets = offs;
  const char **metas = realloc(b->metadata, n * sizeof(*metas));
  if (metas)
    b->metadata = metas;
  struct dw_committer_hold *holds = realloc(b->holds, n * sizeof(*holds));
  if (holds)
    b->holds = holds;
  return ids && offs && metas && holds ? 0 : DW_ENOMEM;
}

struct dw_committer_part *dw_committer_part(struct dw_committer *c, int32_t id)
{
  if (id < 0)
    return NULL;
  if ((size_t)id >= c->nparts) {
    size_t n = (size_t)id + 1;
    if (grow_batch(&c->batch, n) < 0)
      return NULL;
    struct dw_committer_part *p = realloc(c->parts, n * sizeof(*p));
    if (!p)
      return NULL;
    for (size_t i = c->nparts; i < n; i++) {
      memset(&p[i], 0, sizeof(p[i]));
      dw_tracker_init(&p[i].tracker);
      p[i].committed = -1;
    }
    c->parts = p;
    c->nparts = n;
  }
  return &c->parts[id];
}

/* The ledger of a partition known already (never created here). */
static const struct dw_committer_part *known(const struct dw_committer *c, int32_t id)
{
  return id >= 0 && (size_t)id < c->nparts ? &c->parts[id] : NULL;
}

void dw_committer_assign(struct dw_committer *c, const int32_t *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct dw_committer_part *p = dw_committer_part(c, ids[i]);
    if (!p)
      continue;
    p->assigned = 1;
    p->revoking = 0;
    p->committed = -1;
    p->map_full = 0;
    p->rewound = 0;
    forget_map(p);
    dw_tracker_reset(&p->tracker);
  }
}

enum dw_committer_map_kind dw_committer_on_committed(struct dw_committer *c, int32_t id,
                                                     int64_t offset, const char *meta,
                                                     size_t len, int64_t *map_base,
                                                     int64_t *count)
{
  struct dw_committer_part *p = dw_committer_part(c, id);
  if (!p || !p->assigned || !meta || len == 0)
    return DW_COMMITTER_MAP_NONE;
  forget_map(p);
  int rc = dw_offsetmap_decode(&p->map, meta, len);
  if (rc == DW_EINVAL)
    return DW_COMMITTER_MAP_FOREIGN;
  if (rc == 0 && p->map.base != offset) {
    *map_base = p->map.base;
    dw_offsetmap_free(&p->map);
    return DW_COMMITTER_MAP_RESET;
  }
  if (rc == 0 && p->map.runs > 0) {
    p->has_map = 1;
    *count = dw_offsetmap_count(&p->map);
    return DW_COMMITTER_MAP_LOADED;
  }
  dw_offsetmap_free(&p->map);
  return DW_COMMITTER_MAP_NONE;
}

/* A record the map says was finished before a restart or rebalance: its output is already in
 * Kafka, so it is done without processing. The map goes once past its last run. */
static int skip_finished(struct dw_committer_part *p, int64_t offset)
{
  int skip = dw_offsetmap_contains(&p->map, offset);
  if (skip)
    dw_tracker_done(&p->tracker, offset);
  if (p->map.next == p->map.runs)
    forget_map(p);
  return skip;
}

void dw_committer_on_record(struct dw_committer *c, int32_t id, int64_t offset,
                            struct dw_committer_arrival *out)
{
  struct dw_committer_part *p = dw_committer_part(c, id);
  memset(out, 0, sizeof(*out));
  if (p && (!p->assigned || p->revoking)) {
    out->verdict = DW_COMMITTER_NOT_OURS;
    return;
  }
  int rc = p ? dw_tracker_add(&p->tracker, offset) : DW_ENOMEM;
  if (rc == DW_EEXIST) {
    /* Taken already in this assignment: librdkafka before 2.4 can go back to a stale fetch
     * position when a cooperative rebalance resumes partitions (its issue 4686). The first
     * delivery is in flight or finished; records after the last one taken are taken as
     * usual. */
    out->verdict = DW_COMMITTER_TAKEN_ALREADY;
    out->rewound = !p->rewound;
    out->next = p->tracker.next;
    p->rewound = 1;
    return;
  }
  if (rc < 0) {
    out->verdict = DW_COMMITTER_UNTRACKABLE;
    out->err = rc;
    return;
  }
  out->caught_up = p->rewound;
  p->rewound = 0;
  if (p->has_map && skip_finished(p, offset)) {
    out->verdict = DW_COMMITTER_SKIP;
    return;
  }
  out->verdict = DW_COMMITTER_TAKE;
  out->generation = p->generation;
}

int dw_committer_current(const struct dw_committer *c, int32_t id, uint32_t generation)
{
  const struct dw_committer_part *p = known(c, id);
  return p && p->assigned && p->generation == generation;
}

int dw_committer_ours(const struct dw_committer *c, int32_t id, uint32_t generation)
{
  const struct dw_committer_part *p = known(c, id);
  return dw_committer_current(c, id, generation) && !p->revoking;
}

int dw_committer_stale(const struct dw_committer *c, int32_t id, uint32_t generation)
{
  const struct dw_committer_part *p = known(c, id);
  return p && p->generation != generation;
}

void dw_committer_done(struct dw_committer *c, int32_t id, uint32_t generation, int64_t offset)
{
  if (dw_committer_current(c, id, generation))
    dw_tracker_done(&c->parts[id].tracker, offset);
}

enum dw_committer_staging dw_committer_stage(struct dw_committer *c, int32_t id,
                                             uint32_t generation, int64_t offset,
                                             int txn_busy)
{
  if (!dw_committer_ours(c, id, generation) || c->stuck)
    return DW_COMMITTER_DROP;
  struct dw_committer_part *p = &c->parts[id];
  if (txn_busy)
    return DW_COMMITTER_PARK;
  if (c->mapmax > 0 && offset != dw_tracker_committable_staged(&p->tracker, 1) &&
      p->map_len + DW_COMMITTER_BYTES_PER_RECORD * (p->staged_since + 1) > c->mapmax)
    return DW_COMMITTER_PARK;
  dw_tracker_stage(&p->tracker, offset);
  p->staged_since++;
  return DW_COMMITTER_STAGE;
}

void dw_committer_settle(struct dw_committer *c, int committed)
{
  for (size_t i = 0; i < c->nparts; i++)
    if (c->parts[i].assigned)
      dw_tracker_settle(&c->parts[i].tracker, committed);
}

enum dw_committer_txn_step dw_committer_txn_step(const struct dw_committer *c, int in_flight,
                                                 int unknown, int doomed, int force)
{
  if (c->stuck)
    return DW_COMMITTER_TXN_NONE;
  if (in_flight)
    return force ? DW_COMMITTER_TXN_WAIT : DW_COMMITTER_TXN_NONE;
  if (unknown)
    return DW_COMMITTER_TXN_RESUME; /* never swapped for an abort: that would wedge it */
  return doomed ? DW_COMMITTER_TXN_ABORT : DW_COMMITTER_TXN_COMMIT;
}

static int add_run(void *arg, int64_t from, int64_t to)
{
  return dw_offsetmap_add(arg, from, to) < 0;
}

/* The partition's map of finished records beyond `base` into c->maptext ("" when there are
 * none, or maps are off), and whether the partition is to be held or released. */
static const char *encode_map(struct dw_committer *c, int32_t id, struct dw_committer_part *p,
                              int64_t base)
{
  struct dw_offsetmap_writer mw;
  int truncated = 0;
  c->maptext[0] = '\0';
  if (c->mapmax == 0 && !p->map_full)
    return c->maptext;
  /* mapmax may have been lowered below what mapbuf and maptext hold, never raised. */
  if (c->mapmax > 0 &&
      dw_offsetmap_begin(&mw, c->mapbuf, c->mapmax + 16, base, c->mapmax) == 0) {
    dw_tracker_runs(&p->tracker, c->staged, add_run, &mw);
    if (mw.runs > 0 && dw_offsetmap_finish(&mw, c->maptext, c->mapmax + 1) < 0)
      c->maptext[0] = '\0';
    truncated = mw.truncated;
  }
  size_t len = strlen(c->maptext);
  c->map_bytes = DW_MAX(c->map_bytes, len);
  p->map_len = len;
  p->staged_since = 0;
  /* With no room left at all (the broker took no map) there is nothing to hold for. */
  int full = c->mapmax > 0 && (truncated || len * 4 > c->mapmax * 3);
  if (full != p->map_full && (full || len * 2 < c->mapmax || c->mapmax == 0)) {
    p->map_full = full;
    c->batch.holds[c->batch.nholds++] =
        (struct dw_committer_hold){.partition = id, .on = full, .base = base, .len = len};
  }
  return c->maptext;
}

const struct dw_committer_batch *dw_committer_collect(struct dw_committer *c,
                                                      const int32_t *only, size_t only_n,
                                                      int force)
{
  struct dw_committer_batch *b = &c->batch;
  b->n = b->nholds = b->longest = 0;
  c->map_bytes = 0;
  for (size_t i = 0; i < (only ? only_n : c->nparts); i++) {
    int32_t id = only ? only[i] : (int32_t)i;
    struct dw_committer_part *p = dw_committer_part(c, id);
    /* At most an entry per partition known: the room of the batch's arrays (`only` names
     * each partition once, as librdkafka's revoke lists do). */
    if (!p || !p->assigned || b->n == c->nparts || b->nholds == c->nparts)
      continue;
    int64_t off = dw_tracker_committable_staged(&p->tracker, c->staged);
    if (off < 0)
      continue;
    const char *meta = encode_map(c, id, p, off);
    int same_meta = p->meta ? strcmp(p->meta, meta) == 0 : meta[0] == '\0';
    if (off == p->committed && same_meta && !force)
      continue;
    if (!same_meta) {
      free(p->meta);
      p->meta = meta[0] ? strdup(meta) : NULL; /* on failure: committed without a map */
    }
    b->partitions[b->n] = id;
    b->offsets[b->n] = off;
    b->metadata[b->n] = p->meta;
    b->longest = DW_MAX(b->longest, p->meta ? strlen(p->meta) : 0);
    p->committed = off;
    b->n++;
  }
  return b;
}

void dw_committer_forget(struct dw_committer *c)
{
  for (size_t i = 0; i < c->nparts; i++) {
    c->parts[i].committed = -1;
    free(c->parts[i].meta);
    c->parts[i].meta = NULL;
  }
}

/* Maps get `room` bytes from now on (never more than before). */
static void lower_room(struct dw_committer *c, size_t room, struct dw_committer_room *out)
{
  out->room = c->mapmax;
  if (room >= c->mapmax)
    return;
  c->mapmax = out->room = room;
  out->lowered = c->map_lowered ? 2 : 1;
  c->map_lowered = 1;
}

/* Exactly-once: the longest map of what is already committed (finished records, not those
 * staged in the open transaction). Every later transaction must carry at least that much, or
 * a restart would write those records' outputs again. */
static size_t settled_map_len(struct dw_committer *c)
{
  size_t longest = 0;
  for (size_t i = 0; i < c->nparts; i++) {
    struct dw_committer_part *p = &c->parts[i];
    struct dw_offsetmap_writer mw;
    int64_t base = dw_tracker_committable(&p->tracker);
    if (!p->assigned || base < 0 ||
        dw_offsetmap_begin(&mw, c->mapbuf, c->mapcap + 16, base, c->mapcap) < 0)
      continue;
    dw_tracker_runs(&p->tracker, 0, add_run, &mw);
    if (mw.runs > 0)
      longest = DW_MAX(longest, dw_offsetmap_text_len(&mw));
  }
  return longest;
}

void dw_committer_refused(struct dw_committer *c, size_t refused, struct dw_committer_room *out)
{
  memset(out, 0, sizeof(*out));
  lower_room(c, dw_offsetmap_shrink(c->mapmax, refused), out);
}

int dw_committer_refused_txn(struct dw_committer *c, size_t refused,
                             struct dw_committer_room *out)
{
  memset(out, 0, sizeof(*out));
  out->room = c->mapmax;
  if (refused == 0 || refused > c->mapmax) /* no map, or one written with more room */
    return 0;
  size_t room = dw_offsetmap_shrink(c->mapmax, refused);
  out->settled = settled_map_len(c);
  if (room == 0 || out->settled >= refused) {
    c->stuck = 1;
    return DW_ERANGE;
  }
  lower_room(c, DW_MAX(room, out->settled), out);
  return 0;
}

void dw_committer_revoking(struct dw_committer *c, const int32_t *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct dw_committer_part *p = dw_committer_part(c, ids[i]);
    if (p)
      p->revoking = 1;
  }
}

void dw_committer_revoke(struct dw_committer *c, const int32_t *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct dw_committer_part *p = dw_committer_part(c, ids[i]);
    if (!p)
      continue;
    p->assigned = 0;
    p->revoking = 0;
    p->generation++;
    p->map_full = 0;
    forget_map(p);
    free(p->meta);
    p->meta = NULL;
    dw_tracker_reset(&p->tracker);
  }
}

enum dw_committer_revoke_step dw_committer_revoke_next(const struct dw_committer *c,
                                                       const struct dw_committer_revoke *r)
{
  if (r->expired)
    return DW_COMMITTER_REVOKE_LATE;
  if (r->in_flight)
    return DW_COMMITTER_REVOKE_WAIT;
  if (!c->staged && r->lost)
    return DW_COMMITTER_REVOKE_DONE; /* exactly-once aborts instead (a commit step) */
  if (!r->started)
    return DW_COMMITTER_REVOKE_COMMIT;
  if (!c->staged && r->rc == DW_ERANGE && c->mapmax < r->room)
    return DW_COMMITTER_REVOKE_COMMIT; /* the room shrank: the shorter maps may go through */
  return DW_COMMITTER_REVOKE_DONE;
}
