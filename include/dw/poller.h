/* The poller: resolves tasks by asking the delivery-task endpoint until the answer is final.
 * Each task has its own schedule (a uv_timer); tasks whose time has come wait in a ready queue
 * that is served as fast as the token, the rate limiter and the app's health allow. Every
 * answer is classified (dw_answer_classify, docs/contracts.md, "How API answers are treated")
 * and ends as a result, a dead letter, or another poll. */
#ifndef DW_POLLER_H
#define DW_POLLER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/adaptive.h"
#include "dw/answer.h"
#include "dw/config.h"
#include "dw/event.h"
#include "dw/http.h"
#include "dw/metrics.h"
#include "dw/schedule.h"
#include "dw/token.h"

struct dw_poller;
struct dw_task;

enum dw_outcome_kind { DW_OUTCOME_RESULT = 0, DW_OUTCOME_DEAD_LETTER };

struct dw_outcome {
  enum dw_outcome_kind kind;
  const struct dw_event *event;
  const struct dw_answer *answer; /* RESULT: SUCCEEDED or FAILED; DEAD_LETTER: the last one */
  const char *reason;             /* dead letter: task_not_found, invalid_request,
                                     deadline_exceeded, malformed_answer */
  long error_code;                /* the last API code, -1 if none */
  const char *error_msg;          /* the last API msg or transport error */
  const char *log_id;             /* X-Tt-Logid of the last answer, "" if none */
  unsigned attempts;              /* API calls made for this task */
  unsigned polls;                 /* of which answered (pending or final) */
};

/* Called once per task that was not cancelled; owner is what dw_poller_submit was given. The
 * task is freed after the callback returns. */
typedef void (*dw_outcome_cb)(void *arg, void *owner, const struct dw_outcome *outcome);

/* Called when the app's health changes: healthy 0 with a reason when calls fail for reasons
 * that are not a task's (bad secret, missing scope, IP denied, ...), 1 when it recovers. */
typedef void (*dw_health_cb)(void *arg, int healthy, const char *reason);

struct dw_poller_stats {
  uint64_t calls;          /* API calls answered (any answer, transport errors included) */
  uint64_t by_kind[DW_ANSWER_KINDS]; /* indexed by enum dw_answer_kind */
  uint64_t rate_limited;   /* 429s */
  uint64_t token_retries;
  size_t tasks;            /* in the poller now */
  size_t ready;            /* waiting for the limiter, the token or the app */
};

/* Reads from the feishu section base_url (copied), request_timeout_ms, rate_per_second and
 * rate_per_minute (per app and tenant: each tenant_key of a store app gets its own limiter and
 * ready queue, a self-built app has one) and max_connections (HTTP calls at once); the limits
 * section (the share of the budget, the jitter headroom, the shared budget store); from the
 * poll section the schedule (fixed, exponential, or adaptive with the exponential one as its
 * fallback) and deadline_ms. The poller registers its metrics in metrics (NULL: none). */
int dw_poller_new(struct dw_poller **out, uv_loop_t *loop, struct dw_http *http,
                  struct dw_token *token, const struct dw_config *cfg,
                  struct dw_metrics *metrics, dw_outcome_cb on_outcome, dw_health_cb on_health,
                  void *arg);

/* Starts resolving a validated event; the event is copied. created_ms is the wall-clock time
 * the task was created (the record's timestamp; -1 if unknown: then now): the adaptive plan
 * measures readiness from it. *task (optional) can be passed to dw_poller_cancel until the
 * outcome callback has run. */
int dw_poller_submit(struct dw_poller *p, const struct dw_event *ev, int64_t created_ms,
                     void *owner, struct dw_task **task);

/* The adaptive model (for metrics and tests). */
struct dw_adaptive *dw_poller_adaptive(struct dw_poller *p);

/* Stops a task: no more calls, no outcome callback. */
void dw_poller_cancel(struct dw_poller *p, struct dw_task *task);

/* A token changed (wired by the owner from the token manager's callback; tenant_key as it
 * gave it: NULL for every tenant, "" for a self-built app). A clear refusal (DW_EINVAL) of the
 * app's credentials is an app-level failure (no deadline runs); when one store tenant's token
 * (or a self-built app's, its endpoint not answering) cannot be had, only that tenant's tasks
 * wait, and those that reach their deadline meanwhile are dead-lettered as deadline_exceeded
 * with the token manager's reason. */
void dw_poller_on_token(struct dw_poller *p, const char *tenant_key, int err,
                        const char *reason);

void dw_poller_stats(const struct dw_poller *p, struct dw_poller_stats *st);
int dw_poller_healthy(const struct dw_poller *p);

/* How long the API's rate limit still holds calls back (a 429's block, at most
 * DW_LIMITER_RESET_MAX_MS; the longest of the tenants'), 0 when it does not; *lanes (optional)
 * the number of tenants held back. Tasks waiting meanwhile still end at their deadline. */
uint64_t dw_poller_held_back_ms(const struct dw_poller *p, size_t *lanes);

/* This replica holds assigned of the input topic's total partitions (total 0: not known): with
 * limits.share = partitions its limiters climb to that share of the app's budget (while the
 * shared store, if any, does not answer). */
void dw_poller_set_partitions(struct dw_poller *p, size_t assigned, size_t total);

/* Cancels every task and frees p once its handles are closed; done(arg) (may be NULL) runs
 * then. */
void dw_poller_close(struct dw_poller *p, void (*done)(void *arg), void *arg);

#endif
