/* The poll schedule decides when a task asks the API again: after a pending answer (a fixed or
 * exponentially growing interval) and after a retryable failure (exponential backoff with full
 * jitter). Jitter spreads the polls of tasks created together so that they do not hit the rate
 * limiter in bursts. Pure arithmetic on milliseconds; the caller owns the random state.
 *
 * A cap of 0 (max_interval_ms, retry_max_ms) means no cap; a cap below the starting delay wins
 * over it. Every result is clamped to what a uint64_t holds. */
#include "dw/schedule.h"

#include "dw/common.h"

#include <stddef.h>

/* 2^64 as a double: the first value that does not fit a uint64_t. */
#define TWO_POW_64 18446744073709551616.0

static uint64_t to_ms(double d)
{
  if (!(d > 0.0)) /* also NaN */
    return 0;
  d += 0.5; /* round to nearest */
  if (d >= TWO_POW_64)
    return UINT64_MAX;
  return (uint64_t)d;
}

/* Scales base by a factor drawn uniformly from [1 - jitter, 1 + jitter]. A nonzero delay stays
 * at least 1 ms: a zero would mean "now" and undo the spreading. */
static uint64_t apply_jitter(uint64_t base, double jitter, uint64_t *rng)
{
  double factor;
  uint64_t v;

  if (base == 0)
    return 0;
  if (!(jitter > 0.0) || !rng) /* also NaN */
    return base;
  if (jitter > 1.0)
    jitter = 1.0;
  factor = 1.0 - jitter + 2.0 * jitter * dw_rand_unit(rng);
  v = to_ms((double)base * factor);
  return v < 1 ? 1 : v;
}

uint64_t dw_schedule_next_ms(const struct dw_schedule *s, unsigned pending_answers,
                             uint64_t *rng)
{
  uint64_t base;

  if (!s)
    return 0;
  if (pending_answers == 0) {
    base = s->first_delay_ms;
  } else if (s->kind == DW_SCHEDULE_FIXED) {
    base = s->interval_ms;
  } else {
    double cap = s->max_interval_ms ? (double)s->max_interval_ms : TWO_POW_64;
    double d = (double)s->interval_ms;
    double m = s->multiplier;

    /* interval * multiplier^(n-1), stopping as soon as the cap is reached: at most a few
     * dozen steps for any multiplier > 1, none for a multiplier of 1 (or a bad one). */
    if (m > 1.0)
      for (unsigned i = 1; i < pending_answers && d < cap; i++)
        d *= m;
    if (d > cap)
      d = cap;
    base = to_ms(d);
  }
  return apply_jitter(base, s->jitter, rng);
}

uint64_t dw_schedule_retry_ms(const struct dw_schedule *s, unsigned failures, uint64_t *rng)
{
  uint64_t cap, exp, lo, span, off;
  unsigned shift;

  if (!s)
    return 0;
  cap = s->retry_max_ms ? s->retry_max_ms : UINT64_MAX;
  shift = failures > 0 ? failures - 1 : 0;
  /* retry_initial << shift without overflow: past 63 bits, or when the shift would push bits
   * out, the cap applies. */
  if (s->retry_initial_ms == 0)
    exp = 0;
  else if (shift >= 64 || s->retry_initial_ms > (UINT64_MAX >> shift))
    exp = cap;
  else
    exp = DW_MIN(s->retry_initial_ms << shift, cap);
  if (exp == 0 || !rng)
    return exp;

  /* "Full jitter" over the upper half: uniform in [exp/2, exp], both ends included. */
  lo = exp / 2;
  span = exp - lo; /* <= 2^63, so span + 1 and the product below fit */
  off = (uint64_t)(dw_rand_unit(rng) * (double)(span + 1));
  if (off > span) /* double rounding near the top of a huge span */
    off = span;
  return DW_MAX(lo + off, (uint64_t)1);
}
