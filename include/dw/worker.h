/* The worker: wires consumer, event, poller, producer and offset trackers together, owns the
 * libuv loop and the lifecycle (starting -> running -> draining -> stopped). */
#ifndef DW_WORKER_H
#define DW_WORKER_H

#include "dw/config.h"

/* Runs until SIGTERM/SIGINT (then drains and returns 0), or until a fatal error (returns a
 * non-zero exit code after saying why). A second signal exits at once. SIGPIPE must be
 * ignored by the caller (main does, for every command). */
int dw_worker_run(const struct dw_config *cfg);

#endif
