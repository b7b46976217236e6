/* libFuzzer target for the configuration loader (worker/config.c): the libconfig file parser
 * behind it, every key's type, bounds and check hook, the kafka.properties list, the
 * DELIVERY_WORKER_* environment overrides (including the name=value,... properties syntax with
 * its \, escapes), app_secret_file and the checks across keys.
 *
 * Input: the file's text, then optionally a NUL byte and NUL-separated "NAME=value" environment
 * entries. The text is written to worker.conf in a private temporary directory that also holds
 * "secret" (an app secret file) and "inc.conf" (a file to @include); "$D/" in the input names
 * that directory. Inputs naming device or kernel files, or climbing with "..", are skipped: a
 * fuzzer that finds /dev/stdin or a FIFO only finds a hang of its own making.
 *
 * Invariants: a load that fails says why in err (NUL-terminated, "file:line: ..." or
 * "environment: ..."); a load that succeeds yields every required string non-empty, the
 * bounds and orderings that validation promises, and a config that dw_config_print can write;
 * dw_config_cleanup frees everything (LeakSanitizer watches). Build and run with
 * tests/fuzz/run.sh; corpus tests/fuzz/corpus/config, dictionary tests/fuzz/config.dict. */
#define DW_FUZZ_NAME "fuzz_config"
#include "fuzz_main.h"

#include <stdio.h>

#include "dw/common.h"
#include "dw/config.h"

#define MAX_ENV 64

static char dir[64];

static void write_file(const char *name, const char *text, size_t len)
{
  char path[128];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
    abort();
}

static void remove_dir(void)
{
  static const char *const names[] = {"worker.conf", "inc.conf", "secret"};
  char path[128];
  for (size_t i = 0; i < DW_ARRAY_SIZE(names); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void setup(void)
{
  static const char inc[] = "log = { level = \"warn\"; };\n";
  static const char secret[] = "s3cret-from-file\n";
  const char *tmp = getenv("TMPDIR");
  if (dir[0])
    return;
  snprintf(dir, sizeof(dir), "%s/dw-fuzz-config.XXXXXX", tmp && strlen(tmp) < 32 ? tmp : "/tmp");
  if (!mkdtemp(dir))
    abort();
  atexit(remove_dir);
  write_file("inc.conf", inc, sizeof(inc) - 1);
  write_file("secret", secret, sizeof(secret) - 1);
}

static int has(const uint8_t *p, size_t n, const char *needle)
{
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(p + i, needle, k) == 0)
      return 1;
  return 0;
}

/* Copies in to out with every "$D/" replaced by the temporary directory and a "/". */
static size_t expand(const uint8_t *in, size_t n, char *out)
{
  size_t o = 0, dl = strlen(dir);
  for (size_t i = 0; i < n; i++) {
    if (i + 3 <= n && memcmp(in + i, "$D/", 3) == 0) {
      memcpy(out + o, dir, dl);
      o += dl;
      out[o++] = '/';
      i += 2;
      continue;
    }
    out[o++] = (char)in[i];
  }
  out[o] = '\0';
  return o;
}

static void check_loaded(const struct dw_config *c)
{
  const char *required[] = {c->kafka.brokers, c->kafka.group_id, c->kafka.input_topic,
                            c->kafka.results_topic, c->kafka.dlq_topic, c->feishu.base_url,
                            c->feishu.app_id, c->feishu.app_secret, c->poll.schedule,
                            c->log.level, c->log.format, c->processing.guarantee,
                            c->feishu.app_type};
  for (size_t i = 0; i < DW_ARRAY_SIZE(required); i++)
    if (!required[i] || !required[i][0])
      abort();
  if (c->worker.resume_in_flight > c->worker.max_in_flight ||
      c->poll.interval_ms > c->poll.max_interval_ms ||
      c->poll.retry_initial_ms > c->poll.retry_max_ms ||
      c->feishu.connect_timeout_ms > c->feishu.request_timeout_ms ||
      c->worker.resume_in_flight < 1)
    abort();
  if (!(c->poll.multiplier >= 1.0 && c->poll.multiplier <= 10.0) ||
      !(c->poll.jitter >= 0.0 && c->poll.jitter <= 1.0))
    abort();
  if (strcmp(c->kafka.input_topic, c->kafka.results_topic) == 0 ||
      strcmp(c->kafka.input_topic, c->kafka.dlq_topic) == 0 ||
      strcmp(c->kafka.results_topic, c->kafka.dlq_topic) == 0)
    abort();
  size_t n = strlen(c->feishu.base_url);
  if (n == 0 || c->feishu.base_url[n - 1] == '/')
    abort();
  if (c->kafka.properties_count > DW_CONFIG_MAX_PROPERTIES)
    abort();
  for (size_t i = 0; i < c->kafka.properties_count; i++)
    if (!c->kafka.properties[i].name || !c->kafka.properties[i].name[0] ||
        !c->kafka.properties[i].value)
      abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  struct dw_config cfg;
  char err[512];
  char *env[MAX_ENV + 1];
  size_t nenv = 0, file_len;
  const uint8_t *nul;
  char *text;
  int rc;

  setup();
  if (size > 65536 || has(input, size, "..") || has(input, size, "dev/") ||
      has(input, size, "proc/") || has(input, size, "sys/") || has(input, size, "run/"))
    return 0;
  text = malloc(size * (strlen(dir) + 1) + 1); /* room for every "$D/" expanded */
  if (!text)
    abort();
  nul = memchr(input, '\0', size);
  file_len = nul ? (size_t)(nul - input) : size;
  expand(input, file_len, text);
  write_file("worker.conf", text, strlen(text));
  if (nul) {
    /* NUL-separated environment entries, expanded the same way, one buffer each. */
    const uint8_t *p = nul + 1, *end = input + size;
    while (p < end && nenv < MAX_ENV) {
      const uint8_t *q = memchr(p, '\0', (size_t)(end - p));
      size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
      env[nenv] = malloc(n * (strlen(dir) + 1) + 1);
      if (!env[nenv])
        abort();
      expand(p, n, env[nenv]);
      nenv++;
      p += n + 1;
    }
  }
  env[nenv] = NULL;

  char path[128];
  snprintf(path, sizeof(path), "%s/worker.conf", dir);
  for (int kafka_only = 0; kafka_only <= 1; kafka_only++) {
    dw_config_init(&cfg);
    memset(err, 0x55, sizeof(err));
    rc = kafka_only ? dw_config_load_kafka(&cfg, path, env, err, sizeof(err))
                    : dw_config_load(&cfg, path, env, err, sizeof(err));
    dw_fuzz_check_string(err, sizeof(err));
    if (getenv("DW_FUZZ_VERBOSE"))
      fprintf(stderr, "%s: %s\n", kafka_only ? "kafka-only" : "full", rc ? err : "loaded");
    if (rc != 0) {
      if (rc > 0 || err[0] == '\0')
        abort();
    } else {
      if (!kafka_only)
        check_loaded(&cfg);
      FILE *devnull = fopen("/dev/null", "w");
      if (devnull) {
        dw_config_print(&cfg, devnull);
        fclose(devnull);
      }
    }
    dw_config_cleanup(&cfg);
  }
  /* The environment alone over the defaults. */
  dw_config_init(&cfg);
  if (dw_config_load(&cfg, NULL, env, err, sizeof(err)) == 0)
    check_loaded(&cfg);
  dw_config_cleanup(&cfg);

  for (size_t i = 0; i < nenv; i++)
    free(env[i]);
  free(text);
  return 0;
}
