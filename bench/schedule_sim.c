/* dw-schedule-sim: the poll schedules on a simulated clock, without Kafka or HTTP. Tasks with
 * log-normal readiness (capped at 60 s) are polled one after another by each schedule exactly
 * as the poller would; for the adaptive plan, what each task's polls saw is fed back first over
 * a warm-up of 3,000 tasks. Prints calls per task and the added latency (poll that sees the
 * task ready minus the moment it became ready) for each schedule.
 *
 *   dw-schedule-sim [SIGMA [MEDIAN_MS [TASKS]]]      defaults 0.8 10000 5000
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dw/adaptive.h"
#include "dw/common.h"
#include "dw/schedule.h"

static double sigma = 0.8, median = 10000;

static double readiness(uint64_t *rng)
{
  double u1 = dw_rand_unit(rng), u2 = dw_rand_unit(rng);
  if (u1 < 1e-12)
    u1 = 1e-12;
  double r = median * exp(sigma * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
  return r > 60000 ? 60000 : r;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void run(struct dw_adaptive *a, const struct dw_schedule *s, int n, uint64_t *rng,
                const char *name)
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
      uint64_t next = a ? dw_adaptive_next_age(a, "w", age) : 0;
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
  if (name)
    printf("| %-34s | %5.2f | %6.2f s | %6.2f s |\n", name, calls / n, lat[n / 2] / 1000,
           lat[n * 99 / 100] / 1000);
  free(lat);
}

int main(int argc, char **argv)
{
  int n = 5000;
  uint64_t rng = 5;
  if (argc > 1)
    sigma = atof(argv[1]);
  if (argc > 2)
    median = atof(argv[2]);
  if (argc > 3)
    n = atoi(argv[3]) > 0 ? atoi(argv[3]) : n;
  struct dw_schedule expo = {.kind = DW_SCHEDULE_EXPONENTIAL, .first_delay_ms = 2000,
                             .interval_ms = 2000, .max_interval_ms = 15000, .multiplier = 1.5,
                             .jitter = 0.2};
  struct dw_schedule f1 = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = 1000, .interval_ms = 1000};
  struct dw_schedule f5 = {.kind = DW_SCHEDULE_FIXED, .first_delay_ms = 5000, .interval_ms = 5000};
  printf("log-normal readiness, median %.0f ms, sigma %.2f, %d tasks\n\n", median, sigma, n);
  printf("| schedule | calls per task | latency p50 | p99 |\n|---|---|---|---|\n");
  run(NULL, &f1, n, &rng, "fixed 1 s");
  run(NULL, &f5, n, &rng, "fixed 5 s");
  run(NULL, &expo, n, &rng, "exponential (defaults)");
  static const unsigned targets[] = {1000, 2000, 2500, 5000, 10000};
  for (size_t k = 0; k < DW_ARRAY_SIZE(targets); k++) {
    struct dw_adaptive_options o = {.latency_target_ms = targets[k], .min_interval_ms = 250,
                                    .max_interval_ms = 15000, .horizon_ms = 300000,
                                    .min_observations = 30, .half_life = 2000};
    struct dw_adaptive a;
    char name[64];
    dw_adaptive_init(&a, &o);
    run(&a, &expo, 3000, &rng, NULL); /* warm-up: learning from its own polls */
    snprintf(name, sizeof(name), "adaptive, target %u ms", targets[k]);
    run(&a, &expo, n, &rng, name);
    dw_adaptive_cleanup(&a);
  }
  return 0;
}
