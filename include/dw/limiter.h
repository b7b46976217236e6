/* The rate limiter for one app and tenant: at most per_second calls in any window of 1 s plus
 * slack_ms and per_minute calls in any window of 60 s plus slack_ms (a sliding log of call
 * times), plus a block until the time a 429 told us. The server counts a call when it arrives,
 * up to slack_ms after we sent it: the calls it counts in any of its windows (aligned or not)
 * were sent within that window widened by slack_ms, so it never counts more than the limits.
 * Pure; the caller passes the clock. */
#ifndef DW_LIMITER_H
#define DW_LIMITER_H

#include <stddef.h>
#include <stdint.h>

struct dw_limiter {
  uint32_t per_second;   /* in force now; 0 = unlimited */
  uint32_t per_minute;   /* in force now; 0 = unlimited */
  uint32_t max_per_second; /* as configured: the ceiling adaptation climbs back to */
  uint32_t max_per_minute;
  uint32_t conf_per_second; /* as given to dw_limiter_init: the highest ceiling */
  uint32_t conf_per_minute;
  uint32_t good_per_second; /* the last level that held (our share of the budget): after a */
  uint32_t good_per_minute; /* run of 429s the limits double back up to 90% of it */
  uint64_t last_decrease_ms, last_increase_ms;
  uint64_t last_minute_decrease_ms, minute_decreases;
  int slow_start;        /* still doubling toward the configured limits */
  uint64_t decreases_total;
  uint64_t *log;         /* ring of the last max(per_second, per_minute) call times */
  size_t cap, head, count;
  uint64_t slack_ms;     /* widens both windows: the arrival jitter, the longest time between
                            our clock reading and the call reaching the server (which counts
                            arrivals); a 429 widens it by half, up to DW_LIMITER_SLACK_MAX_MS */
  uint64_t window_end_ms; /* where the last 429 said the server's full window ends (0: none) */
  uint64_t blocked_until_ms;
  uint64_t api_blocked_until_ms; /* the part of the block a 429 asked for */
  uint64_t refused_since_ms; /* the first 429 since the last accepted call */
  uint64_t refused_last_ms;  /* the latest 429 since then */
  int refusing;              /* the two above are set */
  uint64_t calls_total;
  uint64_t blocks_total;
};

int dw_limiter_init(struct dw_limiter *l, uint32_t per_second, uint32_t per_minute);
void dw_limiter_cleanup(struct dw_limiter *l);

/* 0 when a call may start at now_ms (and the call is counted), else the milliseconds to wait
 * before asking again (> 0). */
uint64_t dw_limiter_acquire(struct dw_limiter *l, uint64_t now_ms);

/* The longest block a 429 can impose. Feishu's longest rate window is a minute, so no honest
 * x-ogw-ratelimit-reset exceeds 60 s; 5 s of margin covers the clocks and the answer's travel.
 * A longer reset (a broken gateway said 86399) would stop every call for as long. */
#define DW_LIMITER_RESET_MAX_MS 65000u

/* The block to honour for an x-ogw-ratelimit-reset of reset_s seconds (negative: none sent):
 * a second when missing or 0, at most DW_LIMITER_RESET_MAX_MS. */
uint64_t dw_limiter_reset_ms(int64_t reset_s);

/* A 429 said: no call for reset_ms from now (at most DW_LIMITER_RESET_MAX_MS is honoured). */
void dw_limiter_block(struct dw_limiter *l, uint64_t now_ms, uint64_t reset_ms);

/* How much longer a 429's block holds calls back at now_ms, 0 if none does (a block set
 * directly in blocked_until_ms, like the one after startup, is not the API's). */
uint64_t dw_limiter_held_ms(const struct dw_limiter *l, uint64_t now_ms);

/* For how long the API has been seen refusing every call with a 429: from the first 429 after
 * the last accepted call (dw_limiter_on_accepted) to the latest one, 0 after an accepted call
 * or a single 429 (one block, however long, is no evidence that the API refuses everything).
 * A gateway that answers nothing but 429 keeps re-blocking the lane; the tasks that never got
 * a call behind it must still reach their deadline. */
uint64_t dw_limiter_refused_ms(const struct dw_limiter *l);

/* Adapting to a budget smaller than configured (other replicas or programs use the same app):
 * the limits start at a quarter of the configured ones and double every second of accepted
 * calls (slow start); after a 429 (reset_ms: what x-ogw-ratelimit-reset said; longer than a
 * second means the minute window was full) the limit of the window that was full drops by 30%,
 * and to 90% of the calls we made in it (at most
 * once a second; only when no earlier 429 held us back during that window) and slow start
 * ends; after 5 s without one they double every second back to 90% of the last level that
 * held (so a storm of 429s costs seconds, not minutes), then climb by 2% of the configured
 * limits every 5 s. Replicas that each do this settle below the shared budget without talking
 * to each other. A 429 also records where the server's full window ends (window_end_ms) and
 * widens slack_ms by half (at most once a second, up to DW_LIMITER_SLACK_MAX_MS, not from 0):
 * a server that counts arrivals later than we allowed for keeps refusing otherwise. */
void dw_limiter_slow_start(struct dw_limiter *l, uint64_t now_ms);
/* The calls logged in the window of window_ms ending at now_ms. */
uint32_t dw_limiter_calls_in(const struct dw_limiter *l, uint64_t window_ms, uint64_t now_ms);

/* The widest headroom a 429 can grow slack_ms to: a call that reaches the server half a second
 * after it was sent is a network failing, not jitter to budget for. */
#define DW_LIMITER_SLACK_MAX_MS 500u

/* This replica's share of a configured limit when the app's budget is split by partitions:
 * configured * assigned / total, rounded down so that the shares never add up to more, at
 * least 1; the whole limit when total is 0 (not known) or assigned >= total, 0 (unlimited) when
 * configured is 0. */
uint32_t dw_limiter_share(uint32_t configured, size_t assigned, size_t total);

/* Sets the limits adaptation climbs back to (a share, or the configured limits again), at most
 * those given at dw_limiter_init (the log's size). The limits in force move by the same ratio,
 * so a limiter cut by 429s stays cut, and slow start goes on toward the new ceiling. */
void dw_limiter_set_ceiling(struct dw_limiter *l, uint32_t per_second, uint32_t per_minute);
void dw_limiter_on_rejected(struct dw_limiter *l, uint64_t now_ms, uint64_t reset_ms);
void dw_limiter_on_accepted(struct dw_limiter *l, uint64_t now_ms);

#endif
