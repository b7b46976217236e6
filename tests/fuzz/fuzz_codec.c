/* libFuzzer target for the codec: every input is fed, as the exact byte range it is (no NUL
 * after it), to the event parser, the answer classifier (under a few HTTP statuses) and the
 * token answer parser; accepted events and final answers are also encoded as a result and the
 * result parsed back as an event, which must hold the same IDs. tests/fuzz/run.sh builds it with
 * libFuzzer; fuzz_main.h gives it the guarded input copy and, with -DDW_FUZZ_REPLAY_MAIN, the
 * corpus replay main ctest runs. */
#define DW_FUZZ_NAME "fuzz_codec"
#include "fuzz_main.h"

#include "dw/codec.h"
#include "dw/common.h"


int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  const uint8_t *data = dw_fuzz_guarded_copy(input, size);
  static const long statuses[] = {200, 400, 429, 500};
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
  }

  /* A final answer with the parsed event (or a fixed one) encodes, and the result reads back
   * as an event with the same IDs (it carries website_id and delivery_task_id). */
  if (ans.kind == DW_ANSWER_SUCCEEDED || ans.kind == DW_ANSWER_FAILED) {
    struct dw_event fixed = {.website_id = "1", .task_id = "t"};
    struct dw_event back;
    struct dw_result res = {.event = ev_ok ? &ev : &fixed, .answer = &ans, .polls = 1,
                            .resolved_at_ms = 1795490884123LL};
    char *out = NULL;
    size_t len = 0;
    if (dw_result_encode(&res, &out, &len) != 0)
      abort();
    if (dw_event_parse(&back, out, len, why, sizeof(why)) != 0 ||
        strcmp(back.website_id, res.event->website_id) != 0 ||
        strcmp(back.task_id, res.event->task_id) != 0)
      abort();
    free(out);
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
  return 0;
}
