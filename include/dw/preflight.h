/* `delivery-worker preflight`: the online checks of a configuration before the first event
 * (brokers, topics, ACLs, the broker's offset.metadata.max.bytes, a Feishu token, the app's
 * scope), each bounded in time, printed as a checklist (dw/checklist.h decides the lines). An
 * offline command: it blocks, and runs no worker loop beyond its own for the API calls. */
#ifndef DW_PREFLIGHT_H
#define DW_PREFLIGHT_H

#include <stdio.h>

#include "dw/config.h"

/* Runs every probe (each gives up after timeout_ms), prints the checklist to out and returns
 * the exit status: 0 when no check failed, 1 otherwise. */
int dw_preflight_run(const struct dw_config *cfg, FILE *out, int timeout_ms);

#endif
