/* `delivery-worker replay`: sets a consumer group's committed offsets of the input topic back
 * to the start of a range (an offset or a time), for all or some partitions, so the workers
 * process those records again when they start. Part of the Kafka operations module (ops.h). */
#ifndef DW_REPLAY_H
#define DW_REPLAY_H

#include <stdio.h>

/* Runs the command; argv[0] is "replay". Returns a DW_OPS_EXIT_* code. */
int dw_replay_main(int argc, char **argv);

/* The usage text of the command. */
void dw_replay_usage(FILE *out);

#endif
