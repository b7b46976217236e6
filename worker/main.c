/* delivery-worker's command line: parses argv and hands over; nothing else lives here. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dw/config.h"
#include "dw/healthcheck.h"
#include "dw/kafka.h"
#include "dw/log.h"
#include "dw/redrive.h"
#include "dw/replay.h"
#include "dw/worker.h"

extern char **environ;

static void usage(FILE *out)
{
  fputs("usage: delivery-worker run [-c FILE]         run until SIGTERM/SIGINT, then drain\n"
        "       delivery-worker check-config [-c FILE] validate and print the effective config\n"
        "         (without -c: the defaults and DELIVERY_WORKER_<GROUP>_<KEY> variables alone)\n"
        "       delivery-worker config-reference      print every config key (Markdown)\n"
        "       delivery-worker replay -c FILE ...    re-process a range of the input topic\n"
        "       delivery-worker redrive -c FILE ...   move dead letters back to the input topic\n"
        "       delivery-worker healthcheck [--address HOST:PORT]  GET /healthz: exit 0 or 1\n"
        "       delivery-worker version\n"
        "  (delivery-worker replay --help, delivery-worker redrive --help: their options)\n",
        out);
}

int main(int argc, char **argv)
{
  const char *cmd = argc > 1 ? argv[1] : NULL;
  const char *file = NULL;
  /* For every command: a log reader that went away must not end the process (writes to it
   * fail with EPIPE and the line is dropped). Dying mid-redrive after producing but before
   * committing its position would redrive the same letters again. Library sockets use
   * MSG_NOSIGNAL already. */
  signal(SIGPIPE, SIG_IGN);
  if (!cmd) {
    usage(stderr);
    return 2;
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("delivery-worker %s\n", DW_VERSION);
    return 0;
  }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "config-reference") == 0) {
    dw_config_print_reference(stdout);
    return 0;
  }
  if (strcmp(cmd, "replay") == 0)
    return dw_replay_main(argc - 1, argv + 1);
  if (strcmp(cmd, "redrive") == 0)
    return dw_redrive_main(argc - 1, argv + 1);
  if (strcmp(cmd, "healthcheck") == 0)
    return dw_healthcheck_main(argc - 1, argv + 1);
  if (strcmp(cmd, "run") != 0 && strcmp(cmd, "check-config") != 0) {
    fprintf(stderr, "delivery-worker: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return 2;
  }
  for (int i = 2; i < argc; i++) {
    if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
      file = argv[++i];
    } else {
      fprintf(stderr, "delivery-worker %s: unexpected argument \"%s\"\n", cmd, argv[i]);
      usage(stderr);
      return 2;
    }
  }
  struct dw_config cfg;
  char err[1024];
  dw_config_init(&cfg);
  if (dw_config_load(&cfg, file, environ, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s\n", err);
    dw_config_cleanup(&cfg);
    return 1;
  }
  int rc = 0;
  if (strcmp(cmd, "check-config") == 0) {
    /* kafka.properties as librdkafka itself takes them (names, values, features of this
     * build), without connecting. */
    if (dw_kafka_conf_check(&cfg, err, sizeof(err)) < 0) {
      fprintf(stderr, "%s\n", err);
      dw_config_cleanup(&cfg);
      return 1;
    }
    dw_config_print(&cfg, stdout);
    char line[512];
    dw_kafka_describe_features(&cfg, line, sizeof(line));
    printf("# %s\n", line);
  } else {
    dw_log_setup(cfg.log.level, cfg.log.format);
    rc = dw_worker_run(&cfg);
  }
  dw_config_cleanup(&cfg);
  return rc;
}
