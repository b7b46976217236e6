/* The optimal poll plan and the price of a call (see include/dw/plan.h). The adaptive model
 * (adaptive.c) turns what it has learned into a grid of survival values and asks for the plan
 * that is cheapest at a given lambda; the poller steps the price once a second from the state
 * of its rate budget, and the adaptive model replans at the new lambda. */
#include "dw/plan.h"

#include <math.h>
#include <string.h>

#include "dw/common.h"

/* The pace of spending is judged over the last 5 seconds: at the 1,000/min of Feishu's limits
 * that is 83 calls, enough to tell a pace above the budget from noise. */
#define RECENT_S 5

/* The expected cost, from t[i] (scaled by S(t[i])), of polling next at t[j] and optimally
 * after: every task still pending pays the call, those ready in (t[i], t[j]] wait until t[j]. */
static double step_cost(const struct dw_plan_grid *g, double lambda, size_t i, size_t j)
{
  double wait = g->t[j] * (g->s[i] - g->s[j]) - (g->m[j] - g->m[i]);
  if (wait < 0) /* rounding of a near-empty cell */
    wait = 0;
  return g->s[i] + lambda * wait + g->w[j];
}

size_t dw_plan_solve(struct dw_plan_grid *g, double lambda, double min_gap, double max_gap,
                     uint64_t *plan, size_t cap, double *calls)
{
  size_t n = g->n, len = 0;
  double c = 0;
  if (calls)
    *calls = 0;
  if (n < 2 || n > DW_PLAN_GRID || cap == 0)
    return 0;
  g->w[n - 1] = 0;
  g->next[n - 1] = (uint16_t)(n - 1);
  for (size_t i = n - 1; i-- > 0;) {
    double best = INFINITY;
    size_t pick = n - 1;
    size_t fallback = n; /* the first point at least min_gap away, if none fits both bounds */
    for (size_t j = i + 1; j < n; j++) {
      double gap = g->t[j] - g->t[i];
      if (gap < min_gap && j != n - 1)
        continue;
      if (fallback == n)
        fallback = j;
      if (gap > max_gap && j != i + 1)
        break; /* the grid increases: every later point is further */
      double v = step_cost(g, lambda, i, j);
      if (v < best) {
        best = v;
        pick = j;
      }
    }
    if (best == INFINITY) {
      pick = fallback < n ? fallback : n - 1;
      best = step_cost(g, lambda, i, pick);
    }
    g->w[i] = best;
    g->next[i] = (uint16_t)pick;
  }
  for (size_t i = 0; i != n - 1 && len < cap;) {
    c += g->s[i]; /* the tasks still pending pay the next call */
    i = g->next[i];
    uint64_t age = (uint64_t)llround(g->t[i]);
    if (len == 0 || age > plan[len - 1])
      plan[len++] = age;
  }
  if (calls && g->s[0] > 0)
    *calls = c / g->s[0];
  return len;
}

void dw_price_init(struct dw_price *p, double idle_share)
{
  memset(p, 0, sizeof(*p));
  p->idle_share = idle_share > 0 ? DW_MIN(idle_share, 1.0) : 0;
}

double dw_price_factor(const struct dw_price *p)
{
  return ldexp(1.0, p->level);
}

/* One second. Calls are scarce when tasks waited for the budget at this step and the one
 * before (a burst of due tasks that the limiter spreads over a second is not a backlog), or
 * when the calls of the last RECENT_S seconds, kept up, would spend more than the minute's
 * budget (the per-second limit lets a minute's budget go in 20 s: waiting for the queue to
 * build up would spend it on polls that find tasks pending). A minute that used less than the
 * idle share makes latency cheap. Otherwise the price returns toward 1. */
static void step(struct dw_price *p, uint32_t calls, int waiting, uint32_t per_minute)
{
  p->per_second[p->head] = calls;
  p->head = (p->head + 1) % DW_PRICE_WINDOW_S;
  uint64_t used = 0, recent = 0;
  for (size_t k = 0; k < DW_PRICE_WINDOW_S; k++)
    used += p->per_second[k];
  for (size_t k = 1; k <= RECENT_S; k++)
    recent += p->per_second[(p->head + DW_PRICE_WINDOW_S - k) % DW_PRICE_WINDOW_S];
  int scarce = (waiting && p->waited) ||
               recent * (DW_PRICE_WINDOW_S / RECENT_S) > (uint64_t)per_minute;
  p->waited = waiting;
  int idle = per_minute > 0 && p->idle_share > 0 && !waiting &&
             (double)used < p->idle_share * (double)per_minute;
  if (per_minute == 0)
    scarce = 0;
  if (scarce)
    p->level = DW_MAX(p->level - 1, DW_PRICE_MIN_LEVEL);
  else if (idle)
    p->level = DW_MIN(p->level + 1, DW_PRICE_MAX_LEVEL);
  else if (p->level < 0)
    p->level++;
  else if (p->level > 0 && (double)used >= p->idle_share * (double)per_minute)
    p->level--;
}

int dw_price_due(const struct dw_price *p, uint64_t now_ms)
{
  return !p->started || now_ms >= p->step_at + 1000;
}

int dw_price_update(struct dw_price *p, uint64_t now_ms, uint64_t calls_total,
                    size_t ready_tasks, uint32_t per_minute)
{
  int before = p->level;
  if (!p->started) {
    p->started = 1;
    p->step_at = now_ms;
    p->calls_at = calls_total;
    return 0;
  }
  if (!dw_price_due(p, now_ms))
    return 0;
  uint64_t secs = (now_ms - p->step_at) / 1000;
  uint64_t calls = calls_total >= p->calls_at ? calls_total - p->calls_at : 0;
  /* Seconds without a step (nothing drove the poller): their calls are spread evenly, and at
   * most a window of them is replayed. */
  uint64_t replay = DW_MIN(secs, (uint64_t)DW_PRICE_WINDOW_S);
  for (uint64_t k = 0; k < replay; k++) {
    uint64_t share = calls / secs + (k + 1 == replay ? calls % secs : 0);
    step(p, (uint32_t)DW_MIN(share, UINT32_MAX), k + 1 == replay ? ready_tasks > 0 : 0,
         per_minute);
  }
  p->step_at += secs * 1000;
  p->calls_at = calls_total;
  return p->level != before;
}
