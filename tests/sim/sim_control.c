/* The /_sim/ control plane of dw-sim: tests script the world here (tasks, faults, config, token
 * revocation, reset) and read back what happened (stats, the request log). JSON in and out, no
 * auth, no rate limit, no latency, never recorded. Request bodies are parsed and validated before
 * sim.lock is taken, so a 64 MiB task upload does not stall the Feishu endpoints for longer than
 * the inserts take; a body with any invalid entry changes nothing. */
#include "sim.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRBUF 256

static void answer_json_error(struct sim_answer *a, int http, const char *msg)
{
  a->http = http;
  sim_buf_free(&a->body);
  sim_buf_adds(&a->body, "{\"error\":");
  sim_buf_add_jstr(&a->body, msg);
  sim_buf_adds(&a->body, "}");
}

/* An integral JSON number in [min, max]. */
static int json_int(const cJSON *v, long long min, long long max, long long *out)
{
  double d;

  if (!cJSON_IsNumber(v))
    return SIM_EINVAL;
  d = v->valuedouble;
  if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
    return SIM_ERANGE;
  *out = (long long)d;
  return 0;
}

static int json_double(const cJSON *v, double min, double max, double *out)
{
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max)
    return SIM_EINVAL;
  *out = v->valuedouble;
  return 0;
}

static int json_text(const cJSON *v, size_t max, const char **out)
{
  if (!cJSON_IsString(v) || strlen(v->valuestring) > max)
    return SIM_EINVAL;
  *out = v->valuestring;
  return 0;
}

static cJSON *parse_body(const struct sim_req *rq, struct sim_answer *a)
{
  cJSON *json;

  if (rq->body_too_large) {
    answer_json_error(a, 413, "request body too large");
    return NULL;
  }
  if (!rq->body || !rq->body_len) {
    answer_json_error(a, 400, "request body required");
    return NULL;
  }
  json = cJSON_ParseWithLengthOpts(rq->body, rq->body_len, NULL, 0);
  if (!json)
    answer_json_error(a, 400, "body is not valid JSON");
  return json;
}

static const struct {
  const char *name;
  enum sim_fault_kind kind;
} fault_kinds[] = {
  {"http_500", SIM_FAULT_HTTP_500}, {"code", SIM_FAULT_CODE},       {"timeout", SIM_FAULT_TIMEOUT},
  {"reset", SIM_FAULT_RESET},       {"garbage", SIM_FAULT_GARBAGE}, {"rate_limit", SIM_FAULT_RATE_LIMIT},
  {"truncated", SIM_FAULT_TRUNCATED}, {"huge", SIM_FAULT_HUGE}, {"slowloris", SIM_FAULT_SLOWLORIS},
  {"bad_utf8", SIM_FAULT_BAD_UTF8}, {"deep_json", SIM_FAULT_DEEP_JSON},
  {"wrong_type", SIM_FAULT_WRONG_TYPE}, {"empty_200", SIM_FAULT_EMPTY_200},
  {"raw", SIM_FAULT_RAW},
};

int sim_control_parse_fault(const void *json, struct sim_fault *f, char *err, size_t errsize)
{
  const cJSON *o = json, *v;
  const char *kind = NULL, *msg = NULL;
  int have_code = 0, have_delay = 0;
  long long n;
  size_t i;

  memset(f, 0, sizeof(*f));
  f->count = 1;
  f->reset_s = -1;
  if (!cJSON_IsObject(o)) {
    snprintf(err, errsize, "a fault must be an object");
    return SIM_EINVAL;
  }
  cJSON_ArrayForEach(v, o)
  {
    const char *k = v->string ? v->string : "";
    if (strcmp(k, "kind") == 0) {
      if (json_text(v, 32, &kind))
        goto bad;
    } else if (strcmp(k, "count") == 0) {
      if (json_int(v, 1, 1000000000LL, &f->count))
        goto bad;
    } else if (strcmp(k, "code") == 0) {
      if (json_int(v, 1, 9007199254740991LL, &f->code))
        goto bad;
      have_code = 1;
    } else if (strcmp(k, "http") == 0) {
      if (json_int(v, 100, 599, &n))
        goto bad;
      f->http = (int)n;
    } else if (strcmp(k, "delay_ms") == 0) {
      if (json_int(v, 0, 3600000LL, &f->delay_ms))
        goto bad;
      have_delay = 1;
    } else if (strcmp(k, "bytes") == 0) {
      if (json_int(v, 1, 256LL * 1024 * 1024, &f->bytes))
        goto bad;
    } else if (strcmp(k, "msg") == 0) {
      if (json_text(v, SIM_TEXT_MAX, &msg))
        goto bad;
    } else if (strcmp(k, "reset_s") == 0) {
      if (json_int(v, 0, 1000000000LL, &f->reset_s))
        goto bad;
    } else {
      snprintf(err, errsize, "unknown fault field \"%.64s\"", k);
      return SIM_EINVAL;
    }
    continue;
  bad:
    snprintf(err, errsize, "bad value for fault field \"%s\"", k);
    return SIM_EINVAL;
  }
  if (!kind && !have_code) {
    snprintf(err, errsize, "a fault needs \"kind\" (or \"code\")");
    return SIM_EINVAL;
  }
  f->kind = SIM_FAULT_CODE;
  if (kind) {
    for (i = 0; i < SIM_ARRAY_SIZE(fault_kinds); i++)
      if (strcmp(kind, fault_kinds[i].name) == 0)
        break;
    if (i == SIM_ARRAY_SIZE(fault_kinds)) {
      snprintf(err, errsize, "unknown fault kind \"%s\"", kind);
      return SIM_EINVAL;
    }
    f->kind = fault_kinds[i].kind;
  }
  if (f->kind == SIM_FAULT_CODE && !have_code) {
    snprintf(err, errsize, "fault kind \"code\" needs \"code\"");
    return SIM_EINVAL;
  }
  if (f->kind == SIM_FAULT_RAW && !msg) {
    snprintf(err, errsize, "fault kind \"raw\" needs \"msg\" (the body)");
    return SIM_EINVAL;
  }
  if (f->kind == SIM_FAULT_TIMEOUT && !have_delay)
    f->delay_ms = 30000;
  if (f->kind == SIM_FAULT_SLOWLORIS && (!have_delay || f->delay_ms == 0))
    f->delay_ms = 1000;
  if (msg) {
    f->msg = sim_strndup(msg, strlen(msg));
    if (!f->msg) {
      snprintf(err, errsize, "out of memory");
      return SIM_ENOMEM;
    }
  }
  return 0;
}

static const char *const final_names[] = {
  [SIM_FINAL_SUCCEEDED] = "succeeded", [SIM_FINAL_FAILED] = "failed", [SIM_FINAL_NOT_FOUND] = "not_found",
  [SIM_FINAL_INVALID] = "invalid_request", [SIM_FINAL_NEVER] = "never",
};

static const char *const pending_names[] = {
  [SIM_PENDING_ROTATE] = "rotate", [SIM_PENDING_MISSING] = "missing", [SIM_PENDING_NULL] = "null",
  [SIM_PENDING_EMPTY] = "empty",   [SIM_PENDING_STATUS0] = "status0", [SIM_PENDING_STATUS1] = "status1",
};

static int lookup_name(const char *const *names, size_t n, const char *s)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (strcmp(names[i], s) == 0)
      return (int)i;
  return -1;
}

/* website_id may be a string or, for convenience, a non-negative integer below 2^53. */
static int json_website(const cJSON *v, char *buf, size_t size)
{
  long long n;

  if (cJSON_IsString(v)) {
    if (strlen(v->valuestring) >= size)
      return SIM_EINVAL;
    snprintf(buf, size, "%s", v->valuestring);
    return sim_valid_website_id(buf, strlen(buf)) ? 0 : SIM_EINVAL;
  }
  if (json_int(v, 0, 9007199254740991LL, &n))
    return SIM_EINVAL;
  snprintf(buf, size, "%lld", n);
  return 0;
}

/* One task object -> a new task whose ready_at_ms holds ready_after_ms (made absolute on insert). */
static int parse_task(const cJSON *o, struct sim_task **out, char *err, size_t errsize)
{
  char website[SIM_WEBSITE_ID_MAX + 2] = "";
  const char *task_id = NULL, *status_msg = NULL, *extra_info = NULL, *ids[SIM_ID_COUNT] = {0};
  const char *final = NULL, *pending = NULL;
  const cJSON *v, *errors = NULL;
  long long ready_after = 0;
  struct sim_task *t = NULL;
  int rc = SIM_EINVAL, idx, fin = SIM_FINAL_SUCCEEDED, pend = SIM_PENDING_ROTATE;
  size_t i;

  *out = NULL;
  if (!cJSON_IsObject(o)) {
    snprintf(err, errsize, "a task must be an object");
    return SIM_EINVAL;
  }
  cJSON_ArrayForEach(v, o)
  {
    const char *k = v->string ? v->string : "";
    int ok = 0;

    if (strcmp(k, "website_id") == 0) {
      ok = json_website(v, website, sizeof(website)) == 0;
    } else if (strcmp(k, "delivery_task_id") == 0 || strcmp(k, "task_id") == 0) {
      ok = json_text(v, SIM_TASK_ID_MAX, &task_id) == 0 && sim_valid_task_id(task_id, strlen(task_id));
    } else if (strcmp(k, "ready_after_ms") == 0) {
      ok = json_int(v, 0, 1000000000000LL, &ready_after) == 0;
    } else if (strcmp(k, "final") == 0) {
      ok = json_text(v, 32, &final) == 0;
    } else if (strcmp(k, "pending") == 0) {
      ok = json_text(v, 32, &pending) == 0;
    } else if (strcmp(k, "status_msg") == 0) {
      ok = json_text(v, SIM_TEXT_MAX, &status_msg) == 0;
    } else if (strcmp(k, "extra_info") == 0) {
      ok = json_text(v, SIM_TEXT_MAX, &extra_info) == 0;
    } else if (strcmp(k, "errors") == 0) {
      ok = cJSON_IsArray(v);
      errors = v;
    } else {
      for (i = 0; i < SIM_ID_COUNT; i++)
        if (strcmp(k, sim_id_names[i]) == 0)
          break;
      if (i == SIM_ID_COUNT) {
        snprintf(err, errsize, "unknown task field \"%.64s\"", k);
        goto out;
      }
      ok = json_text(v, SIM_TEXT_MAX, &ids[i]) == 0;
    }
    if (!ok) {
      snprintf(err, errsize, "bad value for task field \"%s\"", k);
      goto out;
    }
  }
  if (!website[0] || !task_id) {
    snprintf(err, errsize, "a task needs \"website_id\" (1-32 digits) and \"delivery_task_id\"");
    goto out;
  }
  if (final) {
    idx = lookup_name(final_names, SIM_ARRAY_SIZE(final_names), final);
    if (idx < 0) {
      snprintf(err, errsize, "unknown final \"%s\"", final);
      goto out;
    }
    fin = idx;
  }
  if (pending) {
    idx = lookup_name(pending_names, SIM_ARRAY_SIZE(pending_names), pending);
    if (idx < 0) {
      snprintf(err, errsize, "unknown pending shape \"%s\"", pending);
      goto out;
    }
    pend = idx;
  }
  rc = SIM_ENOMEM;
  t = sim_task_new(website, strlen(website), task_id, strlen(task_id));
  if (!t)
    goto oom;
  t->ready_at_ms = (uint64_t)ready_after;
  t->final = (enum sim_final)fin;
  t->pending = (enum sim_pending)pend;
  if (status_msg && !(t->status_msg = sim_strndup(status_msg, strlen(status_msg))))
    goto oom;
  if (extra_info && !(t->extra_info = sim_strndup(extra_info, strlen(extra_info))))
    goto oom;
  for (i = 0; i < SIM_ID_COUNT; i++)
    if (ids[i] && !(t->ids[i] = sim_strndup(ids[i], strlen(ids[i]))))
      goto oom;
  if (errors) {
    int n = cJSON_GetArraySize(errors);
    if (n > 0) {
      t->errors = calloc((size_t)n, sizeof(*t->errors));
      if (!t->errors)
        goto oom;
    }
    cJSON_ArrayForEach(v, errors)
    {
      char ferr[ERRBUF];
      rc = sim_control_parse_fault(v, &t->errors[t->nerrors], ferr, sizeof(ferr));
      if (rc) {
        snprintf(err, errsize, "errors[%zu]: %s", t->nerrors, ferr);
        goto out;
      }
      t->nerrors++;
    }
  }
  *out = t;
  t = NULL;
  rc = 0;
  goto out;
oom:
  snprintf(err, errsize, "out of memory");
out:
  sim_task_free(t);
  return rc;
}

static void ctl_tasks(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  struct sim_task **tasks = NULL;
  size_t n = 0, i;
  cJSON *json = parse_body(rq, a), *v;
  char err[ERRBUF], msg[ERRBUF + 32];
  uint64_t now;

  if (!json)
    return;
  if (cJSON_IsArray(json)) {
    n = (size_t)cJSON_GetArraySize(json);
    tasks = calloc(n ? n : 1, sizeof(*tasks));
    if (!tasks) {
      answer_json_error(a, 500, "out of memory");
      goto out;
    }
    i = 0;
    cJSON_ArrayForEach(v, json)
    {
      if (parse_task(v, &tasks[i], err, sizeof(err))) {
        snprintf(msg, sizeof(msg), "tasks[%zu]: %s", i, err);
        answer_json_error(a, 400, msg);
        goto out;
      }
      i++;
    }
  } else {
    n = 1;
    tasks = calloc(1, sizeof(*tasks));
    if (!tasks) {
      answer_json_error(a, 500, "out of memory");
      goto out;
    }
    if (parse_task(json, &tasks[0], err, sizeof(err))) {
      answer_json_error(a, 400, err);
      goto out;
    }
  }
  pthread_mutex_lock(&s->lock);
  now = sim_now(s);
  for (i = 0; i < n; i++) {
    tasks[i]->ready_at_ms += now; /* ready_after_ms counts from registration */
    sim_task_put(s, tasks[i]);
    tasks[i] = NULL;
  }
  pthread_mutex_unlock(&s->lock);
  a->http = 200;
  sim_buf_addf(&a->body, "{\"registered\":%zu}", n);
out:
  if (tasks)
    for (i = 0; i < n; i++)
      sim_task_free(tasks[i]);
  free(tasks);
  cJSON_Delete(json);
}

static void ctl_faults_add(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  struct sim_fault *faults = NULL;
  size_t n = 0, i, nparsed = 0;
  cJSON *json = parse_body(rq, a), *v;
  char err[ERRBUF], msg[ERRBUF + 32];
  long long pending;
  int rc = 0;

  if (!json)
    return;
  n = cJSON_IsArray(json) ? (size_t)cJSON_GetArraySize(json) : 1;
  faults = calloc(n ? n : 1, sizeof(*faults));
  if (!faults) {
    answer_json_error(a, 500, "out of memory");
    goto out;
  }
  if (cJSON_IsArray(json)) {
    cJSON_ArrayForEach(v, json)
    {
      if (sim_control_parse_fault(v, &faults[nparsed], err, sizeof(err))) {
        snprintf(msg, sizeof(msg), "faults[%zu]: %s", nparsed, err);
        answer_json_error(a, 400, msg);
        goto out;
      }
      nparsed++;
    }
  } else {
    if (sim_control_parse_fault(json, &faults[0], err, sizeof(err))) {
      answer_json_error(a, 400, err);
      goto out;
    }
    nparsed = 1;
  }
  pthread_mutex_lock(&s->lock);
  for (i = 0; i < nparsed && !rc; i++)
    rc = sim_fault_push(s, &faults[i]);
  pending = sim_faults_pending(s);
  pthread_mutex_unlock(&s->lock);
  if (rc) {
    answer_json_error(a, 500, "out of memory");
    goto out;
  }
  a->http = 200;
  sim_buf_addf(&a->body, "{\"queued\":%zu,\"pending\":%lld}", nparsed, pending);
out:
  for (i = 0; i < nparsed; i++)
    sim_fault_cleanup(&faults[i]);
  free(faults);
  cJSON_Delete(json);
}

static void ctl_faults_list(struct sim *s, struct sim_answer *a)
{
  size_t i;

  a->http = 200;
  pthread_mutex_lock(&s->lock);
  sim_buf_addf(&a->body, "{\"pending\":%lld,\"faults\":[", sim_faults_pending(s));
  for (i = s->faults_head; i < s->nfaults; i++) {
    const struct sim_fault *f = &s->faults[i];
    sim_buf_addf(&a->body, "%s{\"kind\":\"%s\",\"count\":%lld,\"code\":%lld,\"http\":%d,\"delay_ms\":%lld}",
                 i > s->faults_head ? "," : "", sim_fault_kind_name(f->kind), f->count, f->code, f->http,
                 f->delay_ms);
  }
  sim_buf_adds(&a->body, "]}");
  pthread_mutex_unlock(&s->lock);
}

static void write_config(const struct sim_config *c, struct sim_buf *b)
{
  char ready[128];

  sim_config_format_ready(c, ready, sizeof(ready));
  sim_buf_addf(b, "{\"rate_per_second\":%lld,\"rate_per_minute\":%lld,", c->rate_per_second,
               c->rate_per_minute);
  if (c->latency_min_ms == c->latency_max_ms)
    sim_buf_addf(b, "\"latency_ms\":%lld,", c->latency_min_ms);
  else
    sim_buf_addf(b, "\"latency_ms\":\"%lld-%lld\",", c->latency_min_ms, c->latency_max_ms);
  sim_buf_addf(b, "\"arrival_jitter_ms\":%lld,", c->arrival_jitter_ms);
  sim_buf_addf(b, "\"token_ttl\":%lld,\"unknown_tasks\":\"%s\",\"auto_ready\":\"%s\",", c->token_ttl_s,
               c->unknown_tasks == SIM_UNKNOWN_AUTO ? "auto" : "not_found", ready);
  sim_buf_addf(b, "\"auto_never\":%.17g,\"auto_failed\":%.17g,\"seed\":%llu,\"token_echo\":%s}", c->auto_never,
               c->auto_failed, (unsigned long long)c->seed, c->token_echo ? "true" : "false");
}

/* Applies the fields of o to *c; on error *c may be partly changed (the caller works on a copy). */
static int apply_config(const cJSON *o, struct sim_config *c, char *err, size_t errsize)
{
  const cJSON *v;
  const char *str;
  long long n;

  if (!cJSON_IsObject(o)) {
    snprintf(err, errsize, "config must be an object");
    return SIM_EINVAL;
  }
  cJSON_ArrayForEach(v, o)
  {
    const char *k = v->string ? v->string : "";
    int ok = 0;

    if (strcmp(k, "rate_per_second") == 0) {
      ok = json_int(v, 0, 1000000000LL, &c->rate_per_second) == 0;
    } else if (strcmp(k, "rate_per_minute") == 0) {
      ok = json_int(v, 0, 1000000000LL, &c->rate_per_minute) == 0;
    } else if (strcmp(k, "latency_ms") == 0) {
      if (cJSON_IsString(v))
        ok = sim_config_parse_latency(v->valuestring, &c->latency_min_ms, &c->latency_max_ms) == 0;
      else if ((ok = json_int(v, 0, 3600000LL, &n) == 0))
        c->latency_min_ms = c->latency_max_ms = n;
    } else if (strcmp(k, "arrival_jitter_ms") == 0) {
      ok = json_int(v, 0, 1000, &c->arrival_jitter_ms) == 0;
    } else if (strcmp(k, "token_ttl") == 0) {
      ok = json_int(v, 1, 365LL * 86400, &c->token_ttl_s) == 0;
    } else if (strcmp(k, "unknown_tasks") == 0) {
      ok = json_text(v, 32, &str) == 0 && (strcmp(str, "auto") == 0 || strcmp(str, "not_found") == 0);
      if (ok)
        c->unknown_tasks = strcmp(str, "auto") == 0 ? SIM_UNKNOWN_AUTO : SIM_UNKNOWN_NOT_FOUND;
    } else if (strcmp(k, "auto_ready") == 0) {
      ok = json_text(v, 120, &str) == 0 && sim_config_parse_ready(str, c) == 0;
    } else if (strcmp(k, "auto_never") == 0) {
      ok = json_double(v, 0, 1, &c->auto_never) == 0;
    } else if (strcmp(k, "auto_failed") == 0) {
      ok = json_double(v, 0, 1, &c->auto_failed) == 0;
    } else if (strcmp(k, "token_echo") == 0) {
      ok = cJSON_IsBool(v);
      if (ok)
        c->token_echo = cJSON_IsTrue(v);
    } else if (strcmp(k, "seed") == 0) {
      ok = json_int(v, 0, 9007199254740991LL, &n) == 0;
      if (ok)
        c->seed = (uint64_t)n;
    } else {
      snprintf(err, errsize, "unknown config field \"%.64s\"", k);
      return SIM_EINVAL;
    }
    if (!ok) {
      snprintf(err, errsize, "bad value for config field \"%s\"", k);
      return SIM_EINVAL;
    }
  }
  return 0;
}

static void ctl_config(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  struct sim_config c;
  cJSON *json = NULL;
  char err[ERRBUF];

  if (strcmp(rq->method, "POST") == 0) {
    json = parse_body(rq, a);
    if (!json)
      return;
  }
  pthread_mutex_lock(&s->lock);
  c = s->cfg;
  if (json && apply_config(json, &c, err, sizeof(err))) {
    pthread_mutex_unlock(&s->lock);
    answer_json_error(a, 400, err);
    goto out;
  }
  s->cfg = c;
  pthread_mutex_unlock(&s->lock);
  a->http = 200;
  write_config(&c, &a->body);
out:
  cJSON_Delete(json);
}

static int flag_arg(const struct sim_req *rq, const char *name)
{
  const char *v = rq->arg ? rq->arg(rq->arg_ctx, name) : NULL;
  return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "") == 0);
}

static void ctl_stats(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  const struct sim_stats *st = &s->stats;
  struct sim_buf *b = &a->body;
  size_t i;

  a->http = 200;
  pthread_mutex_lock(&s->lock);
  sim_buf_addf(b, "{\"calls\":%llu,\"by_code\":{", (unsigned long long)st->calls);
  for (i = 0; i < st->nby_code; i++)
    sim_buf_addf(b, "%s\"%s\":%llu", i ? "," : "", st->by_code[i].key, (unsigned long long)st->by_code[i].n);
  sim_buf_addf(b,
               "},\"rate_limited\":%llu,\"tokens_issued\":%llu,\"token_calls\":%llu,\"max_calls_in_1s\":%llu,"
               "\"now_ms\":%llu,\"tasks_registered\":%zu,\"tokens_live\":%zu,\"faults_pending\":%lld,\"records\":%llu,"
               "\"records_first\":%llu",
               (unsigned long long)st->rate_limited, (unsigned long long)st->tokens_issued,
               (unsigned long long)st->token_calls, (unsigned long long)st->max_calls_in_1s,
               (unsigned long long)sim_now(s), s->tasks.count,
               s->tokens.count, sim_faults_pending(s), (unsigned long long)s->rec_total,
               (unsigned long long)sim_record_first(s));
  if (flag_arg(rq, "tasks")) {
    int first = 1;
    sim_buf_adds(b, ",\"tasks\":{");
    for (i = 0; i < s->tasks.nbuckets; i++) {
      const struct sim_hnode *n;
      for (n = s->tasks.buckets[i]; n; n = n->next) {
        const struct sim_task *t = SIM_CONTAINER_OF(n, struct sim_task, node);
        if (!first)
          sim_buf_adds(b, ",");
        first = 0;
        sim_buf_add_jstr(b, t->task_id);
        sim_buf_addf(b, ":%llu", (unsigned long long)t->polls);
      }
    }
    sim_buf_adds(b, "}");
  }
  sim_buf_adds(b, "}");
  pthread_mutex_unlock(&s->lock);
}

static int u64_arg(const struct sim_req *rq, const char *name, uint64_t *out)
{
  const char *v = rq->arg ? rq->arg(rq->arg_ctx, name) : NULL;
  long long n;

  if (!v)
    return 0;
  if (sim_parse_ll(v, 0, 0x7fffffffffffffffLL, &n))
    return SIM_EINVAL;
  *out = (uint64_t)n;
  return 0;
}

static void write_record(struct sim_buf *b, uint64_t i, const struct sim_record *r)
{
  char path[2048];

  sim_buf_addf(b, "{\"i\":%llu,\"ts_ms\":%llu,\"method\":", (unsigned long long)i, (unsigned long long)r->ts_ms);
  sim_buf_add_jstr(b, r->method);
  sim_buf_adds(b, ",\"path\":");
  sim_buf_add_jstr(b, sim_record_path(r, path, sizeof(path)));
  sim_buf_adds(b, ",\"website_id\":");
  sim_buf_add_jstr(b, r->website_id);
  sim_buf_adds(b, ",\"task_id\":");
  sim_buf_add_jstr(b, r->task_id);
  sim_buf_adds(b, ",\"app_id\":");
  sim_buf_add_jstr(b, r->app_id);
  sim_buf_adds(b, ",\"token\":");
  sim_buf_add_jstr(b, r->token);
  sim_buf_adds(b, ",\"tenant_key\":");
  sim_buf_add_jstr(b, r->tenant_key);
  sim_buf_addf(b, ",\"http\":%d,\"code\":", r->http);
  if (r->has_code)
    sim_buf_addf(b, "%lld", r->code);
  else
    sim_buf_adds(b, "null");
  if (r->status >= 0)
    sim_buf_addf(b, ",\"status\":%d", r->status);
  else
    sim_buf_adds(b, ",\"status\":null");
  sim_buf_adds(b, ",\"log_id\":");
  sim_buf_add_jstr(b, r->log_id);
  sim_buf_adds(b, "}");
}

/* POST /_sim/ticket {"app_id":"cli_..","ticket":"..."}: pushes (rotates) the app_ticket of a
 * store app; GET /_sim/ticket?app_id=..: the ticket in force and the resend requests seen. */
static void ctl_ticket(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  const char *app_id = rq->arg ? rq->arg(rq->arg_ctx, "app_id") : NULL;
  const cJSON *id = NULL, *ticket = NULL;
  cJSON *json = NULL;
  size_t i;

  if (strcmp(rq->method, "POST") == 0) {
    json = parse_body(rq, a);
    if (!json)
      return;
    id = cJSON_GetObjectItemCaseSensitive(json, "app_id");
    ticket = cJSON_GetObjectItemCaseSensitive(json, "ticket");
    if (!cJSON_IsString(id) || !cJSON_IsString(ticket) ||
        strlen(ticket->valuestring) > SIM_APP_FIELD_MAX) {
      answer_json_error(a, 400, "want {\"app_id\": string, \"ticket\": string}");
      cJSON_Delete(json);
      return;
    }
    app_id = id->valuestring;
  }
  pthread_mutex_lock(&s->lock);
  for (i = 0; app_id && i < s->napps; i++)
    if (strcmp(s->apps[i].id, app_id) == 0)
      break;
  if (!app_id || i == s->napps) {
    pthread_mutex_unlock(&s->lock);
    answer_json_error(a, 404, "no such app (app_id)");
    cJSON_Delete(json);
    return;
  }
  if (ticket)
    snprintf(s->apps[i].ticket, sizeof(s->apps[i].ticket), "%s", ticket->valuestring);
  a->http = 200;
  sim_buf_adds(&a->body, "{\"app_id\":");
  sim_buf_add_jstr(&a->body, s->apps[i].id);
  sim_buf_adds(&a->body, ",\"ticket\":");
  sim_buf_add_jstr(&a->body, s->apps[i].ticket);
  sim_buf_addf(&a->body, ",\"resends\":%llu}", (unsigned long long)s->apps[i].resends);
  pthread_mutex_unlock(&s->lock);
  cJSON_Delete(json);
}

static void ctl_requests(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  uint64_t since = 0, limit = UINT64_MAX, i, n = 0;

  if (u64_arg(rq, "since", &since) || u64_arg(rq, "limit", &limit)) {
    answer_json_error(a, 400, "since and limit must be non-negative integers");
    return;
  }
  a->http = 200;
  pthread_mutex_lock(&s->lock);
  if (since < sim_record_first(s))
    since = sim_record_first(s);
  sim_buf_adds(&a->body, "[");
  for (i = since; i < s->rec_total && n < limit; i++, n++) {
    if (n)
      sim_buf_adds(&a->body, ",\n");
    write_record(&a->body, i, sim_record_get(s, i));
  }
  sim_buf_adds(&a->body, "]\n");
  pthread_mutex_unlock(&s->lock);
  if (a->body.failed)
    answer_json_error(a, 500, "request log too large for one answer: use ?since=K&limit=N");
}

static void ctl_task_get(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  const char *w = rq->arg ? rq->arg(rq->arg_ctx, "website_id") : NULL;
  const char *id = rq->arg ? rq->arg(rq->arg_ctx, "delivery_task_id") : NULL;
  const struct sim_task *t;
  size_t i;

  if (!w || !id) {
    answer_json_error(a, 400, "need ?website_id=...&delivery_task_id=...");
    return;
  }
  pthread_mutex_lock(&s->lock);
  t = sim_task_find(s, w, strlen(w), id, strlen(id));
  if (!t) {
    pthread_mutex_unlock(&s->lock);
    answer_json_error(a, 404, "no such task");
    return;
  }
  a->http = 200;
  sim_buf_addf(&a->body, "{\"website_id\":\"%.*s\",\"delivery_task_id\":", (int)t->website_len, t->key);
  sim_buf_add_jstr(&a->body, t->task_id);
  sim_buf_addf(&a->body,
               ",\"now_ms\":%llu,\"ready_at_ms\":%llu,\"final\":\"%s\",\"pending\":\"%s\",\"polls\":%llu,"
               "\"auto\":%s,\"errors\":%zu,\"status_msg\":",
               (unsigned long long)sim_now(s), (unsigned long long)t->ready_at_ms, final_names[t->final],
               pending_names[t->pending], (unsigned long long)t->polls, t->is_auto ? "true" : "false", t->nerrors);
  sim_buf_add_jstr(&a->body, t->status_msg);
  sim_buf_adds(&a->body, ",\"extra_info\":");
  sim_buf_add_jstr(&a->body, t->extra_info);
  for (i = 0; i < SIM_ID_COUNT; i++) {
    sim_buf_addf(&a->body, ",\"%s\":", sim_id_names[i]);
    sim_buf_add_jstr(&a->body, t->ids[i]);
  }
  sim_buf_adds(&a->body, "}");
  pthread_mutex_unlock(&s->lock);
}

static int is(const struct sim_req *rq, const char *method, const char *path)
{
  return strcmp(rq->url, path) == 0 && strcmp(rq->method, method) == 0;
}

void sim_control_handle(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  static const char *const paths[] = {
    "/_sim/tasks", "/_sim/task", "/_sim/faults", "/_sim/revoke", "/_sim/ticket", "/_sim/config", "/_sim/stats", "/_sim/requests", "/_sim/reset",
  };
  size_t i;

  pthread_mutex_lock(&s->lock);
  sim_log_id(s, a->log_id, sizeof(a->log_id));
  pthread_mutex_unlock(&s->lock);

  if (is(rq, "POST", "/_sim/tasks")) {
    ctl_tasks(s, rq, a);
  } else if (is(rq, "GET", "/_sim/task")) {
    ctl_task_get(s, rq, a);
  } else if (is(rq, "POST", "/_sim/faults")) {
    ctl_faults_add(s, rq, a);
  } else if (is(rq, "GET", "/_sim/faults")) {
    ctl_faults_list(s, a);
  } else if (is(rq, "DELETE", "/_sim/faults")) {
    pthread_mutex_lock(&s->lock);
    sim_faults_clear(s);
    pthread_mutex_unlock(&s->lock);
    a->http = 200;
    sim_buf_adds(&a->body, "{\"pending\":0}");
  } else if (is(rq, "POST", "/_sim/ticket") || is(rq, "GET", "/_sim/ticket")) {
    ctl_ticket(s, rq, a);
  } else if (is(rq, "POST", "/_sim/revoke")) {
    /* ?tenant_key=T revokes only that store tenant's tokens. */
    const char *tenant = rq->arg ? rq->arg(rq->arg_ctx, "tenant_key") : NULL;
    size_t n;
    pthread_mutex_lock(&s->lock);
    n = tenant ? sim_tokens_revoke_tenant(s, tenant) : sim_tokens_revoke(s);
    pthread_mutex_unlock(&s->lock);
    a->http = 200;
    sim_buf_addf(&a->body, "{\"revoked\":%zu}", n);
  } else if (is(rq, "POST", "/_sim/config") || is(rq, "GET", "/_sim/config")) {
    ctl_config(s, rq, a);
  } else if (is(rq, "GET", "/_sim/stats")) {
    ctl_stats(s, rq, a);
  } else if (is(rq, "GET", "/_sim/requests")) {
    ctl_requests(s, rq, a);
  } else if (is(rq, "POST", "/_sim/reset")) {
    pthread_mutex_lock(&s->lock);
    sim_reset(s);
    pthread_mutex_unlock(&s->lock);
    a->http = 200;
    sim_buf_adds(&a->body, "{\"reset\":true}");
  } else {
    for (i = 0; i < SIM_ARRAY_SIZE(paths); i++)
      if (strcmp(rq->url, paths[i]) == 0)
        break;
    answer_json_error(a, i < SIM_ARRAY_SIZE(paths) ? 405 : 404,
                      i < SIM_ARRAY_SIZE(paths) ? "method not allowed" : "no such control endpoint");
  }
}
