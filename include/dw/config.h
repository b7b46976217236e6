/* The configuration: one declarative table drives parsing of the libconfig file, environment
 * overrides (DELIVERY_WORKER_<GROUP>_<KEY>), command-line overrides (--set group.key=value,
 * -X name=value), validation, defaults and `check-config` output. Precedence: defaults <
 * file < environment < --set; librdkafka properties: kafka.properties_file < kafka.properties
 * < kafka.consumer_properties / kafka.producer_properties < -X. */
#ifndef DW_CONFIG_H
#define DW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DW_CONFIG_MAX_PROPERTIES 128

/* Which client a property entry is for. */
enum dw_config_scope {
  DW_CONFIG_SHARED = 0, /* kafka.properties, kafka.properties_file, -X: every client it applies
                           to (librdkafka's scope decides) */
  DW_CONFIG_CONSUMER,   /* kafka.consumer_properties: consumers only */
  DW_CONFIG_PRODUCER,   /* kafka.producer_properties: producers only */
};

struct dw_config_property {
  char *name;  /* librdkafka property name, e.g. "security.protocol" */
  char *value; /* its value as a string */
  enum dw_config_scope scope;
  char *where; /* where it was set, for messages: "app.conf:12: kafka.properties",
                  "client.properties:3", "command line: -X" */
};

/* The configuration, one struct per section of the file (kafka, feishu, poll, ...). A module
 * takes the section it reads (dw_http_new, dw_token_new: feishu; dw_poller_new and the Kafka
 * clients: the whole config), so a new key is declared here, in config.c's
 * table, and read where it is used. */
struct dw_config {
  struct dw_config_kafka {
    char *brokers;
    char *group_id;
    char *group_instance_id; /* static membership; "" = none */
    char *input_topic;
    char *results_topic;
    char *dlq_topic;
    char *properties_file; /* Java-style properties file; "" = none */
    /* passed verbatim, all scopes, in precedence order within a scope */
    struct dw_config_property properties[DW_CONFIG_MAX_PROPERTIES];
    size_t properties_count;
    int allow_insecure_tls;     /* properties may turn off broker TLS verification */
    int64_t commit_interval_ms; /* how often finished offsets are committed */
    int64_t commit_metadata_max_bytes; /* room for the finished-offset map; 0 = none */
    char *transactional_id;     /* exactly-once; "" = derived */
  } kafka;
  struct dw_config_feishu {
    char *base_url;     /* no trailing slash */
    char *app_id;
    char *app_secret;   /* resolved: from app_secret, app_secret_file or the environment */
    char *app_secret_file;
    char *ca_file;      /* CA bundle for an https:// base_url; "" = the system's bundle */
    char *app_type;        /* "self_built" or "store" */
    char *app_ticket_file; /* store apps: where the app_ticket is written; "" = none */
    char *app_ticket_topic; /* store apps: topic of pushed app_ticket events; "" = none */
    int64_t request_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t max_connections;
    int64_t max_response_bytes;
    int64_t rate_per_second; /* calls per second per app and tenant */
    int64_t rate_per_minute; /* calls per minute per app and tenant */
    int64_t token_refresh_margin_s; /* refresh a token with less than this left (< 1800) */
  } feishu;
  struct dw_config_limits {
    char *share;              /* "partitions" or "whole": this replica's part of the budget */
    int64_t jitter_ms;        /* headroom for calls reaching the API late (arrival jitter) */
    char *store;              /* shared budget store "redis://host:port"; "" = none */
    char *store_key;          /* prefix of the store's keys */
    int64_t store_timeout_ms; /* a store answer later than this: local limits */
  } limits;
  struct dw_config_poll {
    char *schedule;            /* "adaptive", "exponential" or "fixed" */
    int64_t latency_target_ms; /* adaptive: median added latency to aim for */
    int64_t min_interval_ms;   /* adaptive: shortest interval between polls of a task */
    double idle_budget_share;  /* adaptive: share of the minute's budget spent on latency */
    int64_t first_delay_ms;    /* first poll after the event is taken */
    int64_t interval_ms;       /* second poll after this; then grows by multiplier */
    int64_t max_interval_ms;   /* cap of the growing interval */
    double multiplier;
    double jitter;             /* fraction, 0..1: each delay is scaled by 1 +/- jitter */
    int64_t deadline_ms;       /* still pending this long after taken: deadline_exceeded */
    int64_t retry_initial_ms;  /* backoff after a retryable error */
    int64_t retry_max_ms;
  } poll;
  struct dw_config_worker {
    int64_t max_in_flight;     /* pause partitions at this many tasks in flight */
    int64_t resume_in_flight;  /* resume below this */
    int64_t drain_timeout_ms;  /* on SIGTERM, wait this long for tasks in flight */
    int64_t max_event_bytes;   /* larger events are dead-lettered as invalid_event */
  } worker;
  struct dw_config_processing {
    char *guarantee;                  /* "at_least_once" or "exactly_once" */
    int64_t transaction_interval_ms;  /* exactly-once: commit the open transaction this often */
  } processing;
  struct dw_config_admin {
    char *listen;
  } admin;
  struct dw_config_log {
    char *level;  /* debug, info, warn, error */
    char *format; /* json or text */
  } log;
};

/* Sets every key to its default. The config owns its strings; free with dw_config_cleanup. */
void dw_config_init(struct dw_config *cfg);
void dw_config_cleanup(struct dw_config *cfg);

/* Loads FILE over the defaults, then applies environment overrides from envp (NULL-terminated
 * "NAME=value" strings, usually `environ`), then reads app_secret_file and validates.
 * On error returns a negative DW_E* and writes "file:line: what is wrong" into err.
 * cfg must come fresh from dw_config_init; it still needs dw_config_cleanup after an error.
 * file may be NULL: defaults and environment only. envp may be NULL. */
int dw_config_load(struct dw_config *cfg, const char *file, char *const *envp, char *err,
                   size_t errlen);

/* The same for commands that only talk to Kafka (replay, redrive): the app secret is neither
 * required nor read. */
int dw_config_load_kafka(struct dw_config *cfg, const char *file, char *const *envp, char *err,
                         size_t errlen);

/* Overrides from the command line, applied over file and environment: set holds
 * "group.key=value" strings (--set; validated like the file), props "name=value" strings (-X;
 * librdkafka properties for every client, over all other sources). */
struct dw_config_args {
  const char *const *set;
  size_t set_count;
  const char *const *props;
  size_t props_count;
};

/* dw_config_load (kafka_only = 0) or dw_config_load_kafka (1) with command-line overrides;
 * args may be NULL. */
int dw_config_load_args(struct dw_config *cfg, const char *file, char *const *envp,
                        const struct dw_config_args *args, int kafka_only, char *err,
                        size_t errlen);

/* The value of the shared property `name` (kafka.properties, its file, -X), or NULL. */
const char *dw_config_property(const struct dw_config *cfg, const char *name);

/* Non-zero when a librdkafka property holds a secret (its name contains "password" or
 * "secret", or it is sasl.oauthbearer.config or ssl.key.pem): never log or print its value. */
int dw_config_property_is_secret(const char *name);

/* Writes into buf (always NUL-terminated) the kafka.properties that weaken the verification
 * of the brokers' TLS, as "name=value, ..." (allowed only with kafka.allow_insecure_tls), and
 * returns how many there are: the worker warns about them at start. */
size_t dw_config_insecure_tls(const struct dw_config *cfg, char *buf, size_t size);

/* Writes the effective configuration in libconfig syntax, secrets shown as "<redacted>". */
void dw_config_print(const struct dw_config *cfg, FILE *out);

/* Writes the reference of every key (path, type, default, bounds, env name, description) as a
 * Markdown table, for docs/configuration.md. */
void dw_config_print_reference(FILE *out);

#endif
