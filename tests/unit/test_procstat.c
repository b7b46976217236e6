/* Unit tests of the process metrics' parsing: /proc/self/stat with a command name holding
 * spaces and parentheses, truncated and non-numeric fields, /proc/stat's btime; and a read of
 * this process's own /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dw/common.h"
#include "dw/procstat.h"

/* Fields 3..24 of a stat line: utime 250 (14), stime 150 (15), starttime 12345 (22), rss 2000
 * (24); the rest filler. */
#define STAT_TAIL " S 1 1 1 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 9 0 12345 123456789 2000 " \
                  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"

static void test_parse_stat(void **state)
{
  (void)state;
  const char *line = "4242 (delivery) (x y)" STAT_TAIL "\n";
  struct dw_procstat p = {0};
  assert_int_equal(dw_procstat_parse_stat(line, strlen(line), 100, 4096, 1700000000, &p), 0);
  assert_true(p.cpu_seconds == 4.0);
  assert_true(p.resident_bytes == 2000.0 * 4096);
  assert_true(p.start_time_seconds == 1700000000 + 123.45);

  /* Cut before rss, a letter where a number goes, no ')' at all, bad units. */
  char cut[256];
  snprintf(cut, sizeof(cut), "1 (w)%s", STAT_TAIL);
  assert_int_equal(dw_procstat_parse_stat(cut, strlen(cut) - 80, 100, 4096, 0, &p), DW_EINVAL);
  const char *letter = "1 (w) S 1 1 1 0 -1 4194560 100 0 0 0 x 150";
  assert_int_equal(dw_procstat_parse_stat(letter, strlen(letter), 100, 4096, 0, &p), DW_EINVAL);
  assert_int_equal(dw_procstat_parse_stat("1 w S", 5, 100, 4096, 0, &p), DW_EINVAL);
  assert_int_equal(dw_procstat_parse_stat(line, strlen(line), 0, 4096, 0, &p), DW_EINVAL);
}

static void test_parse_btime(void **state)
{
  (void)state;
  const char *stat = "cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1764700000\nprocesses 7\n";
  double t = 0;
  assert_int_equal(dw_procstat_parse_btime(stat, strlen(stat), &t), 0);
  assert_true(t == 1764700000);
  assert_int_equal(dw_procstat_parse_btime("cpu 1\nbtimex 5\n", 15, &t), DW_EINVAL);
  assert_int_equal(dw_procstat_parse_btime("btime \n", 7, &t), DW_EINVAL);
}

/* This process: it started before now and after the year 2020, holds some memory and a few
 * descriptors (stdin, stdout, stderr at least) below its limit. */
static void test_read_self(void **state)
{
  (void)state;
  struct dw_procstat p;
  assert_int_equal(dw_procstat_read(&p), 0);
  double now = (double)time(NULL);
  assert_true(p.start_time_seconds > 1577836800 && p.start_time_seconds <= now + 1);
  assert_true(p.resident_bytes > 0);
  assert_true(p.cpu_seconds >= 0);
  assert_true(p.open_fds >= 3);
  assert_true(p.max_fds < 0 || p.open_fds < p.max_fds);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_stat),
      cmocka_unit_test(test_parse_btime),
      cmocka_unit_test(test_read_self),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
