/* The Kafka shells (consumer, producer) on librdkafka's mock cluster, on a private loop: a
 * message struct is produced with its key, value and both header lists, consumed back as the
 * record the worker sees, and both clients close with their done callbacks before
 * uv_loop_close; a closing consumer answers its owner until its done callback, also once the
 * group is left (librdkafka 2.8.0 no longer answers rd_kafka_assignment then) and once its
 * client is destroyed. Freed memory is filled (librdkafka is not instrumented: a read of a
 * destroyed client then crashes instead of reading stale memory). */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <uv.h>

#include "dw/common.h"
#include "dw/config.h"
#include "dw/consumer.h"
#include "dw/kafka.h"
#include "dw/producer.h"

#define DEADLINE_MS 30000

struct fixture {
  uv_loop_t loop;
  struct dw_config cfg;
  int delivered, delivery_err;
  int assigned, revoked;
  struct dw_consumer *c;  /* the consumer, for the revoke's answer */
  struct dw_record *rec;
  int closed;
  int txn_done, txn_rc, delivered_at_done; /* the last transaction call's outcome */
  int asked;            /* loop iterations in which the closing consumer was asked */
  int64_t lag;          /* its last answers */
  size_t assigned_now;
  rd_kafka_t *mrk;        /* the mock cluster's own client */
  rd_kafka_mock_cluster_t *mc;
};

/* Runs the loop until *flag is set or DEADLINE_MS passed (the wakers' one-second ticks keep
 * UV_RUN_ONCE from blocking for longer). */
static int run_until(uv_loop_t *loop, const int *flag)
{
  uint64_t end = uv_now(loop) + DEADLINE_MS;
  while (!*flag && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  return *flag;
}

static void load_config(struct dw_config *cfg, const char *brokers, int eos)
{
  char path[64], err[256] = "";
  char *envp[] = {NULL};
  snprintf(path, sizeof(path), "/tmp/dw-test-kafka-%ld.conf", (long)getpid());
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  /* message.max.bytes set: the producer does not ask the cluster (the mock cannot answer). */
  fprintf(fp,
          "kafka = { brokers = \"%s\"; group_id = \"g\"; input_topic = \"in\"; "
          "results_topic = \"out\"; dlq_topic = \"dlq\"; "
          "properties = ( (\"message.max.bytes\", \"1000000\") ); };\n"
          "feishu = { app_id = \"cli_a\"; app_secret = \"s\"; };\n"
          "processing = { guarantee = \"%s\"; };\n",
          brokers, eos ? "exactly_once" : "at_least_once");
  fclose(fp);
  dw_config_init(cfg);
  int rc = dw_config_load(cfg, path, envp, err, sizeof(err));
  unlink(path);
  if (rc != 0)
    fail_msg("config: %s", err);
}

/* A fresh loop and a one-broker mock cluster with the input topic "in" (the cluster lives in
 * a client of its own; it has no brokers to log about), and the config that points at it. */
static void fixture_start(struct fixture *f, int exactly_once)
{
  char err[512] = "";
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  rd_kafka_conf_t *mconf = rd_kafka_conf_new();
  rd_kafka_conf_set(mconf, "log_level", "0", err, sizeof(err));
  f->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof(err));
  assert_non_null(f->mrk);
  f->mc = rd_kafka_mock_cluster_new(f->mrk, 1);
  assert_non_null(f->mc);
  assert_int_equal(rd_kafka_mock_topic_create(f->mc, "in", 1, 1), 0);
  load_config(&f->cfg, rd_kafka_mock_cluster_bootstraps(f->mc), exactly_once);
}

static void fixture_end(struct fixture *f)
{
  rd_kafka_mock_cluster_destroy(f->mc);
  rd_kafka_destroy(f->mrk);
  dw_config_cleanup(&f->cfg);
}

static void on_delivered(void *arg, int err, const char *errstr, int fatal)
{
  struct fixture *f = arg;
  (void)errstr;
  assert_false(fatal);
  f->delivery_err = err;
  f->delivered++;
}

static void on_record(void *arg, struct dw_record *rec)
{
  struct fixture *f = arg;
  if (f->rec)
    dw_record_free(f->rec);
  f->rec = rec;
}

static void on_assign(void *arg, const int32_t *partitions, size_t n)
{
  (void)partitions;
  ((struct fixture *)arg)->assigned += (int)n;
}

/* Nothing to commit: the partitions are given up at once. */
static void on_revoke(void *arg, const int32_t *partitions, size_t n, int lost)
{
  struct fixture *f = arg;
  (void)partitions;
  (void)lost;
  f->revoked += (int)n;
  dw_consumer_revoke_done(f->c);
}

static void on_fatal(void *arg, const char *reason)
{
  (void)arg;
  fail_msg("fatal: %s", reason);
}

static void on_txn_done(void *arg, int rc, const char *err)
{
  struct fixture *f = arg;
  if (rc != 0)
    print_message("transaction call: %s\n", err);
  f->txn_rc = rc;
  f->delivered_at_done = f->delivered;
  f->txn_done++;
}

static void on_closed(void *arg)
{
  ((struct fixture *)arg)->closed++;
}

static void assert_header(const struct dw_header *h, const char *name, const char *value)
{
  assert_string_equal(h->name, name);
  if (!value) {
    assert_null(h->value);
    return;
  }
  assert_int_equal(h->len, strlen(value));
  assert_memory_equal(h->value, value, h->len);
}

static void test_produce_consume_close(void **state)
{
  (void)state;
  struct fixture f;
  char err[512] = "";
  fixture_start(&f, 0);

  struct dw_producer *p = NULL;
  if (dw_producer_new(&p, &f.loop, &f.cfg, err, sizeof(err)) != 0)
    fail_msg("producer: %s", err);
  assert_false(dw_producer_transactional(p));
  assert_int_equal(dw_producer_max_bytes(p), 1000000);

  /* The record's own headers first (one without a value), then the extra ones. */
  struct dw_header own[] = {{"trace", "t1", 2}, {"empty", NULL, 0}};
  struct dw_header extra[] = {{"dlq.reason", "invalid_event", 13}};
  struct dw_message m = {.topic = "in", .key = "k1", .key_len = 2, .value = "v-one",
                         .value_len = 5, .headers = own, .header_count = 2, .extra = extra,
                         .extra_count = 1};
  assert_int_equal(dw_producer_send(p, &m, on_delivered, &f), 0);
  assert_int_equal(dw_producer_outstanding(p), 1);
  assert_true(run_until(&f.loop, &f.delivered));
  assert_int_equal(f.delivery_err, 0);
  assert_int_equal(dw_producer_outstanding(p), 0);

  struct dw_consumer_handler h = {.on_record = on_record, .on_assign = on_assign,
                                  .on_revoke = on_revoke, .on_fatal = on_fatal, .arg = &f};
  struct dw_consumer *c = NULL;
  if (dw_consumer_new(&c, &f.loop, &f.cfg, &h, err, sizeof(err)) != 0)
    fail_msg("consumer: %s", err);
  f.c = c;
  assert_true(run_until(&f.loop, (const int *)&f.rec));
  assert_int_equal(f.assigned, 1);
  struct dw_record *rec = f.rec;
  assert_int_equal(rec->partition, 0);
  assert_int_equal(rec->offset, 0);
  assert_int_equal(rec->key_len, 2);
  assert_memory_equal(rec->key, "k1", 2);
  assert_int_equal(rec->value_len, 5);
  assert_memory_equal(rec->value, "v-one", 5);
  assert_int_equal(rec->header_count, 3);
  assert_header(&rec->headers[0], "trace", "t1");
  assert_header(&rec->headers[1], "empty", NULL);
  assert_header(&rec->headers[2], "dlq.reason", "invalid_event");
  dw_record_free(rec);
  f.rec = NULL;

  /* A record with no key and no headers (as results without a key would be). */
  struct dw_message bare = {.topic = "in", .value = "v2", .value_len = 2};
  assert_int_equal(dw_producer_send(p, &bare, on_delivered, &f), 0);
  assert_true(run_until(&f.loop, (const int *)&f.rec));
  assert_null(f.rec->key);
  assert_int_equal(f.rec->header_count, 0);
  assert_memory_equal(f.rec->value, "v2", 2);
  assert_int_equal(f.delivered, 2);
  dw_record_free(f.rec);
  f.rec = NULL;

  /* Both closes are asynchronous: done runs once each, after the loop closed the handles.
   * Leaving the group revokes the assignment on the loop, through on_revoke. */
  dw_consumer_close(c, on_closed, &f);
  dw_producer_close(p, on_closed, &f);
  assert_int_equal(f.closed, 0);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.closed, 2);
  assert_int_equal(f.revoked, 1);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  fixture_end(&f);
}

/* Exactly-once: what is produced is committed in a transaction with the input offsets and
 * their map, on the thread pool with the outcome back on the loop, or waited for; the consumer
 * reads it (read_committed) once committed. An abort; a close while a call is in flight. */
static void test_transaction(void **state)
{
  (void)state;
  struct fixture f;
  char err[512] = "";
  fixture_start(&f, 1);

  struct dw_producer *p = NULL;
  if (dw_producer_new(&p, &f.loop, &f.cfg, err, sizeof(err)) != 0)
    fail_msg("producer: %s", err);
  assert_true(dw_producer_transactional(p));
  struct dw_consumer_handler h = {.on_record = on_record, .on_assign = on_assign,
                                  .on_revoke = on_revoke, .on_fatal = on_fatal, .arg = &f};
  struct dw_consumer *c = NULL;
  if (dw_consumer_new(&c, &f.loop, &f.cfg, &h, err, sizeof(err)) != 0)
    fail_msg("consumer: %s", err);
  f.c = c;
  assert_true(run_until(&f.loop, &f.assigned));

  struct dw_message m = {.topic = "in", .key = "k", .key_len = 1, .value = "in-txn",
                         .value_len = 6};
  assert_int_equal(dw_producer_send(p, &m, on_delivered, &f), 0);
  int32_t part = 0;
  int64_t offset = 0;
  const char *map = "m1";
  /* The commit runs on the thread pool; the loop serves the delivery reports it waits for,
   * and its outcome comes back on the loop after them. Nothing may be produced meanwhile. */
  assert_int_equal(dw_producer_txn_commit(p, c, &part, &offset, &map, 1, on_txn_done, &f), 0);
  assert_true(dw_producer_txn_in_flight(p));
  assert_true(dw_producer_txn_busy(p));
  assert_int_equal(dw_producer_txn_commit(p, c, NULL, NULL, NULL, 0, on_txn_done, &f),
                   DW_ESTATE);
  assert_int_equal(dw_producer_send(p, &m, on_delivered, &f), DW_EIO);
  assert_true(run_until(&f.loop, &f.txn_done));
  assert_int_equal(f.txn_rc, 0);
  assert_false(dw_producer_txn_busy(p));
  assert_false(dw_producer_txn_in_flight(p));
  assert_int_equal(f.delivered_at_done, 1);
  assert_int_equal(f.delivered, 1);
  assert_int_equal(f.delivery_err, 0);
  assert_true(run_until(&f.loop, (const int *)&f.rec));
  assert_memory_equal(f.rec->value, "in-txn", 6);
  dw_record_free(f.rec);
  f.rec = NULL;

  /* A revoke or the shutdown waits for the call on the loop: the delivery reports are served
   * from inside the wait, and done runs there. */
  struct dw_message m2 = {.topic = "in", .key = "k", .key_len = 1, .value = "second",
                          .value_len = 6};
  assert_int_equal(dw_producer_send(p, &m2, on_delivered, &f), 0);
  offset = 1;
  assert_int_equal(dw_producer_txn_commit(p, c, &part, &offset, &map, 1, on_txn_done, &f), 0);
  dw_producer_txn_wait(p);
  assert_int_equal(f.txn_done, 2);
  assert_int_equal(f.txn_rc, 0);
  assert_int_equal(f.delivered_at_done, 2);
  assert_false(dw_producer_txn_in_flight(p));
  assert_true(run_until(&f.loop, (const int *)&f.rec));
  assert_memory_equal(f.rec->value, "second", 6);
  dw_record_free(f.rec);
  f.rec = NULL;

  /* An abort of an empty transaction; the close waits for a call still in flight, without
   * its done. */
  assert_int_equal(dw_producer_txn_abort(p, on_txn_done, &f), 0);
  uint64_t end = uv_now(&f.loop) + DEADLINE_MS;
  while (f.txn_done < 3 && uv_now(&f.loop) < end)
    uv_run(&f.loop, UV_RUN_ONCE);
  assert_int_equal(f.txn_done, 3);
  assert_int_equal(f.txn_rc, 0);
  assert_int_equal(dw_producer_txn_commit(p, c, NULL, NULL, NULL, 0, on_txn_done, &f), 0);

  dw_consumer_close(c, on_closed, &f);
  dw_producer_close(p, on_closed, &f);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(f.closed, 2);
  assert_int_equal(f.txn_done, 3);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  fixture_end(&f);
}

/* The value of name in conf ("" when unset). */
static const char *conf_value(rd_kafka_conf_t *conf, const char *name, char *buf, size_t size)
{
  buf[0] = '\0';
  rd_kafka_conf_get(conf, name, buf, &size);
  return buf;
}

/* Shared properties reach only the clients librdkafka applies them to; each client's own list
 * comes after them. */
static void test_property_scope(void **state)
{
  (void)state;
  struct dw_config cfg;
  char err[512], buf[64];
  char *env[] = {"DELIVERY_WORKER_FEISHU_APP_ID=cli_test", "DELIVERY_WORKER_FEISHU_APP_SECRET=s",
                 "DELIVERY_WORKER_KAFKA_PROPERTIES=fetch.wait.max.ms=10,linger.ms=7,"
                 "client.id=shared",
                 NULL};
  const char *x[] = {"socket.timeout.ms=12345"};
  struct dw_config_args args = {NULL, 0, x, 1};
  char path[] = "/tmp/dw_test_kafka_scopeXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "kafka = { producer_properties = ( (\"linger.ms\", 20) );\n"
                     "  consumer_properties = ( (\"client.id\", \"mine\") ); };\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  dw_config_init(&cfg);
  assert_int_equal(dw_config_load_args(&cfg, path, env, &args, 0, err, sizeof(err)), 0);
  unlink(path);
  rd_kafka_conf_t *consumer = dw_kafka_conf_new(&cfg, 1, NULL, err, sizeof(err));
  rd_kafka_conf_t *producer = dw_kafka_conf_new(&cfg, 0, NULL, err, sizeof(err));
  assert_non_null(consumer);
  assert_non_null(producer);
  assert_string_equal(conf_value(consumer, "fetch.wait.max.ms", buf, sizeof(buf)), "10");
  assert_string_equal(conf_value(producer, "fetch.wait.max.ms", buf, sizeof(buf)), "500");
  assert_string_equal(conf_value(producer, "linger.ms", buf, sizeof(buf)), "20");
  assert_string_equal(conf_value(consumer, "client.id", buf, sizeof(buf)), "mine");
  assert_string_equal(conf_value(producer, "client.id", buf, sizeof(buf)), "shared");
  assert_string_equal(conf_value(consumer, "socket.timeout.ms", buf, sizeof(buf)), "12345");
  assert_string_equal(conf_value(producer, "socket.timeout.ms", buf, sizeof(buf)), "12345");
  rd_kafka_conf_destroy(consumer);
  rd_kafka_conf_destroy(producer);
  /* A property librdkafka refuses names where it was set. */
  const char *bad[] = {"linger.msec=3"};
  struct dw_config_args badargs = {NULL, 0, bad, 1};
  dw_config_cleanup(&cfg);
  dw_config_init(&cfg);
  assert_int_equal(dw_config_load_args(&cfg, NULL, env, &badargs, 0, err, sizeof(err)), 0);
  assert_int_equal(dw_kafka_conf_check(&cfg, err, sizeof(err)), DW_EINVAL);
  assert_non_null(strstr(err, "command line: -X: linger.msec: No such configuration property"));
  dw_config_cleanup(&cfg);
}

/* While the consumer closes, its owner still asks it (the admin endpoint serves /metrics
 * until done runs): in every loop iteration, after I/O and before the close callbacks, so
 * also in the one where the group is seen left and the one where the client is destroyed. */
static void on_check(uv_check_t *chk)
{
  struct fixture *f = chk->data;
  if (f->closed)
    return;
  f->lag = dw_consumer_lag(f->c, &f->assigned_now);
  /* The exactly-once commit's group metadata: NULL once the group is left, never a read of a
   * destroyed client. */
  rd_kafka_consumer_group_metadata_t *g = dw_consumer_group_metadata(f->c);
  if (g)
    rd_kafka_consumer_group_metadata_destroy(g);
  dw_consumer_pause_all(f->c, 1);
  dw_consumer_hold(f->c, 0, 1, 1);
  dw_consumer_hold(f->c, 0, 1, 0);
  f->asked++;
}

static void test_closing_consumer_answers_until_done(void **state)
{
  (void)state;
  struct fixture f;
  char err[512] = "";
  fixture_start(&f, 0);

  struct dw_consumer_handler h = {.on_record = on_record, .on_assign = on_assign,
                                  .on_revoke = on_revoke, .on_fatal = on_fatal, .arg = &f};
  if (dw_consumer_new(&f.c, &f.loop, &f.cfg, &h, err, sizeof(err)) != 0)
    fail_msg("consumer: %s", err);
  assert_true(run_until(&f.loop, &f.assigned));
  size_t assigned = 0;
  dw_consumer_lag(f.c, &assigned);
  assert_int_equal(assigned, 1);

  uv_check_t chk;
  uv_check_init(&f.loop, &chk);
  chk.data = &f;
  uv_check_start(&chk, on_check);
  dw_consumer_close(f.c, on_closed, &f);
  assert_true(run_until(&f.loop, &f.closed));
  assert_int_equal(f.closed, 1);
  assert_int_equal(f.revoked, 1);
  assert_true(f.asked > 0);
  assert_int_equal(f.lag, 0);
  assert_int_equal(f.assigned_now, 0);
  uv_close((uv_handle_t *)&chk, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  fixture_end(&f);
}

/* AddressSanitizer's allocator ignores M_PERTURB; this fills what it frees instead. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
  return "max_free_fill_size=1048576";
}

int main(void)
{
  mallopt(M_PERTURB, 0xa5);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_produce_consume_close),
      cmocka_unit_test(test_closing_consumer_answers_until_done),
      cmocka_unit_test(test_transaction),
      cmocka_unit_test(test_property_scope),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
