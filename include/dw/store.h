/* The shared budget store: a Redis or Valkey server (limits.store) that keeps one sliding log
 * of calls per app and tenant for every replica and any other program using the same keys. A
 * call's permit is taken by one atomic script in the store, on the store's clock, so the
 * replicas together never pass the limits. Reached without blocking the loop (hiredis's
 * asynchronous API on libuv; the host name is resolved on libuv's thread pool); an answer later
 * than the timeout counts as a failure and drops the connection, which is made again when the
 * store is next asked. hiredis.h stays inside worker/store.c; a build without libhiredis-dev
 * has no store (dw_store_new says so). */
#ifndef DW_STORE_H
#define DW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct dw_store;

/* What to take: up to want permits from the log named key (copied), within per_second calls
 * in any window of 1000 + slack_ms and per_minute in any 60000 + slack_ms (0: unlimited). */
struct dw_store_request {
  const char *key;
  uint32_t per_second, per_minute;
  uint64_t slack_ms;
  uint32_t want;
};

/* The answer: err 0 and granted permits (each counted in the store already: a call may be sent
 * for each), when none was granted the milliseconds until one may be (wait_ms), and the calls
 * in the log's 1 s and 60 s windows with those granted (in_second, in_minute; 0 for an
 * unlimited window); or err < 0 when the store failed or did not answer in time. */
struct dw_store_answer {
  uint32_t granted;
  uint64_t wait_ms;
  uint32_t in_second, in_minute;
};
typedef void (*dw_store_cb)(void *arg, int err, const struct dw_store_answer *answer);

/* A connection to the store is up (for a caller that waits for one to ask again). */
typedef void (*dw_store_ready_cb)(void *arg);

/* Parses url (redis://HOST:PORT) and starts connecting. On error a negative DW_E* with the
 * reason in err. */
int dw_store_new(struct dw_store **out, uv_loop_t *loop, const char *url, uint64_t timeout_ms,
                 dw_store_ready_cb on_ready, void *arg, char *err, size_t errlen);

/* Asks for permits; cb runs exactly once, later, on the loop (also when the store is closed
 * meanwhile, with DW_ECANCELED). Returns DW_EAGAIN at once (cb not called) while no
 * connection is up (and starts making one), DW_ENOMEM. */
int dw_store_take(struct dw_store *s, const struct dw_store_request *req, dw_store_cb cb,
                  void *arg);

/* 1 while a connection is up. */
int dw_store_connected(const struct dw_store *s);

/* Fails what is pending (DW_ECANCELED), closes the connection and frees s once its handles are
 * closed; done(arg) (may be NULL) runs then. */
void dw_store_close(struct dw_store *s, void (*done)(void *arg), void *arg);

#endif
