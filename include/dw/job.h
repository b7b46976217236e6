/* The life of a job (one record taken from the input topic, until its result or dead letter is
 * in Kafka) as one state, and the decisions on it: what a delivery report makes of it in each
 * guarantee, and what the end of an exactly-once transaction makes of it. Pure: the worker
 * holds the job's record, task and output and carries each decision out (produce again,
 * write it smaller, count it, finish its record, free it, stop). The transitions are in
 * docs/design.md, "The life of a job". */
#ifndef DW_JOB_H
#define DW_JOB_H

enum dw_job_state {
  DW_JOB_NEW = 0,   /* taken; its event not yet with the poller (an invalid one never is) */
  DW_JOB_POLLING,   /* the poller has its task */
  DW_JOB_OUTPUT,    /* its output is to be produced (at-least-once: produced, until
                       acknowledged) */
  DW_JOB_RETRYING,  /* at-least-once: a send or a delivery failed; waits for the retry timer */
  DW_JOB_PARKED,    /* exactly-once: waits for the next transaction */
  DW_JOB_STAGED,    /* exactly-once: produced in the open transaction */
  DW_JOB_TOO_LARGE, /* exactly-once: in the open transaction, refused by Kafka as too large */
  DW_JOB_ORPHAN,    /* out of the flow; its memory waits for its last delivery report */
};

enum dw_job_action {
  DW_JOB_NONE = 0, /* nothing now (exactly-once: the transaction's end decides) */
  DW_JOB_FINISH,   /* its output is in Kafka: count it, finish its record, free the job */
  DW_JOB_SHRINK,   /* refused as too large: a result becomes a dead letter, a dead letter goes
                      without one more part, and it is produced again */
  DW_JOB_RETRY,    /* at-least-once: produce it again from the retry timer */
  DW_JOB_PRODUCE,  /* exactly-once: produce it again (its transaction was aborted) */
  DW_JOB_DROP,     /* leave the flow without an output: its offset is not committed, so it is
                      processed again by the partition's next owner or after a restart */
  DW_JOB_RELEASE,  /* the orphan's last report: free its memory */
};

struct dw_job_decision {
  enum dw_job_action action;
  int failed; /* the output could not be written: say so */
  int doom;   /* exactly-once: the open transaction must be aborted */
  int stop;   /* the producer can no longer be used: the worker stops */
};

/* Whether the job's output is in the open transaction (STAGED or TOO_LARGE). */
int dw_job_staged(enum dw_job_state state);

/* A delivery report for a job in *state (err 0, DW_ERANGE, DW_ECANCELED or DW_EIO, and fatal,
 * as dw_delivery_cb has them), with sends_left reports still due after this one; *state moves
 * on. At-least-once: acknowledged, FINISH; too large, SHRINK; a fatal error, DROP and stop;
 * another, RETRY (RETRYING). Exactly-once: a report only notes a failure (doom; too large:
 * TOO_LARGE; fatal: stop); purged by an abort (DW_ECANCELED), nothing. An orphan is RELEASEd
 * at its last report. */
void dw_job_on_delivered(enum dw_job_state *state, int exactly_once, int err, int fatal,
                         unsigned sends_left, struct dw_job_decision *out);

/* Exactly-once: the open transaction committed or was aborted, for a job in *state; ours when
 * its partition is still assigned in the job's generation and not being revoked. A staged job
 * is FINISHed when committed; after an abort it is DROPped when no longer ours (its next owner
 * redoes it), else produced again (PRODUCE, or SHRINK when it was too large), as OUTPUT. A job
 * not staged: NONE. */
void dw_job_on_settle(enum dw_job_state *state, int committed, int ours,
                      struct dw_job_decision *out);

#endif
