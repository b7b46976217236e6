/* The process_* metrics' source. /proc/self/stat gives CPU time, resident pages and the start
 * time in clock ticks since boot; /proc/stat's btime turns that into Unix time (read once);
 * /proc/self/fd is counted entry by entry; the descriptor limit is getrlimit's. Each file is
 * read once into a fixed buffer, so a scrape costs a few system calls and no allocation. */
#include "dw/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dw/common.h"

/* The unsigned decimal at *p (spaces before it skipped); advances *p past it. */
static int next_number(const char **p, const char *end, unsigned long long *out)
{
  const char *s = *p;
  unsigned long long v = 0;
  while (s < end && *s == ' ')
    s++;
  if (s >= end || *s < '0' || *s > '9')
    return DW_EINVAL;
  for (; s < end && *s >= '0' && *s <= '9'; s++) {
    if (v > (UINT64_MAX - 9) / 10)
      return DW_EINVAL;
    v = v * 10 + (unsigned long long)(*s - '0');
  }
  *p = s;
  *out = v;
  return 0;
}

/* Skips one space-separated field of any content. */
static int skip_field(const char **p, const char *end)
{
  const char *s = *p;
  while (s < end && *s == ' ')
    s++;
  if (s >= end)
    return DW_EINVAL;
  while (s < end && *s != ' ')
    s++;
  *p = s;
  return 0;
}

int dw_procstat_parse_stat(const char *text, size_t len, long ticks_per_s, long page_size,
                           double boot_time, struct dw_procstat *out)
{
  const char *end = text + len, *p = NULL;
  unsigned long long utime = 0, stime = 0, start = 0, rss = 0;
  if (ticks_per_s < 1 || page_size < 1)
    return DW_EINVAL;
  /* "pid (comm) state ...": comm may hold spaces and parentheses, so the fields start after
   * the last ')'. Field numbers are proc(5)'s: state is 3. */
  for (const char *c = text; c < end; c++)
    if (*c == ')')
      p = c + 1;
  if (!p)
    return DW_EINVAL;
  for (int field = 3; field <= 24; field++) {
    int rc;
    if (field == 14)
      rc = next_number(&p, end, &utime);
    else if (field == 15)
      rc = next_number(&p, end, &stime);
    else if (field == 22)
      rc = next_number(&p, end, &start);
    else if (field == 24)
      rc = next_number(&p, end, &rss);
    else
      rc = skip_field(&p, end);
    if (rc < 0)
      return rc;
  }
  out->cpu_seconds = (double)(utime + stime) / (double)ticks_per_s;
  out->resident_bytes = (double)rss * (double)page_size;
  out->start_time_seconds = boot_time + (double)start / (double)ticks_per_s;
  return 0;
}

int dw_procstat_parse_btime(const char *text, size_t len, double *boot_time)
{
  const char *end = text + len;
  for (const char *line = text; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    const char *eol = nl ? nl : end;
    if (eol - line > 6 && memcmp(line, "btime ", 6) == 0) {
      const char *p = line + 6;
      unsigned long long v;
      if (next_number(&p, eol, &v) < 0)
        return DW_EINVAL;
      *boot_time = (double)v;
      return 0;
    }
    line = eol + 1;
  }
  return DW_EINVAL;
}

/* Reads up to size - 1 bytes of path into buf; returns how many, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t got = 0;
  if (fd < 0)
    return -1;
  while (got < size - 1) {
    ssize_t n = read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  return (ssize_t)got;
}

/* Boot time, read once: /proc/stat is large on a many-core machine and btime never changes. */
static double boot_time(void)
{
  static double cached = -1;
  if (cached < 0) {
    char *buf = malloc(DW_PROCSTAT_MAX_PROC_STAT_BYTES);
    ssize_t n = buf ? read_file("/proc/stat", buf, DW_PROCSTAT_MAX_PROC_STAT_BYTES) : -1;
    double t = 0;
    if (n > 0 && dw_procstat_parse_btime(buf, (size_t)n, &t) == 0)
      cached = t;
    free(buf);
  }
  return cached < 0 ? 0 : cached;
}

int dw_procstat_read(struct dw_procstat *out)
{
  char buf[DW_PROCSTAT_MAX_STAT_BYTES];
  struct rlimit rl;
  memset(out, 0, sizeof(*out));
  ssize_t n = read_file("/proc/self/stat", buf, sizeof(buf));
  if (n <= 0 || dw_procstat_parse_stat(buf, (size_t)n, sysconf(_SC_CLK_TCK),
                                       sysconf(_SC_PAGESIZE), boot_time(), out) < 0) {
    memset(out, 0, sizeof(*out));
    return DW_EIO;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
  /* Entries of /proc/self/fd but ".", ".." and the one opendir holds itself. */
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)))
      if (e->d_name[0] != '.')
        count++;
    closedir(d);
    out->open_fds = count > 0 ? (double)(count - 1) : 0;
  }
  return 0;
}
