/* Offline Kafka operations (`delivery-worker replay`, `delivery-worker redrive`): the parts the
 * two commands share (`delivery-worker preflight` makes its client here too). Parsing of
 * times, lists and dead-letter headers is pure (no I/O) so unit tests reach it; the rest makes
 * librdkafka clients from the worker's config and shows progress. With replay.c, redrive.c and
 * preflight.c (all in worker/offline/) this is the "Kafka operations" module: besides the Kafka
 * modules (kafka.c, consumer.c, producer.c) and oidc.c the only code that sees rdkafka.h,
 * because these commands talk to the cluster once and exit instead of running on the worker's
 * loop. They may block: nothing here runs on the loop. */
#ifndef DW_OPS_H
#define DW_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dw/config.h"
#include "dw/record.h"

/* Exit codes of replay and redrive. */
enum {
  DW_OPS_EXIT_OK = 0,
  DW_OPS_EXIT_FAIL = 1,    /* Kafka or I/O failure; the message says what and how to fix it */
  DW_OPS_EXIT_USAGE = 2,   /* bad flags */
  DW_OPS_EXIT_REFUSED = 3, /* refused: the group has live members */
};

/* How long one request to the cluster may take before the command gives up. */
#define DW_OPS_TIMEOUT_MS 30000

/* Parses a time: RFC 3339 ("2026-11-24T03:28:04Z", with optional fraction and a "Z" or
 * "+08:00" offset) or milliseconds since the epoch (digits only). Returns 0 or DW_EINVAL. */
int dw_ops_parse_time(const char *s, int64_t *ms);

/* Parses a whole decimal number >= min. Returns 0 or DW_EINVAL. */
int dw_ops_parse_int64(const char *s, int64_t min, int64_t *out);

/* Parses "0,2,5" into at most max distinct partition numbers (>= 0). Returns 0, DW_EINVAL
 * (not a list of numbers, or a duplicate) or DW_ERANGE (more than max). */
int dw_ops_parse_partitions(const char *s, int32_t *out, size_t max, size_t *n);

/* Non-zero when the comma-separated list holds item (len bytes) as one of its elements. */
int dw_ops_list_has(const char *list, const char *item, size_t len);

/* What redrive reads from a dead letter's headers. Strings are NUL-terminated copies, cut to
 * their buffer; absent headers leave them empty. */
struct dw_letter {
  char reason[64];
  char error_code[32];
  int64_t failed_at_ms;   /* dlq.failed_at, else the record's timestamp; -1 if neither */
  int64_t redrive_count;  /* redrive.count of the original event; 0 if never redriven */
  int incomplete;         /* dlq.key_omitted, dlq.value_omitted or dlq.headers_omitted: not the
                             original event */
};

/* Reads a dead letter's headers (the last value of a repeated name wins). Only the worker's
 * own dlq.* headers are read: those from the last dlq.reason on (the worker writes them after
 * the event's headers, dlq.reason first); dlq.* headers before it came with the event. */
void dw_ops_letter_read(const struct dw_header *h, size_t n, int64_t record_ts_ms,
                        struct dw_letter *out);

/* Which letters redrive moves. NULL lists and -1 times mean "any". */
struct dw_redrive_filter {
  const char *reasons;      /* comma-separated dlq.reason values */
  const char *error_codes;  /* comma-separated dlq.error_code values */
  int64_t since_ms;         /* failed at or after (inclusive) */
  int64_t until_ms;         /* failed before (exclusive) */
  int64_t max_redrives;     /* letters already redriven this often are exhausted */
};

enum dw_redrive_verdict {
  DW_REDRIVE_MATCH,     /* redrive it */
  DW_REDRIVE_FILTERED,  /* not selected by reason, error code or time */
  DW_REDRIVE_EXHAUSTED, /* selected, but redriven max_redrives times already */
  DW_REDRIVE_INCOMPLETE, /* selected, but the letter lost its key, value or original headers (too
                            large for Kafka): redriven it would fail again, and without its
                            redrive.count it could be redriven forever */
};

enum dw_redrive_verdict dw_ops_letter_verdict(const struct dw_redrive_filter *f,
                                              const struct dw_letter *l);

/* Non-zero when a dead letter's header is carried to the redriven event: everything but the
 * dlq.* headers (the next dead letter must not be ambiguous), the orig.dlq.* copies of an
 * event's own dlq.* headers, and the old redrive.* headers (redrive writes fresh ones). */
int dw_ops_header_kept(const char *name);

/* Prints "delivery-worker CMD: <message>" and the command's usage to stderr; returns
 * DW_OPS_EXIT_USAGE. */
int dw_ops_usage_error(const char *cmd, void (*usage)(FILE *out), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --set group.key=value and -X name=value of an offline command, as `run` takes them. */
#define DW_OPS_OVERRIDES_MAX 64
struct dw_ops_overrides {
  const char *set[DW_OPS_OVERRIDES_MAX];
  const char *props[DW_OPS_OVERRIDES_MAX];
  size_t set_count, props_count;
};

/* Adds one -X (x != 0) or --set value (kept, not copied). 0, or DW_ERANGE past the bound. */
int dw_ops_override_add(struct dw_ops_overrides *ov, int x, const char *value);

/* Loads the config file the way `run` does, then ov (may be NULL); on error prints it and
 * returns non-zero. */
int dw_ops_load_config(struct dw_config *cfg, const char *cmd, const char *file,
                       const struct dw_ops_overrides *ov);

struct rd_kafka_s;
struct rd_kafka_conf_s;

/* A librdkafka client (consumer if consumer != 0, else producer) from the config's brokers and
 * kafka.properties over the given defaults (name, value pairs, NULL-terminated). setup (may be
 * NULL) sets callbacks on the conf before the client is made. The caller owns the handle
 * (rd_kafka_destroy). NULL with the reason in err on failure. */
struct rd_kafka_s *dw_ops_kafka_new(const struct dw_config *cfg, int consumer,
                                    const char *const *defaults,
                                    void (*setup)(struct rd_kafka_conf_s *conf, void *arg),
                                    void *arg, char *err, size_t errlen);

/* Progress on stderr: at most 4 times a second on a terminal (rewriting one line), every 10 s
 * otherwise (one line each). */
struct dw_ops_progress {
  int tty;
  int64_t next_ms;
  int dirty; /* a terminal line is waiting for its newline */
};

void dw_ops_progress_init(struct dw_ops_progress *p);
/* Prints the line if it is due (or if force is set). */
void dw_ops_progress(struct dw_ops_progress *p, int force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends a terminal line before other output. */
void dw_ops_progress_done(struct dw_ops_progress *p);

#endif
