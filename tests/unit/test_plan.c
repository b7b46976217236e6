/* The optimal poll plan and the price of a call (dw/plan.h): the DP against a brute-force
 * search over every plan of a small grid, its monotonicity in lambda, degenerate
 * distributions; the adaptive model's bisection meeting its target and its replan at a new
 * price; the price's transitions from the budget's state. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dw/adaptive.h"
#include "dw/common.h"
#include "dw/plan.h"

/* A grid of n ages 0, step, 2 step, ... with survival from the given CDF at those ages; the
 * ready mass of each cell sits at its middle. */
static void grid_from(struct dw_plan_grid *g, size_t n, double step, double (*cdf)(double))
{
  memset(g, 0, sizeof(*g));
  g->n = n;
  for (size_t k = 0; k < n; k++) {
    g->t[k] = step * (double)k;
    g->s[k] = 1 - cdf(g->t[k]);
    g->m[k] = k ? g->m[k - 1] + (g->s[k - 1] - g->s[k]) * (g->t[k - 1] + g->t[k]) / 2 : 0;
  }
}

static double lognormal_cdf(double t)
{
  return t <= 0 ? 0 : 0.5 * erfc(-log(t / 4000) / (0.7 * M_SQRT2));
}

/* 70% ready by 10 s (log-normal), the rest never. */
static double partly_never_cdf(double t)
{
  return 0.7 * lognormal_cdf(t);
}

static double never_cdf(double t)
{
  (void)t;
  return 0;
}

static double at_once_cdf(double t)
{
  (void)t;
  return 1; /* every task ready from age 0 */
}

static double point_cdf(double t)
{
  return t >= 5000 ? 1 : 0; /* every task ready at exactly 5 s */
}

/* The cost of a plan (grid indices, increasing, the last one n - 1), as the DP defines it:
 * calls plus lambda times the added latency, per task pending at t[0]. */
static double cost_of(const struct dw_plan_grid *g, const size_t *idx, size_t k, double lambda)
{
  double c = 0;
  size_t prev = 0;
  for (size_t j = 0; j < k; j++) {
    size_t i = idx[j];
    c += g->s[prev] + lambda * (g->t[i] * (g->s[prev] - g->s[i]) - (g->m[i] - g->m[prev]));
    prev = i;
  }
  return c / g->s[0];
}

/* Every subset of the inner points (the last point always polled) that keeps the gaps. */
static double brute_force(const struct dw_plan_grid *g, double lambda, double min_gap,
                          double max_gap)
{
  size_t inner = g->n - 2, idx[DW_PLAN_GRID];
  double best = INFINITY;
  for (uint32_t mask = 0; mask < (1u << inner); mask++) {
    size_t k = 0;
    for (size_t b = 0; b < inner; b++)
      if (mask & (1u << b))
        idx[k++] = b + 1;
    idx[k++] = g->n - 1;
    int ok = 1;
    for (size_t j = 0; j < k && ok; j++) {
      double gap = g->t[idx[j]] - (j ? g->t[idx[j - 1]] : g->t[0]);
      ok = gap <= max_gap && (gap >= min_gap || idx[j] == g->n - 1);
    }
    double c = cost_of(g, idx, k, lambda);
    if (ok && c < best)
      best = c;
  }
  return best;
}

/* The DP's plan, as grid indices, and its cost. */
static double dp_cost(struct dw_plan_grid *g, double lambda, double min_gap, double max_gap,
                      size_t *len)
{
  uint64_t plan[DW_PLAN_GRID];
  size_t idx[DW_PLAN_GRID];
  size_t n = dw_plan_solve(g, lambda, min_gap, max_gap, plan, DW_PLAN_GRID, NULL);
  for (size_t j = 0; j < n; j++) {
    idx[j] = (size_t)-1;
    for (size_t i = 0; i < g->n; i++)
      if (llround(g->t[i]) == (long long)plan[j])
        idx[j] = i;
    assert_true(idx[j] != (size_t)-1);
  }
  assert_true(n > 0);
  assert_int_equal(idx[n - 1], g->n - 1); /* the last age is always polled */
  if (len)
    *len = n;
  return cost_of(g, idx, n, lambda);
}

static void test_matches_brute_force(void **state)
{
  (void)state;
  static double (*const cdfs[])(double) = {lognormal_cdf, partly_never_cdf, point_cdf};
  static const double lambdas[] = {1e-5, 1e-4, 5e-4, 2e-3, 1e-2};
  static const double gaps[][2] = {{0, 1e9}, {1500, 1e9}, {0, 3000}, {1500, 4500}};
  struct dw_plan_grid g;
  for (size_t c = 0; c < DW_ARRAY_SIZE(cdfs); c++)
    for (size_t l = 0; l < DW_ARRAY_SIZE(lambdas); l++)
      for (size_t k = 0; k < DW_ARRAY_SIZE(gaps); k++) {
        grid_from(&g, 14, 1000, cdfs[c]);
        double want = brute_force(&g, lambdas[l], gaps[k][0], gaps[k][1]);
        double got = dp_cost(&g, lambdas[l], gaps[k][0], gaps[k][1], NULL);
        assert_true(fabs(got - want) <= 1e-9 * (1 + want));
      }
}

static void test_monotonic_in_lambda(void **state)
{
  (void)state;
  struct dw_plan_grid g;
  uint64_t plan[DW_PLAN_GRID];
  grid_from(&g, 200, 200, lognormal_cdf);
  double prev_calls = 0, prev_wait = INFINITY;
  for (double l = -7; l <= 0; l += 0.25) {
    double calls;
    size_t n = dw_plan_solve(&g, pow(10, l), 0, 1e9, plan, DW_PLAN_GRID, &calls);
    /* The expected added latency of this plan. */
    double wait = 0, prev = 0;
    for (size_t j = 0; j < n; j++) {
      double a = prev, b = (double)plan[j];
      for (size_t i = 1; i < g.n; i++)
        if (g.t[i] > a && g.t[i] <= b)
          wait += (b - (g.t[i - 1] + g.t[i]) / 2) * (g.s[i - 1] - g.s[i]);
      prev = b;
    }
    /* A higher weight on latency never buys fewer calls nor more latency. */
    assert_true(calls >= prev_calls - 1e-9);
    assert_true(wait <= prev_wait + 1e-6);
    prev_calls = calls;
    prev_wait = wait;
  }
  assert_true(prev_calls > 5); /* the dearest latency polls often */
}

static void test_degenerate(void **state)
{
  (void)state;
  struct dw_plan_grid g;
  uint64_t plan[DW_PLAN_GRID];
  double calls;
  size_t n;

  /* All ready at once (age 0): one poll, the first allowed, whatever lambda. */
  grid_from(&g, 50, 1000, at_once_cdf);
  g.s[0] = 1; /* pending at age 0 */
  for (double l = -6; l <= 0; l += 1) {
    n = dw_plan_solve(&g, pow(10, l), 250, 15000, plan, DW_PLAN_GRID, &calls);
    assert_true(n >= 1);
    assert_int_equal(plan[0], 1000);
    assert_true(fabs(calls - 1) < 1e-9);
  }

  /* A point mass at 5 s: one poll at 5 s, none before (a poll before it sees nothing). */
  grid_from(&g, 50, 1000, point_cdf);
  n = dw_plan_solve(&g, 1e-2, 250, 15000, plan, DW_PLAN_GRID, &calls);
  assert_int_equal(plan[0], 5000);
  assert_true(fabs(calls - 1) < 1e-9);

  /* Never ready: polls as far apart as max_gap allows, the fewest that cover the grid. */
  grid_from(&g, 61, 1000, never_cdf);
  n = dw_plan_solve(&g, 1, 250, 15000, plan, DW_PLAN_GRID, &calls);
  assert_int_equal(n, 4); /* 60 s in gaps of at most 15 s */
  assert_int_equal(plan[n - 1], 60000);
  assert_true(fabs(calls - 4) < 1e-9);

  /* A grid coarser than max_gap still gives a plan: every point. */
  grid_from(&g, 5, 20000, never_cdf);
  n = dw_plan_solve(&g, 1, 250, 15000, plan, DW_PLAN_GRID, &calls);
  assert_int_equal(n, 4);

  /* Nothing to plan on. */
  g.n = 1;
  assert_int_equal(dw_plan_solve(&g, 1, 250, 15000, plan, DW_PLAN_GRID, &calls), 0);
  assert_true(calls == 0);
}

/* The adaptive model learns exact readiness ages (pending just before, ready at) of a
 * log-normal distribution. */
static void learn(struct dw_adaptive *a, int n, double median, double sigma)
{
  for (int i = 0; i < n; i++) {
    double z = -2.5 + 5.0 * ((double)i + 0.5) / n; /* quantiles, deterministic */
    double w = exp(-z * z / 2);                    /* as many as the density says */
    int copies = (int)lround(3 * w);
    uint64_t t = (uint64_t)(median * exp(sigma * z));
    for (int c = 0; c < copies; c++)
      dw_adaptive_observe(a, "w", t > 100 ? t - 100 : 0, t);
  }
}

static void test_bisection_meets_target(void **state)
{
  (void)state;
  static const uint64_t targets[] = {500, 1000, 2000, 5000};
  for (size_t k = 0; k < DW_ARRAY_SIZE(targets); k++) {
    struct dw_adaptive_options o = {.latency_target_ms = targets[k], .min_interval_ms = 100,
                                    .max_interval_ms = 15000, .horizon_ms = 300000,
                                    .min_observations = 30, .half_life = 2000};
    struct dw_adaptive a;
    dw_adaptive_init(&a, &o);
    learn(&a, 400, 4000, 0.6);
    const struct dw_readiness *m = dw_adaptive_model(&a, "w", 0);
    assert_non_null(m);
    /* At the target, and not far below it (the smallest lambda that meets it). */
    assert_true(m->plan_p50_ms <= (double)targets[k]);
    assert_true(m->plan_p50_ms >= 0.85 * (double)targets[k]);
    dw_adaptive_cleanup(&a);
  }
}

/* A model at the default target that has learned log-normal readiness (median 4 s, sigma
 * 0.5) from 400 tasks. */
static void learned_model(struct dw_adaptive *a)
{
  struct dw_adaptive_options o = {.latency_target_ms = 2000, .min_interval_ms = 250,
                                  .max_interval_ms = 15000, .horizon_ms = 300000,
                                  .min_observations = 30, .half_life = 2000};
  dw_adaptive_init(a, &o);
  learn(a, 400, 4000, 0.5);
}

static void test_price_replans(void **state)
{
  (void)state;
  struct dw_adaptive a;
  learned_model(&a);
  const struct dw_readiness *m = dw_adaptive_model(&a, "w", 0);
  assert_non_null(m);
  double calls = m->plan_calls, p50 = m->plan_p50_ms;
  uint64_t replans = a.replans;

  /* Scarce calls: the plan polls once the task is all but surely ready. */
  m = dw_adaptive_model(&a, "w", DW_PRICE_MIN_LEVEL);
  assert_true(m->plan_calls <= 1.05);
  assert_true(m->plan_calls < calls);
  assert_true(m->plan_p50_ms > p50);
  assert_int_equal(a.replans, replans); /* one DP pass at the new price, no bisection */
  assert_int_equal(a.reprices, 1);

  /* Cheap calls: more of them, less latency. */
  m = dw_adaptive_model(&a, "w", DW_PRICE_MAX_LEVEL);
  assert_true(m->plan_calls > calls);
  assert_true(m->plan_p50_ms < p50);
  assert_int_equal(a.reprices, 2);

  /* Back at 1: the plan that meets the target. */
  m = dw_adaptive_model(&a, "w", 0);
  assert_true(fabs(m->plan_calls - calls) < 1e-9);
  m = dw_adaptive_model(&a, "w", 1000); /* clamped */
  assert_int_equal(m->plan_level, DW_PRICE_MAX_LEVEL);
  dw_adaptive_cleanup(&a);
}

/* Lanes at two prices in turn (a store app: one tenant backlogged, another idle) use two plans
 * of one model: each is made once and kept, not remade on every call. */
static void test_two_prices_in_turn(void **state)
{
  (void)state;
  struct dw_adaptive a;
  learned_model(&a);
  uint64_t at_one = dw_adaptive_next_age(&a, "w", 0, 0);
  uint64_t scarce = dw_adaptive_next_age(&a, "w", 0, DW_PRICE_MIN_LEVEL);
  assert_true(scarce > at_one); /* a scarce call waits for a surer answer */
  uint64_t reprices = a.reprices, replans = a.replans;
  for (int i = 0; i < 100; i++) {
    assert_int_equal(dw_adaptive_next_age(&a, "w", 0, 0), at_one);
    assert_int_equal(dw_adaptive_next_age(&a, "w", 0, DW_PRICE_MIN_LEVEL), scarce);
  }
  assert_int_equal(a.reprices, reprices);
  assert_int_equal(a.replans, replans);
  dw_adaptive_cleanup(&a);
}

static void test_ready_age(void **state)
{
  (void)state;
  struct dw_adaptive_options o = {.latency_target_ms = 2000, .min_interval_ms = 250,
                                  .max_interval_ms = 15000, .horizon_ms = 300000,
                                  .min_observations = 30, .half_life = 2000};
  struct dw_adaptive a;
  dw_adaptive_init(&a, &o);
  assert_int_equal(dw_adaptive_ready_age(&a, "w", 0, 0.95), 0); /* no model yet */
  learn(&a, 400, 4000, 0.6);
  /* The quantiles of the log-normal (median 4 s, p95 4 s x e^(1.645 x 0.6) = 10.7 s), within
   * the histogram's resolution. */
  uint64_t p50 = dw_adaptive_ready_age(&a, "w", 0, 0.5);
  uint64_t p95 = dw_adaptive_ready_age(&a, "w", 0, 0.95);
  assert_true(p50 > 3400 && p50 < 4600);
  assert_true(p95 > 9000 && p95 < 12500);
  /* Pending later: surely ready later, and never before it was seen pending. */
  uint64_t later = dw_adaptive_ready_age(&a, "w", 8000, 0.95);
  assert_true(later > p95);
  assert_true(dw_adaptive_ready_age(&a, "w", 20000, 0.01) >= 20000);
  /* A quarter that never becomes ready leaves the order of those that do (nearly) alone. */
  for (int i = 0; i < 200; i++)
    dw_adaptive_observe_never(&a, "w", 300000);
  uint64_t p95_never = dw_adaptive_ready_age(&a, "w", 0, 0.95);
  assert_true(p95_never != UINT64_MAX);
  assert_true(p95_never > 9000 && p95_never < 12500);
  dw_adaptive_cleanup(&a);
}

static void test_price_backlog(void **state)
{
  (void)state;
  struct dw_price p;
  uint64_t now = 1000000, calls = 0;
  dw_price_init(&p, 0);
  assert_int_equal(dw_price_update(&p, now, calls, 0, 1000), 0);
  assert_true(dw_price_factor(&p) == 1);

  /* One second with tasks waiting is a burst, not a backlog. */
  now += 1000;
  calls += 17;
  assert_int_equal(dw_price_update(&p, now, calls, 40, 1000), 0);
  assert_int_equal(p.level, 0);
  /* From the second one on, the price halves every second, down to the floor. */
  for (int s = 1; s <= 20; s++) {
    now += 1000;
    calls += 17;
    dw_price_update(&p, now, calls, 40, 1000);
    assert_int_equal(p.level, DW_MAX(-s, DW_PRICE_MIN_LEVEL));
  }
  assert_true(dw_price_factor(&p) == ldexp(1, DW_PRICE_MIN_LEVEL));
  /* Within the same second: no step. */
  assert_int_equal(dw_price_update(&p, now + 999, calls, 0, 1000), 0);
  /* The backlog is gone: back up by one level a second, to 1 and no further (no idle share). */
  for (int s = 1; s <= 20; s++) {
    now += 1000;
    calls += 5;
    dw_price_update(&p, now, calls, 0, 1000);
    assert_int_equal(p.level, DW_MIN(DW_PRICE_MIN_LEVEL + s, 0));
  }
  /* Unlimited budget: never scarce. */
  for (int s = 1; s <= 5; s++) {
    now += 1000;
    dw_price_update(&p, now, calls, 40, 0);
  }
  assert_int_equal(p.level, 0);
}

/* dw_price_due says exactly when an update would do something, so the poller may skip
 * gathering the budget between steps: a skipped update changes nothing. */
static void test_price_due(void **state)
{
  (void)state;
  struct dw_price p, copy;
  uint64_t now = 5000000, calls = 0;
  dw_price_init(&p, 0);
  assert_int_equal(dw_price_due(&p, now), 1); /* not started: the first update starts it */
  dw_price_update(&p, now, calls, 0, 1000);
  for (int s = 0; s < 8; s++) { /* a backlog: the level moves every second */
    for (uint64_t dt = 0; dt < 1000; dt += 111) {
      assert_int_equal(dw_price_due(&p, now + dt), 0);
      memcpy(&copy, &p, sizeof(p));
      assert_int_equal(dw_price_update(&p, now + dt, calls + 3, 40, 1000), 0);
      assert_memory_equal(&copy, &p, sizeof(p));
    }
    now += 1000;
    calls += 17;
    assert_int_equal(dw_price_due(&p, now), 1);
    dw_price_update(&p, now, calls, 40, 1000);
  }
  assert_true(p.level < 0);
  /* Seconds with no drive at all: due as soon as the next one begins. */
  assert_int_equal(dw_price_due(&p, now + 5000), 1);
  assert_int_equal(dw_price_update(&p, now + 5000, calls, 0, 1000), 1);
  assert_int_equal(dw_price_due(&p, now + 5999), 0);
}

static void test_price_pace(void **state)
{
  (void)state;
  struct dw_price p;
  uint64_t now = 0, calls = 0;
  dw_price_init(&p, 0);
  dw_price_update(&p, now, calls, 0, 1000);
  /* 50 calls a second and no queue (the per-second limit lets that through): the minute's
   * budget would be gone in 20 s, so calls are scarce from the second second of that pace. */
  for (int s = 1; s <= 4; s++) {
    now += 1000;
    calls += 50;
    dw_price_update(&p, now, calls, 0, 1000);
  }
  assert_int_equal(p.level, -3);
  /* 16 a second (960 a minute) is within the budget: once the fast seconds have left the
   * last five, back toward 1, a level a second. */
  for (int s = 1; s <= 4; s++) {
    now += 1000;
    calls += 16;
    dw_price_update(&p, now, calls, 0, 1000);
  }
  assert_int_equal(p.level, -7);
  for (int s = 1; s <= 7; s++) {
    now += 1000;
    calls += 16;
    dw_price_update(&p, now, calls, 0, 1000);
    assert_int_equal(p.level, -7 + s);
  }
}

static void test_price_idle_share(void **state)
{
  (void)state;
  struct dw_price p;
  uint64_t now = 0, calls = 0;
  dw_price_init(&p, 0.5);
  dw_price_update(&p, now, calls, 0, 1000);
  /* 5 calls a second = 300 a minute, below half of 1,000: latency gets cheaper, up to the cap. */
  for (int s = 1; s <= 10; s++) {
    now += 1000;
    calls += 5;
    dw_price_update(&p, now, calls, 0, 1000);
    assert_int_equal(p.level, DW_MIN(s, DW_PRICE_MAX_LEVEL));
  }
  /* 15 a second: past the share within the minute, and the price returns to 1. */
  for (int s = 1; s <= 60; s++) {
    now += 1000;
    calls += 15;
    dw_price_update(&p, now, calls, 0, 1000);
  }
  assert_int_equal(p.level, 0);
  /* A long pause (nothing drove the poller): the idle minute is replayed, one step a second. */
  now += 10 * 60 * 1000;
  dw_price_update(&p, now, calls, 0, 1000);
  assert_int_equal(p.level, DW_PRICE_MAX_LEVEL);
  /* Tasks waiting for the budget are never idle: the price falls back. */
  for (int s = 1; s <= 3; s++) {
    now += 1000;
    calls += 17;
    dw_price_update(&p, now, calls, 30, 1000);
  }
  assert_true(p.level < DW_PRICE_MAX_LEVEL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matches_brute_force),
      cmocka_unit_test(test_monotonic_in_lambda),
      cmocka_unit_test(test_degenerate),
      cmocka_unit_test(test_bisection_meets_target),
      cmocka_unit_test(test_price_replans),
      cmocka_unit_test(test_two_prices_in_turn),
      cmocka_unit_test(test_ready_age),
      cmocka_unit_test(test_price_backlog),
      cmocka_unit_test(test_price_due),
      cmocka_unit_test(test_price_pace),
      cmocka_unit_test(test_price_idle_share),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
