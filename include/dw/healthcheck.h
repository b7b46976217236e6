/* `delivery-worker healthcheck`: one GET /healthz of a running worker's admin endpoint, for a
 * container's HEALTHCHECK in an image with no shell and no HTTP client. The address is the one
 * given (--address), else admin.listen of the file given (-c), else of the environment
 * (DELIVERY_WORKER_ADMIN_LISTEN), else admin.listen's default; a wildcard host (0.0.0.0, ::,
 * empty) is asked on loopback. The answer must come within a short deadline. The address's
 * parsing is pure (dw_healthcheck_target); dw_healthcheck_main does the one blocking libcurl
 * transfer in its own short-lived process, never on the worker's loop. */
#ifndef DW_HEALTHCHECK_H
#define DW_HEALTHCHECK_H

#include <stddef.h>
#include <stdio.h>

/* Splits a listen address ("host:port", "[v6]:port", ":port"; dw/hostport.h) into the host to
 * connect to and the port, with a wildcard or empty host replaced by loopback of its family.
 * 0, or DW_EINVAL when the address is not HOST:PORT or a part does not fit. */
int dw_healthcheck_target(const char *listen, char *host, size_t hostlen, char *port,
                          size_t portlen);

/* The subcommand: argv[0] is "healthcheck". Prints one line (the URL and the outcome) and
 * returns the process's exit status: 0 healthy (200), 1 not (another status, refused, timed
 * out), 2 for bad arguments or a file that does not load. */
int dw_healthcheck_main(int argc, char **argv);

void dw_healthcheck_usage(FILE *out);

#endif
