/* `delivery-worker redrive`: moves dead letters back to the input topic, filtered by reason,
 * error code and time, carrying a redrive count so a letter that keeps failing stops being
 * redriven. Nothing is removed from the dead-letter topic. Part of the Kafka operations module
 * (ops.h). */
#ifndef DW_REDRIVE_H
#define DW_REDRIVE_H

#include <stdio.h>

/* Runs the command; argv[0] is "redrive". Returns a DW_OPS_EXIT_* code. */
int dw_redrive_main(int argc, char **argv);

/* The usage text of the command. */
void dw_redrive_usage(FILE *out);

#endif
