/* Unit tests of the configuration: defaults, a full file, every error with its "file:line"
 * prefix, environment overrides (from our own envp, never the real environment), the secret
 * file, kafka.properties, and check-config output that redacts secrets and parses again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/config.h"

#define ERRLEN 512

static char *const minimal_env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_test",
                                    "DELIVERY_WORKER_FEISHU_APP_SECRET=env-secret", NULL};

/* Every key; also the table of docs/configuration.md. */
static const char *const all_keys[] = {
  "kafka.brokers", "kafka.group_id", "kafka.group_instance_id", "kafka.input_topic", "kafka.results_topic",
  "kafka.dlq_topic", "kafka.properties_file", "kafka.properties", "kafka.consumer_properties",
  "kafka.producer_properties", "kafka.allow_insecure_tls",
  "kafka.commit_interval_ms",
  "kafka.commit_metadata_max_bytes", "kafka.transactional_id", "feishu.base_url",
  "feishu.app_id", "feishu.app_secret", "feishu.app_secret_file", "feishu.ca_file", "feishu.app_type",
  "feishu.app_ticket_file", "feishu.app_ticket_topic", "feishu.request_timeout_ms",
  "feishu.connect_timeout_ms", "feishu.max_connections", "feishu.max_response_bytes",
  "feishu.rate_per_second", "feishu.rate_per_minute", "feishu.token_refresh_margin_s",
  "limits.share", "limits.jitter_ms", "limits.store", "limits.store_key", "limits.store_timeout_ms",
  "poll.schedule", "poll.latency_target_ms", "poll.min_interval_ms", "poll.idle_budget_share",
  "poll.first_delay_ms", "poll.interval_ms", "poll.max_interval_ms",
  "poll.multiplier", "poll.jitter", "poll.deadline_ms", "poll.retry_initial_ms",
  "poll.retry_max_ms", "worker.max_in_flight", "worker.resume_in_flight",
  "worker.drain_timeout_ms", "worker.max_event_bytes", "processing.guarantee",
  "processing.transaction_interval_ms", "admin.listen", "log.level",
  "log.format",
};

/* Temporary files, removed after each test. */
static char tmp_paths[16][64];
static size_t tmp_count;

static const char *write_tmp(const char *content)
{
  char *path;
  FILE *fp;
  int fd;
  assert_true(tmp_count < DW_ARRAY_SIZE(tmp_paths));
  path = tmp_paths[tmp_count++];
  dw_strlcpy(path, "/tmp/dw_test_configXXXXXX", sizeof(tmp_paths[0]));
  fd = mkstemp(path);
  assert_true(fd >= 0);
  fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs(content, fp);
  fclose(fp);
  return path;
}

static int teardown(void **state)
{
  (void)state;
  for (size_t i = 0; i < tmp_count; i++)
    unlink(tmp_paths[i]);
  tmp_count = 0;
  return 0;
}

struct loaded {
  struct dw_config cfg;
  char err[ERRLEN];
  int rc;
  const char *path;
};

/* Loads content (NULL: no file) with envp; the config is cleaned up by the caller. */
static void load(struct loaded *l, const char *content, char *const *envp)
{
  dw_config_init(&l->cfg);
  l->path = content ? write_tmp(content) : NULL;
  l->rc = dw_config_load(&l->cfg, l->path, envp, l->err, sizeof(l->err));
}

/* Asserts that content fails with exactly "PATH:<line>: <msg>" (line 0: "PATH: <msg>",
 * line -1: "<msg>", for errors from the environment). */
static void expect_error(const char *content, char *const *envp, int line, const char *msg)
{
  struct loaded l;
  char want[ERRLEN];
  load(&l, content, envp);
  if (line > 0)
    snprintf(want, sizeof(want), "%s:%d: %s", l.path, line, msg);
  else if (l.path && line == 0)
    snprintf(want, sizeof(want), "%s: %s", l.path, msg);
  else
    snprintf(want, sizeof(want), "%s", msg);
  if (l.rc == 0)
    fail_msg("loaded without error: %s", content ? content : "(no file)");
  if (strcmp(l.err, want) != 0)
    fail_msg("got:  %s\nwant: %s", l.err, want);
  dw_config_cleanup(&l.cfg);
  if (l.path) {
    unlink(l.path);
    tmp_count--;
  }
}

static void test_defaults(void **state)
{
  struct dw_config cfg;
  char err[ERRLEN];
  (void)state;
  dw_config_init(&cfg);
  assert_string_equal(cfg.kafka.brokers, "127.0.0.1:9092");
  assert_string_equal(cfg.kafka.group_id, "delivery-worker");
  assert_string_equal(cfg.kafka.input_topic, "hire.delivery_tasks.created");
  assert_string_equal(cfg.kafka.results_topic, "hire.delivery_tasks.resolved");
  assert_string_equal(cfg.kafka.dlq_topic, "hire.delivery_tasks.dlq");
  assert_int_equal(cfg.kafka.properties_count, 0);
  assert_int_equal(cfg.kafka.commit_interval_ms, 1000);
  assert_string_equal(cfg.feishu.base_url, "https://open.feishu.cn");
  assert_string_equal(cfg.feishu.app_id, "");
  assert_string_equal(cfg.feishu.app_secret, "");
  assert_string_equal(cfg.feishu.app_secret_file, "");
  assert_int_equal(cfg.feishu.request_timeout_ms, 10000);
  assert_int_equal(cfg.feishu.connect_timeout_ms, 5000);
  assert_int_equal(cfg.feishu.max_connections, 64);
  assert_int_equal(cfg.feishu.max_response_bytes, 65536);
  assert_int_equal(cfg.feishu.rate_per_second, 50);
  assert_int_equal(cfg.feishu.rate_per_minute, 1000);
  assert_int_equal(cfg.feishu.token_refresh_margin_s, 300);
  assert_string_equal(cfg.poll.schedule, "adaptive");
  assert_int_equal(cfg.poll.latency_target_ms, 2000);
  assert_int_equal(cfg.poll.min_interval_ms, 250);
  assert_int_equal(cfg.poll.first_delay_ms, 2000);
  assert_int_equal(cfg.poll.interval_ms, 2000);
  assert_int_equal(cfg.poll.max_interval_ms, 15000);
  assert_true(cfg.poll.multiplier == 1.5);
  assert_true(cfg.poll.jitter == 0.2);
  assert_int_equal(cfg.poll.deadline_ms, 300000);
  assert_int_equal(cfg.poll.retry_initial_ms, 500);
  assert_int_equal(cfg.poll.retry_max_ms, 30000);
  assert_int_equal(cfg.worker.max_in_flight, 10000);
  assert_int_equal(cfg.worker.resume_in_flight, 8000);
  assert_int_equal(cfg.worker.drain_timeout_ms, 30000);
  assert_int_equal(cfg.worker.max_event_bytes, 65536);
  assert_string_equal(cfg.admin.listen, "0.0.0.0:9464");
  assert_string_equal(cfg.log.level, "info");
  assert_string_equal(cfg.log.format, "json");

  /* Defaults plus the two required values from the environment are a valid config. */
  assert_int_equal(dw_config_load(&cfg, NULL, minimal_env, err, sizeof(err)), 0);
  assert_string_equal(err, "");
  assert_string_equal(cfg.feishu.app_id, "cli_test");
  assert_string_equal(cfg.feishu.app_secret, "env-secret");
  assert_int_equal(cfg.worker.resume_in_flight, 8000);
  dw_config_cleanup(&cfg);
  dw_config_cleanup(&cfg); /* twice is harmless */
}

static const char full_file[] =
  "# every key\n"
  "kafka = {\n"
  "  brokers = \"k1:9092,k2:9092\";\n"
  "  group_id = \"g\";\n"
  "  input_topic = \"in\";\n"
  "  results_topic = \"out\";\n"
  "  dlq_topic = \"dlq\";\n"
  "  properties = ( (\"security.protocol\", \"SASL_SSL\"), [\"sasl.password\", \"pw\"],\n"
  "                 (\"session.timeout.ms\", 6000), (\"enable.idempotence\", true),\n"
  "                 (\"big\", 10000000000L), (\"ratio\", 0.5) );\n"
  "  commit_interval_ms = 500;\n"
  "};\n"
  "feishu = {\n"
  "  base_url = \"http://127.0.0.1:8080/\";\n"
  "  app_id = \"cli_abc\";\n"
  "  app_secret = \"file-secret\";\n"
  "  app_secret_file = \"\";\n"
  "  request_timeout_ms = 20000;\n"
  "  connect_timeout_ms = 1000L;\n"
  "  max_connections = 8;\n"
  "  max_response_bytes = 1048576;\n"
  "  rate_per_second = 0;\n"
  "  rate_per_minute = 0;\n"
  "  token_refresh_margin_s = 600;\n"
  "};\n"
  "poll = {\n"
  "  schedule = \"fixed\";\n"
  "  first_delay_ms = 0;\n"
  "  interval_ms = 100;\n"
  "  max_interval_ms = 100;\n"
  "  multiplier = 2;\n"
  "  jitter = 0.0;\n"
  "  deadline_ms = 60000;\n"
  "  retry_initial_ms = 10;\n"
  "  retry_max_ms = 1000;\n"
  "};\n"
  "worker = {\n"
  "  max_in_flight = 100;\n"
  "  resume_in_flight = 50;\n"
  "  drain_timeout_ms = 0;\n"
  "  max_event_bytes = 4096;\n"
  "};\n"
  "admin = { listen = \"[::1]:0\"; };\n"
  "log = { level = \"debug\"; format = \"text\"; };\n";

static const char *property(const struct dw_config *cfg, const char *name)
{
  for (size_t i = 0; i < cfg->kafka.properties_count; i++)
    if (strcmp(cfg->kafka.properties[i].name, name) == 0)
      return cfg->kafka.properties[i].value;
  return NULL;
}

static void test_full_file(void **state)
{
  struct loaded l;
  char *const env[] = {"HOME=/nowhere", "PATH=/bin", "DELIVERY_WORKERS=1", NULL};
  (void)state;
  load(&l, full_file, env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.kafka.brokers, "k1:9092,k2:9092");
  assert_string_equal(l.cfg.kafka.group_id, "g");
  assert_string_equal(l.cfg.kafka.input_topic, "in");
  assert_string_equal(l.cfg.kafka.results_topic, "out");
  assert_string_equal(l.cfg.kafka.dlq_topic, "dlq");
  assert_int_equal(l.cfg.kafka.properties_count, 6);
  assert_string_equal(l.cfg.kafka.properties[0].name, "security.protocol");
  assert_string_equal(property(&l.cfg, "security.protocol"), "SASL_SSL");
  assert_string_equal(property(&l.cfg, "sasl.password"), "pw");
  assert_string_equal(property(&l.cfg, "session.timeout.ms"), "6000");
  assert_string_equal(property(&l.cfg, "enable.idempotence"), "true");
  assert_string_equal(property(&l.cfg, "big"), "10000000000");
  assert_string_equal(property(&l.cfg, "ratio"), "0.5");
  assert_int_equal(l.cfg.kafka.commit_interval_ms, 500);
  assert_string_equal(l.cfg.feishu.base_url, "http://127.0.0.1:8080");
  assert_string_equal(l.cfg.feishu.app_id, "cli_abc");
  assert_string_equal(l.cfg.feishu.app_secret, "file-secret");
  assert_int_equal(l.cfg.feishu.request_timeout_ms, 20000);
  assert_int_equal(l.cfg.feishu.connect_timeout_ms, 1000);
  assert_int_equal(l.cfg.feishu.max_connections, 8);
  assert_int_equal(l.cfg.feishu.max_response_bytes, 1048576);
  assert_int_equal(l.cfg.feishu.rate_per_second, 0);
  assert_int_equal(l.cfg.feishu.rate_per_minute, 0);
  assert_int_equal(l.cfg.feishu.token_refresh_margin_s, 600);
  assert_string_equal(l.cfg.poll.schedule, "fixed");
  assert_int_equal(l.cfg.poll.first_delay_ms, 0);
  assert_int_equal(l.cfg.poll.interval_ms, 100);
  assert_int_equal(l.cfg.poll.max_interval_ms, 100);
  assert_true(l.cfg.poll.multiplier == 2.0);
  assert_true(l.cfg.poll.jitter == 0.0);
  assert_int_equal(l.cfg.poll.deadline_ms, 60000);
  assert_int_equal(l.cfg.poll.retry_initial_ms, 10);
  assert_int_equal(l.cfg.poll.retry_max_ms, 1000);
  assert_int_equal(l.cfg.worker.max_in_flight, 100);
  assert_int_equal(l.cfg.worker.resume_in_flight, 50);
  assert_int_equal(l.cfg.worker.drain_timeout_ms, 0);
  assert_int_equal(l.cfg.worker.max_event_bytes, 4096);
  assert_string_equal(l.cfg.admin.listen, "[::1]:0");
  assert_string_equal(l.cfg.log.level, "debug");
  assert_string_equal(l.cfg.log.format, "text");
  dw_config_cleanup(&l.cfg);
}

static void test_design_example(void **state)
{
  /* A full example config, with an empty properties group. */
  static const char example[] =
    "kafka = {\n"
    "  brokers       = \"127.0.0.1:9092\";                # bootstrap servers\n"
    "  group_id      = \"delivery-worker\";\n"
    "  input_topic   = \"hire.delivery_tasks.created\";\n"
    "  results_topic = \"hire.delivery_tasks.resolved\";\n"
    "  dlq_topic     = \"hire.delivery_tasks.dlq\";\n"
    "  properties    = { };                             # passed verbatim\n"
    "};\n"
    "feishu = {\n"
    "  base_url   = \"https://open.feishu.cn\";\n"
    "  app_id     = \"cli_xxx\";\n"
    "  app_secret = \"\";                                  # better: env\n"
    "};\n"
    "admin = {\n"
    "  listen = \"0.0.0.0:9464\";\n"
    "};\n";
  char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_SECRET=s", NULL};
  struct loaded l;
  (void)state;
  load(&l, example, env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.feishu.app_id, "cli_xxx");
  assert_string_equal(l.cfg.feishu.app_secret, "s");
  assert_int_equal(l.cfg.kafka.properties_count, 0);
  dw_config_cleanup(&l.cfg);
}

static void test_file_errors(void **state)
{
  (void)state;
  expect_error("kafka = {\n  brokers = \"a:1\";\n  group_id = ;\n};\n", minimal_env, 3,
               "syntax error");
  expect_error("kafka = {\n  broker = \"a:1\";\n};\n", minimal_env, 2,
               "unknown key \"kafka.broker\" (did you mean \"kafka.brokers\"?)");
  expect_error("\n\nbrokers = \"a:1\";\n", minimal_env, 3,
               "unknown key \"brokers\" (did you mean \"kafka.brokers\"?)");
  expect_error("kafak = { };\n", minimal_env, 1,
               "unknown key \"kafak\" (did you mean \"kafka\"?)");
  expect_error("x = { y = 1; };\n", minimal_env, 1, "unknown key \"x\"");
  expect_error("kafka = 3;\n", minimal_env, 1, "kafka must be a group: kafka = { ... };");
  expect_error("kafka = {\n\n  group_id = 7;\n};\n", minimal_env, 3,
               "kafka.group_id must be a string");
  expect_error("kafka = { commit_interval_ms = \"5\"; };\n", minimal_env, 1,
               "kafka.commit_interval_ms must be an integer");
  expect_error("kafka = { commit_interval_ms = 5.0; };\n", minimal_env, 1,
               "kafka.commit_interval_ms must be an integer");
  expect_error("kafka = {\n commit_interval_ms = 5;\n};\n", minimal_env, 2,
               "kafka.commit_interval_ms must be between 10 and 60000, got 5");
  expect_error("kafka = { commit_interval_ms = 99999999999L; };\n", minimal_env, 1,
               "kafka.commit_interval_ms must be between 10 and 60000, got 99999999999");
  expect_error("poll = {\n\n\n\n\n\n  jitter = 1.5;\n};\n", minimal_env, 7,
               "poll.jitter must be between 0 and 1, got 1.5");
  expect_error("poll = { multiplier = \"2\"; };\n", minimal_env, 1,
               "poll.multiplier must be a number");
  expect_error("poll = { schedule = \"linear\"; };\n", minimal_env, 1,
               "poll.schedule must be one of adaptive, exponential, fixed, got \"linear\"");
  expect_error("log = { level = \"verbose\"; };\n", minimal_env, 1,
               "log.level must be one of debug, info, warn, error, got \"verbose\"");
  expect_error("log = { format = \"xml\"; };\n", minimal_env, 1,
               "log.format must be one of json, text, got \"xml\"");
  expect_error("feishu = { base_url = \"ftp://x\"; };\n", minimal_env, 1,
               "feishu.base_url must start with http:// or https://, got \"ftp://x\"");
  expect_error("feishu = { base_url = \"https:///\"; };\n", minimal_env, 1,
               "feishu.base_url must name a host after the scheme, got \"https:///\"");
  expect_error("limits = { store = \"localhost:6379\"; };\n", minimal_env, 1,
               "limits.store must be redis://HOST:PORT (like redis://127.0.0.1:6379) or empty, "
               "got \"localhost:6379\"");
  expect_error("limits = { store = \"redis://::1:6379\"; };\n", minimal_env, 1,
               "limits.store must put an IPv6 address in brackets (like redis://[::1]:6379), got "
               "\"redis://::1:6379\"");
  expect_error("limits = { store = \"redis://h:0\"; };\n", minimal_env, 1,
               "limits.store must end with a port between 1 and 65535 (redis://HOST:PORT), got "
               "\"redis://h:0\"");
  expect_error("limits = { share = \"equal\"; };\n", minimal_env, 1,
               "limits.share must be one of partitions, whole, got \"equal\"");
  expect_error("limits = { jitter_ms = 900; };\n", minimal_env, 1,
               "limits.jitter_ms must be between 0 and 500, got 900");
  expect_error("admin = { listen = \"9464\"; };\n", minimal_env, 1,
               "admin.listen must be host:port (like 0.0.0.0:9464 or [::]:9464), got \"9464\"");
  expect_error("admin = { listen = \"::1:9464\"; };\n", minimal_env, 1,
               "admin.listen must put an IPv6 address in brackets (like [::1]:9464), got "
               "\"::1:9464\"");
  expect_error("admin = { listen = \"h:70000\"; };\n", minimal_env, 1,
               "admin.listen must end with a port number 0-65535, got \"h:70000\"");
  expect_error("kafka = { input_topic = \"a b\"; };\n", minimal_env, 1,
               "kafka.input_topic must be a Kafka topic name (1-249 characters of A-Z a-z "
               "0-9 . _ -), got \"a b\"");
  expect_error("kafka = {\n dlq_topic = \"hire.delivery_tasks.created\";\n};\n", minimal_env,
               2,
               "kafka.dlq_topic must differ from kafka.input_topic (both "
               "\"hire.delivery_tasks.created\")");
  expect_error("kafka = {\n brokers = \"\";\n};\n", minimal_env, 2,
               "kafka.brokers must not be empty (set it in the file or with "
               "DELIVERY_WORKER_KAFKA_BROKERS)");
  expect_error("poll = {\n  max_interval_ms = 1000;\n};\n", minimal_env, 2,
               "poll.max_interval_ms must be at least poll.interval_ms (2000), got 1000");
  expect_error("poll = {\n  interval_ms = 20000;\n};\n", minimal_env, 2,
               "poll.interval_ms must be at most poll.max_interval_ms (15000), got 20000");
  expect_error("worker = {\n  max_in_flight = 10;\n  resume_in_flight = 11;\n};\n",
               minimal_env, 2, "worker.max_in_flight must be at least "
                               "worker.resume_in_flight (11), got 10");
  expect_error("kafka = { group_id = \"a\"; group_id = \"b\"; };\n", minimal_env, 1,
               "duplicate setting name");
}

static void test_missing_file(void **state)
{
  struct dw_config cfg;
  char err[ERRLEN];
  (void)state;
  dw_config_init(&cfg);
  assert_int_not_equal(dw_config_load(&cfg, "/nonexistent/worker.conf", minimal_env, err,
                                      sizeof(err)),
                       0);
  assert_string_equal(err, "/nonexistent/worker.conf: cannot open: No such file or directory");
  dw_config_cleanup(&cfg);
  dw_config_init(&cfg);
  assert_int_not_equal(dw_config_load(&cfg, "/tmp", minimal_env, err, sizeof(err)), 0);
  assert_string_equal(err, "/tmp: cannot open: Is a directory");
  dw_config_cleanup(&cfg);
}

static void test_required(void **state)
{
  char *const no_id[] = {"DELIVERY_WORKER_FEISHU_APP_SECRET=s", NULL};
  char *const no_secret[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli", NULL};
  (void)state;
  expect_error("", no_id, 0,
               "feishu.app_id must not be empty (set it in the file or with "
               "DELIVERY_WORKER_FEISHU_APP_ID)");
  expect_error("feishu = {\n app_id = \"\";\n};\n", no_id, 2,
               "feishu.app_id must not be empty (set it in the file or with "
               "DELIVERY_WORKER_FEISHU_APP_ID)");
  expect_error("", no_secret, 0,
               "feishu.app_secret is empty: set it, feishu.app_secret_file, or "
               "DELIVERY_WORKER_FEISHU_APP_SECRET");
  expect_error(NULL, no_secret, 0,
               "configuration: feishu.app_secret is empty: set it, feishu.app_secret_file, "
               "or DELIVERY_WORKER_FEISHU_APP_SECRET");
}

static void test_env_overrides(void **state)
{
  struct loaded l;
  char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_env",
                       "DELIVERY_WORKER_FEISHU_APP_SECRET=sec",
                       "DELIVERY_WORKER_KAFKA_BROKERS=b1:9092",
                       "DELIVERY_WORKER_POLL_FIRST_DELAY_MS=250",
                       "DELIVERY_WORKER_POLL_JITTER=0.5",
                       "DELIVERY_WORKER_POLL_MULTIPLIER=3",
                       "DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT=100",
                       "DELIVERY_WORKER_FEISHU_BASE_URL=https://open.larksuite.com//",
                       "OTHER=1",
                       "DELIVERY_WORKER",
                       NULL};
  (void)state;
  load(&l, "kafka = { brokers = \"file:9092\"; };\npoll = { jitter = 0.1; };\n", env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.feishu.app_id, "cli_env");
  assert_string_equal(l.cfg.kafka.brokers, "b1:9092");
  assert_int_equal(l.cfg.poll.first_delay_ms, 250);
  assert_true(l.cfg.poll.jitter == 0.5);
  assert_true(l.cfg.poll.multiplier == 3.0);
  assert_int_equal(l.cfg.worker.max_in_flight, 100);
  assert_int_equal(l.cfg.worker.resume_in_flight, 80); /* derived: not set */
  assert_string_equal(l.cfg.feishu.base_url, "https://open.larksuite.com");
  dw_config_cleanup(&l.cfg);
}

static void test_env_errors(void **state)
{
  char *const jitter[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a", "DELIVERY_WORKER_POLL_JITTER=x",
                          NULL};
  char *const jitter2[] = {"DELIVERY_WORKER_POLL_JITTER=2", NULL};
  char *const intbad[] = {"DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS=10ms", NULL};
  char *const intrange[] = {"DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS=5", NULL};
  char *const intempty[] = {"DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS=", NULL};
  char *const typo[] = {"DELIVERY_WORKER_KAFKA_BROKER=x:1", NULL};
  char *const unknown[] = {"DELIVERY_WORKER_NOTHING_LIKE_THIS_AT_ALL=1", NULL};
  char *const level[] = {"DELIVERY_WORKER_LOG_LEVEL=trace", NULL};
  char *const order[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a", "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_POLL_RETRY_MAX_MS=100", NULL};
  (void)state;
  expect_error(NULL, jitter, 0,
               "environment: DELIVERY_WORKER_POLL_JITTER: must be between 0 and 1, got \"x\"");
  expect_error("", jitter2, -1,
               "environment: DELIVERY_WORKER_POLL_JITTER: must be between 0 and 1, got \"2\"");
  expect_error("", intbad, -1,
               "environment: DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS: must be an integer "
               "between 10 and 60000, got \"10ms\"");
  expect_error("", intrange, -1,
               "environment: DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS: must be an integer "
               "between 10 and 60000, got \"5\"");
  expect_error("", intempty, -1,
               "environment: DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS: must be an integer "
               "between 10 and 60000, got \"\"");
  expect_error("", typo, -1,
               "environment: DELIVERY_WORKER_KAFKA_BROKER: unknown variable (did you mean "
               "DELIVERY_WORKER_KAFKA_BROKERS?)");
  expect_error("", unknown, -1,
               "environment: DELIVERY_WORKER_NOTHING_LIKE_THIS_AT_ALL: unknown variable");
  expect_error("", level, -1,
               "environment: DELIVERY_WORKER_LOG_LEVEL: must be one of debug, info, warn, "
               "error, got \"trace\"");
  expect_error("", order, -1,
               "environment: DELIVERY_WORKER_POLL_RETRY_MAX_MS: must be at least "
               "poll.retry_initial_ms (500), got 100");
}

static void test_secret_file(void **state)
{
  char conf[512];
  char *const env_id[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli", NULL};
  const char *secret;
  struct loaded l;
  (void)state;
  secret = write_tmp("  s3cret value \t\n\n");
  snprintf(conf, sizeof(conf), "feishu = {\n  app_secret_file = \"%s\";\n};\n", secret);
  load(&l, conf, env_id);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.feishu.app_secret, "  s3cret value");
  assert_string_equal(l.cfg.feishu.app_secret_file, secret);
  dw_config_cleanup(&l.cfg);

  /* Both set: an error at the file key. */
  snprintf(conf, sizeof(conf), "feishu = {\n  app_secret = \"x\";\n  app_secret_file = \"%s\";\n};\n",
           secret);
  expect_error(conf, env_id, 3,
               "feishu.app_secret_file cannot be used together with feishu.app_secret: set only "
               "one of feishu.app_secret and feishu.app_secret_file");

  /* An empty secret file. */
  {
    char msg[256];
    const char *empty = write_tmp("\n \n");
    snprintf(conf, sizeof(conf), "feishu = {\n  app_secret_file = \"%s\";\n};\n", empty);
    snprintf(msg, sizeof(msg), "feishu.app_secret_file \"%s\" is empty", empty);
    expect_error(conf, env_id, 2, msg);
  }
  /* A missing one. */
  expect_error("feishu = {\n  app_secret_file = \"/nonexistent/secret\";\n};\n", env_id, 2,
               "feishu.app_secret_file cannot open \"/nonexistent/secret\": No such file or "
               "directory");
  /* From the environment. */
  {
    char var[128];
    char *env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli", var, NULL};
    snprintf(var, sizeof(var), "DELIVERY_WORKER_FEISHU_APP_SECRET_FILE=%s", secret);
    load(&l, NULL, env);
    assert_string_equal(l.err, "");
    assert_string_equal(l.cfg.feishu.app_secret, "  s3cret value");
    dw_config_cleanup(&l.cfg);
  }
}

/* feishu.ca_file: a readable file with a PEM certificate; "" is the system's bundle. */
static void test_ca_file(void **state)
{
  char conf[512], msg[512];
  const char *ca, *junk;
  struct loaded l;
  (void)state;
  load(&l, NULL, minimal_env);
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.feishu.ca_file, "");
  dw_config_cleanup(&l.cfg);

  ca = write_tmp("# bundle\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  snprintf(conf, sizeof(conf), "feishu = {\n  ca_file = \"%s\";\n};\n", ca);
  load(&l, conf, minimal_env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg.feishu.ca_file, ca);
  dw_config_cleanup(&l.cfg);

  expect_error("feishu = {\n  ca_file = \"/nonexistent/ca.pem\";\n};\n", minimal_env, 2,
               "feishu.ca_file cannot open \"/nonexistent/ca.pem\": No such file or directory");
  expect_error("feishu = {\n  ca_file = \"/tmp\";\n};\n", minimal_env, 2,
               "feishu.ca_file \"/tmp\" is a directory, not a regular file");
  junk = write_tmp("not a certificate\n");
  snprintf(conf, sizeof(conf), "feishu = {\n  ca_file = \"%s\";\n};\n", junk);
  snprintf(msg, sizeof(msg),
           "feishu.ca_file \"%s\" holds no PEM certificate (-----BEGIN CERTIFICATE-----)", junk);
  expect_error(conf, minimal_env, 2, msg);
  {
    char var[128];
    char *env[] = {minimal_env[0], minimal_env[1], var, NULL};
    snprintf(var, sizeof(var), "DELIVERY_WORKER_FEISHU_CA_FILE=%s", ca);
    load(&l, NULL, env);
    assert_string_equal(l.err, "");
    assert_string_equal(l.cfg.feishu.ca_file, ca);
    dw_config_cleanup(&l.cfg);
  }
  /* Commands that never call the API do not need it. */
  dw_config_init(&l.cfg);
  l.rc = dw_config_load_kafka(&l.cfg, NULL,
                              (char *const[]){"DELIVERY_WORKER_FEISHU_APP_ID=cli",
                                               "DELIVERY_WORKER_FEISHU_CA_FILE=/nonexistent", NULL},
                              l.err, sizeof(l.err));
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  dw_config_cleanup(&l.cfg);
}

static void test_properties(void **state)
{
  struct loaded l;
  char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a", "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                       "DELIVERY_WORKER_KAFKA_PROPERTIES=security.protocol=SSL,"
                       "debug=broker\\,topic,,sasl.oauthbearer.config=a=b c",
                       NULL};
  (void)state;
  load(&l,
       "kafka = {\n properties = (\n  (\"security.protocol\", \"PLAINTEXT\"),\n"
       "  (\"linger.ms\", 5)\n );\n};\n",
       env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.cfg.kafka.properties_count, 4);
  assert_string_equal(property(&l.cfg, "security.protocol"), "SSL");
  assert_string_equal(property(&l.cfg, "linger.ms"), "5");
  assert_string_equal(property(&l.cfg, "debug"), "broker,topic");
  assert_string_equal(property(&l.cfg, "sasl.oauthbearer.config"), "a=b c");
  dw_config_cleanup(&l.cfg);

  load(&l, "kafka = { properties = [ ]; };\n", minimal_env);
  assert_int_equal(l.rc, 0);
  dw_config_cleanup(&l.cfg);

  expect_error("kafka = {\n properties = {\n  debug = \"all\";\n };\n};\n", minimal_env, 3,
               "kafka.properties must be a list of (\"name\", value) pairs, like ( "
               "(\"security.protocol\", \"SSL\"), (\"session.timeout.ms\", 6000) ) (libconfig "
               "names cannot contain the dots of librdkafka names)");
  expect_error("kafka = {\n properties = (\n  (\"a\", 1),\n  (\"b\")\n );\n};\n", minimal_env,
               4,
               "kafka.properties must be a list of (\"name\", value) pairs, like ( "
               "(\"security.protocol\", \"SSL\"), (\"session.timeout.ms\", 6000) )");
  expect_error("kafka = { properties = \"x\"; };\n", minimal_env, 1,
               "kafka.properties must be a list of (\"name\", value) pairs, like ( "
               "(\"security.protocol\", \"SSL\"), (\"session.timeout.ms\", 6000) )");
  expect_error("kafka = {\n properties = ( (\"a\", 1),\n (\"a\", 2) );\n};\n", minimal_env, 3,
               "kafka.properties sets \"a\" twice");
  expect_error("kafka = {\n properties = ( (\"a\", (1, 2)) );\n};\n", minimal_env, 2,
               "kafka.properties value of \"a\" must be a string, number or boolean");
  expect_error("kafka = {\n properties = ( (\"bootstrap.servers\", \"x:1\") );\n};\n",
               minimal_env, 2,
               "kafka.properties set the brokers with kafka.brokers, not as a property, got "
               "\"bootstrap.servers\"");
  expect_error("kafka = {\n properties = ( (\"a b\", \"x\") );\n};\n", minimal_env, 2,
               "kafka.properties a property name may only hold A-Z a-z 0-9 . _ -, got \"a b\"");
  {
    char *const bad[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=debug", NULL};
    expect_error("", bad, -1,
                 "environment: DELIVERY_WORKER_KAFKA_PROPERTIES: entry \"debug\" must be "
                 "name=value");
  }
  {
    char *const group[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=group.id=x", NULL};
    expect_error("", group, -1,
                 "environment: DELIVERY_WORKER_KAFKA_PROPERTIES: set the group with "
                 "kafka.group_id, not as a property, got \"group.id\"");
  }
  assert_true(dw_config_property_is_secret("ssl.keystore.password"));
  assert_true(dw_config_property_is_secret("sasl.oauthbearer.client.secret"));
  assert_true(dw_config_property_is_secret("sasl.oauthbearer.config"));
  assert_false(dw_config_property_is_secret("sasl.username"));
}

/* Cleans up a load and removes its file at once (for loops of many loads). */
static void drop(struct loaded *l)
{
  dw_config_cleanup(&l->cfg);
  if (l->path) {
    unlink(l->path);
    tmp_count--;
  }
}

/* Integers libconfig 1.5 cannot hold (it keeps 32 bits of 4294967297, and saturates past 64
 * bits) are read as written and range-checked, from the file and from the environment. */
static void test_wide_integers(void **state)
{
  struct loaded l;
  (void)state;
  expect_error("kafka = { commit_metadata_max_bytes = 4294967296; };\n", minimal_env, 1,
               "kafka.commit_metadata_max_bytes must be between 0 and 1048576, got "
               "4294967296");
  expect_error("worker = {\n  max_in_flight = 4294967297;\n};\n", minimal_env, 2,
               "worker.max_in_flight must be between 1 and 1000000, got 4294967297");
  expect_error("worker = {\n  max_in_flight =\n    4294967297;\n};\n", minimal_env, 2,
               "worker.max_in_flight must be between 1 and 1000000, got 4294967297");
  expect_error("worker = { drain_timeout_ms = 0; max_in_flight = 4294967297; };\n",
               minimal_env, 1,
               "worker.max_in_flight must be between 1 and 1000000, got 4294967297");
  expect_error("poll = { first_delay_ms = -4294967296; };\n", minimal_env, 1,
               "poll.first_delay_ms must be between 0 and 3600000, got -4294967296");
  expect_error("worker = { max_in_flight = 0x100000001; };\n", minimal_env, 1,
               "worker.max_in_flight must be between 1 and 1000000, got 4294967297");
  expect_error("worker = { max_in_flight = 99999999999999999999L; };\n", minimal_env, 1,
               "worker.max_in_flight must be between 1 and 1000000, got "
               "99999999999999999999L");
  expect_error("poll = { multiplier = 4294967297; };\n", minimal_env, 1,
               "poll.multiplier must be between 1 and 10, got 4.29497e+09");
  expect_error("kafka = {\n  properties = ( (\"queue.buffering.max.kbytes\", 4294967296) );\n"
               "};\n",
               minimal_env, 2,
               "integer 4294967296 does not fit in 32 bits, which libconfig would silently "
               "wrap: write 4294967296L");
  /* Comments and strings are not values; L literals and values in range are fine. */
  load(&l,
       "# max_in_flight = 4294967297;\n"
       "worker = { max_in_flight = 100000L; /* 4294967297 */ resume_in_flight = 0x10; };\n"
       "kafka = { group_id = \"g 4294967297\"; properties = ( (\"big\", 4294967296L) ); };\n",
       minimal_env);
  assert_string_equal(l.err, "");
  assert_int_equal(l.cfg.worker.max_in_flight, 100000);
  assert_int_equal(l.cfg.worker.resume_in_flight, 16);
  assert_string_equal(property(&l.cfg, "big"), "4294967296");
  drop(&l);
  {
    char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a",
                         "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT=4294967297", NULL};
    expect_error(NULL, env, -1,
                 "environment: DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT: must be an integer "
                 "between 1 and 1000000, got \"4294967297\"");
  }
  {
    char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a",
                         "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_KAFKA_COMMIT_METADATA_MAX_BYTES=18446744073709551616",
                         NULL};
    expect_error(NULL, env, -1,
                 "environment: DELIVERY_WORKER_KAFKA_COMMIT_METADATA_MAX_BYTES: must be an "
                 "integer between 0 and 1048576, got \"18446744073709551616\"");
  }
}

/* The same through an @include, inside the including file's group. */
static void test_wide_integers_include(void **state)
{
  char dir[] = "/tmp/dw_test_configdirXXXXXX";
  char main_path[128], inc_path[128], want[512];
  struct dw_config cfg;
  char err[ERRLEN];
  FILE *fp;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
  snprintf(inc_path, sizeof(inc_path), "%s/inc.conf", dir);
  fp = fopen(inc_path, "w");
  assert_non_null(fp);
  fputs("\n  max_in_flight = 4294967297;\n", fp);
  fclose(fp);
  fp = fopen(main_path, "w");
  assert_non_null(fp);
  fputs("worker = {\n  @include \"inc.conf\"\n};\n", fp);
  fclose(fp);
  dw_config_init(&cfg);
  assert_int_equal(dw_config_load(&cfg, main_path, minimal_env, err, sizeof(err)), DW_EINVAL);
  snprintf(want, sizeof(want),
           "%s:2: worker.max_in_flight must be between 1 and 1000000, got 4294967297",
           inc_path);
  assert_string_equal(err, want);
  dw_config_cleanup(&cfg);
  unlink(inc_path);
  unlink(main_path);
  rmdir(dir);
}

/* feishu.base_url is a URL as libcurl parses it; user:password is refused and never
 * repeated. */
static void test_base_url(void **state)
{
  static const struct {
    const char *url, *why;
  } bad[] = {
    {"http://user:hunter2@open.feishu.cn", "must not hold a user name or password"},
    {"https://hunter2@open.feishu.cn/", "must not hold a user name or password"},
    {"http://:hunter2@host", "must not hold a user name or password"},
    {"ftp://user:hunter2@host", "must start with http:// or https://"},
    {"http://host?x=1", "must not have a query"},
    {"http://host/x?", "must not have a query"},
    {"http://host#frag", "must not have a fragment"},
    {"http://[::1", "an IPv6 address goes in closed brackets"},
    {"http://[::1/x", "an IPv6 address goes in closed brackets"},
    {"http://host:99999", "the port must be a number 1-65535"},
    {"http://:8080", "a host name or address after the scheme"},
  };
  struct loaded l;
  char conf[2048];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    snprintf(conf, sizeof(conf), "feishu = { base_url = \"%s\"; };\n", bad[i].url);
    load(&l, conf, minimal_env);
    if (l.rc == 0 || !strstr(l.err, bad[i].why) || strstr(l.err, "hunter2"))
      fail_msg("%s: %s", bad[i].url, l.err);
    drop(&l);
  }
  {
    char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a",
                         "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_FEISHU_BASE_URL=https://me:hunter2@open.feishu.cn", NULL};
    expect_error(NULL, env, -1,
                 "environment: DELIVERY_WORKER_FEISHU_BASE_URL: must not hold a user name or "
                 "password (credentials in a URL end up in logs and check-config output), got "
                 "\"https://<redacted>@open.feishu.cn\"");
  }
}

/* Values the worker builds request URLs and other ids from are bounded, so those are never
 * cut: feishu.base_url (a long one is kept whole, as a gateway's path prefix) and the Kafka
 * ids a transactional id or a group id is made of. */
static void test_bounds(void **state)
{
  struct loaded l;
  char conf[2048];
  (void)state;
  {
    char url[1100];
    size_t n = (size_t)snprintf(url, sizeof(url), "http://[::1]:8080/");
    while (n < 1024)
      url[n++] = 'p';
    url[n] = '\0';
    snprintf(conf, sizeof(conf), "feishu = { base_url = \"%s/\"; };\n", url);
    load(&l, conf, minimal_env);
    assert_string_equal(l.err, "");
    assert_string_equal(l.cfg.feishu.base_url, url);
    drop(&l);
    url[n++] = 'p';
    url[n] = '\0';
    snprintf(conf, sizeof(conf), "feishu = { base_url = \"%s\"; };\n", url);
    load(&l, conf, minimal_env);
    assert_int_equal(l.rc, DW_EINVAL);
    assert_non_null(strstr(l.err, "feishu.base_url must be at most 1024 bytes"));
    drop(&l);
  }
  for (size_t i = 0; i < 3; i++) {
    static const char *const keys[] = {"group_id", "group_instance_id", "transactional_id"};
    char id[256], want[64];
    memset(id, 'g', 200);
    id[200] = '\0';
    snprintf(conf, sizeof(conf), "kafka = { %s = \"%s\"; };\n", keys[i], id);
    load(&l, conf, minimal_env);
    assert_string_equal(l.err, "");
    drop(&l);
    snprintf(conf, sizeof(conf), "kafka = { %s = \"%sg\"; };\n", keys[i], id);
    load(&l, conf, minimal_env);
    snprintf(want, sizeof(want), "kafka.%s must be at most 200 bytes", keys[i]);
    assert_int_equal(l.rc, DW_EINVAL);
    assert_non_null(strstr(l.err, want));
    drop(&l);
  }
}

/* kafka.properties that would lose or duplicate tasks are refused, whatever the spelling,
 * naming the property and the key that does its job; TLS weakenings need
 * kafka.allow_insecure_tls. */
static void test_properties_refused(void **state)
{
  static const struct {
    const char *name, *value, *needle;
  } bad[] = {
    {"enable.auto.commit", "true", "kafka.commit_interval_ms"},
    {"enable.auto.commit", "TRUE", "kafka.commit_interval_ms"},
    {"enable.auto.commit", "1", "kafka.commit_interval_ms"},
    {"auto.commit.enable", "t", "kafka.commit_interval_ms"},
    {"enable.auto.offset.store", "true", "kafka.commit_interval_ms"},
    {"offset.store.method", "file", "kafka.commit_interval_ms"},
    {"acks", "0", "acks = all"},
    {"acks", "1", "acks = all"},
    {"request.required.acks", "0", "acks = all"},
    {"enable.idempotence", "false", "always idempotent"},
    {"transactional.id", "x", "kafka.transactional_id"},
    {"group.instance.id", "x", "kafka.group_instance_id"},
    {"partition.assignment.strategy", "range", "cooperative-sticky"},
    {"enable.ssl.certificate.verification", "false", "kafka.allow_insecure_tls = true"},
    {"ssl.endpoint.identification.algorithm", "none", "kafka.allow_insecure_tls = true"},
  };
  static const char *const good[] = {
    "enable.auto.commit", "false", "enable.auto.offset.store", "f", "acks", "all",
    "request.required.acks", "-1", "enable.idempotence", "true", "offset.store.method",
    "broker", "isolation.level", "read_uncommitted", "enable.ssl.certificate.verification",
    "true", "ssl.endpoint.identification.algorithm", "https",
  };
  struct loaded l;
  char conf[512], envvar[256], want[512];
  (void)state;
  for (size_t i = 0; i < DW_ARRAY_SIZE(bad); i++) {
    snprintf(conf, sizeof(conf),
             "kafka = {\n  properties = (\n    (\"linger.ms\", 5),\n    (\"%s\", \"%s\")\n  );\n"
             "};\n",
             bad[i].name, bad[i].value);
    load(&l, conf, minimal_env);
    snprintf(want, sizeof(want), "%s:4: kafka.properties sets %s = \"%s\", which ", l.path,
             bad[i].name, bad[i].value);
    if (l.rc == 0 || strncmp(l.err, want, strlen(want)) != 0 || !strstr(l.err, bad[i].needle))
      fail_msg("%s = %s: %s", bad[i].name, bad[i].value, l.err);
    drop(&l);
    /* The environment too. */
    snprintf(envvar, sizeof(envvar), "DELIVERY_WORKER_KAFKA_PROPERTIES=%s=%s", bad[i].name,
             bad[i].value);
    {
      char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a",
                           "DELIVERY_WORKER_FEISHU_APP_SECRET=b", envvar, NULL};
      load(&l, NULL, env);
      snprintf(want, sizeof(want),
               "environment: DELIVERY_WORKER_KAFKA_PROPERTIES: sets %s = \"%s\", which ",
               bad[i].name, bad[i].value);
      if (l.rc == 0 || strncmp(l.err, want, strlen(want)) != 0)
        fail_msg("env %s = %s: %s", bad[i].name, bad[i].value, l.err);
      drop(&l);
    }
  }
  for (size_t i = 0; i < DW_ARRAY_SIZE(good); i += 2) {
    snprintf(conf, sizeof(conf), "kafka = { properties = ( (\"%s\", \"%s\") ); };\n", good[i],
             good[i + 1]);
    load(&l, conf, minimal_env);
    if (l.rc != 0)
      fail_msg("%s = %s: %s", good[i], good[i + 1], l.err);
    drop(&l);
  }
  /* An environment override of a file's refused value settles it. */
  {
    char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a", "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_KAFKA_PROPERTIES=enable.auto.commit=false", NULL};
    load(&l, "kafka = { properties = ( (\"enable.auto.commit\", true) ); };\n", env);
    assert_string_equal(l.err, "");
    drop(&l);
  }
  /* read_uncommitted only breaks exactly-once. */
  expect_error("processing = { guarantee = \"exactly_once\"; };\n"
               "kafka = { properties = ( (\"isolation.level\", \"read_uncommitted\") ); };\n",
               minimal_env, 2,
               "kafka.properties sets isolation.level = \"read_uncommitted\", which would "
               "process input of aborted transactions: exactly-once reads only committed input "
               "(processing.guarantee = \"at_least_once\" if that is what you want)");
  /* TLS weakenings: allowed by the one key, then listed for the warning at start. */
  {
    char list[256];
    load(&l,
         "kafka = {\n  allow_insecure_tls = true;\n  properties = (\n"
         "    (\"enable.ssl.certificate.verification\", false),\n"
         "    (\"ssl.endpoint.identification.algorithm\", \"none\") );\n};\n",
         minimal_env);
    assert_string_equal(l.err, "");
    assert_int_equal(l.cfg.kafka.allow_insecure_tls, 1);
    assert_int_equal(dw_config_insecure_tls(&l.cfg, list, sizeof(list)), 2);
    assert_string_equal(list, "enable.ssl.certificate.verification=false, "
                              "ssl.endpoint.identification.algorithm=none");
    drop(&l);
  }
  {
    char list[256];
    char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=a", "DELIVERY_WORKER_FEISHU_APP_SECRET=b",
                         "DELIVERY_WORKER_KAFKA_ALLOW_INSECURE_TLS=true",
                         "DELIVERY_WORKER_KAFKA_PROPERTIES=enable.ssl.certificate.verification=0",
                         NULL};
    load(&l, NULL, env);
    assert_string_equal(l.err, "");
    assert_int_equal(dw_config_insecure_tls(&l.cfg, list, sizeof(list)), 1);
    drop(&l);
    load(&l, NULL, minimal_env);
    assert_int_equal(dw_config_insecure_tls(&l.cfg, list, sizeof(list)), 0);
    assert_string_equal(list, "");
    drop(&l);
  }
  expect_error("kafka = { allow_insecure_tls = 1; };\n", minimal_env, 1,
               "kafka.allow_insecure_tls must be true or false");
}

/* Files the config reads: only regular files, so a FIFO cannot hang check-config or the
 * start; files that report size 0 (/proc) are read to their end. */
static void test_file_kinds(void **state)
{
  char dir[] = "/tmp/dw_test_configdirXXXXXX";
  char fifo[128], conf[512], want[512];
  char *const env_id[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_test", NULL};
  struct loaded l;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  snprintf(conf, sizeof(conf), "feishu = {\n  app_secret_file = \"%s\";\n};\n", fifo);
  snprintf(want, sizeof(want),
           "feishu.app_secret_file \"%s\" is a FIFO (named pipe), not a regular file", fifo);
  expect_error(conf, env_id, 2, want);
  snprintf(conf, sizeof(conf), "feishu = {\n  ca_file = \"%s\";\n};\n", fifo);
  snprintf(want, sizeof(want), "feishu.ca_file \"%s\" is a FIFO (named pipe), not a regular file",
           fifo);
  expect_error(conf, minimal_env, 2, want);
  snprintf(conf, sizeof(conf),
           "feishu = {\n  app_type = \"store\";\n  app_ticket_file = \"%s\";\n};\n", fifo);
  snprintf(want, sizeof(want),
           "feishu.app_ticket_file \"%s\" is a FIFO (named pipe), not a regular file", fifo);
  expect_error(conf, minimal_env, 3, want);
  expect_error("feishu = {\n  app_secret_file = \"/dev/null\";\n};\n", env_id, 2,
               "feishu.app_secret_file \"/dev/null\" is a character device, not a regular "
               "file");
  /* st_size 0, content read to the end. */
  load(&l, "feishu = { app_secret_file = \"/proc/self/comm\"; };\n", env_id);
  assert_string_equal(l.err, "");
  assert_true(strlen(l.cfg.feishu.app_secret) > 0);
  drop(&l);
  expect_error("feishu = { app_secret_file = \"/proc/self/environ\"; };\n", env_id, 1,
               "feishu.app_secret_file \"/proc/self/environ\" holds a NUL byte");
  unlink(fifo);
  rmdir(dir);
}

/* Prints cfg into a string (caller frees). */
static char *print_to_string(const struct dw_config *cfg, int reference)
{
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  assert_non_null(fp);
  if (reference)
    dw_config_print_reference(fp);
  else
    dw_config_print(cfg, fp);
  fclose(fp);
  return text;
}

static void test_print(void **state)
{
  struct loaded l, again;
  char *const env[] = {"DELIVERY_WORKER_KAFKA_PROPERTIES=sasl.password=hunter2,"
                       "ssl.key.password=,client.id=a\"b\\\\c\n\x01",
                       NULL};
  char *const env_again[] = {"DELIVERY_WORKER_FEISHU_APP_SECRET=restored", NULL};
  char *text;
  (void)state;
  load(&l, full_file, env);
  assert_string_equal(l.err, "");
  text = print_to_string(&l.cfg, 0);
  assert_null(strstr(text, "file-secret"));
  assert_null(strstr(text, "hunter2"));
  assert_null(strstr(text, "\"pw\""));
  assert_non_null(strstr(text, "  app_secret = \"<redacted>\";\n"));
  assert_non_null(strstr(text, "(\"sasl.password\", \"<redacted>\")"));
  assert_non_null(strstr(text, "(\"ssl.key.password\", \"\")")); /* empty: shown as unset */
  assert_non_null(strstr(text, "(\"client.id\", \"a\\\"b\\\\c\\n\\x01\")"));
  assert_non_null(strstr(text, "  multiplier = 2.0;\n"));
  assert_non_null(strstr(text, "  base_url = \"http://127.0.0.1:8080\";\n"));
  for (size_t i = 0; i < DW_ARRAY_SIZE(all_keys); i++) {
    char key[64];
    const char *dot = strchr(all_keys[i], '.');
    snprintf(key, sizeof(key), "\n  %s = ", dot + 1);
    assert_non_null(strstr(text, key));
  }

  /* The output is a config file: it loads to the same values (the secret given again). */
  load(&again, text, env_again);
  assert_string_equal(again.err, "");
  assert_int_equal(again.rc, 0);
  free(text);
  assert_string_equal(again.cfg.feishu.app_secret, "restored");
  free(again.cfg.feishu.app_secret);
  again.cfg.feishu.app_secret = strdup(l.cfg.feishu.app_secret);
  for (size_t i = 0; i < again.cfg.kafka.properties_count; i++) {
    struct dw_config_property *p = &again.cfg.kafka.properties[i];
    if (strcmp(p->value, "<redacted>") == 0) {
      free(p->value);
      p->value = strdup(property(&l.cfg, p->name));
    }
  }
  {
    char *a = print_to_string(&l.cfg, 0);
    char *b = print_to_string(&again.cfg, 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  assert_int_equal(again.cfg.kafka.properties_count, l.cfg.kafka.properties_count);
  for (size_t i = 0; i < l.cfg.kafka.properties_count; i++) {
    assert_string_equal(again.cfg.kafka.properties[i].name, l.cfg.kafka.properties[i].name);
    assert_string_equal(again.cfg.kafka.properties[i].value, l.cfg.kafka.properties[i].value);
  }
  assert_true(again.cfg.poll.jitter == l.cfg.poll.jitter);
  dw_config_cleanup(&again.cfg);
  dw_config_cleanup(&l.cfg);
}

static void test_print_secret_file(void **state)
{
  char conf[256];
  char *const env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli", NULL};
  struct loaded l, again;
  char *text;
  (void)state;
  snprintf(conf, sizeof(conf), "feishu = { app_secret_file = \"%s\"; };\n",
           write_tmp("from-file\n"));
  load(&l, conf, env);
  assert_int_equal(l.rc, 0);
  text = print_to_string(&l.cfg, 0);
  assert_null(strstr(text, "from-file"));
  assert_non_null(strstr(text, "  app_secret = \"\"; # read from app_secret_file\n"));
  /* Loads again as it is: the secret comes from the file again. */
  load(&again, text, env);
  assert_string_equal(again.err, "");
  assert_string_equal(again.cfg.feishu.app_secret, "from-file");
  free(text);
  dw_config_cleanup(&again.cfg);
  dw_config_cleanup(&l.cfg);
}

static void test_print_reference(void **state)
{
  char *text = print_to_string(NULL, 1);
  (void)state;
  assert_non_null(strstr(text, "| key | type | default | env | description |\n"));
  for (size_t i = 0; i < DW_ARRAY_SIZE(all_keys); i++) {
    char cell[96], env[96];
    size_t n;
    snprintf(cell, sizeof(cell), "| `%s` |", all_keys[i]);
    assert_non_null(strstr(text, cell));
    n = (size_t)snprintf(env, sizeof(env), "`DELIVERY_WORKER_");
    for (const char *p = all_keys[i]; *p && n + 2 < sizeof(env); p++)
      env[n++] = *p == '.' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    env[n++] = '`';
    env[n] = '\0';
    assert_non_null(strstr(text, env));
  }
  assert_non_null(strstr(text, "`DELIVERY_WORKER_POLL_FIRST_DELAY_MS`"));
  assert_non_null(strstr(text, "Between 0 and 1."));
  assert_non_null(strstr(text, "One of `debug`, `info`, `warn`, `error`."));
  /* One row per key, plus the header and the separator. */
  {
    size_t lines = 0;
    for (const char *p = text; *p; p++)
      lines += *p == '\n';
    assert_int_equal(lines, DW_ARRAY_SIZE(all_keys) + 2);
  }
  free(text);
}

static void put_file(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void test_include_relative(void **state)
{
  char dir[] = "/tmp/dw_test_configdirXXXXXX";
  char main_path[128], inc_path[128];
  struct dw_config cfg;
  char err[ERRLEN];
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(main_path, sizeof(main_path), "%s/worker.conf", dir);
  snprintf(inc_path, sizeof(inc_path), "%s/kafka.conf", dir);
  put_file(inc_path, "kafka = {\n  group_id = \"from-include\";\n  dlq_topic = 5;\n};\n");
  put_file(main_path, "@include \"kafka.conf\"\n");
  dw_config_init(&cfg);
  assert_int_not_equal(dw_config_load(&cfg, main_path, minimal_env, err, sizeof(err)), 0);
  {
    char want[256];
    snprintf(want, sizeof(want), "%s:3: kafka.dlq_topic must be a string", inc_path);
    assert_string_equal(err, want);
  }
  assert_string_equal(cfg.kafka.group_id, "from-include");
  dw_config_cleanup(&cfg);
  unlink(inc_path);
  unlink(main_path);
  rmdir(dir);
}

/* An @include of something that is not a regular file is refused with its name: libconfig
 * 1.5's scanner ended the process (exit 2, "input in flex scanner failed") on a directory, the
 * including file's own for @include "" (fuzz.run found it), and would wait on a pipe. */
static void test_include_not_a_file(void **state)
{
  char dir[] = "/tmp/dw_test_configdirXXXXXX";
  char path[128], sub[128];
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/worker.conf", dir);
  snprintf(sub, sizeof(sub), "%s/conf.d", dir);
  assert_int_equal(mkdir(sub, 0700), 0);
  static const char *const texts[] = {"@include \"\"\n", "@include \"conf.d\"\n",
                                      "kafka = {\n  @include \"conf.d\"\n};\n"};
  static const char *const names[] = {"", "conf.d", "conf.d"};
  for (size_t i = 0; i < 3; i++) {
    struct dw_config cfg;
    char err[ERRLEN];
    put_file(path, texts[i]);
    dw_config_init(&cfg);
    assert_int_not_equal(dw_config_load(&cfg, path, minimal_env, err, sizeof(err)), 0);
    char want[512];
    snprintf(want, sizeof(want), "%s:%d: @include \"%s\": %s/%s is not a regular file", path,
             i == 2 ? 2 : 1, names[i], dir, names[i]);
    assert_string_equal(err, want);
    dw_config_cleanup(&cfg);
  }
  unlink(path);
  rmdir(sub);
  rmdir(dir);
}

/* The value and origin of property name in scope (NULL when not set). */
static const struct dw_config_property *scoped(const struct dw_config *cfg,
                                               enum dw_config_scope scope, const char *name)
{
  for (size_t i = 0; i < cfg->kafka.properties_count; i++)
    if (cfg->kafka.properties[i].scope == scope &&
        strcmp(cfg->kafka.properties[i].name, name) == 0)
      return &cfg->kafka.properties[i];
  return NULL;
}

/* Precedence: kafka.properties_file < kafka.properties (file < environment) < the consumer's
 * and producer's lists < -X; file < environment < --set for the worker's own keys. Each entry
 * says where it was set. */
static void test_property_sources(void **state)
{
  (void)state;
  char conf[1024], want[512];
  char err[ERRLEN];
  struct dw_config cfg;
  const char *props = write_tmp("# shared with kcat -F\n"
                                "client.id = from-file\n"
                                "socket.timeout.ms: 1000\n"
                                "linger.ms=1\n"
                                "fetch.wait.max.ms=10\n"
                                "client.id = from-file-again\n");
  snprintf(conf, sizeof(conf),
           "kafka = { properties_file = \"%s\";\n"
           "  properties = ( (\"socket.timeout.ms\", 2000), (\"linger.ms\", 2) );\n"
           "  consumer_properties = ( (\"fetch.wait.max.ms\", 20) );\n"
           "  producer_properties = ( (\"linger.ms\", 3) ); };\n"
           "poll = { first_delay_ms = 5; };\n",
           props);
  const char *path = write_tmp(conf);
  char *env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_test",
                 "DELIVERY_WORKER_FEISHU_APP_SECRET=env-secret",
                 "DELIVERY_WORKER_POLL_FIRST_DELAY_MS=6",
                 "DELIVERY_WORKER_KAFKA_PROPERTIES=socket.timeout.ms=3000", NULL};
  const char *set[] = {"poll.first_delay_ms=7"};
  const char *x[] = {"linger.ms=9"};
  struct dw_config_args args = {set, 1, x, 1};
  dw_config_init(&cfg);
  assert_int_equal(dw_config_load_args(&cfg, path, env, &args, 0, err, sizeof(err)), 0);
  assert_int_equal(cfg.poll.first_delay_ms, 7);
  assert_string_equal(dw_config_property(&cfg, "client.id"), "from-file-again");
  snprintf(want, sizeof(want), "%s:6", props);
  assert_string_equal(scoped(&cfg, DW_CONFIG_SHARED, "client.id")->where, want);
  assert_string_equal(dw_config_property(&cfg, "socket.timeout.ms"), "3000");
  assert_string_equal(scoped(&cfg, DW_CONFIG_SHARED, "socket.timeout.ms")->where,
                      "environment: DELIVERY_WORKER_KAFKA_PROPERTIES: kafka.properties");
  assert_string_equal(scoped(&cfg, DW_CONFIG_SHARED, "fetch.wait.max.ms")->value, "10");
  assert_string_equal(scoped(&cfg, DW_CONFIG_CONSUMER, "fetch.wait.max.ms")->value, "20");
  snprintf(want, sizeof(want), "%s:3: kafka.consumer_properties", path);
  assert_string_equal(scoped(&cfg, DW_CONFIG_CONSUMER, "fetch.wait.max.ms")->where, want);
  /* -X wins over every list, the producer's own included. */
  assert_string_equal(scoped(&cfg, DW_CONFIG_SHARED, "linger.ms")->value, "9");
  assert_string_equal(scoped(&cfg, DW_CONFIG_PRODUCER, "linger.ms")->value, "9");
  assert_string_equal(scoped(&cfg, DW_CONFIG_PRODUCER, "linger.ms")->where, "command line: -X");
  assert_null(scoped(&cfg, DW_CONFIG_CONSUMER, "linger.ms"));
  dw_config_cleanup(&cfg);
}

static void expect_args_error(const char *content, const struct dw_config_args *args,
                              const char *want)
{
  struct loaded l;
  dw_config_init(&l.cfg);
  l.path = content ? write_tmp(content) : NULL;
  l.rc = dw_config_load_args(&l.cfg, l.path, minimal_env, args, 0, l.err, sizeof(l.err));
  if (l.rc == 0 || strcmp(l.err, want) != 0)
    fail_msg("want \"%s\", got %d \"%s\"", want, l.rc, l.err);
  dw_config_cleanup(&l.cfg);
}

/* Refused properties and bad overrides name where they came from, from every source. */
static void test_property_source_errors(void **state)
{
  (void)state;
  char conf[512], want[1024];
  const char *refused = write_tmp("linger.ms=5\n\nacks = 0\n");
  snprintf(conf, sizeof(conf), "kafka = { properties_file = \"%s\"; };\n", refused);
  snprintf(want, sizeof(want),
           "%s:3: (kafka.properties_file) sets acks = \"0\", which lets a broker failure lose "
           "acknowledged results: the worker's producer needs acks = all (its default), "
           "remove it", refused);
  expect_args_error(conf, NULL, want);

  const char *syntax = write_tmp("a=1\n# fine\nnot a pair\n");
  snprintf(conf, sizeof(conf), "kafka = { properties_file = \"%s\"; };\n", syntax);
  snprintf(want, sizeof(want),
           "%s:3: expected name=value or name: value (write \\= or \\: for one inside a name) "
           "(kafka.properties_file)", syntax);
  expect_args_error(conf, NULL, want);

  const char *x[] = {"enable.idempotence=false"};
  struct dw_config_args xa = {NULL, 0, x, 1};
  expect_args_error(NULL, &xa,
                    "command line: -X: sets enable.idempotence = \"false\", which lets a retried "
                    "send write a result twice or out of order: the worker's producer is always "
                    "idempotent, remove it (processing.guarantee = \"exactly_once\" for one "
                    "result per task)");
  const char *xbad[] = {"group.id=x"};
  struct dw_config_args xb = {NULL, 0, xbad, 1};
  expect_args_error(NULL, &xb, "command line: -X: set the group with kafka.group_id, not as a "
                               "property, got \"group.id\"");

  const char *consumer =
      "kafka = {\n  consumer_properties = ( (\"enable.auto.commit\", true) ); };\n";
  struct loaded l;
  load(&l, consumer, minimal_env);
  assert_int_equal(l.rc, DW_EINVAL);
  snprintf(want, sizeof(want), "%s:2: kafka.consumer_properties sets enable.auto.commit", l.path);
  assert_non_null(strstr(l.err, want));
  dw_config_cleanup(&l.cfg);

  const char *set[] = {"kafka.brokerz=x"};
  struct dw_config_args sa = {set, 1, NULL, 0};
  expect_args_error(NULL, &sa,
                    "command line: --set: unknown key \"kafka.brokerz\" (did you mean "
                    "\"kafka.brokers\"?)");
  const char *setbad[] = {"poll.jitter=lots"};
  struct dw_config_args sb = {setbad, 1, NULL, 0};
  expect_args_error(NULL, &sb, "command line: --set poll.jitter: must be between 0 and 1, got "
                               "\"lots\"");
  const char *noeq[] = {"poll.jitter"};
  struct dw_config_args sc = {noeq, 1, NULL, 0};
  expect_args_error(NULL, &sc, "command line: --set \"poll.jitter\": want group.key=value");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_teardown(test_defaults, teardown),
    cmocka_unit_test_teardown(test_full_file, teardown),
    cmocka_unit_test_teardown(test_design_example, teardown),
    cmocka_unit_test_teardown(test_file_errors, teardown),
    cmocka_unit_test_teardown(test_missing_file, teardown),
    cmocka_unit_test_teardown(test_required, teardown),
    cmocka_unit_test_teardown(test_env_overrides, teardown),
    cmocka_unit_test_teardown(test_env_errors, teardown),
    cmocka_unit_test_teardown(test_secret_file, teardown),
    cmocka_unit_test_teardown(test_ca_file, teardown),
    cmocka_unit_test_teardown(test_properties, teardown),
    cmocka_unit_test_teardown(test_print, teardown),
    cmocka_unit_test_teardown(test_print_secret_file, teardown),
    cmocka_unit_test_teardown(test_print_reference, teardown),
    cmocka_unit_test_teardown(test_include_relative, teardown),
    cmocka_unit_test_teardown(test_include_not_a_file, teardown),
    cmocka_unit_test_teardown(test_wide_integers, teardown),
    cmocka_unit_test_teardown(test_wide_integers_include, teardown),
    cmocka_unit_test_teardown(test_base_url, teardown),
    cmocka_unit_test_teardown(test_bounds, teardown),
    cmocka_unit_test_teardown(test_properties_refused, teardown),
    cmocka_unit_test_teardown(test_file_kinds, teardown),
    cmocka_unit_test_teardown(test_property_sources, teardown),
    cmocka_unit_test_teardown(test_property_source_errors, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
