/* The app_ticket source of a store app, between whatever receives Feishu's pushed events and
 * the token manager. A file is read when a ticket is first needed and re-read when a uv_fs_poll
 * sees it change (stat-based, so an atomic rename by the writer is seen too); a Kafka topic
 * is read from its start by a reader in the Kafka module, the newest event winning. Either way
 * the token manager is told when a new ticket arrives, which is what releases the tasks of
 * store tenants waiting for their tokens. The topic has one partition, so tickets arrive in
 * offset order and the last one taken is the newest; while the worker catches up, an older
 * ticket may already be on its way to the app_access_token endpoint: its refusal is ignored
 * here (dw_ticket_refused names an older generation) and the token manager tries the newer
 * ticket at once. */
#include "dw/ticket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw/auth.h"
#include "dw/event.h"
#include "dw/common.h"
#include "dw/consumer.h"
#include "dw/log.h"

#define TICKET_FILE_MAX 65536     /* the file is a ticket or one event: never larger */
#define FILE_POLL_MS 1000

struct dw_ticket {
  uv_loop_t *loop;
  char *app_id;
  char *file;                     /* NULL: no file source */
  uv_fs_poll_t watch;
  int watching;
  int file_read;                  /* read at least once */
  struct dw_ticket_reader *reader; /* NULL: no topic source */
  dw_ticket_cb cb;
  void *cb_arg;
  char value[DW_TICKET_MAX];      /* "" = none */
  char refused[DW_TICKET_MAX];    /* the last ticket the endpoint refused */
  uint64_t generation;
  int closing; /* what dw_ticket_close still waits for */
  void (*done)(void *arg); /* the close callback and its argument */
  void *done_arg;
};

/* A ticket came from a source: keep it if it is new and not the one just refused. */
static void take(struct dw_ticket *t, const char *ticket, const char *source)
{
  if (!ticket[0] || strcmp(ticket, t->value) == 0 || strcmp(ticket, t->refused) == 0)
    return;
  dw_strlcpy(t->value, ticket, sizeof(t->value));
  t->refused[0] = '\0';
  t->generation++;
  dw_info("new app_ticket from %s", source);
  if (t->cb)
    t->cb(t->cb_arg);
}

/* The file holds the bare ticket (surrounding whitespace ignored) or the pushed event. */
static void read_file(struct dw_ticket *t)
{
  char buf[TICKET_FILE_MAX + 1];
  char app_id[DW_TENANT_KEY_MAX], ticket[DW_TICKET_MAX], why[160];
  /* A small local file, read synchronously like the secret file at startup; only a regular
   * file, opened without blocking: a FIFO would stop the loop until someone writes to it. */
  struct stat st;
  int fd = open(t->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  FILE *fp = NULL;
  t->file_read = 1;
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    dw_warn("feishu.app_ticket_file %s is not a regular file; waiting for one", t->file);
    close(fd);
    return;
  }
  if (fd < 0 || !(fp = fdopen(fd, "r"))) {
    dw_warn("cannot read feishu.app_ticket_file %s: %s; waiting for it", t->file,
            strerror(errno));
    if (fd >= 0)
      close(fd);
    return;
  }
  size_t n = fread(buf, 1, TICKET_FILE_MAX + 1, fp);
  fclose(fp);
  if (n > TICKET_FILE_MAX) {
    dw_warn("feishu.app_ticket_file %s is larger than %d bytes: not a ticket", t->file,
            TICKET_FILE_MAX);
    return;
  }
  buf[n] = '\0';
  size_t b = 0;
  while (b < n && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r' || buf[b] == '\n'))
    b++;
  while (n > b && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\r' ||
                   buf[n - 1] == '\n'))
    buf[--n] = '\0';
  if (n == b)
    return; /* being written, or emptied: keep what we have */
  if (buf[b] == '{') {
    if (dw_app_ticket_parse(buf + b, n - b, app_id, sizeof(app_id), ticket, sizeof(ticket),
                            why, sizeof(why)) < 0) {
      dw_warn("feishu.app_ticket_file %s: %s", t->file, why);
      return;
    }
    if (strcmp(app_id, t->app_id) != 0) {
      dw_warn("feishu.app_ticket_file %s holds the ticket of app %s, not %s", t->file, app_id,
              t->app_id);
      return;
    }
    take(t, ticket, "feishu.app_ticket_file");
    return;
  }
  if (n - b >= sizeof(ticket)) {
    dw_warn("feishu.app_ticket_file %s: a ticket longer than %zu bytes", t->file,
            sizeof(ticket) - 1);
    return;
  }
  memcpy(ticket, buf + b, n - b + 1);
  for (size_t i = 0; ticket[i]; i++)
    if (ticket[i] <= ' ' || ticket[i] > '~') {
      dw_warn("feishu.app_ticket_file %s: the ticket has characters a ticket cannot have",
              t->file);
      return;
    }
  take(t, ticket, "feishu.app_ticket_file");
}

static void on_file_changed(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                            const uv_stat_t *curr)
{
  (void)prev;
  (void)curr;
  struct dw_ticket *t = h->data;
  if (status == 0)
    read_file(t);
}

static void on_topic_record(void *arg, const void *value, size_t len)
{
  if (dw_ticket_offer(arg, value, len) < 0)
    dw_debug("feishu.app_ticket_topic: a record that is not this app's app_ticket, skipped");
}

int dw_ticket_new(struct dw_ticket **out, uv_loop_t *loop, const struct dw_config *cfg,
                  char *err, size_t errlen)
{
  struct dw_ticket *t = calloc(1, sizeof(*t));
  int rc = DW_ENOMEM;
  if (!t)
    return DW_ENOMEM;
  t->loop = loop;
  t->app_id = strdup(cfg->feishu.app_id);
  if (!t->app_id)
    goto fail;
  if (cfg->feishu.app_ticket_file[0]) {
    t->file = strdup(cfg->feishu.app_ticket_file);
    if (!t->file)
      goto fail;
    uv_fs_poll_init(loop, &t->watch);
    t->watch.data = t;
    t->watching = 1;
    int e = uv_fs_poll_start(&t->watch, on_file_changed, t->file, FILE_POLL_MS);
    if (e < 0) {
      snprintf(err, errlen, "cannot watch feishu.app_ticket_file %s: %s", t->file,
               uv_strerror(e));
      rc = DW_EIO;
      goto fail;
    }
  }
  if (cfg->feishu.app_ticket_topic[0]) {
    rc = dw_ticket_reader_new(&t->reader, loop, cfg, on_topic_record, t, err, errlen);
    if (rc < 0)
      goto fail;
  }
  *out = t;
  return 0;
fail:
  if (rc == DW_ENOMEM)
    snprintf(err, errlen, "out of memory setting up the app_ticket source");
  dw_ticket_close(t, NULL, NULL);
  return rc;
}

void dw_ticket_set_cb(struct dw_ticket *t, dw_ticket_cb cb, void *arg)
{
  t->cb = cb;
  t->cb_arg = arg;
}

const char *dw_ticket_value(struct dw_ticket *t)
{
  if (t->file && !t->file_read)
    read_file(t);
  return t->value[0] ? t->value : NULL;
}

uint64_t dw_ticket_generation(const struct dw_ticket *t)
{
  return t->generation;
}

int dw_ticket_offer(struct dw_ticket *t, const void *buf, size_t len)
{
  char app_id[DW_TENANT_KEY_MAX], ticket[DW_TICKET_MAX], why[160];
  if (dw_app_ticket_parse(buf, len, app_id, sizeof(app_id), ticket, sizeof(ticket), why,
                          sizeof(why)) < 0)
    return DW_EINVAL;
  if (strcmp(app_id, t->app_id) != 0)
    return DW_EINVAL; /* a topic may carry the tickets of several apps */
  take(t, ticket, "feishu.app_ticket_topic");
  return 0;
}

void dw_ticket_refused(struct dw_ticket *t, uint64_t generation)
{
  if (generation != t->generation || !t->value[0])
    return;
  dw_strlcpy(t->refused, t->value, sizeof(t->refused));
  t->value[0] = '\0';
}

static void ticket_release(struct dw_ticket *t)
{
  if (--t->closing > 0)
    return;
  void (*done)(void *) = t->done;
  void *arg = t->done_arg;
  free(t->file);
  free(t->app_id);
  free(t);
  if (done)
    done(arg);
}

static void on_watch_closed(uv_handle_t *h)
{
  ticket_release(h->data);
}

static void on_reader_closed(void *arg)
{
  ticket_release(arg);
}

void dw_ticket_close(struct dw_ticket *t, void (*done)(void *arg), void *arg)
{
  if (!t)
    return;
  t->done = done;
  t->done_arg = arg;
  t->closing = 1; /* this call's own hold, released below */
  if (t->reader) {
    t->closing++;
    dw_ticket_reader_close(t->reader, on_reader_closed, t);
  }
  explicit_bzero(t->value, sizeof(t->value));
  if (t->watching) {
    t->closing++;
    uv_close((uv_handle_t *)&t->watch, on_watch_closed);
  }
  ticket_release(t);
}
