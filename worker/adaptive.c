/* The adaptive poll plan (see include/dw/adaptive.h for the model). The poller reports, for
 * every task that became ready, the ages of its last pending answer and of its final answer;
 * this module keeps the readiness distribution per website and globally, and turns it into a
 * list of poll ages that meets the latency target with the fewest calls. */
#include "dw/adaptive.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/plan.h"

/* The readiness histogram's log-spaced buckets cover ages from 100 ms to an hour (the default
 * poll.deadline_ms is 5 minutes): younger ages share the first bucket, older ones the last. */
#define FIRST_EDGE_MS 100.0
#define LAST_EDGE_MS 3600000.0
/* A plan's latency is measured on 25 ms bins up to 120 s: fine against latency targets of
 * seconds; a median latency above 120 s is reported as 120 s. */
#define LAT_BIN_MS 25.0
#define LAT_BINS 4800 /* 120 s */
/* Fading grows the weight of new observations instead of shrinking old ones; at this gain the
 * weights are scaled back to 1 before doubles lose precision. */
#define GAIN_RESCALE 1e12
/* The latest observations kept for the EM iterations: docs/design.md, "Polling mathematics". */
#define GLOBAL_OBS 4096
#define SITE_OBS 512
/* EM (Turnbull) iterations per plan: a few sharpen the running estimate; each costs one pass
 * over the kept observations. */
#define EM_ITERATIONS 12
/* Each iteration is followed by one pass of the kernel [s, 1 - 2s, s] over the buckets (EMS,
 * smoothed EM): without it the estimate piles its mass just before the ages the plan polls at,
 * which the data cannot contradict, and the plan then believes its added latency is smaller
 * than it is (docs/design.md, "How the plan is computed"). 0.1 to 0.25 all meet the
 * benchmark's goals; 0.15 did best from a cold start. */
#define EM_SMOOTHING 0.15
/* The DP grid starts at 50 ms and ends where all but 0.1% of the tasks that become ready have
 * (a poll for the last 0.1% costs more than it saves at any sensible lambda). */
#define GRID_FIRST_MS 50.0
#define PLAN_END_TAIL 1e-3
/* lambda (calls per ms of added latency) is searched within 1e-9..100, halving the interval of
 * its log 24 times: a millionth of a decade, far below what moves a poll by a grid step. */
#define LAMBDA_LOG10_MIN (-9.0)
#define LAMBDA_LOG10_MAX 2.0
#define BISECTIONS 24
/* A replan searches within a decade of the last lambda first: 12 halvings leave 0.0005 of a
 * decade. */
#define BISECTIONS_NEAR 12
/* A model is replanned at least every 1,000 observations (half the half-life: a change
 * upstream shows in the plan within a few thousand tasks, as the fading allows), which bounds
 * the CPU of replanning to about 2 us per task (docs/design.md, "How the plan is computed"). */
#define REPLAN_MAX_OBSERVATIONS 1000
/* Websites get a plan of their own while the table is at most 3/4 full: open addressing stays
 * short there; later websites use the global plan. */
#define SITES_FILL_MAX (DW_ADAPTIVE_MAX_SITES * 3 / 4)

static double edges[DW_ADAPTIVE_BUCKETS + 1];

static void init_edges(void)
{
  if (edges[1] > 0)
    return;
  double r = pow(LAST_EDGE_MS / FIRST_EDGE_MS, 1.0 / (DW_ADAPTIVE_BUCKETS - 1));
  edges[0] = 0;
  edges[1] = FIRST_EDGE_MS;
  for (int i = 2; i <= DW_ADAPTIVE_BUCKETS; i++)
    edges[i] = edges[i - 1] * r;
}

static void readiness_init(struct dw_readiness *r, size_t obs_cap)
{
  memset(r, 0, sizeof(*r));
  r->gain = 1.0;
  r->obs_cap = obs_cap;
}

static void remember(struct dw_readiness *r, uint64_t lo, uint64_t hi)
{
  if (!r->obs) {
    r->obs = calloc(r->obs_cap, sizeof(*r->obs));
    if (!r->obs)
      return; /* the running estimate still works */
  }
  struct dw_adaptive_obs o = {(uint32_t)DW_MIN(lo, UINT32_MAX - 1),
                              hi >= UINT32_MAX ? UINT32_MAX : (uint32_t)hi};
  if (r->obs_count < r->obs_cap) {
    r->obs[(r->obs_head + r->obs_count++) % r->obs_cap] = o;
  } else {
    r->obs[r->obs_head] = o;
    r->obs_head = (r->obs_head + 1) % r->obs_cap;
  }
}

int dw_adaptive_init(struct dw_adaptive *a, const struct dw_adaptive_options *opt)
{
  init_edges();
  memset(a, 0, sizeof(*a));
  a->opt = *opt;
  if (a->opt.min_interval_ms == 0)
    a->opt.min_interval_ms = 1;
  if (a->opt.max_interval_ms < a->opt.min_interval_ms)
    a->opt.max_interval_ms = a->opt.min_interval_ms;
  if (a->opt.half_life < 1)
    a->opt.half_life = 1;
  readiness_init(&a->global, GLOBAL_OBS);
  return 0;
}

void dw_adaptive_cleanup(struct dw_adaptive *a)
{
  free(a->global.obs);
  for (size_t i = 0; a->sites && i < DW_ADAPTIVE_MAX_SITES; i++)
    free(a->sites[i].r.obs);
  free(a->sites);
  a->sites = NULL;
  a->nsites = 0;
}

static uint64_t hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* The website's slot; created when `create` and there is room. */
static struct dw_readiness *site(struct dw_adaptive *a, const char *website_id, int create)
{
  if (!website_id || !*website_id)
    return NULL;
  if (!a->sites) {
    if (!create)
      return NULL;
    a->sites = calloc(DW_ADAPTIVE_MAX_SITES, sizeof(*a->sites));
    if (!a->sites)
      return NULL;
  }
  size_t i = (size_t)(hash(website_id) % DW_ADAPTIVE_MAX_SITES);
  for (size_t n = 0; n < DW_ADAPTIVE_MAX_SITES; n++, i = (i + 1) % DW_ADAPTIVE_MAX_SITES) {
    struct dw_adaptive_site *s = &a->sites[i];
    if (s->website_id[0] == '\0') {
      if (!create || a->nsites >= SITES_FILL_MAX)
        return NULL;
      dw_strlcpy(s->website_id, website_id, sizeof(s->website_id));
      readiness_init(&s->r, SITE_OBS);
      a->nsites++;
      return &s->r;
    }
    if (strcmp(s->website_id, website_id) == 0)
      return &s->r;
  }
  return NULL;
}

static void fade(struct dw_readiness *r, double half_life)
{
  r->observations++;
  r->gain *= pow(2.0, 1.0 / half_life);
  if (r->gain > GAIN_RESCALE) {
    for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
      r->w[i] /= r->gain;
    r->never /= r->gain;
    r->gain = 1.0;
  }
}

static void add_interval(struct dw_readiness *r, double lo, double hi, double half_life)
{
  if (hi > LAST_EDGE_MS)
    hi = LAST_EDGE_MS;
  if (lo >= hi)
    lo = hi > 1 ? hi - 1 : 0;
  double span = hi - lo;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++) {
    double x = DW_MAX(lo, edges[i]), y = DW_MIN(hi, edges[i + 1]);
    if (y > x)
      r->w[i] += r->gain * (y - x) / span;
  }
  fade(r, half_life);
}

void dw_adaptive_observe(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms,
                         uint64_t hi_ms)
{
  struct dw_readiness *s = site(a, website_id, 1);
  if (hi_ms <= lo_ms)
    hi_ms = lo_ms + 1;
  add_interval(&a->global, (double)lo_ms, (double)hi_ms, a->opt.half_life);
  remember(&a->global, lo_ms, hi_ms);
  if (s) {
    add_interval(s, (double)lo_ms, (double)hi_ms, a->opt.half_life);
    remember(s, lo_ms, hi_ms);
  }
}

void dw_adaptive_observe_never(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms)
{
  (void)lo_ms; /* ready, if ever, after the deadline: beyond what the plan covers */
  struct dw_readiness *s = site(a, website_id, 1);
  a->global.never += a->global.gain;
  fade(&a->global, a->opt.half_life);
  remember(&a->global, lo_ms, UINT32_MAX);
  if (s) {
    s->never += s->gain;
    fade(s, a->opt.half_life);
    remember(s, lo_ms, UINT32_MAX);
  }
}

static double total_mass(const struct dw_readiness *r)
{
  double t = r->never;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
    t += r->w[i];
  return t;
}

/* The fraction of mass not ready by age t. */
static double survival(const struct dw_readiness *r, double total, double t)
{
  double above = total;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++) {
    if (t >= edges[i + 1]) {
      above -= r->w[i];
      continue;
    }
    if (t > edges[i])
      above -= r->w[i] * (t - edges[i]) / (edges[i + 1] - edges[i]);
    break;
  }
  return above / total;
}

/* The DP's grid (dw/plan.h): age 0, then log-spaced ages from GRID_FIRST_MS to the plan's end,
 * the age by which all but PLAN_END_TAIL of the tasks that become ready have (capped at the
 * horizon); past it the poller polls every max_interval_ms. */
static void make_grid(const struct dw_readiness *r, const struct dw_adaptive_options *o,
                      double total, struct dw_plan_grid *g)
{
  double ready = total - r->never, above = 0, end = LAST_EDGE_MS;
  for (int i = DW_ADAPTIVE_BUCKETS - 1; i >= 0; i--) {
    above += r->w[i];
    if (above > PLAN_END_TAIL * ready) {
      end = edges[i + 1];
      break;
    }
  }
  end = DW_MIN(end, (double)o->horizon_ms);
  end = DW_MAX(end, DW_MAX(2.0 * GRID_FIRST_MS, (double)o->min_interval_ms));
  double first = DW_MIN(GRID_FIRST_MS, end / 2);
  double ratio = pow(end / first, 1.0 / (DW_PLAN_GRID - 2));
  g->n = DW_PLAN_GRID;
  g->t[0] = 0;
  g->s[0] = 1;
  g->m[0] = 0;
  for (size_t k = 1; k < DW_PLAN_GRID; k++) {
    g->t[k] = k + 1 == DW_PLAN_GRID ? end : first * pow(ratio, (double)(k - 1));
    g->s[k] = survival(r, total, g->t[k]);
    /* E[T; T <= t]: the cell's mass at its middle (the histogram is uniform in a bucket). */
    g->m[k] = g->m[k - 1] + (g->s[k - 1] - g->s[k]) * (g->t[k - 1] + g->t[k]) / 2;
  }
}

/* Poll ages for this lambda; returns how many. Gaps the grid could not close (a horizon far
 * beyond max_interval_ms) get polls every max_interval_ms. */
static size_t make_plan(struct dw_plan_grid *g, const struct dw_adaptive_options *o,
                        double lambda, uint64_t *plan)
{
  uint64_t raw[DW_ADAPTIVE_MAX_PLAN];
  size_t m = dw_plan_solve(g, lambda, (double)o->min_interval_ms, (double)o->max_interval_ms,
                           raw, DW_ADAPTIVE_MAX_PLAN, NULL);
  size_t n = 0;
  uint64_t last = 0;
  for (size_t k = 0; k < m && n < DW_ADAPTIVE_MAX_PLAN; k++) {
    while (raw[k] - last > o->max_interval_ms && n < DW_ADAPTIVE_MAX_PLAN) {
      last += o->max_interval_ms;
      plan[n++] = last;
    }
    if (n < DW_ADAPTIVE_MAX_PLAN)
      plan[n++] = last = raw[k];
  }
  return n;
}

/* Median added latency and mean calls of a plan, over tasks that become ready within it. */
static void evaluate(const struct dw_readiness *r, double total, const uint64_t *plan, size_t n,
                     double *p50, double *calls)
{
  static double lat[LAT_BINS];
  memset(lat, 0, sizeof(lat));
  double mass = 0, call_mass = 0;
  size_t k = 0;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS && k < n; i++) {
    if (r->w[i] <= 0)
      continue;
    double f = r->w[i] / total / (edges[i + 1] - edges[i]);
    double x = edges[i];
    while (x < edges[i + 1] && k < n) {
      double tk = (double)plan[k];
      if (tk <= x) {
        k++;
        continue;
      }
      double y = DW_MIN(edges[i + 1], tk);
      double m = f * (y - x);
      /* Latency tk - t for t in [x, y): uniform over [tk - y, tk - x]. */
      double l0 = tk - y, l1 = tk - x;
      int b0 = (int)(l0 / LAT_BIN_MS), b1 = (int)(l1 / LAT_BIN_MS);
      if (b1 >= LAT_BINS)
        b1 = LAT_BINS - 1;
      if (b0 >= LAT_BINS)
        b0 = LAT_BINS - 1;
      for (int b = b0; b <= b1; b++)
        lat[b] += m / (b1 - b0 + 1);
      mass += m;
      call_mass += m * (double)(k + 1);
      x = y;
    }
  }
  *calls = mass > 0 ? call_mass / mass : 0;
  double acc = 0;
  *p50 = LAT_BINS * LAT_BIN_MS;
  for (int b = 0; b < LAT_BINS; b++) {
    acc += lat[b];
    if (acc >= mass / 2) {
      *p50 = (b + 0.5) * LAT_BIN_MS;
      break;
    }
  }
}

/* One pass of the kernel [s, 1 - 2s, s] over the buckets, each end reflected onto itself so
 * that no mass is lost. */
static void smooth(double *w)
{
  double out[DW_ADAPTIVE_BUCKETS];
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++) {
    double left = w[i > 0 ? i - 1 : i], right = w[i + 1 < DW_ADAPTIVE_BUCKETS ? i + 1 : i];
    out[i] = EM_SMOOTHING * (left + right) + (1 - 2 * EM_SMOOTHING) * w[i];
  }
  memcpy(w, out, sizeof(out));
}

/* Turnbull's EM for interval-censored data: each observation's unit of mass goes to the
 * buckets its interval overlaps, in proportion to the current estimate there; then the
 * estimate is smoothed; repeat. Starts from the running estimate and writes the result back
 * into it (at the current gain). */
static void refine(struct dw_readiness *r)
{
  double w[DW_ADAPTIVE_BUCKETS], next[DW_ADAPTIVE_BUCKETS], never, next_never;
  double total = total_mass(r);
  if (!r->obs || r->obs_count == 0 || total <= 0)
    return;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
    w[i] = r->w[i] / total + 1e-9; /* nothing is impossible: EM cannot revive a zero */
  never = r->never / total;
  for (int it = 0; it < EM_ITERATIONS; it++) {
    memset(next, 0, sizeof(next));
    next_never = 0;
    for (size_t k = 0; k < r->obs_count; k++) {
      const struct dw_adaptive_obs *o = &r->obs[(r->obs_head + k) % r->obs_cap];
      if (o->hi == UINT32_MAX) {
        next_never += 1;
        continue;
      }
      double lo = o->lo, hi = DW_MIN((double)o->hi, LAST_EDGE_MS);
      double denom = 0;
      int first = -1, last = -1;
      for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++) {
        if (edges[i + 1] <= lo)
          continue;
        if (edges[i] >= hi)
          break;
        if (first < 0)
          first = i;
        last = i;
        double ov = DW_MIN(hi, edges[i + 1]) - DW_MAX(lo, edges[i]);
        denom += w[i] * ov / (edges[i + 1] - edges[i]);
      }
      if (first < 0 || denom <= 0)
        continue;
      for (int i = first; i <= last; i++) {
        double ov = DW_MIN(hi, edges[i + 1]) - DW_MAX(lo, edges[i]);
        next[i] += w[i] * ov / (edges[i + 1] - edges[i]) / denom;
      }
    }
    double sum = next_never;
    for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
      sum += next[i];
    if (sum <= 0)
      return;
    for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
      w[i] = next[i] / sum;
    smooth(w);
    for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
      w[i] += 1e-9;
    never = next_never / sum;
  }
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++)
    r->w[i] = w[i] * total;
  r->never = never * total;
}

/* The plan at the current price: one DP pass at the lambda that met the target. */
static void reprice(struct dw_readiness *r, const struct dw_adaptive_options *o, int level)
{
  static struct dw_plan_grid g;
  double total = total_mass(r);
  if (total <= 0)
    return;
  make_grid(r, o, total, &g);
  r->plan_len = make_plan(&g, o, ldexp(r->lambda, level), r->plan);
  evaluate(r, total, r->plan, r->plan_len, &r->plan_p50_ms, &r->plan_calls);
  r->plan_level = level;
}

/* The plan at this level: the one in use, the one kept aside (swapped in), or one DP pass. */
static void at_level(struct dw_readiness *r, const struct dw_adaptive_options *o, int level,
                     uint64_t *reprices)
{
  if (r->plan_level == level && r->plan_len)
    return;
  static struct dw_adaptive_plan keep;
  keep.len = 0;
  if (r->plan_len) {
    memcpy(keep.age, r->plan, r->plan_len * sizeof(r->plan[0]));
    keep.len = r->plan_len;
    keep.calls = r->plan_calls;
    keep.p50_ms = r->plan_p50_ms;
    keep.level = r->plan_level;
  }
  if (r->other.len && r->other.level == level) {
    memcpy(r->plan, r->other.age, r->other.len * sizeof(r->plan[0]));
    r->plan_len = r->other.len;
    r->plan_calls = r->other.calls;
    r->plan_p50_ms = r->other.p50_ms;
    r->plan_level = level;
  } else {
    reprice(r, o, level);
    (*reprices)++;
  }
  memcpy(&r->other, &keep, sizeof(keep));
}

/* Refines the distribution, then finds by bisection the smallest lambda (the fewest calls)
 * whose plan meets the median latency target, and plans at it times the price. */
static void replan(struct dw_readiness *r, const struct dw_adaptive_options *o, int level)
{
  static struct dw_plan_grid g;
  refine(r);
  double total = total_mass(r);
  uint64_t plan[DW_ADAPTIVE_MAX_PLAN];
  double p50 = 0, calls = 0;
  if (total <= 0)
    return;
  make_grid(r, o, total, &g);
  /* Incremental: the distribution moved little since the last plan, so the search starts
   * within a decade of the last lambda, and widens to the whole range only when the answer
   * lies at that bracket's edge. */
  double lo = LAMBDA_LOG10_MIN, hi = LAMBDA_LOG10_MAX;
  int steps = BISECTIONS;
  if (r->lambda > 0) {
    lo = DW_MAX(LAMBDA_LOG10_MIN, log10(r->lambda) - 1);
    hi = DW_MIN(LAMBDA_LOG10_MAX, log10(r->lambda) + 1);
    steps = BISECTIONS_NEAR;
  }
  for (int pass = 0; pass < 2; pass++) {
    double lo0 = lo, hi0 = hi;
    for (int it = 0; it < steps; it++) {
      double mid = (lo + hi) / 2;
      size_t n = make_plan(&g, o, pow(10, mid), plan);
      evaluate(r, total, plan, n, &p50, &calls);
      if (p50 <= (double)o->latency_target_ms)
        hi = mid; /* meets the target: try fewer polls */
      else
        lo = mid;
    }
    int at_edge = (hi >= hi0 - 1e-3 && hi0 < LAMBDA_LOG10_MAX) ||
                  (lo <= lo0 + 1e-3 && lo0 > LAMBDA_LOG10_MIN);
    if (!at_edge)
      break;
    lo = LAMBDA_LOG10_MIN;
    hi = LAMBDA_LOG10_MAX;
    steps = BISECTIONS;
  }
  r->lambda = pow(10, hi);
  r->planned_at = r->observations;
  r->other.len = 0; /* made from the distribution before */
  reprice(r, o, level);
}

/* For learned(): replan at the level of the plan in use. */
#define LEVEL_IN_USE INT_MIN

/* The model used for this website, refined and replanned when due (at `level`), or NULL. */
static struct dw_readiness *learned(struct dw_adaptive *a, const char *website_id, int level)
{
  struct dw_readiness *r = site(a, website_id, 0);
  if (!r || r->observations < a->opt.min_observations)
    r = &a->global;
  if (r->observations < a->opt.min_observations)
    return NULL;
  /* Replan after 5% more observations (at least 5, at most REPLAN_MAX_OBSERVATIONS): the
   * plan follows the fading distribution, at a bounded CPU per task. */
  uint64_t since = r->observations - r->planned_at;
  if (r->plan_len == 0 ||
      since >= DW_MAX(5, DW_MIN(r->observations / 20, REPLAN_MAX_OBSERVATIONS))) {
    replan(r, &a->opt, level == LEVEL_IN_USE ? r->plan_level : level);
    a->replans++;
  }
  return r;
}

static int clamp_level(int level)
{
  return DW_MAX(DW_PRICE_MIN_LEVEL, DW_MIN(level, DW_PRICE_MAX_LEVEL));
}

const struct dw_readiness *dw_adaptive_model(struct dw_adaptive *a, const char *website_id,
                                             int level)
{
  level = clamp_level(level);
  struct dw_readiness *r = learned(a, website_id, level);
  if (r)
    at_level(r, &a->opt, level, &a->reprices);
  return r;
}

uint64_t dw_adaptive_next_age(struct dw_adaptive *a, const char *website_id, uint64_t age_ms,
                              int level)
{
  const struct dw_readiness *r = dw_adaptive_model(a, website_id, level);
  if (!r || r->plan_len == 0)
    return 0;
  /* The first planned age after now; binary search. */
  size_t lo = 0, hi = r->plan_len;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r->plan[mid] <= age_ms)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < r->plan_len)
    return DW_MAX(r->plan[lo], age_ms + a->opt.min_interval_ms);
  return age_ms + a->opt.max_interval_ms;
}

uint64_t dw_adaptive_ready_age(struct dw_adaptive *a, const char *website_id, uint64_t lo_ms,
                               double q)
{
  const struct dw_readiness *r = learned(a, website_id, LEVEL_IN_USE);
  if (!r)
    return 0;
  double total = total_mass(r);
  if (!(total > 0))
    return UINT64_MAX; /* nothing learned: no age is likelier than another */
  /* Among the tasks pending at lo_ms that become ready at all: the mass still pending at the
   * age sought, then the bucket where the running survival falls to it (uniform within a
   * bucket). */
  double ready = survival(r, total, (double)lo_ms) * total - r->never;
  if (ready <= 0)
    return UINT64_MAX;
  double want = (1 - q) * ready + r->never;
  double above = total;
  for (int i = 0; i < DW_ADAPTIVE_BUCKETS; i++) {
    if (above - r->w[i] <= want && r->w[i] > 0) {
      double t = edges[i] + (above - want) / r->w[i] * (edges[i + 1] - edges[i]);
      return DW_MAX((uint64_t)t, lo_ms);
    }
    above -= r->w[i];
  }
  return UINT64_MAX;
}

double dw_adaptive_ready_probability(struct dw_adaptive *a, const char *website_id,
                                     uint64_t lo_ms, uint64_t now_ms)
{
  const struct dw_readiness *r = learned(a, website_id, LEVEL_IN_USE);
  if (!r)
    return 0.5;
  double total = total_mass(r);
  double s_lo = survival(r, total, (double)lo_ms);
  double s_now = survival(r, total, (double)now_ms);
  return s_lo > 1e-12 ? (s_lo - s_now) / s_lo : 1.0;
}
