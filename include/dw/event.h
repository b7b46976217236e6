/* The task-created event: a Kafka message value parsed and validated into the IDs that will be
 * put into a URL (docs/contracts.md, "Event"). Pure: no I/O. The input is a byte range, not a
 * C string (Kafka payloads are not NUL-terminated). */
#ifndef DW_EVENT_H
#define DW_EVENT_H

#include <stddef.h>

#define DW_WEBSITE_ID_MAX 32  /* digits */
#define DW_TASK_ID_MAX 64     /* [A-Za-z0-9_-] */
#define DW_EVENT_ID_MAX 128
#define DW_TENANT_KEY_MAX 128

/* A validated task-created event. */
struct dw_event {
  char website_id[DW_WEBSITE_ID_MAX + 1];
  char task_id[DW_TASK_ID_MAX + 1];     /* "delivery_task_id", or "task_id" */
  char event_id[DW_EVENT_ID_MAX + 1];   /* "" when absent */
  char tenant_key[DW_TENANT_KEY_MAX + 1]; /* "" when absent */
};

/* Parses and validates an event value. Returns 0, or DW_EINVAL with a one-line reason in why
 * ("not JSON", "website_id must be 1-32 digits", ...). Never reads past len. Unknown fields are
 * allowed; a JSON null counts as an absent field; a known field given twice is invalid; a value
 * that is not valid UTF-8 anywhere (any key, any field) is invalid. */
int dw_event_parse(struct dw_event *ev, const void *buf, size_t len, char *why, size_t whylen);

#endif
