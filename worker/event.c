/* The first step of a task's life: a Kafka message value becomes a validated event, the IDs
 * that will be put into a URL of the delivery-task endpoint. The value is a byte range that is
 * not NUL-terminated; nothing here reads past its length, and nesting is bounded by
 * DW_JSON_MAX_DEPTH before cJSON (which recurses) sees the text. */
#include "dw/event.h"

#include "dw/common.h"
#include "dw/json.h"
#include "dw/text.h"

#include <cjson/cJSON.h>
#include <string.h>

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
    dw_text_reason(why, whylen, "duplicate key %s", key);
    return -1;
  }
  if (!item)
    return 0;
  if (!cJSON_IsString(item) || !item->valuestring) {
    dw_text_reason(why, whylen, "%s must be a string", key);
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

  dw_text_reason(why, whylen, "%s", "");
  if (!ev) {
    dw_text_reason(why, whylen, "no event to fill");
    return DW_EINVAL;
  }
  memset(ev, 0, sizeof(*ev));
  if (!text || len == 0) {
    dw_text_reason(why, whylen, "value is empty");
    goto out;
  }
  switch (dw_json_scan(text, len)) {
  case DW_JSON_OK: break;
  case DW_JSON_NUL: dw_text_reason(why, whylen, "value contains a NUL byte"); goto out;
  case DW_JSON_ESCAPED_NUL:
    dw_text_reason(why, whylen, "value contains an escaped NUL (\\u0000)");
    goto out;
  case DW_JSON_TOO_DEEP:
    dw_text_reason(why, whylen, "value nests deeper than %d levels", DW_JSON_MAX_DEPTH);
    goto out;
  }
  /* JSON text is UTF-8 (RFC 8259), and cJSON copies a string's bytes as they are: checked here,
   * every key and value is valid UTF-8, so nothing copied out of the event (event_id) can put
   * invalid UTF-8 into a result. The escapes cJSON decodes (\\uXXXX, surrogate pairs) always
   * give valid UTF-8; a lone surrogate is not JSON to it. */
  if (!dw_utf8_valid(text, len)) {
    dw_text_reason(why, whylen, "value is not valid UTF-8");
    goto out;
  }
  root = dw_json_parse(text, len, &trailing);
  if (!root) {
    dw_text_reason(why, whylen, trailing ? "value has trailing data after the JSON"
                                         : "value is not valid JSON");
    goto out;
  }
  if (!cJSON_IsObject(root)) {
    dw_text_reason(why, whylen, "value must be a JSON object");
    goto out;
  }

  if (event_string(root, "website_id", &website, why, whylen) < 0 ||
      event_string(root, "delivery_task_id", &dtask, why, whylen) < 0 ||
      event_string(root, "task_id", &alias, why, whylen) < 0 ||
      event_string(root, "event_id", &event_id, why, whylen) < 0 ||
      event_string(root, "tenant_key", &tenant, why, whylen) < 0)
    goto out;

  if (!website) {
    dw_text_reason(why, whylen, "missing website_id");
    goto out;
  }
  n = strlen(website);
  if (n < 1 || n > DW_WEBSITE_ID_MAX || !all_digits(website)) {
    dw_text_reason(why, whylen, "website_id must be 1-%d digits", DW_WEBSITE_ID_MAX);
    goto out;
  }

  /* task_id is the name create_by_attachment returns; when both are given they must agree. */
  if (!dtask && !alias) {
    dw_text_reason(why, whylen, "missing delivery_task_id (or task_id)");
    goto out;
  }
  if (dtask && alias && strcmp(dtask, alias) != 0) {
    dw_text_reason(why, whylen, "delivery_task_id and task_id differ");
    goto out;
  }
  task = dtask ? dtask : alias;
  n = strlen(task);
  if (n < 1 || n > DW_TASK_ID_MAX) {
    dw_text_reason(why, whylen, "%s must be 1-%d characters",
                   dtask ? "delivery_task_id" : "task_id", DW_TASK_ID_MAX);
    goto out;
  }
  if (!all_task_chars(task)) {
    dw_text_reason(why, whylen, "%s has characters outside [A-Za-z0-9_-]",
                   dtask ? "delivery_task_id" : "task_id");
    goto out;
  }

  if (event_id) {
    if (strlen(event_id) > DW_EVENT_ID_MAX) {
      dw_text_reason(why, whylen, "event_id longer than %d bytes", DW_EVENT_ID_MAX);
      goto out;
    }
    if (has_control(event_id)) {
      dw_text_reason(why, whylen, "event_id has control characters");
      goto out;
    }
  }
  if (tenant) {
    if (strlen(tenant) > DW_TENANT_KEY_MAX) {
      dw_text_reason(why, whylen, "tenant_key longer than %d bytes", DW_TENANT_KEY_MAX);
      goto out;
    }
    if (!dw_text_graphic_ascii(tenant)) {
      dw_text_reason(why, whylen, "tenant_key must be printable ASCII without spaces");
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
