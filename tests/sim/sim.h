/* dw-sim internals: the Feishu Hire API simulator shared between its modules.
 *
 * sim_util.c    bounded buffers, JSON string output, strict number parsing, clocks, PRNG, hash table
 * sim_state.c   the simulated world: apps and tokens, tasks, fault queue, rate windows, stats,
 *               request records (all guarded by sim.lock)
 * sim_api.c     the Feishu endpoints (token, delivery task) as pure request -> answer logic
 * sim_control.c the /_sim/ control plane
 * sim_http.c    libmicrohttpd glue: routing, bodies, suspended (delayed) responses
 * sim_main.c    command line, signals, lifecycle
 *
 * Only sim_http.c includes <microhttpd.h>; only sim_api.c, sim_control.c and sim_main.c use cJSON. */
#ifndef DW_SIM_H
#define DW_SIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SIM_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Return codes: 0 or negative. */
enum {
  SIM_OK = 0,
  SIM_EINVAL = -1,
  SIM_ENOMEM = -2,
  SIM_ERANGE = -3,
};

/* Limits on everything that comes from outside. */
#define SIM_WEBSITE_ID_MAX 32      /* digits */
#define SIM_TASK_ID_MAX 64         /* [A-Za-z0-9_-] */
#define SIM_TEXT_MAX 4096          /* status_msg, extra_info, ids, fault msg */
#define SIM_APP_FIELD_MAX 255      /* app id / secret */
#define SIM_TOKEN_LEN 42           /* "t-" + 40 hex */
#define SIM_LOG_ID_SIZE 40         /* 14 digits + 20 hex + NUL, rounded */
#define SIM_BODY_MAX_TASKS (64u * 1024 * 1024)
#define SIM_BODY_MAX_CONTROL (1u * 1024 * 1024)
#define SIM_BODY_MAX_API (64u * 1024)
#define SIM_REQUESTS_OUT_MAX ((size_t)2 * 1024 * 1024 * 1024)
#define SIM_TOKEN_REFRESH_S 1800   /* Feishu: same token while >= 30 min left */

#define SIM_PATH_TOKEN "/open-apis/auth/v3/tenant_access_token/internal"
/* Store (ISV) apps: app_access_token with the pushed app_ticket, then one tenant token each. */
#define SIM_PATH_APP_TOKEN "/open-apis/auth/v3/app_access_token"
#define SIM_PATH_STORE_TOKEN "/open-apis/auth/v3/tenant_access_token"
#define SIM_PATH_TICKET_RESEND "/open-apis/auth/v3/app_ticket/resend"
#define SIM_PATH_TASK_PREFIX "/open-apis/hire/v1/websites/"
#define SIM_PATH_TASK_MIDDLE "/delivery_tasks/"

/* ---- sim_util.c ---- */

/* A growable byte buffer that never exceeds max bytes of content (plus a NUL). After the
 * first failed append (limit or ENOMEM) every append fails and failed stays set. */
struct sim_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max;
  int failed;
};

void sim_buf_init(struct sim_buf *b, size_t max);
void sim_buf_free(struct sim_buf *b);
int sim_buf_add(struct sim_buf *b, const void *p, size_t n);
int sim_buf_adds(struct sim_buf *b, const char *s);
int sim_buf_addf(struct sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a quoted, escaped JSON string, or null when s is NULL. */
int sim_buf_add_jstr(struct sim_buf *b, const char *s);
int sim_buf_add_jstrn(struct sim_buf *b, const char *s, size_t n);
/* Hands the heap buffer (NUL-terminated, may be NULL when empty) to the caller, who frees it. */
char *sim_buf_take(struct sim_buf *b, size_t *len);

/* Strict decimal parse of the whole string into [min, max]. */
int sim_parse_ll(const char *s, long long min, long long max, long long *out);
int sim_parse_double(const char *s, double min, double max, double *out);

uint64_t sim_mono_ms(void);
uint64_t sim_rand_next(uint64_t *state);  /* splitmix64 */
double sim_rand_unit(uint64_t *state);    /* [0, 1) */
uint64_t sim_hash(const void *p, size_t n, uint64_t seed);
char *sim_strndup(const char *s, size_t n);

/* Chained hash table over nodes embedded in their owners (not owned by the table). */
struct sim_hnode {
  struct sim_hnode *next;
  uint64_t hash;
  const char *key;
  size_t klen;
};

struct sim_htab {
  struct sim_hnode **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
};

int sim_htab_init(struct sim_htab *t);
void sim_htab_cleanup(struct sim_htab *t);
struct sim_hnode *sim_htab_find(const struct sim_htab *t, const char *key, size_t klen);
/* n->key and n->klen must be set and stay valid while the node is in the table. */
void sim_htab_insert(struct sim_htab *t, struct sim_hnode *n);
void sim_htab_remove(struct sim_htab *t, struct sim_hnode *n);

/* ---- sim_state.c ---- */

enum sim_unknown { SIM_UNKNOWN_NOT_FOUND, SIM_UNKNOWN_AUTO };
enum sim_ready_dist { SIM_READY_FIXED, SIM_READY_LOGNORMAL };

struct sim_config {
  long long rate_per_second; /* 0 = unlimited */
  long long rate_per_minute; /* 0 = unlimited */
  long long latency_min_ms;
  long long latency_max_ms;
  long long arrival_jitter_ms; /* a request counts in the rate windows 0..N ms after it arrives */
  long long token_ttl_s;
  enum sim_unknown unknown_tasks;
  enum sim_ready_dist ready_dist;
  double ready_ms;     /* fixed delay, or the lognormal median */
  double ready_sigma;  /* lognormal */
  double ready_max_ms; /* lognormal cap */
  double auto_never;
  double auto_failed;
  uint64_t seed;
  const char *tenants; /* store apps: "a,b,c", the tenants that installed them; NULL = any */
  int token_echo;      /* a refused token request's msg echoes the request body (a careless
                          gateway), after a CR LF */
};

void sim_config_defaults(struct sim_config *c);
/* "N" or "MIN-MAX". */
int sim_config_parse_latency(const char *s, long long *min, long long *max);
/* "fixed:MS" or "lognormal:MEDIAN_MS:SIGMA:MAX_MS". */
int sim_config_parse_ready(const char *s, struct sim_config *c);
/* Writes the auto-ready distribution back in the same syntax. */
void sim_config_format_ready(const struct sim_config *c, char *buf, size_t size);

struct sim_app {
  char id[SIM_APP_FIELD_MAX + 1];
  char secret[SIM_APP_FIELD_MAX + 1];
  struct sim_token *current; /* the token the next refresh may return again, or NULL */
  struct sim_token *app_current; /* store apps: the same for the app_access_token */
  char ticket[SIM_APP_FIELD_MAX + 1]; /* store apps: the app_ticket in force ("" = none) */
  uint64_t resends;          /* app_ticket/resend requests */
  /* Fixed windows: [i & 1] holds window index i (ms since start / 1000, or / 60000) and its
   * admitted calls; two of each, since with arrival jitter a request may count in the window
   * after the newest one seen. */
  uint64_t sec_window[2];
  long long sec_count[2];
  uint64_t min_window[2];
  long long min_count[2];
};

struct sim_token {
  struct sim_hnode node;
  char token[SIM_TOKEN_LEN + 1];
  size_t app;          /* index into sim.apps */
  uint64_t expires_ms; /* sim time */
  int kind;            /* SIM_TOKEN_TENANT or SIM_TOKEN_APP */
  char tenant[SIM_APP_FIELD_MAX + 1]; /* store tenant token: its tenant_key; "" otherwise */
};

enum { SIM_TOKEN_TENANT = 0, SIM_TOKEN_APP = 1 };

/* Rate windows and the current token of one store app and tenant (Feishu limits per app and
 * tenant). */
struct sim_win {
  size_t app;
  char tenant[SIM_APP_FIELD_MAX + 1];
  uint64_t sec_window[2], min_window[2]; /* as in sim_app */
  long long sec_count[2], min_count[2];
  struct sim_token *current;
};

enum sim_fault_kind {
  SIM_FAULT_HTTP_500,
  SIM_FAULT_CODE,
  SIM_FAULT_TIMEOUT,
  SIM_FAULT_RESET,
  SIM_FAULT_GARBAGE,
  SIM_FAULT_RATE_LIMIT,
  /* Hostile answers: what a broken proxy, a buggy gateway or an attacker could send. */
  SIM_FAULT_TRUNCATED,   /* 200, Content-Length of the whole answer, half sent, then closed */
  SIM_FAULT_HUGE,        /* 200, a JSON body of `bytes` (8 MiB) */
  SIM_FAULT_SLOWLORIS,   /* 200 and headers at once, then one body byte every delay_ms (1 s) */
  SIM_FAULT_BAD_UTF8,    /* code (1002001) whose msg is invalid UTF-8 */
  SIM_FAULT_DEEP_JSON,   /* 200, data nested `bytes` (10000) arrays deep */
  SIM_FAULT_WRONG_TYPE,  /* the normal answer labelled text/html; charset=gbk */
  SIM_FAULT_EMPTY_200,   /* 200 with an empty body */
  SIM_FAULT_RAW,         /* http (200) with msg as the whole body, as it is */
};

struct sim_fault {
  enum sim_fault_kind kind;
  long long count;    /* calls it still applies to */
  long long code;     /* 0 = the kind's default */
  int http;           /* 0 = the kind's default */
  long long delay_ms; /* timeout; slowloris: between two body bytes */
  long long bytes;    /* huge: body size; deep_json: depth; 0 = the kind's default */
  long long reset_s;  /* rate_limit (or code 99991400): x-ogw-ratelimit-reset; -1 = 1 s */
  char *msg;          /* NULL = the code's usual message */
};

const char *sim_fault_kind_name(enum sim_fault_kind k);
void sim_fault_cleanup(struct sim_fault *f);

enum sim_final {
  SIM_FINAL_SUCCEEDED,
  SIM_FINAL_FAILED,
  SIM_FINAL_NOT_FOUND,
  SIM_FINAL_INVALID,
  SIM_FINAL_NEVER,
};

enum sim_pending {
  SIM_PENDING_ROTATE,
  SIM_PENDING_MISSING,
  SIM_PENDING_NULL,
  SIM_PENDING_EMPTY,
  SIM_PENDING_STATUS0,
  SIM_PENDING_STATUS1,
};

enum sim_id_field {
  SIM_ID_APPLICATION,
  SIM_ID_JOB,
  SIM_ID_JOB_POST,
  SIM_ID_PORTAL_RESUME,
  SIM_ID_USER,
  SIM_ID_TALENT,
  SIM_ID_COUNT,
};

/* Field names in the delivery object and the default prefixes ("app-<task id>"). */
extern const char *const sim_id_names[SIM_ID_COUNT];
extern const char *const sim_id_prefixes[SIM_ID_COUNT];

struct sim_task {
  struct sim_hnode node;
  char *key;          /* "<website_id>/<task_id>", owned; node.key points here */
  size_t website_len; /* website id = key[0, website_len) */
  const char *task_id; /* = key + website_len + 1 */
  uint64_t ready_at_ms;
  enum sim_final final;
  enum sim_pending pending;
  char *status_msg; /* NULL = default */
  char *extra_info; /* NULL = default */
  char *ids[SIM_ID_COUNT]; /* NULL = prefix + task id */
  struct sim_fault *errors;
  size_t nerrors;
  uint64_t polls; /* calls that reached this task */
  int is_auto;
};

/* Allocates a task for (website, task id) with defaults; NULL on ENOMEM. */
struct sim_task *sim_task_new(const char *website, size_t wlen, const char *task_id, size_t tlen);
void sim_task_free(struct sim_task *t);

struct sim_record {
  uint64_t ts_ms;
  int http;   /* 0 = connection reset */
  int has_code;
  long long code;
  int status; /* -1 = none */
  int path_kind; /* set by sim_record_add: 0 path stored, 1 canonical task path, 2 token path */
  const char *method, *path, *website_id, *task_id, *app_id, *token, *log_id; /* NULL = null */
  const char *tenant_key; /* the tenant of the token used or asked for; NULL = none */
  char text[];
};

struct sim_code_count {
  char key[24]; /* decimal code, or "reset" / "garbage" */
  uint64_t n;
};

struct sim_stats {
  uint64_t calls;
  struct sim_code_count *by_code;
  size_t nby_code;
  size_t capby_code;
  uint64_t rate_limited;
  uint64_t tokens_issued;
  uint64_t token_calls;
  uint64_t max_calls_in_1s;
  uint64_t win_1s;       /* global fixed 1 s window index */
  uint64_t win_1s_count; /* admitted delivery-task calls in it */
};

struct sim {
  pthread_mutex_t lock;
  uint64_t t0_ms; /* monotonic ms at start; sim time = mono - t0 */
  struct sim_config cfg;
  struct sim_app *apps;
  size_t napps;
  struct sim_htab tokens;
  uint64_t tokens_since_sweep;
  struct sim_win *wins; /* store tenants */
  size_t nwins, capwins;
  struct sim_htab tasks;
  struct sim_fault *faults; /* FIFO: [faults_head, nfaults) */
  size_t faults_head;
  size_t nfaults;
  size_t faults_cap;
  struct sim_record **recs; /* ring of rec_max slots */
  size_t rec_max;
  uint64_t rec_total;       /* records since the last reset; index of the next one */
  struct sim_stats stats;
  uint64_t rng;       /* seeded: latency */
  uint64_t rng_token; /* time-seeded: tokens and log ids, so they differ between runs */
  uint64_t logid_seq;
  int verbose;
};

/* Takes ownership of nothing; copies apps. Returns 0 or SIM_ENOMEM. */
int sim_init(struct sim *s, const struct sim_config *cfg, const struct sim_app *apps, size_t napps,
             size_t max_records);
void sim_cleanup(struct sim *s);

/* Everything below requires s->lock held. */
uint64_t sim_now(const struct sim *s);
void sim_log_id(struct sim *s, char *out, size_t size);
struct sim_token *sim_token_find(struct sim *s, const char *tok, size_t len);
/* Issues a new token for app, valid for the configured TTL. NULL on ENOMEM. */
struct sim_token *sim_token_issue(struct sim *s, size_t app);
/* Issues a token of a kind (SIM_TOKEN_APP: "a-..."; SIM_TOKEN_TENANT with a tenant_key: a
 * store tenant's token). NULL on ENOMEM. */
struct sim_token *sim_token_issue_kind(struct sim *s, size_t app, int kind, const char *tenant);
/* Drops every token; returns how many. */
size_t sim_tokens_revoke(struct sim *s);
/* Drops the tenant tokens of one store tenant; returns how many. */
size_t sim_tokens_revoke_tenant(struct sim *s, const char *tenant);
/* The windows of (app, tenant), created on first use; NULL on ENOMEM. */
struct sim_win *sim_win_get(struct sim *s, size_t app, const char *tenant);
struct sim_task *sim_task_find(struct sim *s, const char *website, size_t wlen, const char *task_id,
                               size_t tlen);
/* Inserts t, replacing (and freeing) a task with the same key. */
void sim_task_put(struct sim *s, struct sim_task *t);
void sim_tasks_clear(struct sim *s);
/* Appends a copy of f (msg duplicated) to the FIFO. */
int sim_fault_push(struct sim *s, const struct sim_fault *f);
/* Takes one use of the head fault into *out (the caller owns it: sim_fault_cleanup); 0 if none. */
int sim_fault_take(struct sim *s, struct sim_fault *out);
long long sim_faults_pending(const struct sim *s);
void sim_faults_clear(struct sim *s);
/* Rate windows for app at sim time now. Returns 1 and counts the call if admitted; else 0 with
 * the limit and the whole seconds until the window that was hit resets. */
int sim_rate_admit(struct sim *s, size_t app, uint64_t now, long long *limit, long long *reset_s);
/* The same for a store tenant's windows ("" = the app's own). */
int sim_rate_admit_tenant(struct sim *s, size_t app, const char *tenant, uint64_t now,
                          long long *limit, long long *reset_s);
void sim_stats_count(struct sim *s, const char *key);
void sim_record_add(struct sim *s, const struct sim_record *r);
const struct sim_record *sim_record_get(const struct sim *s, uint64_t index);
/* The request path of r (rebuilt when it was not stored) into buf. */
const char *sim_record_path(const struct sim_record *r, char *buf, size_t size);
uint64_t sim_record_first(const struct sim *s);
/* /_sim/reset: tasks, faults, records, stats, rate windows. Tokens stay. */
void sim_reset(struct sim *s);

/* ---- sim_api.c / sim_control.c ---- */

/* A request as the HTTP layer hands it over. body is not NUL-terminated. */
struct sim_req {
  const char *method;
  const char *url; /* path, already unescaped, no query */
  const char *authorization;
  const char *body;
  size_t body_len;
  int body_too_large;
  /* Query argument lookup (NULL when absent). */
  const char *(*arg)(void *ctx, const char *name);
  void *arg_ctx;
};

/* How sim_http.c sends a hostile answer's body. */
enum sim_stream { SIM_STREAM_NONE, SIM_STREAM_TRUNCATE, SIM_STREAM_HUGE, SIM_STREAM_TRICKLE };

struct sim_answer {
  int http;
  int reset; /* close the connection without a response */
  enum sim_stream stream;
  uint64_t stream_size; /* HUGE: bytes announced and sent (a JSON object of that size) */
  size_t stream_keep;   /* TRUNCATE: bytes of body sent before the connection is closed */
  uint64_t trickle_ms;  /* TRICKLE: one byte of body every trickle_ms */
  const char *stat_key; /* counted in stats under this key, not the code ("truncated", ...) */
  const char *content_type;
  struct sim_buf body;
  char log_id[SIM_LOG_ID_SIZE];
  long long rl_limit; /* x-ogw-ratelimit-* when >= 0 */
  long long rl_reset;
  uint64_t delay_ms; /* hold the answer this long */
  int has_code;
  long long code;
  int status;
};

void sim_answer_init(struct sim_answer *a);
void sim_answer_cleanup(struct sim_answer *a);

/* website_id: 1-32 digits; delivery_task_id: 1-64 of [A-Za-z0-9_-]. */
int sim_valid_website_id(const char *p, size_t n);
int sim_valid_task_id(const char *p, size_t n);
/* Answers a Feishu endpoint (anything outside /_sim/). */
void sim_api_handle(struct sim *s, const struct sim_req *rq, struct sim_answer *a);
/* Answers /_sim/... */
void sim_control_handle(struct sim *s, const struct sim_req *rq, struct sim_answer *a);
/* Parses one fault object (used by /_sim/faults and task "errors"). msg in *f is heap-owned. */
int sim_control_parse_fault(const void *json, struct sim_fault *f, char *err, size_t errsize);

/* ---- sim_http.c ---- */

struct sim_http;
struct sockaddr;

/* Starts the server on addr (IPv4 or IPv6). threads > 1 uses an MHD thread pool. With
 * tls_cert_pem and tls_key_pem (PEM text that must outlive the server) it serves HTTPS only. */
int sim_http_start(struct sim_http **out, struct sim *s, const struct sockaddr *addr, unsigned threads,
                   int verbose, const char *tls_cert_pem, const char *tls_key_pem);
uint16_t sim_http_port(const struct sim_http *h);
/* Resumes held responses, stops the daemon and frees h (NULL is fine). */
void sim_http_stop(struct sim_http *h);

#endif
