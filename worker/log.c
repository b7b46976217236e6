/* Logging: every module reports through here, and so do librdkafka and libcurl from their own
 * threads. Each call formats one whole line (JSON object or text) in a bounded buffer and
 * hands it to a single write(2) on stderr, so lines never interleave. A message identical to
 * the previous one (same level, text and context) within a second of the last time it was
 * printed is suppressed and counted; the count is reported on the next line printed for it,
 * or before the next different message.
 *
 * Logging never blocks the caller (the loop among them): when stderr is a pipe or a terminal,
 * lines go through a descriptor of its own opened non-blocking (/proc/self/fd/2: a new open
 * file description, so whoever shares stderr keeps blocking writes); a socket gets
 * MSG_DONTWAIT. A line that does not fit at all is dropped and counted (dw_log_dropped); the
 * rest of a line cut short is kept and written before anything else, so lines stay whole.
 * A reader that went away is a dropped line too (EPIPE: SIGPIPE is the process's to ignore).
 * dw_log_raw (signal handlers) cannot wait for that rest: when a line is partly out, it ends
 * it with a newline before its own, and the rest is dropped. */
#include "dw/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/text.h"

#define LINE_MAX_BYTES 8192  /* a whole line, newline included */
#define FIELDS_MAX 7168      /* the context fields of a line: 3 + 5 short escaped strings fit */
#define FIELD_VALUE_MAX 256  /* one context string, before escaping */
#define OUTCOME_VALUE_MAX 128 /* one string of a task's outcome, before escaping */
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
static void put_string_field(struct buf *b, const char *name, const char *value, size_t max,
                             int json)
{
  if (!value || !value[0])
    return;
  buf_puts(b, json ? ",\"" : " ");
  buf_puts(b, name);
  buf_puts(b, json ? "\":\"" : "=");
  put_escaped(b, value, max, json);
  if (json)
    buf_puts(b, "\"");
}

static void put_number_field(struct buf *b, const char *name, int64_t value, int json)
{
  char num[32];
  if (value < 0)
    return;
  snprintf(num, sizeof(num), json ? ",\"%s\":%" PRId64 : " %s=%" PRId64, name, value);
  buf_puts(b, num);
}

/* A task's outcome: its fields after the context's, in a fixed order. */
static void format_outcome(struct buf *b, const struct dw_log_outcome *o, int json)
{
  if (!o)
    return;
  put_string_field(b, "website", o->website, OUTCOME_VALUE_MAX, json);
  put_string_field(b, "tenant", o->tenant, OUTCOME_VALUE_MAX, json);
  put_string_field(b, "event_id", o->event_id, OUTCOME_VALUE_MAX, json);
  put_string_field(b, "outcome", o->outcome, OUTCOME_VALUE_MAX, json);
  put_string_field(b, "reason", o->reason, OUTCOME_VALUE_MAX, json);
  put_number_field(b, "calls", o->calls, json);
  put_number_field(b, "duration_ms", o->duration_ms, json);
}

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
  format_outcome(b, ctx->outcome, json);
}

/* How lines reach stderr; chosen again whenever stderr is another file (tests redirect it). */
enum sink_kind {
  SINK_BLOCKING, /* a regular file: write(2) on stderr */
  SINK_OWN,      /* a pipe or terminal: write(2) on sink.fd, a non-blocking description */
  SINK_SOCKET,   /* send(2) on stderr with MSG_DONTWAIT */
  SINK_POLL,     /* a pipe or terminal that could not be reopened: write only when poll says so */
};

/* Under lock, except the atomics, read by dw_log_raw from signal handlers. */
static struct {
  enum sink_kind kind;
  int fd;  /* our descriptor number, once opened: never closed, so a signal handler that read
            * raw_fd never writes into a reused number (a Kafka or HTTP socket) */
  int out; /* where lines go: fd (SINK_OWN) or STDERR_FILENO */
  int known;
  dev_t dev;
  ino_t ino;
  atomic_int raw_fd;
  atomic_int raw_kind;
  atomic_int partial; /* a line is partly out (pending_len > 0) */
  atomic_int raw_cut; /* dw_log_raw wrote while a line was partly out */
} sink = {.fd = -1, .out = STDERR_FILENO, .raw_fd = STDERR_FILENO, .raw_kind = SINK_BLOCKING};

/* The rest of a line a full pipe took only part of; written before any other line. */
static char pending[LINE_MAX_BYTES];
static size_t pending_len;

static void set_pending(size_t len)
{
  pending_len = len;
  atomic_store(&sink.partial, len > 0);
}

static atomic_uint_least64_t dropped;

static void sink_update(void)
{
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) {
    memset(&st, 0, sizeof(st));
    st.st_mode = S_IFREG;
  }
  if (sink.known && st.st_dev == sink.dev && st.st_ino == sink.ino)
    return;
  set_pending(0);
  sink.known = 1;
  sink.dev = st.st_dev;
  sink.ino = st.st_ino;
  int fd = -1;
  if (S_ISSOCK(st.st_mode)) {
    sink.kind = SINK_SOCKET;
  } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    /* O_NONBLOCK on stderr itself would change it for every process sharing it. */
    fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    sink.kind = fd >= 0 ? SINK_OWN : SINK_POLL;
  } else {
    sink.kind = SINK_BLOCKING;
  }
  /* Our number, once taken, is only ever replaced with dup2 (atomic), never closed: a
   * signal handler may have read raw_fd just before it changes. */
  if (fd >= 0 && sink.fd >= 0) {
    int rc;
    do
      rc = dup2(fd, sink.fd);
    while (rc < 0 && (errno == EINTR || errno == EBUSY));
    close(fd); /* never published */
    if (rc < 0)
      sink.kind = SINK_POLL;
    else
      fcntl(sink.fd, F_SETFD, FD_CLOEXEC); /* dup2 clears it */
  } else if (fd >= 0) {
    sink.fd = fd;
  }
  sink.out = sink.kind == SINK_OWN ? sink.fd : STDERR_FILENO;
  atomic_store(&sink.raw_fd, sink.out);
  atomic_store(&sink.raw_kind, (int)sink.kind);
  /* Published first; now our number lets go of the old pipe (its reader sees the end) by
   * becoming another reference to stderr, unused until a pipe comes back. */
  if (sink.kind != SINK_OWN && sink.fd >= 0 && dup2(STDERR_FILENO, sink.fd) >= 0)
    fcntl(sink.fd, F_SETFD, FD_CLOEXEC);
}

/* One attempt to write n bytes: how many went, or -1 (full, no reader, error). */
static ssize_t sink_write(int kind, int fd, const char *p, size_t n)
{
  ssize_t w;
  do {
    if (kind == SINK_SOCKET) {
      w = send(STDERR_FILENO, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else if (kind == SINK_POLL) {
      /* POLLOUT on a pipe promises one free page, PIPE_BUF bytes: a blocking write of more
       * could wait for the reader. */
      struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
      if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
        return -1;
      w = write(STDERR_FILENO, p, DW_MIN(n, (size_t)PIPE_BUF));
    } else {
      w = write(fd, p, n);
    }
  } while (w < 0 && errno == EINTR);
  return w;
}

/* Writes what it can of p, at most n bytes; returns how much. */
static size_t sink_write_some(const char *p, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t w = sink_write((int)sink.kind, sink.out, p + done, n - done);
    if (w <= 0)
      break;
    done += (size_t)w;
  }
  return done;
}

/* Writes one whole line, or none of it (counted as dropped). Called under lock. */
static void write_all(const char *p, size_t n)
{
  sink_update();
  if (atomic_exchange(&sink.raw_cut, 0) && pending_len > 0) {
    /* A signal's line went out in the middle of this one: its rest would be a fragment. */
    set_pending(0);
    atomic_fetch_add(&dropped, 1);
  }
  if (pending_len > 0) {
    size_t w = sink_write_some(pending, pending_len);
    memmove(pending, pending + w, pending_len - w);
    set_pending(pending_len - w);
    if (pending_len > 0) {
      atomic_fetch_add(&dropped, 1);
      return;
    }
  }
  size_t w = sink_write_some(p, n);
  if (w == 0) {
    atomic_fetch_add(&dropped, 1);
    return;
  }
  /* A pipe took part of the line: the rest goes first next time, or the line is torn. */
  memcpy(pending, p + w, n - w);
  set_pending(n - w);
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
  /* The suppression state holds lines of the old format. The sink is chosen now, so that
   * dw_log_raw does not write to a blocking stderr before the first line. */
  pthread_mutex_lock(&lock);
  last.valid = 0;
  last.suppressed = 0;
  sink_update();
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

uint64_t dw_log_dropped(void)
{
  return atomic_load(&dropped);
}

void dw_log_raw(const char *text, size_t len)
{
  char buf[1024];
  int kind = atomic_load(&sink.raw_kind), fd = atomic_load(&sink.raw_fd);
  ssize_t w;
  if (atomic_load(&sink.partial) && len < sizeof(buf)) {
    /* A line is partly out: end it, so this one stands on a line of its own (the cut line's
     * rest is then dropped, see write_all). One write keeps it whole in the pipe. */
    buf[0] = '\n';
    memcpy(buf + 1, text, len);
    w = sink_write(kind, fd, buf, len + 1);
    if (w > 0)
      atomic_store(&sink.raw_cut, 1);
  } else {
    w = sink_write(kind, fd, text, len);
  }
  (void)w;
}
