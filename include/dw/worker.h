/* The worker: wires consumer, event, poller, producer and committer together, owns the
 * libuv loop and the lifecycle (starting -> running -> draining -> stopped). Off the loop: a
 * start-up guard thread, alive until the loop runs, takes SIGTERM and SIGINT and ends a
 * start-up stuck in a library after 30 s (90 s in exactly-once mode). */
#ifndef DW_WORKER_H
#define DW_WORKER_H

#include "dw/config.h"

/* Runs until SIGTERM/SIGINT (then drains and returns 0), or until a fatal error (returns a
 * non-zero exit code after saying why). A second signal exits at once. SIGPIPE must be
 * ignored by the caller (main does, for every command). */
int dw_worker_run(const struct dw_config *cfg);

#endif
