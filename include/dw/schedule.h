/* The poll schedule: when to ask the API again. Pure arithmetic on milliseconds. */
#ifndef DW_SCHEDULE_H
#define DW_SCHEDULE_H

#include <stdint.h>

enum dw_schedule_kind { DW_SCHEDULE_EXPONENTIAL = 0, DW_SCHEDULE_FIXED };

struct dw_schedule {
  enum dw_schedule_kind kind;
  uint64_t first_delay_ms;   /* before the first poll */
  uint64_t interval_ms;      /* before the second poll */
  uint64_t max_interval_ms;  /* exponential: the cap (0 = none) */
  double multiplier;         /* exponential: growth per poll (>= 1) */
  double jitter;             /* 0..1: each delay is scaled by a uniform factor in 1 +/- jitter */
  uint64_t retry_initial_ms; /* after the first retryable error */
  uint64_t retry_max_ms;     /* the retry cap (0 = none) */
};

/* Delay before the next poll, given how many pending answers the task has had (0 = no poll
 * yet). Fixed: first_delay, then interval. Exponential: first_delay, then interval *
 * multiplier^(n-1) capped at max_interval. Jitter applied to all but a zero delay; rng is a
 * dw_rand state. */
uint64_t dw_schedule_next_ms(const struct dw_schedule *s, unsigned pending_answers,
                             uint64_t *rng);

/* Delay after the n-th consecutive retryable failure (n >= 1): retry_initial * 2^(n-1) capped
 * at retry_max, with "full jitter" between half and all of it. */
uint64_t dw_schedule_retry_ms(const struct dw_schedule *s, unsigned failures, uint64_t *rng);

#endif
