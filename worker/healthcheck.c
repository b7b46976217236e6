/* `delivery-worker healthcheck`: the container's health check without a shell. It runs as its
 * own process beside the worker (Docker's HEALTHCHECK execs it), asks GET /healthz once over
 * a plain socket (HTTP/1.0, no proxy: the admin endpoint is local) and exits 0 on 200. The
 * whole exchange has one deadline, so a hung worker makes it fail rather than hang. */
#include "dw/healthcheck.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/config.h"

#define DEFAULT_TIMEOUT_MS 2000
#define MAX_TIMEOUT_MS 60000
#define ENV_LISTEN "DELIVERY_WORKER_ADMIN_LISTEN"

extern char **environ;

void dw_healthcheck_usage(FILE *out)
{
  fputs("usage: delivery-worker healthcheck [--address HOST:PORT | -c FILE] [--timeout-ms N]\n"
        "  GET /healthz of a running worker's admin endpoint: exit 0 when it answers 200,\n"
        "  1 otherwise (another status, refused, no answer within --timeout-ms, default 2000).\n"
        "  The address is --address, else admin.listen of FILE, else of the environment\n"
        "  (" ENV_LISTEN "), else 0.0.0.0:9464; a wildcard host is asked on loopback.\n"
        "  Made for a container's HEALTHCHECK: it needs no shell. A bad argument or config\n"
        "  exits 2, as with every command (a HEALTHCHECK then reports a failure).\n",
        out);
}

static int is_wildcard(const char *host)
{
  return !host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ||
         strcmp(host, "*") == 0;
}

int dw_healthcheck_target(const char *listen, char *host, size_t hostlen, char *port,
                          size_t portlen)
{
  const char *h = listen, *colon;
  size_t hl;
  int v6 = 0;
  char buf[256];
  if (!listen || !hostlen || !portlen)
    return DW_EINVAL;
  if (listen[0] == '[') { /* [v6]:port */
    const char *close = strchr(listen, ']');
    if (!close || close[1] != ':')
      return DW_EINVAL;
    h = listen + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
    v6 = 1;
  } else {
    colon = strrchr(listen, ':');
    if (!colon)
      return DW_EINVAL;
    hl = (size_t)(colon - listen);
  }
  const char *p = colon + 1;
  if (!p[0] || strspn(p, "0123456789") != strlen(p) || strlen(p) >= portlen || hl >= sizeof(buf))
    return DW_EINVAL;
  memcpy(buf, h, hl);
  buf[hl] = '\0';
  const char *target = buf;
  if (is_wildcard(buf))
    target = v6 || strcmp(buf, "::") == 0 ? "::1" : "127.0.0.1";
  if (dw_strlcpy(host, target, hostlen) < 0)
    return DW_EINVAL;
  return dw_strlcpy(port, p, portlen) < 0 ? DW_EINVAL : 0;
}

int dw_healthcheck_status(const char *buf, size_t len)
{
  /* "HTTP/1.x SSS ..." */
  static const char prefix[] = "HTTP/1.";
  size_t plen = sizeof(prefix) - 1;
  size_t n = DW_MIN(len, plen);
  if (memcmp(buf, prefix, n) != 0)
    return DW_EINVAL;
  if (len < plen + 6)
    return DW_EAGAIN;
  const char *s = buf + plen;
  if (s[0] < '0' || s[0] > '9' || s[1] != ' ')
    return DW_EINVAL;
  int code = 0;
  for (int i = 2; i < 5; i++) {
    if (s[i] < '0' || s[i] > '9')
      return DW_EINVAL;
    code = code * 10 + (s[i] - '0');
  }
  if (s[5] != ' ' && s[5] != '\r' && s[5] != '\n')
    return DW_EINVAL;
  return code < 100 ? DW_EINVAL : code;
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left);
    if (n < 0 && errno == EINTR)
      continue;
    return n < 0 ? -1 : n > 0;
  }
}

/* One GET /healthz: the status code, or a negative DW_E* with why in `why`. */
static int ask(const char *host, const char *port, int64_t timeout_ms, const char **why)
{
  static const char request[] = "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
  int64_t deadline = now_ms() + timeout_ms;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  char answer[64];
  size_t got = 0, sent = 0;
  int fd = -1, rc = DW_EIO;
  if (getaddrinfo(host, port, &hints, &ai) != 0) {
    /* not numeric: a name (localhost, a container's name) */
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
      *why = "cannot resolve the host";
      ai = NULL;
      goto out;
    }
  }
  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    *why = strerror(errno);
    goto out;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    *why = strerror(errno);
    goto out;
  }
  int soerr = 0;
  socklen_t sl = sizeof(soerr);
  int ready = wait_fd(fd, POLLOUT, deadline);
  if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
    rc = ready == 0 ? DW_ETIMEDOUT : DW_EIO;
    *why = ready == 0 ? "no connection within the timeout" : strerror(soerr ? soerr : errno);
    goto out;
  }
  while (sent < sizeof(request) - 1) {
    ssize_t n = send(fd, request + sent, sizeof(request) - 1 - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (wait_fd(fd, POLLOUT, deadline) <= 0) {
        rc = DW_ETIMEDOUT;
        *why = "the request could not be sent within the timeout";
        goto out;
      }
      continue;
    }
    if (n < 0) {
      *why = strerror(errno);
      goto out;
    }
    sent += (size_t)n;
  }
  for (;;) {
    int code = dw_healthcheck_status(answer, got);
    if (code != DW_EAGAIN) {
      rc = code;
      *why = code < 0 ? "the answer is not HTTP" : "";
      goto out;
    }
    int r = wait_fd(fd, POLLIN, deadline);
    if (r <= 0) {
      rc = r == 0 ? DW_ETIMEDOUT : DW_EIO;
      *why = r == 0 ? "no answer within the timeout" : strerror(errno);
      goto out;
    }
    ssize_t n = recv(fd, answer + got, sizeof(answer) - got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0) {
      *why = n == 0 ? "the connection closed before an answer" : strerror(errno);
      goto out;
    }
    got += (size_t)n;
  }
out:
  if (fd >= 0)
    close(fd);
  if (ai)
    freeaddrinfo(ai);
  return rc;
}

int dw_healthcheck_main(int argc, char **argv)
{
  const char *address = NULL, *file = NULL;
  int64_t timeout_ms = DEFAULT_TIMEOUT_MS;
  char host[256], port[16], err[1024];
  struct dw_config cfg;
  int rc = 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      dw_healthcheck_usage(stdout);
      return 0;
    }
    if (!v) {
      fprintf(stderr, "delivery-worker healthcheck: unexpected argument \"%s\"\n", a);
      dw_healthcheck_usage(stderr);
      return 2;
    }
    if (strcmp(a, "--address") == 0) {
      address = v;
    } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      file = v;
    } else if (strcmp(a, "--timeout-ms") == 0) {
      char *end;
      errno = 0;
      long long t = strtoll(v, &end, 10);
      if (errno || end == v || *end || t < 1 || t > MAX_TIMEOUT_MS) {
        fprintf(stderr, "delivery-worker healthcheck: --timeout-ms: want 1..%d, not \"%s\"\n",
                MAX_TIMEOUT_MS, v);
        return 2;
      }
      timeout_ms = t;
    } else {
      fprintf(stderr, "delivery-worker healthcheck: unexpected argument \"%s\"\n", a);
      dw_healthcheck_usage(stderr);
      return 2;
    }
    i++;
  }
  dw_config_init(&cfg);
  if (!address && file) {
    if (dw_config_load_kafka(&cfg, file, environ, err, sizeof(err)) < 0) {
      fprintf(stderr, "delivery-worker healthcheck: %s\n", err);
      goto out;
    }
    address = cfg.admin.listen;
  }
  const char *env = getenv(ENV_LISTEN);
  if (!address)
    address = env && env[0] ? env : cfg.admin.listen;
  if (dw_healthcheck_target(address, host, sizeof(host), port, sizeof(port)) < 0) {
    fprintf(stderr, "delivery-worker healthcheck: \"%s\" is not HOST:PORT\n", address);
    goto out;
  }
  const char *why = "";
  int status = ask(host, port, timeout_ms, &why);
  int v6 = strchr(host, ':') != NULL;
  if (status == 200) {
    printf("healthy: http://%s%s%s:%s/healthz answered 200\n", v6 ? "[" : "", host,
           v6 ? "]" : "", port);
    rc = 0;
  } else {
    if (status > 0)
      printf("unhealthy: http://%s%s%s:%s/healthz answered %d\n", v6 ? "[" : "", host,
             v6 ? "]" : "", port, status);
    else
      printf("unhealthy: http://%s%s%s:%s/healthz: %s\n", v6 ? "[" : "", host, v6 ? "]" : "",
             port, why);
    rc = 1;
  }
out:
  dw_config_cleanup(&cfg);
  return rc;
}
