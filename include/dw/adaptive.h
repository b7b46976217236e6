/* The adaptive poll plan: learns online when tasks become ready (their age since creation) and
 * places polls to spend as few calls as possible while keeping the median added latency (time
 * from ready to answer) at a target. Pure: ages and clocks are passed in.
 *
 * Model: a histogram of readiness ages over log-spaced buckets from interval-censored
 * observations (a task was pending at age lo and ready at age hi), plus the mass of tasks never
 * ready by their deadline. Plan: the poll ages that minimise expected calls + lambda x expected
 * added latency for that distribution (dynamic programming, dw/plan.h), lambda chosen by
 * bisection so that the plan's median added latency meets the target, then multiplied by the
 * price of a call in the task's lane (dw_adaptive_next_age). Why, and how the histogram is
 * estimated: docs/design.md, "Polling mathematics". */
#ifndef DW_ADAPTIVE_H
#define DW_ADAPTIVE_H

#include <stddef.h>
#include <stdint.h>

#define DW_ADAPTIVE_BUCKETS 64
#define DW_ADAPTIVE_MAX_PLAN 256
#define DW_ADAPTIVE_MAX_SITES 1024
/* The worker's two learning parameters (why these values: docs/design.md, "How the plan is
 * computed"): a distribution is used from 30 observations, whose median is then within 0.18
 * of the true median in quantile (95%); an observation weighs half after 2,000 newer ones, so
 * the plan follows a change upstream within a few thousand tasks without being moved by a few
 * odd ones. */
#define DW_ADAPTIVE_MIN_OBSERVATIONS 30
#define DW_ADAPTIVE_HALF_LIFE 2000.0

struct dw_adaptive_options {
  uint64_t latency_target_ms; /* median added latency to aim for */
  uint64_t min_interval_ms;   /* never poll a task more often than this */
  uint64_t max_interval_ms;   /* never leave a task unpolled longer than this */
  uint64_t horizon_ms;        /* plan up to this age (the deadline) */
  uint32_t min_observations;  /* a distribution is used once it has this many */
  double half_life;           /* observations after which an old one weighs half */
};

/* One observation: ready in (lo, hi] ms of age; hi = UINT32_MAX: not ready by the deadline. */
struct dw_adaptive_obs {
  uint32_t lo, hi;
};

/* A plan kept aside: the one made at another price level (see dw_readiness.other). */
struct dw_adaptive_plan {
  uint64_t age[DW_ADAPTIVE_MAX_PLAN];
  size_t len; /* 0: none */
  double calls, p50_ms;
  int level;
};

struct dw_readiness {
  double w[DW_ADAPTIVE_BUCKETS]; /* readiness mass per bucket (scaled, see gain) */
  struct dw_adaptive_obs *obs;   /* the latest observations, refined by EM when planning */
  size_t obs_cap, obs_head, obs_count;
  double never;                  /* mass of tasks not ready by their deadline */
  double gain;                   /* weight of the next observation (grows to fade old ones) */
  uint64_t observations;
  uint64_t planned_at;           /* observations when the plan was made */
  uint64_t plan[DW_ADAPTIVE_MAX_PLAN]; /* poll ages, increasing */
  size_t plan_len;
  double plan_calls;             /* expected calls per ready task under the plan */
  double plan_p50_ms;            /* expected median added latency */
  double lambda;                 /* meets the latency target at price 1 (calls per ms) */
  int plan_level;                /* the price level the plan was made at */
  struct dw_adaptive_plan other; /* the plan at the level used before this one: lanes at two
                                    prices in turn swap, not replan */
};

struct dw_adaptive_site {
  char website_id[33];
  struct dw_readiness r;
};

struct dw_adaptive {
  struct dw_adaptive_options opt;
  struct dw_readiness global;
  struct dw_adaptive_site *sites; /* open addressing by website id */
  size_t nsites;
  uint64_t replans, reprices;     /* plans made by bisection, and at a new price only */
};

int dw_adaptive_init(struct dw_adaptive *a, const struct dw_adaptive_options *opt);
void dw_adaptive_cleanup(struct dw_adaptive *a);

/* A task of this website was pending at age lo_ms (0: never polled before) and ready at hi_ms. */
void dw_adaptive_observe(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms,
                         uint64_t hi_ms);

/* A task of this website was still pending at age lo_ms when its deadline passed. */
void dw_adaptive_observe_never(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms);

/* The age at which a task of this website, now age_ms old, should be polled next under the
 * plan at price level `level` (the price of a call in the task's lane, dw_price: lambda x
 * 2^level, clamped to DW_PRICE_MIN_LEVEL..DW_PRICE_MAX_LEVEL): the first planned age after
 * age_ms (age_ms itself when the plan is behind it). 0 when there is no plan yet (too few
 * observations): the caller falls back to its fixed schedule. */
uint64_t dw_adaptive_next_age(struct dw_adaptive *a, const char *website_id, uint64_t age_ms,
                              int level);

/* The distribution used for this website (its own once it has enough observations, else the
 * global one), with its plan brought up to date at price level `level`: a new level costs one
 * DP pass (no bisection), and the plan at the level used before is kept, so lanes at two
 * prices in turn do not replan; NULL when neither model has enough observations. */
const struct dw_readiness *dw_adaptive_model(struct dw_adaptive *a, const char *website_id,
                                             int level);

/* The age by which a task pending at age lo_ms, if it becomes ready at all, is ready with
 * probability q (0 < q < 1) under the model: for ordering calls when the budget is short (the
 * task surely ready first). 0 without a model; UINT64_MAX when the model has no task becoming
 * ready after lo_ms. */
uint64_t dw_adaptive_ready_age(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms,
                               double q);

/* Probability that a task pending at age lo_ms is ready at age now_ms under the model; 0.5
 * without a model. */
double dw_adaptive_ready_probability(struct dw_adaptive *a, const char *website_id,
                                     uint64_t lo_ms, uint64_t now_ms);

#endif
