/* The optimal poll plan and the price of a call. Pure: no clock, no I/O.
 *
 * dw_plan_solve: given the survival function S(t) of readiness ages on a grid, the poll ages
 * that minimise expected calls + lambda x expected added latency (ms), by dynamic programming
 * over the grid: V(t) = min over s > t of [1 + lambda.E[(s - T); t < T <= s] / S(t) +
 * S(s) / S(t) . V(s)], polls on grid points only, consecutive polls min_gap to max_gap apart,
 * the last one at the grid's last age. O(n^2) for n grid points.
 *
 * dw_price_*: lambda's multiplier from the state of the rate budget, stepped once a second:
 * it halves while tasks wait for the budget (calls are scarce: poll only the tasks surely
 * ready), recovers toward 1 when they do not, and doubles, up to DW_PRICE_MAX_LEVEL, while the
 * calls of the last minute are below the share of the budget the operator lets the worker
 * spend on latency (idle budget). Why: docs/design.md, "The price of a call". */
#ifndef DW_PLAN_H
#define DW_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define DW_PLAN_GRID 256

/* The DP's input and work space: ages t[0] < t[1] < ... < t[n-1] (ms; t[0] is the age the
 * plan starts from, with no poll there), s[i] = P(T > t[i]) (tasks never ready included, so
 * non-increasing and s[0] > 0), m[i] = E[T; T <= t[i]] (ms, non-decreasing). */
struct dw_plan_grid {
  size_t n;
  double t[DW_PLAN_GRID], s[DW_PLAN_GRID], m[DW_PLAN_GRID];
  double w[DW_PLAN_GRID];      /* work: S(t).V(t) */
  uint16_t next[DW_PLAN_GRID]; /* work: the best next poll after t[i] */
};

/* Fills plan (at most cap ages, increasing, as whole ms) with the optimal polls for this lambda
 * (calls per ms of added latency, >= 0) and returns how many. Gaps: at least min_gap (except to
 * the last age) and at most max_gap (unless the grid has no point that close). *calls: the
 * expected calls per task (never-ready tasks included, up to the last age), may be NULL. */
size_t dw_plan_solve(struct dw_plan_grid *g, double lambda, double min_gap, double max_gap,
                     uint64_t *plan, size_t cap, double *calls);

/* The price of a call: lambda is multiplied by 2^level. */
#define DW_PRICE_MIN_LEVEL (-12) /* 1/4096: a backlog polls a task when it is surely ready */
#define DW_PRICE_MAX_LEVEL 4     /* 16: idle budget buys at most this much latency weight */
#define DW_PRICE_WINDOW_S 60     /* the binding window of Feishu's limits */

struct dw_price {
  int level;
  double idle_share;                 /* of per_minute, spendable on latency when idle; 0 = no */
  uint64_t step_at;                  /* ms of the last step */
  uint64_t calls_at;                 /* calls_total at the last step */
  uint32_t per_second[DW_PRICE_WINDOW_S]; /* calls in each of the last seconds (ring) */
  size_t head;
  int waited;                        /* tasks were waiting for the budget at the last step */
  int started;
};

void dw_price_init(struct dw_price *p, double idle_share);

/* Brings the price up to now_ms (one step per whole second elapsed; returns 1 when the level
 * changed): calls_total counts every call made so far, ready_tasks those waiting for the
 * budget now, per_minute the binding budget (0: unlimited, never scarce nor idle). */
int dw_price_update(struct dw_price *p, uint64_t now_ms, uint64_t calls_total,
                    size_t ready_tasks, uint32_t per_minute);

/* 1 when dw_price_update at now_ms would step (or start) the price; 0 when it would change
 * nothing, so a caller may skip gathering its arguments. */
int dw_price_due(const struct dw_price *p, uint64_t now_ms);

/* lambda's multiplier: 2^level. */
double dw_price_factor(const struct dw_price *p);

#endif
