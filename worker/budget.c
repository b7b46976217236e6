/* The budget across replicas (dw/budget.h): the poller asks it which ceiling its lanes' limiters
 * have and whether a call takes its permit from the shared store, and tells it what the store
 * answered and which partitions this replica holds. */
#include "dw/budget.h"

#include "dw/common.h"
#include "dw/limiter.h"

#include <string.h>

void dw_budget_init(struct dw_budget *b, int by_partitions, int have_store, uint64_t now_ms)
{
  memset(b, 0, sizeof(*b));
  b->by_partitions = by_partitions;
  b->have_store = have_store;
  b->retry_at_ms = now_ms; /* the first call asks the store at once */
  b->retry_ms = DW_BUDGET_RETRY_MIN_MS;
}

/* Whether the store may not know every call in the window ending at now_ms. It does not know
 * the calls this replica made without it; nor, after a fallback, those of the other replicas
 * that fell back with it: they go on calling on their shares until their next ask, which comes
 * at most DW_BUDGET_RETRY_MAX_MS after the store's return, and their last such call leaves the
 * window one window later. The whole budget from the store before then adds to their shares. */
static int store_blind(const struct dw_budget *b, uint64_t window_ms, uint64_t now_ms)
{
  if (b->last_local_ms && now_ms < b->last_local_ms + window_ms)
    return 1;
  return b->back_ms && now_ms < b->back_ms + DW_BUDGET_RETRY_MAX_MS + window_ms;
}

uint32_t dw_budget_ceiling(const struct dw_budget *b, int minute, uint32_t configured,
                           uint64_t window_ms, uint64_t now_ms)
{
  if (!b->by_partitions || (b->in_use && !store_blind(b, window_ms, now_ms)))
    return configured;
  uint32_t share = dw_limiter_share(configured, b->assigned, b->total);
  if (configured && b->answer_ms && now_ms < b->answer_ms + window_ms) {
    uint32_t others = b->others[minute ? 1 : 0];
    uint32_t left = others < configured ? configured - others : 1;
    share = DW_MIN(share, left);
  }
  return share;
}

void dw_budget_on_local_call(struct dw_budget *b, uint64_t now_ms)
{
  b->last_local_ms = now_ms ? now_ms : 1;
}

int dw_budget_set_partitions(struct dw_budget *b, size_t assigned, size_t total)
{
  int changed = b->assigned != assigned || b->total != total;
  b->assigned = assigned;
  b->total = total;
  return changed && b->by_partitions;
}

int dw_budget_ask_store(const struct dw_budget *b, uint64_t now_ms)
{
  return b->have_store && (b->in_use || now_ms >= b->retry_at_ms);
}

int dw_budget_on_store_answer(struct dw_budget *b, uint64_t now_ms, uint32_t others_second,
                              uint32_t others_minute)
{
  int changed = !b->in_use;
  if (changed && b->failures_total) /* back after a fallback, not the first answer */
    b->back_ms = now_ms ? now_ms : 1;
  b->answer_ms = now_ms ? now_ms : 1;
  b->others[0] = others_second;
  b->others[1] = others_minute;
  b->in_use = 1;
  b->retry_ms = DW_BUDGET_RETRY_MIN_MS;
  return changed;
}

int dw_budget_on_store_failure(struct dw_budget *b, uint64_t now_ms)
{
  int changed = b->in_use;
  b->failures_total++;
  b->in_use = 0;
  /* Only failures while out of use lengthen the wait: one lost answer costs a second. */
  if (!changed)
    b->retry_ms = DW_MIN((uint64_t)DW_BUDGET_RETRY_MAX_MS, b->retry_ms * 2);
  b->retry_at_ms = now_ms + b->retry_ms;
  return changed;
}
