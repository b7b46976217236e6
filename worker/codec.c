/* The JSON codec sits at both ends of a task's life: it turns a Kafka message value into a
 * validated event (the IDs that will be put into a URL), turns each answer of the
 * delivery-task endpoint into a kind the poller acts on (docs/contracts.md, "How API answers
 * are treated"), reads the token endpoint's answer, and writes the result that goes to the results
 * topic. It is the only module that sees cJSON. Every input is a byte range that is not
 * NUL-terminated; nothing here reads past the given length, and nesting is bounded by
 * DW_JSON_MAX_DEPTH before cJSON (which recurses) sees the text. */
#include "dw/codec.h"

#include "dw/common.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------------------------------------------
 * Parsing helpers */

enum scan_verdict { SCAN_OK = 0, SCAN_NUL, SCAN_ESCAPED_NUL, SCAN_TOO_DEEP };

/* Looks at JSON text without parsing it: raw NUL bytes, the escape \u0000 (cJSON decodes it
 * into its NUL-terminated strings, so "a\u0000b" would silently read as "a"), and the deepest
 * nesting of objects and arrays outside strings. Strings are skipped by the same rule JSON uses
 * (a quote ends one unless escaped), so for valid JSON the depth is exact; invalid JSON is
 * rejected by cJSON anyway, within its own CJSON_NESTING_LIMIT. */
static enum scan_verdict json_scan(const char *p, size_t len)
{
  size_t depth = 0;
  int in_string = 0;

  if (memchr(p, '\0', len))
    return SCAN_NUL;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (in_string) {
      if (c == '\\') {
        if (len - i > 5 && p[i + 1] == 'u' && p[i + 2] == '0' && p[i + 3] == '0' &&
            p[i + 4] == '0' && p[i + 5] == '0')
          return SCAN_ESCAPED_NUL;
        i++; /* the escaped character cannot end the string */
      } else if (c == '"') {
        in_string = 0;
      }
      continue;
    }
    if (c == '"') {
      in_string = 1;
    } else if (c == '{' || c == '[') {
      if (++depth > DW_JSON_MAX_DEPTH)
        return SCAN_TOO_DEEP;
    } else if (c == '}' || c == ']') {
      if (depth > 0)
        depth--;
    }
  }
  return SCAN_OK;
}

static int is_json_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses exactly len bytes as one JSON value. cJSON 1.7.15's require_null_terminated demands a
 * NUL byte inside the given length (it fails when the value ends exactly at len), so it is
 * off, and the end pointer is checked here instead: only whitespace may follow the value. */
static cJSON *json_parse(const char *p, size_t len, int *trailing)
{
  const char *end = NULL;
  cJSON *root;

  *trailing = 0;
  root = cJSON_ParseWithLengthOpts(p, len, &end, 0);
  if (!root)
    return NULL;
  if (!end || end < p || end > p + len) {
    cJSON_Delete(root);
    return NULL;
  }
  while (end < p + len && is_json_space(*end))
    end++;
  if (end != p + len) {
    *trailing = 1;
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* cJSON keeps numbers as doubles (its strtod has already read the text). An integer here is a
 * number with no fraction strictly inside +-2^53, where every integer is exact; 2^53 itself is
 * excluded because 2^53 + 1 rounds to it. So 1e300, 1.5 and 9007199254740993 are not integers.
 * The comparisons are written so that NaN fails them. */
static int json_int(const cJSON *item, int64_t *out)
{
  const double limit = 9007199254740992.0; /* 2^53 */
  double d;
  int64_t v;

  if (!cJSON_IsNumber(item))
    return 0;
  d = item->valuedouble;
  if (!(d > -limit && d < limit))
    return 0;
  v = (int64_t)d;
  if ((double)v != d)
    return 0;
  *out = v;
  return 1;
}

static int is_ascii_space(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The bytes of s without leading and trailing ASCII whitespace. */
static void trim(const char *s, const char **start, size_t *n)
{
  size_t len = strlen(s);
  while (len > 0 && is_ascii_space((unsigned char)*s)) {
    s++;
    len--;
  }
  while (len > 0 && is_ascii_space((unsigned char)s[len - 1]))
    len--;
  *start = s;
  *n = len;
}

/* Copies text (a message, not an ID), trimmed, cut to fit and never in the middle of a UTF-8
 * sequence so the copy stays valid UTF-8 if the source was. dst is "" for a non-string. */
static void copy_text(char *dst, size_t size, const cJSON *item)
{
  const char *s;
  size_t n;

  if (size == 0)
    return;
  dst[0] = '\0';
  if (!cJSON_IsString(item) || !item->valuestring)
    return;
  trim(item->valuestring, &s, &n);
  if (n >= size) {
    n = size - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
}

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
  trim(item->valuestring, &s, &n);
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
  trim(item->valuestring, &s, &n);
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

static void set_text(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_text(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;

  if (!buf || size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

/* -------------------------------------------------------------------------------------------
 * Events */

/* The member called key, or NULL; *dup is set when the key occurs more than once (cJSON keeps
 * every duplicate and would silently use the first, another consumer of the same message might
 * use the last). A JSON null counts as absent. */
static const cJSON *member(const cJSON *obj, const char *key, int *dup)
{
  const cJSON *found = NULL;
  const cJSON *child;

  *dup = 0;
  cJSON_ArrayForEach(child, obj)
  {
    if (!child->string || strcmp(child->string, key) != 0)
      continue;
    if (found) {
      *dup = 1;
      return NULL;
    }
    found = child;
  }
  if (found && cJSON_IsNull(found))
    return NULL;
  return found;
}

static int all_digits(const char *s)
{
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

static int is_task_char(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

static int all_task_chars(const char *s)
{
  for (; *s; s++)
    if (!is_task_char(*s))
      return 0;
  return 1;
}

/* Printable ASCII other than space: safe in a header, a log line and a cache key. */
static int all_graphic_ascii(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
      return 0;
  return 1;
}

static int has_control(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7F)
      return 1;
  return 0;
}

/* Reads an optional string member. Returns 0 (value or NULL in *out) or -1 with why set. */
static int event_string(const cJSON *obj, const char *key, const char **out, char *why,
                        size_t whylen)
{
  int dup;
  const cJSON *item = member(obj, key, &dup);

  *out = NULL;
  if (dup) {
    set_text(why, whylen, "duplicate key %s", key);
    return -1;
  }
  if (!item)
    return 0;
  if (!cJSON_IsString(item) || !item->valuestring) {
    set_text(why, whylen, "%s must be a string", key);
    return -1;
  }
  *out = item->valuestring;
  return 0;
}

int dw_event_parse(struct dw_event *ev, const void *buf, size_t len, char *why, size_t whylen)
{
  const char *text = buf;
  const char *website = NULL, *dtask = NULL, *alias = NULL, *task, *event_id, *tenant;
  cJSON *root = NULL;
  int trailing, rc = DW_EINVAL;
  size_t n;

  set_text(why, whylen, "%s", "");
  if (!ev) {
    set_text(why, whylen, "no event to fill");
    return DW_EINVAL;
  }
  memset(ev, 0, sizeof(*ev));
  if (!text || len == 0) {
    set_text(why, whylen, "value is empty");
    goto out;
  }
  switch (json_scan(text, len)) {
  case SCAN_OK: break;
  case SCAN_NUL: set_text(why, whylen, "value contains a NUL byte"); goto out;
  case SCAN_ESCAPED_NUL:
    set_text(why, whylen, "value contains an escaped NUL (\\u0000)");
    goto out;
  case SCAN_TOO_DEEP:
    set_text(why, whylen, "value nests deeper than %d levels", DW_JSON_MAX_DEPTH);
    goto out;
  }
  /* JSON text is UTF-8 (RFC 8259), and cJSON copies a string's bytes as they are: checked here,
   * every key and value is valid UTF-8, so nothing copied out of the event (event_id) can put
   * invalid UTF-8 into a result. The escapes cJSON decodes (\\uXXXX, surrogate pairs) always
   * give valid UTF-8; a lone surrogate is not JSON to it. */
  if (!dw_utf8_valid(text, len)) {
    set_text(why, whylen, "value is not valid UTF-8");
    goto out;
  }
  root = json_parse(text, len, &trailing);
  if (!root) {
    set_text(why, whylen, trailing ? "value has trailing data after the JSON"
                                   : "value is not valid JSON");
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    set_text(why, whylen, "value must be a JSON object");
    goto out;
  }

  if (event_string(root, "website_id", &website, why, whylen) < 0 ||
      event_string(root, "delivery_task_id", &dtask, why, whylen) < 0 ||
      event_string(root, "task_id", &alias, why, whylen) < 0 ||
      event_string(root, "event_id", &event_id, why, whylen) < 0 ||
      event_string(root, "tenant_key", &tenant, why, whylen) < 0)
    goto out;

  if (!website) {
    set_text(why, whylen, "missing website_id");
    goto out;
  }
  n = strlen(website);
  if (n < 1 || n > DW_WEBSITE_ID_MAX || !all_digits(website)) {
    set_text(why, whylen, "website_id must be 1-%d digits", DW_WEBSITE_ID_MAX);
    goto out;
  }

  /* task_id is the name create_by_attachment returns; when both are given they must agree. */
  if (!dtask && !alias) {
    set_text(why, whylen, "missing delivery_task_id (or task_id)");
    goto out;
  }
  if (dtask && alias && strcmp(dtask, alias) != 0) {
    set_text(why, whylen, "delivery_task_id and task_id differ");
    goto out;
  }
  task = dtask ? dtask : alias;
  n = strlen(task);
  if (n < 1 || n > DW_TASK_ID_MAX) {
    set_text(why, whylen, "%s must be 1-%d characters", dtask ? "delivery_task_id" : "task_id",
             DW_TASK_ID_MAX);
    goto out;
  }
  if (!all_task_chars(task)) {
    set_text(why, whylen, "%s has characters outside [A-Za-z0-9_-]",
             dtask ? "delivery_task_id" : "task_id");
    goto out;
  }

  if (event_id) {
    if (strlen(event_id) > DW_EVENT_ID_MAX) {
      set_text(why, whylen, "event_id longer than %d bytes", DW_EVENT_ID_MAX);
      goto out;
    }
    if (has_control(event_id)) {
      set_text(why, whylen, "event_id has control characters");
      goto out;
    }
  }
  if (tenant) {
    if (strlen(tenant) > DW_TENANT_KEY_MAX) {
      set_text(why, whylen, "tenant_key longer than %d bytes", DW_TENANT_KEY_MAX);
      goto out;
    }
    if (!all_graphic_ascii(tenant)) {
      set_text(why, whylen, "tenant_key must be printable ASCII without spaces");
      goto out;
    }
  }

  /* Every length was checked above, so none of these copies is cut. */
  dw_strlcpy(ev->website_id, website, sizeof(ev->website_id));
  dw_strlcpy(ev->task_id, task, sizeof(ev->task_id));
  if (event_id)
    dw_strlcpy(ev->event_id, event_id, sizeof(ev->event_id));
  if (tenant)
    dw_strlcpy(ev->tenant_key, tenant, sizeof(ev->tenant_key));
  rc = 0;

out:
  if (rc != 0)
    memset(ev, 0, sizeof(*ev));
  cJSON_Delete(root);
  return rc;
}

/* -------------------------------------------------------------------------------------------
 * API answers */

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
static const struct {
  const char *key;
  size_t offset;
} ids[] = {
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
  set_text(ans->msg, sizeof(ans->msg), "%s", what);
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
  if (!json_int(status, &st)) {
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
    for (size_t i = 0; i < DW_ARRAY_SIZE(ids); i++) {
      int rc = copy_id((char *)ans + ids[i].offset, DW_ID_MAX, delivery, ids[i].key);
      if (rc < 0) {
        ans->kind = DW_ANSWER_MALFORMED;
        set_text(ans->msg, sizeof(ans->msg), rc == -1 ? "delivery.%s too long"
                                                      : "delivery.%s is not valid UTF-8",
                 ids[i].key);
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
    set_text(ans->msg, sizeof(ans->msg), "unknown status %lld", (long long)st);
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
    set_text(ans->msg, sizeof(ans->msg), "transport error");
    return;
  }
  /* Feishu answers with 200, 4xx (400 for errors, 429 for the rate limit) and 5xx. Anything
   * else (a redirect, which is not followed, a 201, a 204) comes from something in between,
   * and a body that looks like a success must not become a result. */
  if (http_status != 200 && (http_status < 400 || http_status > 599)) {
    ans->kind = DW_ANSWER_RETRY;
    set_text(ans->msg, sizeof(ans->msg), "HTTP %ld is not an answer of the API", http_status);
    return;
  }

  if (!text || len == 0) {
    why = "empty body";
    goto out;
  }
  switch (json_scan(text, len)) {
  case SCAN_OK: break;
  case SCAN_TOO_DEEP: why = "body nested too deep"; goto out;
  case SCAN_NUL:
  case SCAN_ESCAPED_NUL: why = "body with a NUL"; goto out;
  }
  root = json_parse(text, len, &trailing);
  if (!root || !cJSON_IsObject(root))
    goto out;
  /* code -1 is the "no usable body" of struct dw_answer: a body claiming it is one. */
  if (!json_int(cJSON_GetObjectItemCaseSensitive(root, "code"), &code) || code == -1 ||
      code < LONG_MIN || code > LONG_MAX) {
    why = "body without an integer code";
    goto out;
  }
  usable = 1;

  /* The body's code decides, whatever the HTTP status (errors come with 200, 400 or 5xx). */
  ans->code = (long)code;
  copy_text(ans->msg, sizeof(ans->msg), cJSON_GetObjectItemCaseSensitive(root, "msg"));
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
    set_text(ans->msg, sizeof(ans->msg), "HTTP %ld with %s", http_status, why);
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

/* -------------------------------------------------------------------------------------------
 * Token endpoint */

int dw_auth_answer_parse(const void *body, size_t len, const char *field, char *token,
                         size_t token_size, int64_t *expire_s, long *code, char *msg,
                         size_t msg_size)
{
  const char *text = body;
  cJSON *root = NULL;
  const cJSON *item;
  int64_t c, expire;
  int trailing, rc = DW_EINVAL;
  size_t n;

  if (code)
    *code = -1;
  set_text(msg, msg_size, "%s", "");
  if (!token || token_size == 0 || !expire_s) {
    set_text(msg, msg_size, "no buffer for the token");
    return DW_EINVAL;
  }
  token[0] = '\0';
  if (!text || len == 0) {
    set_text(msg, msg_size, "empty token answer");
    goto out;
  }
  if (json_scan(text, len) != SCAN_OK || !(root = json_parse(text, len, &trailing)) ||
      !cJSON_IsObject(root)) {
    set_text(msg, msg_size, "unparsable token answer");
    goto out;
  }
  if (!json_int(cJSON_GetObjectItemCaseSensitive(root, "code"), &c) || c == -1 ||
      c < LONG_MIN || c > LONG_MAX) { /* -1: the unparsable answer of *code */
    set_text(msg, msg_size, "token answer without an integer code");
    goto out;
  }
  if (code)
    *code = (long)c;
  if (msg && msg_size > 0)
    copy_text(msg, msg_size, cJSON_GetObjectItemCaseSensitive(root, "msg"));
  if (c != 0) {
    if (msg && msg_size > 0 && msg[0] == '\0')
      set_text(msg, msg_size, "token endpoint answered code %lld", (long long)c);
    goto out;
  }

  item = cJSON_GetObjectItemCaseSensitive(root, field);
  if (!cJSON_IsString(item) || !item->valuestring || item->valuestring[0] == '\0') {
    set_text(msg, msg_size, "token answer without %s", field);
    goto out;
  }
  n = strlen(item->valuestring);
  if (n >= token_size) {
    set_text(msg, msg_size, "%s longer than %zu bytes", field, token_size - 1);
    goto out;
  }
  /* The token goes into an Authorization header: no spaces, CR, LF or other bytes that could
   * end or split it. */
  if (!all_graphic_ascii(item->valuestring)) {
    set_text(msg, msg_size, "%s has characters not allowed in a header", field);
    goto out;
  }
  if (!json_int(cJSON_GetObjectItemCaseSensitive(root, "expire"), &expire) || expire <= 0) {
    set_text(msg, msg_size, "token answer without a positive integer expire");
    goto out;
  }
  memcpy(token, item->valuestring, n + 1);
  *expire_s = expire;
  rc = 0;

out:
  cJSON_Delete(root);
  return rc;
}

/* An OAuth 2.0 token answer (RFC 6749 section 5.1) or error (5.2). */
int dw_oauth_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expires_in, char *why, size_t why_size)
{
  const char *text = body;
  cJSON *root = NULL;
  const cJSON *item;
  int trailing, rc = DW_EINVAL;
  size_t n;

  set_text(why, why_size, "%s", "");
  if (!token || token_size == 0 || !expires_in) {
    set_text(why, why_size, "no buffer for the token");
    return DW_EINVAL;
  }
  token[0] = '\0';
  *expires_in = -1;
  if (!text || len == 0 || json_scan(text, len) != SCAN_OK ||
      !(root = json_parse(text, len, &trailing)) || !cJSON_IsObject(root)) {
    set_text(why, why_size, "the answer is not a JSON object");
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (cJSON_IsString(item) && item->valuestring) {
    char code[64] = "", desc[200] = "";
    copy_text(code, sizeof(code), item);
    copy_text(desc, sizeof(desc), cJSON_GetObjectItemCaseSensitive(root, "error_description"));
    set_text(why, why_size, "error %s%s%s", code, desc[0] ? ": " : "", desc);
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "access_token");
  if (!cJSON_IsString(item) || !item->valuestring || item->valuestring[0] == '\0') {
    set_text(why, why_size, "no access_token in the answer");
    goto out;
  }
  n = strlen(item->valuestring);
  if (n >= token_size) {
    set_text(why, why_size, "access_token longer than %zu bytes", token_size - 1);
    goto out;
  }
  if (!all_graphic_ascii(item->valuestring)) {
    set_text(why, why_size, "access_token has characters not allowed in a token");
    goto out;
  }
  int64_t e;
  if (json_int(cJSON_GetObjectItemCaseSensitive(root, "expires_in"), &e) && e > 0 &&
      e < 1000000000) /* under 32 years: larger ones would overflow as microseconds */
    *expires_in = e;
  memcpy(token, item->valuestring, n + 1);
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

/* The payload of a JWT in compact form (RFC 7519): the second of three dot-separated base64url
 * parts. The signature is the broker's to check, not ours. */
int dw_jwt_claims_parse(const char *jwt, int64_t *exp, char *sub, size_t sub_size, char *why,
                        size_t why_size)
{
  const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  cJSON *root = NULL;
  uint8_t *payload = NULL;
  int trailing, n, rc = DW_EINVAL;
  *exp = -1;
  if (sub_size)
    sub[0] = '\0';
  set_text(why, why_size, "%s", "");
  if (!dot2 || strchr(dot2 + 1, '.')) {
    set_text(why, why_size, "the access_token is not a JWT (three dot-separated parts)");
    return DW_EINVAL;
  }
  size_t len = (size_t)(dot2 - dot1 - 1);
  if (!(payload = malloc(len * 3 / 4 + 1)))
    return DW_ENOMEM;
  if ((n = dw_base64url_decode(dot1 + 1, len, payload)) < 0 ||
      json_scan((const char *)payload, (size_t)n) != SCAN_OK ||
      !(root = json_parse((const char *)payload, (size_t)n, &trailing)) ||
      !cJSON_IsObject(root)) {
    set_text(why, why_size, "the JWT's payload is not base64url of a JSON object");
    goto out;
  }
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "exp");
  if (cJSON_IsNumber(item) && item->valuedouble > 0 && item->valuedouble < 1e11) /* year 5138 */
    *exp = (int64_t)item->valuedouble;
  else if (item) {
    set_text(why, why_size, "the JWT's exp claim is not a positive number");
    goto out;
  }
  item = cJSON_GetObjectItemCaseSensitive(root, "sub");
  if (cJSON_IsString(item) && item->valuestring)
    copy_text(sub, sub_size, item);
  rc = 0;
out:
  cJSON_Delete(root);
  free(payload);
  return rc;
}

int dw_token_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expire_s, long *code, char *msg, size_t msg_size)
{
  return dw_auth_answer_parse(body, len, "tenant_access_token", token, token_size, expire_s,
                              code, msg, msg_size);
}

/* Prints root unformatted into a malloc'd string for the caller. */
static int print_to(const cJSON *root, char **out, size_t *len)
{
  char *text = cJSON_PrintUnformatted(root);
  if (!text)
    return DW_ENOMEM;
  *out = text;
  if (len)
    *len = strlen(text);
  return 0;
}

int dw_token_request_encode(const char *app_id, const char *app_secret, char **out,
                            size_t *len)
{
  cJSON *root = NULL;
  int rc = DW_ENOMEM;

  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!app_id || !app_secret || !out) {
    rc = DW_EINVAL;
    goto out;
  }
  root = cJSON_CreateObject();
  if (!root || !cJSON_AddStringToObject(root, "app_id", app_id) ||
      !cJSON_AddStringToObject(root, "app_secret", app_secret))
    goto out;
  rc = print_to(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

/* -------------------------------------------------------------------------------------------
 * Results */

/* Adds a string member. cJSON escapes quotes, backslashes and control characters but copies
 * every other byte as it is, so valid UTF-8 in is what makes the JSON text valid UTF-8: a
 * string that is not is refused (DW_EINVAL), never written. */
static int add_string(cJSON *obj, const char *key, const char *value)
{
  if (!dw_utf8_valid(value, strlen(value)))
    return DW_EINVAL;
  return cJSON_AddStringToObject(obj, key, value) ? 0 : DW_ENOMEM;
}

/* Key order follows docs/contracts.md, "Result". Optional values are left out rather than written
 * empty: event_id and tenant_key only when the event carried them (tenant_key after event_id),
 * existing_application_id only for a failure that names one. The six delivery IDs of a success
 * are always written (as "" when the API left one out) so consumers see one fixed shape. */
int dw_result_encode(const struct dw_result *res, char **out, size_t *len)
{
  const struct dw_event *ev;
  const struct dw_answer *ans;
  cJSON *root = NULL;
  char when[32];
  int rc = DW_EINVAL;

  if (out)
    *out = NULL;
  if (len)
    *len = 0;
  if (!res || !out || !res->event || !res->answer)
    goto out;
  ev = res->event;
  ans = res->answer;
  if (ans->kind != DW_ANSWER_SUCCEEDED && ans->kind != DW_ANSWER_FAILED)
    goto out;

  rc = DW_ENOMEM;
  root = cJSON_CreateObject();
  if (!root)
    goto out;
  if ((rc = add_string(root, "website_id", ev->website_id)) < 0 ||
      (rc = add_string(root, "delivery_task_id", ev->task_id)) < 0)
    goto out;
  if (ev->event_id[0] && (rc = add_string(root, "event_id", ev->event_id)) < 0)
    goto out;
  if (ev->tenant_key[0] && (rc = add_string(root, "tenant_key", ev->tenant_key)) < 0)
    goto out;
  if (ans->kind == DW_ANSWER_SUCCEEDED) {
    if ((rc = add_string(root, "outcome", "succeeded")) < 0)
      goto out;
    for (size_t i = 0; i < DW_ARRAY_SIZE(ids); i++)
      if ((rc = add_string(root, ids[i].key, (const char *)ans + ids[i].offset)) < 0)
        goto out;
  } else {
    if ((rc = add_string(root, "outcome", "failed")) < 0 ||
        (rc = add_string(root, "status_msg", ans->status_msg)) < 0)
      goto out;
    if (ans->extra_info[0] &&
        (rc = add_string(root, "existing_application_id", ans->extra_info)) < 0)
      goto out;
  }
  rc = DW_ENOMEM;
  if (!cJSON_AddNumberToObject(root, "polls", (double)res->polls) ||
      !cJSON_AddStringToObject(root, "resolved_at",
                               dw_rfc3339(res->resolved_at_ms, when, sizeof(when))))
    goto out;
  rc = print_to(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

/* -------------------------------------------------------------------------------------------
 * Store apps: request bodies of the auth endpoints and the pushed app_ticket event */

int dw_json_strings_encode(const char *const *pairs, size_t npairs, char **out, size_t *len)
{
  cJSON *root = cJSON_CreateObject();
  int rc = DW_ENOMEM;

  *out = NULL;
  if (len)
    *len = 0;
  if (!root)
    goto out;
  for (size_t i = 0; i < npairs; i++)
    if (!pairs[2 * i] || !pairs[2 * i + 1] ||
        !cJSON_AddStringToObject(root, pairs[2 * i], pairs[2 * i + 1]))
      goto out;
  rc = print_to(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

/* Copies a non-empty string member of obj that fits and is printable ASCII (it ends up in a
 * JSON body we send, never in a header, but a ticket with control bytes is not a ticket). */
static int ticket_field(const cJSON *obj, const char *name, char *dst, size_t size)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
  if (!cJSON_IsString(item) || !item->valuestring || !item->valuestring[0] ||
      strlen(item->valuestring) >= size || !all_graphic_ascii(item->valuestring))
    return 0;
  memcpy(dst, item->valuestring, strlen(item->valuestring) + 1);
  return 1;
}

/* Accepts what Feishu pushes (the v1 callback {"type":"event_callback","event":{"type":
 * "app_ticket",...}}, the 2.0 schema {"schema":"2.0","header":{"event_type":"app_ticket"},
 * "event":{...}}) and the bare inner object. */
int dw_app_ticket_parse(const void *buf, size_t len, char *app_id, size_t app_id_size,
                        char *ticket, size_t ticket_size, char *why, size_t whylen)
{
  const char *text = buf;
  cJSON *root = NULL;
  const cJSON *ev, *type, *header;
  int trailing, rc = DW_EINVAL;

  app_id[0] = ticket[0] = '\0';
  set_text(why, whylen, "%s", "");
  if (!text || len == 0 || json_scan(text, len) != SCAN_OK ||
      !(root = json_parse(text, len, &trailing)) || !cJSON_IsObject(root)) {
    set_text(why, whylen, "not a JSON object");
    goto out;
  }
  if (cJSON_GetObjectItemCaseSensitive(root, "encrypt")) {
    set_text(why, whylen, "encrypted event: push it decrypted (no encrypt key is configured)");
    goto out;
  }
  ev = cJSON_GetObjectItemCaseSensitive(root, "event");
  if (!cJSON_IsObject(ev))
    ev = root;
  header = cJSON_GetObjectItemCaseSensitive(root, "header");
  type = cJSON_IsObject(header) ? cJSON_GetObjectItemCaseSensitive(header, "event_type")
                                : cJSON_GetObjectItemCaseSensitive(ev, "type");
  if (!cJSON_IsString(type) || !type->valuestring || strcmp(type->valuestring, "app_ticket")) {
    set_text(why, whylen, "not an app_ticket event");
    goto out;
  }
  if (!ticket_field(ev, "app_id", app_id, app_id_size) ||
      !ticket_field(ev, "app_ticket", ticket, ticket_size)) {
    set_text(why, whylen, "app_ticket event without a usable app_id and app_ticket");
    app_id[0] = ticket[0] = '\0';
    goto out;
  }
  rc = 0;

out:
  cJSON_Delete(root);
  return rc;
}
