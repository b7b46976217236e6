/* The result record: a task's final answer written as the JSON value of the results topic
 * (docs/contracts.md, "Result"). Pure: no I/O. */
#ifndef DW_RESULT_H
#define DW_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "dw/answer.h"
#include "dw/event.h"
#include "dw/record.h"

/* Of the input record's headers, at most this many are carried onto its result... */
#define DW_RESULT_MAX_HEADERS 32
/* ...with at most this many bytes of names and values together. */
#define DW_RESULT_MAX_HEADER_BYTES 8192

/* A result for the results topic. */
struct dw_result {
  const struct dw_event *event;
  const struct dw_answer *answer; /* SUCCEEDED or FAILED */
  unsigned polls;                 /* API calls made for this task */
  int64_t resolved_at_ms;         /* wall clock */
};

/* Encodes the result JSON (docs/contracts.md, "Result"): website_id, delivery_task_id, event_id,
 * outcome, the delivery ids (succeeded) or status_msg and existing_application_id (failed),
 * polls, resolved_at. event_id and tenant_key (after event_id) are written only when the event
 * had them, existing_application_id only when extra_info is non-empty; the six delivery ids
 * of a success are always written ("" when absent). Unformatted, one line, valid UTF-8.
 * DW_EINVAL unless the answer is SUCCEEDED or FAILED, or when a string to write is not valid
 * UTF-8. Caller frees *out with free(). */
int dw_result_encode(const struct dw_result *res, char **out, size_t *len);

/* The input record's headers its result carries (so a W3C traceparent survives): in, in order,
 * skipping any header that would take the count past DW_RESULT_MAX_HEADERS or the bytes of
 * names and values past DW_RESULT_MAX_HEADER_BYTES. The worker sets no header of its own on a
 * result, so none is replaced. Writes at most max entries to out (values shared with in, not
 * copied) and returns how many. */
size_t dw_result_headers(const struct dw_header *in, size_t n, struct dw_header *out,
                         size_t max);

#endif
