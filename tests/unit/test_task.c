/* Unit tests of a task's decisions in milliseconds, no loop: every answer kind, the deadline
 * (healthy or not, a pending or an error last answer, a malformed answer at the end, the first
 * call that extends it, the last look at it), a failed send, and the end of a ready task that
 * cannot be called (no token, held back by a 429) with the texts the dead letter carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dw/common.h"
#include "dw/limiter.h"
#include "dw/task.h"

#define DEADLINE 60000u
#define T0 100000u /* the clock when the task is taken */

struct fixture {
  struct dw_schedule schedule;
  struct dw_adaptive adaptive;
  uint64_t rng;
  struct dw_task_env env;
  struct dw_task_state t;
  struct dw_task_action act;
};

static int setup(void **state)
{
  static struct fixture f;
  struct dw_adaptive_options aopt = {.latency_target_ms = 1500, .min_interval_ms = 250,
                                     .max_interval_ms = 15000, .horizon_ms = DEADLINE,
                                     .min_observations = 30, .half_life = 2000};
  memset(&f, 0, sizeof(f));
  f.schedule = (struct dw_schedule){
      .kind = DW_SCHEDULE_EXPONENTIAL,
      .first_delay_ms = 2000,
      .interval_ms = 1000,
      .max_interval_ms = 30000,
      .multiplier = 2.0,
      .jitter = 0.0,
      .retry_initial_ms = 500,
      .retry_max_ms = 60000,
  };
  if (dw_adaptive_init(&f.adaptive, &aopt) < 0)
    return -1;
  f.rng = 42;
  f.env = (struct dw_task_env){
      .website_id = "7",
      .deadline_ms = DEADLINE,
      .healthy = 1,
      .schedule = &f.schedule,
      .adaptive = &f.adaptive,
      .use_plan = 0,
      .rng = &f.rng,
      .ratelimit_reset_s = -1,
  };
  dw_task_init(&f.t, T0, 0, DEADLINE);
  *state = &f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  dw_adaptive_cleanup(&f->adaptive);
  return 0;
}

static struct dw_answer answer(enum dw_answer_kind kind, long code, const char *msg)
{
  struct dw_answer a;
  memset(&a, 0, sizeof(a));
  a.kind = kind;
  a.code = code;
  a.status = -1;
  dw_strlcpy(a.msg, msg, sizeof(a.msg));
  return a;
}

/* A call at now, answered at now + 100. */
static void call(struct fixture *f, uint64_t now, const struct dw_answer *a)
{
  dw_task_on_send(&f->t, now, DEADLINE);
  assert_int_equal(f->t.phase, DW_TASK_CALLING);
  dw_task_on_answer(&f->t, a, now + 100, &f->env, &f->act);
}

static void test_init(void **state)
{
  struct fixture *f = *state;
  struct dw_task_state t;
  assert_int_equal(f->t.phase, DW_TASK_WAITING);
  assert_int_equal(f->t.last_code, -1);
  assert_int_equal(f->t.deadline_at, T0 + DEADLINE);
  assert_int_equal(f->t.created_at, T0);
  assert_int_equal(f->t.attempts, 0);
  dw_task_init(&t, T0, 5000, DEADLINE); /* 5 s old */
  assert_int_equal(t.created_at, T0 - 5000);
  assert_int_equal(t.deadline_at, T0 + DEADLINE);
  dw_task_init(&t, T0, -5000, DEADLINE); /* from the future: unknown */
  assert_int_equal(t.created_at, T0);
  dw_task_init(&t, T0, T0 + 1, DEADLINE); /* older than the clock */
  assert_int_equal(t.created_at, T0);
  dw_task_init(&t, 10 * (uint64_t)DEADLINE, 4 * (int64_t)DEADLINE + 1, DEADLINE);
  assert_int_equal(t.created_at, 10 * (uint64_t)DEADLINE);
  dw_task_init(&t, 10 * (uint64_t)DEADLINE, 4 * (int64_t)DEADLINE, DEADLINE);
  assert_int_equal(t.created_at, 6 * (uint64_t)DEADLINE);
}

static void test_first_call_extends_deadline(void **state)
{
  struct fixture *f = *state;
  /* 50 s behind our own rate limit before the first call: the deadline runs from that call. */
  dw_task_on_send(&f->t, T0 + 50000, DEADLINE);
  assert_int_equal(f->t.attempts, 1);
  assert_int_equal(f->t.sent_at, T0 + 50000);
  assert_int_equal(f->t.deadline_at, T0 + 50000 + DEADLINE);
  /* Later calls do not move it. */
  dw_task_on_send(&f->t, T0 + 70000, DEADLINE);
  assert_int_equal(f->t.attempts, 2);
  assert_int_equal(f->t.deadline_at, T0 + 50000 + DEADLINE);
}

static void test_first_call_keeps_a_later_deadline(void **state)
{
  struct fixture *f = *state;
  f->t.deadline_at += 120000; /* moved by an app-level outage */
  dw_task_on_send(&f->t, T0 + 1000, DEADLINE);
  assert_int_equal(f->t.deadline_at, T0 + DEADLINE + 120000);
}

static void test_next_delay_schedule(void **state)
{
  struct fixture *f = *state;
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), 2000); /* first_delay */
  f->t.pending_answers = 1;
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), 1000); /* interval */
  f->t.pending_answers = 3;
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), 4000);
  f->env.use_plan = 1; /* no plan learned yet: the schedule */
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), 4000);
}

static void test_next_delay_plan(void **state)
{
  struct fixture *f = *state;
  /* Teach the model that tasks are ready at about 10 s. */
  for (unsigned i = 0; i < 200; i++)
    dw_adaptive_observe(&f->adaptive, "7", 9000 + (i % 10) * 100, 10000 + (i % 10) * 100);
  f->env.use_plan = 1;
  const struct dw_readiness *m = dw_adaptive_model(&f->adaptive, "7", 0);
  assert_non_null(m);
  assert_true(m->plan_len > 0);
  uint64_t last = m->plan[m->plan_len - 1];
  /* A task never polled that is older than the whole plan: now. */
  dw_task_init(&f->t, last + 10, (int64_t)last, DEADLINE * 10);
  assert_int_equal(dw_task_next_delay(&f->t, last + 10, &f->env), 0);
  /* A young task: the next planned age, less its age. */
  dw_task_init(&f->t, T0, 0, DEADLINE);
  uint64_t next = dw_adaptive_next_age(&f->adaptive, "7", 0, 0);
  assert_true(next > 0);
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), next);
  /* Polled once already and older than the plan: what the plan says after its age (not at
   * once, as for a task never polled). */
  f->t.pending_answers = 1;
  f->t.created_at = T0 - last - 1;
  next = dw_adaptive_next_age(&f->adaptive, "7", last + 1, 0);
  assert_int_equal(dw_task_next_delay(&f->t, T0, &f->env), next > last + 1 ? next - last - 1 : 0);
  assert_true(dw_task_next_delay(&f->t, T0, &f->env) > 0);
}

static void test_pending(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_PENDING, 0, "success");
  f->t.failures = 3;
  call(f, T0 + 2000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_int_equal(f->act.delay_ms, 1000); /* the schedule after one pending answer */
  assert_int_equal(f->t.phase, DW_TASK_WAITING);
  assert_int_equal(f->t.polls, 1);
  assert_int_equal(f->t.pending_answers, 1);
  assert_int_equal(f->t.failures, 0);
  assert_int_equal(f->t.pending_age, 2000);
  assert_int_equal(f->t.last_code, 0);
  assert_string_equal(f->t.last_msg, "success");
  assert_int_equal(f->adaptive.global.observations, 0); /* nothing learnt before the end */
}

static void test_last_look_clamp(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_PENDING, 0, "success");
  call(f, T0, &a);
  f->t.pending_answers = 4; /* next: 16000 ms */
  call(f, T0 + DEADLINE - 3100, &a); /* answered 3 s before the deadline */
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_int_equal(f->act.delay_ms, 3000);
}

static void test_pending_at_deadline(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_PENDING, 0, "success");
  call(f, T0, &a); /* the first call at once: the deadline stays */
  assert_int_equal(f->t.deadline_at, T0 + DEADLINE);
  call(f, T0 + DEADLINE - 100, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_ptr_equal(f->act.answer, &a);
  assert_string_equal(f->t.last_msg,
                      "still pending after 2 call(s) in 60 s (poll.deadline_ms)");
  assert_int_equal(f->t.last_code, -1); /* a pending answer is no error code */
  assert_int_equal(f->t.polls, 2);
  assert_int_equal(f->adaptive.global.observations, 1); /* never ready by the deadline */
  assert_true(f->adaptive.global.never > 0);
}

static void test_pending_at_deadline_unhealthy(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_PENDING, 0, "success");
  call(f, T0, &a);
  f->env.healthy = 0; /* the deadline does not run while the app is failing */
  call(f, T0 + DEADLINE + 5000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_int_equal(f->act.delay_ms, 2000); /* no clamp past the deadline */
  assert_string_equal(f->t.last_msg, "success");
  assert_int_equal(f->adaptive.global.observations, 0);
}

static void test_final(void **state, enum dw_answer_kind kind)
{
  struct fixture *f = *state;
  struct dw_answer p = answer(DW_ANSWER_PENDING, 0, "success");
  struct dw_answer a = answer(kind, 0, "success");
  call(f, T0 + 2000, &p);
  call(f, T0 + 3000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_RESULT);
  assert_ptr_equal(f->act.answer, &a);
  assert_int_equal(f->t.polls, 2);
  assert_int_equal(f->t.attempts, 2);
  assert_int_equal(f->t.last_code, 0);
  assert_int_equal(f->adaptive.global.observations, 1); /* ready in (2 s, 3 s] */
}

static void test_succeeded(void **state)
{
  test_final(state, DW_ANSWER_SUCCEEDED);
}

static void test_failed(void **state)
{
  test_final(state, DW_ANSWER_FAILED);
}

static void test_dead_letter_answers(void **state)
{
  struct fixture *f = *state;
  struct dw_answer nf = answer(DW_ANSWER_NOT_FOUND, 1002008, "task not found");
  struct dw_answer inv = answer(DW_ANSWER_INVALID, 1002002, "invalid param");
  call(f, T0 + 2000, &nf);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "task_not_found");
  assert_ptr_equal(f->act.answer, &nf);
  assert_int_equal(f->t.polls, 1);
  assert_int_equal(f->t.last_code, 1002008);
  assert_string_equal(f->t.last_msg, "task not found");
  dw_task_init(&f->t, T0, 0, DEADLINE);
  call(f, T0 + 2000, &inv);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "invalid_request");
  assert_int_equal(f->t.polls, 1);
  assert_int_equal(f->t.last_code, 1002002);
}

static void test_retry(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_RETRY, 1002001, "system busy");
  call(f, T0 + 2000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_in_range(f->act.delay_ms, 250, 500); /* retry_initial, full jitter */
  assert_int_equal(f->t.failures, 1);
  assert_int_equal(f->t.polls, 0); /* an error is no poll */
  call(f, T0 + 3000, &a);
  assert_in_range(f->act.delay_ms, 500, 1000);
  assert_int_equal(f->t.failures, 2);
  assert_int_equal(f->t.last_code, 1002001);
  assert_string_equal(f->t.last_msg, "system busy");
}

static void test_retry_at_deadline(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_RETRY, 1002001, "system busy");
  f->t.created_at = T0 - 5000; /* 5 s old when taken */
  call(f, T0, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  call(f, T0 + DEADLINE - 100, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_ptr_equal(f->act.answer, &a);
  assert_string_equal(f->t.last_msg,
                      "no final answer after 2 call(s) in 65 s; last: system busy");
  assert_int_equal(f->t.last_code, 1002001); /* an error code is kept */
}

static void test_malformed(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_MALFORMED, 0, "status is not an integer");
  call(f, T0, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT); /* maybe a passing fault */
  assert_in_range(f->act.delay_ms, 250, 500);
  assert_int_equal(f->t.failures, 1);
  call(f, T0 + DEADLINE - 100, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "malformed_answer");
  assert_ptr_equal(f->act.answer, &a);
  assert_int_equal(f->t.last_code, 0); /* what was wrong, not "pending" */
  assert_string_equal(f->t.last_msg, "status is not an integer");
}

static void test_rate_limited(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_RATE_LIMITED, 99991400, "request trigger frequency limit");
  call(f, T0 + 2000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_REQUEUE_RATE_LIMITED);
  assert_int_equal(f->act.block_ms, 1000); /* no x-ogw-ratelimit-reset: a second */
  assert_int_equal(f->t.failures, 0);
  assert_int_equal(f->t.polls, 0);
  assert_int_equal(f->t.last_code, 99991400);
  f->env.ratelimit_reset_s = 5;
  call(f, T0 + 4000, &a);
  assert_int_equal(f->act.block_ms, 5000);
  f->env.ratelimit_reset_s = 86399; /* a broken gateway: at most a minute and a little */
  call(f, T0 + 6000, &a);
  assert_int_equal(f->act.block_ms, DW_LIMITER_RESET_MAX_MS);
  /* Even past the deadline: the poller's expire_lane decides about waiting tasks. */
  call(f, T0 + DEADLINE + 50000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_REQUEUE_RATE_LIMITED);
}

static void test_token_invalid_twice(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_TOKEN_INVALID, 99991663, "invalid access token");
  struct dw_answer p = answer(DW_ANSWER_PENDING, 0, "success");
  call(f, T0 + 2000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_REQUEUE_TOKEN);
  assert_int_equal(f->t.token_retried, 1);
  assert_int_equal(f->t.failures, 0);
  /* A fresh token refused too: back off like any other error. */
  call(f, T0 + 2500, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_in_range(f->act.delay_ms, 250, 500);
  assert_int_equal(f->t.failures, 1);
  assert_int_equal(f->t.token_retried, 1);
  assert_int_equal(f->t.last_code, 99991663);
  /* Any other answer in between earns another refresh. */
  call(f, T0 + 3000, &p);
  assert_int_equal(f->t.token_retried, 0);
  call(f, T0 + 5000, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_REQUEUE_TOKEN);
}

static void test_token_invalid_twice_at_deadline(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_TOKEN_INVALID, 99991663, "invalid access token");
  call(f, T0, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_REQUEUE_TOKEN); /* the refresh is not a poll */
  call(f, T0 + DEADLINE - 100, &a);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_string_equal(f->t.last_msg,
                      "no final answer after 2 call(s) in 60 s; last: invalid access token");
}

static void test_app_failure(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_APP_FAILURE, 99991672, "Access denied. scope");
  call(f, T0 + DEADLINE + 1000, &a); /* past the deadline: not the task's fault */
  assert_int_equal(f->act.kind, DW_TASK_ACT_APP_FAILURE);
  assert_string_equal(f->act.text, "API code 99991672: Access denied. scope");
  assert_int_equal(f->t.failures, 0);
  assert_int_equal(f->t.polls, 0);
  assert_int_equal(f->t.last_code, 99991672);
}

static void test_send_error(void **state)
{
  struct fixture *f = *state;
  struct dw_answer a = answer(DW_ANSWER_RETRY, -1, "");
  dw_task_on_send(&f->t, T0 + 2000, DEADLINE);
  dw_task_on_send_error(&f->t, &a, "out of range", T0 + 2000, &f->env, &f->act);
  assert_int_equal(f->act.kind, DW_TASK_ACT_WAIT);
  assert_in_range(f->act.delay_ms, 250, 500);
  assert_int_equal(f->t.phase, DW_TASK_WAITING);
  assert_int_equal(f->t.failures, 1);
  assert_int_equal(f->t.last_code, -1); /* no answer: the code is left as it was */
  assert_string_equal(f->t.last_msg, "out of range");
  dw_task_on_send(&f->t, T0 + DEADLINE + 2000, DEADLINE);
  dw_task_on_send_error(&f->t, &a, "out of memory", T0 + DEADLINE + 2000, &f->env, &f->act);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_ptr_equal(f->act.answer, &a);
  assert_string_equal(f->t.last_msg,
                      "no final answer after 2 call(s) in 62 s; last: out of memory");
}

static void test_send_error_after_pending(void **state)
{
  struct fixture *f = *state;
  struct dw_answer p = answer(DW_ANSWER_PENDING, 0, "success");
  struct dw_answer a = answer(DW_ANSWER_RETRY, -1, "");
  call(f, T0, &p);
  dw_task_on_send(&f->t, T0 + DEADLINE, DEADLINE);
  dw_task_on_send_error(&f->t, &a, "out of memory", T0 + DEADLINE, &f->env, &f->act);
  /* The last code is still the pending answer's: "still pending", whatever the send said. */
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->t.last_msg,
                      "still pending after 2 call(s) in 60 s (poll.deadline_ms)");
  assert_int_equal(f->t.last_code, -1);
}

static void test_ready_overdue(void **state)
{
  struct fixture *f = *state;
  uint64_t at = T0 + DEADLINE;
  struct dw_task_state *t = &f->t;
  t->phase = DW_TASK_WAITING;
  assert_false(dw_task_ready_overdue(t, at, 1, 1, 0, 0, DEADLINE)); /* not ready */
  t->phase = DW_TASK_READY;
  assert_true(dw_task_ready_overdue(t, at, 1, 1, 0, 0, DEADLINE));      /* no token */
  assert_false(dw_task_ready_overdue(t, at - 1, 1, 1, 0, 0, DEADLINE)); /* before it */
  assert_false(dw_task_ready_overdue(t, at, 0, 1, 0, 0, DEADLINE));     /* app failing */
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 0, 0, DEADLINE)); /* waits for a call */
  /* Held back by a 429: a task never called waits for its first call ... */
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 3000, 0, DEADLINE));
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 3000, DEADLINE - 1, DEADLINE));
  /* ... unless the API has refused every call for a whole deadline, and longer than a storm
   * of 429s lasts (Feishu's longest window). */
  assert_true(dw_task_ready_overdue(t, at, 1, 0, 3000, DW_MAX(DEADLINE, DW_LIMITER_RESET_MAX_MS),
                                    DEADLINE));
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 3000, 12000, 10000)); /* a 12 s storm */
  assert_true(dw_task_ready_overdue(t, at, 1, 0, 3000, 65000, 10000));
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 0, DEADLINE, DEADLINE)); /* not held now */
  t->attempts = 1; /* answered before: a long block does not hold it past its deadline ... */
  assert_true(dw_task_ready_overdue(t, at, 1, 0, DW_TASK_LAST_LOOK_HOLD_MS + 1, 0, DEADLINE));
  assert_true(dw_task_ready_overdue(t, at, 1, 0, 60000, 0, DEADLINE));
  assert_false(dw_task_ready_overdue(t, at, 0, 0, 60000, 0, DEADLINE));
  /* ... a short one is waited out for its last look (it may be ready by now) ... */
  assert_false(dw_task_ready_overdue(t, at, 1, 0, 3000, 0, DEADLINE));
  assert_false(dw_task_ready_overdue(t, at, 1, 0, DW_TASK_LAST_LOOK_HOLD_MS, 0, DEADLINE));
  /* ... unless short blocks follow one another for a whole deadline (and a minute). */
  assert_true(dw_task_ready_overdue(t, at, 1, 0, 1000, DW_MAX(DEADLINE, DW_LIMITER_RESET_MAX_MS),
                                    DEADLINE));
}

static void test_expire_held_back(void **state)
{
  struct fixture *f = *state;
  struct dw_answer p = answer(DW_ANSWER_PENDING, 0, "success");
  call(f, T0 + 2000, &p);
  dw_strlcpy(f->t.log_id, "20261203ABC", sizeof(f->t.log_id));
  f->t.phase = DW_TASK_READY;
  dw_task_expire_waiting(&f->t, T0 + DEADLINE + 500, "", "", 1500, &f->act);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_null(f->act.answer);
  assert_string_equal(f->t.last_msg,
                      "held back by the API rate limit (429) at the deadline, 2 s more to "
                      "wait; no final answer after 1 call(s) in 60 s");
  assert_int_equal(f->t.last_code, -1);        /* a pending answer is no error code */
  assert_string_equal(f->t.log_id, "20261203ABC"); /* the 429 was the API's answer */
}

static void test_expire_no_token(void **state)
{
  struct fixture *f = *state;
  struct dw_answer r = answer(DW_ANSWER_RETRY, 1002001, "system busy");
  call(f, T0 + 2000, &r);
  dw_strlcpy(f->t.log_id, "20261203ABC", sizeof(f->t.log_id));
  f->t.phase = DW_TASK_READY;
  dw_task_expire_waiting(&f->t, T0 + DEADLINE, "tenant-1", "app not installed", 0, &f->act);
  assert_int_equal(f->act.kind, DW_TASK_ACT_DEAD_LETTER);
  assert_string_equal(f->act.reason, "deadline_exceeded");
  assert_string_equal(f->t.last_msg,
                      "no tenant_access_token for tenant tenant-1 after 60 s: app not installed");
  assert_int_equal(f->t.last_code, 1002001); /* an error code is kept */
  assert_string_equal(f->t.log_id, "");      /* no answer of the API is the reason */
  dw_task_init(&f->t, T0, 0, DEADLINE);
  f->t.phase = DW_TASK_READY;
  dw_task_expire_waiting(&f->t, T0 + DEADLINE + 1999, "", "token endpoint: HTTP 503", 0,
                         &f->act);
  assert_string_equal(f->t.last_msg,
                      "no tenant_access_token after 61 s: token endpoint: HTTP 503");
  assert_int_equal(f->t.last_code, -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      T(test_init),
      T(test_first_call_extends_deadline),
      T(test_first_call_keeps_a_later_deadline),
      T(test_next_delay_schedule),
      T(test_next_delay_plan),
      T(test_pending),
      T(test_last_look_clamp),
      T(test_pending_at_deadline),
      T(test_pending_at_deadline_unhealthy),
      T(test_succeeded),
      T(test_failed),
      T(test_dead_letter_answers),
      T(test_retry),
      T(test_retry_at_deadline),
      T(test_malformed),
      T(test_rate_limited),
      T(test_token_invalid_twice),
      T(test_token_invalid_twice_at_deadline),
      T(test_app_failure),
      T(test_send_error),
      T(test_send_error_after_pending),
      T(test_ready_overdue),
      T(test_expire_held_back),
      T(test_expire_no_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
