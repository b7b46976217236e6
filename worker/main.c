/* delivery-worker's command line: parses argv and hands over; nothing else lives here. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/config.h"
#include "dw/healthcheck.h"
#include "dw/http.h"
#include "dw/kafka.h"
#include "dw/log.h"
#include "dw/preflight.h"
#include "dw/redrive.h"
#include "dw/replay.h"
#include "dw/worker.h"

extern char **environ;

#define OVERRIDES_MAX 64 /* -X and --set, each */

static void usage(FILE *out)
{
  fputs("usage: delivery-worker run [-c FILE] [OVERRIDES]         run until SIGTERM/SIGINT, "
        "then drain\n"
        "       delivery-worker check-config [-c FILE] [OVERRIDES] validate and print the "
        "effective config\n"
        "         (without -c: the defaults and DELIVERY_WORKER_<GROUP>_<KEY> variables alone)\n"
        "       delivery-worker preflight -c FILE [OVERRIDES]     check brokers, topics, ACLs, "
        "limits, token and scope\n"
        "       delivery-worker config-reference      print every config key (Markdown)\n"
        "       delivery-worker replay -c FILE ...    re-process a range of the input topic\n"
        "       delivery-worker redrive -c FILE ...   move dead letters back to the input topic\n"
        "       delivery-worker healthcheck [--address HOST:PORT]  GET /healthz: exit 0 or 1\n"
        "       delivery-worker version               versions of the worker and its libraries\n"
        "  OVERRIDES: --set group.key=value  a config key, over the file and the environment\n"
        "             -X name=value          a librdkafka property, over every other source\n"
        "  (delivery-worker COMMAND --help: the options of one command)\n",
        out);
}

static const char *const command_help[][2] = {
  {"run", "usage: delivery-worker run [-c FILE] [--set group.key=value]... [-X name=value]...\n"
          "  Runs the worker until SIGTERM or SIGINT, then drains tasks in flight. Without -c\n"
          "  it runs from the defaults and DELIVERY_WORKER_<GROUP>_<KEY> variables alone.\n"},
  {"check-config",
   "usage: delivery-worker check-config [-c FILE] [--set group.key=value]... [-X name=value]...\n"
   "  Validates the configuration (file, DELIVERY_WORKER_* environment, --set, the\n"
   "  properties as librdkafka takes them) without connecting, and prints the effective\n"
   "  configuration with secrets redacted. Exit 0 when valid, 1 with file:line otherwise.\n"},
  {"preflight",
   "usage: delivery-worker preflight -c FILE [--set group.key=value]... [-X name=value]...\n"
   "                                 [--timeout SECONDS]\n"
   "  Checks online, before the first event, what the worker needs: brokers reachable with\n"
   "  the configured security, the three topics, the ACLs of the chosen mode, the broker's\n"
   "  offset.metadata.max.bytes, a token from the app credentials, the app's scope. Prints\n"
   "  one line per check (ok, FAIL or skip, with the fix of a failure). Each check gives up\n"
   "  after --timeout seconds (default 10, 1-120). Exit 0 when nothing failed, 1 otherwise.\n"},
  {"config-reference", "usage: delivery-worker config-reference\n"
                       "  Prints every configuration key as a Markdown table.\n"},
  {"version", "usage: delivery-worker version\n"
              "  Prints the worker's version and commit, librdkafka's version and features,\n"
              "  and libcurl's version.\n"},
};

static int is_help(const char *arg)
{
  return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static const char *help_of(const char *cmd)
{
  for (size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
    if (strcmp(command_help[i][0], cmd) == 0)
      return command_help[i][1];
  return NULL;
}

static int print_version(void)
{
  char rdkafka[1024], oidc[512];
  dw_kafka_version(rdkafka, sizeof(rdkafka));
  dw_kafka_describe_features(NULL, oidc, sizeof(oidc));
  printf("delivery-worker %s (commit %s)\n%s\n%s\n%s\n", DW_VERSION, DW_COMMIT, rdkafka,
         dw_http_version_line(), oidc);
  return 0;
}

static int usage_error(const char *cmd, const char *what, const char *arg)
{
  fprintf(stderr, "delivery-worker %s: %s \"%s\"\n%s", cmd, what, arg, help_of(cmd));
  return 2;
}

int main(int argc, char **argv)
{
  const char *cmd = argc > 1 ? argv[1] : NULL;
  const char *file = NULL;
  const char *set[OVERRIDES_MAX], *props[OVERRIDES_MAX];
  struct dw_config_args args = {set, 0, props, 0};
  long timeout_s = 10;
  /* For every command: a log reader that went away must not end the process (writes to it
   * fail with EPIPE and the line is dropped). Dying mid-redrive after producing but before
   * committing its position would redrive the same letters again. Library sockets use
   * MSG_NOSIGNAL already. */
  signal(SIGPIPE, SIG_IGN);
  if (!cmd) {
    usage(stderr);
    return 2;
  }
  if (strcmp(cmd, "help") == 0 || is_help(cmd)) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "replay") == 0)
    return dw_replay_main(argc - 1, argv + 1);
  if (strcmp(cmd, "redrive") == 0)
    return dw_redrive_main(argc - 1, argv + 1);
  if (strcmp(cmd, "healthcheck") == 0)
    return dw_healthcheck_main(argc - 1, argv + 1);
  if (strcmp(cmd, "--version") == 0)
    return print_version();
  if (!help_of(cmd)) {
    fprintf(stderr, "delivery-worker: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
  }
  int takes_config = strcmp(cmd, "version") != 0 && strcmp(cmd, "config-reference") != 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (is_help(a)) {
      fputs(help_of(cmd), stdout);
      return 0;
    }
    if (!takes_config)
      return usage_error(cmd, "takes no argument, got", a);
    if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
      file = argv[++i];
    } else if ((strcmp(a, "-X") == 0 || strcmp(a, "--set") == 0) && i + 1 < argc) {
      int x = a[1] == 'X';
      size_t *n = x ? &args.props_count : &args.set_count;
      if (*n == OVERRIDES_MAX)
        return usage_error(cmd, "too many overrides (at most 64 of each) at", argv[i + 1]);
      (x ? props : set)[(*n)++] = argv[++i];
    } else if (strncmp(a, "-X", 2) == 0 && a[2]) { /* -Xname=value, as kcat takes it */
      if (args.props_count == OVERRIDES_MAX)
        return usage_error(cmd, "too many overrides (at most 64 of each) at", a);
      props[args.props_count++] = a + 2;
    } else if (strcmp(cmd, "preflight") == 0 && strcmp(a, "--timeout") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      timeout_s = strtol(argv[++i], &end, 10);
      if (errno || end == argv[i] || *end || timeout_s < 1 || timeout_s > 120)
        return usage_error(cmd, "--timeout wants whole seconds 1-120, got", argv[i]);
    } else {
      return usage_error(cmd, "unexpected argument", a);
    }
  }
  if (strcmp(cmd, "version") == 0)
    return print_version();
  if (strcmp(cmd, "config-reference") == 0) {
    dw_config_print_reference(stdout);
    return 0;
  }
  if (!file && strcmp(cmd, "preflight") == 0) {
    fprintf(stderr, "delivery-worker %s: -c FILE is required\n%s", cmd, help_of(cmd));
    return 2;
  }
  struct dw_config cfg;
  char err[1024];
  dw_config_init(&cfg);
  if (dw_config_load_args(&cfg, file, environ, &args, 0, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    dw_config_cleanup(&cfg);
    return 1;
  }
  int rc = 0;
  if (strcmp(cmd, "check-config") == 0) {
    /* The properties as librdkafka itself takes them (names, values, features of this build),
     * for the consumers and the producers, without connecting. */
    if (dw_kafka_conf_check(&cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      dw_config_cleanup(&cfg);
      return 1;
    }
    dw_config_print(&cfg, stdout);
    char line[512];
    dw_kafka_describe_features(&cfg, line, sizeof(line));
    printf("# %s\n", line);
  } else if (strcmp(cmd, "preflight") == 0) {
    rc = dw_preflight_run(&cfg, stdout, (int)timeout_s * 1000);
  } else {
    dw_log_setup(cfg.log.level, cfg.log.format);
    rc = dw_worker_run(&cfg);
  }
  dw_config_cleanup(&cfg);
  return rc;
}
