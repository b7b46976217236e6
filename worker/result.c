/* The last step of a task that has an outcome: the final answer (succeeded or failed) and
 * the event it answers become the JSON value of the results topic (docs/contracts.md,
 * "Result"). Only valid UTF-8 is ever written. A dead letter carries the event's own value
 * (dlq.c decides what it keeps); this is the only record the worker writes itself. The input's
 * headers go onto the result as they came, within a count and a size. */
#include "dw/result.h"

#include "dw/common.h"
#include "dw/json.h"
#include "dw/text.h"

#include <cjson/cJSON.h>
#include <string.h>

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
    for (size_t i = 0; i < DW_ANSWER_IDS; i++)
      if ((rc = add_string(root, dw_answer_ids[i].key,
                           (const char *)ans + dw_answer_ids[i].offset)) < 0)
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
  rc = dw_json_print(root, out, len);

out:
  cJSON_Delete(root);
  return rc;
}

size_t dw_result_headers(const struct dw_header *in, size_t n, struct dw_header *out,
                         size_t max)
{
  size_t count = 0, bytes = 0;
  if (max > DW_RESULT_MAX_HEADERS)
    max = DW_RESULT_MAX_HEADERS;
  for (size_t i = 0; i < n && count < max; i++) {
    size_t size = strlen(in[i].name) + (in[i].value ? in[i].len : 0);
    if (size > DW_RESULT_MAX_HEADER_BYTES - bytes)
      continue; /* too large for what is left: later, smaller ones may still fit */
    bytes += size;
    out[count++] = in[i];
  }
  return count;
}
