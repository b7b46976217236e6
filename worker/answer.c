/* The answer of the delivery-task endpoint, the step between a poll and what happens to the
 * task: each HTTP answer becomes a kind the task acts on (docs/contracts.md, "How API answers
 * are treated"), with the delivery IDs of a success and the texts of a failure copied out. The
 * body is a byte range that is not NUL-terminated; nothing here reads past its length, and
 * nesting is bounded by DW_JSON_MAX_DEPTH before cJSON (which recurses) sees the text. */
#include "dw/answer.h"

#include "dw/common.h"
#include "dw/json.h"
#include "dw/text.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Copies an ID, trimmed. A cut ID would name another object, so an ID that does not fit is an
 * error (-1), never truncated; one that is not valid UTF-8 is -2. dst is "" for a missing or
 * non-string field. */
static int copy_id(char *dst, size_t size, const cJSON *obj, const char *key)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  const char *s;
  size_t n;

  dst[0] = '\0';
  if (!cJSON_IsString(item) || !item->valuestring)
    return 0;
  dw_text_trim(item->valuestring, &s, &n);
  if (n >= size)
    return -1;
  if (!dw_utf8_valid(s, n))
    return -2;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return 0;
}

/* Copies a text of a final answer (status 3), trimmed. One that does not fit is cut at a
 * character boundary and ends with DW_TEXT_CUT_MARK: a long text never turns a final answer
 * into an error, and the cut stays visible. Returns -1 when the text is not valid UTF-8. dst
 * is "" for a missing or non-string field. */
static int copy_final_text(char *dst, size_t size, const cJSON *obj, const char *key)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  const size_t mark = sizeof(DW_TEXT_CUT_MARK) - 1;
  const char *s;
  size_t n;

  dst[0] = '\0';
  if (!cJSON_IsString(item) || !item->valuestring)
    return 0;
  dw_text_trim(item->valuestring, &s, &n);
  if (!dw_utf8_valid(s, n))
    return -1;
  if (n < size) {
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
  }
  n = size - 1 - mark;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--; /* s[n] starts a character: the bytes before it are whole ones */
  memcpy(dst, s, n);
  memcpy(dst + n, DW_TEXT_CUT_MARK, mark + 1);
  return 0;
}

/* What a nonzero body code means (docs/contracts.md, "How API answers are treated"). */
static enum dw_answer_kind kind_of_code(long code)
{
  switch (code) {
  case 1002008: return DW_ANSWER_NOT_FOUND;
  case 1002002: return DW_ANSWER_INVALID;
  case 1002001: return DW_ANSWER_RETRY;
  case 99991400: /* request trigger frequency limit (HTTP 429, sometimes 400) */
  case 1000004:  /* method rate limited */
  case 1000005:  /* app rate limited */
    return DW_ANSWER_RATE_LIMITED;
  case 99991663: /* tenant_access_token invalid or expired */
  case 99991664: /* app_access_token invalid */
  case 99991665: /* tenant code invalid */
  case 99991671: /* token format wrong */
  case 20013:    /* tenant access token passed is invalid */
    return DW_ANSWER_TOKEN_INVALID;
  case 99991672: /* missing scope */
  case 99991401: /* IP denied by app setting */
  case 99991662: /* app not in use */
  case 99991673: /* unauthorized app */
  case 99991676: /* token has no permission */
  case 10014:    /* app unauthorized */
  case 10015:    /* wrong app secret */
  case 99991403: /* monthly quota exceeded */
  case 99991661: /* missing token: our bug, not the task's fault */
    return DW_ANSWER_APP_FAILURE;
  default: return DW_ANSWER_RETRY;
  }
}

/* The delivery IDs: read from data.delivery, written into the result under the same names. */
const struct dw_answer_id dw_answer_ids[DW_ANSWER_IDS] = {
    {"application_id", offsetof(struct dw_answer, application_id)},
    {"talent_id", offsetof(struct dw_answer, talent_id)},
    {"job_id", offsetof(struct dw_answer, job_id)},
    {"job_post_id", offsetof(struct dw_answer, job_post_id)},
    {"portal_resume_id", offsetof(struct dw_answer, portal_resume_id)},
    {"user_id", offsetof(struct dw_answer, user_id)},
};

static void set_malformed(struct dw_answer *ans, const char *what)
{
  ans->kind = DW_ANSWER_MALFORMED;
  dw_text_reason(ans->msg, sizeof(ans->msg), "%s", what);
}

/* code 0: data decides. Pending shapes: data missing, null, not an object, {}, no status,
 * status 0 or 1. Shapes the API does not send are MALFORMED, named in msg (short fixed texts,
 * never the answer's own bytes): they are retried, and the dead letter at the deadline says
 * what was wrong instead of "still pending". */
static void classify_data(struct dw_answer *ans, const cJSON *data)
{
  const cJSON *status, *delivery, *app;
  int64_t st;

  ans->kind = DW_ANSWER_PENDING;
  if (!cJSON_IsObject(data))
    return;
  status = cJSON_GetObjectItemCaseSensitive(data, "status");
  if (!status || cJSON_IsNull(status))
    return;
  if (!dw_json_int(status, &st)) {
    set_malformed(ans, "status is not an integer");
    return;
  }
  if (st >= INT_MIN && st <= INT_MAX)
    ans->status = (int)st;
  switch (st) {
  case 0:
  case 1: return; /* new, processing; a placeholder delivery is ignored */
  case 2:
    delivery = cJSON_GetObjectItemCaseSensitive(data, "delivery");
    if (delivery && !cJSON_IsNull(delivery) && !cJSON_IsObject(delivery)) {
      set_malformed(ans, "delivery is not an object");
      return;
    }
    /* The deprecated delivery.id is deliberately not read. */
    for (size_t i = 0; i < DW_ANSWER_IDS; i++) {
      int rc = copy_id((char *)ans + dw_answer_ids[i].offset, DW_ID_MAX, delivery,
                       dw_answer_ids[i].key);
      if (rc < 0) {
        ans->kind = DW_ANSWER_MALFORMED;
        dw_text_reason(ans->msg, sizeof(ans->msg),
                       rc == -1 ? "delivery.%s too long" : "delivery.%s is not valid UTF-8",
                       dw_answer_ids[i].key);
        return;
      }
    }
    app = cJSON_GetObjectItemCaseSensitive(delivery, "application_id");
    if (app && !cJSON_IsNull(app) && !cJSON_IsString(app)) {
      set_malformed(ans, "delivery.application_id is not a string");
      return;
    }
    /* A success without the application ID would publish a useless result; asking again
     * ends, at worst, in a dead letter that names it. */
    if (ans->application_id[0] == '\0') {
      set_malformed(ans, "status 2 without delivery.application_id");
      return;
    }
    ans->kind = DW_ANSWER_SUCCEEDED;
    return;
  case 3:
    /* Final: texts too long are cut and marked, never a reason to ask again (the task would
     * reach its deadline and its outcome would be lost). */
    if (copy_final_text(ans->status_msg, sizeof(ans->status_msg), data, "status_msg") < 0) {
      set_malformed(ans, "status_msg is not valid UTF-8");
      return;
    }
    if (copy_final_text(ans->extra_info, sizeof(ans->extra_info), data, "extra_info") < 0) {
      set_malformed(ans, "extra_info is not valid UTF-8");
      return;
    }
    ans->kind = DW_ANSWER_FAILED;
    return;
  default:
    ans->kind = DW_ANSWER_MALFORMED;
    dw_text_reason(ans->msg, sizeof(ans->msg), "unknown status %lld", (long long)st);
    return;
  }
}

static void clear_ids(struct dw_answer *ans)
{
  ans->application_id[0] = ans->talent_id[0] = ans->job_id[0] = ans->job_post_id[0] = '\0';
  ans->portal_resume_id[0] = ans->user_id[0] = '\0';
  ans->status_msg[0] = ans->extra_info[0] = '\0';
}

void dw_answer_classify(struct dw_answer *ans, long http_status, const void *body, size_t len)
{
  const char *text = body;
  const char *why = "unparsable body";
  cJSON *root = NULL;
  int64_t code;
  int trailing, usable = 0;

  if (!ans)
    return;
  memset(ans, 0, sizeof(*ans));
  ans->code = -1;
  ans->status = -1;
  if (http_status == 0) {
    ans->kind = DW_ANSWER_RETRY;
    dw_text_reason(ans->msg, sizeof(ans->msg), "transport error");
    return;
  }
  /* Feishu answers with 200, 4xx (400 for errors, 429 for the rate limit) and 5xx. Anything
   * else (a redirect, which is not followed, a 201, a 204) comes from something in between,
   * and a body that looks like a success must not become a result. */
  if (http_status != 200 && (http_status < 400 || http_status > 599)) {
    ans->kind = DW_ANSWER_RETRY;
    dw_text_reason(ans->msg, sizeof(ans->msg), "HTTP %ld is not an answer of the API", http_status);
    return;
  }

  if (!text || len == 0) {
    why = "empty body";
    goto out;
  }
  switch (dw_json_scan(text, len)) {
  case DW_JSON_OK: break;
  case DW_JSON_TOO_DEEP: why = "body nested too deep"; goto out;
  case DW_JSON_NUL:
  case DW_JSON_ESCAPED_NUL: why = "body with a NUL"; goto out;
  }
  root = dw_json_parse(text, len, &trailing);
  if (!root || !cJSON_IsObject(root))
    goto out;
  /* code -1 is the "no usable body" of struct dw_answer: a body claiming it is one. */
  if (!dw_json_int(cJSON_GetObjectItemCaseSensitive(root, "code"), &code) || code == -1 ||
      code < LONG_MIN || code > LONG_MAX) {
    why = "body without an integer code";
    goto out;
  }
  usable = 1;

  /* The body's code decides, whatever the HTTP status (errors come with 200, 400 or 5xx). */
  ans->code = (long)code;
  dw_json_copy_text(ans->msg, sizeof(ans->msg), cJSON_GetObjectItemCaseSensitive(root, "msg"));
  if (code == 0) {
    classify_data(ans, cJSON_GetObjectItemCaseSensitive(root, "data"));
    /* The fields read were checked one by one (to name the one that is wrong); invalid UTF-8
     * anywhere else (msg, a key, a field not read) makes the answer as doubtful. An error
     * answer (code != 0) is decided by its code alone: its msg only goes to logs and
     * dlq.error_msg. */
    if (ans->kind != DW_ANSWER_MALFORMED && !dw_utf8_valid(text, len))
      set_malformed(ans, "answer is not valid UTF-8");
    if (ans->kind != DW_ANSWER_SUCCEEDED && ans->kind != DW_ANSWER_FAILED)
      clear_ids(ans);
  } else {
    ans->kind = kind_of_code(ans->code);
  }

out:
  cJSON_Delete(root);
  if (!usable) {
    ans->kind = http_status == 429 ? DW_ANSWER_RATE_LIMITED : DW_ANSWER_RETRY;
    dw_text_reason(ans->msg, sizeof(ans->msg), "HTTP %ld with %s", http_status, why);
  }
}

_Static_assert(DW_ANSWER_MALFORMED + 1 == DW_ANSWER_KINDS, "DW_ANSWER_KINDS counts the kinds");

const char *dw_answer_kind_name(enum dw_answer_kind kind)
{
  switch (kind) {
  case DW_ANSWER_PENDING: return "pending";
  case DW_ANSWER_SUCCEEDED: return "succeeded";
  case DW_ANSWER_FAILED: return "failed";
  case DW_ANSWER_NOT_FOUND: return "not_found";
  case DW_ANSWER_INVALID: return "invalid_request";
  case DW_ANSWER_RETRY: return "retry";
  case DW_ANSWER_RATE_LIMITED: return "rate_limited";
  case DW_ANSWER_TOKEN_INVALID: return "token_invalid";
  case DW_ANSWER_APP_FAILURE: return "app_failure";
  case DW_ANSWER_MALFORMED: return "malformed";
  }
  return "unknown";
}
