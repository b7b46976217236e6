/* Unit tests of a job's decisions: every kind of delivery report (acknowledged, too large,
 * purged, failed, fatal) in each guarantee and for an orphan, and the end of an exactly-once
 * transaction (committed, aborted for a job still ours or not, too large, not staged). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dw/common.h"
#include "dw/job.h"

static void test_staged(void **state)
{
  (void)state;
  assert_true(dw_job_staged(DW_JOB_STAGED));
  assert_true(dw_job_staged(DW_JOB_TOO_LARGE));
  assert_false(dw_job_staged(DW_JOB_NEW));
  assert_false(dw_job_staged(DW_JOB_POLLING));
  assert_false(dw_job_staged(DW_JOB_OUTPUT));
  assert_false(dw_job_staged(DW_JOB_RETRYING));
  assert_false(dw_job_staged(DW_JOB_PARKED));
  assert_false(dw_job_staged(DW_JOB_ORPHAN));
}

static void test_delivered_at_least_once(void **state)
{
  struct dw_job_decision d;
  enum dw_job_state s;
  (void)state;
  /* Acknowledged: finished. */
  s = DW_JOB_OUTPUT;
  dw_job_on_delivered(&s, 0, 0, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_FINISH);
  assert_false(d.failed || d.doom || d.stop);
  /* Too large: written smaller. */
  dw_job_on_delivered(&s, 0, DW_ERANGE, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_SHRINK);
  assert_false(d.failed || d.stop);
  assert_int_equal(s, DW_JOB_OUTPUT);
  /* Another failure: said, and retried. */
  dw_job_on_delivered(&s, 0, DW_EIO, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_RETRY);
  assert_true(d.failed);
  assert_false(d.stop || d.doom);
  assert_int_equal(s, DW_JOB_RETRYING);
  /* Fatal (too large or not): said, dropped, the worker stops. */
  s = DW_JOB_OUTPUT;
  dw_job_on_delivered(&s, 0, DW_EIO, 1, 0, &d);
  assert_int_equal(d.action, DW_JOB_DROP);
  assert_true(d.failed && d.stop);
  dw_job_on_delivered(&s, 0, DW_ERANGE, 1, 0, &d);
  assert_int_equal(d.action, DW_JOB_DROP);
  assert_true(d.stop);
}

static void test_delivered_exactly_once(void **state)
{
  struct dw_job_decision d;
  enum dw_job_state s = DW_JOB_STAGED;
  (void)state;
  /* Acknowledged, or purged by an abort that redoes it: nothing until the transaction ends. */
  dw_job_on_delivered(&s, 1, 0, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_NONE);
  assert_false(d.doom || d.stop || d.failed);
  dw_job_on_delivered(&s, 1, DW_ECANCELED, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_NONE);
  assert_false(d.doom);
  assert_int_equal(s, DW_JOB_STAGED);
  /* A failure dooms the transaction. */
  dw_job_on_delivered(&s, 1, DW_EIO, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_NONE);
  assert_true(d.doom);
  assert_false(d.stop || d.failed);
  assert_int_equal(s, DW_JOB_STAGED);
  /* Too large: doomed, and written smaller after the abort. */
  dw_job_on_delivered(&s, 1, DW_ERANGE, 0, 0, &d);
  assert_true(d.doom);
  assert_int_equal(s, DW_JOB_TOO_LARGE);
  /* Fatal: doomed, said, the worker stops; the job waits for the end. */
  s = DW_JOB_STAGED;
  dw_job_on_delivered(&s, 1, DW_ERANGE, 1, 0, &d);
  assert_int_equal(d.action, DW_JOB_NONE);
  assert_true(d.doom && d.stop && d.failed);
  assert_int_equal(s, DW_JOB_STAGED);
}

static void test_delivered_orphan(void **state)
{
  struct dw_job_decision d;
  enum dw_job_state s = DW_JOB_ORPHAN;
  (void)state;
  for (int eos = 0; eos < 2; eos++) {
    dw_job_on_delivered(&s, eos, DW_EIO, 1, 1, &d);
    assert_int_equal(d.action, DW_JOB_NONE);
    assert_false(d.doom || d.stop || d.failed);
    dw_job_on_delivered(&s, eos, 0, 0, 0, &d);
    assert_int_equal(d.action, DW_JOB_RELEASE);
    assert_int_equal(s, DW_JOB_ORPHAN);
  }
}

static void test_settle(void **state)
{
  struct dw_job_decision d;
  enum dw_job_state s;
  (void)state;
  /* Committed: finished, ours or not. */
  s = DW_JOB_STAGED;
  dw_job_on_settle(&s, 1, 1, &d);
  assert_int_equal(d.action, DW_JOB_FINISH);
  s = DW_JOB_TOO_LARGE;
  dw_job_on_settle(&s, 1, 0, &d);
  assert_int_equal(d.action, DW_JOB_FINISH);
  /* Aborted, no longer ours: dropped for the next owner. */
  s = DW_JOB_STAGED;
  dw_job_on_settle(&s, 0, 0, &d);
  assert_int_equal(d.action, DW_JOB_DROP);
  /* Aborted, ours: produced again, smaller when too large. */
  s = DW_JOB_STAGED;
  dw_job_on_settle(&s, 0, 1, &d);
  assert_int_equal(d.action, DW_JOB_PRODUCE);
  assert_int_equal(s, DW_JOB_OUTPUT);
  s = DW_JOB_TOO_LARGE;
  dw_job_on_settle(&s, 0, 1, &d);
  assert_int_equal(d.action, DW_JOB_SHRINK);
  assert_int_equal(s, DW_JOB_OUTPUT);
  assert_false(d.doom || d.stop || d.failed);
  /* Not in the transaction: nothing. */
  static const enum dw_job_state others[] = {DW_JOB_NEW,      DW_JOB_POLLING, DW_JOB_OUTPUT,
                                             DW_JOB_RETRYING, DW_JOB_PARKED,  DW_JOB_ORPHAN};
  for (size_t i = 0; i < DW_ARRAY_SIZE(others); i++) {
    for (int committed = 0; committed < 2; committed++) {
      s = others[i];
      dw_job_on_settle(&s, committed, 1, &d);
      assert_int_equal(d.action, DW_JOB_NONE);
      assert_int_equal(s, others[i]);
    }
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_staged),
      cmocka_unit_test(test_delivered_at_least_once),
      cmocka_unit_test(test_delivered_exactly_once),
      cmocka_unit_test(test_delivered_orphan),
      cmocka_unit_test(test_settle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
