/* The simulated Feishu world behind dw-sim: configured apps and the tenant tokens issued to
 * them, the registered (and auto-created) delivery tasks, the FIFO of injected faults, per-app
 * fixed rate windows, counters, and the ring of request records that /_sim/requests returns.
 * sim_api.c and sim_control.c hold sim.lock around every call made here. */
#include "sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const sim_id_names[SIM_ID_COUNT] = {
  "application_id", "job_id", "job_post_id", "portal_resume_id", "user_id", "talent_id",
};

const char *const sim_id_prefixes[SIM_ID_COUNT] = {
  "app-", "job-", "jp-", "pr-", "u-", "tal-",
};

void sim_config_defaults(struct sim_config *c)
{
  memset(c, 0, sizeof(*c));
  c->rate_per_second = 50;
  c->rate_per_minute = 1000;
  c->latency_min_ms = 0;
  c->latency_max_ms = 0;
  c->arrival_jitter_ms = 0;
  c->token_ttl_s = 7200;
  c->unknown_tasks = SIM_UNKNOWN_NOT_FOUND;
  c->ready_dist = SIM_READY_FIXED;
  c->ready_ms = 0;
  c->auto_never = 0;
  c->auto_failed = 0;
  c->seed = 1;
}

#define LATENCY_MAX_MS 3600000LL

int sim_config_parse_latency(const char *s, long long *min, long long *max)
{
  char lo[32];
  const char *dash = strchr(s, '-');
  long long a, b;
  size_t n;

  if (!dash) {
    if (sim_parse_ll(s, 0, LATENCY_MAX_MS, &a))
      return SIM_EINVAL;
    *min = *max = a;
    return 0;
  }
  n = (size_t)(dash - s);
  if (n == 0 || n >= sizeof(lo))
    return SIM_EINVAL;
  memcpy(lo, s, n);
  lo[n] = '\0';
  if (sim_parse_ll(lo, 0, LATENCY_MAX_MS, &a) || sim_parse_ll(dash + 1, 0, LATENCY_MAX_MS, &b) || b < a)
    return SIM_EINVAL;
  *min = a;
  *max = b;
  return 0;
}

int sim_config_parse_ready(const char *s, struct sim_config *c)
{
  char tmp[128], *parts[4], *p;
  size_t n = strlen(s), np = 0;
  double v[3];

  if (n >= sizeof(tmp))
    return SIM_EINVAL;
  memcpy(tmp, s, n + 1);
  for (p = tmp, parts[np++] = tmp; *p; p++) {
    if (*p == ':') {
      if (np == SIM_ARRAY_SIZE(parts))
        return SIM_EINVAL;
      *p = '\0';
      parts[np++] = p + 1;
    }
  }
  if (strcmp(parts[0], "fixed") == 0 && np == 2) {
    if (sim_parse_double(parts[1], 0, 1e9, &v[0]))
      return SIM_EINVAL;
    c->ready_dist = SIM_READY_FIXED;
    c->ready_ms = v[0];
    c->ready_sigma = 0;
    c->ready_max_ms = v[0];
    return 0;
  }
  if (strcmp(parts[0], "lognormal") == 0 && np == 4) {
    if (sim_parse_double(parts[1], 0, 1e9, &v[0]) || sim_parse_double(parts[2], 0, 100, &v[1]) ||
        sim_parse_double(parts[3], 0, 1e9, &v[2]))
      return SIM_EINVAL;
    c->ready_dist = SIM_READY_LOGNORMAL;
    c->ready_ms = v[0];
    c->ready_sigma = v[1];
    c->ready_max_ms = v[2];
    return 0;
  }
  return SIM_EINVAL;
}

void sim_config_format_ready(const struct sim_config *c, char *buf, size_t size)
{
  if (c->ready_dist == SIM_READY_FIXED)
    snprintf(buf, size, "fixed:%.17g", c->ready_ms);
  else
    snprintf(buf, size, "lognormal:%.17g:%.17g:%.17g", c->ready_ms, c->ready_sigma, c->ready_max_ms);
}

const char *sim_fault_kind_name(enum sim_fault_kind k)
{
  switch (k) {
  case SIM_FAULT_HTTP_500: return "http_500";
  case SIM_FAULT_CODE: return "code";
  case SIM_FAULT_TIMEOUT: return "timeout";
  case SIM_FAULT_RESET: return "reset";
  case SIM_FAULT_GARBAGE: return "garbage";
  case SIM_FAULT_RATE_LIMIT: return "rate_limit";
  case SIM_FAULT_TRUNCATED: return "truncated";
  case SIM_FAULT_HUGE: return "huge";
  case SIM_FAULT_SLOWLORIS: return "slowloris";
  case SIM_FAULT_BAD_UTF8: return "bad_utf8";
  case SIM_FAULT_DEEP_JSON: return "deep_json";
  case SIM_FAULT_WRONG_TYPE: return "wrong_type";
  case SIM_FAULT_EMPTY_200: return "empty_200";
  case SIM_FAULT_RAW: return "raw";
  }
  return "?";
}

void sim_fault_cleanup(struct sim_fault *f)
{
  free(f->msg);
  f->msg = NULL;
}

struct sim_task *sim_task_new(const char *website, size_t wlen, const char *task_id, size_t tlen)
{
  struct sim_task *t = calloc(1, sizeof(*t));

  if (!t)
    return NULL;
  t->key = malloc(wlen + 1 + tlen + 1);
  if (!t->key) {
    free(t);
    return NULL;
  }
  memcpy(t->key, website, wlen);
  t->key[wlen] = '/';
  memcpy(t->key + wlen + 1, task_id, tlen);
  t->key[wlen + 1 + tlen] = '\0';
  t->website_len = wlen;
  t->task_id = t->key + wlen + 1;
  t->node.key = t->key;
  t->node.klen = wlen + 1 + tlen;
  t->final = SIM_FINAL_SUCCEEDED;
  t->pending = SIM_PENDING_ROTATE;
  return t;
}

void sim_task_free(struct sim_task *t)
{
  size_t i;

  if (!t)
    return;
  for (i = 0; i < t->nerrors; i++)
    sim_fault_cleanup(&t->errors[i]);
  free(t->errors);
  for (i = 0; i < SIM_ID_COUNT; i++)
    free(t->ids[i]);
  free(t->status_msg);
  free(t->extra_info);
  free(t->key);
  free(t);
}

int sim_init(struct sim *s, const struct sim_config *cfg, const struct sim_app *apps, size_t napps,
             size_t max_records)
{
  struct timespec ts;
  int rc = SIM_ENOMEM;
  size_t i;

  memset(s, 0, sizeof(*s));
  if (pthread_mutex_init(&s->lock, NULL) != 0)
    return SIM_ENOMEM;
  s->cfg = *cfg;
  s->t0_ms = sim_mono_ms();
  s->rng = cfg->seed ^ 0x5eed5eed5eed5eedULL;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->rng_token = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
  s->rng_token ^= (uint64_t)getpid() << 32;
  s->apps = calloc(napps ? napps : 1, sizeof(*s->apps));
  if (!s->apps)
    goto out;
  for (i = 0; i < napps; i++) {
    s->apps[i] = apps[i];
    s->apps[i].current = NULL;
    s->apps[i].app_current = NULL;
  }
  s->napps = napps;
  s->rec_max = max_records ? max_records : 1;
  /* calloc of a large array is lazily backed by the kernel; only used slots cost memory. */
  s->recs = calloc(s->rec_max, sizeof(*s->recs));
  if (!s->recs)
    goto out;
  if (sim_htab_init(&s->tokens) || sim_htab_init(&s->tasks))
    goto out;
  rc = 0;
out:
  if (rc)
    sim_cleanup(s);
  return rc;
}

static void tokens_free_all(struct sim *s)
{
  size_t i;

  for (i = 0; i < s->tokens.nbuckets; i++) {
    struct sim_hnode *n = s->tokens.buckets[i], *next;
    for (; n; n = next) {
      next = n->next;
      free(SIM_CONTAINER_OF(n, struct sim_token, node));
    }
    s->tokens.buckets[i] = NULL;
  }
  s->tokens.count = 0;
  for (i = 0; i < s->napps; i++)
    s->apps[i].current = s->apps[i].app_current = NULL;
  for (i = 0; i < s->nwins; i++)
    s->wins[i].current = NULL;
}

/* t is about to be freed: nothing may still point at it. */
static void token_forget(struct sim *s, const struct sim_token *t)
{
  size_t i;

  if (s->apps[t->app].current == t)
    s->apps[t->app].current = NULL;
  if (s->apps[t->app].app_current == t)
    s->apps[t->app].app_current = NULL;
  for (i = 0; i < s->nwins; i++)
    if (s->wins[i].current == t)
      s->wins[i].current = NULL;
}

static void records_clear(struct sim *s)
{
  size_t i;

  if (!s->recs)
    return;
  for (i = 0; i < s->rec_max; i++) {
    free(s->recs[i]);
    s->recs[i] = NULL;
  }
  s->rec_total = 0;
}

static void stats_clear(struct sim *s)
{
  free(s->stats.by_code);
  memset(&s->stats, 0, sizeof(s->stats));
}

void sim_cleanup(struct sim *s)
{
  sim_tasks_clear(s);
  sim_faults_clear(s);
  free(s->faults);
  s->faults = NULL;
  tokens_free_all(s);
  sim_htab_cleanup(&s->tokens);
  sim_htab_cleanup(&s->tasks);
  records_clear(s);
  free(s->recs);
  s->recs = NULL;
  stats_clear(s);
  free(s->apps);
  free(s->wins);
  s->apps = NULL;
  pthread_mutex_destroy(&s->lock);
}

uint64_t sim_now(const struct sim *s)
{
  return sim_mono_ms() - s->t0_ms;
}

void sim_log_id(struct sim *s, char *out, size_t size)
{
  time_t now = time(NULL);
  struct tm tm;
  char date[16];
  uint64_t r = sim_rand_next(&s->rng_token);

  gmtime_r(&now, &tm);
  strftime(date, sizeof(date), "%Y%m%d%H%M%S", &tm);
  /* Date like the real X-Tt-Logid, then 8 random and 12 sequence hex digits: unique per run. */
  snprintf(out, size, "%s%08" PRIX64 "%012" PRIX64, date, r >> 32,
           (++s->logid_seq) & (uint64_t)0xffffffffffffULL);
}

struct sim_token *sim_token_find(struct sim *s, const char *tok, size_t len)
{
  struct sim_hnode *n = sim_htab_find(&s->tokens, tok, len);
  return n ? SIM_CONTAINER_OF(n, struct sim_token, node) : NULL;
}

static void tokens_sweep(struct sim *s, uint64_t now)
{
  size_t i;

  for (i = 0; i < s->tokens.nbuckets; i++) {
    struct sim_hnode **pp = &s->tokens.buckets[i];
    while (*pp) {
      struct sim_token *t = SIM_CONTAINER_OF(*pp, struct sim_token, node);
      if (t->expires_ms > now) {
        pp = &(*pp)->next;
        continue;
      }
      *pp = t->node.next;
      s->tokens.count--;
      token_forget(s, t);
      free(t);
    }
  }
}

struct sim_token *sim_token_issue(struct sim *s, size_t app)
{
  return sim_token_issue_kind(s, app, SIM_TOKEN_TENANT, "");
}

struct sim_token *sim_token_issue_kind(struct sim *s, size_t app, int kind, const char *tenant)
{
  static const char hex[] = "0123456789abcdef";
  uint64_t now = sim_now(s);
  struct sim_token *t;
  size_t i;

  /* Expired tokens are useless; drop them now and then so a short TTL cannot grow the table. */
  if (++s->tokens_since_sweep >= 1024) {
    s->tokens_since_sweep = 0;
    tokens_sweep(s, now);
  }
  t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  do {
    uint64_t r = 0;
    t->token[0] = kind == SIM_TOKEN_APP ? 'a' : 't';
    t->token[1] = '-';
    for (i = 2; i < SIM_TOKEN_LEN; i++) {
      if ((i - 2) % 16 == 0)
        r = sim_rand_next(&s->rng_token);
      t->token[i] = hex[r & 15];
      r >>= 4;
    }
    t->token[SIM_TOKEN_LEN] = '\0';
  } while (sim_token_find(s, t->token, SIM_TOKEN_LEN));
  t->app = app;
  t->kind = kind;
  snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
  t->expires_ms = now + (uint64_t)s->cfg.token_ttl_s * 1000;
  t->node.key = t->token;
  t->node.klen = SIM_TOKEN_LEN;
  sim_htab_insert(&s->tokens, &t->node);
  if (kind == SIM_TOKEN_APP) {
    s->apps[app].app_current = t;
  } else if (tenant[0]) {
    struct sim_win *w = sim_win_get(s, app, tenant);
    if (w)
      w->current = t;
  } else {
    s->apps[app].current = t;
  }
  s->stats.tokens_issued++;
  return t;
}

size_t sim_tokens_revoke(struct sim *s)
{
  size_t n = s->tokens.count;
  tokens_free_all(s);
  return n;
}

size_t sim_tokens_revoke_tenant(struct sim *s, const char *tenant)
{
  size_t i, n = 0;

  for (i = 0; i < s->tokens.nbuckets; i++) {
    struct sim_hnode **pp = &s->tokens.buckets[i];
    while (*pp) {
      struct sim_token *t = SIM_CONTAINER_OF(*pp, struct sim_token, node);
      if (t->kind != SIM_TOKEN_TENANT || strcmp(t->tenant, tenant) != 0) {
        pp = &(*pp)->next;
        continue;
      }
      *pp = t->node.next;
      s->tokens.count--;
      token_forget(s, t);
      free(t);
      n++;
    }
  }
  return n;
}

struct sim_win *sim_win_get(struct sim *s, size_t app, const char *tenant)
{
  size_t i;

  for (i = 0; i < s->nwins; i++)
    if (s->wins[i].app == app && strcmp(s->wins[i].tenant, tenant) == 0)
      return &s->wins[i];
  if (s->nwins == s->capwins) {
    size_t cap = s->capwins ? s->capwins * 2 : 16;
    struct sim_win *w = realloc(s->wins, cap * sizeof(*w));
    if (!w)
      return NULL;
    s->wins = w;
    s->capwins = cap;
  }
  memset(&s->wins[s->nwins], 0, sizeof(s->wins[0]));
  s->wins[s->nwins].app = app;
  snprintf(s->wins[s->nwins].tenant, sizeof(s->wins[0].tenant), "%s", tenant);
  return &s->wins[s->nwins++];
}

struct sim_task *sim_task_find(struct sim *s, const char *website, size_t wlen, const char *task_id,
                               size_t tlen)
{
  char key[SIM_WEBSITE_ID_MAX + 1 + SIM_TASK_ID_MAX + 1];
  struct sim_hnode *n;

  if (wlen > SIM_WEBSITE_ID_MAX || tlen > SIM_TASK_ID_MAX)
    return NULL;
  memcpy(key, website, wlen);
  key[wlen] = '/';
  memcpy(key + wlen + 1, task_id, tlen);
  n = sim_htab_find(&s->tasks, key, wlen + 1 + tlen);
  return n ? SIM_CONTAINER_OF(n, struct sim_task, node) : NULL;
}

void sim_task_put(struct sim *s, struct sim_task *t)
{
  struct sim_hnode *old = sim_htab_find(&s->tasks, t->node.key, t->node.klen);

  if (old) {
    sim_htab_remove(&s->tasks, old);
    sim_task_free(SIM_CONTAINER_OF(old, struct sim_task, node));
  }
  sim_htab_insert(&s->tasks, &t->node);
}

void sim_tasks_clear(struct sim *s)
{
  size_t i;

  for (i = 0; i < s->tasks.nbuckets; i++) {
    struct sim_hnode *n = s->tasks.buckets[i], *next;
    for (; n; n = next) {
      next = n->next;
      sim_task_free(SIM_CONTAINER_OF(n, struct sim_task, node));
    }
    s->tasks.buckets[i] = NULL;
  }
  s->tasks.count = 0;
}

int sim_fault_push(struct sim *s, const struct sim_fault *f)
{
  struct sim_fault copy = *f;

  if (s->faults_head > 0 && s->nfaults == s->faults_cap) {
    /* Compact the consumed head before growing. */
    memmove(s->faults, s->faults + s->faults_head,
            (s->nfaults - s->faults_head) * sizeof(*s->faults));
    s->nfaults -= s->faults_head;
    s->faults_head = 0;
  }
  if (s->nfaults == s->faults_cap) {
    size_t cap = s->faults_cap ? s->faults_cap * 2 : 16;
    struct sim_fault *p = realloc(s->faults, cap * sizeof(*p));
    if (!p)
      return SIM_ENOMEM;
    s->faults = p;
    s->faults_cap = cap;
  }
  copy.msg = NULL;
  if (f->msg) {
    copy.msg = sim_strndup(f->msg, strlen(f->msg));
    if (!copy.msg)
      return SIM_ENOMEM;
  }
  s->faults[s->nfaults++] = copy;
  return 0;
}

int sim_fault_take(struct sim *s, struct sim_fault *out)
{
  struct sim_fault *f;

  if (s->faults_head == s->nfaults)
    return 0;
  f = &s->faults[s->faults_head];
  *out = *f;
  out->count = 1;
  if (--f->count > 0) {
    out->msg = f->msg ? sim_strndup(f->msg, strlen(f->msg)) : NULL; /* NULL on ENOMEM: default msg */
    return 1;
  }
  f->msg = NULL; /* moved to out */
  s->faults_head++;
  if (s->faults_head == s->nfaults)
    s->faults_head = s->nfaults = 0;
  return 1;
}

long long sim_faults_pending(const struct sim *s)
{
  long long n = 0;
  size_t i;

  for (i = s->faults_head; i < s->nfaults; i++)
    n += s->faults[i].count;
  return n;
}

void sim_faults_clear(struct sim *s)
{
  size_t i;

  for (i = s->faults_head; i < s->nfaults; i++)
    sim_fault_cleanup(&s->faults[i]);
  s->faults_head = s->nfaults = 0;
}

/* The windows being admitted into: the app's own, or a store tenant's. */
struct rate_windows {
  uint64_t *sec_window, *min_window;
  long long *sec_count, *min_count;
};

static int rate_admit(struct sim *s, struct rate_windows *a, uint64_t now, long long *limit,
                      long long *reset_s);

int sim_rate_admit(struct sim *s, size_t app, uint64_t now, long long *limit, long long *reset_s)
{
  return sim_rate_admit_tenant(s, app, "", now, limit, reset_s);
}

int sim_rate_admit_tenant(struct sim *s, size_t app, const char *tenant, uint64_t now,
                          long long *limit, long long *reset_s)
{
  struct sim_app *ap = &s->apps[app];
  struct sim_win *w = tenant[0] ? sim_win_get(s, app, tenant) : NULL;
  struct rate_windows r = {ap->sec_window, ap->min_window, ap->sec_count, ap->min_count};
  if (w) {
    r.sec_window = w->sec_window;
    r.min_window = w->min_window;
    r.sec_count = w->sec_count;
    r.min_count = w->min_count;
  }
  return rate_admit(s, &r, now, limit, reset_s);
}

/* The count of window index w in a pair of slots (see sim_app), started afresh when the slot
 * holds an older window. A window older than the slot's (possible only with a jitter longer
 * than a window) shares the slot's count. */
static long long *window_slot(uint64_t *index, long long *count, uint64_t w)
{
  size_t i = (size_t)(w & 1);
  if (index[i] < w) {
    index[i] = w;
    count[i] = 0;
  }
  return &count[i];
}

static int rate_admit(struct sim *s, struct rate_windows *a, uint64_t now, long long *limit,
                      long long *reset_s)
{
  uint64_t sec, min;
  long long *sec_count, *min_count;

  /* Arrival jitter: the request counts as if it arrived up to N ms later (a gateway in front
   * of the counter, a busy network). */
  if (s->cfg.arrival_jitter_ms > 0)
    now += sim_rand_next(&s->rng) % (uint64_t)(s->cfg.arrival_jitter_ms + 1);
  sec = now / 1000;
  min = now / 60000;
  sec_count = window_slot(a->sec_window, a->sec_count, sec);
  min_count = window_slot(a->min_window, a->min_count, min);
  /* The minute window first: when it is exhausted, waiting for the next second is no use. */
  if (s->cfg.rate_per_minute > 0 && *min_count >= s->cfg.rate_per_minute) {
    *limit = s->cfg.rate_per_minute;
    *reset_s = (long long)(((min + 1) * 60000 - now + 999) / 1000);
    goto limited;
  }
  if (s->cfg.rate_per_second > 0 && *sec_count >= s->cfg.rate_per_second) {
    *limit = s->cfg.rate_per_second;
    *reset_s = (long long)(((sec + 1) * 1000 - now + 999) / 1000);
    goto limited;
  }
  (*sec_count)++;
  (*min_count)++;
  if (s->stats.win_1s != sec) {
    s->stats.win_1s = sec;
    s->stats.win_1s_count = 0;
  }
  if (++s->stats.win_1s_count > s->stats.max_calls_in_1s)
    s->stats.max_calls_in_1s = s->stats.win_1s_count;
  return 1;
limited:
  if (*reset_s < 1)
    *reset_s = 1;
  return 0;
}

void sim_stats_count(struct sim *s, const char *key)
{
  struct sim_stats *st = &s->stats;
  size_t i;

  for (i = 0; i < st->nby_code; i++) {
    if (strcmp(st->by_code[i].key, key) == 0) {
      st->by_code[i].n++;
      return;
    }
  }
  if (st->nby_code == st->capby_code) {
    size_t cap = st->capby_code ? st->capby_code * 2 : 16;
    struct sim_code_count *p = realloc(st->by_code, cap * sizeof(*p));
    if (!p)
      return;
    st->by_code = p;
    st->capby_code = cap;
  }
  snprintf(st->by_code[st->nby_code].key, sizeof(st->by_code[0].key), "%s", key);
  st->by_code[st->nby_code].n = 1;
  st->nby_code++;
}

static size_t opt_len(const char *p)
{
  return p ? strlen(p) + 1 : 0;
}

static const char *opt_copy(char **dst, const char *src)
{
  char *p = *dst;
  size_t n;

  if (!src)
    return NULL;
  n = strlen(src) + 1;
  memcpy(p, src, n);
  *dst += n;
  return p;
}

/* Most records are of the two Feishu paths; rebuilding those on output instead of storing them
 * keeps a million records near 150 MB. */
static int path_kind(const struct sim_record *r)
{
  static const size_t plen = sizeof(SIM_PATH_TASK_PREFIX) - 1, mlen = sizeof(SIM_PATH_TASK_MIDDLE) - 1;
  const char *p = r->path;
  size_t wlen;

  if (!p)
    return 0;
  if (strcmp(p, SIM_PATH_TOKEN) == 0)
    return 2;
  if (!r->website_id || !r->task_id || strncmp(p, SIM_PATH_TASK_PREFIX, plen) != 0)
    return 0;
  p += plen;
  wlen = strlen(r->website_id);
  if (strncmp(p, r->website_id, wlen) != 0 || strncmp(p + wlen, SIM_PATH_TASK_MIDDLE, mlen) != 0 ||
      strcmp(p + wlen + mlen, r->task_id) != 0)
    return 0;
  return 1;
}

const char *sim_record_path(const struct sim_record *r, char *buf, size_t size)
{
  switch (r->path_kind) {
  case 1:
    snprintf(buf, size, "%s%s%s%s", SIM_PATH_TASK_PREFIX, r->website_id, SIM_PATH_TASK_MIDDLE, r->task_id);
    return buf;
  case 2: return SIM_PATH_TOKEN;
  default: return r->path;
  }
}

void sim_record_add(struct sim *s, const struct sim_record *r)
{
  int kind = path_kind(r);
  const char *path = kind ? NULL : r->path;
  size_t size = sizeof(*r) + opt_len(r->method) + opt_len(path) + opt_len(r->website_id) +
                opt_len(r->task_id) + opt_len(r->app_id) + opt_len(r->token) + opt_len(r->log_id) +
                opt_len(r->tenant_key);
  struct sim_record *c = malloc(size);
  size_t slot;
  char *p;

  if (!c)
    return;
  *c = *r;
  c->path_kind = kind;
  p = c->text;
  c->method = opt_copy(&p, r->method);
  c->path = opt_copy(&p, path);
  c->website_id = opt_copy(&p, r->website_id);
  c->task_id = opt_copy(&p, r->task_id);
  c->app_id = opt_copy(&p, r->app_id);
  c->token = opt_copy(&p, r->token);
  c->log_id = opt_copy(&p, r->log_id);
  c->tenant_key = opt_copy(&p, r->tenant_key);
  slot = (size_t)(s->rec_total % s->rec_max);
  free(s->recs[slot]);
  s->recs[slot] = c;
  s->rec_total++;
}

uint64_t sim_record_first(const struct sim *s)
{
  return s->rec_total > s->rec_max ? s->rec_total - s->rec_max : 0;
}

const struct sim_record *sim_record_get(const struct sim *s, uint64_t index)
{
  if (index < sim_record_first(s) || index >= s->rec_total)
    return NULL;
  return s->recs[index % s->rec_max];
}

void sim_reset(struct sim *s)
{
  size_t i;

  sim_tasks_clear(s);
  sim_faults_clear(s);
  records_clear(s);
  stats_clear(s);
  for (i = 0; i < s->napps; i++) {
    memset(s->apps[i].sec_window, 0, sizeof(s->apps[i].sec_window));
    memset(s->apps[i].min_window, 0, sizeof(s->apps[i].min_window));
    memset(s->apps[i].sec_count, 0, sizeof(s->apps[i].sec_count));
    memset(s->apps[i].min_count, 0, sizeof(s->apps[i].min_count));
    s->apps[i].resends = 0;
  }
  for (i = 0; i < s->nwins; i++) {
    memset(s->wins[i].sec_window, 0, sizeof(s->wins[i].sec_window));
    memset(s->wins[i].min_window, 0, sizeof(s->wins[i].min_window));
    memset(s->wins[i].sec_count, 0, sizeof(s->wins[i].sec_count));
    memset(s->wins[i].min_count, 0, sizeof(s->wins[i].min_count));
  }
}
