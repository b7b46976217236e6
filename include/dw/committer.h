/* The commits of the input partitions, as decisions: per partition, which records are taken,
 * skipped (finished before, per the map committed with the offset) or dropped (delivered
 * again), which offset may be committed, which map of finished records goes with it, how much
 * room maps have, and when a partition is held because its map is near that room. The worker
 * feeds in what happens (an assignment, the committed offset and map read for it, a record,
 * a record finished or staged, a transaction settled, a refused map, a revoke) and carries out
 * what comes back (commit these offsets with these maps, hold or release a partition, log).
 * Pure: no loop, no Kafka; the derivations are in docs/design.md, "The commit map". */
#ifndef DW_COMMITTER_H
#define DW_COMMITTER_H

#include <stddef.h>
#include <stdint.h>

#include "dw/offsetmap.h"
#include "dw/tracker.h"

/* The most one more finished record can add to a map's text: one (gap, length) pair of
 * varints of up to 10 bytes each, in base64. */
#define DW_COMMITTER_BYTES_PER_RECORD 27

/* The ledger of one partition. */
struct dw_committer_part {
  int assigned;
  int revoking;        /* being revoked: exactly-once outputs of it are no longer staged */
  uint32_t generation; /* bumped on revoke: records of an older generation store no offset */
  struct dw_tracker tracker;
  int64_t committed;   /* last offset committed, -1 none */
  char *meta;          /* the metadata committed with it (the map), NULL none */
  struct dw_offsetmap map; /* finished records beyond the committed offset at assignment */
  int has_map;
  int map_full;        /* held: the map passed three quarters of its room */
  int rewound;         /* the client went back: taken records are being delivered again */
  size_t map_len;      /* its map's length at the last commit */
  size_t staged_since; /* exactly-once: records staged since then */
};

/* A partition to hold (its map passed three quarters of the room, or was cut short) or to
 * release (its map is back under half), with the map's base offset and length for the log. */
struct dw_committer_hold {
  int32_t partition;
  int on;
  int64_t base;
  size_t len;
};

/* What to commit now: n offsets with their maps (NULL: none), the partitions to hold or
 * release first, and the longest map among them. Owned by the committer, valid until the
 * next call that changes it. */
struct dw_committer_batch {
  int32_t *partitions;
  int64_t *offsets;
  const char **metadata;
  size_t n;
  struct dw_committer_hold *holds;
  size_t nholds;
  size_t longest;
};

struct dw_committer {
  int staged;       /* exactly-once: staged records count as finished in commits */
  int stuck;        /* exactly-once: the broker cannot take the maps; commit nothing more */
  struct dw_committer_part *parts;
  size_t nparts;
  uint8_t *mapbuf;  /* scratch for encoding maps, mapcap + 16 bytes */
  char *maptext;    /* mapcap + 1 bytes */
  size_t mapcap;    /* kafka.commit_metadata_max_bytes */
  size_t mapmax;    /* room for a map: mapcap, less once the broker refused a map as too long */
  int map_lowered;  /* mapmax was lowered before */
  size_t map_bytes; /* largest map in the last commit */
  struct dw_committer_batch batch;
};

/* A committer with maps of up to mapcap bytes (0: no maps); staged for exactly-once.
 * DW_ENOMEM. */
int dw_committer_init(struct dw_committer *c, size_t mapcap, int staged);
void dw_committer_cleanup(struct dw_committer *c);

/* The partition's ledger, created (unassigned) on first use; NULL for a negative id or
 * without memory. */
struct dw_committer_part *dw_committer_part(struct dw_committer *c, int32_t partition);

/* The partitions were assigned: each starts afresh (nothing taken, nothing committed, no map,
 * not held). */
void dw_committer_assign(struct dw_committer *c, const int32_t *partitions, size_t n);

/* What the metadata committed with a newly assigned partition's offset said. */
enum dw_committer_map_kind {
  DW_COMMITTER_MAP_NONE = 0, /* nothing (none, empty, no runs, not assigned, no memory) */
  DW_COMMITTER_MAP_FOREIGN,  /* not written by this worker, or corrupt: ignored */
  DW_COMMITTER_MAP_RESET,    /* written for another offset (the offsets were reset): ignored */
  DW_COMMITTER_MAP_LOADED,   /* its finished records are skipped when they arrive */
};

/* The committed offset and metadata of a newly assigned partition, before its first record.
 * *map_base is the base the map was written for (RESET), *count the records it holds
 * (LOADED). */
enum dw_committer_map_kind dw_committer_on_committed(struct dw_committer *c, int32_t partition,
                                                     int64_t offset, const char *meta,
                                                     size_t len, int64_t *map_base,
                                                     int64_t *count);

/* What becomes of a record that arrives. */
enum dw_committer_verdict {
  DW_COMMITTER_TAKE = 0,      /* new: process it, its generation in `generation` */
  DW_COMMITTER_SKIP,          /* finished before a restart or rebalance (the map): done */
  DW_COMMITTER_NOT_OURS,      /* the partition is not assigned, or being revoked: not taken,
                                 it comes back (to its next owner) */
  DW_COMMITTER_TAKEN_ALREADY, /* below the next offset expected: the client delivered it
                                 again after going back; drop it */
  DW_COMMITTER_UNTRACKABLE,   /* cannot be tracked (err): later records could commit past it */
};

struct dw_committer_arrival {
  enum dw_committer_verdict verdict;
  uint32_t generation; /* TAKE */
  int rewound;         /* TAKEN_ALREADY: the first record of this rewind */
  int caught_up;       /* TAKE, SKIP: the first record past a rewind */
  int64_t next;        /* TAKEN_ALREADY: the next offset expected */
  int err;             /* UNTRACKABLE: DW_ENOMEM, DW_EINVAL */
};

/* A record at this offset arrived; *out says what becomes of it. */
void dw_committer_on_record(struct dw_committer *c, int32_t partition, int64_t offset,
                            struct dw_committer_arrival *out);

/* Whether a record taken in `generation` still belongs to the partition's assignment
 * (current), and is not being revoked either (ours); stale when the partition was revoked
 * since. */
int dw_committer_current(const struct dw_committer *c, int32_t partition, uint32_t generation);
int dw_committer_ours(const struct dw_committer *c, int32_t partition, uint32_t generation);
int dw_committer_stale(const struct dw_committer *c, int32_t partition, uint32_t generation);

/* The record's output is acknowledged: its offset is finished (when still current). */
void dw_committer_done(struct dw_committer *c, int32_t partition, uint32_t generation,
                       int64_t offset);

/* What becomes of an exactly-once output before it is produced. */
enum dw_committer_staging {
  DW_COMMITTER_STAGE = 0, /* staged: produce it in the open transaction */
  DW_COMMITTER_PARK,      /* wait for the next transaction */
  DW_COMMITTER_DROP,      /* no longer ours (or never committable): the next owner redoes it */
};

/* Exactly-once: the output of this record is about to join the open transaction. It waits
 * while a commit is in flight or its outcome is unknown (txn_busy), or when the partition's map may have no
 * room left to record it (a finished record the map cannot hold would be processed again
 * after a crash: a duplicate); the lowest unfinished record never waits, since finishing it
 * shrinks the map. */
enum dw_committer_staging dw_committer_stage(struct dw_committer *c, int32_t partition,
                                             uint32_t generation, int64_t offset,
                                             int txn_busy);

/* Exactly-once: the open transaction committed (staged records are finished) or aborted
 * (they are pending again), in every assigned partition. */
void dw_committer_settle(struct dw_committer *c, int committed);

/* Exactly-once: what a commit tick, a revoke or the shutdown does with the transaction. */
enum dw_committer_txn_step {
  DW_COMMITTER_TXN_NONE = 0, /* nothing: the broker cannot take the maps, or (a tick) a call
                                is in flight, and a second one is not started beside it */
  DW_COMMITTER_TXN_WAIT,     /* (a revoke, the shutdown) wait for the call in flight, then ask
                                again */
  DW_COMMITTER_TXN_RESUME,   /* resume the commit or abort whose outcome is not known yet */
  DW_COMMITTER_TXN_ABORT,    /* abort it: something in it failed (doomed) */
  DW_COMMITTER_TXN_COMMIT,   /* commit it with the offsets and maps (dw_committer_collect) */
};

/* The next step for the transaction: in_flight when a commit or abort runs now, unknown when
 * one timed out and goes on in the background, doomed when something in the open transaction
 * failed, force for a revoke or the shutdown (which must know the outcome before they go on);
 * a tick never waits. */
enum dw_committer_txn_step dw_committer_txn_step(const struct dw_committer *c, int in_flight,
                                                 int unknown, int doomed, int force);

/* The offsets to commit with their maps (of `only`, or of every assigned partition when only
 * is NULL): those that changed since the last commit, or with `force` every one known (a
 * revoke or shutdown must not rely on an earlier asynchronous commit). Each is recorded as
 * committed. A partition whose map passes three quarters of its room (or is cut short) is
 * held until it is back under half; with no room at all there is nothing to hold for. */
const struct dw_committer_batch *dw_committer_collect(struct dw_committer *c,
                                                      const int32_t *only, size_t only_n,
                                                      int force);

/* Forgets what was committed (a commit failed or was aborted), so every offset and map is
 * sent again next time. */
void dw_committer_forget(struct dw_committer *c);

/* What a map the broker refused changed. */
struct dw_committer_room {
  int lowered;    /* 0: nothing; 1: the room was lowered for the first time; 2: again */
  size_t room;    /* the room from now on (0: commit without maps) */
  size_t settled; /* exactly-once: the longest map of what is already committed */
};

/* At-least-once: the broker refused a map of `refused` bytes (the shortest of a commit) as
 * longer than its offset.metadata.max.bytes. Maps get less room (dw_offsetmap_shrink): a map
 * cut short is still right, and no map at all too (the records left out are only processed
 * again after a restart). */
void dw_committer_refused(struct dw_committer *c, size_t refused, struct dw_committer_room *out);

/* Exactly-once: the transaction whose longest map had `refused` bytes was aborted because the
 * broker refused a map. A map may not be cut below what is committed, nor dropped. 0 when
 * maps have less room from now on (or already had); DW_ERANGE when the broker cannot take even
 * the committed map, or the room would be below DW_OFFSETMAP_MIN_BYTES: then stuck is set
 * (every later transaction would be refused the same way). */
int dw_committer_refused_txn(struct dw_committer *c, size_t refused,
                             struct dw_committer_room *out);

/* The partitions are being revoked (their commit goes on while the group waits): their
 * records that still arrive are not taken (they are the next owner's), and their exactly-once
 * outputs are no longer staged. */
void dw_committer_revoking(struct dw_committer *c, const int32_t *partitions, size_t n);

/* A revoke (or the shutdown's last commit) in progress, as the worker sees it: it commits what
 * is finished of the partitions without blocking the loop, and gives them up when the
 * commit's outcome is known or the deadline passed. */
struct dw_committer_revoke {
  int lost;      /* the assignment was lost: the partitions are someone else's already */
  int started;   /* the revoke's own commit was started (or there was nothing to start) */
  int in_flight; /* a commit is in flight: the revoke's own, or (exactly-once) a tick's */
  int rc;        /* the outcome of the revoke's own commit: 0, DW_ERANGE (a map refused as
                    too long), another DW_E* */
  size_t room;   /* the maps' room when it was started */
  int expired;   /* the deadline passed */
};

/* What a revoke does next. */
enum dw_committer_revoke_step {
  DW_COMMITTER_REVOKE_WAIT = 0, /* a commit is in flight: wait for its outcome on the loop */
  DW_COMMITTER_REVOKE_COMMIT,   /* start its commit: at-least-once the partitions' offsets and
                                   maps (dw_committer_collect, forced), exactly-once the open
                                   transaction (aborted after a loss, dw_committer_txn_step) */
  DW_COMMITTER_REVOKE_DONE,     /* give the partitions up: committed, failed (said already;
                                   the next owner processes again what is not committed), or
                                   lost (at-least-once commits nothing: the group would refuse
                                   it) */
  DW_COMMITTER_REVOKE_LATE,     /* the deadline passed first: give them up anyway, and say so */
};

/* The next step of a revoke. At-least-once commits again, with shorter maps, while the broker
 * refuses maps as too long and the room still shrinks (each refusal at least halves it);
 * exactly-once waits for a tick's commit in flight, then commits once. */
enum dw_committer_revoke_step dw_committer_revoke_next(const struct dw_committer *c,
                                                       const struct dw_committer_revoke *r);

/* The partitions were revoked: forgotten, a new generation. */
void dw_committer_revoke(struct dw_committer *c, const int32_t *partitions, size_t n);

#endif
