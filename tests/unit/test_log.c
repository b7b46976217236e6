/* Unit tests of logging: the JSON and text line shapes, escaping, context fields, the level
 * filter, truncation of long messages, and suppression of repeated messages. stderr is
 * redirected to a temporary file for each test and read back; the last tests make it a pipe
 * whose reader stalls or went away, where logging must neither block nor tear lines, also
 * when poll is all the logger has, and check where a signal handler's line (dw_log_raw) goes:
 * before the first line, in the middle of a line partly out, and while stderr changes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/log.h"

static int saved_stderr = -1;
static char capture_path[64];

static int setup(void **state)
{
  int fd;
  (void)state;
  dw_strlcpy(capture_path, "/tmp/dw_test_logXXXXXX", sizeof(capture_path));
  fd = mkstemp(capture_path);
  if (fd < 0)
    return -1;
  fflush(stderr);
  saved_stderr = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  unlink(capture_path);
  dw_log_setup("info", "json");
  return 0;
}

/* Everything written to stderr so far (caller frees). */
static char *captured(void)
{
  FILE *fp = fopen(capture_path, "r");
  char *text = calloc(1, 1 << 20);
  size_t n;
  assert_non_null(fp);
  assert_non_null(text);
  n = fread(text, 1, (1 << 20) - 1, fp);
  text[n] = '\0';
  fclose(fp);
  return text;
}

static size_t count_lines(const char *text)
{
  size_t n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

static void test_json_line(void **state)
{
  struct dw_log_ctx ctx = {.task = "t1", .topic = "in", .partition = 3, .offset = 42,
                           .log_id = "L\"1"};
  char *text;
  (void)state;
  assert_int_equal(dw_log_setup("info", "json"), 0);
  dw_log_write(DW_LOG_WARN, &ctx, "quote \" back \\ nl \n ctl \x01 %d", 7);
  text = captured();
  /* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ",... */
  assert_int_equal(strncmp(text, "{\"ts\":\"", 7), 0);
  assert_int_equal(text[7 + 23], 'Z');
  assert_string_equal(text + 7 + 24,
                      "\",\"level\":\"warn\",\"msg\":\"quote \\\" back \\\\ nl \\n ctl \\u0001 "
                      "7\",\"task\":\"t1\",\"topic\":\"in\",\"partition\":3,\"offset\":42,"
                      "\"log_id\":\"L\\\"1\"}\n");
  free(text);
}

static void test_json_fields_left_out(void **state)
{
  struct dw_log_ctx ctx = {.task = NULL, .topic = "in", .partition = -1, .offset = -1};
  char *text;
  (void)state;
  dw_log_write(DW_LOG_ERROR, &ctx, "a");
  dw_info("b \xff\xfe ok \xc3\xa9");
  text = captured();
  assert_non_null(strstr(text, "\"level\":\"error\",\"msg\":\"a\",\"topic\":\"in\"}\n"));
  /* Invalid UTF-8 becomes U+FFFD; valid multibyte characters pass. */
  assert_non_null(strstr(text, "\"msg\":\"b \\ufffd\\ufffd ok \xc3\xa9\"}\n"));
  assert_int_equal(count_lines(text), 2);
  free(text);
}

static void test_text_line(void **state)
{
  struct dw_log_ctx ctx = {.task = "t 1", .partition = 3, .offset = -1};
  char *text;
  (void)state;
  assert_int_equal(dw_log_setup("debug", "text"), 0);
  dw_log_write(DW_LOG_INFO, &ctx, "hello\nworld");
  dw_debug("dbg");
  text = captured();
  assert_int_equal(text[23], 'Z');
  assert_int_equal(strncmp(text + 24, " info  hello\\nworld task=t 1 partition=3\n", 41), 0);
  assert_non_null(strstr(text, "Z debug dbg\n"));
  free(text);
}

static void test_levels(void **state)
{
  char *text;
  (void)state;
  assert_int_equal(dw_log_setup("warn", "json"), 0);
  assert_false(dw_log_enabled(DW_LOG_INFO));
  assert_true(dw_log_enabled(DW_LOG_WARN));
  dw_debug("no");
  dw_info("no");
  dw_warn("yes1");
  dw_error("yes2");
  text = captured();
  assert_null(strstr(text, "\"no\""));
  assert_non_null(strstr(text, "yes1"));
  assert_non_null(strstr(text, "yes2"));
  free(text);
  assert_int_equal(dw_log_setup("loud", "json"), DW_EINVAL);
  assert_int_equal(dw_log_setup("info", "xml"), DW_EINVAL);
  assert_int_equal(dw_log_setup(NULL, "json"), DW_EINVAL);
  /* A failed setup changes nothing. */
  assert_false(dw_log_enabled(DW_LOG_INFO));
}

static void test_truncation(void **state)
{
  char *big = malloc(20000);
  char *text;
  size_t len;
  (void)state;
  assert_non_null(big);
  memset(big, '"', 19999); /* every byte doubles when escaped */
  big[19999] = '\0';
  dw_info("%s", big);
  text = captured();
  len = strlen(text);
  assert_true(len <= 8192);
  assert_int_equal(count_lines(text), 1);
  assert_string_equal(text + len - 6, "...\"}\n");
  /* Whole escapes only: the byte before "..." ends an escape pair. */
  assert_memory_equal(text + len - 8, "\\\"", 2);
  free(text);
  free(big);
}

static void test_suppression(void **state)
{
  struct dw_log_ctx a = {.task = "a", .partition = -1, .offset = -1};
  struct dw_log_ctx b = {.task = "b", .partition = -1, .offset = -1};
  char *text;
  (void)state;
  for (int i = 0; i < 5; i++)
    dw_log_write(DW_LOG_ERROR, &a, "broker down");
  /* Same text, other context: not a repeat. */
  dw_log_write(DW_LOG_ERROR, &b, "broker down");
  dw_log_write(DW_LOG_ERROR, &b, "broker down");
  dw_info("next");
  text = captured();
  assert_int_equal(count_lines(text), 5);
  {
    const char *first = strstr(text, "\"msg\":\"broker down\",\"task\":\"a\"}");
    const char *summary = strstr(text, "\"msg\":\"broker down (repeated 4 times)\",\"task\":\"a\"}");
    const char *other = strstr(text, "\"msg\":\"broker down\",\"task\":\"b\"}");
    const char *summary_b =
      strstr(text, "\"msg\":\"broker down (repeated 1 time)\",\"task\":\"b\"}");
    const char *next = strstr(text, "\"msg\":\"next\"}");
    assert_non_null(first);
    assert_non_null(summary);
    assert_non_null(other);
    assert_non_null(summary_b);
    assert_non_null(next);
    assert_true(first < summary && summary < other && other < summary_b && summary_b < next);
  }
  free(text);
}

static void *writer(void *arg)
{
  int id = *(int *)arg;
  for (int i = 0; i < 200; i++)
    dw_info("thread %d line %d", id, i);
  return NULL;
}

static void test_threads(void **state)
{
  pthread_t threads[4];
  int ids[4];
  char *text, *line, *nl;
  size_t lines = 0;
  (void)state;
  for (int i = 0; i < 4; i++) {
    ids[i] = i;
    assert_int_equal(pthread_create(&threads[i], NULL, writer, &ids[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  text = captured();
  /* Every line whole: none interleaved with another. */
  for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    size_t n = (size_t)(nl - line);
    *nl = '\0';
    assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
    assert_string_equal(line + n - 2, "\"}");
    lines++;
  }
  assert_string_equal(line, "");
  assert_int_equal(lines, 800);
  free(text);
}


/* ---- stderr a pipe whose reader stalls or went away ---- */

#define STALL_LINES 300
#define STALL_DEADLINE_S 5

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
} stall = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

/* Lines of 100 to 7000 bytes (past PIPE_BUF, so a pipe may take part of one), all different. */
static void *write_lines(void *arg)
{
  static char msg[7100];
  (void)arg;
  for (int i = 0; i < STALL_LINES; i++) {
    size_t n = 100 + (size_t)(i * 997) % 6900;
    memset(msg, 'a' + i % 26, n);
    msg[n] = '\0';
    dw_log_write(DW_LOG_INFO, DW_LOG_CTX_NONE, "%d %s", i, msg);
  }
  pthread_mutex_lock(&stall.mu);
  stall.done = 1;
  pthread_cond_signal(&stall.cv);
  pthread_mutex_unlock(&stall.mu);
  return NULL;
}

/* Reads what the pipe holds now into buf (at len), without waiting; returns the new length. */
static size_t drain(int fd, char *buf, size_t len, size_t cap)
{
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return len;
}

/* Every line of text is a whole JSON line; returns how many. */
static size_t whole_lines(char *text)
{
  size_t lines = 0;
  char *line, *nl;
  for (line = text; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    *nl = '\0';
    if (strncmp(line, "{\"ts\":\"", 7) != 0 || strcmp(line + strlen(line) - 2, "\"}") != 0)
      fail_msg("a torn line: %.80s...", line);
    lines++;
  }
  assert_string_equal(line, "");
  return lines;
}

static void test_pipe_reader_stalls(void **state)
{
  int p[2];
  pthread_t t;
  struct timespec deadline;
  size_t cap = (size_t)STALL_LINES * 7200, len = 0;
  char *text = malloc(cap);
  (void)state;
  assert_non_null(text);
  assert_int_equal(dw_log_setup("info", "json"), 0);
  assert_int_equal(pipe(p), 0);
  assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  dup2(p[1], STDERR_FILENO);
  close(p[1]);
  uint64_t dropped = dw_log_dropped();

  /* Nobody reads: the pipe fills after a few dozen lines, and logging must go on. */
  stall.done = 0;
  assert_int_equal(pthread_create(&t, NULL, write_lines, NULL), 0);
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += STALL_DEADLINE_S;
  pthread_mutex_lock(&stall.mu);
  while (!stall.done && pthread_cond_timedwait(&stall.cv, &stall.mu, &deadline) == 0) {
  }
  int blocked = !stall.done;
  pthread_mutex_unlock(&stall.mu);
  if (blocked) {
    while (!stall.done) /* unblock the writer, to fail cleanly */
      len = drain(p[0], text, 0, cap);
  }
  pthread_join(t, NULL);
  if (blocked)
    fail_msg("logging blocked on a full pipe for %d s", STALL_DEADLINE_S);
  assert_true(dw_log_dropped() > dropped);

  /* The reader comes back: what it gets, and the next lines, are whole lines. */
  len = drain(p[0], text, 0, cap);
  dw_log_write(DW_LOG_INFO, DW_LOG_CTX_NONE, "after the stall");
  len = drain(p[0], text, len, cap);
  assert_non_null(strstr(text, "after the stall"));
  size_t lines = whole_lines(text);
  assert_true(lines > 1);
  assert_true(lines + (dw_log_dropped() - dropped) == STALL_LINES + 1);
  close(p[0]);
  free(text);
}

static void test_pipe_reader_gone(void **state)
{
  int p[2];
  (void)state;
  assert_int_equal(dw_log_setup("info", "json"), 0);
  signal(SIGPIPE, SIG_IGN); /* as the worker does */
  assert_int_equal(pipe(p), 0);
  dup2(p[1], STDERR_FILENO);
  close(p[1]);
  close(p[0]);
  uint64_t dropped = dw_log_dropped();
  dw_log_write(DW_LOG_WARN, DW_LOG_CTX_NONE, "nobody reads this");
  dw_log_write(DW_LOG_WARN, DW_LOG_CTX_NONE, "nor this");
  assert_true(dw_log_dropped() == dropped + 2);
  signal(SIGPIPE, SIG_DFL);
}

/* ---- signal handlers' lines (dw_log_raw) and the choice of the sink ---- */

/* The test binary's own open and close (they take the place of libc's for every caller in it,
 * the logger included): open can be made to fail for one path, close can let a "signal"
 * arrive just after it, with the number already reused by another descriptor. */
static struct {
  const char *fail_open; /* open of this path fails with EACCES */
  int arm_close;         /* the next close: reuse the number for decoy, then raise SIGUSR1 */
  int decoy;
  int reused; /* the number that close gave up and decoy took, or -1 */
} hook = {.reused = -1};

int open(const char *path, int flags, ...)
{
  va_list ap;
  mode_t mode = 0;
  va_start(ap, flags);
  if (flags & O_CREAT)
    mode = (mode_t)va_arg(ap, int);
  va_end(ap);
  if (hook.fail_open && strcmp(path, hook.fail_open) == 0) {
    errno = EACCES;
    return -1;
  }
  return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int close(int fd)
{
  int rc = (int)syscall(SYS_close, fd);
  if (rc == 0 && hook.arm_close) {
    hook.arm_close = 0;
    assert_int_equal(dup2(hook.decoy, fd), fd);
    hook.reused = fd;
    raise(SIGUSR1);
  }
  return rc;
}

static const char raw_line[] = "delivery-worker: a signal's line\n";

static void on_usr1(int signum)
{
  (void)signum;
  dw_log_raw(raw_line, sizeof(raw_line) - 1);
}

/* A pipe of n pages whose every page is one whole JSON line, and nothing free; its write end,
 * blocking, becomes stderr. Returns the read end, non-blocking. */
static int full_pipe_as_stderr(void)
{
  int p[2];
  char path[64], page[4096];
  assert_int_equal(pipe(p), 0);
  /* Filled through a description of its own: O_NONBLOCK on p[1] would be stderr's too. */
  snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
  int nb = open(path, O_WRONLY | O_NONBLOCK);
  assert_true(nb >= 0);
  memset(page, 'f', sizeof(page));
  memcpy(page, "{\"ts\":\"", 7);
  memcpy(page + sizeof(page) - 3, "\"}\n", 3);
  while (write(nb, page, sizeof(page)) == (ssize_t)sizeof(page)) {
  }
  close(nb);
  assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  dup2(p[1], STDERR_FILENO);
  close(p[1]);
  return p[0];
}

/* Runs fn in a thread; whether it returned within STALL_DEADLINE_S (if not, the pipe's
 * reader is drained until it does, to fail cleanly). */
struct bounded {
  void (*fn)(void);
  int done;
};

static void *bounded_main(void *arg)
{
  struct bounded *b = arg;
  b->fn();
  pthread_mutex_lock(&stall.mu);
  b->done = 1;
  pthread_cond_signal(&stall.cv);
  pthread_mutex_unlock(&stall.mu);
  return NULL;
}

static int returns_in_time(void (*fn)(void), int reader)
{
  struct bounded b = {.fn = fn};
  struct timespec deadline;
  pthread_t t;
  static char sink_buf[1 << 16];
  assert_int_equal(pthread_create(&t, NULL, bounded_main, &b), 0);
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += STALL_DEADLINE_S;
  pthread_mutex_lock(&stall.mu);
  while (!b.done && pthread_cond_timedwait(&stall.cv, &stall.mu, &deadline) == 0) {
  }
  int blocked = !b.done;
  pthread_mutex_unlock(&stall.mu);
  while (blocked && !b.done)
    drain(reader, sink_buf, 0, sizeof(sink_buf));
  pthread_join(t, NULL);
  return !blocked;
}

static void write_raw_line(void)
{
  dw_log_raw(raw_line, sizeof(raw_line) - 1);
}

/* Must run before anything is logged in this process: dw_log_setup chooses the sink, so a
 * signal's line before the first logged one does not block on a full pipe either. */
static void test_raw_before_first_line(void **state)
{
  (void)state;
  int reader = full_pipe_as_stderr();
  assert_int_equal(dw_log_setup("info", "json"), 0);
  if (!returns_in_time(write_raw_line, reader))
    fail_msg("dw_log_raw blocked on a full pipe before the first line was logged");
  close(reader);
}

static void write_long_line(void)
{
  static char msg[7000];
  memset(msg, 'l', sizeof(msg) - 1);
  dw_log_write(DW_LOG_INFO, DW_LOG_CTX_NONE, "%s", msg);
}

/* stderr a pipe the logger cannot reopen non-blocking (no /proc): it writes when poll says
 * the pipe takes something, and with one page free a line longer than that must not block. */
static void test_poll_sink_one_free_page(void **state)
{
  (void)state;
  char page[4096];
  hook.fail_open = "/proc/self/fd/2";
  int reader = full_pipe_as_stderr();
  assert_int_equal(read(reader, page, sizeof(page)), (ssize_t)sizeof(page)); /* one page free */
  int in_time = returns_in_time(write_long_line, reader);
  hook.fail_open = NULL;
  if (!in_time)
    fail_msg("a line longer than the one free page blocked the logger");
  close(reader);
}

/* A signal's line while a line is partly out (a full pipe took part of it) stands on a line
 * of its own, and every line after it is whole. */
static void test_raw_inside_pending_line(void **state)
{
  (void)state;
  size_t cap = 1 << 20, len = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  assert_int_equal(dw_log_setup("info", "json"), 0);
  int reader = full_pipe_as_stderr();
  len = drain(reader, text, 0, cap); /* the reader catches up */
  len = 0;
  /* Make the pipe take only part of a long line: fill it again, free one page. */
  char path[64], page[4096];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", STDERR_FILENO);
  int nb = open(path, O_WRONLY | O_NONBLOCK);
  assert_true(nb >= 0);
  memset(page, 'f', sizeof(page));
  memcpy(page, "{\"ts\":\"", 7);
  memcpy(page + sizeof(page) - 3, "\"}\n", 3);
  while (write(nb, page, sizeof(page)) == (ssize_t)sizeof(page)) {
  }
  close(nb);
  assert_int_equal(read(reader, page, sizeof(page)), (ssize_t)sizeof(page));
  write_long_line(); /* a page of it goes out, the rest waits */
  len = drain(reader, text, 0, cap);
  write_raw_line();
  dw_log_write(DW_LOG_INFO, DW_LOG_CTX_NONE, "after the signal's line");
  len = drain(reader, text, len, cap);
  char *raw = strstr(text, raw_line);
  assert_non_null(raw);
  if (raw == text || raw[-1] != '\n')
    fail_msg("a signal's line went into the middle of another: ...%.40s", raw - DW_MIN(20, raw - text));
  assert_non_null(strstr(raw, "after the signal's line"));
  assert_true(whole_lines(raw + strlen(raw_line)) >= 1);
  close(reader);
  free(text);
}

/* stderr changes (a pipe, then another pipe, then a file): a signal arriving just as the
 * logger lets go of its descriptor for the old pipe, with the number already reused (by a
 * Kafka or HTTP socket in the worker), writes to the new stderr, never into the reused one. */
static void test_raw_while_sink_changes(void **state)
{
  (void)state;
  int p[2], q[2], d[2];
  char buf[4096];
  assert_int_equal(dw_log_setup("info", "json"), 0);
  signal(SIGUSR1, on_usr1);
  assert_int_equal(pipe(d), 0);
  assert_int_equal(fcntl(d[0], F_SETFL, O_NONBLOCK), 0);
  hook.decoy = d[1];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
  dup2(p[1], STDERR_FILENO);
  close(p[1]);
  dw_info("to the first pipe");
  assert_true(drain(p[0], buf, 0, sizeof(buf)) > 0);

  /* To another pipe. */
  assert_int_equal(pipe(q), 0);
  assert_int_equal(fcntl(q[0], F_SETFL, O_NONBLOCK), 0);
  dup2(q[1], STDERR_FILENO);
  close(q[1]);
  hook.reused = -1;
  hook.arm_close = 1;
  dw_info("to the second pipe");
  hook.arm_close = 0;
  if (hook.reused < 0)
    raise(SIGUSR1); /* nothing was closed: the signal comes after the change */
  else
    close(hook.reused);
  assert_int_equal(drain(d[0], buf, 0, sizeof(buf)), 0);
  size_t n = drain(q[0], buf, 0, sizeof(buf));
  (void)n;
  assert_non_null(strstr(buf, "to the second pipe"));
  assert_non_null(strstr(buf, raw_line));

  /* To a file. */
  int fd = open(capture_path, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  dup2(fd, STDERR_FILENO);
  close(fd);
  hook.reused = -1;
  hook.arm_close = 1;
  dw_info("to the file");
  hook.arm_close = 0;
  if (hook.reused < 0)
    raise(SIGUSR1);
  else
    close(hook.reused);
  assert_int_equal(drain(d[0], buf, 0, sizeof(buf)), 0);
  char *text = captured();
  assert_non_null(strstr(text, "to the file"));
  assert_non_null(strstr(text, raw_line));
  free(text);
  /* The first pipe's reader sees its end: the logger holds no reference to it. */
  assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
  assert_int_equal(read(q[0], buf, sizeof(buf)), 0);

  signal(SIGUSR1, SIG_DFL);
  close(p[0]);
  close(q[0]);
  close(d[0]);
  close(d[1]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    /* First: nothing may be logged before it in this process. */
    cmocka_unit_test_setup_teardown(test_raw_before_first_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_json_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_json_fields_left_out, setup, teardown),
    cmocka_unit_test_setup_teardown(test_text_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
    cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
    cmocka_unit_test_setup_teardown(test_suppression, setup, teardown),
    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipe_reader_stalls, setup, teardown),
    cmocka_unit_test_setup_teardown(test_pipe_reader_gone, setup, teardown),
    cmocka_unit_test_setup_teardown(test_poll_sink_one_free_page, setup, teardown),
    cmocka_unit_test_setup_teardown(test_raw_inside_pending_line, setup, teardown),
    cmocka_unit_test_setup_teardown(test_raw_while_sink_changes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
