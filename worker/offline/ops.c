/* The shared parts of the offline Kafka operations `replay` and `redrive`: parsing of times,
 * partition lists and dead-letter headers (pure, unit-tested), clients made from the worker's
 * own config (same brokers, same kafka.properties for TLS and SASL), and progress on stderr.
 * These commands run once and exit, so unlike the consumer and the producer they may block on librdkafka calls. */
#include "dw/ops.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/kafka.h"

extern char **environ;

/* ---- times and numbers ---- */

int dw_ops_parse_int64(const char *s, int64_t min, int64_t *out)
{
  if (!s || !*s || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
    return DW_EINVAL;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < min)
    return DW_EINVAL;
  *out = v;
  return 0;
}

/* Days from 1970-01-01 to a civil date (proleptic Gregorian; Howard Hinnant's algorithm), so
 * no time zone of the machine gets involved. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int expect(const char **p, const char *one_of)
{
  if (!**p || !strchr(one_of, **p))
    return -1;
  (*p)++;
  return 0;
}

static int parse_rfc3339(const char *s, int64_t *ms)
{
  const char *p = s;
  int y, mo, d, h, mi, sec, frac_ms = 0;
  if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
      digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
      digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &sec))
    return DW_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return DW_EINVAL;
  if (*p == '.') {
    p++;
    int n = 0;
    for (; *p >= '0' && *p <= '9'; p++, n++)
      if (n < 3)
        frac_ms = frac_ms * 10 + (*p - '0');
    if (n == 0)
      return DW_EINVAL;
    for (; n < 3; n++)
      frac_ms *= 10;
  }
  int64_t offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om) || oh > 23 || om > 59)
      return DW_EINVAL;
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return DW_EINVAL; /* a time without a zone would depend on where the command runs */
  }
  if (*p)
    return DW_EINVAL;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  *ms = secs * 1000 + frac_ms;
  return 0;
}

int dw_ops_parse_time(const char *s, int64_t *ms)
{
  if (!s || !*s)
    return DW_EINVAL;
  if (strspn(s, "0123456789") == strlen(s))
    return dw_ops_parse_int64(s, 0, ms);
  return parse_rfc3339(s, ms);
}

/* ---- lists ---- */

int dw_ops_parse_partitions(const char *s, int32_t *out, size_t max, size_t *n)
{
  *n = 0;
  if (!s || !*s)
    return DW_EINVAL;
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    if (*p < '0' || *p > '9')
      return DW_EINVAL;
    long v = strtol(p, &end, 10);
    if (errno || v > INT32_MAX || (*end && *end != ','))
      return DW_EINVAL;
    for (size_t i = 0; i < *n; i++)
      if (out[i] == (int32_t)v)
        return DW_EINVAL;
    if (*n == max)
      return DW_ERANGE;
    out[(*n)++] = (int32_t)v;
    if (!*end)
      return 0;
    p = end + 1;
  }
}

int dw_ops_list_has(const char *list, const char *item, size_t len)
{
  for (const char *p = list; p && *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == len && memcmp(p, item, len) == 0)
      return 1;
    p = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* ---- dead letters ---- */

static int header_is(const struct dw_header *h, const char *name)
{
  return strcmp(h->name, name) == 0;
}

/* Copies a header value (not NUL-terminated) into a string buffer, cut to fit. */
static void header_str(const struct dw_header *h, char *buf, size_t size)
{
  size_t n = h->value ? DW_MIN(h->len, size - 1) : 0;
  if (n)
    memcpy(buf, h->value, n);
  buf[n] = '\0';
}

void dw_ops_letter_read(const struct dw_header *h, size_t n, int64_t record_ts_ms,
                        struct dw_letter *out)
{
  char buf[64];
  memset(out, 0, sizeof(*out));
  out->failed_at_ms = record_ts_ms >= 0 ? record_ts_ms : -1;
  /* The worker writes its dlq.* headers last, dlq.reason first: dlq.* headers before the last
   * dlq.reason are copies of the event's own (letters written before incoming dlq.* headers
   * were renamed orig.dlq.*) and may be forged, so they are not read. */
  size_t own = 0;
  for (size_t i = 0; i < n; i++)
    if (header_is(&h[i], "dlq.reason"))
      own = i;
  for (size_t i = 0; i < n; i++) {
    if (i < own && strncmp(h[i].name, "dlq.", 4) == 0)
      continue;
    if (header_is(&h[i], "dlq.reason")) {
      header_str(&h[i], out->reason, sizeof(out->reason));
    } else if (header_is(&h[i], "dlq.error_code")) {
      header_str(&h[i], out->error_code, sizeof(out->error_code));
    } else if (header_is(&h[i], "dlq.failed_at")) {
      int64_t ms;
      header_str(&h[i], buf, sizeof(buf));
      if (dw_ops_parse_time(buf, &ms) == 0)
        out->failed_at_ms = ms;
    } else if (header_is(&h[i], "dlq.value_omitted") || header_is(&h[i], "dlq.headers_omitted") ||
               header_is(&h[i], "dlq.key_omitted")) {
      out->incomplete = 1;
    } else if (header_is(&h[i], "redrive.count")) {
      int64_t c;
      header_str(&h[i], buf, sizeof(buf));
      /* An unreadable count is treated as "redriven once": never as a fresh letter. */
      out->redrive_count = dw_ops_parse_int64(buf, 0, &c) == 0 ? c : 1;
    }
  }
}

enum dw_redrive_verdict dw_ops_letter_verdict(const struct dw_redrive_filter *f,
                                              const struct dw_letter *l)
{
  if (f->reasons && !dw_ops_list_has(f->reasons, l->reason, strlen(l->reason)))
    return DW_REDRIVE_FILTERED;
  if (f->error_codes && !dw_ops_list_has(f->error_codes, l->error_code, strlen(l->error_code)))
    return DW_REDRIVE_FILTERED;
  /* A letter of unknown time never falls inside a time window. */
  if (f->since_ms >= 0 && (l->failed_at_ms < 0 || l->failed_at_ms < f->since_ms))
    return DW_REDRIVE_FILTERED;
  if (f->until_ms >= 0 && (l->failed_at_ms < 0 || l->failed_at_ms >= f->until_ms))
    return DW_REDRIVE_FILTERED;
  if (l->incomplete)
    return DW_REDRIVE_INCOMPLETE;
  if (l->redrive_count >= f->max_redrives)
    return DW_REDRIVE_EXHAUSTED;
  return DW_REDRIVE_MATCH;
}

int dw_ops_header_kept(const char *name)
{
  return strncmp(name, "dlq.", 4) != 0 && strncmp(name, "orig.dlq.", 9) != 0 &&
         strncmp(name, "redrive.", 8) != 0;
}

/* ---- config and clients ---- */

int dw_ops_usage_error(const char *cmd, void (*usage)(FILE *out), const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "delivery-worker %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n", stderr);
  usage(stderr);
  return DW_OPS_EXIT_USAGE;
}

int dw_ops_override_add(struct dw_ops_overrides *ov, int x, const char *value)
{
  size_t *n = x ? &ov->props_count : &ov->set_count;
  if (*n == DW_OPS_OVERRIDES_MAX)
    return DW_ERANGE;
  (x ? ov->props : ov->set)[(*n)++] = value;
  return 0;
}

int dw_ops_load_config(struct dw_config *cfg, const char *cmd, const char *file,
                       const struct dw_ops_overrides *ov)
{
  char err[1024];
  struct dw_config_args args = {NULL, 0, NULL, 0};
  if (ov)
    args = (struct dw_config_args){ov->set, ov->set_count, ov->props, ov->props_count};
  if (dw_config_load_args(cfg, file, environ, &args, 1, err, sizeof(err)) < 0) {
    fprintf(stderr, "delivery-worker %s: %s\n", cmd, err);
    return -1;
  }
  if (dw_config_insecure_tls(cfg, err, sizeof(err)) > 0)
    fprintf(stderr, "delivery-worker %s: warning: kafka.allow_insecure_tls: the brokers' TLS is "
                    "not fully verified (%s)\n", cmd, err);
  return 0;
}

/* librdkafka's own warnings and errors (broker unreachable, TLS or SASL failures) are the
 * first hint when a command times out: show them; leave the chatter out. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  (void)rk;
  if (level <= 4 && !(strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this")))
    fprintf(stderr, "librdkafka %s: %s\n", fac, buf);
}

struct rd_kafka_s *dw_ops_kafka_new(const struct dw_config *cfg, int consumer,
                                    const char *const *defaults,
                                    void (*setup)(struct rd_kafka_conf_s *conf, void *arg),
                                    void *arg, char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, consumer, defaults, err, errlen);
  if (!conf)
    return NULL;
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log); /* a command talks to a terminal */
  if (setup)
    setup(conf, arg);
  return dw_kafka_client_new(consumer, conf, "a Kafka client", err, errlen);
}

/* ---- progress ---- */

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dw_ops_progress_init(struct dw_ops_progress *p)
{
  p->tty = isatty(STDERR_FILENO);
  p->next_ms = mono_ms() + (p->tty ? 250 : 10000);
  p->dirty = 0;
}

void dw_ops_progress(struct dw_ops_progress *p, int force, const char *fmt, ...)
{
  int64_t now = mono_ms();
  if (!force && now < p->next_ms)
    return;
  p->next_ms = now + (p->tty ? 250 : 10000);
  va_list ap;
  va_start(ap, fmt);
  if (p->tty)
    fputs("\r\033[K", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (p->tty) {
    p->dirty = 1;
  } else {
    fputc('\n', stderr);
  }
  fflush(stderr);
}

void dw_ops_progress_done(struct dw_ops_progress *p)
{
  if (p->dirty)
    fputc('\n', stderr);
  p->dirty = 0;
}
