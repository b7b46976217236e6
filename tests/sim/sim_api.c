/* The Feishu endpoints of dw-sim, as request -> answer logic with no HTTP library in sight.
 *
 * POST /open-apis/auth/v3/tenant_access_token/internal issues tenant tokens with the documented
 * refresh rule (the same token while >= 30 min are left, a new one after that, old ones valid
 * until their own expiry). GET /open-apis/hire/v1/websites/:website_id/delivery_tasks/:task_id
 * goes through the same gates as the real gateway, in this order: token (99991661 / 99991671 /
 * 99991663), per-app fixed-window rate limit (429, 99991400, x-ogw-ratelimit-*), the injected
 * fault queue, parameter checks (1002002), task lookup (1002008 or an auto task), the task's own
 * scripted errors, and finally the task's pending or final shape. Each call is counted and
 * recorded. Everything runs under sim.lock. */
#include "sim.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_PATH SIM_PATH_TOKEN
#define TASK_PREFIX SIM_PATH_TASK_PREFIX
#define TASK_MIDDLE SIM_PATH_TASK_MIDDLE
#define JSON_TYPE "application/json; charset=utf-8"
#define RECORD_FIELD_MAX 256 /* ids copied into records are cut here */
#define RECORD_PATH_MAX 1024

void sim_answer_init(struct sim_answer *a)
{
  memset(a, 0, sizeof(*a));
  sim_buf_init(&a->body, SIM_REQUESTS_OUT_MAX);
  a->content_type = JSON_TYPE;
  a->rl_limit = -1;
  a->rl_reset = -1;
  a->status = -1;
}

void sim_answer_cleanup(struct sim_answer *a)
{
  sim_buf_free(&a->body);
}

static const char *code_msg(long long code)
{
  switch (code) {
  case 0: return "success";
  case 9499: return "Bad Request";
  case 10014: return "app secret invalid";
  case 1000004: return "method rate limited";
  case 1000005: return "app rate limited";
  case 1002001: return "system error";
  case 1002002: return "param error";
  case 1002008: return "task not found";
  case 99991400: return "request trigger frequency limit";
  case 99991403: return "This month's API call quota has been exceeded";
  case 99991661: return "Missing access token for authorization";
  case 99991663: return "Invalid access token for authorization. Please make a request with token attached.";
  case 99991671: return "Invalid token: must start with t-/u-";
  case 99991672:
    return "Access denied. One of the following scopes is required: [hire:site_application:readonly, "
           "hire:site_application]";
  default: return "error";
  }
}

static int code_http(long long code)
{
  switch (code) {
  case 1002001: return 500;
  case 99991400: return 429;
  default: return 400;
  }
}

static void answer_error(struct sim_answer *a, int http, long long code, const char *msg)
{
  a->http = http;
  a->has_code = 1;
  a->code = code;
  sim_buf_addf(&a->body, "{\"code\":%lld,\"msg\":", code);
  sim_buf_add_jstr(&a->body, msg ? msg : code_msg(code));
  sim_buf_addf(&a->body, ",\"error\":{\"log_id\":\"%s\"}}", a->log_id);
}

/* A refusal whose msg quotes the request body after a CR LF (the token echo mode). */
static void answer_echo(struct sim_answer *a, long long code, const struct sim_req *rq)
{
  a->http = 400;
  a->has_code = 1;
  a->code = code;
  sim_buf_addf(&a->body, "{\"code\":%lld,\"msg\":", code);
  struct sim_buf m;
  sim_buf_init(&m, SIM_TEXT_MAX);
  sim_buf_adds(&m, code_msg(code));
  sim_buf_adds(&m, "\r\nrequest: ");
  if (rq->body && !rq->body_too_large)
    sim_buf_add(&m, rq->body, rq->body_len);
  sim_buf_add_jstr(&a->body, m.data ? m.data : "");
  sim_buf_free(&m);
  sim_buf_addf(&a->body, ",\"error\":{\"log_id\":\"%s\"}}", a->log_id);
}

static void answer_rate_limited(struct sim_answer *a, long long limit, long long reset_s)
{
  answer_error(a, 429, 99991400, NULL);
  a->rl_limit = limit;
  a->rl_reset = reset_s;
}

static void answer_garbage(struct sim_answer *a, int http)
{
  a->http = http;
  a->has_code = 0;
  a->content_type = "text/html";
  sim_buf_adds(&a->body, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                         "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                         "</body>\r\n</html>\r\n");
}

#define HUGE_DEFAULT_BYTES (8u * 1024 * 1024)
#define DEEP_DEFAULT_DEPTH 10000 /* 20 KB: deep, yet within feishu.max_response_bytes */
#define DEEP_MAX_DEPTH (8 * 1024 * 1024)

/* A hostile answer (see enum sim_fault_kind): the body here, how it is sent in sim_http.c. */
static void answer_hostile(struct sim_answer *a, const struct sim_fault *f)
{
  long long depth;

  a->http = f->http ? f->http : 200;
  a->has_code = 0;
  a->stat_key = sim_fault_kind_name(f->kind);
  switch (f->kind) {
  case SIM_FAULT_TRUNCATED:
    /* A complete, valid pending answer is announced; the connection closes halfway. */
    sim_buf_addf(&a->body, "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":1},"
                           "\"error\":{\"log_id\":\"%s\"}}", a->log_id);
    a->stream = SIM_STREAM_TRUNCATE;
    a->stream_keep = a->body.len / 2;
    break;
  case SIM_FAULT_HUGE:
    a->stream = SIM_STREAM_HUGE;
    a->stream_size = f->bytes > 32 ? (uint64_t)f->bytes : HUGE_DEFAULT_BYTES;
    break;
  case SIM_FAULT_SLOWLORIS:
    /* Valid JSON, padded so that it never finishes at one byte per delay_ms. */
    sim_buf_adds(&a->body, "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":1}");
    for (int i = 0; i < 4096; i++)
      sim_buf_adds(&a->body, " ");
    sim_buf_adds(&a->body, "}");
    a->stream = SIM_STREAM_TRICKLE;
    a->trickle_ms = (uint64_t)f->delay_ms;
    break;
  case SIM_FAULT_BAD_UTF8:
    /* Overlong "/", a lone continuation byte, a UTF-16 surrogate, a cut sequence, 0xFF. */
    a->has_code = 1;
    a->code = f->code ? f->code : 1002001;
    a->http = f->http ? f->http : code_http(a->code);
    sim_buf_addf(&a->body, "{\"code\":%lld,\"msg\":\"system \xC0\xAF error \x80 \xED\xA0\x80 "
                           "\xE6\x97 \xFF\",\"data\":{\"status_msg\":\"\xFE\xFE\"},"
                           "\"error\":{\"log_id\":\"%s\"}}", a->code, a->log_id);
    break;
  case SIM_FAULT_DEEP_JSON:
    depth = f->bytes > 0 ? f->bytes : DEEP_DEFAULT_DEPTH;
    if (depth > DEEP_MAX_DEPTH)
      depth = DEEP_MAX_DEPTH;
    sim_buf_adds(&a->body, "{\"code\":0,\"msg\":\"success\",\"data\":");
    for (long long i = 0; i < depth; i++)
      sim_buf_add(&a->body, "[", 1);
    for (long long i = 0; i < depth; i++)
      sim_buf_add(&a->body, "]", 1);
    sim_buf_adds(&a->body, "}");
    break;
  case SIM_FAULT_EMPTY_200:
    break;
  case SIM_FAULT_RAW:
    /* A shape the API does not send (a string status, a redirect with a success body...). */
    if (f->msg)
      sim_buf_adds(&a->body, f->msg);
    break;
  default:
    break;
  }
}

/* Applies an injected fault. Returns 1 when it produced the answer, 0 when the call goes on
 * (timeout: the normal answer, held for delay_ms; wrong_type: the normal answer mislabelled). */
static int apply_fault(struct sim *s, const struct sim_fault *f, struct sim_answer *a)
{
  long long code;

  switch (f->kind) {
  case SIM_FAULT_HTTP_500:
    code = f->code ? f->code : 1002001;
    answer_error(a, f->http ? f->http : 500, code, f->msg);
    return 1;
  case SIM_FAULT_CODE:
    code = f->code ? f->code : 1002001;
    answer_error(a, f->http ? f->http : code_http(code), code, f->msg);
    if (code == 99991400) {
      a->rl_limit = s->cfg.rate_per_second > 0 ? s->cfg.rate_per_second : 50;
      a->rl_reset = f->reset_s >= 0 ? f->reset_s : 1;
    }
    return 1;
  case SIM_FAULT_TIMEOUT:
    a->delay_ms += (uint64_t)f->delay_ms;
    return 0;
  case SIM_FAULT_RESET:
    a->reset = 1;
    return 1;
  case SIM_FAULT_GARBAGE:
    answer_garbage(a, f->http ? f->http : 502);
    return 1;
  case SIM_FAULT_RATE_LIMIT:
    answer_rate_limited(a, s->cfg.rate_per_second > 0 ? s->cfg.rate_per_second : 50,
                        f->reset_s >= 0 ? f->reset_s : 1);
    if (f->http)
      a->http = f->http;
    return 1;
  case SIM_FAULT_WRONG_TYPE:
    a->content_type = "text/html; charset=gbk";
    a->stat_key = sim_fault_kind_name(f->kind);
    return 0;
  case SIM_FAULT_TRUNCATED:
  case SIM_FAULT_HUGE:
  case SIM_FAULT_SLOWLORIS:
  case SIM_FAULT_BAD_UTF8:
  case SIM_FAULT_DEEP_JSON:
  case SIM_FAULT_EMPTY_200:
  case SIM_FAULT_RAW:
    answer_hostile(a, f);
    return 1;
  }
  return 0;
}

int sim_valid_website_id(const char *p, size_t n)
{
  size_t i;

  if (n < 1 || n > SIM_WEBSITE_ID_MAX)
    return 0;
  for (i = 0; i < n; i++)
    if (p[i] < '0' || p[i] > '9')
      return 0;
  return 1;
}

int sim_valid_task_id(const char *p, size_t n)
{
  size_t i;

  if (n < 1 || n > SIM_TASK_ID_MAX)
    return 0;
  for (i = 0; i < n; i++) {
    char c = p[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

/* A task the sim has never been told about, in --unknown-tasks auto mode. Its fate is drawn from
 * a generator seeded with hash(seed, "website/task"), so it is the same on every run. */
static struct sim_task *auto_task(struct sim *s, const char *website, size_t wlen, const char *task,
                                  size_t tlen, uint64_t now)
{
  struct sim_task *t = sim_task_new(website, wlen, task, tlen);
  uint64_t st;
  double u, delay;

  if (!t)
    return NULL;
  st = sim_hash(t->node.key, t->node.klen, s->cfg.seed);
  u = sim_rand_unit(&st);
  if (s->cfg.ready_dist == SIM_READY_FIXED) {
    delay = s->cfg.ready_ms;
  } else {
    double u1 = sim_rand_unit(&st), u2 = sim_rand_unit(&st);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2); /* Box-Muller; 1-u1 is in (0,1] */
    delay = s->cfg.ready_ms * exp(s->cfg.ready_sigma * z);
    if (delay > s->cfg.ready_max_ms)
      delay = s->cfg.ready_max_ms;
  }
  if (!(delay >= 0))
    delay = 0;
  t->ready_at_ms = now + (uint64_t)llround(delay);
  if (u < s->cfg.auto_never)
    t->final = SIM_FINAL_NEVER;
  else if (u < s->cfg.auto_never + s->cfg.auto_failed)
    t->final = SIM_FINAL_FAILED;
  t->is_auto = 1;
  sim_task_put(s, t);
  return t;
}

/* The scripted error for poll number `poll` of t, or NULL. */
static const struct sim_fault *task_error(const struct sim_task *t, uint64_t poll)
{
  size_t i;

  for (i = 0; i < t->nerrors; i++) {
    if (poll < (uint64_t)t->errors[i].count)
      return &t->errors[i];
    poll -= (uint64_t)t->errors[i].count;
  }
  return NULL;
}

static void add_id(struct sim_buf *b, const struct sim_task *t, enum sim_id_field f)
{
  sim_buf_addf(b, "\"%s\":", sim_id_names[f]);
  if (t->ids[f]) {
    sim_buf_add_jstr(b, t->ids[f]);
    return;
  }
  sim_buf_addf(b, "\"%s%s\"", sim_id_prefixes[f], t->task_id);
}

static void answer_pending(const struct sim_task *t, uint64_t poll, struct sim_answer *a)
{
  enum sim_pending shape = t->pending;
  struct sim_buf *b = &a->body;

  if (shape == SIM_PENDING_ROTATE)
    shape = (enum sim_pending)(SIM_PENDING_MISSING + (int)(poll % 5));
  a->http = 200;
  a->has_code = 1;
  a->code = 0;
  sim_buf_adds(b, "{\"code\":0,\"msg\":\"success\"");
  switch (shape) {
  case SIM_PENDING_ROTATE:
  case SIM_PENDING_MISSING: break;
  case SIM_PENDING_NULL: sim_buf_adds(b, ",\"data\":null"); break;
  case SIM_PENDING_EMPTY: sim_buf_adds(b, ",\"data\":{}"); break;
  case SIM_PENDING_STATUS0:
    a->status = 0;
    sim_buf_adds(b, ",\"data\":{\"status\":0,\"status_msg\":\" \",\"extra_info\":\" \"}");
    break;
  case SIM_PENDING_STATUS1:
    /* The doc example shows status 1 with a full delivery whose values look like placeholders:
     * a client must not take ids from a non-final status. */
    a->status = 1;
    sim_buf_adds(b, ",\"data\":{\"status\":1,\"delivery\":{\"application_id\":\"6949805467799537964\","
                    "\"id\":\"6989202908470446380\",\"job_id\":\"6960663240925956554\","
                    "\"job_post_id\":\"6960663240925956551\",\"portal_resume_id\":\"6960663240925956552\","
                    "\"user_id\":\"6960663240925956553\",\"talent_id\":\"6960663240925956555\"}}");
    break;
  }
  sim_buf_adds(b, "}");
}

static void answer_task(const struct sim_task *t, uint64_t poll, uint64_t now, struct sim_answer *a)
{
  struct sim_buf *b = &a->body;

  switch (t->final) {
  case SIM_FINAL_NOT_FOUND: answer_error(a, 400, 1002008, NULL); return;
  case SIM_FINAL_INVALID: answer_error(a, 400, 1002002, NULL); return;
  case SIM_FINAL_NEVER: answer_pending(t, poll, a); return;
  case SIM_FINAL_SUCCEEDED:
  case SIM_FINAL_FAILED: break;
  }
  if (now < t->ready_at_ms) {
    answer_pending(t, poll, a);
    return;
  }
  a->http = 200;
  a->has_code = 1;
  a->code = 0;
  if (t->final == SIM_FINAL_SUCCEEDED) {
    a->status = 2;
    sim_buf_adds(b, "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":2,\"delivery\":{");
    add_id(b, t, SIM_ID_APPLICATION);
    sim_buf_adds(b, ",\"id\":\"deprecated-id\",");
    add_id(b, t, SIM_ID_JOB);
    sim_buf_adds(b, ",");
    add_id(b, t, SIM_ID_JOB_POST);
    sim_buf_adds(b, ",");
    add_id(b, t, SIM_ID_PORTAL_RESUME);
    sim_buf_adds(b, ",");
    add_id(b, t, SIM_ID_USER);
    sim_buf_adds(b, ",");
    add_id(b, t, SIM_ID_TALENT);
    sim_buf_adds(b, "},\"status_msg\":");
    sim_buf_add_jstr(b, t->status_msg ? t->status_msg : " ");
    sim_buf_adds(b, ",\"extra_info\":");
    sim_buf_add_jstr(b, t->extra_info ? t->extra_info : "  ");
    sim_buf_adds(b, "}}");
    return;
  }
  a->status = 3;
  sim_buf_adds(b, "{\"code\":0,\"msg\":\"success\",\"data\":{\"status\":3,\"status_msg\":");
  sim_buf_add_jstr(b, t->status_msg ? t->status_msg : "same application exist");
  sim_buf_adds(b, ",\"extra_info\":");
  sim_buf_add_jstr(b, t->extra_info ? t->extra_info : "7100825663201052972");
  sim_buf_adds(b, ",\"delivery\":null}}");
}

static void add_latency(struct sim *s, struct sim_answer *a)
{
  long long lo = s->cfg.latency_min_ms, hi = s->cfg.latency_max_ms;

  if (hi > lo)
    lo += (long long)(sim_rand_next(&s->rng) % (uint64_t)(hi - lo + 1));
  a->delay_ms += (uint64_t)lo;
}

static void count_answer(struct sim *s, const struct sim_answer *a)
{
  char key[24];

  if (a->reset)
    sim_stats_count(s, "reset");
  else if (a->stat_key)
    sim_stats_count(s, a->stat_key);
  else if (!a->has_code)
    sim_stats_count(s, "garbage");
  else {
    snprintf(key, sizeof(key), "%lld", a->code);
    sim_stats_count(s, key);
  }
}

static void record_tenant(struct sim *s, uint64_t now, const struct sim_req *rq,
                          const struct sim_answer *a, const char *website, const char *task,
                          const char *app_id, const char *token, const char *tenant);

static void record(struct sim *s, uint64_t now, const struct sim_req *rq, const struct sim_answer *a,
                   const char *website, const char *task, const char *app_id, const char *token)
{
  record_tenant(s, now, rq, a, website, task, app_id, token, NULL);
}

static void record_tenant(struct sim *s, uint64_t now, const struct sim_req *rq,
                          const struct sim_answer *a, const char *website, const char *task,
                          const char *app_id, const char *token, const char *tenant)
{
  char path[RECORD_PATH_MAX];
  struct sim_record r;

  memset(&r, 0, sizeof(r));
  snprintf(path, sizeof(path), "%s", rq->url);
  r.ts_ms = now;
  r.http = a->reset ? 0 : a->http;
  r.has_code = a->reset ? 0 : a->has_code;
  r.code = a->code;
  r.status = a->status;
  r.method = rq->method;
  r.path = path;
  r.website_id = website;
  r.task_id = task;
  r.app_id = app_id;
  r.token = token;
  r.log_id = a->log_id;
  r.tenant_key = tenant;
  sim_record_add(s, &r);
}

static void delivery_task(struct sim *s, const struct sim_req *rq, const char *website, size_t wlen,
                          const char *task, size_t tlen, struct sim_answer *a)
{
  uint64_t now = sim_now(s), poll;
  char wrec[RECORD_FIELD_MAX], trec[RECORD_FIELD_MAX], tokrec[RECORD_FIELD_MAX];
  const char *auth = rq->authorization, *tok, *app_id = NULL, *tokp = NULL, *tenant = NULL;
  const struct sim_fault *terr;
  struct sim_token *token;
  struct sim_task *t;
  struct sim_fault f;
  long long limit, reset_s;
  size_t toklen;

  snprintf(wrec, sizeof(wrec), "%.*s", (int)(wlen < sizeof(wrec) ? wlen : sizeof(wrec) - 1), website);
  snprintf(trec, sizeof(trec), "%.*s", (int)(tlen < sizeof(trec) ? tlen : sizeof(trec) - 1), task);
  s->stats.calls++;

  if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
    answer_error(a, 400, 99991661, NULL);
    goto out;
  }
  tok = auth + 7;
  while (*tok == ' ')
    tok++;
  toklen = strlen(tok);
  while (toklen && tok[toklen - 1] == ' ')
    toklen--;
  if (toklen == 0) {
    answer_error(a, 400, 99991661, NULL);
    goto out;
  }
  snprintf(tokrec, sizeof(tokrec), "%.*s", (int)(toklen < sizeof(tokrec) ? toklen : sizeof(tokrec) - 1),
           tok);
  tokp = tokrec;
  if (toklen < 2 || tok[0] != 't' || tok[1] != '-') {
    answer_error(a, 400, 99991671, NULL);
    goto out;
  }
  token = sim_token_find(s, tok, toklen);
  if (!token || token->expires_ms <= now) {
    answer_error(a, 400, 99991663, NULL);
    goto out;
  }
  app_id = s->apps[token->app].id;
  if (token->tenant[0])
    tenant = token->tenant;

  /* Feishu limits per app and tenant: a store tenant's token counts in its own windows. */
  if (!sim_rate_admit_tenant(s, token->app, token->tenant, now, &limit, &reset_s)) {
    s->stats.rate_limited++;
    answer_rate_limited(a, limit, reset_s);
    goto out;
  }

  if (sim_fault_take(s, &f)) {
    int done = apply_fault(s, &f, a);
    sim_fault_cleanup(&f);
    if (done)
      goto out;
  }

  if (!sim_valid_website_id(website, wlen) || !sim_valid_task_id(task, tlen)) {
    answer_error(a, 400, 1002002, NULL);
    goto out;
  }

  t = sim_task_find(s, website, wlen, task, tlen);
  if (!t && s->cfg.unknown_tasks == SIM_UNKNOWN_NOT_FOUND) {
    answer_error(a, 400, 1002008, NULL);
    goto out;
  }
  if (!t)
    t = auto_task(s, website, wlen, task, tlen, now);
  if (!t) {
    answer_error(a, 500, 1002001, NULL);
    goto out;
  }
  poll = t->polls++;
  terr = task_error(t, poll);
  if (terr && apply_fault(s, terr, a))
    goto out;
  answer_task(t, poll, now, a);

out:
  add_latency(s, a);
  count_answer(s, a);
  record_tenant(s, now, rq, a, wrec, trec, app_id, tokp, tenant);
}

static void token_internal(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  uint64_t now = sim_now(s);
  char idrec[RECORD_FIELD_MAX] = "";
  const char *app_id = NULL, *issued = NULL;
  const cJSON *id, *secret;
  cJSON *json = NULL;
  struct sim_token *t;
  long long expire;
  size_t i;

  s->stats.token_calls++;
  if (!rq->body_too_large && rq->body && rq->body_len)
    json = cJSON_ParseWithLengthOpts(rq->body, rq->body_len, NULL, 0);
  id = cJSON_GetObjectItemCaseSensitive(json, "app_id");
  secret = cJSON_GetObjectItemCaseSensitive(json, "app_secret");
  if (!cJSON_IsObject(json) || !cJSON_IsString(id) || !cJSON_IsString(secret)) {
    answer_error(a, 400, 9499, NULL);
    goto out;
  }
  snprintf(idrec, sizeof(idrec), "%s", id->valuestring);
  app_id = idrec;
  for (i = 0; i < s->napps; i++)
    if (strcmp(s->apps[i].id, id->valuestring) == 0)
      break;
  if (i == s->napps || strcmp(s->apps[i].secret, secret->valuestring) != 0) {
    if (s->cfg.token_echo) /* a gateway that quotes the request it refused, secret and all */
      answer_echo(a, 10014, rq);
    else
      answer_error(a, 400, 10014, NULL);
    goto out;
  }
  t = s->apps[i].current;
  if (t && t->expires_ms > now && t->expires_ms - now >= (uint64_t)SIM_TOKEN_REFRESH_S * 1000) {
    expire = (long long)((t->expires_ms - now) / 1000);
  } else {
    t = sim_token_issue(s, i);
    if (!t) {
      answer_error(a, 500, 1002001, NULL);
      goto out;
    }
    expire = s->cfg.token_ttl_s;
  }
  issued = t->token;
  a->http = 200;
  a->has_code = 1;
  a->code = 0;
  sim_buf_addf(&a->body, "{\"code\":0,\"msg\":\"ok\",\"tenant_access_token\":\"%s\",\"expire\":%lld}",
               t->token, expire);
out:
  add_latency(s, a);
  record(s, now, rq, a, NULL, NULL, app_id, issued);
  cJSON_Delete(json);
}

/* ---- store (ISV) apps ---- */

static void answer_token(struct sim_answer *a, const char *field, const struct sim_token *t,
                         long long expire)
{
  a->http = 200;
  a->has_code = 1;
  a->code = 0;
  sim_buf_addf(&a->body, "{\"code\":0,\"msg\":\"ok\",\"%s\":\"%s\",\"expire\":%lld}", field,
               t->token, expire);
}

/* The token to answer with: the current one while >= 30 min are left, else a new one. */
static struct sim_token *same_or_new(struct sim *s, struct sim_token *cur, size_t app, int kind,
                                     const char *tenant, long long *expire)
{
  uint64_t now = sim_now(s);
  if (cur && cur->expires_ms > now && cur->expires_ms - now >= (uint64_t)SIM_TOKEN_REFRESH_S * 1000) {
    *expire = (long long)((cur->expires_ms - now) / 1000);
    return cur;
  }
  *expire = s->cfg.token_ttl_s;
  return sim_token_issue_kind(s, app, kind, tenant);
}

static cJSON *body_json(const struct sim_req *rq)
{
  if (rq->body_too_large || !rq->body || !rq->body_len)
    return NULL;
  return cJSON_ParseWithLengthOpts(rq->body, rq->body_len, NULL, 0);
}

/* The app named by the body's app_id and app_secret; SIZE_MAX (and answered 10014) if none. */
static size_t body_app(struct sim *s, const cJSON *json, struct sim_answer *a, char *idrec, size_t size)
{
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "app_id");
  const cJSON *secret = cJSON_GetObjectItemCaseSensitive(json, "app_secret");
  size_t i;

  if (!cJSON_IsObject(json) || !cJSON_IsString(id) || !cJSON_IsString(secret)) {
    answer_error(a, 400, 9499, NULL);
    return SIZE_MAX;
  }
  snprintf(idrec, size, "%s", id->valuestring);
  for (i = 0; i < s->napps; i++)
    if (strcmp(s->apps[i].id, id->valuestring) == 0)
      break;
  if (i == s->napps || strcmp(s->apps[i].secret, secret->valuestring) != 0) {
    answer_error(a, 400, 10014, NULL);
    return SIZE_MAX;
  }
  return i;
}

/* POST /auth/v3/app_access_token {app_id, app_secret, app_ticket}: the ticket must be the one
 * pushed last (/_sim/ticket); otherwise 10012, on which the SDKs ask for a resend. */
static void app_access_token(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  uint64_t now = sim_now(s);
  char idrec[RECORD_FIELD_MAX] = "";
  const char *app_id = NULL, *issued = NULL;
  cJSON *json = body_json(rq);
  const cJSON *ticket = cJSON_GetObjectItemCaseSensitive(json, "app_ticket");
  struct sim_token *t;
  long long expire;
  size_t i;

  s->stats.token_calls++;
  i = body_app(s, json, a, idrec, sizeof(idrec));
  if (i == SIZE_MAX)
    goto out;
  app_id = idrec;
  if (!cJSON_IsString(ticket) || !s->apps[i].ticket[0] ||
      strcmp(ticket->valuestring, s->apps[i].ticket) != 0) {
    answer_error(a, 400, 10012, "app_ticket is invalid");
    goto out;
  }
  t = same_or_new(s, s->apps[i].app_current, i, SIM_TOKEN_APP, "", &expire);
  if (!t) {
    answer_error(a, 500, 1002001, NULL);
    goto out;
  }
  issued = t->token;
  answer_token(a, "app_access_token", t, expire);
out:
  add_latency(s, a);
  record(s, now, rq, a, NULL, NULL, app_id, issued);
  cJSON_Delete(json);
}

/* Whether tenant is one of --tenants (a comma-separated list), or any tenant without it. */
static int tenant_installed(const struct sim *s, const char *tenant)
{
  size_t n = strlen(tenant);
  const char *p = s->cfg.tenants;

  if (!p)
    return 1;
  while (*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, tenant, n) == 0)
      return 1;
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

/* POST /auth/v3/tenant_access_token {app_access_token, tenant_key}: a token valid for that
 * tenant only. An unknown or expired app token: 99991664; a tenant outside --tenants: 10013
 * (the code is the simulator's choice: a clear refusal of that tenant_key). */
static void store_tenant_token(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  uint64_t now = sim_now(s);
  char tenrec[RECORD_FIELD_MAX] = "";
  const char *app_id = NULL, *issued = NULL, *tenant = NULL;
  cJSON *json = body_json(rq);
  const cJSON *apptok = cJSON_GetObjectItemCaseSensitive(json, "app_access_token");
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(json, "tenant_key");
  struct sim_token *app, *t;
  struct sim_win *w;
  long long expire;

  s->stats.token_calls++;
  if (!cJSON_IsObject(json) || !cJSON_IsString(apptok) || !cJSON_IsString(key) ||
      !key->valuestring[0] || strlen(key->valuestring) > SIM_APP_FIELD_MAX) {
    answer_error(a, 400, 9499, NULL);
    goto out;
  }
  snprintf(tenrec, sizeof(tenrec), "%s", key->valuestring);
  tenant = tenrec;
  app = sim_token_find(s, apptok->valuestring, strlen(apptok->valuestring));
  if (!app || app->kind != SIM_TOKEN_APP || app->expires_ms <= now) {
    answer_error(a, 400, 99991664, "invalid app token");
    goto out;
  }
  app_id = s->apps[app->app].id;
  if (!tenant_installed(s, key->valuestring)) {
    answer_error(a, 400, 10013, "tenant not found: the app is not installed there");
    goto out;
  }
  w = sim_win_get(s, app->app, key->valuestring);
  t = w ? same_or_new(s, w->current, app->app, SIM_TOKEN_TENANT, key->valuestring, &expire) : NULL;
  if (!t) {
    answer_error(a, 500, 1002001, NULL);
    goto out;
  }
  issued = t->token;
  answer_token(a, "tenant_access_token", t, expire);
out:
  add_latency(s, a);
  record_tenant(s, now, rq, a, NULL, NULL, app_id, issued, tenant);
  cJSON_Delete(json);
}

/* POST /auth/v3/app_ticket/resend {app_id, app_secret}: counted; the test pushes the ticket. */
static void ticket_resend(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  uint64_t now = sim_now(s);
  char idrec[RECORD_FIELD_MAX] = "";
  cJSON *json = body_json(rq);
  size_t i = body_app(s, json, a, idrec, sizeof(idrec));

  if (i != SIZE_MAX) {
    s->apps[i].resends++;
    a->http = 200;
    a->has_code = 1;
    a->code = 0;
    sim_buf_adds(&a->body, "{\"code\":0,\"msg\":\"ok\"}");
  }
  add_latency(s, a);
  record(s, now, rq, a, NULL, NULL, idrec[0] ? idrec : NULL, NULL);
  cJSON_Delete(json);
}

static void not_found(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  answer_error(a, 404, 404, "404 page not found");
  add_latency(s, a);
  record(s, sim_now(s), rq, a, NULL, NULL, NULL, NULL);
}

void sim_api_handle(struct sim *s, const struct sim_req *rq, struct sim_answer *a)
{
  const char *url = rq->url;

  pthread_mutex_lock(&s->lock);
  sim_log_id(s, a->log_id, sizeof(a->log_id));
  if (strcmp(url, TOKEN_PATH) == 0 && strcmp(rq->method, "POST") == 0) {
    token_internal(s, rq, a);
  } else if (strcmp(url, SIM_PATH_APP_TOKEN) == 0 && strcmp(rq->method, "POST") == 0) {
    app_access_token(s, rq, a);
  } else if (strcmp(url, SIM_PATH_STORE_TOKEN) == 0 && strcmp(rq->method, "POST") == 0) {
    store_tenant_token(s, rq, a);
  } else if (strcmp(url, SIM_PATH_TICKET_RESEND) == 0 && strcmp(rq->method, "POST") == 0) {
    ticket_resend(s, rq, a);
  } else if (strncmp(url, TASK_PREFIX, strlen(TASK_PREFIX)) == 0 && strcmp(rq->method, "GET") == 0) {
    const char *website = url + strlen(TASK_PREFIX);
    const char *slash = strchr(website, '/'), *task;

    if (!slash || strncmp(slash, TASK_MIDDLE, strlen(TASK_MIDDLE)) != 0) {
      not_found(s, rq, a);
      goto out;
    }
    task = slash + strlen(TASK_MIDDLE);
    if (strchr(task, '/')) {
      not_found(s, rq, a);
      goto out;
    }
    delivery_task(s, rq, website, (size_t)(slash - website), task, strlen(task), a);
  } else {
    not_found(s, rq, a);
  }
out:
  pthread_mutex_unlock(&s->lock);
}
