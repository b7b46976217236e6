/* The app's budget across replicas: which ceiling this replica's limiters climb to, and when it
 * draws from the shared store. Every replica of one app (one app and tenant for store apps)
 * shares Feishu's 50 calls/s and 1,000/min. Without a store each takes its share of the
 * configured budget in proportion to the input topic's partitions it is assigned
 * (dw_limiter_share); with a store (limits.store) the replicas take their calls from one
 * budget kept there, and the store's failure (an error, or no answer within the timeout)
 * brings the share back at once, until the store answers again; the store does not know the
 * calls made meanwhile, so the share holds for one more window after the last of them, and
 * after a fallback as long as the other replicas may still be calling on their shares (their
 * next ask comes within DW_BUDGET_RETRY_MAX_MS of the store's return) and one window more. Going
 * the other way, the other replicas may have used more than their shares in the window before
 * the failure: for one window after the store's last answer the ceiling leaves them what that
 * answer said they had used. Pure: the caller passes the
 * clock and the store's answers. */
#ifndef DW_BUDGET_H
#define DW_BUDGET_H

#include <stddef.h>
#include <stdint.h>

/* After a failure the store is asked again after 1 s, then twice as long each time it fails
 * again, up to 30 s; an answer resets the wait. */
#define DW_BUDGET_RETRY_MIN_MS 1000u
#define DW_BUDGET_RETRY_MAX_MS 30000u

struct dw_budget {
  int by_partitions;      /* limits.share = partitions */
  int have_store;         /* limits.store is set */
  int in_use;             /* the store answered last: its budget is the one in force */
  uint64_t retry_at_ms;   /* not in use: when to ask the store again */
  uint64_t retry_ms;      /* the wait after the next failure */
  size_t assigned, total; /* partitions: ours and the topic's (0: not known) */
  uint64_t last_local_ms; /* the last call made without the store's permit (0: none) */
  uint64_t answer_ms;     /* the store's last answer */
  uint64_t back_ms;       /* the answer that ended the last fallback (0: none yet) */
  uint32_t others[2];     /* calls of others in the 1 s and the 60 s window, at that answer */
  uint64_t failures_total;
};

void dw_budget_init(struct dw_budget *b, int by_partitions, int have_store, uint64_t now_ms);

/* This replica's ceiling at now_ms for the configured limit of one window (minute 0: the 1 s
 * window, 1: the 60 s one; window_ms its length as the limiter sees it; configured 0:
 * unlimited): the whole of it when limits.share is whole, or while the store is in use, the
 * last call made without it has left the window and, after a fallback, DW_BUDGET_RETRY_MAX_MS
 * and a window have passed since the store's return (the others that fell back are back on it
 * by then); else its share of the partitions, and within a window of the store's last answer
 * no more than the others left of the whole (at least 1). */
uint32_t dw_budget_ceiling(const struct dw_budget *b, int minute, uint32_t configured,
                           uint64_t window_ms, uint64_t now_ms);

/* A call was made without the store's permit (the store was not in use). */
void dw_budget_on_local_call(struct dw_budget *b, uint64_t now_ms);

/* The assignment changed: assigned of the topic's total partitions (total 0: not known). 1 when
 * the counts changed and the ceilings follow them (limits.share = partitions), else 0. */
int dw_budget_set_partitions(struct dw_budget *b, size_t assigned, size_t total);

/* Whether a call should ask the store for its permit now: while it is in use, or when the wait
 * after its last failure is over (that ask is the probe that brings it back). */
int dw_budget_ask_store(const struct dw_budget *b, uint64_t now_ms);

/* The store answered (1 when it was not in use: the ceilings change; after a failure this is
 * its return, back_ms), saying that others (replicas, programs) made others_second and
 * others_minute of the calls in its windows; or it failed (1 when it was in use: the ceilings
 * change). */
int dw_budget_on_store_answer(struct dw_budget *b, uint64_t now_ms, uint32_t others_second,
                              uint32_t others_minute);
int dw_budget_on_store_failure(struct dw_budget *b, uint64_t now_ms);

#endif
