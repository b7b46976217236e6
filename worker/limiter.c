/* The rate limiter stands between the poll schedule and the HTTP client: one per app and
 * tenant, it keeps the worker inside the API's limits (tier 4: 50/s and 1000/min) so that 429s
 * stay rare, and honours the block a 429 asks for. It is a sliding log: the times of the last
 * max(per_second, per_minute) calls in a ring, oldest at head. Because the log is in time
 * order, "per_second calls already in the last second" is the same as "the per_second-th
 * newest call is less than 1000 ms old", one index away; so each call is O(1), and no
 * alignment of the server's windows can count more calls than the limits. */
#include "dw/limiter.h"

#include "dw/common.h"

#include <stdlib.h>
#include <string.h>

#define SECOND_MS 1000u
#define MINUTE_MS 60000u

int dw_limiter_init(struct dw_limiter *l, uint32_t per_second, uint32_t per_minute)
{
  size_t cap;

  if (!l)
    return DW_EINVAL;
  memset(l, 0, sizeof(*l));
  l->per_second = l->max_per_second = l->good_per_second = per_second;
  l->per_minute = l->max_per_minute = l->good_per_minute = per_minute;
  l->conf_per_second = per_second;
  l->conf_per_minute = per_minute;
  cap = DW_MAX(per_second, per_minute);
  if (cap == 0) /* unlimited: no log at all */
    return 0;
  l->log = calloc(cap, sizeof(*l->log));
  if (!l->log)
    return DW_ENOMEM;
  l->cap = cap;
  return 0;
}

void dw_limiter_cleanup(struct dw_limiter *l)
{
  if (!l)
    return;
  free(l->log);
  memset(l, 0, sizeof(*l));
}

/* The k-th newest call time (k >= 1), or 0 with *found = 0 when fewer than k are logged. */
static uint64_t kth_newest(const struct dw_limiter *l, size_t k, int *found)
{
  size_t i;

  *found = k >= 1 && k <= l->count;
  if (!*found)
    return 0;
  i = l->head + (l->count - k);
  if (i >= l->cap)
    i -= l->cap;
  return l->log[i];
}

/* How long until the call at time t leaves a window of window_ms ending at now: a call at t
 * counts while t > now - window. */
static uint64_t wait_for(uint64_t t, uint64_t window_ms, uint64_t now_ms)
{
  if (now_ms >= t)
    return now_ms - t >= window_ms ? 0 : window_ms - (now_ms - t);
  /* t is in our future (the log is kept ordered, see below): wait for it and the window. */
  return (t - now_ms) > UINT64_MAX - window_ms ? UINT64_MAX : (t - now_ms) + window_ms;
}

static uint64_t window_wait(const struct dw_limiter *l, uint32_t limit, uint64_t window_ms,
                            uint64_t now_ms)
{
  int found;
  uint64_t t;

  if (limit == 0)
    return 0;
  t = kth_newest(l, limit, &found);
  return found ? wait_for(t, window_ms, now_ms) : 0;
}

uint64_t dw_limiter_acquire(struct dw_limiter *l, uint64_t now_ms)
{
  uint64_t wait, newest;
  size_t tail;
  int found;

  if (!l)
    return 0;
  if (now_ms < l->blocked_until_ms)
    return l->blocked_until_ms - now_ms;
  wait = DW_MAX(window_wait(l, l->per_second, SECOND_MS + l->slack_ms, now_ms),
                window_wait(l, l->per_minute, MINUTE_MS + l->slack_ms, now_ms));
  if (wait > 0)
    return wait;

  if (l->cap > 0) {
    /* A clock that steps back must not unorder the log: record no earlier than the newest. */
    newest = kth_newest(l, 1, &found);
    if (found && newest > now_ms)
      now_ms = newest;
    if (l->count < l->cap) {
      tail = l->head + l->count;
      if (tail >= l->cap)
        tail -= l->cap;
      l->log[tail] = now_ms;
      l->count++;
    } else {
      l->log[l->head] = now_ms; /* the oldest falls out */
      l->head = l->head + 1 == l->cap ? 0 : l->head + 1;
    }
  }
  l->calls_total++;
  return 0;
}

uint64_t dw_limiter_reset_ms(int64_t reset_s)
{
  if (reset_s <= 0)
    return SECOND_MS;
  if ((uint64_t)reset_s >= DW_LIMITER_RESET_MAX_MS / SECOND_MS)
    return DW_LIMITER_RESET_MAX_MS;
  return (uint64_t)reset_s * SECOND_MS;
}

void dw_limiter_block(struct dw_limiter *l, uint64_t now_ms, uint64_t reset_ms)
{
  uint64_t until;

  if (!l)
    return;
  /* Clamped here too, so that no caller can stop the worker with one answer. */
  reset_ms = DW_MIN(reset_ms, (uint64_t)DW_LIMITER_RESET_MAX_MS);
  until = reset_ms > UINT64_MAX - now_ms ? UINT64_MAX : now_ms + reset_ms;
  if (until > l->blocked_until_ms)
    l->blocked_until_ms = until;
  if (until > l->api_blocked_until_ms)
    l->api_blocked_until_ms = until;
  if (!l->refusing) {
    l->refusing = 1;
    l->refused_since_ms = now_ms;
  }
  l->refused_last_ms = now_ms;
  l->blocks_total++;
}

uint64_t dw_limiter_held_ms(const struct dw_limiter *l, uint64_t now_ms)
{
  return l && now_ms < l->api_blocked_until_ms ? l->api_blocked_until_ms - now_ms : 0;
}

uint64_t dw_limiter_refused_ms(const struct dw_limiter *l)
{
  return l && l->refusing && l->refused_last_ms > l->refused_since_ms
             ? l->refused_last_ms - l->refused_since_ms
             : 0;
}

/* A 429 the limits did not foresee: the server may count arrivals later than slack_ms allowed
 * for. Widening the windows by half costs little (with 250 ms, 0.4% of the minute window) and
 * three 429s reach the ceiling. */
#define SLACK_GROWTH_NUM 3
#define SLACK_GROWTH_DEN 2

#define DECREASE_FACTOR 0.7
/* One 429 of the 1-second window cuts its limit at most to half of the 30% cut, however few
 * calls went through in it: a worker that was nearly idle (a fresh assignment) learns little
 * from them, and at a few calls a second a storm of 429s, which only calls use up, would
 * outlast the tasks' deadlines; a wrong step costs a second here, not a blocked minute as in
 * the minute window, which still takes what got through at once. */
#define SHARE_CUT_FLOOR 2
#define DECREASE_SPACING_MS 1000
#define INCREASE_AFTER_MS 5000
#define SLOW_START_STEP_MS 1000
#define GOOD_AFTER_MS 30000 /* limits that held this long without a 429 are "good" */
/* Slow start begins at a quarter of the limits and doubles every SLOW_START_STEP_MS: replicas
 * starting together meet the shared budget with a few 429s, one alone is at full rate after
 * two steps. */
#define SLOW_START_DIVISOR 4
/* 90% of a level: what to keep of the calls that got through a window before its 429 (a little
 * less than the wall just hit), and where a climb back stops doubling below the last level that
 * held, for the same reason. */
#define BELOW_WALL(x) ((x) * 9 / 10)
/* Past that, each step adds 1/50 (2%) of the configured limit: from 90% back to the limit in
 * five steps of INCREASE_AFTER_MS, probing gently for more. */
#define PROBE_STEP_DIVISOR 50

static uint32_t scaled(uint32_t v, double f)
{
  double x = (double)v * f;
  return x < 1 ? 1 : (uint32_t)x;
}

void dw_limiter_slow_start(struct dw_limiter *l, uint64_t now_ms)
{
  /* Replicas starting together then find the shared budget with a few 429s instead of a
   * second of them; one alone reaches its full rate after two seconds. */
  if (l->per_second)
    l->per_second = DW_MAX(1, l->max_per_second / SLOW_START_DIVISOR);
  if (l->per_minute)
    l->per_minute = DW_MAX(1, l->max_per_minute / SLOW_START_DIVISOR);
  l->slow_start = 1;
  l->last_increase_ms = now_ms;
}

/* Calls logged in the window of window_ms ending at now (newest first, so it stops early). */
static uint32_t calls_since(const struct dw_limiter *l, uint64_t window_ms, uint64_t now_ms)
{
  uint32_t n = 0;
  int found;
  for (size_t k = 1; k <= l->count; k++) {
    uint64_t t = kth_newest(l, k, &found);
    if (!found || t + window_ms <= now_ms)
      break;
    n++;
  }
  return n;
}

uint32_t dw_limiter_calls_in(const struct dw_limiter *l, uint64_t window_ms, uint64_t now_ms)
{
  return l ? calls_since(l, window_ms, now_ms) : 0;
}

/* A window whose calls tell our share of the budget: the first 429 of a run of them, so no
 * earlier one held us back (a storm of 429s leaves only a trickle of calls in each window, and
 * our own cut limit, which say nothing about the budget). */
static int window_was_open(const struct dw_limiter *l, uint64_t window_ms, uint64_t now_ms)
{
  if (window_ms == MINUTE_MS) /* a 1-second block barely dents a minute; a minute block does */
    return !l->minute_decreases || now_ms - l->last_minute_decrease_ms >= window_ms + SECOND_MS;
  return !l->decreases_total || now_ms - l->last_decrease_ms >= INCREASE_AFTER_MS + window_ms;
}

void dw_limiter_on_rejected(struct dw_limiter *l, uint64_t now_ms, uint64_t reset_ms)
{
  if (!l)
    return;
  /* Where the server's full window ends: a fixed window's edge, learnt from its reset. */
  l->window_end_ms = now_ms + DW_MIN(reset_ms, (uint64_t)DW_LIMITER_RESET_MAX_MS);
  if (l->decreases_total && now_ms - l->last_decrease_ms < DECREASE_SPACING_MS)
    return;
  if (l->slack_ms) /* 0: the caller wants exact windows */
    l->slack_ms = DW_MIN(DW_MAX(l->slack_ms, (uint64_t)DW_LIMITER_SLACK_MAX_MS),
                         l->slack_ms * SLACK_GROWTH_NUM / SLACK_GROWTH_DEN);
  /* A reset longer than a second means the minute window is full. What we got through in that
   * window before the wall is our share of it: take a little less than that at once, rather
   * than finding it 30% at a time, one 429 and one blocked minute per step. That share is
   * also the level to come back to quickly after a run of 429s. */
  int minute = reset_ms > SECOND_MS;
  if (l->per_second && !minute) { /* only the window that was full: the other one was not */
    l->per_second = scaled(l->per_second, DECREASE_FACTOR);
    if (!minute && window_was_open(l, SECOND_MS, now_ms)) {
      uint32_t share = DW_MAX(1, BELOW_WALL(calls_since(l, SECOND_MS, now_ms)));
      /* A worker that was nearly idle learns little from its few calls: come back at least
       * to the 30% cut. */
      l->good_per_second = DW_MIN(l->good_per_second, DW_MAX(share, l->per_second));
      l->per_second = DW_MIN(l->per_second, DW_MAX(share, l->per_second / SHARE_CUT_FLOOR));
    }
  }
  if (l->per_minute && minute) {
    l->per_minute = scaled(l->per_minute, DECREASE_FACTOR);
    if (minute && window_was_open(l, MINUTE_MS, now_ms)) {
      uint32_t share = DW_MAX(1, BELOW_WALL(calls_since(l, MINUTE_MS, now_ms)));
      l->good_per_minute = DW_MIN(l->good_per_minute, DW_MAX(share, l->per_minute));
      l->per_minute = DW_MIN(l->per_minute, share);
    }
  }
  if (minute) {
    l->last_minute_decrease_ms = now_ms;
    l->minute_decreases++;
  }
  l->last_decrease_ms = now_ms;
  l->last_increase_ms = now_ms;
  l->decreases_total++;
  l->slow_start = 0;
}

/* One step back up after INCREASE_AFTER_MS without a 429: half the last level that held at
 * once, then doubling every second up to 90% of it, so a storm of 429s costs seconds rather than minutes; then 2% of
 * the configured limit every 5 s, probing gently for more. */
static uint32_t climb(uint32_t cur, uint32_t good, uint32_t max, uint64_t since_ms, int *stepped)
{
  if (cur == 0 || cur >= max)
    return cur;
  if (cur < BELOW_WALL(good)) { /* half of it at once, then doubling */
    *stepped = 1;
    return DW_MIN(BELOW_WALL(good), DW_MAX(cur * 2, good / 2));
  }
  if (since_ms < INCREASE_AFTER_MS)
    return cur;
  *stepped = 1;
  return DW_MIN(max, cur + DW_MAX(1, max / PROBE_STEP_DIVISOR));
}

void dw_limiter_on_accepted(struct dw_limiter *l, uint64_t now_ms)
{
  if (l)
    l->refusing = 0;
  if (l && l->slow_start) {
    if (now_ms - l->last_increase_ms < SLOW_START_STEP_MS)
      return;
    l->per_second = DW_MIN(l->max_per_second, l->per_second * 2);
    l->per_minute = DW_MIN(l->max_per_minute, l->per_minute * 2);
    l->last_increase_ms = now_ms;
    if (l->per_second == l->max_per_second && l->per_minute == l->max_per_minute)
      l->slow_start = 0;
    return;
  }
  if (!l || now_ms - l->last_decrease_ms < INCREASE_AFTER_MS ||
      now_ms - l->last_increase_ms < SLOW_START_STEP_MS)
    return;
  /* Limits that have held for GOOD_AFTER_MS become the level to come back to. */
  if (now_ms - l->last_decrease_ms >= GOOD_AFTER_MS) {
    l->good_per_second = DW_MAX(l->good_per_second, l->per_second);
    l->good_per_minute = DW_MAX(l->good_per_minute, l->per_minute);
  }
  int stepped = 0;
  uint64_t since = now_ms - l->last_increase_ms;
  l->per_second = climb(l->per_second, l->good_per_second, l->max_per_second, since, &stepped);
  l->per_minute = climb(l->per_minute, l->good_per_minute, l->max_per_minute, since, &stepped);
  if (stepped)
    l->last_increase_ms = now_ms;
}

uint32_t dw_limiter_share(uint32_t configured, size_t assigned, size_t total)
{
  if (configured == 0 || total == 0 || assigned >= total)
    return configured;
  uint64_t share = (uint64_t)configured * assigned / total;
  return share < 1 ? 1 : (uint32_t)share;
}

/* v moved by the ratio to/from, within [1, to]; 0 (unlimited) stays. */
static uint32_t rescaled(uint32_t v, uint32_t from, uint32_t to)
{
  if (v == 0 || from == 0)
    return to;
  uint64_t x = (uint64_t)v * to / from;
  return x < 1 ? 1 : x > to ? to : (uint32_t)x;
}

void dw_limiter_set_ceiling(struct dw_limiter *l, uint32_t per_second, uint32_t per_minute)
{
  if (!l)
    return;
  /* The log holds max(conf_per_second, conf_per_minute) calls: no ceiling may pass those. */
  per_second = l->conf_per_second ? DW_MAX(1, DW_MIN(per_second, l->conf_per_second)) : 0;
  per_minute = l->conf_per_minute ? DW_MAX(1, DW_MIN(per_minute, l->conf_per_minute)) : 0;
  l->per_second = rescaled(l->per_second, l->max_per_second, per_second);
  l->good_per_second = rescaled(l->good_per_second, l->max_per_second, per_second);
  l->per_minute = rescaled(l->per_minute, l->max_per_minute, per_minute);
  l->good_per_minute = rescaled(l->good_per_minute, l->max_per_minute, per_minute);
  l->max_per_second = per_second;
  l->max_per_minute = per_minute;
}
