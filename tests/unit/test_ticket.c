/* Unit tests of the app_ticket source: the pushed event shapes (v1 callback, 2.0 schema, bare
 * object) and what is not a ticket; a file holding the bare ticket or the event, re-read when
 * it changes; events of other apps ignored; a refused ticket forgotten until a new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw/auth.h"
#include "dw/common.h"
#include "dw/config.h"
#include "dw/ticket.h"

static int parse(const char *json, char *app, char *ticket)
{
  char why[160];
  return dw_app_ticket_parse(json, strlen(json), app, 64, ticket, DW_TICKET_MAX, why,
                             sizeof(why));
}

static void test_event_shapes(void **state)
{
  (void)state;
  char app[64], ticket[DW_TICKET_MAX];
  assert_int_equal(parse("{\"ts\":\"1\",\"uuid\":\"u\",\"token\":\"v\",\"type\":\"event_callback\","
                         "\"event\":{\"app_id\":\"cli_a\",\"app_ticket\":\"tk1\",\"type\":"
                         "\"app_ticket\"}}", app, ticket), 0);
  assert_string_equal(app, "cli_a");
  assert_string_equal(ticket, "tk1");
  assert_int_equal(parse("{\"schema\":\"2.0\",\"header\":{\"event_type\":\"app_ticket\"},"
                         "\"event\":{\"app_id\":\"cli_b\",\"app_ticket\":\"tk2\"}}", app, ticket), 0);
  assert_string_equal(ticket, "tk2");
  assert_int_equal(parse("{\"type\":\"app_ticket\",\"app_id\":\"cli_c\",\"app_ticket\":\"tk3\"}",
                         app, ticket), 0);
  assert_string_equal(app, "cli_c");
  /* Not tickets. */
  assert_int_equal(parse("{\"type\":\"event_callback\",\"event\":{\"type\":\"app_open\","
                         "\"app_id\":\"cli_a\"}}", app, ticket), DW_EINVAL);
  assert_int_equal(parse("{\"encrypt\":\"abc\"}", app, ticket), DW_EINVAL);
  assert_int_equal(parse("{\"type\":\"app_ticket\",\"app_id\":\"cli_a\",\"app_ticket\":\"\"}", app,
                         ticket), DW_EINVAL);
  assert_int_equal(parse("{\"type\":\"app_ticket\",\"app_id\":\"cli_a\",\"app_ticket\":\"a\\nb\"}",
                         app, ticket), DW_EINVAL);
  assert_int_equal(parse("[1]", app, ticket), DW_EINVAL);
  assert_int_equal(parse("{", app, ticket), DW_EINVAL);
}

struct fixture {
  uv_loop_t loop;
  struct dw_config cfg;
  char path[64];
  int news;
};

static void on_news(void *arg)
{
  ((struct fixture *)arg)->news++;
}

static void write_file(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static struct dw_ticket *open_ticket(struct fixture *f, const char *file)
{
  char err[256] = "";
  char *envp[] = {NULL};
  char conf[256];
  snprintf(conf, sizeof(conf), "/tmp/dw-test-ticket-%ld.conf", (long)getpid());
  FILE *fp = fopen(conf, "w");
  assert_non_null(fp);
  fprintf(fp, "feishu = { app_id = \"cli_a\"; app_secret = \"s\"; app_type = \"store\"; "
              "app_ticket_file = \"%s\"; };\n", file);
  fclose(fp);
  dw_config_init(&f->cfg);
  assert_int_equal(dw_config_load(&f->cfg, conf, envp, err, sizeof(err)), 0);
  unlink(conf);
  struct dw_ticket *t = NULL;
  assert_int_equal(dw_ticket_new(&t, &f->loop, &f->cfg, err, sizeof(err)), 0);
  dw_ticket_set_cb(t, on_news, f);
  return t;
}

static void test_file_and_offers(void **state)
{
  (void)state;
  struct fixture f;
  memset(&f, 0, sizeof(f));
  uv_loop_init(&f.loop);
  snprintf(f.path, sizeof(f.path), "/tmp/dw-test-ticket-%ld", (long)getpid());
  unlink(f.path);
  struct dw_ticket *t = open_ticket(&f, f.path);

  assert_null(dw_ticket_value(t)); /* no file yet: no ticket, and no crash */
  write_file(f.path, "  tk-bare\n");
  dw_ticket_close(t, NULL, NULL);              /* a fresh source reads the file when asked */
  uv_run(&f.loop, UV_RUN_DEFAULT);
  dw_config_cleanup(&f.cfg);
  t = open_ticket(&f, f.path);
  assert_string_equal(dw_ticket_value(t), "tk-bare");
  assert_int_equal(f.news, 1);
  uint64_t g = dw_ticket_generation(t);

  /* Other apps' events change nothing; ours replace the ticket. */
  const char *other = "{\"type\":\"app_ticket\",\"app_id\":\"cli_z\",\"app_ticket\":\"tz\"}";
  assert_int_equal(dw_ticket_offer(t, other, strlen(other)), DW_EINVAL);
  assert_string_equal(dw_ticket_value(t), "tk-bare");
  const char *ours = "{\"type\":\"app_ticket\",\"app_id\":\"cli_a\",\"app_ticket\":\"tk-2\"}";
  assert_int_equal(dw_ticket_offer(t, ours, strlen(ours)), 0);
  assert_string_equal(dw_ticket_value(t), "tk-2");
  assert_true(dw_ticket_generation(t) > g);
  assert_int_equal(f.news, 2);

  /* Refused: forgotten, and the same ticket offered again is not taken back. */
  dw_ticket_refused(t, dw_ticket_generation(t) - 1); /* an older generation: ignored */
  assert_string_equal(dw_ticket_value(t), "tk-2");
  dw_ticket_refused(t, dw_ticket_generation(t));
  assert_null(dw_ticket_value(t));
  assert_int_equal(dw_ticket_offer(t, ours, strlen(ours)), 0);
  assert_null(dw_ticket_value(t));
  const char *next = "{\"type\":\"app_ticket\",\"app_id\":\"cli_a\",\"app_ticket\":\"tk-3\"}";
  dw_ticket_offer(t, next, strlen(next));
  assert_string_equal(dw_ticket_value(t), "tk-3");
  assert_int_equal(f.news, 3);

  dw_ticket_close(t, NULL, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  dw_config_cleanup(&f.cfg);
  unlink(f.path);
}

/* A FIFO that appears at the path after the start is not read: that would block the loop
 * until something writes to it. */
static void test_file_fifo(void **state)
{
  (void)state;
  struct fixture f;
  memset(&f, 0, sizeof(f));
  uv_loop_init(&f.loop);
  snprintf(f.path, sizeof(f.path), "/tmp/dw-test-ticket-fifo-%ld", (long)getpid());
  unlink(f.path);
  struct dw_ticket *t = open_ticket(&f, f.path);
  assert_int_equal(mkfifo(f.path, 0600), 0);
  assert_null(dw_ticket_value(t));
  assert_int_equal(f.news, 0);
  dw_ticket_close(t, NULL, NULL);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  dw_config_cleanup(&f.cfg);
  unlink(f.path);
}

static void on_closed(void *arg)
{
  ++*(int *)arg;
}

/* Closing waits for the file watch's handle; done runs once, after it is closed. */
static void test_close_done(void **state)
{
  (void)state;
  struct fixture f;
  int closed = 0;
  memset(&f, 0, sizeof(f));
  uv_loop_init(&f.loop);
  snprintf(f.path, sizeof(f.path), "/tmp/dw-test-ticket-close-%ld", (long)getpid());
  write_file(f.path, "tk\n");
  struct dw_ticket *t = open_ticket(&f, f.path);
  assert_string_equal(dw_ticket_value(t), "tk");
  dw_ticket_close(t, on_closed, &closed);
  assert_int_equal(closed, 0);
  uv_run(&f.loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
  assert_int_equal(uv_loop_close(&f.loop), 0);
  dw_config_cleanup(&f.cfg);
  unlink(f.path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_shapes),
      cmocka_unit_test(test_file_and_offers),
      cmocka_unit_test(test_file_fifo),
      cmocka_unit_test(test_close_done),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
