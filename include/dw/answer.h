/* The answer of the delivery-task endpoint: one HTTP answer classified into the kind the task
 * acts on (docs/contracts.md, "How API answers are treated"), with the delivery IDs of a
 * success and the texts of a failure. Pure: no I/O. The body is a byte range, not a C string
 * (HTTP bodies are not NUL-terminated). */
#ifndef DW_ANSWER_H
#define DW_ANSWER_H

#include <stddef.h>

#define DW_ID_MAX 128         /* application, talent, job ... ids from the API */
#define DW_TEXT_MAX 512       /* msg, status_msg, extra_info */
/* Ends a text of a final answer that was cut to fit (U+2026, "..."), so that a cut
 * existing_application_id can never pass for another application's id. */
#define DW_TEXT_CUT_MARK "\xE2\x80\xA6"

/* What an answer of the delivery-task endpoint means for the task. */
enum dw_answer_kind {
  DW_ANSWER_PENDING = 0,    /* code 0 and data missing/null/{} or status 0/1: poll again */
  DW_ANSWER_SUCCEEDED,      /* status 2 */
  DW_ANSWER_FAILED,         /* status 3: a final answer, published as outcome "failed" */
  DW_ANSWER_NOT_FOUND,      /* 1002008: dead letter task_not_found */
  DW_ANSWER_INVALID,        /* 1002002: dead letter invalid_request */
  DW_ANSWER_RETRY,          /* 1002001, 5xx, transport errors, garbage, unknown codes, and
                               HTTP statuses that carry no answer (3xx, 2xx other than 200) */
  DW_ANSWER_RATE_LIMITED,   /* 99991400 */
  DW_ANSWER_TOKEN_INVALID,  /* 99991663/4/5/71: refresh the token, retry once */
  DW_ANSWER_APP_FAILURE,    /* not the task's fault: scope, IP, app disabled, quota ... */
  DW_ANSWER_MALFORMED,      /* code 0 with data the API does not send (msg says what): retry,
                               then dead letter malformed_answer */
};
#define DW_ANSWER_KINDS 10

struct dw_answer {
  enum dw_answer_kind kind;
  long code;                  /* body code; -1 when there is no parsable body */
  char msg[DW_TEXT_MAX];      /* body msg, or why the body could not be used */
  int status;                 /* data.status, -1 when absent */
  /* data.delivery, trimmed; "" when absent */
  char application_id[DW_ID_MAX];
  char talent_id[DW_ID_MAX];
  char job_id[DW_ID_MAX];
  char job_post_id[DW_ID_MAX];
  char portal_resume_id[DW_ID_MAX];
  char user_id[DW_ID_MAX];
  /* status 3, trimmed; a text that does not fit is cut and ends with DW_TEXT_CUT_MARK */
  char status_msg[DW_TEXT_MAX];
  char extra_info[DW_TEXT_MAX]; /* the existing application id for duplicates */
};

/* The delivery IDs of a success, in the order a result writes them: each is read from
 * data.delivery and written into the result under the same name; offset locates its buffer
 * (DW_ID_MAX bytes) in struct dw_answer. */
struct dw_answer_id {
  const char *key;
  size_t offset;
};
#define DW_ANSWER_IDS 6
extern const struct dw_answer_id dw_answer_ids[DW_ANSWER_IDS];

/* Classifies one HTTP answer. http_status is 0 when the transfer failed (then body is
 * ignored and the kind is RETRY). Only 200, 4xx and 5xx carry an answer: any other status is
 * RETRY whatever its body says (a redirect is not followed, and its body is not the API's).
 * The body's code decides whatever the HTTP status; without a usable body, 429 means
 * RATE_LIMITED and anything else RETRY. A code 0 answer whose data has a shape the API does not
 * send is MALFORMED with a short fixed description in msg ("status is not an integer",
 * "delivery is not an object", "delivery.application_id too long", "answer is not valid
 * UTF-8", ...); a final status 3 stays FAILED however long its texts are. */
void dw_answer_classify(struct dw_answer *ans, long http_status, const void *body, size_t len);

/* The name of a kind, for logs and metrics ("pending", "succeeded", ...). */
const char *dw_answer_kind_name(enum dw_answer_kind kind);

#endif
