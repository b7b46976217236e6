/* What the Kafka modules share: the librdkafka configuration and client made from the worker's
 * config, the copy of a consumed record, offset lists, the error callback, and the waker.
 * librdkafka runs its own threads; what it hands back (records, rebalances, commit results,
 * delivery reports, errors) waits on its queues, and rd_kafka_queue_io_event_enable makes a
 * queue write to a pipe when it goes from empty to non-empty. A uv_poll on that pipe drains the
 * queue on the loop, a budget at a time, and a uv_idle continues when the budget stops it
 * early, since no new wake-up will come for what is already queued. */
#include "dw/kafka.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/features.h"
#include "dw/log.h"
#include "dw/oidc.h"
#include "dw/properties.h"

static void on_idle(uv_idle_t *idle)
{
  struct dw_kafka_waker *w = idle->data;
  if (!w->serve(w->owner))
    uv_idle_stop(idle);
}

static void on_tick(uv_timer_t *tick)
{
  struct dw_kafka_waker *w = tick->data;
  if (w->serve(w->owner))
    uv_idle_start(&w->idle, on_idle);
}

static void on_wake(uv_poll_t *poll, int status, int events)
{
  (void)status;
  (void)events;
  struct dw_kafka_waker *w = poll->data;
  char buf[256];
  while (read(w->fds[0], buf, sizeof(buf)) > 0)
    ;
  if (w->serve(w->owner))
    uv_idle_start(&w->idle, on_idle);
}

int dw_kafka_waker_init(struct dw_kafka_waker *w, uv_loop_t *loop, rd_kafka_queue_t *queue,
                      int (*serve)(void *), void *owner)
{
  w->queue = queue;
  w->serve = serve;
  w->owner = owner;
  if (pipe(w->fds) != 0)
    return DW_EIO;
  for (int i = 0; i < 2; i++) {
    fcntl(w->fds[i], F_SETFL, fcntl(w->fds[i], F_GETFL) | O_NONBLOCK);
    fcntl(w->fds[i], F_SETFD, FD_CLOEXEC);
  }
  uv_poll_init(loop, &w->poll, w->fds[0]);
  uv_idle_init(loop, &w->idle);
  uv_timer_init(loop, &w->tick);
  w->poll.data = w;
  w->idle.data = w;
  w->tick.data = w;
  w->open_handles = 3;
  uv_timer_start(&w->tick, on_tick, 1000, 1000);
  rd_kafka_queue_io_event_enable(queue, w->fds[1], "1", 1);
  uv_poll_start(&w->poll, UV_READABLE, on_wake);
  /* Anything queued before the wake-up was enabled would never wake us: serve it now. */
  uv_idle_start(&w->idle, on_idle);
  return 0;
}

static void on_waker_handle_closed(uv_handle_t *h)
{
  struct dw_kafka_waker *w = h->data;
  if (--w->open_handles == 0) {
    close(w->fds[0]);
    close(w->fds[1]);
    w->closed(w->owner);
  }
}

void dw_kafka_waker_close(struct dw_kafka_waker *w, void (*closed)(void *owner))
{
  w->closed = closed;
  rd_kafka_queue_io_event_enable(w->queue, -1, NULL, 0);
  uv_close((uv_handle_t *)&w->poll, on_waker_handle_closed);
  uv_close((uv_handle_t *)&w->idle, on_waker_handle_closed);
  uv_close((uv_handle_t *)&w->tick, on_waker_handle_closed);
}

/* librdkafka logs from its own threads; dw_log_write is thread-safe. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
  (void)rk;
  enum dw_log_level l = level <= 3 ? DW_LOG_ERROR : level == 4 ? DW_LOG_WARN
                        : level <= 6 ? DW_LOG_INFO : DW_LOG_DEBUG;
  /* Shared properties reach only the clients librdkafka applies them to, but a consumer or
   * producer list may still name the other's: its warning would only confuse the reader. */
  if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
    l = DW_LOG_DEBUG;
  dw_log_write(l, DW_LOG_CTX_NONE, "librdkafka %s: %s", fac, buf);
}

/* librdkafka's table of its properties (rd_kafka_conf_properties_show), read once: the
 * scope of each (consumer, producer or both) as this build of librdkafka knows it. */
static char *scope_table;
static pthread_once_t scope_once = PTHREAD_ONCE_INIT;

static void read_scope_table(void)
{
  size_t len = 0;
  FILE *fp = open_memstream(&scope_table, &len);
  if (!fp)
    return;
  rd_kafka_conf_properties_show(fp);
  fclose(fp);
}

/* Does a shared property reach a consumer (consumer != 0) or a producer? Unknown names do,
 * so that librdkafka refuses them with its own message. */
static int applies_to(const char *name, int consumer)
{
  pthread_once(&scope_once, read_scope_table);
  if (!scope_table)
    return 1;
  enum dw_properties_scope sc = dw_properties_scope(scope_table, name);
  return sc == DW_PROPERTIES_CONSUMER ? consumer : sc == DW_PROPERTIES_PRODUCER ? !consumer : 1;
}

static int conf_set_property(rd_kafka_conf_t *conf, const struct dw_config_property *pr,
                             char *err, size_t errlen)
{
  char errstr[512];
  if (rd_kafka_conf_set(conf, pr->name, pr->value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
    return 0;
  /* librdkafka's text may repeat the value: keep secrets out of it. */
  snprintf(err, errlen, "%s: %s: %s", pr->where ? pr->where : "kafka.properties", pr->name,
           dw_config_property_is_secret(pr->name) ? "invalid value" : errstr);
  return DW_EINVAL;
}

/* Applies defaults, then the shared properties that apply to this client, then its own
 * (consumer or producer) properties: each later one wins. */
rd_kafka_conf_t *dw_kafka_conf_new(const struct dw_config *cfg, int consumer,
                                   const char *const *defaults, char *err, size_t errlen)
{
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  enum dw_config_scope own = consumer ? DW_CONFIG_CONSUMER : DW_CONFIG_PRODUCER;
  char errstr[512];
  for (size_t i = 0; defaults && defaults[i]; i += 2) {
    if (rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      snprintf(err, errlen, "librdkafka property %s: %s", defaults[i], errstr);
      goto fail;
    }
  }
  if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka.brokers, errstr,
                        sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "kafka.brokers: %s", errstr);
    goto fail;
  }
  /* OIDC that this librdkafka cannot do itself is done by dw/oidc.h: its properties stay out. */
  int own_oidc = dw_oidc_needed(cfg);
  for (int pass = 0; pass < 2; pass++) {
    for (size_t i = 0; i < cfg->kafka.properties_count; i++) {
      const struct dw_config_property *pr = &cfg->kafka.properties[i];
      if (own_oidc && dw_oidc_is_property(pr->name))
        continue;
      if (pass == 0 ? pr->scope != DW_CONFIG_SHARED || !applies_to(pr->name, consumer)
                    : pr->scope != own)
        continue;
      if (conf_set_property(conf, pr, err, errlen) < 0)
        goto fail;
    }
  }
  if (own_oidc && dw_oidc_configure(conf, cfg, err, errlen) < 0)
    goto fail;
  /* Once per process, for a client's configuration (check-config passes no defaults and
   * prints the same line itself). Configurations are made on the main thread only. */
  static int described;
  if (defaults && !described) {
    char line[512];
    described = 1;
    dw_kafka_describe_features(cfg, line, sizeof(line));
    dw_info("%s", line);
  }
  rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
  return conf;
fail:
  rd_kafka_conf_destroy(conf);
  return NULL;
}

int dw_kafka_conf_check(const struct dw_config *cfg, char *err, size_t errlen)
{
  for (int consumer = 0; consumer < 2; consumer++) {
    rd_kafka_conf_t *conf = dw_kafka_conf_new(cfg, consumer, NULL, err, errlen);
    if (!conf)
      return DW_EINVAL;
    rd_kafka_conf_destroy(conf);
  }
  return 0;
}

void dw_kafka_builtin_features(char *buf, size_t size)
{
  if (size == 0)
    return;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_get(conf, "builtin.features", buf, &size) != RD_KAFKA_CONF_OK)
    buf[0] = '\0';
  rd_kafka_conf_destroy(conf);
}

void dw_kafka_describe_features(const struct dw_config *cfg, char *buf, size_t size)
{
  char features[1024];
  dw_kafka_builtin_features(features, sizeof(features));
  const char *method = NULL;
  if (cfg) {
    method = dw_config_property(cfg, "sasl.oauthbearer.method");
    if (!method)
      method = "";
  }
  dw_features_describe(features, rd_kafka_version(), method, buf, size);
}

void dw_kafka_version(char *buf, size_t size)
{
  char features[1024];
  dw_kafka_builtin_features(features, sizeof(features));
  snprintf(buf, size, "librdkafka %s (builtin.features: %s)", rd_kafka_version_str(),
           features[0] ? features : "unknown");
}

rd_kafka_t *dw_kafka_client_new(int consumer, rd_kafka_conf_t *conf, const char *what,
                                char *err, size_t errlen)
{
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, errstr,
                                sizeof(errstr));
  if (!rk) { /* conf is still ours on failure */
    snprintf(err, errlen, "cannot create %s: %s", what, errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (dw_oidc_started(rk, err, errlen) < 0) {
    rd_kafka_destroy(rk);
    return NULL;
  }
  return rk;
}

/* ---- records ---- */

void dw_record_free(struct dw_record *rec)
{
  free(rec);
}

/* Copies a message into one allocation: struct, header array, then the bytes. */
struct dw_record *dw_kafka_record_copy(rd_kafka_message_t *m)
{
  rd_kafka_headers_t *hdrs = NULL;
  size_t nh = 0, bytes = m->key_len + m->len;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
    nh = rd_kafka_header_cnt(hdrs);
    for (size_t i = 0; i < nh; i++) {
      const char *name;
      const void *val;
      size_t len;
      rd_kafka_header_get_all(hdrs, i, &name, &val, &len);
      bytes += strlen(name) + 1 + len;
    }
  }
  struct dw_record *rec = malloc(sizeof(*rec) + nh * sizeof(struct dw_header) + bytes + 1);
  if (!rec)
    return NULL;
  rd_kafka_timestamp_type_t tstype;
  rec->partition = m->partition;
  rec->offset = m->offset;
  rec->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
  if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
    rec->timestamp_ms = -1;
  rec->headers = (struct dw_header *)(rec + 1);
  rec->header_count = nh;
  char *p = (char *)(rec->headers + nh);
  rec->key = m->key ? p : NULL;
  rec->key_len = m->key_len;
  if (m->key_len)
    memcpy(p, m->key, m->key_len);
  p += m->key_len;
  rec->value = m->payload ? p : NULL;
  rec->value_len = m->len;
  if (m->len)
    memcpy(p, m->payload, m->len);
  p += m->len;
  for (size_t i = 0; i < nh; i++) {
    const char *name;
    const void *val;
    size_t len;
    rd_kafka_header_get_all(hdrs, i, &name, &val, &len);
    size_t nl = strlen(name) + 1;
    memcpy(p, name, nl);
    rec->headers[i].name = p;
    p += nl;
    rec->headers[i].value = val ? p : NULL;
    rec->headers[i].len = len;
    if (len)
      memcpy(p, val, len);
    p += len;
  }
  return rec;
}

/* ---- shared by the consumer and the producer ---- */

/* A partition list of the topic with offsets and metadata (librdkafka copies the metadata
 * and frees it with the list). */
rd_kafka_topic_partition_list_t *dw_kafka_offsets_list(const char *topic, const int32_t *parts,
                                                     const int64_t *offsets,
                                                     const char *const *metadata, size_t n)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_add(l, topic, parts[i]);
    e->offset = offsets[i];
    if (metadata && metadata[i] && metadata[i][0]) {
      e->metadata_size = strlen(metadata[i]);
      e->metadata = malloc(e->metadata_size);
      if (e->metadata)
        memcpy(e->metadata, metadata[i], e->metadata_size);
      else
        e->metadata_size = 0; /* committed without its map: only costs polls again */
    }
  }
  return l;
}

/* librdkafka could not create what it needs (a thread without address space for its stack):
 * the client is crippled for good, unable to reach some or all brokers, and says so only
 * through the error callback. Set there (on the loop, which serves the callbacks), turned into
 * a fatal error by the consumer's next serve: exit non-zero rather than run on unable to
 * consume. */
static char crit_reason[256];

void dw_kafka_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
  (void)opaque;
  if (err == RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE && !crit_reason[0])
    snprintf(crit_reason, sizeof(crit_reason), "%s: %s", rd_kafka_err2name(err),
             reason ? reason : "");
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
    dw_error("fatal Kafka error %s: %s", rd_kafka_err2name(orig), buf);
    return; /* the owner of rk checks rd_kafka_fatal_error after serving */
  }
  dw_log_write(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? DW_LOG_ERROR : DW_LOG_WARN,
               DW_LOG_CTX_NONE, "Kafka: %s: %s", rd_kafka_err2name(err), reason);
}

const char *dw_kafka_critical(void)
{
  return crit_reason;
}
