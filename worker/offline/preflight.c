/* `delivery-worker preflight`: asks the cluster and the API, once, what the worker will need,
 * and prints the checklist dw/checklist.h decides from the answers. Kafka: one consumer client
 * (consumers never create topics) fetches the cluster's metadata, each topic's metadata,
 * the answering broker's offset.metadata.max.bytes (DescribeConfigs) and the ACLs
 * (DescribeAcls: what the broker grants is read, never probed by writing to a topic). The API:
 * a tenant_access_token from the app credentials, then one GET of a task that cannot exist,
 * whose 1002008 shows the app's scope is right. Every request gives up after the timeout. It
 * blocks: it runs in its own process, never on the worker's loop. */
#include "dw/preflight.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "dw/auth.h"
#include "dw/checklist.h"
#include "dw/common.h"
#include "dw/http.h"
#include "dw/ops.h"

#define ACLS_MAX 10000 /* bindings read from the cluster */
#define PREFLIGHT_TOKEN_MAX 4096
/* A task id no task has: ids are numeric strings. */
#define NO_SUCH_WEBSITE "0"
#define NO_SUCH_TASK "0"

/* The ACL bindings copied out of librdkafka's result. */
struct acl_copy {
  struct dw_acl *acls;
  size_t n;
};

static void acl_copy_free(struct acl_copy *c)
{
  for (size_t i = 0; i < c->n; i++) {
    free((char *)c->acls[i].name);
    free((char *)c->acls[i].principal);
  }
  free(c->acls);
}

/* Kafka's resource types as librdkafka 2.0.2 passes them through: it names no type for
 * transactional ids (5 in the protocol) and calls the cluster (4) "broker". */
static int acl_resource(int restype, enum dw_acl_resource *out)
{
  switch (restype) {
  case RD_KAFKA_RESOURCE_TOPIC: *out = DW_ACL_TOPIC; return 0;
  case RD_KAFKA_RESOURCE_GROUP: *out = DW_ACL_GROUP; return 0;
  case RD_KAFKA_RESOURCE_BROKER: *out = DW_ACL_CLUSTER; return 0;
  case 5: *out = DW_ACL_TRANSACTIONAL_ID; return 0;
  default: return -1;
  }
}

static enum dw_acl_operation acl_operation(rd_kafka_AclOperation_t op)
{
  switch (op) {
  case RD_KAFKA_ACL_OPERATION_ALL: return DW_ACL_OP_ALL;
  case RD_KAFKA_ACL_OPERATION_READ: return DW_ACL_OP_READ;
  case RD_KAFKA_ACL_OPERATION_WRITE: return DW_ACL_OP_WRITE;
  case RD_KAFKA_ACL_OPERATION_DESCRIBE: return DW_ACL_OP_DESCRIBE;
  default: return DW_ACL_OP_OTHER;
  }
}

/* Waits for one admin result on q: NULL when none came in time. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, int timeout_ms)
{
  return rd_kafka_queue_poll(q, timeout_ms + 1000);
}

static void probe_acls(rd_kafka_t *rk, struct dw_probe *p, struct acl_copy *copy,
                       int timeout_ms)
{
  char errstr[512];
  rd_kafka_event_t *ev = NULL;
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
  rd_kafka_AclBindingFilter_t *f = rd_kafka_AclBindingFilter_new(
      RD_KAFKA_RESOURCE_ANY, NULL, RD_KAFKA_RESOURCE_PATTERN_ANY, NULL, NULL,
      RD_KAFKA_ACL_OPERATION_ANY, RD_KAFKA_ACL_PERMISSION_TYPE_ANY, errstr, sizeof(errstr));
  p->acl_state = DW_PROBE_ACL_ERROR;
  if (!f) {
    snprintf(p->acl_error, sizeof(p->acl_error), "%.200s", errstr);
    goto out;
  }
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof(errstr));
  rd_kafka_DescribeAcls(rk, f, opt, q);
  ev = admin_wait(q, timeout_ms);
  if (!ev) {
    snprintf(p->acl_error, sizeof(p->acl_error), "no answer within %d ms", timeout_ms);
    goto out;
  }
  rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
  if (err == RD_KAFKA_RESP_ERR_SECURITY_DISABLED) {
    p->acl_state = DW_PROBE_ACL_NO_AUTHORIZER;
    goto out;
  }
  if (err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
    p->acl_state = DW_PROBE_ACL_DENIED;
    goto out;
  }
  if (err) {
    snprintf(p->acl_error, sizeof(p->acl_error), "%s", rd_kafka_event_error_string(ev));
    goto out;
  }
  size_t cnt = 0;
  const rd_kafka_AclBinding_t **b =
      rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &cnt);
  cnt = DW_MIN(cnt, (size_t)ACLS_MAX);
  copy->acls = calloc(cnt ? cnt : 1, sizeof(*copy->acls));
  if (!copy->acls) {
    snprintf(p->acl_error, sizeof(p->acl_error), "out of memory");
    goto out;
  }
  for (size_t i = 0; i < cnt; i++) {
    struct dw_acl *a = &copy->acls[copy->n];
    if (acl_resource((int)rd_kafka_AclBinding_restype(b[i]), &a->resource) < 0)
      continue;
    a->name = strdup(rd_kafka_AclBinding_name(b[i]));
    a->principal = strdup(rd_kafka_AclBinding_principal(b[i]));
    if (!a->name || !a->principal) {
      free((char *)a->name);
      free((char *)a->principal);
      snprintf(p->acl_error, sizeof(p->acl_error), "out of memory");
      goto out;
    }
    a->prefixed =
        rd_kafka_AclBinding_resource_pattern_type(b[i]) == RD_KAFKA_RESOURCE_PATTERN_PREFIXED;
    a->operation = acl_operation(rd_kafka_AclBinding_operation(b[i]));
    a->deny = rd_kafka_AclBinding_permission_type(b[i]) == RD_KAFKA_ACL_PERMISSION_TYPE_DENY;
    copy->n++;
  }
  p->acl_state = DW_PROBE_ACL_LISTED;
  p->acls = copy->acls;
  p->acl_count = copy->n;
out:
  if (ev)
    rd_kafka_event_destroy(ev);
  if (f)
    rd_kafka_AclBinding_destroy(f);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
}

static void probe_metadata_limit(rd_kafka_t *rk, int32_t broker, struct dw_probe *p,
                                 int timeout_ms)
{
  char errstr[512], id[16];
  rd_kafka_event_t *ev = NULL;
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opt =
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
  snprintf(id, sizeof(id), "%d", (int)broker);
  rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_BROKER, id);
  rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, errstr, sizeof(errstr));
  rd_kafka_DescribeConfigs(rk, &res, 1, opt, q);
  ev = admin_wait(q, timeout_ms);
  if (!ev || rd_kafka_event_error(ev)) {
    snprintf(p->metadata_max_error, sizeof(p->metadata_max_error), "DescribeConfigs: %s",
             ev ? rd_kafka_event_error_string(ev) : "no answer in time");
    goto out;
  }
  size_t cnt = 0, nc = 0;
  const rd_kafka_ConfigResource_t **r =
      rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
  if (cnt != 1 || rd_kafka_ConfigResource_error(r[0])) {
    snprintf(p->metadata_max_error, sizeof(p->metadata_max_error), "DescribeConfigs: %s",
             cnt == 1 ? rd_kafka_ConfigResource_error_string(r[0]) : "no resource");
    goto out;
  }
  const rd_kafka_ConfigEntry_t **e = rd_kafka_ConfigResource_configs(r[0], &nc);
  for (size_t i = 0; i < nc; i++) {
    const char *v = rd_kafka_ConfigEntry_value(e[i]);
    if (strcmp(rd_kafka_ConfigEntry_name(e[i]), "offset.metadata.max.bytes") != 0 || !v)
      continue;
    if (dw_ops_parse_int64(v, 0, &p->metadata_max_bytes) < 0)
      p->metadata_max_bytes = -1;
  }
  if (p->metadata_max_bytes < 0)
    snprintf(p->metadata_max_error, sizeof(p->metadata_max_error),
             "broker %s does not show offset.metadata.max.bytes", id);
out:
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_ConfigResource_destroy(res);
  rd_kafka_AdminOptions_destroy(opt);
  rd_kafka_queue_destroy(q);
}

static void probe_topic(rd_kafka_t *rk, const char *name, struct dw_probe_topic *t,
                        int timeout_ms)
{
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
  if (!rkt) {
    snprintf(t->error, sizeof(t->error), "%s", rd_kafka_err2str(rd_kafka_last_error()));
    return;
  }
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  if (err) {
    snprintf(t->error, sizeof(t->error), "%s", rd_kafka_err2str(err));
  } else if (md->topic_cnt != 1) {
    snprintf(t->error, sizeof(t->error), "not in the cluster's metadata");
  } else if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
    t->missing = 1;
  } else if (md->topics[0].err) {
    snprintf(t->error, sizeof(t->error), "%s", rd_kafka_err2str(md->topics[0].err));
  } else {
    t->partitions = md->topics[0].partition_cnt;
  }
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
}

static void probe_kafka(const struct dw_config *cfg, struct dw_probe *p, struct acl_copy *acls,
                        int timeout_ms)
{
  const char *defaults[] = {"client.id", "delivery-worker-preflight", "group.id",
                            cfg->kafka.group_id, NULL};
  const char *topics[] = {cfg->kafka.input_topic, cfg->kafka.results_topic,
                          cfg->kafka.dlq_topic, cfg->feishu.app_ticket_topic};
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_t *rk = dw_ops_kafka_new(cfg, 1, defaults, NULL, NULL, p->brokers_error,
                                    sizeof(p->brokers_error));
  if (!rk)
    return;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
  if (err) {
    snprintf(p->brokers_error, sizeof(p->brokers_error), "no metadata: %s (waited up to %d ms)",
             rd_kafka_err2str(err), timeout_ms);
    goto out;
  }
  p->brokers_ok = 1;
  p->broker_count = md->broker_cnt;
  for (size_t i = 0; i < DW_ARRAY_SIZE(topics); i++)
    if (topics[i][0])
      probe_topic(rk, topics[i], &p->topics[i], timeout_ms);
  probe_acls(rk, p, acls, timeout_ms);
  if (cfg->kafka.commit_metadata_max_bytes > 0)
    probe_metadata_limit(rk, md->orig_broker_id, p, timeout_ms);
out:
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);
}

/* ---- the API, on a loop of its own ---- */

struct api {
  const struct dw_config *cfg;
  struct dw_probe *p;
  struct dw_http *http;
  int timeout_ms;
  char token[PREFLIGHT_TOKEN_MAX];
  char url[2048];
};

static void on_closed(void *arg)
{
  (void)arg;
}

static void answer_text(const struct dw_http_response *r, long *http, char *msg, size_t size)
{
  *http = r->status;
  if (r->error) {
    *http = 0;
    snprintf(msg, size, "%s", r->error_text ? r->error_text : dw_strerror(r->error));
  }
}

static void on_task(void *arg, const struct dw_http_response *r)
{
  struct api *a = arg;
  struct dw_probe *p = a->p;
  p->scope_ran = 1;
  answer_text(r, &p->scope_http, p->scope_msg, sizeof(p->scope_msg));
  if (!r->error) {
    char token[8];
    int64_t expire;
    /* Any API answer has code and msg at the top, as the token endpoint's has. */
    dw_token_answer_parse(r->body, r->body_len, token, sizeof(token), &expire, &p->scope_code,
                          p->scope_msg, sizeof(p->scope_msg));
  }
  dw_http_close(a->http, on_closed, NULL);
}

static void on_token(void *arg, const struct dw_http_response *r)
{
  struct api *a = arg;
  struct dw_probe *p = a->p;
  int64_t expire;
  p->token_ran = 1;
  answer_text(r, &p->token_http, p->token_msg, sizeof(p->token_msg));
  if (!r->error && dw_token_answer_parse(r->body, r->body_len, a->token, sizeof(a->token),
                                         &expire, &p->token_code, p->token_msg,
                                         sizeof(p->token_msg)) == 0)
    p->token_ok = 1;
  if (!p->token_ok) {
    dw_http_close(a->http, on_closed, NULL);
    return;
  }
  char auth[PREFLIGHT_TOKEN_MAX + 16];
  snprintf(auth, sizeof(auth), "Bearer %s", a->token);
  snprintf(a->url, sizeof(a->url), "%s/open-apis/hire/v1/websites/%s/delivery_tasks/%s",
           a->cfg->feishu.base_url, NO_SUCH_WEBSITE, NO_SUCH_TASK);
  struct dw_http_request req = {.method = "GET", .url = a->url, .authorization = auth,
                                .timeout_ms = a->timeout_ms};
  if (dw_http_send(a->http, &req, on_task, a) < 0) {
    p->scope_ran = 1;
    snprintf(p->scope_msg, sizeof(p->scope_msg), "cannot send the request");
    dw_http_close(a->http, on_closed, NULL);
  }
  explicit_bzero(auth, sizeof(auth));
}

static void probe_api(const struct dw_config *cfg, struct dw_probe *p, int timeout_ms)
{
  struct api a = {.cfg = cfg, .p = p, .timeout_ms = timeout_ms};
  struct dw_config_feishu feishu = cfg->feishu;
  uv_loop_t loop;
  char *body = NULL;
  size_t len;
  if (strcmp(cfg->feishu.app_type, "self_built") != 0)
    return; /* a store app's token needs the pushed app_ticket */
  feishu.request_timeout_ms = timeout_ms;
  if (feishu.connect_timeout_ms > timeout_ms)
    feishu.connect_timeout_ms = timeout_ms;
  p->token_ran = 1;
  if (uv_loop_init(&loop) != 0) {
    snprintf(p->token_msg, sizeof(p->token_msg), "cannot start an event loop");
    return;
  }
  if (dw_http_new(&a.http, &loop, &feishu) < 0) {
    snprintf(p->token_msg, sizeof(p->token_msg), "cannot start the HTTP client");
    goto out;
  }
  snprintf(a.url, sizeof(a.url), "%s/open-apis/auth/v3/tenant_access_token/internal",
           cfg->feishu.base_url);
  if (dw_token_request_encode(cfg->feishu.app_id, cfg->feishu.app_secret, &body, &len) < 0) {
    snprintf(p->token_msg, sizeof(p->token_msg), "out of memory");
    dw_http_close(a.http, on_closed, NULL);
  } else {
    struct dw_http_request req = {.method = "POST", .url = a.url, .body = body,
                                  .body_len = len, .timeout_ms = timeout_ms};
    if (dw_http_send(a.http, &req, on_token, &a) < 0) {
      snprintf(p->token_msg, sizeof(p->token_msg), "cannot send the request");
      dw_http_close(a.http, on_closed, NULL);
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
out:
  if (body) {
    explicit_bzero(body, len);
    free(body);
  }
  explicit_bzero(a.token, sizeof(a.token));
  uv_loop_close(&loop);
}

int dw_preflight_run(const struct dw_config *cfg, FILE *out, int timeout_ms)
{
  struct dw_probe p;
  struct acl_copy acls = {NULL, 0};
  struct dw_check checks[DW_CHECKLIST_MAX];
  memset(&p, 0, sizeof(p));
  p.metadata_max_bytes = -1;
  p.acl_state = DW_PROBE_ACL_NOT_RUN;
  probe_kafka(cfg, &p, &acls, timeout_ms);
  probe_api(cfg, &p, timeout_ms);
  size_t n = dw_checklist_build(cfg, &p, checks, DW_CHECKLIST_MAX);
  size_t failed = dw_checklist_print(out, checks, n);
  fprintf(out, "%s: %zu check%s, %zu failed\n", failed ? "FAILED" : "passed", n,
          n == 1 ? "" : "s", failed);
  acl_copy_free(&acls);
  return failed ? 1 : 0;
}
