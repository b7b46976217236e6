/* `delivery-worker healthcheck`: the container's health check without a shell. It runs as its
 * own process beside the worker (Docker's HEALTHCHECK execs it) and asks GET /healthz once with
 * one blocking libcurl transfer (plain HTTP, no proxy: the admin endpoint is local) under one
 * deadline, so a hung worker makes it fail rather than hang. It exits 0 on 200. */
#include "dw/healthcheck.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/config.h"
#include "dw/hostport.h"

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
  struct dw_hostport hp;
  if (!hostlen || !portlen || dw_hostport_parse(listen, &hp) != DW_HOSTPORT_OK)
    return DW_EINVAL;
  const char *target = hp.host;
  if (is_wildcard(hp.host))
    target = hp.bracketed || strcmp(hp.host, "::") == 0 ? "::1" : "127.0.0.1";
  if (dw_strlcpy(host, target, hostlen) < 0)
    return DW_EINVAL;
  return snprintf(port, portlen, "%u", (unsigned)hp.port) < (int)portlen ? 0 : DW_EINVAL;
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
  (void)data;
  (void)arg;
  return size * n;
}

/* One GET of url: the status code, or a negative DW_E* with why in `why`. */
static int ask(const char *url, long timeout_ms, char *why, size_t whylen)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  CURL *c;
  int rc;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(why, whylen, "libcurl did not initialise");
    return DW_EIO;
  }
  c = curl_easy_init();
  if (!c) {
    snprintf(why, whylen, "libcurl did not initialise");
    curl_global_cleanup();
    return DW_EIO;
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "delivery-worker-healthcheck");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode res = curl_easy_perform(c);
  if (res == CURLE_OK) {
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    rc = (int)code;
  } else if (res == CURLE_WEIRD_SERVER_REPLY || res == CURLE_UNSUPPORTED_PROTOCOL) {
    /* libcurl's words for this are "Received HTTP/0.9 when not allowed" */
    rc = DW_EIO;
    snprintf(why, whylen, "the answer is not HTTP");
  } else {
    rc = res == CURLE_OPERATION_TIMEDOUT ? DW_ETIMEDOUT : DW_EIO;
    snprintf(why, whylen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(res));
  }
  curl_easy_cleanup(c);
  curl_global_cleanup();
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
    struct dw_hostport hp;
    fprintf(stderr, "delivery-worker healthcheck: \"%s\" is not HOST:PORT%s\n", address,
            dw_hostport_parse(address, &hp) == DW_HOSTPORT_V6
                ? " (an IPv6 address goes in brackets, like [::1]:9464)"
                : "");
    goto out;
  }
  char url[320], why[CURL_ERROR_SIZE + 64] = "";
  int v6 = strchr(host, ':') != NULL;
  snprintf(url, sizeof(url), "http://%s%s%s:%s/healthz", v6 ? "[" : "", host, v6 ? "]" : "",
           port);
  int status = ask(url, (long)timeout_ms, why, sizeof(why));
  if (status == 200) {
    printf("healthy: %s answered 200\n", url);
    rc = 0;
  } else {
    if (status > 0)
      printf("unhealthy: %s answered %d\n", url, status);
    else
      printf("unhealthy: %s: %s\n", url, why);
    rc = 1;
  }
out:
  dw_config_cleanup(&cfg);
  return rc;
}
