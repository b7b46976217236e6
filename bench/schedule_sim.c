/* dw-schedule-sim: the poll schedules on a simulated clock, without Kafka or HTTP, measured
 * against the optimal plan for the true distribution.
 *
 * Tasks with log-normal readiness (capped at 60 s) are polled one after another by each
 * schedule exactly as the poller would; for the adaptive plan, what each task's polls saw is
 * fed back first over a warm-up of 3,000 tasks. The optimal plan is the one dw_plan_solve
 * computes from the TRUE survival function (same grid size, same poll.min_interval_ms and
 * poll.max_interval_ms as the adaptive plan), its lambda found by bisection so that its median
 * added latency equals the schedule's; its calls and latency are exact (no sampling).
 *
 *   dw-schedule-sim [SIGMA [MEDIAN_MS [TASKS]]]  one distribution, every schedule, with the
 *                                                optimal plan's calls and p99 at its median
 *   dw-schedule-sim --limit [TASKS]              the ratio table: sigma 0.5 to 0.9, median 4 s
 *                                                and 10 s, the default target (2 s)
 *   dw-schedule-sim --curve DIR [SIGMA [MEDIAN_MS]]  DIR/plan-limit.png (gnuplot): calls per
 *                                                task against median added latency
 *   dw-schedule-sim --cold [SIGMA [MEDIAN_MS]]   the adaptive plan from nothing learned:
 *                                                540 tasks arriving at 2/s (the bench's paced
 *                                                phase), eight draws, against the optimal
 *                                                plan at each draw's median
 *   dw-schedule-sim --backlog [SIGMA [MEDIAN_MS]]  tasks arriving at 30/s against 1,000
 *                                                calls/min, the price of a call at work
 *   dw-schedule-sim --optimal SIGMA MEDIAN_MS P50_MS...  the optimal plan at each median added
 *                                                latency: "P50_MS CALLS P99_MS" per line (for
 *                                                bench.py, which measures the P50s end to end)
 *
 * Defaults: SIGMA 0.8, MEDIAN_MS 10000, TASKS 5000. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dw/adaptive.h"
#include "dw/common.h"
#include "dw/limiter.h"
#include "dw/plan.h"
#include "dw/schedule.h"

#define CAP_MS 60000.0
#define MIN_INTERVAL_MS 250
#define MAX_INTERVAL_MS 15000
#define WARMUP 3000
#define READY_Q 0.95

static double sigma = 0.8, median = 10000;

static double arg_double(const char *s, double fallback)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  return errno || end == s || *end || !(v > 0) ? fallback : v;
}

static double readiness(uint64_t *rng)
{
  double u1 = dw_rand_unit(rng), u2 = dw_rand_unit(rng);
  if (u1 < 1e-12)
    u1 = 1e-12;
  double r = median * exp(sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
  return r > CAP_MS ? CAP_MS : r;
}

/* P(T <= t) of the true distribution, the cap included. */
static double cdf(double t)
{
  if (t >= CAP_MS)
    return 1;
  if (t <= 0)
    return 0;
  return 0.5 * erfc(-log(t / median) / (sigma * M_SQRT2));
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double cpu_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct figures {
  double calls, p50, p99; /* per task; ms */
};

static struct dw_adaptive_options adaptive_options(uint64_t target)
{
  struct dw_adaptive_options o = {.latency_target_ms = target, .min_interval_ms = MIN_INTERVAL_MS,
                                  .max_interval_ms = MAX_INTERVAL_MS, .horizon_ms = 300000,
                                  .min_observations = 30, .half_life = 2000};
  return o;
}

static const struct dw_schedule expo = {.kind = DW_SCHEDULE_EXPONENTIAL, .first_delay_ms = 2000,
                                        .interval_ms = 2000, .max_interval_ms = 15000,
                                        .multiplier = 1.5, .jitter = 0.2};

static struct figures run(struct dw_adaptive *a, const struct dw_schedule *s, int n, uint64_t *rng)
{
  double *lat = calloc((size_t)n, sizeof(*lat));
  double calls = 0;
  if (!lat)
    exit(1);
  for (int i = 0; i < n; i++) {
    double r = readiness(rng);
    uint64_t age = 0, pending_age = 0;
    unsigned pending = 0;
    for (;;) {
      uint64_t next = a ? dw_adaptive_next_age(a, "w", age, 0) : 0;
      age = next ? next : age + dw_schedule_next_ms(s, pending, rng);
      calls++;
      if ((double)age >= r) {
        lat[i] = (double)age - r;
        if (a)
          dw_adaptive_observe(a, "w", pending_age, age);
        break;
      }
      pending++;
      pending_age = age;
    }
  }
  qsort(lat, (size_t)n, sizeof(*lat), cmp);
  struct figures f = {calls / n, lat[n / 2], lat[n * 99 / 100]};
  free(lat);
  return f;
}

/* The adaptive plan at this target, learned from its own polls: figures after the warm-up,
 * with the CPU of one replan (the run's CPU over its replans: the polls cost next to nothing). */
static struct figures run_adaptive(uint64_t target, int n, uint64_t *rng, double *replan_ms,
                                   double *replans_per_1k)
{
  struct dw_adaptive_options o = adaptive_options(target);
  struct dw_adaptive a;
  dw_adaptive_init(&a, &o);
  run(&a, &expo, WARMUP, rng);
  uint64_t before = a.replans;
  double t0 = cpu_ms();
  struct figures f = run(&a, &expo, n, rng);
  double spent = cpu_ms() - t0;
  uint64_t k = a.replans - before;
  if (replan_ms)
    *replan_ms = k ? spent / (double)k : 0;
  if (replans_per_1k)
    *replans_per_1k = 1000.0 * (double)k / n;
  dw_adaptive_cleanup(&a);
  return f;
}

/* ---- the optimal plan for the true distribution */

static struct dw_plan_grid truth;

static void truth_grid(void)
{
  double first = 50, ratio = pow(CAP_MS / first, 1.0 / (DW_PLAN_GRID - 2));
  truth.n = DW_PLAN_GRID;
  truth.t[0] = 0;
  truth.s[0] = 1;
  truth.m[0] = 0;
  for (size_t k = 1; k < DW_PLAN_GRID; k++) {
    double t = k + 1 == DW_PLAN_GRID ? CAP_MS : first * pow(ratio, (double)(k - 1));
    truth.t[k] = t;
    truth.s[k] = 1 - cdf(t);
    /* E[T; t[k-1] < T <= t[k]] on 16 sub-cells (the point mass at the cap sits at the cap). */
    double m = 0, a = truth.t[k - 1];
    for (int j = 0; j < 16; j++) {
      double x = a + (t - a) * j / 16, y = a + (t - a) * (j + 1) / 16;
      m += (cdf(y) - cdf(x)) * (j + 1 == 16 && k + 1 == DW_PLAN_GRID ? y : (x + y) / 2);
    }
    truth.m[k] = truth.m[k - 1] + m;
  }
}

/* Exact figures of a plan (ages, the last at the cap) on the true distribution. */
static struct figures exact(const uint64_t *plan, size_t n)
{
  struct figures f = {0, 0, 0};
  double prev = 0;
  for (size_t j = 0; j < n; j++) {
    f.calls += (double)(j + 1) * (cdf((double)plan[j]) - cdf(prev));
    prev = (double)plan[j];
  }
  for (int q = 0; q < 2; q++) {
    double want = q ? 0.99 : 0.5, lo = 0, hi = CAP_MS;
    for (int it = 0; it < 50; it++) {
      double x = (lo + hi) / 2, got = 0;
      prev = 0;
      for (size_t j = 0; j < n; j++) {
        double p = (double)plan[j];
        got += cdf(p) - cdf(DW_MAX(prev, p - x));
        prev = p;
      }
      if (got >= want)
        hi = x;
      else
        lo = x;
    }
    *(q ? &f.p99 : &f.p50) = hi;
  }
  return f;
}

static struct figures optimal_at(double lambda)
{
  uint64_t plan[DW_PLAN_GRID];
  size_t n = dw_plan_solve(&truth, lambda, MIN_INTERVAL_MS, MAX_INTERVAL_MS, plan,
                           DW_ARRAY_SIZE(plan), NULL);
  return exact(plan, n);
}

/* The optimal plan whose median added latency is p50_ms (the fewest calls at that median). */
static struct figures optimal(double p50_ms)
{
  double lo = -9, hi = 2;
  for (int it = 0; it < 40; it++) {
    double mid = (lo + hi) / 2;
    if (optimal_at(pow(10, mid)).p50 <= p50_ms)
      hi = mid;
    else
      lo = mid;
  }
  return optimal_at(pow(10, hi));
}

static void row(const char *name, struct figures f)
{
  struct figures o = optimal(f.p50);
  printf("| %-26s | %5.2f | %5.2f s | %5.2f s | %5.2f | %5.2f s | %5.3f | %4.2f |\n", name,
         f.calls, f.p50 / 1000, f.p99 / 1000, o.calls, o.p99 / 1000, f.calls / o.calls,
         f.p99 / o.p99);
}

static void one(int n)
{
  uint64_t rng = 5;
  struct dw_schedule f1 = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = 1000, .interval_ms = 1000};
  struct dw_schedule f5 = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = 5000, .interval_ms = 5000};
  truth_grid();
  printf("log-normal readiness, median %.0f ms, sigma %.2f, %d tasks; optimal: the optimal "
         "plan at the same median\n\n",
         median, sigma, n);
  printf("| schedule | calls per task | latency p50 | p99 | optimal calls | optimal p99 | calls "
         "ratio | p99 ratio |\n|---|---|---|---|---|---|---|---|\n");
  row("fixed 1 s", run(NULL, &f1, n, &rng));
  row("fixed 5 s", run(NULL, &f5, n, &rng));
  row("exponential (defaults)", run(NULL, &expo, n, &rng));
  static const unsigned targets[] = {1000, 2000, 2500, 5000, 10000};
  double cpu = 0, rate = 0;
  for (size_t k = 0; k < DW_ARRAY_SIZE(targets); k++) {
    char name[64];
    snprintf(name, sizeof(name), "adaptive, target %u ms", targets[k]);
    row(name, run_adaptive(targets[k], n, &rng, &cpu, &rate));
  }
  printf("\none replan (bisection, %d grid points): %.2f ms of CPU; %.1f replans per 1,000 "
         "tasks (target %u ms)\n",
         DW_PLAN_GRID, cpu, rate, targets[DW_ARRAY_SIZE(targets) - 1]);
}

static void limit(int n)
{
  static const double medians[] = {4000, 10000};
  static const double sigmas[] = {0.5, 0.6, 0.7, 0.8, 0.9};
  struct dw_schedule f5 = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = 5000, .interval_ms = 5000};
  printf("adaptive (default target 2000 ms) and fixed 5 s against the optimal plan at the same "
         "median, %d tasks each\n\n",
         n);
  printf("| median | sigma | adaptive calls | p50 | p99 | optimal calls | optimal p99 | calls "
         "ratio | p99 ratio | fixed 5 s calls ratio |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < DW_ARRAY_SIZE(medians); i++) {
    for (size_t j = 0; j < DW_ARRAY_SIZE(sigmas); j++) {
      uint64_t rng = 5;
      median = medians[i];
      sigma = sigmas[j];
      truth_grid();
      struct figures f = run_adaptive(2000, n, &rng, NULL, NULL);
      struct figures o = optimal(f.p50);
      struct figures x = run(NULL, &f5, n, &rng);
      printf("| %.0f s | %.1f | %.3f | %.2f s | %.2f s | %.3f | %.2f s | %.3f | %.2f | %.3f |\n",
             median / 1000, sigma, f.calls, f.p50 / 1000, f.p99 / 1000, o.calls, o.p99 / 1000,
             f.calls / o.calls, f.p99 / o.p99, x.calls / optimal(x.p50).calls);
    }
  }
}

static int curve(const char *dir)
{
  char dat[4096], gp[4096], png[4096];
  snprintf(dat, sizeof(dat), "%s/plan-limit.dat", dir);
  snprintf(gp, sizeof(gp), "%s/plan-limit.gp", dir);
  snprintf(png, sizeof(png), "%s/plan-limit.png", dir);
  FILE *f = fopen(dat, "w");
  if (!f) {
    perror(dat);
    return 1;
  }
  uint64_t rng = 5;
  truth_grid();
  /* Blocks (gnuplot index): 0 the limit, 1 adaptive, 2 fixed, 3 exponential; p50 s, calls. */
  for (double l = -6; l <= -1.5; l += 0.125) {
    struct figures o = optimal_at(pow(10, l));
    fprintf(f, "%.4f %.4f\n", o.p50 / 1000, o.calls);
  }
  fprintf(f, "\n\n");
  static const unsigned targets[] = {750, 1000, 1500, 2000, 2500, 3000, 4000, 5000};
  for (size_t k = 0; k < DW_ARRAY_SIZE(targets); k++) {
    struct figures a = run_adaptive(targets[k], 3000, &rng, NULL, NULL);
    fprintf(f, "%.4f %.4f\n", a.p50 / 1000, a.calls);
  }
  fprintf(f, "\n\n");
  static const unsigned fixed[] = {1000, 2000, 3000, 5000, 8000};
  for (size_t k = 0; k < DW_ARRAY_SIZE(fixed); k++) {
    struct dw_schedule s = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = fixed[k],
                            .interval_ms = fixed[k]};
    struct figures x = run(NULL, &s, 3000, &rng);
    fprintf(f, "%.4f %.4f\n", x.p50 / 1000, x.calls);
  }
  fprintf(f, "\n\n");
  struct figures e = run(NULL, &expo, 3000, &rng);
  fprintf(f, "%.4f %.4f\n", e.p50 / 1000, e.calls);
  fclose(f);
  f = fopen(gp, "w");
  if (!f) {
    perror(gp);
    return 1;
  }
  fprintf(f,
          "set terminal pngcairo size 900,600 font 'Sans,11'\nset output '%s'\n"
          "set title 'Calls per task against median added latency (log-normal, median %.0f s, "
          "sigma %.1f)'\n"
          "set xlabel 'median added latency (s)'\nset ylabel 'calls per task'\nset grid\n"
          "set logscale y\nset key top right\n"
          "plot '%s' index 0 with lines lw 2 title 'optimal plan (the limit)', \\\n"
          "     '' index 1 with linespoints pt 7 title 'adaptive (targets 0.75-5 s)', \\\n"
          "     '' index 2 with points pt 5 ps 1.5 title 'fixed 1, 2, 3, 5, 8 s', \\\n"
          "     '' index 3 with points pt 9 ps 2 title 'exponential (defaults)'\n",
          png, median / 1000, sigma, dat);
  fclose(f);
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "gnuplot '%s'", gp);
  if (system(cmd) != 0) {
    fprintf(stderr, "gnuplot failed (%s)\n", gp);
    return 1;
  }
  remove(dat);
  remove(gp);
  printf("%s\n", png);
  return 0;
}

/* ---- the backlog: arrivals faster than the budget, on a simulated clock in 10 ms steps */

struct task {
  double ready;        /* age at which it becomes ready */
  uint64_t created;    /* ms */
  uint64_t due;        /* ms */
  uint64_t pending_age;
  unsigned pending;
  double priority;
};

/* A binary heap of task indices, by key (due: smallest first; ready: priority, largest). */
struct heap {
  size_t *v, n, cap;
  const struct task *tasks;
  int by_due;
};

static int before(const struct heap *h, size_t a, size_t b)
{
  const struct task *x = &h->tasks[a], *y = &h->tasks[b];
  if (h->by_due)
    return x->due < y->due || (x->due == y->due && a < b);
  return x->priority > y->priority || (x->priority == y->priority && a < b);
}

static void heap_push(struct heap *h, size_t t)
{
  size_t i = h->n++;
  while (i > 0 && before(h, t, h->v[(i - 1) / 2])) {
    h->v[i] = h->v[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->v[i] = t;
}

static size_t heap_pop(struct heap *h)
{
  size_t top = h->v[0], last = h->v[--h->n], i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n)
      break;
    if (c + 1 < h->n && before(h, h->v[c + 1], h->v[c]))
      c++;
    if (!before(h, h->v[c], last))
      break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n)
    h->v[i] = last;
  return top;
}

/* The adaptive plan at the default target from a cold start, as a new worker meets it: tasks
 * arrive at 2/s and are polled side by side (the bench's paced phase), so what the plan learns
 * comes from the tasks finished so far; the fixed fallback until the first observations. */
static struct figures cold_draw(uint64_t seed)
{
  enum { TASKS = 540, ARRIVAL_MS = 500 };
  struct task tasks[TASKS];
  size_t v[TASKS];
  struct heap due = {v, 0, TASKS, tasks, 1};
  double lat[TASKS], calls = 0;
  size_t done = 0;
  uint64_t rng = seed;
  struct dw_adaptive_options o = adaptive_options(2000);
  struct dw_adaptive a;
  dw_adaptive_init(&a, &o);
  memset(tasks, 0, sizeof(tasks));
  for (size_t i = 0; i < TASKS; i++) {
    tasks[i].ready = readiness(&rng);
    tasks[i].created = i * ARRIVAL_MS;
  }
  size_t arrived = 0;
  while (done < TASKS) {
    /* The next event: an arrival or a due poll, whichever comes first. */
    if (arrived < TASKS && (!due.n || tasks[arrived].created <= tasks[due.v[0]].due)) {
      struct task *t = &tasks[arrived];
      uint64_t next = dw_adaptive_next_age(&a, "w", 0, 0);
      t->due = t->created + (next ? next : dw_schedule_next_ms(&expo, 0, &rng));
      heap_push(&due, arrived++);
      continue;
    }
    size_t i = heap_pop(&due);
    struct task *t = &tasks[i];
    uint64_t age = t->due - t->created;
    calls++;
    if ((double)age >= t->ready) {
      lat[done++] = (double)age - t->ready;
      dw_adaptive_observe(&a, "w", t->pending_age, age);
      continue;
    }
    t->pending++;
    t->pending_age = age;
    uint64_t next = dw_adaptive_next_age(&a, "w", age, 0);
    t->due = t->created + (next ? next : age + dw_schedule_next_ms(&expo, t->pending, &rng));
    heap_push(&due, i);
  }
  dw_adaptive_cleanup(&a);
  qsort(lat, TASKS, sizeof(*lat), cmp);
  struct figures f = {calls / TASKS, lat[TASKS / 2], lat[TASKS * 99 / 100]};
  return f;
}

static void cold(void)
{
  enum { DRAWS = 8 };
  truth_grid();
  printf("adaptive (default target 2000 ms) from nothing learned: 540 tasks arriving at 2/s, "
         "log-normal readiness (median %.0f ms, sigma %.2f), against the optimal plan at the "
         "same median\n\n",
         median, sigma);
  printf("| draw | calls per task | p50 | p99 | optimal calls | optimal p99 | calls ratio | p99 "
         "ratio |\n|---|---|---|---|---|---|---|---|\n");
  double sum_calls = 0, sum_ratio = 0, sum_p99_ratio = 0, sum_p50 = 0;
  for (uint64_t d = 1; d <= DRAWS; d++) {
    struct figures f = cold_draw(d);
    struct figures opt = optimal(f.p50);
    printf("| %llu | %.2f | %.2f s | %.2f s | %.2f | %.2f s | %.3f | %.2f |\n",
           (unsigned long long)d, f.calls, f.p50 / 1000, f.p99 / 1000, opt.calls,
           opt.p99 / 1000, f.calls / opt.calls, f.p99 / opt.p99);
    sum_calls += f.calls;
    sum_p50 += f.p50;
    sum_ratio += f.calls / opt.calls;
    sum_p99_ratio += f.p99 / opt.p99;
  }
  printf("| mean | %.2f | %.2f s | | | | %.3f | %.2f |\n", sum_calls / DRAWS,
         sum_p50 / DRAWS / 1000, sum_ratio / DRAWS, sum_p99_ratio / DRAWS);
}

static void backlog(void)
{
  const uint64_t duration = 600000, step = 10;
  const double arrivals_per_s = 30;
  size_t max_tasks = (size_t)(arrivals_per_s * (double)duration / 1000) + 1;
  struct task *tasks = calloc(max_tasks, sizeof(*tasks));
  size_t *v1 = calloc(max_tasks, sizeof(size_t)), *v2 = calloc(max_tasks, sizeof(size_t));
  if (!tasks || !v1 || !v2)
    exit(1);
  struct heap waiting = {v1, 0, max_tasks, tasks, 1}, ready = {v2, 0, max_tasks, tasks, 0};
  uint64_t rng = 5;
  struct dw_adaptive_options o = adaptive_options(2000);
  struct dw_adaptive a;
  struct dw_limiter l;
  struct dw_price price;
  dw_adaptive_init(&a, &o);
  run(&a, &expo, WARMUP, &rng); /* learned before the backlog starts */
  dw_limiter_init(&l, 50, 1000);
  dw_price_init(&price, 0);
  size_t created = 0, resolved = 0, resolved_after_1min = 0;
  uint64_t calls = 0, calls_after_1min = 0;
  int min_level = 0;
  for (uint64_t now = 0; now < duration; now += step) {
    while ((double)created < arrivals_per_s * (double)now / 1000 && created < max_tasks) {
      struct task *t = &tasks[created];
      t->ready = readiness(&rng);
      t->created = now;
      uint64_t next = dw_adaptive_next_age(&a, "w", 0, price.level);
      t->due = now + (next ? next : 2000);
      heap_push(&waiting, created++);
    }
    while (waiting.n && tasks[waiting.v[0]].due <= now) {
      size_t i = heap_pop(&waiting);
      struct task *t = &tasks[i];
      /* As the poller orders its ready queue: the task surely ready first. */
      uint64_t sure = dw_adaptive_ready_age(&a, "w", t->pending_age, READY_Q);
      t->priority = sure == UINT64_MAX ? -1e300 : -(double)(t->created + sure);
      heap_push(&ready, i);
    }
    dw_price_update(&price, now, calls, ready.n, 1000);
    min_level = DW_MIN(min_level, price.level);
    while (ready.n && dw_limiter_acquire(&l, now) == 0) {
      size_t i = heap_pop(&ready);
      struct task *t = &tasks[i];
      uint64_t age = now - t->created;
      calls++;
      if (now >= 60000)
        calls_after_1min++;
      if ((double)age >= t->ready) {
        resolved++;
        resolved_after_1min += now >= 60000;
        dw_adaptive_observe(&a, "w", t->pending_age, age);
        continue;
      }
      t->pending++;
      t->pending_age = age;
      uint64_t next = dw_adaptive_next_age(&a, "w", age, price.level);
      t->due = next > age ? t->created + next : now + MAX_INTERVAL_MS;
      heap_push(&waiting, i);
    }
  }
  double minutes = (double)(duration - 60000) / 60000;
  printf("backlog: log-normal readiness (median %.0f ms, sigma %.2f), %.0f tasks/s for %.0f s "
         "against 50/s and 1,000/min, target 2000 ms\n\n",
         median, sigma, arrivals_per_s, (double)duration / 1000);
  printf("| tasks | resolved | calls | calls per resolved task | after the first minute | "
         "budget used (after the first minute) | lowest price | replans | replans at a new "
         "price |\n|---|---|---|---|---|---|---|---|---|\n");
  printf("| %zu | %zu | %llu | %.3f | %.3f | %.1f%% | 2^%d | %llu | %llu |\n", created, resolved,
         (unsigned long long)calls, (double)calls / (double)resolved,
         (double)calls_after_1min / (double)resolved_after_1min,
         100.0 * (double)calls_after_1min / (1000.0 * minutes), min_level,
         (unsigned long long)a.replans, (unsigned long long)a.reprices);
  dw_limiter_cleanup(&l);
  dw_adaptive_cleanup(&a);
  free(tasks);
  free(v1);
  free(v2);
}

int main(int argc, char **argv)
{
  int n = 5000;
  if (argc > 1 && strcmp(argv[1], "--limit") == 0) {
    if (argc > 2)
      n = (int)arg_double(argv[2], n);
    limit(n);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "--curve") == 0) {
    if (argc > 3)
      sigma = arg_double(argv[3], sigma);
    if (argc > 4)
      median = arg_double(argv[4], median);
    return curve(argv[2]);
  }
  if (argc > 1 && (strcmp(argv[1], "--cold") == 0 || strcmp(argv[1], "--backlog") == 0)) {
    if (argc > 2)
      sigma = arg_double(argv[2], sigma);
    if (argc > 3)
      median = arg_double(argv[3], median);
    if (strcmp(argv[1], "--cold") == 0)
      cold();
    else
      backlog();
    return 0;
  }
  if (argc > 4 && strcmp(argv[1], "--optimal") == 0) {
    sigma = arg_double(argv[2], sigma);
    median = arg_double(argv[3], median);
    truth_grid();
    for (int k = 4; k < argc; k++) {
      double p50 = arg_double(argv[k], 0);
      if (!(p50 > 0)) {
        fprintf(stderr, "--optimal: P50_MS must be a positive number of ms, not \"%s\"\n", argv[k]);
        return 2;
      }
      struct figures o = optimal(p50);
      printf("%.1f %.4f %.1f\n", p50, o.calls, o.p99);
    }
    return 0;
  }
  if (argc > 1)
    sigma = arg_double(argv[1], sigma);
  if (argc > 2)
    median = arg_double(argv[2], median);
  if (argc > 3)
    n = (int)arg_double(argv[3], n);
  one(n);
  return 0;
}
