/* The admin HTTP endpoint: GET /metrics, /healthz and /readyz served by libmicrohttpd on the
 * worker's libuv loop (no thread of MHD's own). The only module that sees microhttpd.h.
 *
 *   /metrics  200 text/plain; version=0.0.4, the body from handler->render
 *   /healthz  200 "ok\n" (the loop answered, so the process is alive)
 *   /readyz   200 "ready\n" (or the ready handler's note, e.g. held back, and "\n"), or 503
 *             with handler->ready's reason and "\n"
 *   other     404; methods other than GET and HEAD get 405 with "Allow: GET, HEAD".
 *
 * Connections are kept alive and closed after DW_ADMIN_IDLE_TIMEOUT_S idle seconds. Beyond
 * DW_ADMIN_MAX_CONNECTIONS open at once, each new connection closes the oldest one that is not
 * being answered (one that never completed a request first, then a kept-alive one), else the
 * oldest one being answered whose client took nothing for DW_ADMIN_STALL_S (checked again
 * every second while over the limit), so idle, half-sent or never-read connections cannot keep
 * probes out. The DW_ADMIN_NEWEST_SPARED newest connections, and any whose request is waiting
 * in its socket, are never closed so. libmicrohttpd itself refuses connections only beyond
 * DW_ADMIN_MAX_CONNECTIONS + DW_ADMIN_SHED_HEADROOM. */
#ifndef DW_ADMIN_H
#define DW_ADMIN_H

#include <stddef.h>
#include <uv.h>

#define DW_ADMIN_MAX_CONNECTIONS 64
/* Connections over DW_ADMIN_MAX_CONNECTIONS being shed (closed on libmicrohttpd's next run,
 * which accepts at most 10 at once) fit in this. */
#define DW_ADMIN_SHED_HEADROOM 32
/* The newest connections are never shed (they may not have sent their request yet). */
#define DW_ADMIN_NEWEST_SPARED 16
#define DW_ADMIN_IDLE_TIMEOUT_S 30
/* A connection being answered whose client took none of the answer for this long is
 * "stalled": past DW_ADMIN_MAX_CONNECTIONS it is shed like an idle one. */
#define DW_ADMIN_STALL_S 5
/* Longest reason /readyz reports (bytes, including the NUL). */
#define DW_ADMIN_MAX_REASON 512

struct dw_admin;

/* Called on the loop, from inside the request being answered. */
struct dw_admin_handler {
  /* /metrics: on success returns 0 with *body a malloc'd buffer of *len bytes, whose ownership
   * passes to the admin endpoint (it frees it with free()); any other return answers 500.
   * NULL answers 404. dw_metrics_render has this shape apart from its first argument. */
  int (*render)(void *arg, char **body, size_t *len);
  /* /readyz: non-zero when ready (a NUL-terminated note it writes into why, if any, is the
   * 200's text instead of "ready"); otherwise writes a NUL-terminated reason into why (whylen
   * bytes, why starts as ""). NULL = always ready. */
  int (*ready)(void *arg, char *why, size_t whylen);
  void *arg;
};

/* Starts serving on listen, "host:port": a numeric IPv4 address ("0.0.0.0:9464",
 * "127.0.0.1:0"), a bracketed IPv6 address ("[::]:9464" also accepts IPv4, "[::1]:0"), or
 * "localhost:port"; port 0 picks a free port (see dw_admin_port). No name lookup happens.
 * h is copied. On success *out is the endpoint, to be closed with dw_admin_close. On failure
 * returns DW_EINVAL (bad address) or DW_EIO (bind, listen, libuv), with the reason (the
 * system's text where there is one) in err. */
int dw_admin_start(struct dw_admin **out, uv_loop_t *loop, const char *listen,
                   const struct dw_admin_handler *h, char *err, size_t errlen);

/* The TCP port actually bound. */
int dw_admin_port(const struct dw_admin *a);

/* Stops serving at once: closes the uv handles, then stops the daemon (open connections are
 * closed, no more handler calls). a is freed by the handles' close callbacks, so the loop must
 * run once more; done(arg) (may be NULL) runs then. a must not be used after this call. Not
 * from inside a handler callback. NULL is fine (done is not called). */
void dw_admin_close(struct dw_admin *a, void (*done)(void *arg), void *arg);

#endif
