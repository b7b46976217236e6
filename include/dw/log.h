/* Logging: one JSON object per line on stderr (or plain text for humans). Safe to call from
 * any thread (librdkafka and libcurl log from their own). Identical repeated messages from one
 * call site within a second are suppressed and counted. Never blocks: a line stderr cannot
 * take (a full pipe, a reader that went away) is dropped and counted; lines are never torn,
 * except that a dw_log_raw line arriving while a full pipe holds only part of a line ends that
 * line early (the raw line then starts on its own line, and the cut line's rest is dropped). */
#ifndef DW_LOG_H
#define DW_LOG_H

#include <stddef.h>
#include <stdint.h>

enum dw_log_level { DW_LOG_DEBUG = 0, DW_LOG_INFO, DW_LOG_WARN, DW_LOG_ERROR };

/* The fields of a task's outcome line: website, tenant, event_id, outcome (succeeded, failed,
 * dead_letter), reason (a dead letter's), calls (API calls made) and duration_ms (from taking
 * the record to its outcome). NULL or "" strings and negative numbers are left out. */
struct dw_log_outcome {
  const char *website;
  const char *tenant;
  const char *event_id;
  const char *outcome;
  const char *reason;
  int64_t calls;
  int64_t duration_ms;
};

/* Context fields; NULL strings and negative numbers are left out, and so is outcome when
 * NULL. JSON lines carry them as members after msg; text lines append them as key=value. */
struct dw_log_ctx {
  const char *task;
  const char *topic;
  int32_t partition;
  int64_t offset;
  const char *log_id;
  const struct dw_log_outcome *outcome;
};

#define DW_LOG_CTX_NONE ((const struct dw_log_ctx *)0)

/* level_name: "debug", "info", "warn", "error"; format: "json" or "text". */
int dw_log_setup(const char *level_name, const char *format);
int dw_log_enabled(enum dw_log_level level);

void dw_log_write(enum dw_log_level level, const struct dw_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lines dropped since the start because stderr could not take them. */
uint64_t dw_log_dropped(void);

/* Writes text (a whole line, newline included) to stderr in one non-blocking attempt, without
 * formatting, locking or suppression: async-signal-safe, for signal handlers and watchdogs.
 * Non-blocking from dw_log_setup on. */
void dw_log_raw(const char *text, size_t len);

#define dw_debug(...) dw_log_write(DW_LOG_DEBUG, DW_LOG_CTX_NONE, __VA_ARGS__)
#define dw_info(...) dw_log_write(DW_LOG_INFO, DW_LOG_CTX_NONE, __VA_ARGS__)
#define dw_warn(...) dw_log_write(DW_LOG_WARN, DW_LOG_CTX_NONE, __VA_ARGS__)
#define dw_error(...) dw_log_write(DW_LOG_ERROR, DW_LOG_CTX_NONE, __VA_ARGS__)

#endif
