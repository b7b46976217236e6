/* libFuzzer target for what the worker reads from the Feishu API: the delivery-task answer
 * classifier (under the HTTP status the input's first byte picks, 0 = transport error
 * included), the auth answer parser for both token fields (tenant_access_token and
 * app_access_token), and the pushed app_ticket event parser. The rest of the input is the body,
 * fed as the exact byte range it is (no NUL after it, a guard page behind it).
 *
 * Invariants checked: every output string is NUL-terminated in its buffer; every answer has a
 * known kind; a transport error is always a retry; a body without a usable code is a retry (or
 * rate limited under 429); a final answer carries code 0 and a success its application id;
 * classification does not depend on the status when the body has a code; a token accepted is
 * non-empty printable ASCII with a positive expiry and code 0; only 200, 4xx and 5xx carry an
 * answer (201, 302: a retry with no code); a malformed answer is a code 0 answer that says what
 * is wrong; every string a final answer hands on is valid UTF-8; a ticket accepted is non-empty
 * printable ASCII that fits, and re-encoded as a bare event it parses to the same values; a
 * rejection always says why. Build and run with tests/fuzz/run.sh; corpus tests/fuzz/corpus/api. */
#define DW_FUZZ_NAME "fuzz_api"
#include "fuzz_main.h"

#include "dw/answer.h"
#include "dw/auth.h"
#include "dw/common.h"
#include "dw/event.h"
#include "dw/text.h"
#include "dw/ticket.h"

static const long statuses[] = {200, 400, 401, 403, 404, 429, 500, 502, 503, 504, 0, 201, 302};

static void check_token(const char *token, int64_t expire, long code)
{
  size_t n = strlen(token);
  if (n == 0 || expire <= 0 || code != 0)
    abort();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7E)
      abort();
}

static void check_graphic(const char *s)
{
  if (!*s)
    abort();
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
      abort();
}

static void fuzz_classify(long status, const uint8_t *body, size_t len)
{
  struct dw_answer ans, again;

  dw_answer_classify(&ans, status, body, len);
  dw_fuzz_check_string(ans.msg, sizeof(ans.msg));
  dw_fuzz_check_string(ans.status_msg, sizeof(ans.status_msg));
  dw_fuzz_check_string(ans.extra_info, sizeof(ans.extra_info));
  dw_fuzz_check_string(ans.application_id, sizeof(ans.application_id));
  dw_fuzz_check_string(ans.talent_id, sizeof(ans.talent_id));
  dw_fuzz_check_string(ans.job_id, sizeof(ans.job_id));
  dw_fuzz_check_string(ans.job_post_id, sizeof(ans.job_post_id));
  dw_fuzz_check_string(ans.portal_resume_id, sizeof(ans.portal_resume_id));
  dw_fuzz_check_string(ans.user_id, sizeof(ans.user_id));
  if (strcmp(dw_answer_kind_name(ans.kind), "unknown") == 0)
    abort();
  if (status == 0 && ans.kind != DW_ANSWER_RETRY)
    abort();
  if (ans.code == -1 && ans.kind != DW_ANSWER_RETRY &&
      !(status == 429 && ans.kind == DW_ANSWER_RATE_LIMITED))
    abort();
  if ((ans.kind == DW_ANSWER_SUCCEEDED || ans.kind == DW_ANSWER_FAILED ||
       ans.kind == DW_ANSWER_PENDING) && ans.code != 0)
    abort();
  if (ans.kind == DW_ANSWER_SUCCEEDED && (ans.application_id[0] == '\0' || ans.status != 2))
    abort();
  if (ans.kind == DW_ANSWER_FAILED && ans.status != 3)
    abort();
  if (ans.kind != DW_ANSWER_SUCCEEDED && ans.kind != DW_ANSWER_FAILED &&
      (ans.application_id[0] || ans.status_msg[0] || ans.extra_info[0]))
    abort(); /* ids of an answer that is not final are never carried on */
  if (ans.msg[0] == '\0' && ans.code == -1)
    abort(); /* an unusable body says why */
  if ((status == 201 || status == 302) && (ans.kind != DW_ANSWER_RETRY || ans.code != -1))
    abort(); /* not a status the API answers with */
  if (ans.kind == DW_ANSWER_MALFORMED && (ans.code != 0 || ans.msg[0] == '\0'))
    abort();
  if (ans.kind == DW_ANSWER_SUCCEEDED || ans.kind == DW_ANSWER_FAILED) {
    const char *const strings[] = {ans.application_id, ans.talent_id,  ans.job_id,
                                   ans.job_post_id,    ans.portal_resume_id, ans.user_id,
                                   ans.status_msg,     ans.extra_info};
    for (size_t i = 0; i < DW_ARRAY_SIZE(strings); i++)
      if (!dw_utf8_valid(strings[i], strlen(strings[i])))
        abort();
  }

  /* The body's code decides whatever the HTTP status. */
  if (status != 0 && ans.code != -1) {
    dw_answer_classify(&again, status == 200 ? 500 : 200, body, len);
    if (again.kind != ans.kind || again.code != ans.code || again.status != ans.status ||
        strcmp(again.application_id, ans.application_id) != 0)
      abort();
  }
}

static void fuzz_auth(const uint8_t *body, size_t len)
{
  static const char *const fields[] = {"tenant_access_token", "app_access_token"};
  char token[4096], small[16], msg[256];
  int64_t expire;
  long code;

  for (size_t i = 0; i < DW_ARRAY_SIZE(fields); i++) {
    expire = 0;
    if (dw_auth_answer_parse(body, len, fields[i], token, sizeof(token), &expire, &code, msg,
                             sizeof(msg)) == 0)
      check_token(token, expire, code);
    else if (msg[0] == '\0')
      abort();
    dw_fuzz_check_string(msg, sizeof(msg));
    /* A token buffer too small for the token is a rejection, never a cut token. */
    expire = 0;
    if (dw_auth_answer_parse(body, len, fields[i], small, sizeof(small), &expire, &code, msg,
                             sizeof(msg)) == 0) {
      check_token(small, expire, code);
      if (strlen(small) >= sizeof(small))
        abort();
    }
    dw_fuzz_check_string(msg, sizeof(msg));
  }
  /* No room for a message at all is fine too. */
  dw_auth_answer_parse(body, len, fields[0], token, sizeof(token), &expire, NULL, NULL, 0);

  /* The OIDC token endpoint's answer, then the claims of the token it carries (and of the
   * body itself taken as a token). */
  char why[256], sub[64];
  int64_t expires_in, exp;
  if (dw_oauth_answer_parse(body, len, token, sizeof(token), &expires_in, why, sizeof(why)) == 0) {
    if (!token[0] || strlen(token) >= sizeof(token) || expires_in == 0 || expires_in < -1)
      abort();
    if (dw_jwt_claims_parse(token, &exp, sub, sizeof(sub), why, sizeof(why)) == DW_EINVAL &&
        !why[0])
      abort();
  } else if (!why[0]) {
    abort();
  }
  dw_fuzz_check_string(why, sizeof(why));
  if (len < sizeof(token)) {
    memcpy(token, body, len);
    token[len] = '\0';
    if (dw_jwt_claims_parse(token, &exp, sub, sizeof(sub), why, sizeof(why)) == 0 &&
        (exp == 0 || exp < -1 || strlen(sub) >= sizeof(sub)))
      abort();
    dw_fuzz_check_string(sub, sizeof(sub));
  }
}

static void fuzz_ticket(const uint8_t *body, size_t len)
{
  char app_id[DW_TENANT_KEY_MAX], ticket[DW_TICKET_MAX], why[160];
  char app_id2[DW_TENANT_KEY_MAX], ticket2[DW_TICKET_MAX];
  char *enc = NULL;
  size_t enc_len = 0;

  if (dw_app_ticket_parse(body, len, app_id, sizeof(app_id), ticket, sizeof(ticket), why,
                          sizeof(why)) != 0) {
    dw_fuzz_check_string(why, sizeof(why));
    if (why[0] == '\0' || app_id[0] || ticket[0])
      abort();
    return;
  }
  check_graphic(app_id);
  check_graphic(ticket);
  const char *pairs[] = {"type", "app_ticket", "app_id", app_id, "app_ticket", ticket};
  if (dw_json_strings_encode(pairs, 3, &enc, &enc_len) != 0 || !dw_utf8_valid(enc, enc_len))
    abort();
  if (dw_app_ticket_parse(enc, enc_len, app_id2, sizeof(app_id2), ticket2, sizeof(ticket2),
                          why, sizeof(why)) != 0 ||
      strcmp(app_id, app_id2) != 0 || strcmp(ticket, ticket2) != 0)
    abort();
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  long status = 200;

  if (size > 0) {
    status = statuses[input[0] % DW_ARRAY_SIZE(statuses)];
    input++;
    size--;
  }
  const uint8_t *body = dw_fuzz_guarded_copy(input, size);
  fuzz_classify(status, body, size);
  fuzz_auth(body, size);
  fuzz_ticket(body, size);
  return 0;
}
