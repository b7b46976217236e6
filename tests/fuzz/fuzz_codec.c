/* libFuzzer target for the JSON formats (event, answer, result, auth): every input is fed, as
 * the exact byte range it is (no NUL after it), to the event parser, the answer classifier (under a few HTTP statuses) and the
 * token answer parser; accepted events and final answers are also encoded as a result and the
 * result parsed back as an event, which must hold the same IDs. Everything encoded (results,
 * the token request) must be valid UTF-8, checked with the worker's own validator, and so must
 * every string an accepted event or a final answer hands on. tests/fuzz/run.sh builds it with
 * libFuzzer; fuzz_main.h gives it the guarded input copy and, with -DDW_FUZZ_REPLAY_MAIN, the
 * corpus replay main ctest runs. */
#define DW_FUZZ_NAME "fuzz_codec"
#include "fuzz_main.h"

#include "dw/answer.h"
#include "dw/auth.h"
#include "dw/common.h"
#include "dw/event.h"
#include "dw/result.h"
#include "dw/text.h"

static void check_utf8(const char *s)
{
  if (!dw_utf8_valid(s, strlen(s)))
    abort();
}

/* Encodes res; it must encode (every string in it is valid UTF-8), be valid UTF-8, and read
 * back as an event with the same IDs. */
static void check_result(const struct dw_result *res)
{
  struct dw_event back;
  char why[128];
  char *out = NULL;
  size_t len = 0;

  if (dw_result_encode(res, &out, &len) != 0 || !dw_utf8_valid(out, len))
    abort();
  if (dw_event_parse(&back, out, len, why, sizeof(why)) != 0 ||
      strcmp(back.website_id, res->event->website_id) != 0 ||
      strcmp(back.task_id, res->event->task_id) != 0)
    abort();
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  const uint8_t *data = dw_fuzz_guarded_copy(input, size);
  static const long statuses[] = {200, 400, 429, 500, 302};
  struct dw_event ev;
  struct dw_answer ans;
  char why[128];
  char token[4096], msg[256];
  int64_t expire;
  long code;
  int ev_ok;

  ev_ok = dw_event_parse(&ev, data, size, why, sizeof(why)) == 0;
  dw_fuzz_check_string(why, sizeof(why));
  if (ev_ok) {
    size_t n = strlen(ev.website_id);
    if (n < 1 || n > DW_WEBSITE_ID_MAX || strspn(ev.website_id, "0123456789") != n)
      abort();
    n = strlen(ev.task_id);
    if (n < 1 || n > DW_TASK_ID_MAX ||
        strspn(ev.task_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            n)
      abort();
    check_utf8(ev.event_id);
    check_utf8(ev.tenant_key);
  } else if (why[0] == '\0') {
    abort(); /* a rejection always says why */
  }

  for (size_t i = 0; i < DW_ARRAY_SIZE(statuses); i++) {
    dw_answer_classify(&ans, statuses[i], data, size);
    dw_fuzz_check_string(ans.msg, sizeof(ans.msg));
    dw_fuzz_check_string(ans.application_id, sizeof(ans.application_id));
    dw_fuzz_check_string(ans.status_msg, sizeof(ans.status_msg));
    dw_fuzz_check_string(ans.extra_info, sizeof(ans.extra_info));
    if (strcmp(dw_answer_kind_name(ans.kind), "unknown") == 0)
      abort();
    if (ans.kind == DW_ANSWER_SUCCEEDED && ans.application_id[0] == '\0')
      abort();
    if (ans.kind == DW_ANSWER_MALFORMED && (ans.code != 0 || ans.msg[0] == '\0'))
      abort(); /* malformed is a code 0 answer, and says what is wrong */
    if (statuses[i] == 302 && (ans.kind != DW_ANSWER_RETRY || ans.code != -1))
      abort(); /* a redirect is never an answer */
    if (ans.kind == DW_ANSWER_SUCCEEDED || ans.kind == DW_ANSWER_FAILED) {
      /* A final answer encodes with the parsed event (or a fixed one), as valid UTF-8, and the
       * result reads back as an event with the same IDs. */
      struct dw_event fixed = {.website_id = "1", .task_id = "t"};
      struct dw_result res = {.event = ev_ok ? &ev : &fixed, .answer = &ans, .polls = 1,
                              .resolved_at_ms = 1795490884123LL};
      check_result(&res);
    }
  }

  /* An accepted event encodes with a fixed final answer: event_id and tenant_key reach the
   * results topic as valid UTF-8. */
  if (ev_ok) {
    static const char ok[] = "{\"code\":0,\"data\":{\"status\":3,\"status_msg\":\"x\"}}";
    struct dw_answer fin;
    dw_answer_classify(&fin, 200, ok, sizeof(ok) - 1);
    struct dw_result res = {.event = &ev, .answer = &fin, .polls = 1, .resolved_at_ms = 0};
    check_result(&res);
  }

  if (dw_token_answer_parse(data, size, token, sizeof(token), &expire, &code, msg,
                            sizeof(msg)) == 0) {
    size_t n = strlen(token);
    if (n == 0 || expire <= 0 || code != 0)
      abort();
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7E)
        abort();
  }
  dw_fuzz_check_string(msg, sizeof(msg));

  /* The token request: what the input holds as app id and secret, when it is UTF-8. */
  if (dw_utf8_valid(data, size) && !memchr(data, '\0', size) && size < 256) {
    char text[256], *out = NULL;
    size_t len = 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (dw_token_request_encode(text, text, &out, &len) != 0 || !dw_utf8_valid(out, len))
      abort();
    free(out);
  }
  return 0;
}
