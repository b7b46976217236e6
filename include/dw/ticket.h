/* The app_ticket of a store (ISV) app: Feishu pushes it as an event every hour (and again when
 * asked through app_ticket/resend); it is needed to obtain the app_access_token. The worker
 * takes it from a file (read when first needed, re-read when it changes) and/or a Kafka topic
 * the pushed events are forwarded to (read from its start, the newest ticket wins). */
#ifndef DW_TICKET_H
#define DW_TICKET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dw/config.h"

#define DW_TICKET_MAX 512

struct dw_ticket;

/* Sources from cfg->feishu.app_ticket_file and cfg->feishu.app_ticket_topic (either or both).
 * Returns 0, or a negative DW_E* with the cause in err. */
int dw_ticket_new(struct dw_ticket **out, uv_loop_t *loop, const struct dw_config *cfg,
                  char *err, size_t errlen);

/* Called on the loop when a ticket different from the last one arrives. */
typedef void (*dw_ticket_cb)(void *arg);

/* Who is told of new tickets (the token manager); one listener. */
void dw_ticket_set_cb(struct dw_ticket *t, dw_ticket_cb cb, void *arg);

/* The ticket to use now, or NULL while none is known (or the last one was refused). The string
 * stays valid until control returns to the loop. */
const char *dw_ticket_value(struct dw_ticket *t);

/* A number that changes with every new ticket. */
uint64_t dw_ticket_generation(const struct dw_ticket *t);

/* Takes one pushed event (JSON, see dw_app_ticket_parse); events of other apps are ignored.
 * Returns 0 when it carried a ticket for this app, else DW_EINVAL. */
int dw_ticket_offer(struct dw_ticket *t, const void *buf, size_t len);

/* The app_access_token endpoint refused the ticket of this generation (code 10012): forget it
 * until a different one arrives. */
void dw_ticket_refused(struct dw_ticket *t, uint64_t generation);

/* Stops the sources and frees t once their handles are closed; done(arg) (may be NULL) runs
 * then (before this returns when no source had a handle). NULL is fine (done is not called). */
void dw_ticket_close(struct dw_ticket *t, void (*done)(void *arg), void *arg);

#endif
