/* The decisions of a task's life, apart from the loop that carries them out. The poller feeds
 * in what happens to a task (it is taken, a call leaves, an answer or a send error comes back,
 * the clock reaches a ready task's deadline) and gets back what to do: poll again after a
 * delay, publish a result, dead-letter with a reason and a message, or put the task back at the
 * front of the ready queue. The poll schedule and the adaptive plan place the polls; the
 * deadline ends a task that never gets a final answer, except while the app itself is failing.
 * Pure: the clock is an argument. */
#include "dw/task.h"

#include <stdio.h>
#include <string.h>

#include "dw/common.h"
#include "dw/limiter.h"
#include "dw/text.h"

/* A record up to four deadlines old (a replay, a backlog) keeps its age, and the plan polls it
 * at once as it does every task older than itself; an older timestamp is more likely a wrong
 * clock, and the task starts as a new one. */
#define AGE_MAX_DEADLINES 4

void dw_task_init(struct dw_task_state *t, uint64_t now_ms, int64_t age_ms,
                  uint64_t deadline_ms)
{
  memset(t, 0, sizeof(*t));
  t->phase = DW_TASK_WAITING;
  t->last_code = -1;
  t->deadline_at = now_ms + deadline_ms;
  /* The task's age so far, from the wall clocks of its producer and ours; a timestamp in the
   * future or older than AGE_MAX_DEADLINES deadlines says nothing useful. */
  if (age_ms < 0 || (uint64_t)age_ms > now_ms ||
      (uint64_t)age_ms > deadline_ms * AGE_MAX_DEADLINES)
    age_ms = 0;
  t->created_at = now_ms - (uint64_t)age_ms;
}

uint64_t dw_task_next_delay(const struct dw_task_state *t, uint64_t now_ms,
                            const struct dw_task_env *env)
{
  if (env->use_plan) {
    uint64_t age = now_ms - t->created_at;
    const struct dw_readiness *m =
        dw_adaptive_model(env->adaptive, env->website_id, env->price_level);
    if (m && m->plan_len) {
      /* A task older than the whole plan (a replay, a backlog) is most likely ready. */
      if (t->pending_answers == 0 && age >= m->plan[m->plan_len - 1])
        return 0;
      uint64_t next = dw_adaptive_next_age(env->adaptive, env->website_id, age, env->price_level);
      return next > age ? next - age : 0;
    }
  }
  return dw_schedule_next_ms(env->schedule, t->pending_answers, env->rng);
}

void dw_task_on_send(struct dw_task_state *t, uint64_t now_ms, uint64_t deadline_ms)
{
  t->phase = DW_TASK_CALLING;
  t->attempts++;
  t->sent_at = now_ms;
  /* The deadline is for the API keeping a task pending, not for the time it waited for its
   * first call behind our own rate limit (a backlog, a run of 429s): it runs at least that
   * long from the first call. A task that never gets one keeps the deadline it was taken with. */
  if (t->attempts == 1 && t->sent_at + deadline_ms > t->deadline_at)
    t->deadline_at = t->sent_at + deadline_ms;
}

/* Another poll after delay_ms, or the end of the task if its deadline has passed. */
static void reschedule(struct dw_task_state *t, uint64_t delay_ms, const struct dw_answer *ans,
                       uint64_t now, const struct dw_task_env *env, struct dw_task_action *out)
{
  /* While the app is failing, time does not count against a task (its deadline is moved by
   * the outage's length when it clears). */
  if (now >= t->deadline_at && env->healthy) {
    /* Say why in dlq.error_msg: the last answer alone ("success", pending) would not. */
    char why[DW_TEXT_MAX + 128];
    unsigned long long secs = (unsigned long long)((now - t->created_at) / 1000);
    out->kind = DW_TASK_ACT_DEAD_LETTER;
    out->answer = ans;
    if (ans && ans->kind == DW_ANSWER_MALFORMED) {
      /* code 0, but not an answer the API gives: name what was wrong, not "pending". */
      out->reason = "malformed_answer";
      return;
    }
    if (t->last_code == 0) {
      snprintf(why, sizeof(why), "still pending after %u call(s) in %llu s (poll.deadline_ms)",
               t->attempts, secs);
      t->last_code = -1; /* no error code to report */
    } else {
      snprintf(why, sizeof(why), "no final answer after %u call(s) in %llu s; last: %s",
               t->attempts, secs, t->last_msg);
    }
    dw_text_copy(t->last_msg, sizeof(t->last_msg), why);
    out->reason = "deadline_exceeded";
    return;
  }
  if (now + delay_ms > t->deadline_at && now < t->deadline_at)
    delay_ms = t->deadline_at - now; /* one last look at the deadline */
  t->phase = DW_TASK_WAITING;
  out->kind = DW_TASK_ACT_WAIT;
  out->delay_ms = delay_ms;
}

void dw_task_on_send_error(struct dw_task_state *t, const struct dw_answer *ans,
                           const char *errtext, uint64_t now_ms, const struct dw_task_env *env,
                           struct dw_task_action *out)
{
  memset(out, 0, sizeof(*out));
  dw_text_copy(t->last_msg, sizeof(t->last_msg), errtext);
  t->failures++;
  reschedule(t, dw_schedule_retry_ms(env->schedule, t->failures, env->rng), ans, now_ms, env,
             out);
}

void dw_task_on_answer(struct dw_task_state *t, const struct dw_answer *ans, uint64_t now_ms,
                       const struct dw_task_env *env, struct dw_task_action *out)
{
  memset(out, 0, sizeof(*out));
  t->last_code = ans->code;
  dw_text_copy(t->last_msg, sizeof(t->last_msg), ans->msg);
  if (ans->kind != DW_ANSWER_TOKEN_INVALID)
    t->token_retried = 0;

  switch (ans->kind) {
  case DW_ANSWER_PENDING:
    t->polls++;
    t->failures = 0;
    t->pending_answers++;
    t->pending_age = t->sent_at - t->created_at;
    if (now_ms >= t->deadline_at && env->healthy)
      dw_adaptive_observe_never(env->adaptive, env->website_id, t->pending_age);
    reschedule(t, dw_task_next_delay(t, now_ms, env), ans, now_ms, env, out);
    return;
  case DW_ANSWER_SUCCEEDED:
  case DW_ANSWER_FAILED:
    t->polls++;
    /* Ready somewhere between the last pending answer and this call. */
    dw_adaptive_observe(env->adaptive, env->website_id, t->pending_age,
                        t->sent_at - t->created_at);
    out->kind = DW_TASK_ACT_RESULT;
    out->answer = ans;
    return;
  case DW_ANSWER_NOT_FOUND:
    t->polls++;
    out->kind = DW_TASK_ACT_DEAD_LETTER;
    out->reason = "task_not_found";
    out->answer = ans;
    return;
  case DW_ANSWER_INVALID:
    t->polls++;
    out->kind = DW_TASK_ACT_DEAD_LETTER;
    out->reason = "invalid_request";
    out->answer = ans;
    return;
  case DW_ANSWER_RATE_LIMITED:
    /* Honoured up to a minute and a little: no answer can stop every call for a day. */
    out->kind = DW_TASK_ACT_REQUEUE_RATE_LIMITED;
    out->block_ms = dw_limiter_reset_ms(env->ratelimit_reset_s);
    return;
  case DW_ANSWER_TOKEN_INVALID:
    if (!t->token_retried) {
      t->token_retried = 1;
      out->kind = DW_TASK_ACT_REQUEUE_TOKEN;
      return;
    }
    /* A fresh token was refused too: back off like any other error. */
    /* fall through */
  case DW_ANSWER_RETRY:
  case DW_ANSWER_MALFORMED: /* maybe a passing fault; reschedule dead-letters it at the end */
    t->failures++;
    reschedule(t, dw_schedule_retry_ms(env->schedule, t->failures, env->rng), ans, now_ms, env,
               out);
    return;
  case DW_ANSWER_APP_FAILURE:
    snprintf(out->text, sizeof(out->text), "API code %ld: %s", ans->code, ans->msg);
    out->kind = DW_TASK_ACT_APP_FAILURE;
    return;
  }
}

int dw_task_ready_overdue(const struct dw_task_state *t, uint64_t now_ms, int healthy,
                          int no_token, uint64_t held_ms, uint64_t refused_ms,
                          uint64_t deadline_ms)
{
  return t->phase == DW_TASK_READY && healthy && now_ms >= t->deadline_at &&
         (no_token ||
          (held_ms && ((t->attempts > 0 && held_ms > DW_TASK_LAST_LOOK_HOLD_MS) ||
                       refused_ms >= DW_MAX(deadline_ms, (uint64_t)DW_LIMITER_RESET_MAX_MS))));
}

void dw_task_expire_waiting(struct dw_task_state *t, uint64_t now_ms, const char *tenant_key,
                            const char *why, uint64_t held_ms, struct dw_task_action *out)
{
  unsigned long long secs = (unsigned long long)((now_ms - t->created_at) / 1000);
  unsigned long long held = (held_ms + 999) / 1000;
  char text[sizeof(t->last_msg) + DW_TEXT_MAX + 128];
  memset(out, 0, sizeof(*out));
  if (!why[0])
    snprintf(text, sizeof(text),
             "held back by the API rate limit (429) at the deadline, %llu s more to wait; no "
             "final answer after %u call(s) in %llu s",
             held, t->attempts, secs);
  else if (tenant_key[0])
    snprintf(text, sizeof(text), "no tenant_access_token for tenant %s after %llu s: %s",
             tenant_key, secs, why);
  else
    snprintf(text, sizeof(text), "no tenant_access_token after %llu s: %s", secs, why);
  dw_text_copy(t->last_msg, sizeof(t->last_msg), text);
  if (t->last_code == 0)
    t->last_code = -1; /* a pending answer is no error code */
  if (why[0])
    t->log_id[0] = '\0'; /* no answer of the API is the reason */
  out->kind = DW_TASK_ACT_DEAD_LETTER;
  out->reason = "deadline_exceeded";
  out->answer = NULL;
}
