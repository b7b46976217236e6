/* Unit tests of preflight's verdicts: the ACLs each mode needs, whether listed bindings grant
 * them (principal, wildcard, prefix, ALL, DENY), the principal known from the configuration,
 * and the checklist lines (status, detail, fix) for what the probes found. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/checklist.h"
#include "dw/common.h"
#include "dw/config.h"

static void load(struct dw_config *cfg, const char *const *extra)
{
  char *env[16] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_a", "DELIVERY_WORKER_FEISHU_APP_SECRET=s",
                   "DELIVERY_WORKER_KAFKA_GROUP_ID=g"};
  size_t n = 3;
  char err[512];
  for (size_t i = 0; extra && extra[i]; i++)
    env[n++] = (char *)extra[i];
  env[n] = NULL;
  dw_config_init(cfg);
  assert_int_equal(dw_config_load(cfg, NULL, env, err, sizeof(err)), 0);
}

static void test_needs(void **state)
{
  (void)state;
  struct dw_config cfg;
  struct dw_acl_need needs[DW_ACL_NEEDS_MAX];
  load(&cfg, NULL);
  assert_int_equal(dw_checklist_acl_needs(&cfg, needs, DW_ACL_NEEDS_MAX), 4);
  assert_int_equal(needs[0].resource, DW_ACL_TOPIC);
  assert_string_equal(needs[0].name, "hire.delivery_tasks.created");
  assert_int_equal(needs[0].operation, DW_ACL_OP_READ);
  assert_int_equal(needs[1].resource, DW_ACL_GROUP);
  assert_string_equal(needs[1].name, "g");
  assert_int_equal(needs[2].operation, DW_ACL_OP_WRITE);
  assert_string_equal(needs[3].name, "hire.delivery_tasks.dlq");
  dw_config_cleanup(&cfg);

  /* Exactly-once: the transactional id, prefixed when derived from host and pid. */
  const char *eos[] = {"DELIVERY_WORKER_PROCESSING_GUARANTEE=exactly_once", NULL};
  load(&cfg, eos);
  assert_int_equal(dw_checklist_acl_needs(&cfg, needs, DW_ACL_NEEDS_MAX), 5);
  assert_int_equal(needs[4].resource, DW_ACL_TRANSACTIONAL_ID);
  assert_string_equal(needs[4].name, "g.");
  assert_true(needs[4].prefixed);
  dw_config_cleanup(&cfg);
  const char *eos_static[] = {"DELIVERY_WORKER_PROCESSING_GUARANTEE=exactly_once",
                              "DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID=pod-0", NULL};
  load(&cfg, eos_static);
  assert_int_equal(dw_checklist_acl_needs(&cfg, needs, DW_ACL_NEEDS_MAX), 5);
  assert_string_equal(needs[4].name, "g.pod-0");
  assert_false(needs[4].prefixed);
  dw_config_cleanup(&cfg);
}

static void test_granted(void **state)
{
  (void)state;
  struct dw_acl_need read_in = {DW_ACL_TOPIC, "in", 0, DW_ACL_OP_READ};
  struct dw_acl_need txn = {DW_ACL_TRANSACTIONAL_ID, "g.", 1, DW_ACL_OP_WRITE};
  struct dw_acl acls[] = {
    {DW_ACL_TOPIC, "in", 0, "User:bob", DW_ACL_OP_READ, 0},          /* another principal */
    {DW_ACL_TOPIC, "in", 0, "User:alice", DW_ACL_OP_WRITE, 0},       /* another operation */
    {DW_ACL_GROUP, "in", 0, "User:alice", DW_ACL_OP_READ, 0},        /* another resource */
    {DW_ACL_TOPIC, "i", 0, "User:alice", DW_ACL_OP_READ, 0},         /* literal, not a prefix */
  };
  assert_false(dw_checklist_acl_granted(&read_in, "User:alice", acls, 4));
  struct dw_acl literal = {DW_ACL_TOPIC, "in", 0, "User:alice", DW_ACL_OP_READ, 0};
  assert_true(dw_checklist_acl_granted(&read_in, "User:alice", &literal, 1));
  struct dw_acl all = {DW_ACL_TOPIC, "*", 0, "User:*", DW_ACL_OP_ALL, 0};
  assert_true(dw_checklist_acl_granted(&read_in, "User:alice", &all, 1));
  struct dw_acl prefix = {DW_ACL_TOPIC, "i", 1, "User:alice", DW_ACL_OP_READ, 0};
  assert_true(dw_checklist_acl_granted(&read_in, "User:alice", &prefix, 1));
  /* A DENY wins over an ALLOW, in any order. */
  struct dw_acl deny[] = {{DW_ACL_TOPIC, "in", 0, "User:*", DW_ACL_OP_ALL, 1}, literal};
  assert_false(dw_checklist_acl_granted(&read_in, "User:alice", deny, 2));
  /* A prefixed need (derived transactional ids): only "*" or a prefix of it grants it. */
  struct dw_acl txn_literal = {DW_ACL_TRANSACTIONAL_ID, "g.", 0, "User:alice", DW_ACL_OP_WRITE, 0};
  assert_false(dw_checklist_acl_granted(&txn, "User:alice", &txn_literal, 1));
  struct dw_acl txn_prefix = {DW_ACL_TRANSACTIONAL_ID, "g", 1, "User:alice", DW_ACL_OP_WRITE, 0};
  assert_true(dw_checklist_acl_granted(&txn, "User:alice", &txn_prefix, 1));
  struct dw_acl txn_longer = {DW_ACL_TRANSACTIONAL_ID, "g.x", 1, "User:alice", DW_ACL_OP_WRITE, 0};
  assert_false(dw_checklist_acl_granted(&txn, "User:alice", &txn_longer, 1));
}

static void test_principal(void **state)
{
  (void)state;
  struct dw_config cfg;
  char p[128];
  const char *scram[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=security.protocol=SASL_SSL,"
                         "sasl.mechanism=SCRAM-SHA-512,sasl.username=alice,sasl.password=x",
                         NULL};
  load(&cfg, scram);
  dw_checklist_principal(&cfg, p, sizeof(p));
  assert_string_equal(p, "User:alice");
  dw_config_cleanup(&cfg);
  const char *ssl[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=security.protocol=SSL", NULL};
  load(&cfg, ssl);
  dw_checklist_principal(&cfg, p, sizeof(p));
  assert_string_equal(p, "");
  dw_config_cleanup(&cfg);
}

/* The line of check what (its text before the colon). */
static const struct dw_check *find(const struct dw_check *c, size_t n, const char *what)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(c[i].what, what) == 0)
      return &c[i];
  fail_msg("no check %s", what);
  return NULL;
}

static void passing(struct dw_probe *p)
{
  memset(p, 0, sizeof(*p));
  p->brokers_ok = 1;
  p->broker_count = 3;
  for (int i = 0; i < 3; i++)
    p->topics[i].partitions = 12;
  p->metadata_max_bytes = 4096;
  p->acl_state = DW_PROBE_ACL_NO_AUTHORIZER;
  p->token_ran = p->token_ok = 1;
  p->scope_ran = 1;
  p->scope_http = 400;
  p->scope_code = 1002008;
}

static void test_all_pass(void **state)
{
  (void)state;
  struct dw_config cfg;
  struct dw_probe p;
  struct dw_check c[DW_CHECKLIST_MAX];
  load(&cfg, NULL);
  passing(&p);
  size_t n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(n, 8);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(c[i].status, DW_CHECK_OK);
  assert_string_equal(find(c, n, "topic hire.delivery_tasks.created (kafka.input_topic)")->detail,
                      "12 partitions");
  FILE *out = tmpfile();
  assert_int_equal(dw_checklist_print(out, c, n), 0);
  fclose(out);
  dw_config_cleanup(&cfg);
}

static void test_failures(void **state)
{
  (void)state;
  struct dw_config cfg;
  struct dw_probe p;
  struct dw_check c[DW_CHECKLIST_MAX];
  size_t n;
  load(&cfg, NULL);

  /* Brokers unreachable: what depends on them is skipped, the API still checked. */
  passing(&p);
  p.brokers_ok = 0;
  p.acl_state = DW_PROBE_ACL_NOT_RUN;
  dw_strlcpy(p.brokers_error, "Local: Broker transport failure", sizeof(p.brokers_error));
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "brokers")->status, DW_CHECK_FAIL);
  assert_non_null(strstr(find(c, n, "brokers")->detail, "transport failure"));
  assert_non_null(strstr(find(c, n, "brokers")->fix, "kafka.brokers"));
  assert_int_equal(find(c, n, "ACLs")->status, DW_CHECK_SKIP);
  assert_int_equal(find(c, n, "offset.metadata.max.bytes")->status, DW_CHECK_SKIP);
  assert_int_equal(find(c, n, "scope")->status, DW_CHECK_OK);

  /* A missing topic: the command that creates it. */
  passing(&p);
  p.topics[2].partitions = 0;
  p.topics[2].missing = 1;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  const struct dw_check *t = find(c, n, "topic hire.delivery_tasks.dlq (kafka.dlq_topic)");
  assert_int_equal(t->status, DW_CHECK_FAIL);
  assert_non_null(strstr(t->fix, "--create --topic hire.delivery_tasks.dlq"));

  /* The metadata limit. */
  passing(&p);
  p.metadata_max_bytes = 1024;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  t = find(c, n, "offset.metadata.max.bytes");
  assert_int_equal(t->status, DW_CHECK_FAIL);
  assert_string_equal(t->detail, "the broker allows 1024 bytes, "
                                 "kafka.commit_metadata_max_bytes = 4096");
  assert_non_null(strstr(t->fix, "kafka.commit_metadata_max_bytes = 1024"));

  /* Bad credentials: no token, no scope check. */
  passing(&p);
  p.token_ok = 0;
  p.token_http = 400;
  p.token_code = 10014;
  dw_strlcpy(p.token_msg, "app secret invalid", sizeof(p.token_msg));
  p.scope_ran = 0;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "token")->status, DW_CHECK_FAIL);
  assert_string_equal(find(c, n, "token")->detail, "HTTP 400, code 10014: app secret invalid");
  assert_non_null(strstr(find(c, n, "token")->fix, "app secret"));
  assert_int_equal(find(c, n, "scope")->status, DW_CHECK_SKIP);

  /* A parameter check or a task is the endpoint's own answer too: past the scope. */
  passing(&p);
  p.scope_code = 1002002;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "scope")->status, DW_CHECK_OK);
  /* No answer at all is not a scope. */
  p.scope_http = 0;
  p.scope_code = 0;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "scope")->status, DW_CHECK_FAIL);
  assert_non_null(strstr(find(c, n, "scope")->fix, "feishu.base_url"));

  /* The scope missing. */
  passing(&p);
  p.scope_code = 99991672;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "scope")->status, DW_CHECK_FAIL);
  assert_non_null(strstr(find(c, n, "scope")->fix, "hire:site_application:readonly"));
  FILE *out = tmpfile();
  assert_int_equal(dw_checklist_print(out, c, n), 1);
  fclose(out);
  dw_config_cleanup(&cfg);
}

static void test_acl_lines(void **state)
{
  (void)state;
  struct dw_config cfg;
  struct dw_probe p;
  struct dw_check c[DW_CHECKLIST_MAX];
  size_t n;
  const char *scram[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=security.protocol=SASL_SSL,"
                         "sasl.mechanism=PLAIN,sasl.username=alice,sasl.password=x",
                         NULL};
  struct dw_acl acls[] = {
    {DW_ACL_TOPIC, "hire.delivery_tasks.", 1, "User:alice", DW_ACL_OP_WRITE, 0},
    {DW_ACL_TOPIC, "hire.delivery_tasks.created", 0, "User:alice", DW_ACL_OP_READ, 0},
  };
  load(&cfg, scram);
  passing(&p);
  p.acl_state = DW_PROBE_ACL_LISTED;
  p.acls = acls;
  p.acl_count = 2;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "ACL Read on topic hire.delivery_tasks.created")->status,
                   DW_CHECK_OK);
  assert_int_equal(find(c, n, "ACL Write on topic hire.delivery_tasks.resolved")->status,
                   DW_CHECK_OK);
  const struct dw_check *g = find(c, n, "ACL Read on group g");
  assert_int_equal(g->status, DW_CHECK_FAIL);
  assert_non_null(strstr(g->fix, "--allow-principal User:alice --operation Read --group g"));
  dw_config_cleanup(&cfg);

  /* Not allowed to list them, or an empty list: skipped, not passed. */
  load(&cfg, NULL);
  p.acl_state = DW_PROBE_ACL_DENIED;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "ACLs")->status, DW_CHECK_SKIP);
  p.acl_state = DW_PROBE_ACL_LISTED;
  p.acl_count = 0;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "ACLs")->status, DW_CHECK_SKIP);
  /* Bindings, but a principal the configuration does not name. */
  p.acl_count = 2;
  n = dw_checklist_build(&cfg, &p, c, DW_CHECKLIST_MAX);
  assert_int_equal(find(c, n, "ACLs")->status, DW_CHECK_SKIP);
  dw_config_cleanup(&cfg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_needs),      cmocka_unit_test(test_granted),
    cmocka_unit_test(test_principal),  cmocka_unit_test(test_all_pass),
    cmocka_unit_test(test_failures),   cmocka_unit_test(test_acl_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
