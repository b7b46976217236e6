/* Access tokens, per tenant. A self-built (custom) app has one tenant and one
 * tenant_access_token from /open-apis/auth/v3/tenant_access_token/internal. A store (ISV) app
 * first obtains its app_access_token (/auth/v3/app_access_token, with the app_ticket Feishu
 * pushes) and with it one tenant_access_token per tenant_key (/auth/v3/tenant_access_token).
 * Every token is cached with the expiry its endpoint returned (never an assumed 7200 s) and
 * refreshed before it expires, one refresh per token at a time however many calls wait.
 * Failures of the app itself (bad secret) are reported, retried with backoff, and never
 * blamed on a task; a missing or refused app_ticket makes tasks wait for a new one. A store
 * tenant's failed refresh is retried with backoff only while something asks for its token, and
 * a tenant nobody asked for in 10 minutes is forgotten (its entry freed). */
#ifndef DW_TOKEN_H
#define DW_TOKEN_H

#include <stdint.h>
#include <uv.h>

#include "dw/config.h"
#include "dw/http.h"
#include "dw/ticket.h"

/* The Feishu code of a refused app_ticket (the official SDKs resend the ticket on it). */
#define DW_TOKEN_CODE_TICKET_INVALID 10012
/* An app_access_token refused by the tenant_access_token endpoint. */
#define DW_TOKEN_CODE_APP_TOKEN_INVALID 99991664

struct dw_token;

/* Called on the loop after refresh attempts: tenant_key names the tenant whose token changed,
 * or is NULL for news that concern every tenant (the app_access_token or the app_ticket);
 * err 0 (a token is available), DW_EAGAIN (waiting for an app_ticket), or another negative
 * DW_E* with a reason ("app secret invalid (code 10014)"); DW_EINVAL means a clear refusal of
 * the app's credentials. */
typedef void (*dw_token_changed_cb)(void *arg, const char *tenant_key, int err,
                                    const char *reason);

/* Reads from the feishu section: base_url, app_id and app_secret (copied), request_timeout_ms
 * and token_refresh_margin_s (refresh when less than this is left; Feishu renews < 30 min).
 * ticket is a store app's app_ticket source (borrowed), NULL for a self-built app. */
int dw_token_new(struct dw_token **out, uv_loop_t *loop, struct dw_http *http,
                 const struct dw_config_feishu *feishu, struct dw_ticket *ticket,
                 dw_token_changed_cb cb, void *arg);

/* Whether tokens are per tenant (a store app). A self-built app ignores tenant_key below. */
int dw_token_per_tenant(const struct dw_token *t);

/* The token for this tenant now, or NULL (then a refresh is under way or will be: wait for the
 * callback). The string stays valid until that tenant's next refresh completes. A NULL
 * tenant_key of a store app only starts fetching the app_access_token (returns NULL). */
const char *dw_token_value(struct dw_token *t, const char *tenant_key);

/* Which token dw_token_value returned: a number that changes with every new token of the
 * tenant. */
uint64_t dw_token_generation(struct dw_token *t, const char *tenant_key);

/* A call made with the tenant's token of this generation answered that it is invalid: drop it
 * if it is still the current one and refresh (a single refresh, however many calls report
 * it). Other tenants' tokens are untouched. */
void dw_token_invalidate(struct dw_token *t, const char *tenant_key, uint64_t generation);

/* Copies src (text from outside: an answer's msg, a header, a transport error) into dst (size
 * bytes; they must not overlap) scrubbed by dw_text_scrub of every secret held that a text
 * about this tenant could quote: the app secret, the app_ticket, the app_access_token and the
 * tenant's (or the self-built app's) token. */
void dw_token_scrub(struct dw_token *t, const char *tenant_key, char *dst, size_t size,
                    const char *src);

/* When the first of the tokens held expires (the self-built app's token, or a store app's
 * app_access_token and its tenants' tokens), in loop time (uv_now, ms); 0 when none is held. */
uint64_t dw_token_earliest_expiry(const struct dw_token *t);

/* Tenant access tokens obtained, all tenants. */
uint64_t dw_token_refreshes(const struct dw_token *t);

/* Stops timers; frees t once its handles are closed and its requests answered, and then calls
 * done(arg) (may be NULL). No other callback after this. */
void dw_token_close(struct dw_token *t, void (*done)(void *arg), void *arg);

#endif
