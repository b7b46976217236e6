/* The poller sits between the task (a validated event) and the outcome (result or dead
 * letter). A task waits on its own uv_timer until its next poll is due, then joins the ready
 * queue; the queue is served in order as far as the token, the rate limiter and the app's
 * health allow, so a burst of due tasks never turns into a burst of 429s. Answers are
 * classified (answer.c) and the task either finishes, or is scheduled again by the poll
 * schedule (pending) or the retry backoff (errors), until its deadline. Those decisions are
 * the task module's (dw/task.h, pure); the poller feeds it the answers and the clock and carries
 * out what it decides. */
#include "dw/poller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/budget.h"
#include "dw/common.h"
#include "dw/limiter.h"
#include "dw/log.h"
#include "dw/plan.h"
#include "dw/store.h"
#include "dw/task.h"
#include "dw/text.h"

#define APP_BACKOFF_MIN_MS 1000
#define APP_BACKOFF_MAX_MS 60000
/* Shared budget store: permits asked at once for a lane (a few calls' worth: one round trip
 * per call would cost the store's latency on each), and how long granted permits stay good
 * (they are counted in the store when granted; an old one would be a call outside its window). */
#define STORE_BATCH 8
#define STORE_PERMIT_TTL_MS 200
/* A tenant's lane with no task for this long is freed (a store app may serve many tenants, most
 * of them now and then); the sweep that does it runs every LANE_SWEEP_MS. */
#define LANE_IDLE_MS (10 * 60 * 1000)
#define LANE_SWEEP_MS 60000
/* The ready queue's classes (see priority): a call the API asked to repeat (4) and a task near
 * its deadline (2 to 3, nearer is higher) come before the rest (1), which the adaptive plan
 * orders by when each task is ready with probability READY_Q (see rank), and which are first
 * come first served without it. */
#define PRIORITY_RETRY 4.0
#define PRIORITY_NEAR_DEADLINE 2.0
#define PRIORITY_PLAIN 1.0
/* A task called at the time it is 95% sure to be ready costs 1.05 calls: the goal for a
 * backlog, where every call is one another task does not get. */
#define READY_Q 0.95
/* Near its deadline: within two of the longest intervals between polls, where a task has one or
 * two polls left. */
#define DEADLINE_NEAR_INTERVALS 2

/* What the poller reads of the config, in the types of the modules it drives. */
struct options {
  long request_timeout_ms;
  struct dw_schedule schedule; /* fixed/exponential; also the adaptive plan's fallback */
  int adaptive;                /* place polls with the learned plan */
  struct dw_adaptive_options adaptive_opt;
  uint64_t deadline_ms;
  uint32_t rate_per_second;
  uint32_t rate_per_minute;
  uint64_t jitter_ms;          /* the limiters' headroom for late arrivals (limits.jitter_ms) */
  size_t max_calls_in_flight;  /* HTTP calls at once (the connections to the API) */
};

/* The calls of one app and tenant: Feishu limits each pair on its own, and one tenant waiting
 * for its token or its budget must not hold up another's. A self-built app has one lane (key
 * ""); a store app one per tenant_key, found through a hash table and freed when it has had no
 * task for LANE_IDLE_MS. Lanes with ready tasks take turns in a ring; a lane whose token is
 * missing leaves the ring (parked) until the token manager has news for it. */
struct lane {
  char key[DW_TENANT_KEY_MAX + 1];
  struct dw_limiter limiter;
  struct dw_task **heap; /* the lane's ready queue */
  size_t nready, heap_cap;
  size_t ntasks;         /* the tenant's tasks in the poller, in any state */
  uint64_t idle_since;   /* loop time ntasks became 0 */
  int parked;            /* no token: out of the ring until dw_poller_on_token */
  uint32_t permits;      /* granted by the shared store, not used yet */
  uint64_t permits_at;   /* when they were granted */
  uint64_t store_wait_until; /* the store said none is free before this */
  struct dw_price price; /* of a call in this lane, from its budget's state: see reprice */
  uint64_t calls;        /* calls answered: the price's input */
  int asking;            /* an ask of the store is pending */
  int in_ring;
  char why[320];         /* why the tenant has no token (the token manager's last reason), "" */
  struct lane *hnext;    /* hash chain */
  struct lane *prev, *next;   /* every lane */
  struct lane *rprev, *rnext; /* the ring of lanes that may call */
};

struct dw_task {
  struct dw_poller *p;
  struct lane *lane;
  uv_timer_t timer;
  struct dw_event ev;
  void *owner;
  struct dw_task_state st;    /* the decisions' state: see dw/task.h */
  uint64_t token_generation;  /* of the call in flight */
  size_t heap_index;          /* in the ready queue */
  double priority;            /* the class: see PRIORITY_* */
  double rank;                /* within the class, higher first: see rank */
  uint64_t seq;               /* ties: first come, first served */
  struct dw_task *all_prev, *all_next; /* every task */
};

struct dw_poller {
  uv_loop_t *loop;
  struct dw_http *http;
  struct dw_token *token;
  struct options opt;
  char *base_url;
  char *url;             /* room for a task's URL with the longest ids (send_call) */
  size_t url_size;
  dw_outcome_cb on_outcome;
  dw_health_cb on_health;
  void *arg;
  struct lane **buckets; /* lanes by key */
  size_t nbuckets, nlanes;
  struct lane *lanes;    /* every lane */
  struct lane *ring;     /* lanes with ready tasks that may call; the next one to call */
  size_t nring;
  uv_timer_t sweep;      /* frees idle lanes, and retries parked ones now and then */
  uint64_t start_block_until; /* the first second after startup: see dw_poller_new */
  struct dw_adaptive adaptive;
  double idle_share;     /* poll.idle_budget_share, for each lane's price */
  uint64_t price_at;     /* loop time the lanes' prices were last stepped */
  uv_timer_t price_tick; /* steps the prices once a second while one is not 1 (see reprice) */
  uv_timer_t dispatch;   /* wakes the ready queues when a limiter or the gate opens */
  uint64_t seq;
  struct dw_task *all;
  size_t ntasks, nready; /* nready: in all lanes */
  size_t handles;        /* open uv handles: dispatch, sweep, price timers + task timers */
  int closing;
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
  int driving;
  int healthy;
  struct dw_task *probe; /* while unhealthy, one call at a time finds out if it is over */
  struct dw_budget budget; /* the share of the app's budget, and the store's state */
  struct dw_store *store;  /* limits.store, or NULL */
  char store_key[256];     /* limits.store_key:app_id: the lanes' keys add their tenant */
  uint32_t ceil_per_second, ceil_per_minute; /* the ceilings the lanes' limiters have */
  uint64_t unhealthy_since;
  uint64_t gate_until;   /* no call before this (app failure backoff) */
  uint64_t app_backoff_ms;
  uint64_t rng;
  struct dw_poller_stats stats;
  struct dw_metric *m_calls, *m_rate_limited, *m_polls, *m_resolve, *m_token_retries;
};

#define TASK_URL "%s/open-apis/hire/v1/websites/%s/delivery_tasks/%s"

static const double polls_buckets[] = {1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50};
static const double resolve_buckets[] = {0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300};

static double gauge_ready(void *arg)
{
  return (double)((struct dw_poller *)arg)->nready;
}

/* The lowest limit in force among the lanes (the configured one before any call). */
static double lowest_rate(const struct dw_poller *p, int minute)
{
  double v = minute ? p->opt.rate_per_minute : p->opt.rate_per_second;
  for (const struct lane *ln = p->lanes; ln; ln = ln->next) {
    double l = minute ? ln->limiter.per_minute : ln->limiter.per_second;
    if (ln == p->lanes || l < v)
      v = l;
  }
  return v;
}

static double gauge_rate_second(void *arg)
{
  return lowest_rate(arg, 0);
}

static double gauge_rate_minute(void *arg)
{
  return lowest_rate(arg, 1);
}

static double gauge_budget_second(void *arg)
{
  return ((struct dw_poller *)arg)->opt.rate_per_second;
}

static double gauge_budget_minute(void *arg)
{
  return ((struct dw_poller *)arg)->opt.rate_per_minute;
}

/* This replica's ceilings now (dw/budget.h); the windows as the limiters see them. */
static uint32_t ceiling_second(const struct dw_poller *p)
{
  return dw_budget_ceiling(&p->budget, 0, p->opt.rate_per_second, 1000 + p->opt.jitter_ms,
                           uv_now(p->loop));
}

static uint32_t ceiling_minute(const struct dw_poller *p)
{
  return dw_budget_ceiling(&p->budget, 1, p->opt.rate_per_minute, 60000 + p->opt.jitter_ms,
                           uv_now(p->loop));
}

static double gauge_share_second(void *arg)
{
  return ceiling_second(arg);
}

static double gauge_share_minute(void *arg)
{
  return ceiling_minute(arg);
}

static double gauge_store_in_use(void *arg)
{
  return ((struct dw_poller *)arg)->budget.in_use;
}

static double gauge_held_back(void *arg)
{
  return (double)dw_poller_held_back_ms(arg, NULL) / 1000.0;
}

static double gauge_healthy(void *arg)
{
  return ((struct dw_poller *)arg)->healthy;
}

static double gauge_plan_calls(void *arg)
{
  struct dw_poller *p = arg;
  const struct dw_readiness *m =
      p->opt.adaptive ? dw_adaptive_model(&p->adaptive, NULL, 0) : NULL;
  return m ? m->plan_calls : 0;
}

/* The scarcest lane's: with one lane (a self-built app) the worker's price. */
static double gauge_call_price(void *arg)
{
  struct dw_poller *p = arg;
  if (!p->opt.adaptive || !p->lanes)
    return 1;
  const struct lane *scarcest = p->lanes;
  for (const struct lane *l = p->lanes->next; l; l = l->next)
    if (l->price.level < scarcest->price.level)
      scarcest = l;
  return dw_price_factor(&scarcest->price);
}

static void register_metrics(struct dw_poller *p, struct dw_metrics *r)
{
  if (!r)
    return;
  p->m_calls = dw_metrics_counter(r, "dw_api_calls_total",
                                  "Delivery-task API calls answered, by body code (transport: "
                                  "no answer; unparsable: no usable body).",
                                  "code");
  p->m_rate_limited = dw_metrics_counter(r, "dw_api_rate_limited_total",
                                         "Calls answered 99991400 (rate limited).", NULL);
  p->m_token_retries = dw_metrics_counter(r, "dw_api_token_retries_total",
                                          "Calls retried with a new token after 9999166x.", NULL);
  p->m_polls = dw_metrics_histogram(r, "dw_task_polls", "API calls per finished task.",
                                    polls_buckets, DW_ARRAY_SIZE(polls_buckets));
  p->m_resolve = dw_metrics_histogram(r, "dw_task_resolve_seconds",
                                      "From task creation (the record's timestamp) to its "
                                      "outcome.",
                                      resolve_buckets, DW_ARRAY_SIZE(resolve_buckets));
  dw_metrics_gauge_fn(r, "dw_poller_ready_tasks",
                      "Tasks due for a call, waiting for the rate limiter, the token or the app.",
                      gauge_ready, p);
  dw_metrics_gauge_fn(r, "dw_limiter_rate_per_second",
                      "Calls per second the limiter allows now (lowered after 429s; the lowest "
                      "of the tenants').",
                      gauge_rate_second, p);
  dw_metrics_gauge_fn(r, "dw_limiter_rate_per_minute",
                      "Calls per minute the limiter allows now.", gauge_rate_minute, p);
  dw_metrics_gauge_fn(r, "dw_limiter_budget_per_second",
                      "The app's configured budget per second and tenant "
                      "(feishu.rate_per_second; 0 = unlimited), shared by every replica.",
                      gauge_budget_second, p);
  dw_metrics_gauge_fn(r, "dw_limiter_budget_per_minute",
                      "The app's configured budget per minute and tenant "
                      "(feishu.rate_per_minute; 0 = unlimited), shared by every replica.",
                      gauge_budget_minute, p);
  dw_metrics_gauge_fn(r, "dw_limiter_share_per_second",
                      "This replica's ceiling per second: its share of the budget (by "
                      "partitions), or the whole budget while the shared store is in use.",
                      gauge_share_second, p);
  dw_metrics_gauge_fn(r, "dw_limiter_share_per_minute",
                      "This replica's ceiling per minute (see dw_limiter_share_per_second).",
                      gauge_share_minute, p);
  dw_metrics_gauge_fn(r, "dw_limiter_store_in_use",
                      "1 while calls take their permits from the shared budget store "
                      "(limits.store), 0 without one or while it does not answer.",
                      gauge_store_in_use, p);
  dw_metrics_gauge_fn(r, "dw_api_held_back_seconds",
                      "Seconds until the API's rate limit lets calls through again (a 429's "
                      "x-ogw-ratelimit-reset, at most 65 s; the longest of the tenants'), 0 "
                      "when not held back.",
                      gauge_held_back, p);
  dw_metrics_gauge_fn(r, "dw_app_healthy",
                      "1 unless an app-level failure (credentials, scope, IP, quota) stops calls.",
                      gauge_healthy, p);
  dw_metrics_gauge_fn(r, "dw_schedule_planned_calls",
                      "Adaptive schedule: expected calls per task of the global plan.",
                      gauge_plan_calls, p);
  dw_metrics_gauge_fn(r, "dw_schedule_call_price",
                      "Adaptive schedule: the multiplier on the weight of latency against a "
                      "call; below 1 while tasks wait for the rate budget, above 1 while idle "
                      "budget buys latency (poll.idle_budget_share).",
                      gauge_call_price, p);
}

static void drive(struct dw_poller *p);
static void on_dispatch(uv_timer_t *timer);
static void on_due(uv_timer_t *timer);
static void on_ready_deadline(uv_timer_t *timer);

static void lane_free(struct lane *l)
{
  dw_limiter_cleanup(&l->limiter);
  free(l->heap);
  free(l);
}

static void poller_release(struct dw_poller *p)
{
  if (--p->handles > 0 || !p->closing)
    return;
  while (p->lanes) {
    struct lane *l = p->lanes;
    p->lanes = l->next;
    lane_free(l);
  }
  free(p->buckets);
  dw_adaptive_cleanup(&p->adaptive);
  free(p->base_url);
  free(p->url);
  void (*done)(void *) = p->done;
  void *arg = p->done_arg;
  free(p);
  if (done)
    done(arg);
}

static void on_task_closed(uv_handle_t *h)
{
  struct dw_task *t = h->data;
  struct dw_poller *p = t->p;
  free(t);
  poller_release(p);
}

/* A lane is in the ring while it has ready tasks and is not parked. The ring pointer is the
 * next lane to call; removing that lane moves it on, so it always names a member (or NULL). */
static void ring_update(struct dw_poller *p, struct lane *l)
{
  int want = l->nready > 0 && !l->parked;
  if (want == l->in_ring)
    return;
  if (want) {
    if (!p->ring) {
      l->rprev = l->rnext = l;
      p->ring = l;
    } else { /* last in turn: just before the next one to call */
      l->rnext = p->ring;
      l->rprev = p->ring->rprev;
      l->rprev->rnext = l;
      p->ring->rprev = l;
    }
    p->nring++;
  } else {
    if (l->rnext == l) {
      p->ring = NULL;
    } else {
      l->rprev->rnext = l->rnext;
      l->rnext->rprev = l->rprev;
      if (p->ring == l)
        p->ring = l->rnext;
    }
    l->rprev = l->rnext = NULL;
    p->nring--;
  }
  l->in_ring = want;
}

static void lane_park(struct dw_poller *p, struct lane *l, int parked)
{
  l->parked = parked;
  ring_update(p, l);
}

/* The ready queue is a binary max-heap on each task's priority, so that when the rate budget
 * is the bottleneck the calls go where they are most useful. */
static int heap_before(const struct dw_task *a, const struct dw_task *b)
{
  if (a->priority != b->priority)
    return a->priority > b->priority;
  if (a->rank != b->rank)
    return a->rank > b->rank;
  return a->seq < b->seq;
}

static void heap_set(struct lane *l, size_t i, struct dw_task *t)
{
  l->heap[i] = t;
  t->heap_index = i;
}

static void heap_up(struct lane *l, size_t i)
{
  struct dw_task *t = l->heap[i];
  while (i > 0 && heap_before(t, l->heap[(i - 1) / 2])) {
    heap_set(l, i, l->heap[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  heap_set(l, i, t);
}

static void heap_down(struct lane *l, size_t i)
{
  struct dw_task *t = l->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= l->nready)
      break;
    if (c + 1 < l->nready && heap_before(l->heap[c + 1], l->heap[c]))
      c++;
    if (!heap_before(l->heap[c], t))
      break;
    heap_set(l, i, l->heap[c]);
    i = c;
  }
  heap_set(l, i, t);
}

static void ready_remove(struct dw_poller *p, struct dw_task *t)
{
  struct lane *l = t->lane;
  size_t i = t->heap_index;
  struct dw_task *last = l->heap[--l->nready];
  p->nready--;
  if (last != t) {
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, last->heap_index);
  }
  uv_timer_stop(&t->timer); /* its deadline watch: see ready_push */
  ring_update(p, l);
}

/* How useful a call for this task is now: retries the API asked for first, then tasks close to
 * their deadline, then the rest (ranked by rank). */
static double priority(struct dw_poller *p, struct dw_task *t, int retry)
{
  uint64_t now = uv_now(p->loop);
  if (retry)
    return PRIORITY_RETRY;
  uint64_t left = t->st.deadline_at > now ? t->st.deadline_at - now : 0;
  uint64_t soon = DEADLINE_NEAR_INTERVALS * p->opt.schedule.max_interval_ms;
  if (left < soon)
    return PRIORITY_NEAR_DEADLINE + 1.0 - (double)left / (double)soon;
  return PRIORITY_PLAIN;
}

/* With the adaptive plan, the task surely ready first: the earlier the (loop) time at which the
 * learned distribution gives it READY_Q of being ready since its last pending answer, the
 * higher. The key does not change while the task waits, so the heap stays valid, and under a
 * backlog the calls go to the tasks that have been surely ready the longest: close to one
 * call per task (docs/design.md, "The price of a call"). Without the plan, 0: by arrival. */
static double rank(struct dw_poller *p, struct dw_task *t)
{
  if (!p->opt.adaptive)
    return 0;
  uint64_t age = dw_adaptive_ready_age(&p->adaptive, t->ev.website_id, t->st.pending_age,
                                       READY_Q);
  if (age == UINT64_MAX) /* mostly never ready: after every task that will be */
    return -1e300;
  return -((double)t->st.created_at + (double)age);
}

static void ready_push(struct dw_poller *p, struct dw_task *t, int retry)
{
  struct lane *l = t->lane;
  if (l->nready == l->heap_cap) {
    size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
    struct dw_task **h = realloc(l->heap, cap * sizeof(*h));
    if (!h) { /* keep the task due: try again in a moment */
      t->st.phase = DW_TASK_WAITING;
      uv_timer_start(&t->timer, on_due, 100, 0);
      return;
    }
    l->heap = h;
    l->heap_cap = cap;
  }
  t->st.phase = DW_TASK_READY;
  t->priority = priority(p, t, retry);
  t->rank = rank(p, t);
  t->seq = p->seq++;
  heap_set(l, l->nready++, t);
  p->nready++;
  heap_up(l, t->heap_index);
  ring_update(p, l);
  /* A ready task still reaches its deadline when its tenant has no token: see
   * on_ready_deadline. The timer is idle while the task is ready. */
  uint64_t now = uv_now(p->loop);
  uv_timer_start(&t->timer, on_ready_deadline,
                 t->st.deadline_at > now ? t->st.deadline_at - now : 0, 0);
}

/* Takes the task off the list of live tasks; from now on it is cancelled. */
static void all_unlink(struct dw_poller *p, struct dw_task *t)
{
  if (t->all_prev)
    t->all_prev->all_next = t->all_next;
  else
    p->all = t->all_next;
  if (t->all_next)
    t->all_next->all_prev = t->all_prev;
  p->ntasks--;
  t->st.phase = DW_TASK_CANCELLED;
  if (--t->lane->ntasks == 0)
    t->lane->idle_since = uv_now(p->loop);
}

/* Unlinks the task from everything and closes its timer; memory goes in the close callback. */
static void task_release(struct dw_task *t)
{
  struct dw_poller *p = t->p;
  if (t->st.phase == DW_TASK_READY)
    ready_remove(p, t);
  all_unlink(p, t);
  uv_timer_stop(&t->timer);
  uv_close((uv_handle_t *)&t->timer, on_task_closed);
}

static void finish(struct dw_task *t, enum dw_outcome_kind kind, const char *reason,
                   const struct dw_answer *ans)
{
  struct dw_poller *p = t->p;
  struct dw_outcome o = {
      .kind = kind,
      .event = &t->ev,
      .answer = ans,
      .reason = reason,
      .error_code = t->st.last_code,
      .error_msg = t->st.last_msg,
      .log_id = t->st.log_id,
      .attempts = t->st.attempts,
      .polls = t->st.polls,
  };
  task_release(t);
  dw_metric_observe(p->m_polls, t->st.attempts);
  dw_metric_observe(p->m_resolve, (double)(uv_now(p->loop) - t->st.created_at) / 1000.0);
  p->on_outcome(p->arg, t->owner, &o);
}

/* The world of the task's decisions (dw/task.h), as the poller sees it now. */
static struct dw_task_env task_env(struct dw_poller *p, const struct dw_task *t)
{
  struct dw_task_env env = {
      .website_id = t->ev.website_id,
      .deadline_ms = p->opt.deadline_ms,
      .healthy = p->healthy,
      .schedule = &p->opt.schedule,
      .adaptive = &p->adaptive,
      .use_plan = p->opt.adaptive,
      .price_level = t->lane ? t->lane->price.level : 0,
      .rng = &p->rng,
      .ratelimit_reset_s = -1,
  };
  return env;
}

static void on_due(uv_timer_t *timer)
{
  struct dw_task *t = timer->data;
  ready_push(t->p, t, 0);
  drive(t->p);
}

/* Carries out a decision that ends the task or puts it back on its timer; the decisions that
 * requeue it need the answer (on_answer carries them out). */
static void carry_out(struct dw_task *t, const struct dw_task_action *a)
{
  switch (a->kind) {
  case DW_TASK_ACT_WAIT:
    uv_timer_start(&t->timer, on_due, a->delay_ms, 0);
    break;
  case DW_TASK_ACT_RESULT:
    finish(t, DW_OUTCOME_RESULT, NULL, a->answer);
    break;
  case DW_TASK_ACT_DEAD_LETTER:
    finish(t, DW_OUTCOME_DEAD_LETTER, a->reason, a->answer);
    break;
  case DW_TASK_ACT_REQUEUE_RATE_LIMITED:
  case DW_TASK_ACT_REQUEUE_TOKEN:
  case DW_TASK_ACT_APP_FAILURE:
    break;
  }
}

/* A ready task that cannot be called for a pause of unknown length ends at its deadline like a
 * task that keeps failing, so that no such pause holds its partition's offset: its tenant has
 * no token (the token manager keeps failing for it: a tenant that uninstalled the app, an
 * unknown tenant_key, a token endpoint that does not answer), or a 429 holds its lane's calls
 * back from a task the API has already answered (a rate limit is no outage: the API answers,
 * just not now). Not while the app itself is failing (deadlines are moved then), nor while
 * every tenant waits for the app_ticket or the app_access_token (app-wide: the lane has no
 * reason of its own then), nor for a task still waiting for its first call behind the rate
 * limit, ours or a 429's (a backlog: its deadline runs from that call, see send_call, and a
 * block lasts DW_LIMITER_RESET_MAX_MS at most), unless the API has refused every call of the
 * lane from one 429 to another a whole poll.deadline_ms later (a gateway answering nothing but
 * 429: no task behind it would ever get its call). The decision is dw_task_ready_overdue's. */
static int ready_overdue(struct dw_poller *p, const struct dw_task *t, uint64_t now)
{
  const struct dw_limiter *l = &t->lane->limiter;
  return dw_task_ready_overdue(&t->st, now, p->healthy, t->lane->why[0] != '\0',
                               dw_limiter_held_ms(l, now), dw_limiter_refused_ms(l),
                               p->opt.deadline_ms);
}

static void expire_waiting(struct dw_task *t)
{
  struct dw_poller *p = t->p;
  uint64_t now = uv_now(p->loop);
  struct dw_task_action act;
  dw_task_expire_waiting(&t->st, now, t->lane->key, t->lane->why,
                         dw_limiter_held_ms(&t->lane->limiter, now), &act);
  carry_out(t, &act);
}

static void on_ready_deadline(uv_timer_t *timer)
{
  struct dw_task *t = timer->data;
  struct dw_poller *p = t->p;
  uint64_t now = uv_now(p->loop);
  if (t->st.phase != DW_TASK_READY)
    return;
  if (ready_overdue(p, t, now))
    expire_waiting(t);
  else if (now < t->st.deadline_at) /* moved by an app-level outage */
    uv_timer_start(&t->timer, on_ready_deadline, t->st.deadline_at - now, 0);
  /* Else it waits for a call (the budget, the app, the app_ticket); if its tenant is refused
   * or a 429 blocks its lane later, dw_poller_on_token or on_answer ends it. */
}

/* Ends the lane's overdue ready tasks (after its token was refused again, or a 429 blocked
 * it). */
static void expire_lane(struct dw_poller *p, struct lane *l)
{
  uint64_t now = uv_now(p->loop);
  size_t n = 0;
  for (size_t i = 0; i < l->nready; i++)
    n += ready_overdue(p, l->heap[i], now);
  if (!n)
    return;
  /* Collected first: finishing reorders the heap. A task memory is freed only in its close
   * callback, a later loop iteration, so the pointers stay valid while we go. */
  struct dw_task **v = malloc(n * sizeof(*v));
  if (!v)
    return; /* the next refusal tries again */
  size_t k = 0;
  for (size_t i = 0; i < l->nready && k < n; i++)
    if (ready_overdue(p, l->heap[i], now))
      v[k++] = l->heap[i];
  for (size_t i = 0; i < k; i++)
    if (v[i]->lane == l && ready_overdue(p, v[i], now))
      expire_waiting(v[i]);
  free(v);
}

static void set_health(struct dw_poller *p, int healthy, const char *reason)
{
  uint64_t now = uv_now(p->loop);
  if (healthy == p->healthy)
    return;
  p->healthy = healthy;
  if (!healthy) {
    p->unhealthy_since = now;
    dw_error("app-level failure, no new calls until it clears: %s", reason);
  } else {
    /* Time spent unable to call is not the tasks' fault: give it back to their deadlines. */
    uint64_t outage = now - p->unhealthy_since;
    for (struct dw_task *t = p->all; t; t = t->all_next)
      t->st.deadline_at += outage;
    p->app_backoff_ms = 0;
    p->gate_until = 0;
    dw_info("app-level failure cleared after %llu ms", (unsigned long long)outage);
  }
  if (p->on_health)
    p->on_health(p->arg, healthy, reason);
}

/* An answer (or the token endpoint) blamed the app. The backoff grows only when the probe
 * itself failed, not with every call that was already in flight. */
static void app_failure(struct dw_poller *p, const char *reason, int escalate)
{
  uint64_t now = uv_now(p->loop);
  if (p->healthy || !p->app_backoff_ms)
    p->app_backoff_ms = APP_BACKOFF_MIN_MS;
  else if (escalate)
    p->app_backoff_ms = DW_MIN(p->app_backoff_ms * 2, APP_BACKOFF_MAX_MS);
  p->gate_until = now + p->app_backoff_ms;
  set_health(p, 0, reason);
  /* Wake up when the gate opens, even with nothing queued: see drive(). */
  uv_timer_start(&p->dispatch, on_dispatch, p->app_backoff_ms, 0);
}

static void scrub_text(struct dw_poller *p, const struct lane *l, char *buf, size_t size)
{
  if (!buf[0])
    return; /* nothing to scrub: most answers have no status_msg or extra_info */
  char raw[DW_TEXT_MAX];
  dw_text_copy(raw, sizeof(raw), buf);
  dw_token_scrub(p->token, l->key, buf, size, raw);
}

static void on_answer(void *arg, const struct dw_http_response *resp)
{
  struct dw_task *t = arg;
  struct dw_poller *p = t->p;
  struct dw_answer ans;
  int was_probe = p->probe == t;
  if (was_probe)
    p->probe = NULL;
  if (t->st.phase == DW_TASK_CANCELLED) { /* cancelled while calling: nothing more to do */
    uv_close((uv_handle_t *)&t->timer, on_task_closed);
    drive(p);
    return;
  }
  if (resp->error == DW_ECANCELED) {
    task_release(t);
    return;
  }
  if (resp->error) {
    dw_answer_classify(&ans, 0, NULL, 0);
    dw_text_copy(ans.msg, sizeof(ans.msg),
                 resp->error_text ? resp->error_text : "transport error");
  } else {
    dw_answer_classify(&ans, resp->status, resp->body, resp->body_len);
  }
  /* The answer's text is scrubbed where it enters: what is kept of it below (the task's last
   * message, its log id, the app's health reason) reaches logs, dead-letter headers, /readyz
   * and results, none of which may carry a secret or a forged line. */
  scrub_text(p, t->lane, ans.msg, sizeof(ans.msg));
  scrub_text(p, t->lane, ans.status_msg, sizeof(ans.status_msg));
  scrub_text(p, t->lane, ans.extra_info, sizeof(ans.extra_info));
  p->stats.calls++;
  t->lane->calls++;
  p->stats.by_kind[ans.kind]++;
  if (p->m_calls) {
    char code[24];
    if (resp->error)
      dw_strlcpy(code, "transport", sizeof(code));
    else if (ans.code < 0)
      dw_strlcpy(code, "unparsable", sizeof(code));
    else
      snprintf(code, sizeof(code), "%ld", ans.code);
    dw_metric_inc(p->m_calls, code, 1);
  }
  dw_token_scrub(p->token, t->lane->key, t->st.log_id, sizeof(t->st.log_id), resp->log_id);
  if (dw_log_enabled(DW_LOG_DEBUG)) {
    struct dw_log_ctx ctx = {.task = t->ev.task_id, .partition = -1, .offset = -1,
                             .log_id = t->st.log_id};
    dw_log_write(DW_LOG_DEBUG, &ctx, "answer HTTP %ld code %ld: %s", resp->status, ans.code,
                 dw_answer_kind_name(ans.kind));
  }
  if (ans.kind != DW_ANSWER_APP_FAILURE && !resp->error && !p->healthy)
    set_health(p, 1, "");
  if (ans.kind != DW_ANSWER_RATE_LIMITED && !resp->error)
    dw_limiter_on_accepted(&t->lane->limiter, uv_now(p->loop));

  /* The decision is dw_task_on_answer's (after the health above: a deadline runs only while
   * the app is healthy); what is left here is carrying it out. */
  struct dw_task_env env = task_env(p, t);
  struct dw_task_action act;
  env.ratelimit_reset_s = resp->ratelimit_reset_s;
  dw_task_on_answer(&t->st, &ans, uv_now(p->loop), &env, &act);
  switch (act.kind) {
  case DW_TASK_ACT_WAIT:
  case DW_TASK_ACT_RESULT:
  case DW_TASK_ACT_DEAD_LETTER:
    carry_out(t, &act);
    break;
  case DW_TASK_ACT_REQUEUE_RATE_LIMITED: {
    uint64_t reset = act.block_ms;
    struct lane *l = t->lane;
    char asked[96] = "";
    if (resp->ratelimit_reset_s > 0 && (uint64_t)resp->ratelimit_reset_s * 1000 > reset)
      snprintf(asked, sizeof(asked), " (x-ogw-ratelimit-reset said %lld s; Feishu's windows "
               "are at most a minute)", (long long)resp->ratelimit_reset_s);
    p->stats.rate_limited++;
    dw_metric_inc(p->m_rate_limited, NULL, 1);
    dw_limiter_block(&l->limiter, uv_now(p->loop), reset);
    dw_limiter_on_rejected(&l->limiter, uv_now(p->loop), reset);
    if (l->key[0])
      dw_warn("rate limited by the API (code %ld) for tenant %s; no call for it for %llu ms%s",
              ans.code, l->key, (unsigned long long)reset, asked);
    else
      dw_warn("rate limited by the API (code %ld); no call for %llu ms%s", ans.code,
              (unsigned long long)reset, asked);
    ready_push(p, t, 1);
    expire_lane(p, l); /* tasks already past their deadline do not wait out the block */
    break;
  }
  case DW_TASK_ACT_REQUEUE_TOKEN:
    p->stats.token_retries++;
    dw_metric_inc(p->m_token_retries, NULL, 1);
    dw_token_invalidate(p->token, t->lane->key, t->token_generation);
    ready_push(p, t, 1);
    break;
  case DW_TASK_ACT_APP_FAILURE:
    app_failure(p, act.text, was_probe);
    ready_push(p, t, 1);
    break;
  }
  drive(p);
}

static void send_call(struct dw_poller *p, struct dw_task *t, const char *token)
{
  char auth[4200];
  /* Sized for the longest ids, but never sent cut: a cut URL asks about another task. */
  int nurl = snprintf(p->url, p->url_size, TASK_URL, p->base_url, t->ev.website_id,
                      t->ev.task_id);
  int nauth = snprintf(auth, sizeof(auth), "Bearer %s", token);
  struct dw_http_request req = {
      .method = "GET",
      .url = p->url,
      .authorization = auth,
      .timeout_ms = p->opt.request_timeout_ms,
      .endpoint = "delivery_task",
  };
  /* CALLING; the first call extends the deadline (dw_task_on_send). */
  dw_task_on_send(&t->st, uv_now(p->loop), p->opt.deadline_ms);
  t->token_generation = dw_token_generation(p->token, t->lane->key);
  int rc = nurl < 0 || (size_t)nurl >= p->url_size || nauth < 0 ||
                   (size_t)nauth >= sizeof(auth)
               ? DW_ERANGE
               : dw_http_send(p->http, &req, on_answer, t);
  if (rc < 0) {
    if (p->probe == t)
      p->probe = NULL;
    struct dw_answer ans;
    struct dw_task_env env = task_env(p, t);
    struct dw_task_action act;
    dw_answer_classify(&ans, 0, NULL, 0);
    dw_task_on_send_error(&t->st, &ans, dw_strerror(rc), uv_now(p->loop), &env, &act);
    carry_out(t, &act);
  }
}

static void on_dispatch(uv_timer_t *timer)
{
  drive(timer->data);
}

static struct lane *lane_find(struct dw_poller *p, const char *key);

/* Every lane's limiter climbs to the budget's ceilings (a share, or the whole budget) when
 * they changed: the assignment, the store's state, or time (after the store's return). */
static void apply_ceilings(struct dw_poller *p)
{
  uint32_t ps = ceiling_second(p), pm = ceiling_minute(p);
  if (ps == p->ceil_per_second && pm == p->ceil_per_minute)
    return;
  p->ceil_per_second = ps;
  p->ceil_per_minute = pm;
  for (struct lane *l = p->lanes; l; l = l->next)
    dw_limiter_set_ceiling(&l->limiter, ps, pm);
}

/* An ask of the store carries its lane's key, not the lane: the lane may be freed meanwhile. */
struct store_ask {
  struct dw_poller *p;
  char key[DW_TENANT_KEY_MAX + 1];
};

static void store_failed(struct dw_poller *p)
{
  if (dw_budget_on_store_failure(&p->budget, uv_now(p->loop)))
    apply_ceilings(p);
}

/* The store's count less this lane's own calls and the permits just granted. */
static uint32_t others_of(uint32_t in_window, uint32_t own, uint32_t granted)
{
  uint64_t ours = (uint64_t)own + granted;
  return in_window > ours ? (uint32_t)(in_window - ours) : 0;
}

static void on_store_answer(void *arg, int err, const struct dw_store_answer *ans)
{
  struct store_ask *a = arg;
  struct dw_poller *p = a->p;
  struct lane *l = p->closing ? NULL : lane_find(p, a->key);
  int self_built = a->key[0] == '\0';
  free(a);
  if (p->closing)
    return;
  if (l)
    l->asking = 0;
  if (err < 0) {
    store_failed(p);
  } else {
    uint64_t now = uv_now(p->loop);
    uint32_t os = 0, om = 0;
    /* The others' calls are counted per key, but the ceilings are the poller's: only a
     * self-built app (one lane, no tenant) can leave the others what they used. */
    if (l && self_built) {
      os = others_of(ans->in_second,
                     dw_limiter_calls_in(&l->limiter, 1000 + l->limiter.slack_ms, now),
                     ans->granted);
      om = others_of(ans->in_minute,
                     dw_limiter_calls_in(&l->limiter, 60000 + l->limiter.slack_ms, now),
                     ans->granted);
    }
    if (dw_budget_on_store_answer(&p->budget, now, os, om))
      dw_info("shared budget store answering: calls take their permits from it");
    apply_ceilings(p);
    if (l) {
      l->permits = ans->granted;
      l->permits_at = now;
      /* The store's wait is an answer from outside: no window is longer than a minute. */
      uint64_t wait = DW_MIN((uint64_t)ans->wait_ms, 60000 + l->limiter.slack_ms);
      l->store_wait_until = ans->granted ? 0 : now + DW_MAX(1, wait);
    }
  }
  drive(p);
}

/* A store connection is up: if its budget is not in use, ask it now rather than at the next
 * retry. */
static void on_store_ready(void *arg)
{
  struct dw_poller *p = arg;
  if (!p->budget.in_use)
    p->budget.retry_at_ms = uv_now(p->loop);
  drive(p);
}

/* Whether the shared store lets the lane call now: 1 with a permit in hand or while the store
 * is not in use (local limits), 0 when it must wait for the store (*wait set if it said how
 * long). */
static int store_gate(struct dw_poller *p, struct lane *l, uint64_t now, uint64_t *wait)
{
  if (!p->store)
    return 1;
  if (l->permits && now - l->permits_at <= STORE_PERMIT_TTL_MS)
    return 1;
  l->permits = 0;
  if (!l->asking && now >= l->store_wait_until && dw_budget_ask_store(&p->budget, now)) {
    struct store_ask *a = malloc(sizeof(*a));
    struct dw_store_request req = {
        .per_second = p->opt.rate_per_second,
        .per_minute = p->opt.rate_per_minute,
        .slack_ms = l->limiter.slack_ms,
        .want = (uint32_t)DW_MIN(l->nready, (size_t)STORE_BATCH),
    };
    char key[sizeof(p->store_key) + DW_TENANT_KEY_MAX + 2];
    snprintf(key, sizeof(key), "%s:%s", p->store_key, l->key);
    req.key = key;
    int rc = DW_ENOMEM;
    if (a) {
      a->p = p;
      dw_strlcpy(a->key, l->key, sizeof(a->key));
      rc = dw_store_take(p->store, &req, on_store_answer, a);
    }
    if (rc < 0) {
      free(a);
      store_failed(p);
    } else {
      l->asking = 1;
    }
  }
  if (!p->budget.in_use)
    return 1;
  if (!l->asking && now < l->store_wait_until)
    *wait = DW_MIN(*wait, l->store_wait_until - now);
  return 0;
}

/* One call from the lane if its token, its budget and the connections allow: 1 when sent, 0
 * when the lane must wait (*wait set if for its limiter), -1 when no lane may call now. */
static int lane_send_one(struct dw_poller *p, struct lane *l, uint64_t *wait)
{
  if (!p->healthy && p->probe)
    return -1;
  /* No more calls in flight than connections: libcurl would only queue them (and walks its
   * queue of pending transfers whenever a connection frees up), while here they stay in
   * priority order. Each answer drives the queue again. */
  if (dw_http_active(p->http) >= p->opt.max_calls_in_flight)
    return -1;
  const char *token = dw_token_value(p->token, l->key);
  if (!token) {
    lane_park(p, l, 1); /* dw_poller_on_token brings it back */
    return 0;
  }
  if (!store_gate(p, l, uv_now(p->loop), wait))
    return 0;
  uint64_t w = dw_limiter_acquire(&l->limiter, uv_now(p->loop));
  if (w) {
    *wait = DW_MIN(*wait, w);
    return 0;
  }
  if (l->permits)
    l->permits--;
  else if (p->store)
    dw_budget_on_local_call(&p->budget, uv_now(p->loop));
  struct dw_task *t = l->heap[0];
  ready_remove(p, t);
  if (!p->healthy)
    p->probe = t;
  send_call(p, t, token);
  return 1;
}

static void on_price_tick(uv_timer_t *timer);

/* The price of a call in each lane from the state of its budget (dw/plan.h): tasks still ready
 * after a drive wait for the budget (or the token, or the app: calls are scarce then too); the
 * binding budget is the lane's per-minute limit in force. Each lane has its own: Feishu limits
 * each app and tenant on its own, so one tenant's backlog must not make another tenant's idle
 * budget look scarce. Stepped after each drive, before a new task is planned, and, while a
 * price is not 1, by a timer once a second: nothing drives an idle poller, and a price must
 * not stay where a backlog left it. */
static void reprice(struct dw_poller *p, uint64_t now)
{
  /* Between steps nothing changes: the lanes are visited once a second, not on every drive,
   * all at the same whole seconds from the first visit (so each lane steps on them). */
  if (!p->opt.adaptive || (p->price_at && now < p->price_at + 1000))
    return;
  p->price_at = p->price_at ? p->price_at + (now - p->price_at) / 1000 * 1000 : now;
  int moved = 0;
  for (struct lane *l = p->lanes; l; l = l->next) {
    dw_price_update(&l->price, p->price_at, l->calls, l->nready, l->limiter.per_minute);
    moved |= l->price.level != 0;
  }
  int ticking = uv_is_active((uv_handle_t *)&p->price_tick);
  if (moved && !ticking && !p->closing)
    uv_timer_start(&p->price_tick, on_price_tick, 1000, 1000);
  else if (!moved && ticking)
    uv_timer_stop(&p->price_tick);
}

static void on_price_tick(uv_timer_t *timer)
{
  struct dw_poller *p = timer->data;
  reprice(p, uv_now(p->loop));
}

static void drive(struct dw_poller *p)
{
  if (p->driving || p->closing)
    return;
  p->driving = 1;
  uv_update_time(p->loop); /* the limiter needs the time of the calls, not of the iteration */
  uint64_t now = uv_now(p->loop);
  apply_ceilings(p);
  if (!p->healthy && !p->probe && !p->nready && now >= p->gate_until) {
    /* Nothing to probe with (work is paused while unhealthy): half-open, let work in again;
     * the next app-level answer closes it. */
    set_health(p, 1, "");
  }
  if (p->nready && now < p->gate_until) {
    uv_timer_start(&p->dispatch, on_dispatch, p->gate_until - now, 0);
    p->driving = 0;
    return;
  }
  /* Lanes take turns, one call each per round, so a busy tenant cannot take every
   * connection from the others. Only lanes with ready tasks and a token are visited: the ring
   * pointer moves on before each call, so the next drive goes on where this one stopped. */
  uint64_t wait = UINT64_MAX;
  int stop = 0;
  while (p->ring && !stop) {
    int sent = 0;
    for (size_t k = p->nring; k > 0 && p->ring && !stop; k--) {
      struct lane *l = p->ring;
      p->ring = l->rnext;
      int r = lane_send_one(p, l, &wait);
      if (r < 0) {
        if (l->in_ring)
          p->ring = l; /* it keeps its turn */
        stop = 1;
      } else {
        sent += r;
      }
    }
    if (!sent)
      break;
  }
  if (wait != UINT64_MAX)
    uv_timer_start(&p->dispatch, on_dispatch, wait, 0);
  reprice(p, now);
  p->driving = 0;
}

void dw_poller_on_token(struct dw_poller *p, const char *tenant_key, int err,
                        const char *reason)
{
  if (p->closing)
    return;
  if (!tenant_key) { /* news for every tenant: each parked lane looks again */
    for (struct lane *l = p->lanes; l; l = l->next)
      if (l->parked)
        lane_park(p, l, 0);
  } else {
    struct lane *l = lane_find(p, tenant_key);
    if (l) {
      lane_park(p, l, 0);
      if (err == 0)
        l->why[0] = '\0';
      else if (tenant_key[0] || err != DW_EINVAL) /* not a refusal of the app's credentials */
        dw_text_copy(l->why, sizeof(l->why), reason ? reason : dw_strerror(err));
      if (l->why[0])
        expire_lane(p, l);
    }
  }
  if (err < 0 && tenant_key && tenant_key[0]) {
    /* One store tenant refused (the app uninstalled there, an unknown tenant_key, ...) or its
     * token endpoint failing: only its tasks wait, until their deadline, while the token
     * manager retries with backoff; the other tenants go on. */
    if (err == DW_EINVAL)
      dw_error("tenant %s: %s; its tasks wait until their deadline", tenant_key, reason);
    drive(p);
    return;
  }
  if (err == DW_EINVAL) {
    app_failure(p, reason, 1); /* the token endpoint refused the app's credentials */
    return;
  }
  if (err == 0 && !p->healthy && !p->probe)
    p->gate_until = 0;
  drive(p);
}

static size_t lane_hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static struct lane *lane_find(struct dw_poller *p, const char *key)
{
  if (!p->nbuckets)
    return NULL;
  for (struct lane *l = p->buckets[lane_hash(key) % p->nbuckets]; l; l = l->hnext)
    if (strcmp(l->key, key) == 0)
      return l;
  return NULL;
}

/* Keeps chains short: twice the buckets when there are as many lanes. */
static int lanes_grow(struct dw_poller *p)
{
  size_t n = p->nbuckets ? p->nbuckets * 2 : 16;
  struct lane **b = calloc(n, sizeof(*b));
  if (!b)
    return DW_ENOMEM;
  for (struct lane *l = p->lanes; l; l = l->next) {
    size_t i = lane_hash(l->key) % n;
    l->hnext = b[i];
    b[i] = l;
  }
  free(p->buckets);
  p->buckets = b;
  p->nbuckets = n;
  return 0;
}

static void lane_remove(struct dw_poller *p, struct lane *l)
{
  struct lane **pp = &p->buckets[lane_hash(l->key) % p->nbuckets];
  while (*pp != l)
    pp = &(*pp)->hnext;
  *pp = l->hnext;
  if (l->prev)
    l->prev->next = l->next;
  else
    p->lanes = l->next;
  if (l->next)
    l->next->prev = l->prev;
  p->nlanes--;
  lane_free(l);
}

/* Frees the lanes that have had no task for LANE_IDLE_MS (their limiter's memory is of no use
 * after a minute), and lets parked lanes look for their token again in case no news came. */
static void on_sweep(uv_timer_t *timer)
{
  struct dw_poller *p = timer->data;
  uint64_t now = uv_now(p->loop);
  struct lane *next;
  for (struct lane *l = p->lanes; l; l = next) {
    next = l->next;
    if (!l->ntasks && now - l->idle_since >= LANE_IDLE_MS)
      lane_remove(p, l);
    else if (l->parked)
      lane_park(p, l, 0);
  }
  drive(p);
}

/* The lane of a tenant, created with its limiter on first use; NULL without memory. */
static struct lane *lane_get(struct dw_poller *p, const char *key)
{
  struct lane *found = lane_find(p, key);
  if (found)
    return found;
  if (p->nlanes >= p->nbuckets && lanes_grow(p) < 0)
    return NULL;
  struct lane *l = calloc(1, sizeof(*l));
  if (!l || dw_limiter_init(&l->limiter, p->opt.rate_per_second, p->opt.rate_per_minute) < 0) {
    free(l);
    return NULL;
  }
  dw_strlcpy(l->key, key, sizeof(l->key));
  dw_price_init(&l->price, p->idle_share);
  l->limiter.slack_ms = p->opt.jitter_ms;
  dw_limiter_set_ceiling(&l->limiter, p->ceil_per_second, p->ceil_per_minute);
  uint64_t now = uv_now(p->loop);
  l->limiter.blocked_until_ms = DW_MAX(p->start_block_until, now);
  dw_limiter_slow_start(&l->limiter, l->limiter.blocked_until_ms);
  l->idle_since = now;
  size_t i = lane_hash(key) % p->nbuckets;
  l->hnext = p->buckets[i];
  p->buckets[i] = l;
  l->next = p->lanes;
  if (p->lanes)
    p->lanes->prev = l;
  p->lanes = l;
  p->nlanes++;
  return l;
}

static struct options options_of(const struct dw_config *cfg)
{
  const struct dw_config_poll *poll = &cfg->poll;
  struct options o = {
      .request_timeout_ms = (long)cfg->feishu.request_timeout_ms,
      .schedule = {
          .kind = strcmp(poll->schedule, "fixed") == 0 ? DW_SCHEDULE_FIXED
                                                       : DW_SCHEDULE_EXPONENTIAL,
          .first_delay_ms = (uint64_t)poll->first_delay_ms,
          .interval_ms = (uint64_t)poll->interval_ms,
          .max_interval_ms = (uint64_t)poll->max_interval_ms,
          .multiplier = poll->multiplier,
          .jitter = poll->jitter,
          .retry_initial_ms = (uint64_t)poll->retry_initial_ms,
          .retry_max_ms = (uint64_t)poll->retry_max_ms,
      },
      .adaptive = strcmp(poll->schedule, "adaptive") == 0,
      .adaptive_opt = {
          .latency_target_ms = (uint64_t)poll->latency_target_ms,
          .min_interval_ms = (uint64_t)poll->min_interval_ms,
          .max_interval_ms = (uint64_t)poll->max_interval_ms,
          .horizon_ms = (uint64_t)poll->deadline_ms,
          .min_observations = DW_ADAPTIVE_MIN_OBSERVATIONS,
          .half_life = DW_ADAPTIVE_HALF_LIFE,
      },
      .deadline_ms = (uint64_t)poll->deadline_ms,
      .rate_per_second = (uint32_t)cfg->feishu.rate_per_second,
      .rate_per_minute = (uint32_t)cfg->feishu.rate_per_minute,
      .jitter_ms = (uint64_t)cfg->limits.jitter_ms,
      .max_calls_in_flight = (size_t)cfg->feishu.max_connections,
  };
  return o;
}

int dw_poller_new(struct dw_poller **out, uv_loop_t *loop, struct dw_http *http,
                  struct dw_token *token, const struct dw_config *cfg,
                  struct dw_metrics *metrics, dw_outcome_cb on_outcome, dw_health_cb on_health,
                  void *arg)
{
  const char *base_url = cfg->feishu.base_url;
  struct dw_poller *p = calloc(1, sizeof(*p));
  if (!p)
    return DW_ENOMEM;
  p->base_url = strdup(base_url);
  p->url_size = strlen(base_url) + sizeof(TASK_URL) + DW_WEBSITE_ID_MAX + DW_TASK_ID_MAX;
  p->url = malloc(p->url_size);
  if (!p->base_url || !p->url) {
    free(p->base_url);
    free(p->url);
    free(p);
    return DW_ENOMEM;
  }
  p->opt = options_of(cfg);
  dw_adaptive_init(&p->adaptive, &p->opt.adaptive_opt);
  p->idle_share = cfg->poll.idle_budget_share;
  /* A worker that just started cannot know what a predecessor (a restart, a replica that just
   * left) spent in the current second: let that second pass before the first call. */
  p->start_block_until = uv_now(loop) + 1000 + p->opt.jitter_ms;
  dw_budget_init(&p->budget, strcmp(cfg->limits.share, "partitions") == 0,
                 cfg->limits.store[0] != '\0', uv_now(loop));
  snprintf(p->store_key, sizeof(p->store_key), "%s:%s", cfg->limits.store_key,
           cfg->feishu.app_id);
  p->ceil_per_second = p->opt.rate_per_second; /* the whole budget until the assignment */
  p->ceil_per_minute = p->opt.rate_per_minute;
  if (cfg->limits.store[0]) {
    char err[256];
    int rc = dw_store_new(&p->store, loop, cfg->limits.store,
                          (uint64_t)cfg->limits.store_timeout_ms, on_store_ready, p, err,
                          sizeof(err));
    if (rc < 0) {
      dw_error("%s", err);
      dw_adaptive_cleanup(&p->adaptive);
      free(p->base_url);
      free(p->url);
      free(p);
      return rc;
    }
    p->handles = 1; /* released when the store is closed */
  }
  p->loop = loop;
  p->http = http;
  p->token = token;
  p->on_outcome = on_outcome;
  p->on_health = on_health;
  p->arg = arg;
  p->healthy = 1;
  p->rng = (uint64_t)uv_hrtime() | 1;
  uv_timer_init(loop, &p->dispatch);
  p->dispatch.data = p;
  uv_timer_init(loop, &p->sweep);
  p->sweep.data = p;
  uv_timer_start(&p->sweep, on_sweep, LANE_SWEEP_MS, LANE_SWEEP_MS);
  uv_unref((uv_handle_t *)&p->sweep); /* housekeeping keeps no loop alive */
  uv_timer_init(loop, &p->price_tick);
  p->price_tick.data = p;
  uv_unref((uv_handle_t *)&p->price_tick);
  p->handles += 3;
  register_metrics(p, metrics);
  *out = p;
  return 0;
}

int dw_poller_submit(struct dw_poller *p, const struct dw_event *ev, int64_t created_ms,
                     void *owner, struct dw_task **out)
{
  if (p->closing)
    return DW_ESTATE;
  /* A self-built app has one tenant, its own: a tenant_key changes neither its token nor its
   * budget (it is still carried into the result). */
  struct lane *lane = lane_get(p, dw_token_per_tenant(p->token) ? ev->tenant_key : "");
  if (!lane)
    return DW_ENOMEM;
  struct dw_task *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  t->p = p;
  t->lane = lane;
  lane->ntasks++;
  t->ev = *ev;
  t->owner = owner;
  /* The task's age so far, from the wall clocks of its producer and ours (dw_task_init
   * ignores one that says nothing useful). */
  dw_task_init(&t->st, uv_now(p->loop), created_ms >= 0 ? dw_wallclock_ms() - created_ms : 0,
               p->opt.deadline_ms);
  uv_timer_init(p->loop, &t->timer);
  t->timer.data = t;
  p->handles++;
  t->all_next = p->all;
  if (p->all)
    p->all->all_prev = t;
  p->all = t;
  p->ntasks++;
  reprice(p, uv_now(p->loop)); /* the plan at the price of now, not of the last drive */
  struct dw_task_env env = task_env(p, t);
  uv_timer_start(&t->timer, on_due, dw_task_next_delay(&t->st, uv_now(p->loop), &env), 0);
  if (out)
    *out = t;
  return 0;
}

void dw_poller_cancel(struct dw_poller *p, struct dw_task *t)
{
  if (t->st.phase == DW_TASK_CANCELLED)
    return;
  if (p->probe == t && t->st.phase != DW_TASK_CALLING)
    p->probe = NULL;
  if (t->st.phase != DW_TASK_CALLING) {
    task_release(t);
    return;
  }
  /* The answer is still coming: unlink now, close the timer when it arrives (on_answer). */
  all_unlink(p, t);
}

void dw_poller_stats(const struct dw_poller *p, struct dw_poller_stats *st)
{
  *st = p->stats;
  st->tasks = p->ntasks;
  st->ready = p->nready;
}

struct dw_adaptive *dw_poller_adaptive(struct dw_poller *p)
{
  return &p->adaptive;
}

uint64_t dw_poller_held_back_ms(const struct dw_poller *p, size_t *lanes)
{
  uint64_t now = uv_now(p->loop), longest = 0;
  size_t n = 0;
  for (const struct lane *l = p->lanes; l; l = l->next) {
    uint64_t held = dw_limiter_held_ms(&l->limiter, now);
    if (held) {
      n++;
      longest = DW_MAX(longest, held);
    }
  }
  if (lanes)
    *lanes = n;
  return longest;
}

int dw_poller_healthy(const struct dw_poller *p)
{
  return p->healthy;
}

static void on_dispatch_closed(uv_handle_t *h)
{
  poller_release(h->data);
}

static void on_store_closed(void *arg)
{
  poller_release(arg);
}

void dw_poller_set_partitions(struct dw_poller *p, size_t assigned, size_t total)
{
  if (dw_budget_set_partitions(&p->budget, assigned, total) && total > 0) {
    dw_info("this replica's share of the API budget: %zu of %zu partitions, %u calls/s and "
            "%u/min", assigned, total, ceiling_second(p), ceiling_minute(p));
  }
  apply_ceilings(p);
}

void dw_poller_close(struct dw_poller *p, void (*done)(void *arg), void *arg)
{
  p->done = done;
  p->done_arg = arg;
  while (p->all)
    dw_poller_cancel(p, p->all);
  p->closing = 1;
  if (p->store)
    dw_store_close(p->store, on_store_closed, p);
  uv_close((uv_handle_t *)&p->dispatch, on_dispatch_closed);
  uv_close((uv_handle_t *)&p->sweep, on_dispatch_closed);
  uv_close((uv_handle_t *)&p->price_tick, on_dispatch_closed);
}
