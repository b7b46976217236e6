/* The JSON codec: task-created events in, API answers classified, results encoded. Pure logic
 * with no I/O; the only module that sees cJSON. Inputs are byte ranges, not C strings (Kafka
 * payloads and HTTP bodies are not NUL-terminated). */
#ifndef DW_CODEC_H
#define DW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define DW_WEBSITE_ID_MAX 32  /* digits */
#define DW_TASK_ID_MAX 64     /* [A-Za-z0-9_-] */
#define DW_EVENT_ID_MAX 128
#define DW_TENANT_KEY_MAX 128
#define DW_ID_MAX 128         /* application, talent, job ... ids from the API */
#define DW_TEXT_MAX 512       /* msg, status_msg, extra_info */
#define DW_JSON_MAX_DEPTH 16
/* Ends a text of a final answer that was cut to fit (U+2026, "..."), so that a cut
 * existing_application_id can never pass for another application's id. */
#define DW_TEXT_CUT_MARK "\xE2\x80\xA6"

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

/* Parses the tenant_access_token endpoint's answer: top level code, msg, tenant_access_token,
 * expire (seconds). Returns 0 with token and expire set, or DW_EINVAL with *code (-1 if
 * unparsable) and msg describing the failure. token_size should be >= 4096 (JWT tokens). */
int dw_token_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expire_s, long *code, char *msg, size_t msg_size);

/* The same for any auth endpoint: field names the token ("tenant_access_token" or
 * "app_access_token"). */
int dw_auth_answer_parse(const void *body, size_t len, const char *field, char *token,
                         size_t token_size, int64_t *expire_s, long *code, char *msg,
                         size_t msg_size);

/* An OAuth 2.0 token endpoint's answer to a client-credentials request: the access token and
 * expires_in (-1 when absent). DW_EINVAL with the reason in why (for an error answer, its
 * "error" and "error_description"). */
int dw_oauth_answer_parse(const void *body, size_t len, char *token, size_t token_size,
                          int64_t *expires_in, char *why, size_t why_size);

/* The claims of a JWT access token that a Kafka client needs: exp (seconds since the epoch,
 * -1 when absent) and sub ("" when absent). The signature is not checked (the broker does).
 * DW_EINVAL with the reason in why, DW_ENOMEM. */
int dw_jwt_claims_parse(const char *jwt, int64_t *exp, char *sub, size_t sub_size, char *why,
                        size_t why_size);

/* Encodes {"k1":"v1",...} from npairs (name, value) string pairs: the bodies of the store-app
 * auth endpoints. Caller frees *out. */
int dw_json_strings_encode(const char *const *pairs, size_t npairs, char **out, size_t *len);

/* Parses a pushed app_ticket event (v1 callback envelope, 2.0 schema, or the bare event
 * object). Returns 0 with app_id and ticket set, or DW_EINVAL with the reason in why. */
int dw_app_ticket_parse(const void *buf, size_t len, char *app_id, size_t app_id_size,
                        char *ticket, size_t ticket_size, char *why, size_t whylen);

/* Encodes the token request body {"app_id":..,"app_secret":..}. Caller frees *out. */
int dw_token_request_encode(const char *app_id, const char *app_secret, char **out,
                            size_t *len);

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

#endif
