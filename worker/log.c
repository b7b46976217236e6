/* Logging: every module reports through here, and so do librdkafka and libcurl from their own
 * threads. Each call formats one whole line (JSON object or text) in a bounded buffer and
 * hands it to a single write(2) on stderr, so lines never interleave. A message identical to
 * the previous one (same level, text and context) within a second of the last time it was
 * printed is suppressed and counted; the count is reported on the next line printed for it,
 * or before the next different message. */
#include "dw/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dw/common.h"

#define LINE_MAX_BYTES 8192  /* a whole line, newline included */
#define FIELDS_MAX 5120      /* the context fields of a line: 3 escaped strings fit */
#define FIELD_VALUE_MAX 256  /* one context string, before escaping */
#define SUPPRESS_MS 1000

enum format { FORMAT_JSON, FORMAT_TEXT };

static atomic_int min_level = DW_LOG_INFO;
static atomic_int out_format = FORMAT_JSON;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The suppression state: the last message printed and how often it was dropped since. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int valid;
  int level;
  int64_t printed_ms;
  uint64_t suppressed;
  char msg[LINE_MAX_BYTES];
  char fields[FIELDS_MAX];
} last;

/* A bounded buffer: appends stop at cap, and `full` records that something was cut. */
struct buf {
  char *p;
  size_t len;
  size_t cap; /* usable bytes, excluding the terminating NUL */
  int full;
};

static void buf_init(struct buf *b, char *mem, size_t size)
{
  b->p = mem;
  b->len = 0;
  b->cap = size - 1;
  b->full = 0;
  mem[0] = '\0';
}

static int buf_put(struct buf *b, const char *s, size_t n)
{
  if (b->full || n > b->cap - b->len) {
    b->full = 1;
    return -1;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int buf_puts(struct buf *b, const char *s)
{
  return buf_put(b, s, strlen(s));
}

/* Appends s escaped for a JSON string (json) or for one text line, whole characters only,
 * invalid UTF-8 replaced by U+FFFD. Returns -1 when it had to stop at the buffer's end. */
static int put_escaped(struct buf *b, const char *s, size_t max, int json)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strnlen(s, max);
  size_t i = 0;
  char esc[8];
  while (i < n) {
    unsigned char c = p[i];
    size_t len = 1;
    int rc;
    if (c == '"' && json) {
      rc = buf_puts(b, "\\\"");
    } else if (c == '\\') {
      rc = buf_puts(b, "\\\\");
    } else if (c == '\n') {
      rc = buf_puts(b, "\\n");
    } else if (c == '\r') {
      rc = buf_puts(b, "\\r");
    } else if (c == '\t') {
      rc = buf_puts(b, "\\t");
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", c);
      rc = buf_puts(b, esc);
    } else if (c < 0x80) {
      rc = buf_put(b, (const char *)p + i, 1);
    } else {
      len = dw_utf8_seq_len(p + i, n - i);
      if (len == 0) {
        len = 1;
        rc = buf_puts(b, json ? "\\ufffd" : "\xef\xbf\xbd");
      } else {
        rc = buf_put(b, (const char *)p + i, len);
      }
    }
    if (rc)
      return -1;
    i += len;
  }
  return 0;
}

/* The context part of a line, in the configured format. */
static void format_fields(struct buf *b, const struct dw_log_ctx *ctx, int json)
{
  char num[32];
  const char *names[] = {"task", "topic"};
  const char *values[2];
  if (!ctx)
    return;
  values[0] = ctx->task;
  values[1] = ctx->topic;
  for (size_t i = 0; i < DW_ARRAY_SIZE(values); i++) {
    if (!values[i])
      continue;
    buf_puts(b, json ? ",\"" : " ");
    buf_puts(b, names[i]);
    buf_puts(b, json ? "\":\"" : "=");
    put_escaped(b, values[i], FIELD_VALUE_MAX, json);
    if (json)
      buf_puts(b, "\"");
  }
  if (ctx->partition >= 0) {
    snprintf(num, sizeof(num), json ? ",\"partition\":%" PRId32 : " partition=%" PRId32,
             ctx->partition);
    buf_puts(b, num);
  }
  if (ctx->offset >= 0) {
    snprintf(num, sizeof(num), json ? ",\"offset\":%" PRId64 : " offset=%" PRId64, ctx->offset);
    buf_puts(b, num);
  }
  if (ctx->log_id) {
    buf_puts(b, json ? ",\"log_id\":\"" : " log_id=");
    put_escaped(b, ctx->log_id, FIELD_VALUE_MAX, json);
    if (json)
      buf_puts(b, "\"");
  }
}

static void write_all(const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return;
    p += w;
    n -= (size_t)w;
  }
}

/* Formats and writes one line. fields is already formatted; suffix goes after the message. */
static void emit(int level, int64_t now_ms, const char *msg, const char *suffix,
                 const char *fields)
{
  char line[LINE_MAX_BYTES];
  char ts[32];
  struct buf b;
  int json = atomic_load(&out_format) == FORMAT_JSON;
  /* Room kept for what follows the message: suffix, fields, closing, truncation mark. */
  size_t tail = strlen(suffix) + strlen(fields) + 16;
  dw_rfc3339(now_ms, ts, sizeof(ts));
  buf_init(&b, line, sizeof(line));
  if (json) {
    buf_puts(&b, "{\"ts\":\"");
    buf_puts(&b, ts);
    buf_puts(&b, "\",\"level\":\"");
    buf_puts(&b, level_names[level]);
    buf_puts(&b, "\",\"msg\":\"");
  } else {
    char head[64];
    snprintf(head, sizeof(head), "%s %-5s ", ts, level_names[level]);
    buf_puts(&b, head);
  }
  /* Escape the message into the room left, then mark a cut. */
  b.cap = sizeof(line) - 1 - tail;
  if (put_escaped(&b, msg, LINE_MAX_BYTES, json)) {
    b.full = 0;
    b.cap = sizeof(line) - 1 - tail + 3;
    buf_puts(&b, "...");
  }
  b.full = 0;
  b.cap = sizeof(line) - 1;
  buf_puts(&b, suffix);
  if (json)
    buf_puts(&b, "\"");
  buf_puts(&b, fields);
  buf_puts(&b, json ? "}\n" : "\n");
  write_all(line, b.len);
}

/* " (repeated N times)": the message occurred N more times since its line was printed. */
static void repeated(char *buf, size_t size, uint64_t n)
{
  buf[0] = '\0';
  if (n > 0)
    snprintf(buf, size, " (repeated %" PRIu64 " time%s)", n, n == 1 ? "" : "s");
}

int dw_log_setup(const char *level_name, const char *format)
{
  int level = -1;
  int fmt;
  for (size_t i = 0; i < DW_ARRAY_SIZE(level_names); i++)
    if (level_name && strcmp(level_name, level_names[i]) == 0)
      level = (int)i;
  if (level < 0)
    return DW_EINVAL;
  if (format && strcmp(format, "json") == 0)
    fmt = FORMAT_JSON;
  else if (format && strcmp(format, "text") == 0)
    fmt = FORMAT_TEXT;
  else
    return DW_EINVAL;
  atomic_store(&min_level, level);
  atomic_store(&out_format, fmt);
  /* The suppression state holds lines of the old format. */
  pthread_mutex_lock(&lock);
  last.valid = 0;
  last.suppressed = 0;
  pthread_mutex_unlock(&lock);
  return 0;
}

int dw_log_enabled(enum dw_log_level level)
{
  return (int)level >= atomic_load(&min_level);
}

void dw_log_write(enum dw_log_level level, const struct dw_log_ctx *ctx, const char *fmt, ...)
{
  char msg[LINE_MAX_BYTES];
  char fields[FIELDS_MAX];
  char suffix[48];
  struct buf fb;
  va_list ap;
  int64_t now;
  int lvl = (int)level;
  if (lvl < DW_LOG_DEBUG || lvl > DW_LOG_ERROR)
    lvl = DW_LOG_ERROR;
  if (!dw_log_enabled((enum dw_log_level)lvl))
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  buf_init(&fb, fields, sizeof(fields));
  format_fields(&fb, ctx, atomic_load(&out_format) == FORMAT_JSON);
  now = dw_wallclock_ms();

  pthread_mutex_lock(&lock);
  int same = last.valid && last.level == lvl && strcmp(last.msg, msg) == 0 &&
             strcmp(last.fields, fields) == 0;
  if (same && now - last.printed_ms < SUPPRESS_MS && now >= last.printed_ms) {
    last.suppressed++;
    goto out;
  }
  if (same) {
    /* Printed again after the window: this line also stands for the ones dropped. */
    repeated(suffix, sizeof(suffix), last.suppressed ? last.suppressed + 1 : 0);
    emit(lvl, now, msg, suffix, fields);
    last.suppressed = 0;
    last.printed_ms = now;
    goto out;
  }
  if (last.valid && last.suppressed > 0) {
    repeated(suffix, sizeof(suffix), last.suppressed);
    emit(last.level, now, last.msg, suffix, last.fields);
  }
  emit(lvl, now, msg, "", fields);
  last.valid = 1;
  last.level = lvl;
  last.printed_ms = now;
  last.suppressed = 0;
  memcpy(last.msg, msg, sizeof(msg));
  memcpy(last.fields, fields, sizeof(fields));
out:
  pthread_mutex_unlock(&lock);
}
