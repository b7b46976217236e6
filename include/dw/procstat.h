/* The process's own resource use, for the process_* metrics Prometheus's client libraries
 * export under the same names: CPU seconds, resident memory, open and maximum file
 * descriptors, start time. Parsing (dw_procstat_parse_*) is pure; dw_procstat_read reads
 * Linux's /proc (a few small files and one directory of the process's own descriptors, each
 * read bounded), cheap enough for the loop at scrape time. */
#ifndef DW_PROCSTAT_H
#define DW_PROCSTAT_H

#include <stddef.h>

/* Bytes of /proc/self/stat and of /proc/stat read at most (btime is near the top of the
 * latter, after one line per CPU). */
#define DW_PROCSTAT_MAX_STAT_BYTES 4096
#define DW_PROCSTAT_MAX_PROC_STAT_BYTES (256u << 10)

struct dw_procstat {
  double cpu_seconds;        /* user + system time */
  double resident_bytes;
  double open_fds;
  double max_fds;            /* the soft RLIMIT_NOFILE */
  double start_time_seconds; /* Unix time the process started */
};

/* Parses /proc/self/stat's text (len bytes, not NUL-terminated): utime and stime (ticks) into
 * cpu_seconds, rss (pages) into resident_bytes and starttime (ticks since boot) plus boot_time
 * (Unix seconds) into start_time_seconds. The command name in parentheses may hold any byte.
 * Returns 0 or DW_EINVAL (a field missing or not a number, ticks_per_s or page_size < 1). */
int dw_procstat_parse_stat(const char *text, size_t len, long ticks_per_s, long page_size,
                           double boot_time, struct dw_procstat *out);

/* The "btime" line of /proc/stat's text (len bytes): the boot time in Unix seconds. Returns 0
 * or DW_EINVAL. */
int dw_procstat_parse_btime(const char *text, size_t len, double *boot_time);

/* Fills out from /proc/self/stat, /proc/self/fd, getrlimit and (once: it does not change)
 * /proc/stat's btime. Returns 0, or DW_EIO when /proc cannot be read (out is then zeroed). */
int dw_procstat_read(struct dw_procstat *out);

#endif
