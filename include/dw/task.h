/* The life of one task, as decisions: given the task's state, an answer (or a failed send, or
 * the clock reaching a ready task's deadline) and the time, what happens next: another poll
 * after so many milliseconds, a result, a dead letter with its reason and message, a return to
 * the front of the ready queue (after a 429, after a refused token, during an app-level
 * failure). Pure: no loop, no HTTP, no Kafka; the caller passes the clock in milliseconds and
 * carries the action out (timers, the ready queue, the limiter, the token, metrics, logs). The
 * table of transitions is in docs/design.md, "The life of a task". */
#ifndef DW_TASK_H
#define DW_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "dw/adaptive.h"
#include "dw/answer.h"
#include "dw/schedule.h"

enum dw_task_phase {
  DW_TASK_WAITING = 0, /* on its timer until the next poll is due */
  DW_TASK_READY,       /* due, in the ready queue */
  DW_TASK_CALLING,     /* a call in flight */
  DW_TASK_CANCELLED,   /* finished or cancelled: no more calls */
};

struct dw_task_state {
  enum dw_task_phase phase;
  uint64_t deadline_at;      /* clock time the task is given up at (while the app is healthy) */
  uint64_t created_at;       /* clock time the task was created upstream (<= taken) */
  uint64_t sent_at;          /* clock time of the last call */
  uint64_t pending_age;      /* age at the last call that answered pending, 0 if none */
  unsigned attempts;         /* calls made */
  unsigned polls;            /* calls answered pending or final */
  unsigned pending_answers;  /* pending answers (the poll schedule's step) */
  unsigned failures;         /* retryable failures in a row */
  int token_retried;         /* the last call was already a retry with a new token */
  long last_code;            /* the last answer's code, -1 if none */
  char last_msg[384];        /* the last answer's msg or transport error; at the end, why */
  char log_id[64];           /* X-Tt-Logid of the last answer, "" if none */
};

/* What the task's world is like when a decision is made. */
struct dw_task_env {
  const char *website_id;            /* the task's, for the adaptive plan */
  uint64_t deadline_ms;              /* poll.deadline_ms */
  int healthy;                       /* the app is not failing (else deadlines do not run) */
  const struct dw_schedule *schedule;
  struct dw_adaptive *adaptive;      /* learns from every answer */
  int use_plan;                      /* place polls with the learned plan when it has one */
  int price_level;                   /* the price of a call in the task's lane (dw/plan.h) */
  uint64_t *rng;                     /* a dw_rand state for the schedule's jitter */
  int64_t ratelimit_reset_s;         /* the answer's x-ogw-ratelimit-reset, -1 if none */
};

enum dw_task_action_kind {
  DW_TASK_ACT_WAIT = 0,           /* poll again after delay_ms (phase WAITING) */
  DW_TASK_ACT_RESULT,             /* finish: publish answer (SUCCEEDED or FAILED) */
  DW_TASK_ACT_DEAD_LETTER,        /* finish: dead-letter with reason; the state's last_code
                                     and last_msg are the error code and message */
  DW_TASK_ACT_REQUEUE_RATE_LIMITED, /* a 429: block the lane's calls for block_ms, then back
                                       to the front of the ready queue */
  DW_TASK_ACT_REQUEUE_TOKEN,      /* the token was refused: invalidate the generation the
                                     call used, then back to the front of the ready queue */
  DW_TASK_ACT_APP_FAILURE,        /* the app is failing (text says why): report it, then back
                                     to the front of the ready queue */
};

struct dw_task_action {
  enum dw_task_action_kind kind;
  uint64_t delay_ms;               /* WAIT */
  const char *reason;              /* DEAD_LETTER: task_not_found, invalid_request,
                                      deadline_exceeded, malformed_answer */
  const struct dw_answer *answer;  /* RESULT, DEAD_LETTER: the answer to report (NULL: none) */
  uint64_t block_ms;               /* REQUEUE_RATE_LIMITED: at most DW_LIMITER_RESET_MAX_MS */
  char text[DW_TEXT_MAX + 64];     /* APP_FAILURE: "API code <code>: <msg>" */
};

/* A new task at now_ms, age_ms old by the wall clocks of its producer and ours (negative when
 * unknown): WAITING, last_code -1, its deadline deadline_ms from now. An age in the future,
 * beyond now_ms or beyond four deadlines says nothing useful and counts as 0. */
void dw_task_init(struct dw_task_state *t, uint64_t now_ms, int64_t age_ms,
                  uint64_t deadline_ms);

/* The delay before the task's next poll: from the learned plan when env->use_plan and the plan
 * exists (0 for a task never polled that is older than the whole plan), else from the
 * schedule for the pending answers so far. */
uint64_t dw_task_next_delay(const struct dw_task_state *t, uint64_t now_ms,
                            const struct dw_task_env *env);

/* A call leaves at now_ms: CALLING, one more attempt. The first call extends the deadline to
 * at least deadline_ms from now (time spent waiting for it behind the rate limit is not the
 * API's). */
void dw_task_on_send(struct dw_task_state *t, uint64_t now_ms, uint64_t deadline_ms);

/* The call could not be sent (errtext says why; ans is a transport answer the caller keeps
 * alive until the action is carried out): one more failure, then WAIT for the retry backoff or
 * dead-letter at the deadline. */
void dw_task_on_send_error(struct dw_task_state *t, const struct dw_answer *ans,
                           const char *errtext, uint64_t now_ms, const struct dw_task_env *env,
                           struct dw_task_action *out);

/* An answer (classified and scrubbed) to the call in flight, at now_ms. Records its code and
 * msg (not the log id: the caller scrubs and stores it), teaches the adaptive model, and sets
 * *out. ans must stay alive until the action is carried out. */
void dw_task_on_answer(struct dw_task_state *t, const struct dw_answer *ans, uint64_t now_ms,
                       const struct dw_task_env *env, struct dw_task_action *out);

/* A 429's block this short at a task's deadline is waited out for the task's last look (the
 * per-second window's blocks last about a second): the task may have become ready meanwhile,
 * and a short block must not turn its result into a dead letter. A longer block (the minute
 * window's) ends the task at its deadline. */
#define DW_TASK_LAST_LOOK_HOLD_MS 5000

/* Whether a ready task that cannot be called ends now at its deadline: only READY, only
 * while healthy, only at or past the deadline, and then when its tenant has no token
 * (no_token) or a 429 holds its lane back (held_ms > 0): for more than
 * DW_TASK_LAST_LOOK_HOLD_MS from a task that had a call, or from any task once the API has
 * refused every call of the lane from one 429 to another both a whole deadline_ms and
 * DW_LIMITER_RESET_MAX_MS later (refused_ms, dw_limiter_refused_ms): longer than a storm of
 * 429s (they pass within Feishu's minute window) and than the deadline itself. */
int dw_task_ready_overdue(const struct dw_task_state *t, uint64_t now_ms, int healthy,
                          int no_token, uint64_t held_ms, uint64_t refused_ms,
                          uint64_t deadline_ms);

/* Dead-letters an overdue ready task (deadline_exceeded) and says why in last_msg: held back
 * by a 429 (held_ms still to wait) when why is "", else no token for tenant_key ("" for a
 * self-built app) with the token manager's reason why. A pending code is no error code (-1);
 * with no token, no answer of the API is the reason (log_id cleared). */
void dw_task_expire_waiting(struct dw_task_state *t, uint64_t now_ms, const char *tenant_key,
                            const char *why, uint64_t held_ms, struct dw_task_action *out);

#endif
