/* Token manager: between the poller and the auth endpoints. Each token (the self-built app's,
 * a store app's app_access_token, each store tenant's tenant_access_token) is an entry cached
 * with the expiry its endpoint returned; a timer refreshes it `refresh_margin_s` before expiry
 * (inside Feishu's 30-minute window, where a call returns a new token and the old one stays
 * valid). Refreshes are single-flight per entry: calls that find no token park in the poller
 * and are woken by the changed callback. A store tenant's refresh needs the app_access_token,
 * which needs the app_ticket: each waits for the one before it instead of failing, and a
 * missing or refused ticket (code 10012) asks Feishu to push it again (app_ticket/resend). */
#include "dw/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/answer.h"
#include "dw/auth.h"
#include "dw/event.h"
#include "dw/common.h"
#include "dw/log.h"
#include "dw/text.h"

#define TOKEN_MAX 4096            /* JWT tokens of the newer endpoint need >= 4 KB */
#define TOKEN_SAFETY_MS 30000     /* stop using a token this close to its expiry (at most) */
/* ... and at most this fraction (1/4) of its life, so that a short-lived token is used for most
 * of it. */
#define SAFETY_LIFE_DIVISOR 4
/* A token is refreshed no sooner than this fraction (1/2) of its life: a short-lived token must
 * not cause a refresh storm. */
#define REFRESH_LIFE_DIVISOR 2
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 60000
#define RESEND_MIN_MS 2000        /* app_ticket/resend: first repeat while no ticket comes */
#define RESEND_MAX_MS 60000
/* A store tenant's entry (4 KB of token) nobody asked for in this long is freed; the sweep runs
 * every TENANT_SWEEP_MS. */
#define TENANT_IDLE_MS (10 * 60 * 1000)
#define TENANT_SWEEP_MS 60000

enum kind { K_SELF, K_APP, K_TENANT };

struct entry {
  struct dw_token *t;
  enum kind kind;
  char key[DW_TENANT_KEY_MAX + 1]; /* tenant_key; "" for K_SELF and K_APP */
  char value[TOKEN_MAX];
  uint64_t expires_at;  /* loop time; 0 = no token */
  uint64_t safety_ms;   /* stop using the token this close to its expiry */
  int refreshing;
  int backing_off;      /* a failed refresh waits for its timer; nobody else may restart it */
  int waiting;          /* for the app_access_token (tenant) or the app_ticket (app) */
  int used;             /* asked for since the last refresh (or failure): worth refreshing */
  uint64_t last_used;   /* loop time of the last ask (tenants: idle ones are freed) */
  unsigned failures;
  uint64_t refreshes;   /* the generation */
  uint64_t sent_gen;    /* generation of the ticket or app token the request carried */
  uv_timer_t timer;     /* next refresh (before expiry, or retry after a failure) */
  struct entry *next;   /* hash chain */
};

struct dw_token {
  uv_loop_t *loop;
  struct dw_http *http;
  struct dw_ticket *ticket; /* NULL: self-built */
  char *url_self, *url_app, *url_tenant, *url_resend;
  char *app_id, *app_secret;
  char *body_self;      /* self-built request body, encoded once */
  size_t body_self_len;
  long timeout_ms;
  uint64_t margin_ms;
  dw_token_changed_cb cb;
  void *cb_arg;
  struct entry *self;   /* self-built: the one token */
  struct entry *app;    /* store: the app_access_token */
  struct entry **buckets; /* store: tenants by tenant_key */
  size_t nbuckets, ntenants;
  uv_timer_t sweep;     /* store: frees idle tenants */
  uint64_t refreshes;   /* tenant tokens obtained */
  int resending;
  uint64_t resend_after; /* no app_ticket/resend before this loop time */
  uint64_t resend_backoff;
  size_t holds;         /* open timers + requests in flight */
  int closed;
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
  uint64_t rng;
};

static void refresh(struct entry *e);

static void token_free(struct dw_token *t)
{
  for (size_t i = 0; i < t->nbuckets; i++)
    while (t->buckets[i]) {
      struct entry *e = t->buckets[i];
      t->buckets[i] = e->next;
      free(e);
    }
  free(t->buckets);
  free(t->self);
  free(t->app);
  if (t->app_secret)
    explicit_bzero(t->app_secret, strlen(t->app_secret));
  if (t->body_self)
    explicit_bzero(t->body_self, t->body_self_len);
  free(t->url_self);
  free(t->url_app);
  free(t->url_tenant);
  free(t->url_resend);
  free(t->app_id);
  free(t->app_secret);
  free(t->body_self);
  void (*done)(void *) = t->done;
  void *arg = t->done_arg;
  free(t);
  if (done)
    done(arg);
}

static void release(struct dw_token *t)
{
  if (--t->holds == 0 && t->closed)
    token_free(t);
}

static void on_timer(uv_timer_t *timer)
{
  struct entry *e = timer->data;
  e->backing_off = 0;
  if (e->kind == K_APP && e->waiting) { /* for a ticket: look again, ask again */
    e->waiting = 0;
    refresh(e);
    return;
  }
  /* Store tokens nobody asked for since their last refresh are left to lapse: a tenant that
   * sends no more tasks costs no more calls. The next ask refreshes them. A refused tenant is
   * retried only while a task asks for it (the poller asks again after each failure). */
  if (e->kind != K_SELF && !e->used && !e->waiting && (e->expires_at || e->kind == K_TENANT))
    return;
  refresh(e);
}

static void schedule(struct entry *e, uint64_t delay_ms)
{
  uv_timer_start(&e->timer, on_timer, delay_ms, 0);
}

static struct entry *entry_new(struct dw_token *t, enum kind kind, const char *key)
{
  struct entry *e = calloc(1, sizeof(*e));
  if (!e)
    return NULL;
  e->t = t;
  e->kind = kind;
  dw_strlcpy(e->key, key, sizeof(e->key));
  uv_timer_init(t->loop, &e->timer);
  e->timer.data = e;
  e->last_used = uv_now(t->loop);
  t->holds++;
  return e;
}

static const char *entry_value(struct entry *e)
{
  uint64_t now = uv_now(e->t->loop);
  e->used = 1;
  e->last_used = now;
  if (e->expires_at && now + e->safety_ms < e->expires_at)
    return e->value;
  refresh(e);
  return NULL;
}

static void notify(struct dw_token *t, struct entry *e, int err, const char *reason)
{
  if (!t->closed)
    t->cb(t->cb_arg, e && e->kind == K_TENANT ? e->key : e == t->self ? "" : NULL, err,
          reason);
}

/* ---- app_ticket/resend ---- */

static void on_resend_answer(void *arg, const struct dw_http_response *resp)
{
  struct dw_token *t = arg;
  t->resending = 0;
  if (!t->closed) {
    if (resp->error)
      dw_warn("app_ticket/resend unreachable: %s", resp->error_text);
    else if (resp->status >= 300)
      dw_warn("app_ticket/resend answered HTTP %ld", resp->status);
    else
      dw_info("asked Feishu to push the app_ticket again; waiting for it");
  }
  release(t);
}

/* Asks Feishu to push the app_ticket again, at most once per backoff interval. */
static void request_resend(struct dw_token *t)
{
  uint64_t now = uv_now(t->loop);
  char *body = NULL;
  size_t len = 0;
  if (t->resending || now < t->resend_after || t->closed)
    return;
  const char *pairs[] = {"app_id", t->app_id, "app_secret", t->app_secret};
  if (dw_json_strings_encode(pairs, 2, &body, &len) < 0)
    return;
  struct dw_http_request req = {
      .method = "POST", .url = t->url_resend, .body = body, .body_len = len,
      .timeout_ms = t->timeout_ms, .endpoint = "app_ticket_resend",
  };
  int rc = dw_http_send(t->http, &req, on_resend_answer, t);
  explicit_bzero(body, len);
  free(body);
  t->resend_backoff = t->resend_backoff ? DW_MIN(t->resend_backoff * 2, RESEND_MAX_MS)
                                        : RESEND_MIN_MS;
  t->resend_after = now + t->resend_backoff;
  if (rc < 0) {
    dw_error("cannot send app_ticket/resend: %s", dw_strerror(rc));
    return;
  }
  t->resending = 1;
  t->holds++;
}

/* The app_access_token cannot be fetched without a ticket: ask for one and look again when
 * the backoff has passed (or at once when a ticket arrives: on_ticket). */
static void wait_for_ticket(struct entry *app, const char *reason)
{
  struct dw_token *t = app->t;
  app->waiting = 1;
  request_resend(t);
  schedule(app, t->resend_after > uv_now(t->loop) ? t->resend_after - uv_now(t->loop)
                                                  : RESEND_MIN_MS);
  dw_warn("%s; store tenants' tasks wait for a new app_ticket", reason);
  notify(t, NULL, DW_EAGAIN, reason);
}

static void on_ticket(void *arg)
{
  struct dw_token *t = arg;
  if (t->closed || !t->app)
    return;
  t->resend_backoff = 0;
  t->resend_after = 0;
  /* A new ticket only matters when the app token is missing or was refused. */
  if (t->app->waiting || !t->app->expires_at) {
    t->app->waiting = 0;
    t->app->backing_off = 0;
    t->app->failures = 0;
    refresh(t->app);
  }
}

/* ---- answers ---- */

/* Tenants that waited for the app_access_token go on. */
static void wake_tenants(struct dw_token *t)
{
  for (size_t i = 0; i < t->nbuckets; i++)
    for (struct entry *e = t->buckets[i]; e; e = e->next)
      if (e->waiting) {
        e->waiting = 0;
        refresh(e);
      }
}

static void took_token(struct entry *e, const char *fresh, int64_t expire_s)
{
  struct dw_token *t = e->t;
  uint64_t now = uv_now(t->loop);
  memcpy(e->value, fresh, sizeof(e->value)); /* only a good answer replaces the token */
  uint64_t life = (uint64_t)expire_s * 1000;
  e->expires_at = now + life;
  e->safety_ms = DW_MIN(TOKEN_SAFETY_MS, life / SAFETY_LIFE_DIVISOR);
  e->failures = 0;
  e->refreshes++;
  e->used = 0;
  /* Refresh margin before expiry, but never sooner than half the life (a short-lived
   * token must not cause a refresh storm). */
  uint64_t due = life > t->margin_ms ? life - t->margin_ms : life / REFRESH_LIFE_DIVISOR;
  if (due < life / REFRESH_LIFE_DIVISOR)
    due = life / REFRESH_LIFE_DIVISOR;
  schedule(e, due);
  if (e->kind == K_APP) {
    dw_info("app access token refreshed, expires in %lld s", (long long)expire_s);
    wake_tenants(t);
    return;
  }
  t->refreshes++;
  if (e->kind == K_TENANT)
    dw_info("tenant access token of tenant %s refreshed, expires in %lld s", e->key,
            (long long)expire_s);
  else
    dw_info("tenant access token refreshed, expires in %lld s", (long long)expire_s);
  notify(t, e, 0, "");
}

/* Store-app refusals that are not failures: each waits for what it needs. Returns 1 if
 * handled. */
static int refused_for_a_reason(struct entry *e, long code, const char *msg)
{
  struct dw_token *t = e->t;
  char reason[400];
  if (e->kind == K_APP && code == DW_TOKEN_CODE_TICKET_INVALID) {
    dw_ticket_refused(t->ticket, e->sent_gen);
    if (dw_ticket_generation(t->ticket) != e->sent_gen && dw_ticket_value(t->ticket)) {
      /* A newer ticket arrived while this one was on its way (the topic is read from its
       * start, oldest first): try it now rather than at the next retry. Bounded by the
       * tickets that arrive. */
      dw_info("app_ticket refused (code %ld), a newer one has arrived: using it", code);
      refresh(e);
      return 1;
    }
    snprintf(reason, sizeof(reason), "app_ticket refused (code %ld: %s)", code, msg);
    wait_for_ticket(e, reason);
    return 1;
  }
  if (e->kind == K_TENANT && code == DW_TOKEN_CODE_APP_TOKEN_INVALID) {
    struct entry *app = t->app;
    if (app->expires_at && app->refreshes == e->sent_gen) {
      dw_warn("app access token rejected (code %ld); fetching a new one", code);
      app->expires_at = 0;
    }
    /* Once, wait for a new app token and go at once; a tenant endpoint that refuses fresh app
     * tokens again and again (while the app-token endpoint keeps issuing them) is a failure
     * like any other: counted and backed off, instead of alternating requests with no pause. */
    if (e->failures > 0)
      return 0;
    e->failures++;
    e->waiting = 1;
    if (entry_value(app))
      wake_tenants(t);
    return 1;
  }
  return 0;
}

static void on_answer(void *arg, const struct dw_http_response *resp)
{
  struct entry *e = arg;
  struct dw_token *t = e->t;
  char raw[DW_TEXT_MAX] = ""; /* the endpoint's msg as it came (a secret it quotes whole) */
  char msg[256] = "";
  char fresh[TOKEN_MAX];
  long code = -1;
  int64_t expire_s = 0;
  char reason[640];
  const char *what = e->kind == K_APP      ? "app_access_token"
                     : e->kind == K_TENANT ? "tenant_access_token (store)"
                                           : "token";
  e->refreshing = 0;
  if (t->closed) {
    release(t);
    return;
  }
  if (!resp->error &&
      dw_auth_answer_parse(resp->body, resp->body_len,
                           e->kind == K_APP ? "app_access_token" : "tenant_access_token", fresh,
                           sizeof(fresh), &expire_s, &code, raw, sizeof(raw)) == 0) {
    took_token(e, fresh, expire_s);
    release(t);
    return;
  }
  /* The endpoint's text is scrubbed before any use: one that quotes the request it refused
   * would put the app secret into every log line, /readyz and the poller's reasons. */
  dw_token_scrub(t, e->key, msg, sizeof(msg), resp->error ? resp->error_text : raw);
  if (resp->error) {
    snprintf(reason, sizeof(reason), "%s endpoint unreachable: %s", what, msg);
  } else if (refused_for_a_reason(e, code, msg)) {
    release(t);
    return;
  } else if (e->kind == K_TENANT) {
    snprintf(reason, sizeof(reason), "%s endpoint answered HTTP %ld code %ld for tenant %s: %s",
             what, resp->status, code, e->key, msg);
  } else {
    snprintf(reason, sizeof(reason), "%s endpoint answered HTTP %ld code %ld: %s", what,
             resp->status, code, msg);
  }
  e->failures++;
  uint64_t backoff = RETRY_MIN_MS;
  for (unsigned i = 1; i < e->failures && backoff < RETRY_MAX_MS; i++)
    backoff *= 2;
  if (backoff > RETRY_MAX_MS)
    backoff = RETRY_MAX_MS;
  backoff = backoff / 2 + (uint64_t)(dw_rand_unit(&t->rng) * (double)(backoff / 2));
  /* An unexpired token stays usable while we retry. */
  dw_warn("%s; retrying in %llu ms", reason, (unsigned long long)backoff);
  schedule(e, backoff);
  e->backing_off = 1;
  /* The app's own tokens are always worth retrying; a tenant's only if a task still asks for
   * it (the notification below makes the poller ask again when one waits). */
  e->used = e->kind != K_TENANT;
  /* Only a clear refusal (a code from a working endpoint) blames the app's credentials;
   * transport errors, server errors and unreadable answers are the endpoint's trouble. */
  int err = resp->error ? resp->error
            : (code == -1 || resp->status >= 500) ? DW_EIO
                                                  : DW_EINVAL;
  notify(t, e, err, reason);
  release(t);
}

/* ---- requests ---- */

/* The request body for e, or NULL when e must wait (for the app token or the ticket). */
static int make_body(struct entry *e, char **body, size_t *len)
{
  struct dw_token *t = e->t;
  if (e->kind == K_SELF) {
    *body = t->body_self;
    *len = t->body_self_len;
    return 0;
  }
  if (e->kind == K_APP) {
    const char *ticket = dw_ticket_value(t->ticket);
    if (!ticket) {
      wait_for_ticket(e, "no app_ticket yet");
      return DW_EAGAIN;
    }
    e->sent_gen = dw_ticket_generation(t->ticket);
    const char *pairs[] = {"app_id", t->app_id, "app_secret", t->app_secret, "app_ticket",
                           ticket};
    return dw_json_strings_encode(pairs, 3, body, len);
  }
  const char *app_token = entry_value(t->app);
  if (!app_token) {
    e->waiting = 1; /* wake_tenants sends it once the app token is there */
    return DW_EAGAIN;
  }
  e->sent_gen = t->app->refreshes;
  const char *pairs[] = {"app_access_token", app_token, "tenant_key", e->key};
  return dw_json_strings_encode(pairs, 2, body, len);
}

static void refresh(struct entry *e)
{
  struct dw_token *t = e->t;
  char *body = NULL;
  size_t len = 0;
  if (e->refreshing || e->backing_off || e->waiting || t->closed)
    return;
  int rc = make_body(e, &body, &len);
  if (rc == DW_EAGAIN)
    return;
  if (rc < 0) {
    dw_error("cannot encode the token request: %s", dw_strerror(rc));
    schedule(e, RETRY_MAX_MS);
    return;
  }
  struct dw_http_request req = {
      .method = "POST",
      .url = e->kind == K_SELF ? t->url_self : e->kind == K_APP ? t->url_app : t->url_tenant,
      .body = body,
      .body_len = len,
      .timeout_ms = t->timeout_ms,
      .endpoint = e->kind == K_SELF  ? "tenant_access_token_internal"
                  : e->kind == K_APP ? "app_access_token"
                                     : "tenant_access_token",
  };
  uv_timer_stop(&e->timer);
  rc = dw_http_send(t->http, &req, on_answer, e);
  if (body != t->body_self) { /* the request was copied; app secret and tokens go now */
    explicit_bzero(body, len);
    free(body);
  }
  if (rc < 0) {
    dw_error("cannot send the token request: %s", dw_strerror(rc));
    schedule(e, RETRY_MAX_MS);
    return;
  }
  e->refreshing = 1;
  t->holds++;
}

/* ---- tenants ---- */

static size_t hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (size_t)h;
}

static int grow(struct dw_token *t)
{
  size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
  struct entry **b = calloc(n, sizeof(*b));
  if (!b)
    return DW_ENOMEM;
  for (size_t i = 0; i < t->nbuckets; i++)
    while (t->buckets[i]) {
      struct entry *e = t->buckets[i];
      t->buckets[i] = e->next;
      e->next = b[hash(e->key) % n];
      b[hash(e->key) % n] = e;
    }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

/* The entry of a tenant's token (created on first use), or NULL without memory. */
static struct entry *lookup(struct dw_token *t, const char *tenant_key)
{
  if (!t->ticket)
    return t->self;
  if (!tenant_key)
    tenant_key = "";
  if (t->nbuckets) {
    for (struct entry *e = t->buckets[hash(tenant_key) % t->nbuckets]; e; e = e->next)
      if (strcmp(e->key, tenant_key) == 0)
        return e;
  }
  if (t->ntenants >= t->nbuckets && grow(t) < 0)
    return NULL;
  struct entry *e = entry_new(t, K_TENANT, tenant_key);
  if (!e)
    return NULL;
  size_t i = hash(tenant_key) % t->nbuckets;
  e->next = t->buckets[i];
  t->buckets[i] = e;
  t->ntenants++;
  return e;
}

static void on_tenant_closed(uv_handle_t *handle)
{
  struct entry *e = handle->data;
  struct dw_token *t = e->t;
  free(e);
  release(t);
}

/* Frees the tenants nobody asked for in TENANT_IDLE_MS (their tasks are gone: finished or
 * dead-lettered); a refresh in flight keeps its entry until it is answered. */
static void on_sweep(uv_timer_t *timer)
{
  struct dw_token *t = timer->data;
  uint64_t now = uv_now(t->loop);
  for (size_t i = 0; i < t->nbuckets; i++) {
    struct entry **pp = &t->buckets[i];
    while (*pp) {
      struct entry *e = *pp;
      if (e->refreshing || now - e->last_used < TENANT_IDLE_MS) {
        pp = &e->next;
        continue;
      }
      *pp = e->next;
      t->ntenants--;
      explicit_bzero(e->value, sizeof(e->value));
      uv_close((uv_handle_t *)&e->timer, on_tenant_closed);
    }
  }
}

/* ---- public ---- */

static char *url_of(const char *base, const char *path)
{
  size_t n = strlen(base) + strlen(path) + 1;
  char *u = malloc(n);
  if (u)
    snprintf(u, n, "%s%s", base, path);
  return u;
}

int dw_token_new(struct dw_token **out, uv_loop_t *loop, struct dw_http *http,
                 const struct dw_config_feishu *feishu, struct dw_ticket *ticket,
                 dw_token_changed_cb cb, void *arg)
{
  int rc = DW_ENOMEM;
  struct dw_token *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  t->loop = loop;
  t->http = http;
  t->ticket = ticket;
  t->timeout_ms = (long)feishu->request_timeout_ms;
  t->margin_ms = (uint64_t)feishu->token_refresh_margin_s * 1000;
  t->cb = cb;
  t->cb_arg = arg;
  t->rng = (uint64_t)uv_hrtime() | 1;
  t->holds = 1; /* ours, until dw_token_close */
  t->app_id = strdup(feishu->app_id);
  t->app_secret = strdup(feishu->app_secret);
  t->url_self = url_of(feishu->base_url, "/open-apis/auth/v3/tenant_access_token/internal");
  t->url_app = url_of(feishu->base_url, "/open-apis/auth/v3/app_access_token");
  t->url_tenant = url_of(feishu->base_url, "/open-apis/auth/v3/tenant_access_token");
  t->url_resend = url_of(feishu->base_url, "/open-apis/auth/v3/app_ticket/resend");
  if (!t->app_id || !t->app_secret || !t->url_self || !t->url_app || !t->url_tenant ||
      !t->url_resend)
    goto fail;
  if (t->ticket) {
    t->app = entry_new(t, K_APP, "");
    if (!t->app || grow(t) < 0)
      goto fail;
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->holds++;
    uv_timer_start(&t->sweep, on_sweep, TENANT_SWEEP_MS, TENANT_SWEEP_MS);
    uv_unref((uv_handle_t *)&t->sweep); /* housekeeping keeps no loop alive */
    dw_ticket_set_cb(t->ticket, on_ticket, t);
  } else {
    rc = dw_token_request_encode(feishu->app_id, feishu->app_secret, &t->body_self,
                                 &t->body_self_len);
    if (rc < 0)
      goto fail;
    rc = DW_ENOMEM;
    t->self = entry_new(t, K_SELF, "");
    if (!t->self)
      goto fail;
  }
  *out = t;
  return 0;
fail:
  dw_token_close(t, NULL, NULL);
  return rc;
}

int dw_token_per_tenant(const struct dw_token *t)
{
  return t->ticket != NULL;
}

const char *dw_token_value(struct dw_token *t, const char *tenant_key)
{
  if (t->ticket && !tenant_key) { /* warm-up: the app token every tenant will need */
    entry_value(t->app);
    return NULL;
  }
  struct entry *e = lookup(t, tenant_key);
  return e ? entry_value(e) : NULL;
}

uint64_t dw_token_generation(struct dw_token *t, const char *tenant_key)
{
  struct entry *e = lookup(t, tenant_key);
  return e ? e->refreshes : 0;
}

void dw_token_invalidate(struct dw_token *t, const char *tenant_key, uint64_t generation)
{
  struct entry *e = lookup(t, tenant_key);
  if (!e)
    return;
  if (e->expires_at && generation == e->refreshes) {
    if (e->kind == K_TENANT)
      dw_warn("tenant access token of tenant %s rejected by the API; fetching a new one",
              e->key);
    else
      dw_warn("tenant access token rejected by the API; fetching a new one");
    e->expires_at = 0;
    e->value[0] = '\0';
    refresh(e);
  } else if (!e->expires_at) {
    refresh(e);
  }
}

void dw_token_scrub(struct dw_token *t, const char *tenant_key, char *dst, size_t size,
                    const char *src)
{
  const char *secrets[5] = {t->app_secret, t->self ? t->self->value : NULL,
                            t->app ? t->app->value : NULL,
                            t->ticket ? dw_ticket_value(t->ticket) : NULL, NULL};
  if (t->ticket && tenant_key && t->nbuckets) /* found, never created: lookup() would */
    for (struct entry *e = t->buckets[hash(tenant_key) % t->nbuckets]; e; e = e->next)
      if (strcmp(e->key, tenant_key) == 0)
        secrets[4] = e->value;
  dw_text_scrub(dst, size, src, secrets, DW_ARRAY_SIZE(secrets));
}

uint64_t dw_token_refreshes(const struct dw_token *t)
{
  return t->refreshes;
}

static void on_timer_closed(uv_handle_t *handle)
{
  struct entry *e = handle->data;
  release(e->t);
}

static void on_sweep_closed(uv_handle_t *handle)
{
  release(handle->data);
}

/* Requests still in flight release t from their callbacks (cancelled by dw_http_close). */
void dw_token_close(struct dw_token *t, void (*done)(void *arg), void *arg)
{
  t->closed = 1;
  t->done = done;
  t->done_arg = arg;
  if (t->ticket)
    dw_ticket_set_cb(t->ticket, NULL, NULL);
  if (t->sweep.data)
    uv_close((uv_handle_t *)&t->sweep, on_sweep_closed);
  if (t->self)
    uv_close((uv_handle_t *)&t->self->timer, on_timer_closed);
  if (t->app)
    uv_close((uv_handle_t *)&t->app->timer, on_timer_closed);
  for (size_t i = 0; i < t->nbuckets; i++)
    for (struct entry *e = t->buckets[i]; e; e = e->next)
      uv_close((uv_handle_t *)&e->timer, on_timer_closed);
  release(t);
}

uint64_t dw_token_earliest_expiry(const struct dw_token *t)
{
  uint64_t earliest = 0;
  const struct entry *own[] = {t->self, t->app};
  for (size_t i = 0; i < DW_ARRAY_SIZE(own); i++)
    if (own[i] && own[i]->expires_at && (!earliest || own[i]->expires_at < earliest))
      earliest = own[i]->expires_at;
  for (size_t i = 0; i < t->nbuckets; i++)
    for (const struct entry *e = t->buckets[i]; e; e = e->next)
      if (e->expires_at && (!earliest || e->expires_at < earliest))
        earliest = e->expires_at;
  return earliest;
}
