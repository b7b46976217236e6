/* Token manager: between the poller and the token endpoint. One token per app, cached with
 * the expiry the endpoint returned; a timer refreshes it `refresh_margin_s` before expiry
 * (inside Feishu's 30-minute window, where a call returns a new token and the old one stays
 * valid). Refreshes are single-flight: calls that find no token park in the poller and are
 * woken by the changed callback. */
#include "dw/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/codec.h"
#include "dw/common.h"
#include "dw/log.h"

#define TOKEN_MAX 4096            /* JWT tokens of the newer endpoint need >= 4 KB */
#define TOKEN_SAFETY_MS 30000     /* stop using a token this close to its expiry (at most) */
#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 60000

struct dw_token {
  uv_loop_t *loop;
  struct dw_http *http;
  char *url;
  char *body;
  size_t body_len;
  long timeout_ms;
  uint64_t margin_ms;
  dw_token_changed_cb cb;
  void *cb_arg;
  char value[TOKEN_MAX];
  uint64_t expires_at; /* loop time; 0 = no token */
  uint64_t safety_ms;  /* stop using the token this close to its expiry */
  int refreshing;
  int backing_off;     /* a failed refresh waits for its timer; nobody else may restart it */
  unsigned failures;
  uint64_t refreshes;
  uv_timer_t timer;    /* next refresh (before expiry, or retry after a failure) */
  int closed;
  int timer_closed;
  uint64_t rng;
};

static void refresh(struct dw_token *t);

static void on_timer(uv_timer_t *timer)
{
  struct dw_token *t = timer->data;
  t->backing_off = 0;
  refresh(t);
}

static void schedule(struct dw_token *t, uint64_t delay_ms)
{
  uv_timer_start(&t->timer, on_timer, delay_ms, 0);
}

static void on_answer(void *arg, const struct dw_http_response *resp)
{
  struct dw_token *t = arg;
  char msg[256] = "";
  char fresh[TOKEN_MAX];
  long code = -1;
  int64_t expire_s = 0;
  char reason[400];
  t->refreshing = 0;
  if (t->closed) {
    if (t->timer_closed)
      free(t);
    return;
  }
  if (resp->error) {
    snprintf(reason, sizeof(reason), "token endpoint unreachable: %s", resp->error_text);
  } else if (dw_token_answer_parse(resp->body, resp->body_len, fresh, sizeof(fresh), &expire_s,
                                   &code, msg, sizeof(msg)) == 0) {
    uint64_t now = uv_now(t->loop);
    memcpy(t->value, fresh, sizeof(t->value)); /* only a good answer replaces the token */
    uint64_t life = (uint64_t)expire_s * 1000;
    t->expires_at = now + life;
    t->safety_ms = DW_MIN(TOKEN_SAFETY_MS, life / 4);
    t->failures = 0;
    t->refreshes++;
    /* Refresh margin before expiry, but never sooner than half the life (a short-lived
     * token must not cause a refresh storm). */
    uint64_t due = life > t->margin_ms ? life - t->margin_ms : life / 2;
    if (due < life / 2)
      due = life / 2;
    schedule(t, due);
    dw_info("tenant access token refreshed, expires in %lld s", (long long)expire_s);
    t->cb(t->cb_arg, 0, "");
    return;
  } else {
    snprintf(reason, sizeof(reason), "token endpoint answered HTTP %ld code %ld: %s",
             resp->status, code, msg);
  }
  t->failures++;
  uint64_t backoff = RETRY_MIN_MS;
  for (unsigned i = 1; i < t->failures && backoff < RETRY_MAX_MS; i++)
    backoff *= 2;
  if (backoff > RETRY_MAX_MS)
    backoff = RETRY_MAX_MS;
  backoff = backoff / 2 + (uint64_t)(dw_rand_unit(&t->rng) * (double)(backoff / 2));
  /* An unexpired token stays usable while we retry. */
  dw_warn("%s; retrying in %llu ms", reason, (unsigned long long)backoff);
  schedule(t, backoff);
  t->backing_off = 1;
  /* Only a clear refusal (a code from a working endpoint) blames the app's credentials;
   * transport errors, server errors and unreadable answers are the endpoint's trouble. */
  int err = resp->error ? resp->error
            : (code == -1 || resp->status >= 500) ? DW_EIO
                                                  : DW_EINVAL;
  t->cb(t->cb_arg, err, reason);
}

static void refresh(struct dw_token *t)
{
  if (t->refreshing || t->backing_off || t->closed)
    return;
  struct dw_http_request req = {
      .method = "POST",
      .url = t->url,
      .body = t->body,
      .body_len = t->body_len,
      .timeout_ms = t->timeout_ms,
  };
  uv_timer_stop(&t->timer);
  int rc = dw_http_send(t->http, &req, on_answer, t);
  if (rc < 0) {
    dw_error("cannot send the token request: %s", dw_strerror(rc));
    schedule(t, RETRY_MAX_MS);
    return;
  }
  t->refreshing = 1;
}

int dw_token_new(struct dw_token **out, uv_loop_t *loop, struct dw_http *http,
                 const struct dw_token_options *opt, dw_token_changed_cb cb, void *arg)
{
  int rc = DW_ENOMEM;
  struct dw_token *t = calloc(1, sizeof(*t));
  if (!t)
    return DW_ENOMEM;
  t->loop = loop;
  t->http = http;
  t->timeout_ms = opt->timeout_ms;
  t->margin_ms = (uint64_t)opt->refresh_margin_s * 1000;
  t->cb = cb;
  t->cb_arg = arg;
  t->rng = (uint64_t)uv_hrtime() | 1;
  size_t n = strlen(opt->base_url) + 64;
  t->url = malloc(n);
  if (!t->url)
    goto fail;
  snprintf(t->url, n, "%s/open-apis/auth/v3/tenant_access_token/internal", opt->base_url);
  rc = dw_token_request_encode(opt->app_id, opt->app_secret, &t->body, &t->body_len);
  if (rc < 0)
    goto fail;
  uv_timer_init(loop, &t->timer);
  t->timer.data = t;
  *out = t;
  return 0;
fail:
  free(t->url);
  free(t);
  return rc;
}

const char *dw_token_value(struct dw_token *t)
{
  uint64_t now = uv_now(t->loop);
  if (t->expires_at && now + t->safety_ms < t->expires_at)
    return t->value;
  refresh(t);
  return NULL;
}

uint64_t dw_token_generation(const struct dw_token *t)
{
  return t->refreshes;
}

void dw_token_invalidate(struct dw_token *t, uint64_t generation)
{
  if (t->expires_at && generation == t->refreshes) {
    dw_warn("tenant access token rejected by the API; fetching a new one");
    t->expires_at = 0;
    t->value[0] = '\0';
    refresh(t);
  } else if (!t->expires_at) {
    refresh(t);
  }
}

uint64_t dw_token_refreshes(const struct dw_token *t)
{
  return t->refreshes;
}

static void on_timer_closed(uv_handle_t *handle)
{
  struct dw_token *t = handle->data;
  t->timer_closed = 1;
  free(t->url);
  free(t->body);
  t->url = t->body = NULL;
  /* A request still in flight frees t from its callback (cancelled by dw_http_close). */
  if (!t->refreshing)
    free(t);
}

void dw_token_close(struct dw_token *t)
{
  t->closed = 1;
  explicit_bzero(t->body, t->body_len);
  uv_close((uv_handle_t *)&t->timer, on_timer_closed);
}
