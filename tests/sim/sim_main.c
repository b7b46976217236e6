/* dw-sim: a simulator of the Feishu (Lark) Hire API surface that delivery-worker uses, for
 * integration tests, benchmarks and demos. This file parses the command line, starts the HTTP
 * server (sim_http.c) and waits for SIGTERM/SIGINT; the behaviour lives in sim_api.c (Feishu
 * endpoints) and sim_control.c (/_sim/ control plane).
 *
 * USAGE
 *   dw-sim [options]
 *     --listen HOST:PORT        default 127.0.0.1:0 (port 0 = any free port; [v6addr]:PORT works)
 *     --port-file FILE          once listening, write the port ("41234\n") to FILE atomically
 *                               (FILE.tmp.<pid> then rename)
 *     --app ID:SECRET           repeatable; the first --app replaces the default cli_test:secret
 *     --token-ttl SECONDS       lifetime of tenant tokens, default 7200. With less than 1800
 *                               every token call issues a new token (see the refresh rule).
 *     --rate-per-second N       per app, delivery-task endpoint only, default 50 (0 = unlimited)
 *     --rate-per-minute N       default 1000 (0 = unlimited)
 *     --latency-ms N|MIN-MAX    added to every Feishu answer (uniform), default 0
 *     --arrival-jitter-ms N     each delivery-task request counts in the rate windows at a random
 *                               delay 0..N ms (uniform) after it arrives, as a server that counts
 *                               arrivals sees calls sent at one time; default 0, at most 1000
 *     --unknown-tasks MODE      not_found (default: 1002008, like the real API) | auto
 *     --auto-ready DIST         fixed:MS | lognormal:MEDIAN_MS:SIGMA:MAX_MS, default fixed:0
 *     --auto-never FRACTION     auto tasks that stay pending forever, default 0
 *     --auto-failed FRACTION    auto tasks that end with status 3, default 0
 *     --seed N                  default 1; an auto task's fate depends only on (seed, website/task)
 *     --threads N               MHD polling threads, default 1
 *     --max-records N           request records kept for /_sim/requests, default 1000000
 *     --tenants A,B,...         store apps: the only tenant_keys that installed them (default any)
 *     --tls-cert FILE --tls-key FILE   serve HTTPS (PEM certificate chain and key) instead of HTTP
 *     -v, --verbose             log every request and MHD errors to stderr (quiet by default)
 *   Prints "dw-sim listening on HOST:PORT" on stdout once ready; exits 0 on SIGTERM/SIGINT.
 *
 * FEISHU ENDPOINTS (every answer: Content-Type application/json; charset=utf-8 and X-Tt-Logid;
 * error bodies carry "error":{"log_id":...} with the same id)
 *   POST /open-apis/auth/v3/tenant_access_token/internal   {"app_id","app_secret"}
 *     200 {"code":0,"msg":"ok","tenant_access_token":"t-<40 hex>","expire":S}. If the app's
 *     current token has >= 1800 s left, the same token with the remaining seconds; otherwise a
 *     new token with expire = token TTL (older tokens stay valid until their own expiry).
 *     400 {"code":9499} malformed body; 400 {"code":10014,"msg":"app secret invalid"} unknown app
 *     or wrong secret.
 *   GET /open-apis/hire/v1/websites/:website_id/delivery_tasks/:delivery_task_id
 *     Gates in order: Authorization "Bearer t-..." missing -> 400 99991661; not starting with t- ->
 *     400 99991671; unknown/expired/revoked -> 400 99991663. Per-app fixed windows (1 s and 60 s
 *     since sim start, admitted calls only) -> 429 99991400 with x-ogw-ratelimit-limit (limit of
 *     the window hit; the minute window wins when both are full) and x-ogw-ratelimit-reset (whole
 *     seconds until it resets, >= 1). Then the next queued fault, if any. Then website_id must be
 *     1-32 digits and the task id [A-Za-z0-9_-]{1,64} -> else 400 1002002. Then the task: unknown
 *     -> 400 1002008 (or an auto task); the task's scripted errors for its first polls; pending
 *     shape before ready_at; then the final answer:
 *       succeeded: {"code":0,"msg":"success","data":{"status":2,"delivery":{"application_id":
 *         "app-<id>","id":"deprecated-id","job_id":"job-<id>","job_post_id":"jp-<id>",
 *         "portal_resume_id":"pr-<id>","user_id":"u-<id>","talent_id":"tal-<id>"},
 *         "status_msg":" ","extra_info":"  "}}
 *       failed:    {"code":0,"msg":"success","data":{"status":3,"status_msg":"same application
 *         exist","extra_info":"7100825663201052972","delivery":null}}
 *       pending:   missing {"code":0,"msg":"success"} | null "data":null | empty "data":{} |
 *         status0 "data":{"status":0,"status_msg":" ","extra_info":" "} | status1 "data":{"status":1,
 *         "delivery":{placeholder ids}}; "rotate" (default) cycles them by the task's poll number.
 *   Store (ISV) apps, same refresh rule and TTL as above:
 *   POST /open-apis/auth/v3/app_access_token {"app_id","app_secret","app_ticket"}: 10014 as above;
 *     400 10012 unless app_ticket is the one pushed last (/_sim/ticket); else "app_access_token"
 *     "a-<40 hex>". POST /open-apis/auth/v3/tenant_access_token {"app_access_token","tenant_key"}:
 *     400 99991664 for an unknown/expired app token; 400 10013 for a tenant_key not in --tenants
 *     (when given); else a tenant token valid for that tenant;
 *     its delivery-task calls count in that app+tenant's own rate windows. POST
 *     /open-apis/auth/v3/app_ticket/resend {"app_id","app_secret"}: counted (see /_sim/ticket).
 *   Anything else outside /_sim/ -> 404 {"code":404,"msg":"404 page not found"}.
 *
 * CONTROL PLANE (/_sim/, JSON, no auth, no rate limit, no latency, not recorded; 400 {"error":..})
 *   POST /_sim/ticket {"app_id","ticket"} pushes (rotates) a store app's app_ticket; GET
 *     /_sim/ticket?app_id=.. -> {"app_id","ticket","resends"}. POST /_sim/revoke?tenant_key=T
 *     revokes only that store tenant's tokens. Request records carry "tenant_key".
 *   POST /_sim/tasks     one task object or an array (bodies up to 64 MiB); all-or-nothing:
 *     {"website_id":"123","delivery_task_id":"abc","ready_after_ms":1500 (from registration),
 *      "final":"succeeded|failed|not_found|invalid_request|never","pending":"rotate|missing|null|
 *      empty|status0|status1","status_msg":..,"extra_info":..,"application_id":..,"job_id":..,
 *      "job_post_id":..,"portal_resume_id":..,"user_id":..,"talent_id":..,
 *      "errors":[fault, ...]}   -> {"registered":N}. Unknown fields are rejected; re-registering
 *     a (website_id, task id) replaces the task and its poll count.
 *   POST /_sim/faults    one fault or an array, queued FIFO for the next delivery-task calls
 *     that pass auth and the rate limit: {"kind":"http_500|code|timeout|reset|garbage|rate_limit|
 *     truncated|huge|slowloris|bad_utf8|deep_json|wrong_type|empty_200|raw",
 *     "count":1,"code":..,"http":..,"delay_ms":30000,"bytes":..,"msg":..} -> {"queued":N,"pending":calls}
 *     http_500: 500 {"code":1002001,"msg":"system error"}; code: the code (http default 500 for
 *     1002001, 429 for 99991400, else 400); timeout: the normal answer held delay_ms; reset: the
 *     connection is closed with no answer; garbage: 502 text/html; rate_limit: 429 99991400 with
 *     limit = rate_per_second, reset 1. Hostile kinds (counted in stats under their name):
 *     truncated: 200, Content-Length of a whole pending answer, half of it sent, then closed;
 *     huge: 200, a {"code":0,"msg":"xxx..."} body of "bytes" (8 MiB); slowloris: 200 and headers
 *     at once, then one body byte every delay_ms (1000) of a padded pending answer; bad_utf8:
 *     code (1002001) with invalid UTF-8 in msg; deep_json: 200, data nested "bytes" (10000)
 *     arrays deep; wrong_type: the normal answer as text/html; charset=gbk; empty_200: 200 with
 *     no body; raw: "http" (200) with "msg" as the whole body, as it is. A task's "errors" use
 *     the same objects ("kind" defaults to "code" when "code" is given) and apply to that
 *     task's first polls, in order.
 *   GET /_sim/faults, DELETE /_sim/faults   list / drop queued faults
 *   POST /_sim/revoke    every issued token is invalid from now on -> {"revoked":N}
 *   GET|POST /_sim/config  {"rate_per_second","rate_per_minute","latency_ms":N|"MIN-MAX",
 *     "arrival_jitter_ms",
 *     "token_ttl","unknown_tasks","auto_ready","auto_never","auto_failed","seed"} -> the config
 *   GET /_sim/stats[?tasks=1]  {"calls","by_code":{"0":..,"reset":..,"garbage":..},"rate_limited",
 *     "tokens_issued","token_calls","max_calls_in_1s","tasks_registered","tokens_live",
 *     "faults_pending","records","records_first"[,"tasks":{"<task id>":polls}]}
 *   GET /_sim/requests[?since=K][&limit=N]  JSON array of records, oldest first:
 *     {"i","ts_ms","method","path","website_id","task_id","app_id","token","http"(0 = reset),
 *      "code"(null: reset/garbage),"status"(null unless data.status was sent),"log_id"}
 *   POST /_sim/reset     drops tasks, faults, records, stats and rate windows; tokens stay. */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_APPS 64

struct options {
  const char *listen;
  const char *port_file;
  struct sim_app apps[MAX_APPS];
  size_t napps;
  struct sim_config cfg;
  long long threads;
  long long max_records;
  int verbose;
  char *tls_cert, *tls_key; /* PEM text read from --tls-cert and --tls-key */
};

static void usage(FILE *f)
{
  fputs("usage: dw-sim [--listen HOST:PORT] [--port-file FILE] [--app ID:SECRET]...\n"
        "              [--token-ttl S] [--rate-per-second N] [--rate-per-minute N]\n"
        "              [--latency-ms N|MIN-MAX] [--arrival-jitter-ms N]\n"
        "              [--unknown-tasks not_found|auto]\n"
        "              [--auto-ready fixed:MS|lognormal:MEDIAN_MS:SIGMA:MAX_MS]\n"
        "              [--auto-never F] [--auto-failed F] [--seed N] [--threads N]\n"
        "              [--max-records N] [--tenants A,B,...] [--tls-cert F --tls-key F] [-v]\n"
        "A Feishu Hire API simulator; see the comment at the top of tests/sim/sim_main.c.\n",
        f);
}

static int parse_app(const char *arg, struct options *o)
{
  const char *colon = strchr(arg, ':');
  struct sim_app *a;
  size_t idlen;

  if (!colon || colon == arg || !colon[1] || o->napps == MAX_APPS)
    return SIM_EINVAL;
  idlen = (size_t)(colon - arg);
  if (idlen > SIM_APP_FIELD_MAX || strlen(colon + 1) > SIM_APP_FIELD_MAX)
    return SIM_EINVAL;
  a = &o->apps[o->napps++];
  memset(a, 0, sizeof(*a));
  memcpy(a->id, arg, idlen);
  a->id[idlen] = '\0';
  snprintf(a->secret, sizeof(a->secret), "%s", colon + 1);
  return 0;
}

enum {
  OPT_LISTEN = 256,
  OPT_PORT_FILE,
  OPT_APP,
  OPT_TOKEN_TTL,
  OPT_RPS,
  OPT_RPM,
  OPT_LATENCY,
  OPT_ARRIVAL_JITTER,
  OPT_UNKNOWN,
  OPT_AUTO_READY,
  OPT_AUTO_NEVER,
  OPT_AUTO_FAILED,
  OPT_SEED,
  OPT_THREADS,
  OPT_MAX_RECORDS,
  OPT_TENANTS,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
};

/* The whole of a PEM file (at most 1 MiB), NUL-terminated; NULL on error. */
static char *read_pem(const char *path)
{
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  size_t len = 0;
  if (!f)
    return NULL;
  buf = malloc((1 << 20) + 1);
  if (buf) {
    len = fread(buf, 1, 1 << 20, f);
    if (ferror(f) || !feof(f) || len == 0) {
      free(buf);
      buf = NULL;
    } else {
      buf[len] = '\0';
    }
  }
  fclose(f);
  return buf;
}

static int parse_args(int argc, char **argv, struct options *o)
{
  static const struct option longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"app", required_argument, NULL, OPT_APP},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"rate-per-second", required_argument, NULL, OPT_RPS},
    {"rate-per-minute", required_argument, NULL, OPT_RPM},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"arrival-jitter-ms", required_argument, NULL, OPT_ARRIVAL_JITTER},
    {"unknown-tasks", required_argument, NULL, OPT_UNKNOWN},
    {"auto-ready", required_argument, NULL, OPT_AUTO_READY},
    {"auto-never", required_argument, NULL, OPT_AUTO_NEVER},
    {"auto-failed", required_argument, NULL, OPT_AUTO_FAILED},
    {"seed", required_argument, NULL, OPT_SEED},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-records", required_argument, NULL, OPT_MAX_RECORDS},
    {"tenants", required_argument, NULL, OPT_TENANTS},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  long long n;
  int c, bad;

  memset(o, 0, sizeof(*o));
  o->listen = "127.0.0.1:0";
  o->threads = 1;
  o->max_records = 1000000;
  sim_config_defaults(&o->cfg);
  while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
    bad = 0;
    switch (c) {
    case OPT_LISTEN: o->listen = optarg; break;
    case OPT_PORT_FILE: o->port_file = optarg; break;
    case OPT_APP: bad = parse_app(optarg, o); break;
    case OPT_TOKEN_TTL: bad = sim_parse_ll(optarg, 1, 365LL * 86400, &o->cfg.token_ttl_s); break;
    case OPT_RPS: bad = sim_parse_ll(optarg, 0, 1000000000LL, &o->cfg.rate_per_second); break;
    case OPT_RPM: bad = sim_parse_ll(optarg, 0, 1000000000LL, &o->cfg.rate_per_minute); break;
    case OPT_ARRIVAL_JITTER:
      bad = sim_parse_ll(optarg, 0, 1000, &o->cfg.arrival_jitter_ms);
      break;
    case OPT_LATENCY:
      bad = sim_config_parse_latency(optarg, &o->cfg.latency_min_ms, &o->cfg.latency_max_ms);
      break;
    case OPT_UNKNOWN:
      if (strcmp(optarg, "auto") == 0)
        o->cfg.unknown_tasks = SIM_UNKNOWN_AUTO;
      else if (strcmp(optarg, "not_found") == 0)
        o->cfg.unknown_tasks = SIM_UNKNOWN_NOT_FOUND;
      else
        bad = SIM_EINVAL;
      break;
    case OPT_AUTO_READY: bad = sim_config_parse_ready(optarg, &o->cfg); break;
    case OPT_AUTO_NEVER: bad = sim_parse_double(optarg, 0, 1, &o->cfg.auto_never); break;
    case OPT_AUTO_FAILED: bad = sim_parse_double(optarg, 0, 1, &o->cfg.auto_failed); break;
    case OPT_SEED:
      bad = sim_parse_ll(optarg, 0, 0x7fffffffffffffffLL, &n);
      if (!bad)
        o->cfg.seed = (uint64_t)n;
      break;
    case OPT_THREADS: bad = sim_parse_ll(optarg, 1, 64, &o->threads); break;
    case OPT_MAX_RECORDS: bad = sim_parse_ll(optarg, 1, 100000000LL, &o->max_records); break;
    case OPT_TENANTS: o->cfg.tenants = optarg; break; /* argv lives as long as the process */
    case OPT_TLS_CERT: bad = (free(o->tls_cert), o->tls_cert = read_pem(optarg)) ? 0 : SIM_EINVAL; break;
    case OPT_TLS_KEY: bad = (free(o->tls_key), o->tls_key = read_pem(optarg)) ? 0 : SIM_EINVAL; break;
    case 'v': o->verbose++; break;
    case 'h': usage(stdout); exit(0);
    default: usage(stderr); return SIM_EINVAL;
    }
    if (bad) {
      fprintf(stderr, "dw-sim: invalid value for --%s: \"%s\"\n", longopts[c - OPT_LISTEN].name, optarg);
      return SIM_EINVAL;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "dw-sim: unexpected argument \"%s\"\n", argv[optind]);
    usage(stderr);
    return SIM_EINVAL;
  }
  if (!o->tls_cert != !o->tls_key) {
    fprintf(stderr, "dw-sim: --tls-cert and --tls-key go together\n");
    return SIM_EINVAL;
  }
  if (o->napps == 0)
    parse_app("cli_test:secret", o);
  return 0;
}

/* "1.2.3.4:PORT" or "[::1]:PORT". */
static int parse_listen(const char *s, struct sockaddr_storage *ss, char *host, size_t hostsize)
{
  const char *colon, *hs = s, *he;
  char h[INET6_ADDRSTRLEN + 1];
  long long port;
  size_t hl;

  memset(ss, 0, sizeof(*ss));
  if (*s == '[') {
    hs = s + 1;
    he = strchr(hs, ']');
    if (!he || he[1] != ':')
      return SIM_EINVAL;
    colon = he + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon)
      return SIM_EINVAL;
    he = colon;
  }
  hl = (size_t)(he - hs);
  if (hl == 0 || hl >= sizeof(h) || sim_parse_ll(colon + 1, 0, 65535, &port))
    return SIM_EINVAL;
  memcpy(h, hs, hl);
  h[hl] = '\0';
  if (*s == '[') {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, h, &a6->sin6_addr) != 1)
      return SIM_EINVAL;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    snprintf(host, hostsize, "[%s]", h);
  } else {
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, h, &a4->sin_addr) != 1)
      return SIM_EINVAL;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    snprintf(host, hostsize, "%s", h);
  }
  return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
  char tmp[4096];
  FILE *f;
  int rc = SIM_EINVAL;

  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
    return SIM_ERANGE;
  f = fopen(tmp, "w");
  if (!f)
    goto out;
  if (fprintf(f, "%u\n", (unsigned)port) < 0) {
    fclose(f);
    goto out;
  }
  if (fclose(f) != 0)
    goto out;
  if (rename(tmp, path) != 0)
    goto out;
  rc = 0;
out:
  if (rc) {
    fprintf(stderr, "dw-sim: cannot write port file %s: %s\n", path, strerror(errno));
    unlink(tmp);
  }
  return rc;
}

/* Hundreds of keep-alive connections need more than the usual 1024 descriptors. */
static void raise_fd_limit(void)
{
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv)
{
  struct options o;
  struct sockaddr_storage addr;
  char host[INET6_ADDRSTRLEN + 3];
  struct sim_http *http = NULL;
  struct sim sim;
  int sim_ok = 0, rc = 1, sig;
  sigset_t set;

  if (parse_args(argc, argv, &o))
    return 2;
  if (parse_listen(o.listen, &addr, host, sizeof(host))) {
    fprintf(stderr, "dw-sim: invalid --listen \"%s\" (want HOST:PORT)\n", o.listen);
    return 2;
  }
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  /* Block the stop signals before any thread exists, so all inherit the mask and sigwait sees them. */
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  if (sim_init(&sim, &o.cfg, o.apps, o.napps, (size_t)o.max_records)) {
    fprintf(stderr, "dw-sim: out of memory\n");
    goto out;
  }
  sim_ok = 1;
  sim.verbose = o.verbose;
  if (sim_http_start(&http, &sim, (const struct sockaddr *)&addr, (unsigned)o.threads, o.verbose,
                     o.tls_cert, o.tls_key))
    goto out;
  if (o.port_file && write_port_file(o.port_file, sim_http_port(http)))
    goto out;
  printf("dw-sim listening on %s:%u\n", host, (unsigned)sim_http_port(http));
  fflush(stdout);

  if (sigwait(&set, &sig) != 0)
    goto out;
  if (o.verbose)
    fprintf(stderr, "dw-sim: signal %d, stopping\n", sig);
  rc = 0;
out:
  sim_http_stop(http);
  if (sim_ok)
    sim_cleanup(&sim);
  free(o.tls_cert);
  free(o.tls_key);
  return rc;
}
