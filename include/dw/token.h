/* The tenant_access_token of a custom app: fetched from
 * /open-apis/auth/v3/tenant_access_token/internal, cached, refreshed before it expires (from
 * the returned `expire`, never an assumed 7200 s), one refresh at a time however many calls
 * wait. Failures of the app itself (bad secret) are reported, retried with backoff, and never
 * blamed on a task. */
#ifndef DW_TOKEN_H
#define DW_TOKEN_H

#include <stdint.h>
#include <uv.h>

#include "dw/http.h"

struct dw_token;

struct dw_token_options {
  const char *base_url;
  const char *app_id;
  const char *app_secret;
  long timeout_ms;
  int64_t refresh_margin_s; /* refresh when less than this is left (Feishu renews < 30 min) */
};

/* Called on the loop after every refresh attempt: err 0 (a token is available) or a negative
 * DW_E* with a reason ("app secret invalid (code 10014)"). */
typedef void (*dw_token_changed_cb)(void *arg, int err, const char *reason);

int dw_token_new(struct dw_token **out, uv_loop_t *loop, struct dw_http *http,
                 const struct dw_token_options *opt, dw_token_changed_cb cb, void *arg);

/* The token to use now, or NULL (then a refresh is under way or will be: wait for the
 * callback). The string stays valid until the next refresh completes. */
const char *dw_token_value(struct dw_token *t);

/* Which token dw_token_value returned: a number that changes with every new token. */
uint64_t dw_token_generation(const struct dw_token *t);

/* A call made with the token of this generation answered that it is invalid: drop it if it is
 * still the current one and refresh (a single refresh, however many calls report it). */
void dw_token_invalidate(struct dw_token *t, uint64_t generation);

uint64_t dw_token_refreshes(const struct dw_token *t);

/* Stops timers; frees t once its handles are closed. No callback after this. */
void dw_token_close(struct dw_token *t);

#endif
