/* Unit tests of `delivery-worker healthcheck`: the address it asks (a wildcard listen address
 * becomes loopback, IPv6 in brackets), and the exit status and printed line against a local
 * server that answers 200, answers 503, answers what is not HTTP, or accepts and never answers
 * (the deadline). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/healthcheck.h"

static void test_target(void **state)
{
  (void)state;
  char host[64], port[8];
  assert_int_equal(dw_healthcheck_target("0.0.0.0:9464", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_string_equal(port, "9464");
  assert_int_equal(dw_healthcheck_target("[::]:9464", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(dw_healthcheck_target(":8080", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_string_equal(port, "8080");
  assert_int_equal(dw_healthcheck_target("10.1.2.3:1", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "10.1.2.3");
  assert_int_equal(dw_healthcheck_target("[fd00::1]:9", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "fd00::1");
  assert_int_equal(dw_healthcheck_target("worker-1:9464", host, sizeof(host), port, sizeof(port)), 0);
  assert_string_equal(host, "worker-1");
  /* no port, a port that is not a number, a bracket not closed, too long a port */
  assert_int_equal(dw_healthcheck_target("localhost", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target("localhost:", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target("h:80x", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target("[::1:80", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target("h:123456789", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target(NULL, host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  /* IPv6 without brackets; a host that would move the URL's port ("127.0.0.1#:80" is port 80) */
  assert_int_equal(dw_healthcheck_target("::1:9464", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
  assert_int_equal(dw_healthcheck_target("127.0.0.1#:18003", host, sizeof(host), port, sizeof(port)), DW_EINVAL);
}

/* A one-connection server on loopback: answers `reply` after reading the request, or nothing
 * (reply NULL) until the client goes away. */
struct server {
  int fd;
  char port[8];
  const char *reply;
  pthread_t thread;
};

static void *serve(void *arg)
{
  struct server *s = arg;
  int c = accept(s->fd, NULL, NULL);
  if (c < 0)
    return NULL;
  char buf[512];
  ssize_t n = recv(c, buf, sizeof(buf), 0);
  if (n > 0 && s->reply)
    (void)!send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL);
  else
    while (recv(c, buf, sizeof(buf), 0) > 0) /* until the client closes */
      ;
  close(c);
  return NULL;
}

static void server_start(struct server *s, const char *reply)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  s->reply = reply;
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->fd, 1), 0);
  assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
  snprintf(s->port, sizeof(s->port), "%u", (unsigned)ntohs(a.sin_port));
  assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

/* Runs the subcommand against s and returns its exit status, with the line it printed in out. */
static int check(struct server *s, const char *timeout_ms, char *out, size_t outlen)
{
  char address[32];
  snprintf(address, sizeof(address), "0.0.0.0:%s", s->port);
  char *argv[] = {"healthcheck", "--address", address, "--timeout-ms", (char *)timeout_ms, NULL};
  FILE *capture = tmpfile();
  assert_non_null(capture);
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fileno(capture), STDOUT_FILENO) >= 0);
  int rc = dw_healthcheck_main(5, argv);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  rewind(capture);
  size_t n = fread(out, 1, outlen - 1, capture);
  out[n] = '\0';
  fclose(capture);
  pthread_join(s->thread, NULL);
  close(s->fd);
  return rc;
}

static void test_exit_status(void **state)
{
  (void)state;
  struct server s;
  char line[512], want[128];
  server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
  snprintf(want, sizeof(want), "healthy: http://127.0.0.1:%s/healthz answered 200\n", s.port);
  assert_int_equal(check(&s, "2000", line, sizeof(line)), 0);
  assert_string_equal(line, want);
  server_start(&s, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
  snprintf(want, sizeof(want), "unhealthy: http://127.0.0.1:%s/healthz answered 503\n", s.port);
  assert_int_equal(check(&s, "2000", line, sizeof(line)), 1);
  assert_string_equal(line, want);
  server_start(&s, "garbage\r\n");
  snprintf(want, sizeof(want), "unhealthy: http://127.0.0.1:%s/healthz: the answer is not HTTP\n",
           s.port);
  assert_int_equal(check(&s, "2000", line, sizeof(line)), 1);
  assert_string_equal(line, want);
  /* accepted, never answered: fails at the deadline, not later */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  server_start(&s, NULL);
  assert_int_equal(check(&s, "300", line, sizeof(line)), 1);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  assert_true(took >= 0.29 && took < 5.0);
  assert_non_null(strstr(line, "unhealthy: http://127.0.0.1:"));
  assert_non_null(strstr(line, "timed out")); /* libcurl's words for the deadline */
}

static void test_arguments(void **state)
{
  (void)state;
  char *bad_timeout[] = {"healthcheck", "--timeout-ms", "0", NULL};
  assert_int_equal(dw_healthcheck_main(3, bad_timeout), 2);
  char *bad_address[] = {"healthcheck", "--address", "nowhere", NULL};
  assert_int_equal(dw_healthcheck_main(3, bad_address), 2);
  char *stray[] = {"healthcheck", "extra", NULL};
  assert_int_equal(dw_healthcheck_main(2, stray), 2);
  char *missing[] = {"healthcheck", "-c", "/nonexistent/worker.conf", NULL};
  assert_int_equal(dw_healthcheck_main(3, missing), 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_target),
      cmocka_unit_test(test_exit_status),
      cmocka_unit_test(test_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
