/* A job between the poller's outcome and the committer: its output is produced, its delivery
 * report comes back, and in exactly-once mode the transaction it is in commits or aborts.
 * These are the decisions on what follows; the worker carries them out through its commit
 * strategy. Pure. */
#include "dw/job.h"

#include <string.h>

#include "dw/common.h"

int dw_job_staged(enum dw_job_state state)
{
  return state == DW_JOB_STAGED || state == DW_JOB_TOO_LARGE;
}

void dw_job_on_delivered(enum dw_job_state *state, int exactly_once, int err, int fatal,
                         unsigned sends_left, struct dw_job_decision *out)
{
  memset(out, 0, sizeof(*out));
  if (*state == DW_JOB_ORPHAN) {
    out->action = sends_left == 0 ? DW_JOB_RELEASE : DW_JOB_NONE;
    return;
  }
  if (exactly_once) {
    /* The transaction's commit (or abort) decides what becomes of the job; a record purged by
     * an abort is redone by that abort already. */
    if (!err || err == DW_ECANCELED)
      return;
    out->doom = 1;
    if (err == DW_ERANGE && !fatal && *state == DW_JOB_STAGED)
      *state = DW_JOB_TOO_LARGE;
    out->failed = out->stop = fatal;
    return;
  }
  if (err == DW_ERANGE && !fatal) {
    out->action = DW_JOB_SHRINK;
    return;
  }
  if (!err) {
    out->action = DW_JOB_FINISH;
    return;
  }
  out->failed = 1;
  if (fatal) {
    out->action = DW_JOB_DROP; /* not committed: processed again after a restart */
    out->stop = 1;
    return;
  }
  out->action = DW_JOB_RETRY;
  *state = DW_JOB_RETRYING;
}

void dw_job_on_settle(enum dw_job_state *state, int committed, int ours,
                      struct dw_job_decision *out)
{
  memset(out, 0, sizeof(*out));
  if (!dw_job_staged(*state))
    return;
  if (committed) {
    out->action = DW_JOB_FINISH;
  } else if (!ours) {
    out->action = DW_JOB_DROP;
  } else {
    out->action = *state == DW_JOB_TOO_LARGE ? DW_JOB_SHRINK : DW_JOB_PRODUCE;
    *state = DW_JOB_OUTPUT;
  }
}
