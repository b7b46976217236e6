/* The verdicts of `delivery-worker preflight`: what the probes of worker/offline/preflight.c
 * found, and the configuration, become checklist lines (ok, FAIL or skip, with a detail and
 * the fix of a failure). Pure: no I/O but printing the lines, so every verdict is unit-tested. */
#include "dw/checklist.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dw/common.h"

static const char *const resource_names[] = {"topic", "group", "transactional id", "cluster"};
static const char *const resource_flags[] = {"--topic", "--group", "--transactional-id",
                                             "--cluster"};
static const char *const operation_names[] = {"All", "Read", "Write", "Describe", "Other"};

size_t dw_checklist_acl_needs(const struct dw_config *cfg, struct dw_acl_need *out, size_t max)
{
  size_t n = 0;
#define NEED(res, nm, pre, op)                                                                 \
  do {                                                                                         \
    if (n < max) {                                                                             \
      out[n].resource = res;                                                                   \
      dw_strlcpy(out[n].name, nm, sizeof(out[n].name));                                        \
      out[n].prefixed = pre;                                                                   \
      out[n].operation = op;                                                                   \
      n++;                                                                                     \
    }                                                                                          \
  } while (0)
  NEED(DW_ACL_TOPIC, cfg->kafka.input_topic, 0, DW_ACL_OP_READ);
  NEED(DW_ACL_GROUP, cfg->kafka.group_id, 0, DW_ACL_OP_READ);
  NEED(DW_ACL_TOPIC, cfg->kafka.results_topic, 0, DW_ACL_OP_WRITE);
  NEED(DW_ACL_TOPIC, cfg->kafka.dlq_topic, 0, DW_ACL_OP_WRITE);
  if (cfg->feishu.app_ticket_topic[0])
    NEED(DW_ACL_TOPIC, cfg->feishu.app_ticket_topic, 0, DW_ACL_OP_READ);
  if (strcmp(cfg->processing.guarantee, "exactly_once") == 0) {
    char id[512];
    if (cfg->kafka.transactional_id[0]) {
      NEED(DW_ACL_TRANSACTIONAL_ID, cfg->kafka.transactional_id, 0, DW_ACL_OP_WRITE);
    } else if (cfg->kafka.group_instance_id[0]) {
      snprintf(id, sizeof(id), "%s.%s", cfg->kafka.group_id, cfg->kafka.group_instance_id);
      NEED(DW_ACL_TRANSACTIONAL_ID, id, 0, DW_ACL_OP_WRITE);
    } else { /* <group_id>.<hostname>.<pid>: only a prefix can grant it */
      snprintf(id, sizeof(id), "%s.", cfg->kafka.group_id);
      NEED(DW_ACL_TRANSACTIONAL_ID, id, 1, DW_ACL_OP_WRITE);
    }
  }
#undef NEED
  return n;
}

/* Does binding a cover need's resource? A prefixed need (any name starting with it) is covered
 * only by "*" or a prefix of it. */
static int covers(const struct dw_acl *a, const struct dw_acl_need *need)
{
  size_t len = strlen(a->name);
  if (a->resource != need->resource)
    return 0;
  if (!a->prefixed && strcmp(a->name, "*") == 0)
    return 1;
  if (a->prefixed)
    return strncmp(need->name, a->name, len) == 0;
  return !need->prefixed && strcmp(a->name, need->name) == 0;
}

/* Kafka: Read, Write, Delete and Alter imply Describe; All implies everything. */
static int grants(enum dw_acl_operation have, enum dw_acl_operation want)
{
  return have == want || have == DW_ACL_OP_ALL ||
         (want == DW_ACL_OP_DESCRIBE && (have == DW_ACL_OP_READ || have == DW_ACL_OP_WRITE));
}

int dw_checklist_acl_granted(const struct dw_acl_need *need, const char *principal,
                             const struct dw_acl *acls, size_t n)
{
  int allowed = 0;
  for (size_t i = 0; i < n; i++) {
    const struct dw_acl *a = &acls[i];
    if (strcmp(a->principal, principal) != 0 && strcmp(a->principal, "User:*") != 0)
      continue;
    if (!covers(a, need) || !grants(a->operation, need->operation))
      continue;
    if (a->deny)
      return 0; /* a DENY wins over any ALLOW */
    allowed = 1;
  }
  return allowed;
}

void dw_checklist_principal(const struct dw_config *cfg, char *buf, size_t size)
{
  const char *proto = dw_config_property(cfg, "security.protocol");
  const char *mech = dw_config_property(cfg, "sasl.mechanism");
  const char *user = dw_config_property(cfg, "sasl.username");
  if (!mech)
    mech = dw_config_property(cfg, "sasl.mechanisms");
  buf[0] = '\0';
  if (!proto || strncasecmp(proto, "SASL_", 5) != 0 || !mech || !user || !user[0])
    return;
  if (strcasecmp(mech, "PLAIN") == 0 || strncasecmp(mech, "SCRAM-", 6) == 0)
    snprintf(buf, size, "User:%s", user);
}

static struct dw_check *add(struct dw_check *out, size_t max, size_t *n,
                            enum dw_check_status st, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static struct dw_check *add(struct dw_check *out, size_t max, size_t *n,
                            enum dw_check_status st, const char *what, const char *fmt, ...)
{
  static struct dw_check sink; /* past max: written and dropped */
  struct dw_check *c = *n < max ? &out[(*n)++] : &sink;
  va_list ap;
  memset(c, 0, sizeof(*c));
  c->status = st;
  dw_strlcpy(c->what, what, sizeof(c->what));
  va_start(ap, fmt);
  vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
  va_end(ap);
  return c;
}

static const char *topic_key(size_t i)
{
  static const char *const keys[] = {"kafka.input_topic", "kafka.results_topic",
                                     "kafka.dlq_topic", "feishu.app_ticket_topic"};
  return keys[i];
}

static const char *topic_name(const struct dw_config *cfg, size_t i)
{
  const char *names[] = {cfg->kafka.input_topic, cfg->kafka.results_topic, cfg->kafka.dlq_topic,
                         cfg->feishu.app_ticket_topic};
  return names[i];
}

static void check_topics(const struct dw_config *cfg, const struct dw_probe *p,
                         struct dw_check *out, size_t max, size_t *n)
{
  size_t count = cfg->feishu.app_ticket_topic[0] ? 4 : 3;
  for (size_t i = 0; i < count; i++) {
    const struct dw_probe_topic *t = &p->topics[i];
    const char *name = topic_name(cfg, i);
    char what[160];
    snprintf(what, sizeof(what), "topic %s (%s)", name, topic_key(i));
    if (!p->brokers_ok) {
      add(out, max, n, DW_CHECK_SKIP, what, "brokers unreachable");
    } else if (t->partitions > 0) {
      add(out, max, n, DW_CHECK_OK, what, "%d partition%s", t->partitions,
          t->partitions == 1 ? "" : "s");
    } else if (t->missing) {
      struct dw_check *c = add(out, max, n, DW_CHECK_FAIL, what, "does not exist");
      snprintf(c->fix, sizeof(c->fix),
               "create it (docs/getting-started.md, \"Topics\"): kafka-topics.sh "
               "--bootstrap-server %s --create --topic %s --partitions %d "
               "--replication-factor 3, or set %s to the topic in use",
               cfg->kafka.brokers, name, i == 3 ? 1 : 12, topic_key(i));
    } else {
      struct dw_check *c = add(out, max, n, DW_CHECK_FAIL, what, "%s",
                               t->error[0] ? t->error : "not in the cluster's metadata");
      snprintf(c->fix, sizeof(c->fix),
               "grant this principal Describe (Read or Write imply it) on the topic, or "
               "check that it exists");
    }
  }
}

static void acl_fix(const struct dw_config *cfg, const struct dw_acl_need *need,
                    const char *principal, char *buf, size_t size)
{
  snprintf(buf, size,
           "kafka-acls.sh --bootstrap-server %s --add --allow-principal %s --operation %s "
           "%s %s%s",
           cfg->kafka.brokers, principal[0] ? principal : "User:<worker>",
           operation_names[need->operation], resource_flags[need->resource], need->name,
           need->prefixed ? " --resource-pattern-type prefixed" : "");
}

static void check_acls(const struct dw_config *cfg, const struct dw_probe *p,
                       struct dw_check *out, size_t max, size_t *n)
{
  struct dw_acl_need needs[DW_ACL_NEEDS_MAX];
  size_t nn = dw_checklist_acl_needs(cfg, needs, DW_ACL_NEEDS_MAX);
  char principal[512];
  dw_checklist_principal(cfg, principal, sizeof(principal));
  switch (p->acl_state) {
  case DW_PROBE_ACL_NOT_RUN:
    add(out, max, n, DW_CHECK_SKIP, "ACLs", "brokers unreachable");
    return;
  case DW_PROBE_ACL_NO_AUTHORIZER:
    add(out, max, n, DW_CHECK_OK, "ACLs",
        "the brokers have no authorizer: every principal may do everything");
    return;
  case DW_PROBE_ACL_DENIED:
    add(out, max, n, DW_CHECK_SKIP, "ACLs",
        "this principal may not list ACLs (DescribeAcls needs Describe on the cluster): "
        "compare `kafka-acls.sh --list` with the ACLs of docs/getting-started.md");
    return;
  case DW_PROBE_ACL_ERROR:
    add(out, max, n, DW_CHECK_SKIP, "ACLs", "cannot list ACLs: %s", p->acl_error);
    return;
  case DW_PROBE_ACL_LISTED:
    break;
  }
  if (p->acl_count == 0) {
    /* librdkafka 2.0.2 drops DescribeAcls' top-level error: a broker without an authorizer
     * (SECURITY_DISABLED) and one that refuses this principal (CLUSTER_AUTHORIZATION_FAILED)
     * both come back as an empty list, as does a cluster with no binding at all. */
    add(out, max, n, DW_CHECK_SKIP, "ACLs",
        "the cluster lists no ACL binding (no authorizer, none set, or this principal may not "
        "list them): compare `kafka-acls.sh --list` with docs/getting-started.md");
    return;
  }
  if (!principal[0]) {
    add(out, max, n, DW_CHECK_SKIP, "ACLs",
        "%zu bindings listed, but the principal is not known from the configuration (only "
        "SASL PLAIN and SCRAM name it): compare with the ACLs of docs/getting-started.md",
        p->acl_count);
    return;
  }
  for (size_t i = 0; i < nn; i++) {
    char what[160 + 512];
    const struct dw_acl_need *need = &needs[i];
    snprintf(what, sizeof(what), "ACL %s on %s %s%s", operation_names[need->operation],
             resource_names[need->resource], need->name, need->prefixed ? "*" : "");
    if (dw_checklist_acl_granted(need, principal, p->acls, p->acl_count)) {
      add(out, max, n, DW_CHECK_OK, what, "granted to %s", principal);
    } else {
      struct dw_check *c = add(out, max, n, DW_CHECK_FAIL, what, "not granted to %s", principal);
      acl_fix(cfg, need, principal, c->fix, sizeof(c->fix));
    }
  }
}

static void check_metadata_limit(const struct dw_config *cfg, const struct dw_probe *p,
                                 struct dw_check *out, size_t max, size_t *n)
{
  const char *what = "offset.metadata.max.bytes";
  int64_t want = cfg->kafka.commit_metadata_max_bytes;
  if (want == 0) {
    add(out, max, n, DW_CHECK_OK, what, "kafka.commit_metadata_max_bytes = 0: no map committed");
  } else if (!p->brokers_ok) {
    add(out, max, n, DW_CHECK_SKIP, what, "brokers unreachable");
  } else if (p->metadata_max_bytes < 0) {
    add(out, max, n, DW_CHECK_SKIP, what, "cannot read the broker's configuration: %s",
        p->metadata_max_error[0] ? p->metadata_max_error : "unknown error");
  } else if (p->metadata_max_bytes < want) {
    struct dw_check *c = add(out, max, n, DW_CHECK_FAIL, what,
                             "the broker allows %" PRId64 " bytes, "
                             "kafka.commit_metadata_max_bytes = %" PRId64,
                             p->metadata_max_bytes, want);
    snprintf(c->fix, sizeof(c->fix),
             "set kafka.commit_metadata_max_bytes = %" PRId64 " (or raise the brokers' "
             "offset.metadata.max.bytes to %" PRId64 ")",
             p->metadata_max_bytes, want);
  } else {
    add(out, max, n, DW_CHECK_OK, what,
        "the broker allows %" PRId64 " bytes, kafka.commit_metadata_max_bytes = %" PRId64,
        p->metadata_max_bytes, want);
  }
}

/* The fix of an API answer that is not the expected one. */
static const char *api_fix(long http, long code)
{
  if (http == 0)
    return "check feishu.base_url, the network path (proxy, firewall) and feishu.ca_file";
  switch (code) {
  case 10003:
  case 10014:
  case 10015:
    return "check feishu.app_id and the app secret against the Developer Console (Credentials "
           "& Basic Info)";
  case 99991672:
  case 99991676:
    return "add the scope hire:site_application:readonly (or hire:site_application) in the "
           "Developer Console (Permissions & Scopes), then publish a new version of the app "
           "and have the tenant's administrator approve it";
  case 99991673:
    return "install the app in the tenant (the tenant's administrator approves it in the "
           "admin console)";
  case 99991662:
    return "enable the app in the Developer Console";
  case 99991401:
    return "add this host's egress IP to the app's IP allowlist (Developer Console, Security "
           "Settings)";
  default:
    return "look the code up in Feishu's list of server error codes";
  }
}

static void check_api(const struct dw_config *cfg, const struct dw_probe *p,
                      struct dw_check *out, size_t max, size_t *n)
{
  struct dw_check *c;
  if (!p->token_ran) {
    add(out, max, n, DW_CHECK_SKIP, "token",
        "a store app's tokens need the app_ticket Feishu pushes: the worker obtains them");
  } else if (p->token_ok) {
    add(out, max, n, DW_CHECK_OK, "token", "tenant_access_token for app %s from %s",
        cfg->feishu.app_id, cfg->feishu.base_url);
  } else {
    if (p->token_http == 0)
      c = add(out, max, n, DW_CHECK_FAIL, "token", "no answer from %s: %s",
              cfg->feishu.base_url, p->token_msg);
    else
      c = add(out, max, n, DW_CHECK_FAIL, "token", "HTTP %ld, code %ld: %s", p->token_http,
              p->token_code, p->token_msg);
    dw_strlcpy(c->fix, api_fix(p->token_http, p->token_code), sizeof(c->fix));
  }
  if (!p->scope_ran) {
    add(out, max, n, DW_CHECK_SKIP, "scope", "no token");
  } else if (p->scope_http != 0 &&
             (p->scope_code == 1002008 || p->scope_code == 1002002 || p->scope_code == 0)) {
    /* The gateway checks token and scope before the endpoint looks at the task: any answer
     * of the endpoint itself shows the scope is there. */
    add(out, max, n, DW_CHECK_OK, "scope",
        "the app may read delivery tasks (a task that cannot exist answers %ld)", p->scope_code);
  } else {
    if (p->scope_http == 0)
      c = add(out, max, n, DW_CHECK_FAIL, "scope", "no answer from %s: %s",
              cfg->feishu.base_url, p->scope_msg);
    else
      c = add(out, max, n, DW_CHECK_FAIL, "scope",
              "a task that cannot exist answers HTTP %ld, code %ld (want 1002008): %s",
              p->scope_http, p->scope_code, p->scope_msg);
    dw_strlcpy(c->fix, api_fix(p->scope_http, p->scope_code), sizeof(c->fix));
  }
}

size_t dw_checklist_build(const struct dw_config *cfg, const struct dw_probe *p,
                          struct dw_check *out, size_t max)
{
  size_t n = 0;
  const char *proto = dw_config_property(cfg, "security.protocol");
  if (p->brokers_ok) {
    add(out, max, &n, DW_CHECK_OK, "brokers", "%d reachable from %s (security.protocol %s)",
        p->broker_count, cfg->kafka.brokers, proto ? proto : "plaintext");
  } else {
    struct dw_check *c = add(out, max, &n, DW_CHECK_FAIL, "brokers", "%s: %s",
                             cfg->kafka.brokers, p->brokers_error);
    snprintf(c->fix, sizeof(c->fix),
             "check kafka.brokers and the security properties (security.protocol, sasl.*, "
             "ssl.*); the librdkafka lines above say what failed");
  }
  check_topics(cfg, p, out, max, &n);
  check_acls(cfg, p, out, max, &n);
  check_metadata_limit(cfg, p, out, max, &n);
  check_api(cfg, p, out, max, &n);
  return n;
}

size_t dw_checklist_print(FILE *out, const struct dw_check *c, size_t n)
{
  static const char *const marks[] = {"ok  ", "FAIL", "skip"};
  size_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "%s  %s: %s\n", marks[c[i].status], c[i].what, c[i].detail);
    if (c[i].status == DW_CHECK_FAIL) {
      failed++;
      if (c[i].fix[0])
        fprintf(out, "      fix: %s\n", c[i].fix);
    }
  }
  return failed;
}
