/* Configuration: the first stage of startup. One static table below lists every key (path,
 * type, field, default, bounds, allowed values, secrecy, a check hook, description); the same
 * table drives reading the libconfig file, the DELIVERY_WORKER_* environment overrides,
 * validation with "file:line: what is wrong" messages, `check-config` output and the Markdown
 * reference in docs/configuration.md. libconfig.h stays inside this file. */
#include "dw/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dw/common.h"
#include "dw/hostport.h"
#include "dw/http.h"
#include "dw/properties.h"

#define ENV_PREFIX "DELIVERY_WORKER_"
#define PATH_MAX_LEN 128         /* longest key path or environment name we handle */
#define VALUE_MAX 65536          /* longest string value (PEM keys go in kafka.properties) */
#define SECRET_FILE_MAX 65536    /* longest app_secret_file */
#define CA_FILE_MAX (16 << 20)   /* largest feishu.ca_file */
#define PROPERTY_NAME_MAX 255
#define BASE_URL_MAX 1024        /* longest feishu.base_url */
#define KAFKA_ID_MAX 200         /* longest group id, group instance id, transactional id */
#define SHOWN_MAX 80             /* how much of a bad value an error message repeats */
#define CONFIG_FILE_MAX (16 << 20) /* largest configuration file (each @include too) */
#define INCLUDE_DEPTH_MAX 10     /* libconfig's own limit of nested @include */
#define WIDE_MAX 16              /* integers too wide for libconfig kept per load */

enum kind { KIND_STRING, KIND_INT, KIND_FLOAT, KIND_BOOL, KIND_PROPERTIES };

enum {
  F_SECRET = 1,   /* never printed */
  F_REQUIRED = 2, /* must not be empty once file and environment are applied */
  F_URL = 4,      /* a refused value is repeated without its user:password */
};

/* A check hook validates (and may normalize in place) a non-empty string value; it returns
 * NULL when the value is fine, or the tail of an error message ("must ..."). */
typedef const char *(*check_fn)(char *value);

struct option {
  const char *path;
  enum kind kind;
  size_t offset;
  unsigned flags;
  const char *def_str;
  int64_t def_int, min_int, max_int;
  double def_float, min_float, max_float;
  const char *const *choices; /* NULL-terminated allowed values of a string */
  check_fn check;
  const char *desc;
};

static const char *check_base_url(char *value);
static const char *check_listen(char *value);
static const char *check_topic(char *value);
static const char *check_brokers(char *value);
static const char *check_kafka_id(char *value);
static const char *check_store(char *value);

static const char *const schedules[] = {"adaptive", "exponential", "fixed", NULL};
static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const formats[] = {"json", "text", NULL};
static const char *const guarantees[] = {"at_least_once", "exactly_once", NULL};
static const char *const app_types[] = {"self_built", "store", NULL};
static const char *const shares[] = {"partitions", "whole", NULL};

#define OFF(field) offsetof(struct dw_config, field)
#define STRING(p, field, def, fl, chk, d)                                                     \
  {.path = p, .kind = KIND_STRING, .offset = OFF(field), .flags = fl, .def_str = def,        \
   .check = chk, .desc = d}
#define ENUM(p, field, def, ch, d)                                                            \
  {.path = p, .kind = KIND_STRING, .offset = OFF(field), .flags = F_REQUIRED, .def_str = def, \
   .choices = ch, .desc = d}
#define INT(p, field, def, lo, hi, d)                                                         \
  {.path = p, .kind = KIND_INT, .offset = OFF(field), .def_int = def, .min_int = lo,         \
   .max_int = hi, .desc = d}
#define FLOAT(p, field, def, lo, hi, d)                                                       \
  {.path = p, .kind = KIND_FLOAT, .offset = OFF(field), .def_float = def, .min_float = lo,   \
   .max_float = hi, .desc = d}
#define BOOL(p, field, def, d)                                                                \
  {.path = p, .kind = KIND_BOOL, .offset = OFF(field), .def_int = def, .desc = d}
#define PROPERTIES(p, sc, d)                                                                  \
  {.path = p, .kind = KIND_PROPERTIES, .offset = 0, .def_int = sc, .desc = d}

/* Rows are grouped by their first path component; dw_config_print relies on that order. */
static const struct option options[] = {
  STRING("kafka.brokers", kafka.brokers, "127.0.0.1:9092", F_REQUIRED, check_brokers,
         "Bootstrap servers, comma-separated host:port."),
  STRING("kafka.group_id", kafka.group_id, "delivery-worker", F_REQUIRED, check_kafka_id,
         "Consumer group of every replica. At most 200 bytes."),
  STRING("kafka.group_instance_id", kafka.group_instance_id, "", 0, check_kafka_id,
         "Static group membership (`group.instance.id`): a stable name per replica, such as "
         "the pod name of a StatefulSet (`DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID`), so that a "
         "restart within the session timeout causes no rebalance. Empty: dynamic membership. "
         "Two running replicas must never share one. At most 200 bytes."),
  STRING("kafka.input_topic", kafka.input_topic, "hire.delivery_tasks.created", F_REQUIRED,
         check_topic, "Topic of task-created events."),
  STRING("kafka.results_topic", kafka.results_topic, "hire.delivery_tasks.resolved",
         F_REQUIRED, check_topic, "Topic results are produced to (key = delivery_task_id)."),
  STRING("kafka.dlq_topic", kafka.dlq_topic, "hire.delivery_tasks.dlq", F_REQUIRED,
         check_topic, "Dead-letter topic."),
  STRING("kafka.properties_file", kafka.properties_file, "", 0, NULL,
         "A Java-style properties file of librdkafka properties, as kcat -F and Kafka's "
         "clients read it: `name=value` or `name: value` per line, `#` and `!` comment "
         "lines, blank lines; spaces around names and values are trimmed; a line ending in "
         "`\\` continues on the next; escapes `\\t`, `\\n`, `\\uXXXX`, `\\=`, `\\:` and "
         "`\\\\`. A regular file of at most 1 MiB, lines of at most 70000 bytes; errors "
         "name the file and line. Its properties go to both clients, each only where "
         "librdkafka applies it (a consumer property to the consumers); kafka.properties, "
         "then kafka.consumer_properties / kafka.producer_properties, then `-X` on the "
         "command line override it. The same properties are refused as in kafka.properties."),
  PROPERTIES("kafka.properties", DW_CONFIG_SHARED,
             "librdkafka properties passed verbatim (TLS, SASL, ...), as a list of "
             "(name, value) pairs: `( (\"security.protocol\", \"SSL\"), "
             "(\"session.timeout.ms\", 6000) )`; values may be strings, numbers or booleans. "
             "libconfig names cannot contain dots, so a group form only works empty: `{ }`. "
             "The environment variable holds `name=value,name=value` (write `\\,` for a comma "
             "inside a value) and adds to or overrides the file's list. Names containing "
             "`password` or `secret`, `sasl.oauthbearer.config` and `ssl.key.pem` are never "
             "printed. `bootstrap.servers` and `group.id` are set by the keys above. "
             "Properties that would lose or duplicate tasks are refused, naming the key that "
             "does their job: "
             "`enable.auto.commit` (or `auto.commit.enable`) and `enable.auto.offset.store` "
             "other than false, and `offset.store.method` other than `broker` (the worker "
             "commits an offset once its result is acknowledged; kafka.commit_interval_ms sets "
             "how often); `acks` (or `request.required.acks`) other than `all`/-1 and "
             "`enable.idempotence` other than true (the worker's producer needs both); "
             "`transactional.id` (kafka.transactional_id); `group.instance.id` "
             "(kafka.group_instance_id); `partition.assignment.strategy` (the worker needs "
             "`cooperative-sticky`); `isolation.level` = `read_uncommitted` with "
             "processing.guarantee = `exactly_once`. `enable.ssl.certificate.verification` = "
             "false and `ssl.endpoint.identification.algorithm` = `none` are refused unless "
             "kafka.allow_insecure_tls is true. These refusals apply to every source of "
             "properties (kafka.properties_file, the consumer and producer lists, `-X`), and "
             "name where the value came from. Each property goes to the clients librdkafka "
             "applies it to (a consumer-only property is not given to the producers)."),
  PROPERTIES("kafka.consumer_properties", DW_CONFIG_CONSUMER,
             "librdkafka properties for the consumers only, in the form of kafka.properties; "
             "they override kafka.properties and kafka.properties_file for the consumers "
             "(e.g. `( (\"fetch.wait.max.ms\", 100) )`)."),
  PROPERTIES("kafka.producer_properties", DW_CONFIG_PRODUCER,
             "librdkafka properties for the producers only, in the form of kafka.properties; "
             "they override kafka.properties and kafka.properties_file for the producers "
             "(e.g. `( (\"linger.ms\", 20) )`)."),
  BOOL("kafka.allow_insecure_tls", kafka.allow_insecure_tls, 0,
       "Allows kafka.properties to turn off the verification of the brokers' TLS certificates "
       "(`enable.ssl.certificate.verification` = false) or of their host names "
       "(`ssl.endpoint.identification.algorithm` = `none`), which are refused otherwise. "
       "Anyone on the network path can then read and change the traffic: for test brokers "
       "only. Logged as a warning at start when such a property is in use."),
  INT("kafka.commit_interval_ms", kafka.commit_interval_ms, 1000, 10, 60000,
      "How often finished offsets are committed, in milliseconds."),
  INT("kafka.commit_metadata_max_bytes", kafka.commit_metadata_max_bytes, 4096, 0, 1048576,
      "Room for the map of tasks finished beyond the committed offset, which is committed "
      "with the offset so a restarted or reassigned worker skips them instead of polling "
      "again. Should not exceed the broker's `offset.metadata.max.bytes` (4096 by default): "
      "when the broker refuses a map as too long, the worker warns once and gives maps less "
      "room from then on (half, or less than the refused length; at-least-once cuts maps "
      "short, and below 64 bytes commits none; exactly-once never goes below the map already "
      "committed, and stops if even that is refused). A partition whose map passes three "
      "quarters of this (or of the lowered room) takes no new records until it shrinks. 0: "
      "no map (finished tasks beyond the committed offset are polled again after a "
      "restart)."),
  STRING("kafka.transactional_id", kafka.transactional_id, "", 0, check_kafka_id,
         "Exactly-once mode: the producer's `transactional.id`. Empty: "
         "`<group_id>.<group_instance_id>` when kafka.group_instance_id is set (stable across "
         "restarts, so a restarted replica aborts what its predecessor left open at once), "
         "else `<group_id>.<hostname>.<pid>` (an open transaction of a killed replica then "
         "blocks `read_committed` readers until `transaction.timeout.ms`). Two running "
         "replicas must never share one. At most 200 bytes."),

  STRING("feishu.base_url", feishu.base_url, "https://open.feishu.cn", F_REQUIRED | F_URL,
         check_base_url,
         "API base URL: https://open.feishu.cn, https://open.larksuite.com or a simulator. "
         "An http:// or https:// URL as libcurl parses it, with a host and optionally a path "
         "prefix; no user:password (refused and never repeated), no query (?) or fragment "
         "(#), IPv6 addresses in closed brackets; at most 1024 bytes. A trailing slash is "
         "removed."),
  STRING("feishu.app_id", feishu.app_id, "", F_REQUIRED, NULL, "App ID (`cli_...`). Required."),
  STRING("feishu.app_secret", feishu.app_secret, "", F_SECRET, NULL,
         "App secret. Better given by the environment or feishu.app_secret_file; "
         "exactly one of the two keys may be set."),
  STRING("feishu.app_secret_file", feishu.app_secret_file, "", 0, NULL,
         "File whose content (trailing whitespace removed) is the app secret, "
         "e.g. a mounted Kubernetes secret. Must be a regular file (a FIFO or a device is "
         "refused rather than waited on) of at most 65536 bytes, read to its end."),
  STRING("feishu.ca_file", feishu.ca_file, "", 0, NULL,
         "PEM file of the certificate authorities trusted for an https:// base_url, instead "
         "of the system's bundle (e.g. the CA of a TLS-inspecting corporate proxy). Empty: "
         "the system's bundle. Certificates and host names are always verified; only an "
         "explicit http:// base_url (a simulator) goes without TLS. A regular file of at most "
         "16 MiB."),
  ENUM("feishu.app_type", feishu.app_type, "self_built", app_types,
       "`self_built` (a custom app of one tenant: tenant_access_token/internal; an event's "
       "tenant_key is ignored for tokens and rate limits) or `store` (an app from the app "
       "store serving many tenants: every event needs a tenant_key, tokens are obtained per "
       "tenant through the app_access_token, which needs the app_ticket Feishu pushes; set "
       "feishu.app_ticket_file or feishu.app_ticket_topic)."),
  STRING("feishu.app_ticket_file", feishu.app_ticket_file, "", 0, NULL,
         "Store apps: a file holding the current app_ticket, as the bare ticket or as the "
         "pushed event's JSON; read when a ticket is needed and again whenever it changes "
         "(whatever receives Feishu's events writes it). Must be a regular file when it "
         "exists."),
  STRING("feishu.app_ticket_topic", feishu.app_ticket_topic, "", 0, NULL,
         "Store apps: a Kafka topic the pushed app_ticket events are forwarded to (the event "
         "JSON as the record value; other events and other apps' tickets are skipped). Every "
         "replica reads it from the start, without a consumer group commit; the newest "
         "ticket wins, so give it one partition and a short retention."),
  INT("feishu.request_timeout_ms", feishu.request_timeout_ms, 10000, 100, 120000,
      "Whole-request timeout of an API call, in milliseconds."),
  INT("feishu.connect_timeout_ms", feishu.connect_timeout_ms, 5000, 100, 60000,
      "Connect timeout, in milliseconds; at most feishu.request_timeout_ms."),
  INT("feishu.max_connections", feishu.max_connections, 64, 1, 10000,
      "Most concurrent connections to the API."),
  INT("feishu.max_response_bytes", feishu.max_response_bytes, 65536, 1024, 16777216,
      "Larger responses are treated as errors."),
  INT("feishu.rate_per_second", feishu.rate_per_second, 50, 0, 100000,
      "API calls per second per app and tenant; 0 = unlimited."),
  INT("feishu.rate_per_minute", feishu.rate_per_minute, 1000, 0, 6000000,
      "API calls per minute per app and tenant; 0 = unlimited."),
  INT("feishu.token_refresh_margin_s", feishu.token_refresh_margin_s, 300, 60, 1799,
      "Refresh the tenant access token when less than this many seconds are left "
      "(inside Feishu's 30-minute refresh window)."),

  ENUM("limits.share", limits.share, "partitions", shares,
       "This replica's part of feishu.rate_per_second and rate_per_minute (one app's budget is "
       "shared by every replica): `partitions` (its share of the input topic's partitions, the "
       "whole budget until the topic's size is known) or `whole` (each replica takes the whole "
       "budget and adapts to 429s). With limits.store the replicas draw from one budget and "
       "the share applies only while the store does not answer."),
  INT("limits.jitter_ms", limits.jitter_ms, 250, 0, 500,
      "Headroom, in milliseconds, for calls that reach the API later than they were sent (the "
      "API counts arrivals): the limiter's 1 s and 60 s windows are this much longer. A 429 "
      "widens it by half, up to 500."),
  STRING("limits.store", limits.store, "", 0, check_store,
         "Shared budget store: `redis://HOST:PORT` of a Redis or Valkey server (a name is "
         "resolved off the loop; an IPv6 address goes in brackets, `redis://[::1]:6379`). "
         "Every replica, and any program using the same keys, then draws its calls from one "
         "budget per app and tenant, kept by an atomic script in the store. Empty: none."),
  STRING("limits.store_key", limits.store_key, "delivery-worker", F_REQUIRED, check_kafka_id,
         "Prefix of the store's keys (PREFIX:APP_ID:TENANT_KEY). At most 200 bytes."),
  INT("limits.store_timeout_ms", limits.store_timeout_ms, 200, 10, 10000,
      "A store that has not answered within this many milliseconds is treated as down: the "
      "replica falls back to its share at once and asks the store again after 1 s, then less "
      "often."),

  ENUM("poll.schedule", poll.schedule, "adaptive", schedules,
       "When to poll: `adaptive` (learns when tasks become ready, per website, and places "
       "polls for the fewest calls at poll.latency_target_ms; exponential until it has seen "
       "enough tasks), `exponential` (poll.first_delay_ms, then poll.interval_ms growing by "
       "poll.multiplier up to poll.max_interval_ms) or `fixed` (poll.first_delay_ms, then "
       "always poll.interval_ms)."),
  INT("poll.latency_target_ms", poll.latency_target_ms, 2000, 50, 600000,
      "Adaptive schedule: the median time from a task becoming ready to the answer that "
      "sees it, in milliseconds. Lower costs more calls."),
  INT("poll.min_interval_ms", poll.min_interval_ms, 250, 10, 3600000,
      "Adaptive schedule: never poll one task more often than this, in milliseconds."),
  FLOAT("poll.idle_budget_share", poll.idle_budget_share, 0.0, 0.0, 1.0,
        "Adaptive schedule: while a tenant's calls of the last minute (the app's, for a "
        "self-built app) stay below this share of its per-minute limit and none of its tasks "
        "waits for the budget, poll its tasks more often than poll.latency_target_ms needs (up "
        "to 16 times the weight of latency) to answer sooner; 0 = never spend more than the "
        "target needs."),
  INT("poll.first_delay_ms", poll.first_delay_ms, 2000, 0, 3600000,
      "First poll this long after the event is taken, in milliseconds."),
  INT("poll.interval_ms", poll.interval_ms, 2000, 10, 3600000,
      "Delay before the second poll, in milliseconds."),
  INT("poll.max_interval_ms", poll.max_interval_ms, 15000, 10, 3600000,
      "Cap of the growing interval, in milliseconds; at least poll.interval_ms."),
  FLOAT("poll.multiplier", poll.multiplier, 1.5, 1.0, 10.0,
        "Growth factor of the interval (exponential schedule)."),
  FLOAT("poll.jitter", poll.jitter, 0.2, 0.0, 1.0,
        "Each delay is scaled by a random factor in 1 +/- jitter."),
  INT("poll.deadline_ms", poll.deadline_ms, 300000, 1000, 86400000,
      "A task still pending this long after its first API call (a task that never gets "
      "one: after it was taken) is dead-lettered as `deadline_exceeded`, in milliseconds. "
      "Time a task waits for its first call behind the rate limit does not count."),
  INT("poll.retry_initial_ms", poll.retry_initial_ms, 500, 10, 600000,
      "First backoff after a retryable error, in milliseconds."),
  INT("poll.retry_max_ms", poll.retry_max_ms, 30000, 10, 3600000,
      "Cap of the retry backoff, in milliseconds; at least poll.retry_initial_ms."),

  INT("worker.max_in_flight", worker.max_in_flight, 10000, 1, 1000000,
      "Partitions are paused when this many tasks are in flight."),
  INT("worker.resume_in_flight", worker.resume_in_flight, 8000, 1, 1000000,
      "Paused partitions resume when fewer tasks than this are in flight; at most "
      "worker.max_in_flight. When not set: 80% of worker.max_in_flight."),
  INT("worker.drain_timeout_ms", worker.drain_timeout_ms, 30000, 0, 3600000,
      "On SIGTERM, wait this long for tasks in flight before exiting, in milliseconds."),
  INT("worker.max_event_bytes", worker.max_event_bytes, 65536, 256, 16777216,
      "Larger input events are dead-lettered as `invalid_event`."),

  ENUM("processing.guarantee", processing.guarantee, "at_least_once", guarantees,
       "`at_least_once`: an input offset is committed after its result or dead letter is "
       "acknowledged; a crash can write a task's result twice (same key). `exactly_once`: "
       "results, dead letters and input offsets are committed together in Kafka "
       "transactions, so a `read_committed` reader sees each task once (API calls may still "
       "be repeated after a crash)."),
  INT("processing.transaction_interval_ms", processing.transaction_interval_ms, 200, 10,
      60000,
      "Exactly-once mode: how often the open transaction is committed, in milliseconds. "
      "Results become visible to `read_committed` readers after this long at most."),

  STRING("admin.listen", admin.listen, "0.0.0.0:9464", F_REQUIRED, check_listen,
         "host:port of /metrics, /healthz and /readyz (`[::]:9464` for IPv6)."),

  ENUM("log.level", log.level, "info", levels, "Lowest level logged."),
  ENUM("log.format", log.format, "json", formats,
       "`json` (one object per line) or `text` (for humans)."),
};

#define NOPT DW_ARRAY_SIZE(options)

/* An integer literal of the file that libconfig 1.5 cannot hold: without an L suffix it keeps
 * only 32 bits (4294967297 reads as 1), with one it saturates past 64 bits. scan_text finds
 * them in the file's text, and the key they belong to takes the literal's own value. */
struct wide {
  char path[PATH_MAX_LEN]; /* key it is the value of ("" in a list) */
  char *file;              /* as libconfig names it: NULL for the main file */
  int line;                /* of the key's name, as config_setting_source_line */
  int64_t value;
  int overflow;            /* does not fit in 64 bits either */
  int used;
  char text[32];           /* the literal as written (cut) */
};

/* Where a key's value came from, for error messages. */
enum origin_kind {
  FROM_DEFAULT,
  FROM_FILE,
  FROM_ENV,
  FROM_SET,        /* --set on the command line */
  FROM_PROPS_FILE, /* kafka.properties_file (file, line) */
  FROM_X,          /* -X on the command line */
};

struct origin {
  enum origin_kind kind;
  const char *file; /* libconfig's name of an included file, or NULL for the main file */
  int line;
};

struct load {
  struct dw_config *cfg;
  const char *file; /* as the caller named it; NULL when there is no file */
  char include_dir[4096]; /* where @include paths are resolved; "" = the working directory */
  char *err;
  size_t errlen;
  int kafka_only; /* for commands that never call the API: the app secret is not needed */
  struct origin origin[NOPT];
  struct origin property_origin[DW_CONFIG_MAX_PROPERTIES]; /* where each property was set */
  size_t property_option[DW_CONFIG_MAX_PROPERTIES];        /* by which key (table index) */
  struct wide wide[WIDE_MAX]; /* integer literals libconfig would wrap, found by scan_text */
  size_t nwide;
};

/* ---- small helpers ---- */

static char **string_field(struct dw_config *cfg, const struct option *o)
{
  return (char **)((char *)cfg + o->offset);
}

static const char *string_value(const struct dw_config *cfg, const struct option *o)
{
  const char *v = *(char *const *)((const char *)cfg + o->offset);
  return v ? v : "";
}

static int64_t *int_field(struct dw_config *cfg, const struct option *o)
{
  return (int64_t *)((char *)cfg + o->offset);
}

static double *float_field(struct dw_config *cfg, const struct option *o)
{
  return (double *)((char *)cfg + o->offset);
}

static int *bool_field(struct dw_config *cfg, const struct option *o)
{
  return (int *)((char *)cfg + o->offset);
}

static int find_option(const char *path)
{
  for (size_t i = 0; i < NOPT; i++)
    if (strcmp(options[i].path, path) == 0)
      return (int)i;
  return -1;
}

static int option_index(const char *path)
{
  int i = find_option(path);
  /* Only called with paths of the table itself. */
  return i < 0 ? 0 : i;
}

/* DELIVERY_WORKER_ + upper(path), '.' -> '_'. */
static void env_name(const char *path, char *buf, size_t size)
{
  size_t n = strlen(ENV_PREFIX);
  dw_strlcpy(buf, ENV_PREFIX, size);
  for (const char *p = path; *p && n + 1 < size; p++)
    buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
  buf[n] = '\0';
}

/* Is path the group of some key ("kafka" for "kafka.brokers")? */
static int is_group(const char *path)
{
  size_t n = strlen(path);
  for (size_t i = 0; i < NOPT; i++)
    if (strncmp(options[i].path, path, n) == 0 && options[i].path[n] == '.')
      return 1;
  return 0;
}

/* A value quoted for an error message: control characters escaped, long values cut. */
static const char *shown(const char *value, char *buf, size_t size)
{
  size_t n = 0;
  if (size < 8)
    return "";
  buf[n++] = '"';
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    if (n + 8 >= size || n >= SHOWN_MAX) {
      buf[n++] = '.';
      buf[n++] = '.';
      buf[n++] = '.';
      break;
    }
    if (*p < 0x20 || *p == 0x7f) {
      snprintf(buf + n, size - n, "\\x%02x", *p);
      n += 4;
    } else {
      if (*p == '"' || *p == '\\')
        buf[n++] = '\\';
      buf[n++] = (char)*p;
    }
  }
  buf[n++] = '"';
  buf[n] = '\0';
  return buf;
}

/* shown() of a URL whose user:password (before the last '@' of the authority) is replaced by
 * "<redacted>": a refused URL is repeated, its credentials never. */
static const char *shown_url(const char *value, char *buf, size_t size)
{
  char tmp[SHOWN_MAX + 16];
  const char *sep = strstr(value, "://");
  const char *auth = sep ? sep + 3 : value;
  size_t authlen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < authlen; i++)
    if (auth[i] == '@')
      at = auth + i;
  if (!at)
    return shown(value, buf, size);
  snprintf(tmp, sizeof(tmp), "%.*s<redacted>%.*s", (int)DW_MIN((size_t)(auth - value), 16),
           value, (int)DW_MIN(strlen(at), SHOWN_MAX), at);
  return shown(tmp, buf, size);
}

static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  size_t row[PATH_MAX_LEN + 1];
  if (la > PATH_MAX_LEN || lb > PATH_MAX_LEN)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
      size_t best = diag + cost;
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The closest known key path (or environment name when env is set) to name, or NULL. */
static const char *suggest(const char *name, int env, char *buf, size_t size)
{
  size_t best = SIZE_MAX;
  size_t limit = strlen(name) / 4;
  char cand[PATH_MAX_LEN];
  if (limit < 2)
    limit = 2;
  /* "brokers" at the top level: the user forgot the group. */
  if (!env && !strchr(name, '.')) {
    for (size_t i = 0; i < NOPT; i++) {
      const char *key = strchr(options[i].path, '.');
      if (key && strcmp(key + 1, name) == 0) {
        dw_strlcpy(buf, options[i].path, size);
        return buf;
      }
    }
  }
  for (size_t i = 0; i < NOPT; i++) {
    char *dot;
    size_t d;
    if (env)
      env_name(options[i].path, cand, sizeof(cand));
    else
      dw_strlcpy(cand, options[i].path, sizeof(cand));
    d = edit_distance(name, cand);
    if (d <= limit && d < best) {
      best = d;
      dw_strlcpy(buf, cand, size);
    }
    if (!env && (dot = strchr(cand, '.')) != NULL) {
      /* The group alone: "kafak" -> "kafka". */
      *dot = '\0';
      d = edit_distance(name, cand);
      if (d <= limit && d < best) {
        best = d;
        dw_strlcpy(buf, cand, size);
      }
    }
  }
  return best == SIZE_MAX ? NULL : buf;
}

/* ---- errors ---- */

/* The name of a file for messages: libconfig names included files as written in @include,
 * relative to the include directory. */
static const char *file_name(const struct load *ld, const char *file, char *buf, size_t size)
{
  if (!file)
    return ld->file ? ld->file : "configuration";
  if (file[0] == '/' || !ld->include_dir[0] || (ld->file && strcmp(file, ld->file) == 0))
    return file;
  snprintf(buf, size, "%s%s%s", ld->include_dir,
           ld->include_dir[strlen(ld->include_dir) - 1] == '/' ? "" : "/", file);
  return buf;
}

static int fail_at(struct load *ld, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct load *ld, size_t idx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct load *ld, const char *file, int line, const char *fmt, ...)
{
  char name[4096 + 256];
  va_list ap;
  int n;
  if (!ld->err || ld->errlen == 0)
    return DW_EINVAL;
  file = file_name(ld, file, name, sizeof(name));
  if (line > 0)
    n = snprintf(ld->err, ld->errlen, "%s:%d: ", file, line);
  else
    n = snprintf(ld->err, ld->errlen, "%s: ", file);
  if (n < 0 || (size_t)n >= ld->errlen)
    return DW_EINVAL;
  va_start(ap, fmt);
  vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return DW_EINVAL;
}

/* "FILE:LINE: path <msg>" or "environment: NAME: <msg>", by where the key was set. */
static int fail(struct load *ld, size_t idx, const char *fmt, ...)
{
  const struct origin *org = &ld->origin[idx];
  char name[4096 + 256];
  va_list ap;
  int n;
  if (!ld->err || ld->errlen == 0)
    return DW_EINVAL;
  if (org->kind == FROM_ENV) {
    env_name(options[idx].path, name, sizeof(name));
    n = snprintf(ld->err, ld->errlen, "environment: %s: ", name);
  } else if (org->kind == FROM_SET) {
    n = snprintf(ld->err, ld->errlen, "command line: --set %s: ", options[idx].path);
  } else if (org->kind == FROM_X) {
    n = snprintf(ld->err, ld->errlen, "command line: -X: ");
  } else if (org->kind == FROM_PROPS_FILE) {
    n = snprintf(ld->err, ld->errlen, "%s:%d: (kafka.properties_file) ", org->file, org->line);
  } else {
    const char *file = file_name(ld, org->file, name, sizeof(name));
    if (org->kind == FROM_FILE && org->line > 0)
      n = snprintf(ld->err, ld->errlen, "%s:%d: %s ", file, org->line, options[idx].path);
    else
      n = snprintf(ld->err, ld->errlen, "%s: %s ", file, options[idx].path);
  }
  if (n < 0 || (size_t)n >= ld->errlen)
    return DW_EINVAL;
  va_start(ap, fmt);
  vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return DW_EINVAL;
}

static int fail_nomem(struct load *ld)
{
  fail_at(ld, NULL, 0, "out of memory");
  return DW_ENOMEM;
}

/* ---- check hooks ---- */

static const char *check_base_url(char *value)
{
  size_t n = strlen(value);
  size_t scheme;
  if (strncmp(value, "https://", 8) == 0)
    scheme = 8;
  else if (strncmp(value, "http://", 7) == 0)
    scheme = 7;
  else
    return "must start with http:// or https://";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)value[i] <= ' ' || value[i] == 0x7f)
      return "must not contain spaces or control characters";
  while (n > scheme && value[n - 1] == '/')
    value[--n] = '\0';
  if (n == scheme || value[scheme] == '/')
    return "must name a host after the scheme";
  if (n > BASE_URL_MAX)
    return "must be at most 1024 bytes";
  return dw_http_url_check(value);
}

/* The worker builds other ids from these (transactional.id = group_id.group_instance_id, the
 * app_ticket reader's group): bounded, they always fit. */
static const char *check_kafka_id(char *value)
{
  if (strlen(value) > KAFKA_ID_MAX)
    return "must be at most 200 bytes";
  return NULL;
}

/* redis://HOST:PORT (HOST a name, an IPv4 address or [IPv6]), or "". */
static const char *check_store(char *value)
{
  struct dw_hostport hp;
  if (!value[0])
    return NULL;
  if (strncmp(value, "redis://", 8) != 0)
    return "must be redis://HOST:PORT (like redis://127.0.0.1:6379) or empty";
  switch (dw_hostport_parse(value + 8, &hp)) {
  case DW_HOSTPORT_OK:
    if (hp.host[0] && hp.port > 0)
      return NULL;
    return hp.host[0] ? "must end with a port between 1 and 65535 (redis://HOST:PORT)"
                      : "must be redis://HOST:PORT (like redis://127.0.0.1:6379) or empty";
  case DW_HOSTPORT_PORT:
    return "must end with a port between 1 and 65535 (redis://HOST:PORT)";
  case DW_HOSTPORT_V6:
    return "must put an IPv6 address in brackets (like redis://[::1]:6379)";
  default:
    return "must be redis://HOST:PORT (like redis://127.0.0.1:6379) or empty";
  }
}

static const char *check_listen(char *value)
{
  struct dw_hostport hp;
  switch (dw_hostport_parse(value, &hp)) {
  case DW_HOSTPORT_OK:
    return hp.host[0] ? NULL : "must be host:port (like 0.0.0.0:9464 or [::]:9464)";
  case DW_HOSTPORT_PORT:
    return "must end with a port number 0-65535";
  case DW_HOSTPORT_V6:
    return "must put an IPv6 address in brackets (like [::1]:9464)";
  default:
    return "must be host:port (like 0.0.0.0:9464 or [::]:9464)";
  }
}

static const char *check_topic(char *value)
{
  size_t n = strlen(value);
  if (n > 249 || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
    return "must be a Kafka topic name (1-249 characters of A-Z a-z 0-9 . _ -)";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)value[i];
    if (!isalnum(c) && c != '.' && c != '_' && c != '-')
      return "must be a Kafka topic name (1-249 characters of A-Z a-z 0-9 . _ -)";
  }
  return NULL;
}

static const char *check_brokers(char *value)
{
  for (const char *p = value; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return "must be comma-separated host:port without spaces";
  return NULL;
}

/* ---- setting values ---- */

static int set_string(struct load *ld, size_t idx, const char *value)
{
  const struct option *o = &options[idx];
  char **field = string_field(ld->cfg, o);
  char buf[SHOWN_MAX + 16];
  char *copy;
  if (strlen(value) > VALUE_MAX)
    return fail(ld, idx, "must be at most %d bytes", VALUE_MAX);
  if (o->choices) {
    size_t i;
    char list[128] = "";
    for (i = 0; o->choices[i]; i++)
      if (strcmp(o->choices[i], value) == 0)
        break;
    if (!o->choices[i]) {
      size_t n = 0;
      for (i = 0; o->choices[i] && n < sizeof(list); i++) {
        int w = snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", o->choices[i]);
        if (w < 0)
          break;
        n += (size_t)w;
      }
      return fail(ld, idx, "must be one of %s, got %s", list, shown(value, buf, sizeof(buf)));
    }
  }
  copy = strdup(value);
  if (!copy)
    return fail_nomem(ld);
  if (o->check && copy[0] != '\0') {
    const char *why = o->check(copy);
    if (why) {
      if (o->flags & F_SECRET)
        fail(ld, idx, "%s", why);
      else if (o->flags & F_URL)
        fail(ld, idx, "%s, got %s", why, shown_url(value, buf, sizeof(buf)));
      else
        fail(ld, idx, "%s, got %s", why, shown(value, buf, sizeof(buf)));
      free(copy);
      return DW_EINVAL;
    }
  }
  free(*field);
  *field = copy;
  return 0;
}

static int set_int(struct load *ld, size_t idx, int64_t v)
{
  const struct option *o = &options[idx];
  if (v < o->min_int || v > o->max_int)
    return fail(ld, idx, "must be between %" PRId64 " and %" PRId64 ", got %" PRId64,
                o->min_int, o->max_int, v);
  *int_field(ld->cfg, o) = v;
  return 0;
}

static int set_float(struct load *ld, size_t idx, double v)
{
  const struct option *o = &options[idx];
  if (!isfinite(v) || v < o->min_float || v > o->max_float)
    return fail(ld, idx, "must be between %g and %g, got %g", o->min_float, o->max_float, v);
  *float_field(ld->cfg, o) = v;
  return 0;
}

/* ---- kafka.properties ---- */

static const struct dw_config_property *property_entry(const struct dw_config *cfg,
                                                      enum dw_config_scope scope,
                                                      const char *name)
{
  for (size_t i = 0; i < cfg->kafka.properties_count; i++)
    if (cfg->kafka.properties[i].scope == scope && strcmp(cfg->kafka.properties[i].name, name) == 0)
      return &cfg->kafka.properties[i];
  return NULL;
}

static struct dw_config_property *property_find(struct dw_config *cfg,
                                                enum dw_config_scope scope, const char *name)
{
  return (struct dw_config_property *)property_entry(cfg, scope, name);
}

const char *dw_config_property(const struct dw_config *cfg, const char *name)
{
  const struct dw_config_property *p = property_entry(cfg, DW_CONFIG_SHARED, name);
  return p ? p->value : NULL;
}

/* NULL when name can be a property, else the tail of an error message. */
static const char *property_name_problem(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n > PROPERTY_NAME_MAX)
    return "a property name must be 1-255 characters";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!isalnum(c) && c != '.' && c != '_' && c != '-')
      return "a property name may only hold A-Z a-z 0-9 . _ -";
  }
  if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0)
    return "set the brokers with kafka.brokers, not as a property";
  if (strcmp(name, "group.id") == 0)
    return "set the group with kafka.group_id, not as a property";
  return NULL;
}

/* "app.conf:12: kafka.properties", "environment: DELIVERY_WORKER_KAFKA_PROPERTIES:
 * kafka.properties", "client.properties:3", "command line: -X": where a property entry was
 * set. */
static void origin_text(const struct load *ld, const struct origin *org, size_t idx, char *buf,
                        size_t size)
{
  char name[4096 + 256];
  switch (org->kind) {
  case FROM_ENV:
    env_name(options[idx].path, name, sizeof(name));
    snprintf(buf, size, "environment: %s: %s", name, options[idx].path);
    return;
  case FROM_SET:
    snprintf(buf, size, "command line: --set %s", options[idx].path);
    return;
  case FROM_X:
    snprintf(buf, size, "command line: -X");
    return;
  case FROM_PROPS_FILE:
    snprintf(buf, size, "%s:%d", org->file, org->line);
    return;
  case FROM_FILE:
  case FROM_DEFAULT:
    break;
  }
  const char *file = file_name(ld, org->file, name, sizeof(name));
  if (org->line > 0)
    snprintf(buf, size, "%s:%d: %s", file, org->line, options[idx].path);
  else
    snprintf(buf, size, "%s: %s", file, options[idx].path);
}

/* How property_add treats a name already set in the same scope. */
enum replace_mode {
  ADD_ONLY,     /* an error: the same list sets it twice */
  REPLACE,      /* a later source overrides it */
  UNDER_OTHERS, /* kafka.properties_file: overrides only its own earlier lines */
};

/* Adds or overrides a property of the scope of key idx, recording where it was set. */
static int property_add(struct load *ld, size_t idx, const char *name, const char *value,
                        enum replace_mode mode)
{
  struct dw_config *cfg = ld->cfg;
  enum dw_config_scope scope = (enum dw_config_scope)options[idx].def_int;
  char buf[SHOWN_MAX + 16];
  char where[4096 + 512];
  const char *why = property_name_problem(name);
  struct dw_config_property *p;
  char *v, *w;
  if (why)
    return fail(ld, idx, "%s, got %s", why, shown(name, buf, sizeof(buf)));
  if (strlen(value) > VALUE_MAX)
    return fail(ld, idx, "value of %s must be at most %d bytes", shown(name, buf, sizeof(buf)),
                VALUE_MAX);
  p = property_find(cfg, scope, name);
  if (p) {
    size_t i = (size_t)(p - cfg->kafka.properties);
    if (mode == ADD_ONLY)
      return fail(ld, idx, "sets %s twice", shown(name, buf, sizeof(buf)));
    if (mode == UNDER_OTHERS && ld->property_origin[i].kind != FROM_PROPS_FILE)
      return 0;
  } else if (cfg->kafka.properties_count >= DW_CONFIG_MAX_PROPERTIES) {
    return fail(ld, idx, "makes more than %d properties in all", DW_CONFIG_MAX_PROPERTIES);
  }
  origin_text(ld, &ld->origin[idx], idx, where, sizeof(where));
  v = strdup(value);
  w = strdup(where);
  if (!v || !w) {
    free(v);
    free(w);
    return fail_nomem(ld);
  }
  if (!p) {
    p = &cfg->kafka.properties[cfg->kafka.properties_count];
    memset(p, 0, sizeof(*p));
    p->name = strdup(name);
    if (!p->name) {
      free(v);
      free(w);
      return fail_nomem(ld);
    }
    p->scope = scope;
    cfg->kafka.properties_count++;
  }
  if (dw_config_property_is_secret(p->name) && p->value)
    explicit_bzero(p->value, strlen(p->value));
  free(p->value);
  free(p->where);
  p->value = v;
  p->where = w;
  ld->property_origin[p - cfg->kafka.properties] = ld->origin[idx];
  ld->property_option[p - cfg->kafka.properties] = idx;
  return 0;
}

static int scalar_text(const config_setting_t *s, char *buf, size_t size, const char **out)
{
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_STRING:
    *out = config_setting_get_string(s);
    return *out ? 0 : DW_EINVAL;
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    snprintf(buf, size, "%" PRId64, (int64_t)config_setting_get_int64(s));
    break;
  case CONFIG_TYPE_FLOAT:
    snprintf(buf, size, "%.15g", config_setting_get_float(s));
    break;
  case CONFIG_TYPE_BOOL:
    snprintf(buf, size, "%s", config_setting_get_bool(s) ? "true" : "false");
    break;
  default:
    return DW_EINVAL;
  }
  *out = buf;
  return 0;
}

#define PAIR_HINT "must be a list of (\"name\", value) pairs, like " \
                  "( (\"security.protocol\", \"SSL\"), (\"session.timeout.ms\", 6000) )"

static int properties_from_file(struct load *ld, size_t idx, const config_setting_t *s)
{
  int n = config_setting_length(s);
  if (config_setting_is_group(s)) {
    if (n == 0)
      return 0;
    ld->origin[idx].line = config_setting_source_line(config_setting_get_elem(s, 0));
    return fail(ld, idx, "%s (libconfig names cannot contain the dots of librdkafka names)",
                PAIR_HINT);
  }
  if (!config_setting_is_list(s) && !config_setting_is_array(s))
    return fail(ld, idx, PAIR_HINT);
  if (config_setting_is_array(s) && n > 0)
    return fail(ld, idx, PAIR_HINT);
  for (int i = 0; i < n; i++) {
    const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    const config_setting_t *name, *value;
    const char *text;
    char num[64];
    int rc;
    ld->origin[idx].line = config_setting_source_line(e);
    if ((!config_setting_is_list(e) && !config_setting_is_array(e)) ||
        config_setting_length(e) != 2)
      return fail(ld, idx, PAIR_HINT);
    name = config_setting_get_elem(e, 0);
    value = config_setting_get_elem(e, 1);
    if (config_setting_type(name) != CONFIG_TYPE_STRING || !config_setting_get_string(name))
      return fail(ld, idx, PAIR_HINT);
    if (scalar_text(value, num, sizeof(num), &text) != 0) {
      char buf[SHOWN_MAX + 16];
      return fail(ld, idx, "value of %s must be a string, number or boolean",
                  shown(config_setting_get_string(name), buf, sizeof(buf)));
    }
    rc = property_add(ld, idx, config_setting_get_string(name), text, ADD_ONLY);
    if (rc)
      return rc;
  }
  return 0;
}

/* "name=value,name=value"; "\," is a comma and "\\" a backslash inside a name or value. */
static int properties_from_env(struct load *ld, size_t idx, const char *spec)
{
  size_t len = strlen(spec);
  char *item = malloc(len + 1);
  const char *p = spec;
  int rc = 0;
  if (!item)
    return fail_nomem(ld);
  while (*p) {
    size_t n = 0;
    char *eq;
    while (*p && *p != ',') {
      if (*p == '\\' && (p[1] == ',' || p[1] == '\\'))
        p++;
      item[n++] = *p++;
    }
    item[n] = '\0';
    if (*p == ',')
      p++;
    if (n == 0)
      continue;
    eq = strchr(item, '=');
    if (!eq) {
      char buf[SHOWN_MAX + 16];
      rc = fail(ld, idx, "entry %s must be name=value", shown(item, buf, sizeof(buf)));
      goto out;
    }
    *eq = '\0';
    rc = property_add(ld, idx, item, eq + 1, REPLACE);
    if (rc)
      goto out;
  }
out:
  free(item);
  return rc;
}

/* ---- integers wider than libconfig keeps ---- */

/* Reads a configuration file whole (NUL-terminated; the caller frees it). */
static int read_config_text(FILE *fp, char **out, size_t *outlen)
{
  size_t len = 0, cap = 0;
  char *data = NULL;
  for (;;) {
    if (len == cap) {
      char *p;
      if (cap == (size_t)CONFIG_FILE_MAX + 1) { /* one byte more than allowed */
        free(data);
        return DW_ERANGE;
      }
      cap = cap ? DW_MIN(cap * 2, (size_t)CONFIG_FILE_MAX + 1) : 4096;
      p = realloc(data, cap + 1);
      if (!p) {
        free(data);
        return DW_ENOMEM;
      }
      data = p;
    }
    size_t r = fread(data + len, 1, cap - len, fp);
    len += r;
    if (r == 0) {
      if (ferror(fp)) {
        free(data);
        return DW_EIO;
      }
      break;
    }
  }
  data[len] = '\0';
  *out = data;
  *outlen = len;
  return 0;
}

/* The value of an integer literal [start, end) as libconfig 1.5's scanner sees it: 1 when it
 * is one that libconfig cannot hold (*value, *overflow set), 0 when it is fine or not an
 * integer at all (a float, a name). */
static int wide_literal(const char *start, const char *end, int64_t *value, int *overflow)
{
  char text[64];
  size_t n = (size_t)(end - start);
  int suffix = 0, hex;
  char *stop;
  if (n >= sizeof(text))
    n = sizeof(text) - 1;
  memcpy(text, start, n);
  text[n] = '\0';
  while (n > 0 && text[n - 1] == 'L') {
    text[--n] = '\0';
    suffix++;
  }
  if (suffix > 2 || n == 0)
    return 0;
  hex = n > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  size_t digits = hex ? 2 : (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (digits >= n)
    return 0;
  for (size_t i = digits; i < n; i++)
    if (!(hex ? isxdigit((unsigned char)text[i]) : isdigit((unsigned char)text[i])))
      return 0;
  errno = 0;
  *overflow = 0;
  if (hex) {
    unsigned long long u = strtoull(text + 2, &stop, 16);
    if (errno == ERANGE || u > INT64_MAX) {
      *overflow = 1;
      return 1;
    }
    *value = (int64_t)u;
    return suffix ? 0 : u > INT32_MAX; /* libconfig: 32 bits, 0xFFFFFFFF reads as -1 */
  }
  long long v = strtoll(text, &stop, 10);
  if (errno == ERANGE) {
    *overflow = 1;
    return 1;
  }
  *value = v;
  return suffix ? 0 : v < INT32_MIN || v > INT32_MAX;
}

struct scan {
  char path[PATH_MAX_LEN]; /* group path where the scan is ("kafka") */
  char name[PATH_MAX_LEN]; /* last name followed by = or : */
  int name_line;
  char kinds[64];          /* open brackets: 'g' group, 'l' list or array */
  size_t lens[64];         /* path length before each opening */
  size_t depth;
  int includes_only;       /* before libconfig reads the text: only check @include targets */
};

static int scan_text(struct load *ld, struct scan *sc, const char *file, const char *text,
                     int level);

static int scan_include(struct load *ld, struct scan *sc, const char *file, int line,
                        const char *name, int level)
{
  char path[4096 + 256];
  FILE *fp;
  char *text = NULL;
  size_t len;
  int rc;
  if (level >= INCLUDE_DEPTH_MAX)
    return 0; /* libconfig has refused it already */
  if (name[0] == '/' || !ld->include_dir[0])
    rc = snprintf(path, sizeof(path), "%s", name);
  else
    rc = snprintf(path, sizeof(path), "%s/%s", ld->include_dir, name);
  if (rc < 0 || (size_t)rc >= sizeof(path))
    return fail_at(ld, file, line, "@include path too long");
  fp = fopen(path, "r");
  if (!fp)
    return fail_at(ld, file, line, "cannot open %s: %s", path, strerror(errno));
  /* libconfig 1.5's scanner ends the process (exit 2) when it cannot read an included file,
   * a directory (@include "" names the file's own) among them, and would wait for ever on a
   * pipe: only regular files are let through to it. */
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(fp);
    return fail_at(ld, file, line, "@include \"%s\": %s is not a regular file", name, path);
  }
  rc = read_config_text(fp, &text, &len);
  fclose(fp);
  if (rc == DW_ENOMEM)
    return fail_nomem(ld);
  if (rc)
    return fail_at(ld, file, line, "cannot read %s", path);
  rc = scan_text(ld, sc, name, text, level + 1);
  free(text);
  return rc;
}

static int add_wide(struct load *ld, struct scan *sc, const char *file, int line,
                    const char *start, const char *end, int64_t value, int overflow)
{
  size_t n = (size_t)(end - start);
  struct wide *w;
  char text[32];
  snprintf(text, sizeof(text), "%.*s", (int)DW_MIN(n, sizeof(text) - 1), start);
  int in_list = memchr(sc->kinds, 'l', sc->depth) != NULL;
  if (in_list || !sc->name[0] || ld->nwide == WIDE_MAX) {
    if (overflow)
      return fail_at(ld, file, line, "integer %s does not fit in 64 bits", text);
    return fail_at(ld, file, line,
                   "integer %s does not fit in 32 bits, which libconfig would silently "
                   "wrap: write %sL", text, text);
  }
  w = &ld->wide[ld->nwide];
  memset(w, 0, sizeof(*w));
  if (file && !(w->file = strdup(file)))
    return fail_nomem(ld);
  ld->nwide++;
  if (snprintf(w->path, sizeof(w->path), "%s%s%s", sc->path, sc->path[0] ? "." : "",
               sc->name) >= (int)sizeof(w->path))
    w->path[0] = '\0'; /* longer than any key: the walk reports it as unknown */
  w->line = sc->name_line;
  w->value = value;
  w->overflow = overflow;
  memcpy(w->text, text, sizeof(text));
  return 0;
}

/* Finds the integer literals libconfig would wrap or saturate, tracking which key each is
 * the value of, through @include files as libconfig reads them. Syntax errors are left to
 * libconfig, which has read the same text already. */
static int scan_text(struct load *ld, struct scan *sc, const char *file, const char *text,
                     int level)
{
  const char *p = text;
  int line = 1, bol = 1;
  char last[PATH_MAX_LEN] = "";
  int last_line = 0;
  while (*p) {
    char c = *p;
    if (c == '\n') {
      line++;
      bol = 1;
      p++;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
      p++;
      continue;
    }
    if (c == '#' || (c == '/' && p[1] == '/')) {
      while (*p && *p != '\n')
        p++;
      continue;
    }
    if (c == '/' && p[1] == '*') {
      for (p += 2; *p && !(p[0] == '*' && p[1] == '/'); p++)
        line += *p == '\n';
      if (*p)
        p += 2;
      bol = 0;
      continue;
    }
    if (c == '@' && bol && strncmp(p, "@include", 8) == 0) {
      char name[4096];
      size_t n = 0;
      int rc;
      for (p += 8; *p == ' ' || *p == '\t'; p++)
        ;
      if (*p != '"')
        return 0;
      for (p++; *p && *p != '"' && *p != '\n'; p++) {
        if (*p == '\\' && p[1])
          p++;
        if (n + 1 >= sizeof(name))
          return fail_at(ld, file, line, "@include path too long");
        name[n++] = *p;
      }
      name[n] = '\0';
      rc = scan_include(ld, sc, file, line, name, level);
      if (rc)
        return rc;
      while (*p && *p != '\n')
        p++;
      continue;
    }
    bol = 0;
    if (c == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
          p++;
        line += *p == '\n';
      }
      if (*p)
        p++;
      continue;
    }
    if (isalpha((unsigned char)c) || c == '*') {
      size_t n = 0;
      while (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '*') {
        if (n + 1 < sizeof(last))
          last[n++] = *p;
        p++;
      }
      last[n] = '\0';
      last_line = line;
      continue;
    }
    if (c == '=' || c == ':') {
      dw_strlcpy(sc->name, last, sizeof(sc->name));
      sc->name_line = last_line;
      p++;
      continue;
    }
    if (c == '{' || c == '(' || c == '[') {
      if (sc->depth == sizeof(sc->kinds))
        return 0; /* deeper than any key: nothing of ours below */
      sc->kinds[sc->depth] = c == '{' ? 'g' : 'l';
      sc->lens[sc->depth] = strlen(sc->path);
      sc->depth++;
      if (c == '{' && sc->name[0]) {
        size_t n = strlen(sc->path);
        snprintf(sc->path + n, sizeof(sc->path) - n, "%s%s", n ? "." : "", sc->name);
      }
      sc->name[0] = '\0';
      p++;
      continue;
    }
    if (c == '}' || c == ')' || c == ']') {
      if (sc->depth > 0) {
        sc->depth--;
        sc->path[sc->lens[sc->depth]] = '\0';
      }
      sc->name[0] = '\0';
      p++;
      continue;
    }
    if (isdigit((unsigned char)c) || c == '-' || c == '+' || c == '.') {
      const char *start = p;
      int64_t value = 0; /* wide_literal leaves it unset on overflow */
      int overflow = 0;
      for (p++; isalnum((unsigned char)*p) || *p == '.' ||
                ((*p == '-' || *p == '+') && (p[-1] == 'e' || p[-1] == 'E'));
           p++)
        ;
      if (!sc->includes_only && wide_literal(start, p, &value, &overflow)) {
        int rc = add_wide(ld, sc, file, line, start, p, value, overflow);
        if (rc)
          return rc;
      }
      continue;
    }
    if (c == ';' || c == ',')
      sc->name[0] = c == ';' ? '\0' : sc->name[0];
    p++;
  }
  return 0;
}

/* The wide literal that is the value of key path set at (file, line), or NULL. */
static struct wide *find_wide(struct load *ld, const char *path, const char *file, int line)
{
  for (size_t i = 0; i < ld->nwide; i++) {
    struct wide *w = &ld->wide[i];
    if (!w->used && w->line == line && strcmp(w->path, path) == 0 &&
        (w->file == file || (w->file && file && strcmp(w->file, file) == 0))) {
      w->used = 1;
      return w;
    }
  }
  return NULL;
}

/* ---- the file ---- */

static int apply_setting(struct load *ld, size_t idx, const config_setting_t *s)
{
  const struct option *o = &options[idx];
  int type = config_setting_type(s);
  int64_t v = 0;
  if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
    /* The literal as written when libconfig could not hold it (see struct wide). */
    struct wide *w = find_wide(ld, o->path, config_setting_source_file(s),
                               config_setting_source_line(s));
    v = (int64_t)config_setting_get_int64(s);
    if (w && w->overflow)
      return fail(ld, idx, "must be between %" PRId64 " and %" PRId64 ", got %s", o->min_int,
                  o->max_int, w->text);
    if (w)
      v = w->value;
  }
  switch (o->kind) {
  case KIND_STRING:
    if (type != CONFIG_TYPE_STRING)
      return fail(ld, idx, "must be a string");
    return set_string(ld, idx, config_setting_get_string(s));
  case KIND_INT:
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
      return fail(ld, idx, "must be an integer");
    return set_int(ld, idx, v);
  case KIND_FLOAT:
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
      return set_float(ld, idx, (double)v);
    if (type != CONFIG_TYPE_FLOAT)
      return fail(ld, idx, "must be a number");
    return set_float(ld, idx, config_setting_get_float(s));
  case KIND_BOOL:
    if (type != CONFIG_TYPE_BOOL)
      return fail(ld, idx, "must be true or false");
    *bool_field(ld->cfg, o) = config_setting_get_bool(s) ? 1 : 0;
    return 0;
  case KIND_PROPERTIES:
    return properties_from_file(ld, idx, s);
  }
  return DW_EINVAL;
}

static int walk(struct load *ld, const config_setting_t *group, const char *prefix)
{
  int n = config_setting_length(group);
  for (int i = 0; i < n; i++) {
    const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
    const char *name = config_setting_name(s);
    const char *file = config_setting_source_file(s);
    int line = config_setting_source_line(s);
    char path[PATH_MAX_LEN];
    char hint[PATH_MAX_LEN];
    int idx, rc;
    if (!name)
      continue;
    rc = snprintf(path, sizeof(path), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", name);
    if (rc < 0 || (size_t)rc >= sizeof(path)) /* longer than any key: never matched cut */
      return fail_at(ld, file, line, "unknown key \"%s%s%.40s...\"", prefix ? prefix : "",
                     prefix ? "." : "", name);
    idx = find_option(path);
    if (idx >= 0) {
      ld->origin[idx].kind = FROM_FILE;
      ld->origin[idx].file = file;
      ld->origin[idx].line = line;
      rc = apply_setting(ld, (size_t)idx, s);
      if (rc)
        return rc;
    } else if (is_group(path)) {
      if (!config_setting_is_group(s))
        return fail_at(ld, file, line, "%s must be a group: %s = { ... };", path, path);
      rc = walk(ld, s, path);
      if (rc)
        return rc;
    } else if (suggest(path, 0, hint, sizeof(hint))) {
      return fail_at(ld, file, line, "unknown key \"%s\" (did you mean \"%s\"?)", path, hint);
    } else {
      return fail_at(ld, file, line, "unknown key \"%s\"", path);
    }
  }
  return 0;
}

static int load_file(struct load *ld, config_t *lc)
{
  char *dir = ld->include_dir;
  size_t dirsize = sizeof(ld->include_dir);
  const char *slash = strrchr(ld->file, '/');
  struct stat st;
  struct scan sc;
  FILE *fp = fopen(ld->file, "r");
  char *text = NULL;
  size_t len;
  int rc;
  if (!fp)
    return fail_at(ld, NULL, 0, "cannot open: %s", strerror(errno));
  if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(fp);
    return fail_at(ld, NULL, 0, "cannot open: %s", strerror(EISDIR));
  }
  /* Read once, for libconfig and for scan_text (a pipe cannot be read twice). */
  rc = read_config_text(fp, &text, &len);
  fclose(fp);
  if (rc == DW_ENOMEM)
    return fail_nomem(ld);
  if (rc == DW_ERANGE)
    return fail_at(ld, NULL, 0, "larger than %d bytes", CONFIG_FILE_MAX);
  if (rc)
    return fail_at(ld, NULL, 0, "cannot read: %s", strerror(EIO));
  /* @include paths are relative to the file's directory. */
  if (slash && (size_t)(slash - ld->file) + 1 < dirsize) {
    memcpy(dir, ld->file, (size_t)(slash - ld->file));
    dir[slash - ld->file] = '\0';
    if (!dir[0])
      dw_strlcpy(dir, "/", dirsize);
    config_set_include_dir(lc, dir);
  }
  /* The files it includes are looked at first: libconfig must only ever read regular files. */
  memset(&sc, 0, sizeof(sc));
  sc.includes_only = 1;
  rc = scan_text(ld, &sc, NULL, text, 0);
  if (rc) {
    free(text);
    return rc;
  }
  rc = config_read_string(lc, text);
  if (rc != CONFIG_TRUE) {
    free(text);
    return fail_at(ld, config_error_file(lc), config_error_line(lc), "%s",
                   config_error_text(lc) ? config_error_text(lc) : "cannot parse");
  }
  memset(&sc, 0, sizeof(sc));
  rc = scan_text(ld, &sc, NULL, text, 0);
  free(text);
  if (rc)
    return rc;
  rc = walk(ld, config_root_setting(lc), NULL);
  if (rc)
    return rc;
  for (size_t i = 0; i < ld->nwide; i++) /* not the value of a key that takes a number */
    if (!ld->wide[i].used)
      return fail_at(ld, ld->wide[i].file, ld->wide[i].line,
                     "%s: integer %s does not fit in 32 bits, which libconfig would silently "
                     "wrap: write %sL", ld->wide[i].path, ld->wide[i].text, ld->wide[i].text);
  return 0;
}

/* ---- the environment ---- */

/* A value given as text (environment or --set), validated as the file's would be. */
static int apply_text(struct load *ld, size_t idx, const char *value, enum origin_kind kind)
{
  const struct option *o = &options[idx];
  char buf[SHOWN_MAX + 16];
  ld->origin[idx].kind = kind;
  switch (o->kind) {
  case KIND_STRING:
    return set_string(ld, idx, value);
  case KIND_INT: {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < o->min_int || v > o->max_int)
      return fail(ld, idx, "must be an integer between %" PRId64 " and %" PRId64 ", got %s",
                  o->min_int, o->max_int, shown(value, buf, sizeof(buf)));
    return set_int(ld, idx, (int64_t)v);
  }
  case KIND_FLOAT: {
    char *end;
    double v;
    errno = 0;
    v = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !isfinite(v) || v < o->min_float ||
        v > o->max_float)
      return fail(ld, idx, "must be between %g and %g, got %s", o->min_float, o->max_float,
                  shown(value, buf, sizeof(buf)));
    return set_float(ld, idx, v);
  }
  case KIND_BOOL:
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
      *bool_field(ld->cfg, o) = 1;
    else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
      *bool_field(ld->cfg, o) = 0;
    else
      return fail(ld, idx, "must be true or false, got %s", shown(value, buf, sizeof(buf)));
    return 0;
  case KIND_PROPERTIES:
    return properties_from_env(ld, idx, value);
  }
  return DW_EINVAL;
}

static int load_env(struct load *ld, char *const *envp)
{
  size_t plen = strlen(ENV_PREFIX);
  if (!envp)
    return 0;
  for (char *const *e = envp; *e; e++) {
    const char *eq = strchr(*e, '=');
    char name[PATH_MAX_LEN];
    char cand[PATH_MAX_LEN];
    char hint[PATH_MAX_LEN];
    size_t n;
    int idx = -1;
    if (strncmp(*e, ENV_PREFIX, plen) != 0 || !eq)
      continue;
    n = (size_t)(eq - *e);
    if (n < sizeof(name)) {
      memcpy(name, *e, n);
      name[n] = '\0';
      for (size_t i = 0; i < NOPT && idx < 0; i++) {
        env_name(options[i].path, cand, sizeof(cand));
        if (strcmp(cand, name) == 0)
          idx = (int)i;
      }
    } else {
      memcpy(name, *e, sizeof(name) - 4);
      memcpy(name + sizeof(name) - 4, "...", 4);
    }
    if (idx < 0) {
      if (ld->err && ld->errlen) {
        if (n < sizeof(name) && suggest(name, 1, hint, sizeof(hint)))
          snprintf(ld->err, ld->errlen,
                   "environment: %s: unknown variable (did you mean %s?)", name, hint);
        else
          snprintf(ld->err, ld->errlen, "environment: %s: unknown variable", name);
      }
      return DW_EINVAL;
    }
    int rc = apply_text(ld, (size_t)idx, eq + 1, FROM_ENV);
    if (rc)
      return rc;
  }
  return 0;
}

static int read_small_file(struct load *ld, size_t idx, const char *path, size_t max,
                           char **out, size_t *outlen);

/* ---- the command line ---- */

/* --set group.key=value, validated like the file. */
static int load_set(struct load *ld, const char *arg)
{
  const char *eq = strchr(arg, '=');
  char path[PATH_MAX_LEN];
  char hint[PATH_MAX_LEN];
  char buf[SHOWN_MAX + 16];
  size_t n = eq ? (size_t)(eq - arg) : 0;
  int idx;
  if (!eq || n == 0) {
    if (ld->err && ld->errlen)
      snprintf(ld->err, ld->errlen, "command line: --set %s: want group.key=value",
               shown(arg, buf, sizeof(buf)));
    return DW_EINVAL;
  }
  if (n >= sizeof(path))
    n = sizeof(path) - 1; /* longer than any key: unknown */
  memcpy(path, arg, n);
  path[n] = '\0';
  idx = find_option(path);
  if (idx < 0) {
    if (ld->err && ld->errlen) {
      if (suggest(path, 0, hint, sizeof(hint)))
        snprintf(ld->err, ld->errlen, "command line: --set: unknown key %s (did you mean "
                 "\"%s\"?)", shown(path, buf, sizeof(buf)), hint);
      else
        snprintf(ld->err, ld->errlen, "command line: --set: unknown key %s (see "
                 "`delivery-worker config-reference`)", shown(path, buf, sizeof(buf)));
    }
    return DW_EINVAL;
  }
  return apply_text(ld, (size_t)idx, eq + 1, FROM_SET);
}

/* -X name=value: a shared property over every other source, the consumer's and producer's
 * own lists included. */
static int load_x(struct load *ld, const char *arg)
{
  size_t shared = (size_t)option_index("kafka.properties");
  const char *eq = strchr(arg, '=');
  char buf[SHOWN_MAX + 16];
  char *name;
  int rc;
  ld->origin[shared].kind = FROM_X;
  if (!eq)
    return fail(ld, shared, "%s must be name=value", shown(arg, buf, sizeof(buf)));
  name = strndup(arg, (size_t)(eq - arg));
  if (!name)
    return fail_nomem(ld);
  rc = property_add(ld, shared, name, eq + 1, REPLACE);
  for (size_t i = 0; rc == 0 && i < ld->cfg->kafka.properties_count; i++) {
    struct dw_config_property *p = &ld->cfg->kafka.properties[i];
    if (p->scope != DW_CONFIG_SHARED && strcmp(p->name, name) == 0) {
      size_t own = ld->property_option[i];
      ld->origin[own].kind = FROM_X;
      rc = property_add(ld, own, name, eq + 1, REPLACE);
    }
  }
  free(name);
  return rc;
}

struct props_file {
  struct load *ld;
  size_t idx; /* kafka.properties: the scope and key its entries count as */
  const char *path;
  int failed; /* an entry was refused (its message is written) */
};

static int on_props_entry(void *ctx, int line, const char *name, const char *value)
{
  struct props_file *pf = ctx;
  struct origin *org = &pf->ld->origin[pf->idx];
  org->kind = FROM_PROPS_FILE;
  org->file = pf->path;
  org->line = line;
  int rc = property_add(pf->ld, pf->idx, name, value, UNDER_OTHERS);
  pf->failed = rc != 0;
  return rc;
}

/* kafka.properties_file: read once file, environment and --set have named it; its entries
 * rank below kafka.properties'. */
static int load_properties_file(struct load *ld)
{
  const char *path = ld->cfg->kafka.properties_file;
  size_t ifile = (size_t)option_index("kafka.properties_file");
  struct props_file pf = {ld, (size_t)option_index("kafka.properties"), path, 0};
  struct origin saved = ld->origin[pf.idx];
  char what[256];
  char *data;
  size_t len;
  int line = 0, rc;
  if (!path || !path[0])
    return 0;
  rc = read_small_file(ld, ifile, path, DW_PROPERTIES_FILE_MAX, &data, &len);
  if (rc)
    return rc;
  rc = dw_properties_parse(data, len, on_props_entry, &pf, &line, what, sizeof(what));
  if (rc && !pf.failed) { /* the file's syntax; an entry's own error is written already */
    if (rc == DW_ENOMEM)
      rc = fail_nomem(ld);
    else if (ld->err && ld->errlen)
      snprintf(ld->err, ld->errlen, "%s:%d: %s (kafka.properties_file)", path, line, what);
  }
  ld->origin[pf.idx] = saved;
  explicit_bzero(data, len);
  free(data);
  return rc;
}

/* ---- kafka.properties that break the worker's promises ---- */

/* librdkafka's reading of a boolean: 1 true, 0 false, -1 neither (librdkafka refuses it). */
static int rdkafka_bool(const char *v)
{
  if (strcasecmp(v, "true") == 0 || strcasecmp(v, "t") == 0 || strcmp(v, "1") == 0)
    return 1;
  if (strcasecmp(v, "false") == 0 || strcasecmp(v, "f") == 0 || strcmp(v, "0") == 0)
    return 0;
  return -1;
}

#define COMMIT_HINT                                                                            \
  "the worker stores and commits an input offset only once its result or dead letter is "      \
  "acknowledged (kafka.commit_interval_ms sets how often)"

/* Why name = value is refused, or NULL when it is not. Values librdkafka itself refuses are
 * left to it. *insecure is set when kafka.allow_insecure_tls lifts the refusal. Spellings
 * are librdkafka 2.0.2's, aliases included (auto.commit.enable, request.required.acks). */
static const char *property_refusal(const struct dw_config *cfg, const char *name,
                                    const char *value, int *insecure)
{
  *insecure = 0;
  if (strcmp(name, "enable.auto.commit") == 0 || strcmp(name, "auto.commit.enable") == 0) {
    if (rdkafka_bool(value) == 1)
      return "commits offsets of tasks not yet resolved, so a crash loses them: " COMMIT_HINT;
  } else if (strcmp(name, "enable.auto.offset.store") == 0) {
    if (rdkafka_bool(value) == 1)
      return "stores offsets of tasks not yet resolved, so a crash loses them: " COMMIT_HINT;
  } else if (strcmp(name, "offset.store.method") == 0) {
    if (strcasecmp(value, "broker") != 0)
      return "keeps offsets out of the consumer group, so a restart repeats or skips tasks: "
             COMMIT_HINT;
  } else if (strcmp(name, "acks") == 0 || strcmp(name, "request.required.acks") == 0) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (end != value && *end == '\0' && (errno != 0 || v != -1))
      return "lets a broker failure lose acknowledged results: the worker's producer needs "
             "acks = all (its default), remove it";
  } else if (strcmp(name, "enable.idempotence") == 0) {
    if (rdkafka_bool(value) == 0)
      return "lets a retried send write a result twice or out of order: the worker's producer "
             "is always idempotent, remove it (processing.guarantee = \"exactly_once\" for "
             "one result per task)";
  } else if (strcmp(name, "transactional.id") == 0) {
    return "is set by the worker: use kafka.transactional_id (with processing.guarantee = "
           "\"exactly_once\")";
  } else if (strcmp(name, "group.instance.id") == 0) {
    return "is set by the worker: use kafka.group_instance_id";
  } else if (strcmp(name, "partition.assignment.strategy") == 0) {
    return "is set by the worker: its rebalance handling needs cooperative-sticky (for no "
           "rebalance on a restart, use kafka.group_instance_id)";
  } else if (strcmp(name, "isolation.level") == 0) {
    if (strcasecmp(value, "read_uncommitted") == 0 &&
        strcmp(cfg->processing.guarantee, "exactly_once") == 0)
      return "would process input of aborted transactions: exactly-once reads only committed "
             "input (processing.guarantee = \"at_least_once\" if that is what you want)";
  } else if (strcmp(name, "enable.ssl.certificate.verification") == 0) {
    *insecure = rdkafka_bool(value) == 0;
    if (*insecure && !cfg->kafka.allow_insecure_tls)
      return "turns off the verification of the brokers' certificates: set "
             "kafka.allow_insecure_tls = true to allow it (test brokers only)";
  } else if (strcmp(name, "ssl.endpoint.identification.algorithm") == 0) {
    *insecure = strcasecmp(value, "none") == 0;
    if (*insecure && !cfg->kafka.allow_insecure_tls)
      return "turns off the check of the brokers' host names: set kafka.allow_insecure_tls "
             "= true to allow it (test brokers only)";
  }
  return NULL;
}

static int check_properties(struct load *ld)
{
  const struct dw_config *cfg = ld->cfg;
  char buf[SHOWN_MAX + 16];
  int insecure;
  for (size_t i = 0; i < cfg->kafka.properties_count; i++) {
    const struct dw_config_property *p = &cfg->kafka.properties[i];
    const char *why = property_refusal(cfg, p->name, p->value, &insecure);
    size_t idx = ld->property_option[i];
    if (!why)
      continue;
    ld->origin[idx] = ld->property_origin[i];
    return fail(ld, idx, "sets %s = %s, which %s", p->name, shown(p->value, buf, sizeof(buf)),
                why);
  }
  return 0;
}

size_t dw_config_insecure_tls(const struct dw_config *cfg, char *buf, size_t size)
{
  size_t count = 0, n = 0;
  int insecure;
  if (size)
    buf[0] = '\0';
  for (size_t i = 0; i < cfg->kafka.properties_count; i++) {
    const struct dw_config_property *p = &cfg->kafka.properties[i];
    property_refusal(cfg, p->name, p->value, &insecure);
    if (!insecure)
      continue;
    count++;
    if (n < size) {
      int w = snprintf(buf + n, size - n, "%s%s=%s", n ? ", " : "", p->name, p->value);
      n += w < 0 ? size : (size_t)w;
    }
  }
  return count;
}

/* ---- validation across keys ---- */

/* What a file that is not a regular file is, for messages. */
static const char *file_type(mode_t mode)
{
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISFIFO(mode))
    return "a FIFO (named pipe)";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  if (S_ISSOCK(mode))
    return "a socket";
  return "not a regular file";
}

/* Reads a small file whole into a NUL-terminated buffer (*out, *outlen bytes before the NUL;
 * the caller frees it, wiping those bytes first if they are a secret). Only regular files are
 * read: a FIFO or a device could block check-config and startup for ever (the open itself is
 * non-blocking). The size fstat reports is not trusted (files in /proc report 0): the file is
 * read to its end, and refused when that passes max bytes. */
static int read_small_file(struct load *ld, size_t idx, const char *path, size_t max,
                           char **out, size_t *outlen)
{
  char buf[SHOWN_MAX + 16];
  char *data = NULL;
  size_t len = 0, cap = 0;
  struct stat st;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  int rc = 0;
  *out = NULL;
  if (fd < 0)
    return fail(ld, idx, "cannot open %s: %s", shown(path, buf, sizeof(buf)), strerror(errno));
  if (fstat(fd, &st) != 0) {
    rc = fail(ld, idx, "cannot read %s: %s", shown(path, buf, sizeof(buf)), strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = fail(ld, idx, "%s is %s, not a regular file", shown(path, buf, sizeof(buf)),
              file_type(st.st_mode));
    goto out;
  }
  for (;;) {
    if (len == cap) {
      /* Grow by doubling up to max + 1: one byte more than allowed tells "too large". */
      size_t ncap = cap ? DW_MIN(cap * 2, max + 1) : DW_MIN((size_t)4096, max + 1);
      char *p;
      if (ncap == cap) {
        rc = fail(ld, idx, "%s is larger than %zu bytes", shown(path, buf, sizeof(buf)), max);
        goto out;
      }
      p = malloc(ncap + 1);
      if (!p) {
        rc = fail_nomem(ld);
        goto out;
      }
      if (data) {
        memcpy(p, data, len);
        explicit_bzero(data, len);
        free(data);
      }
      data = p;
      cap = ncap;
    }
    ssize_t r = read(fd, data + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = fail(ld, idx, "cannot read %s: %s", shown(path, buf, sizeof(buf)), strerror(errno));
      goto out;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  if (len > max) {
    rc = fail(ld, idx, "%s is larger than %zu bytes", shown(path, buf, sizeof(buf)), max);
    goto out;
  }
  data[len] = '\0';
  *out = data;
  *outlen = len;
  data = NULL;
out:
  if (data) {
    explicit_bzero(data, len);
    free(data);
  }
  close(fd);
  return rc;
}

static int read_secret_file(struct load *ld, size_t idx, const char *path, char **out)
{
  char buf[SHOWN_MAX + 16];
  char *data;
  size_t len;
  int rc = read_small_file(ld, idx, path, SECRET_FILE_MAX, &data, &len);
  *out = NULL;
  if (rc)
    return rc;
  if (memchr(data, '\0', len)) {
    rc = fail(ld, idx, "%s holds a NUL byte", shown(path, buf, sizeof(buf)));
    goto out;
  }
  while (len > 0 && isspace((unsigned char)data[len - 1]))
    len--;
  data[len] = '\0';
  if (len == 0) {
    rc = fail(ld, idx, "%s is empty", shown(path, buf, sizeof(buf)));
    goto out;
  }
  *out = strdup(data);
  if (!*out)
    rc = fail_nomem(ld);
out:
  explicit_bzero(data, len);
  free(data);
  return rc;
}

static int resolve_secret(struct load *ld)
{
  if (ld->kafka_only)
    return 0;
  size_t isecret = (size_t)option_index("feishu.app_secret");
  size_t ifile = (size_t)option_index("feishu.app_secret_file");
  struct dw_config *cfg = ld->cfg;
  char *secret;
  int rc;
  if (cfg->feishu.app_secret[0] && cfg->feishu.app_secret_file[0]) {
    /* Blame the one set last: the environment wins over the file. */
    size_t blame = ld->origin[isecret].kind == FROM_ENV ? isecret : ifile;
    return fail(ld, blame,
                "cannot be used together with %s: set only one of feishu.app_secret and "
                "feishu.app_secret_file",
                blame == isecret ? "feishu.app_secret_file" : "feishu.app_secret");
  }
  if (cfg->feishu.app_secret_file[0]) {
    rc = read_secret_file(ld, ifile, cfg->feishu.app_secret_file, &secret);
    if (rc)
      return rc;
    free(cfg->feishu.app_secret);
    cfg->feishu.app_secret = secret;
  }
  if (!cfg->feishu.app_secret[0])
    return fail(ld, isecret, "is empty: set it, feishu.app_secret_file, or "
                             "DELIVERY_WORKER_FEISHU_APP_SECRET");
  return 0;
}

/* A store app cannot get any token without an app_ticket; a self-built app never uses one. */
static int check_ticket_source(struct load *ld)
{
  const struct dw_config *cfg = ld->cfg;
  int store = strcmp(cfg->feishu.app_type, "store") == 0;
  int has_file = cfg->feishu.app_ticket_file[0] != '\0';
  int has_topic = cfg->feishu.app_ticket_topic[0] != '\0';
  if (store && !has_file && !has_topic)
    return fail(ld, (size_t)option_index("feishu.app_type"),
                "is \"store\" but no app_ticket source is set: set feishu.app_ticket_file "
                "or feishu.app_ticket_topic (where the pushed app_ticket events arrive)");
  if (!store && (has_file || has_topic))
    return fail(ld, (size_t)option_index(has_file ? "feishu.app_ticket_file"
                                                  : "feishu.app_ticket_topic"),
                "is only used by store apps: set feishu.app_type = \"store\" or remove it");
  /* It may not exist yet (whatever receives the events writes it), but if it does it must be
   * a regular file: the worker reads it on its loop, where a FIFO would block. */
  struct stat st;
  if (has_file && stat(cfg->feishu.app_ticket_file, &st) == 0 && !S_ISREG(st.st_mode)) {
    char buf[SHOWN_MAX + 16];
    return fail(ld, (size_t)option_index("feishu.app_ticket_file"),
                "%s is %s, not a regular file",
                shown(cfg->feishu.app_ticket_file, buf, sizeof(buf)), file_type(st.st_mode));
  }
  if (has_topic && strcmp(cfg->feishu.app_ticket_topic, cfg->kafka.input_topic) == 0)
    return fail(ld, (size_t)option_index("feishu.app_ticket_topic"),
                "must differ from kafka.input_topic (both \"%s\")", cfg->kafka.input_topic);
  return 0;
}

/* feishu.ca_file must be a readable file holding at least one PEM certificate: libcurl would
 * only find out at the first call, and then every call would fail. */
static int check_ca_file(struct load *ld)
{
  const char *path = ld->cfg->feishu.ca_file;
  size_t idx = (size_t)option_index("feishu.ca_file");
  char buf[SHOWN_MAX + 16];
  char *data;
  size_t len;
  if (ld->kafka_only || !path[0])
    return 0;
  int rc = read_small_file(ld, idx, path, CA_FILE_MAX, &data, &len);
  if (rc)
    return rc;
  if (len != strlen(data) || !strstr(data, "-----BEGIN CERTIFICATE-----"))
    rc = fail(ld, idx, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
              shown(path, buf, sizeof(buf)));
  free(data);
  return rc;
}

/* lo must not exceed hi; blame whichever the user set (hi first). */
static int check_order(struct load *ld, const char *lo_path, const char *hi_path)
{
  size_t lo = (size_t)option_index(lo_path);
  size_t hi = (size_t)option_index(hi_path);
  int64_t vlo = *int_field(ld->cfg, &options[lo]);
  int64_t vhi = *int_field(ld->cfg, &options[hi]);
  if (vlo <= vhi)
    return 0;
  if (ld->origin[hi].kind != FROM_DEFAULT || ld->origin[lo].kind == FROM_DEFAULT)
    return fail(ld, hi, "must be at least %s (%" PRId64 "), got %" PRId64, lo_path, vlo, vhi);
  return fail(ld, lo, "must be at most %s (%" PRId64 "), got %" PRId64, hi_path, vhi, vlo);
}

static int validate(struct load *ld)
{
  struct dw_config *cfg = ld->cfg;
  size_t iresume = (size_t)option_index("worker.resume_in_flight");
  const char *topics[] = {"kafka.input_topic", "kafka.results_topic", "kafka.dlq_topic"};
  char name[PATH_MAX_LEN];
  int rc;

  for (size_t i = 0; i < NOPT; i++) {
    if (options[i].kind != KIND_STRING)
      continue;
    if (!*string_field(cfg, &options[i]))
      return fail_nomem(ld);
    if ((options[i].flags & F_REQUIRED) && string_value(cfg, &options[i])[0] == '\0') {
      env_name(options[i].path, name, sizeof(name));
      return fail(ld, i, "must not be empty (set it in the file or with %s)", name);
    }
  }
  rc = resolve_secret(ld);
  if (rc)
    return rc;
  rc = check_ticket_source(ld);
  if (rc)
    return rc;
  rc = check_ca_file(ld);
  if (rc)
    return rc;
  rc = check_properties(ld);
  if (rc)
    return rc;
  /* Exactly-once commits outputs out of order; only the map says which records beyond the
   * committed offset are done, so without one a restart would write them again. */
  if (strcmp(ld->cfg->processing.guarantee, "exactly_once") == 0 &&
      ld->cfg->kafka.commit_metadata_max_bytes == 0)
    return fail(ld, (size_t)option_index("kafka.commit_metadata_max_bytes"),
                "must not be 0 with processing.guarantee = \"exactly_once\" (the map of "
                "finished tasks is what keeps a restart from writing their outputs again)");

  if (ld->origin[iresume].kind == FROM_DEFAULT) {
    cfg->worker.resume_in_flight = cfg->worker.max_in_flight * 4 / 5;
    if (cfg->worker.resume_in_flight < 1)
      cfg->worker.resume_in_flight = 1;
  }
  if ((rc = check_order(ld, "worker.resume_in_flight", "worker.max_in_flight")) ||
      (rc = check_order(ld, "poll.interval_ms", "poll.max_interval_ms")) ||
      (rc = check_order(ld, "poll.retry_initial_ms", "poll.retry_max_ms")) ||
      (rc = check_order(ld, "feishu.connect_timeout_ms", "feishu.request_timeout_ms")))
    return rc;

  /* A result or dead letter on the input topic would be consumed again. */
  for (size_t i = 1; i < DW_ARRAY_SIZE(topics); i++) {
    for (size_t j = 0; j < i; j++) {
      const struct option *a = &options[option_index(topics[i])];
      const struct option *b = &options[option_index(topics[j])];
      if (strcmp(string_value(cfg, a), string_value(cfg, b)) == 0)
        return fail(ld, (size_t)option_index(topics[i]), "must differ from %s (both \"%s\")",
                    topics[j], string_value(cfg, a));
    }
  }
  return 0;
}

/* ---- public ---- */

void dw_config_init(struct dw_config *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  for (size_t i = 0; i < NOPT; i++) {
    const struct option *o = &options[i];
    switch (o->kind) {
    case KIND_STRING:
      /* NULL on allocation failure; dw_config_load reports it. */
      *string_field(cfg, o) = strdup(o->def_str);
      break;
    case KIND_INT:
      *int_field(cfg, o) = o->def_int;
      break;
    case KIND_FLOAT:
      *float_field(cfg, o) = o->def_float;
      break;
    case KIND_BOOL:
      *bool_field(cfg, o) = (int)o->def_int;
      break;
    case KIND_PROPERTIES:
      break;
    }
  }
}

void dw_config_cleanup(struct dw_config *cfg)
{
  if (!cfg)
    return;
  for (size_t i = 0; i < NOPT; i++) {
    if (options[i].kind != KIND_STRING)
      continue;
    char **field = string_field(cfg, &options[i]);
    if (*field && (options[i].flags & F_SECRET))
      explicit_bzero(*field, strlen(*field));
    free(*field);
    *field = NULL;
  }
  for (size_t i = 0; i < cfg->kafka.properties_count; i++) {
    struct dw_config_property *p = &cfg->kafka.properties[i];
    if (p->value && dw_config_property_is_secret(p->name))
      explicit_bzero(p->value, strlen(p->value));
    free(p->name);
    free(p->value);
    free(p->where);
    p->name = p->value = p->where = NULL;
  }
  cfg->kafka.properties_count = 0;
}

int dw_config_load_args(struct dw_config *cfg, const char *file, char *const *envp,
                        const struct dw_config_args *args, int kafka_only, char *err,
                        size_t errlen)
{
  struct load ld;
  config_t lc;
  int rc = 0;

  memset(&ld, 0, sizeof(ld));
  ld.kafka_only = kafka_only;
  ld.cfg = cfg;
  ld.file = file;
  ld.err = err;
  ld.errlen = errlen;
  if (err && errlen)
    err[0] = '\0';
  config_init(&lc);
  if (file) {
    rc = load_file(&ld, &lc);
    if (rc)
      goto out;
  }
  rc = load_env(&ld, envp);
  if (rc)
    goto out;
  for (size_t i = 0; args && i < args->set_count; i++) {
    rc = load_set(&ld, args->set[i]);
    if (rc)
      goto out;
  }
  rc = load_properties_file(&ld);
  if (rc)
    goto out;
  for (size_t i = 0; args && i < args->props_count; i++) {
    rc = load_x(&ld, args->props[i]);
    if (rc)
      goto out;
  }
  rc = validate(&ld);
out:
  for (size_t i = 0; i < ld.nwide; i++)
    free(ld.wide[i].file);
  config_destroy(&lc);
  return rc;
}

int dw_config_load(struct dw_config *cfg, const char *file, char *const *envp, char *err,
                   size_t errlen)
{
  return dw_config_load_args(cfg, file, envp, NULL, 0, err, errlen);
}

int dw_config_load_kafka(struct dw_config *cfg, const char *file, char *const *envp, char *err,
                         size_t errlen)
{
  return dw_config_load_args(cfg, file, envp, NULL, 1, err, errlen);
}

int dw_config_property_is_secret(const char *name)
{
  return strstr(name, "password") || strstr(name, "secret") ||
         strcmp(name, "sasl.oauthbearer.config") == 0 || strcmp(name, "ssl.key.pem") == 0;
}

/* ---- output ---- */

/* A libconfig string literal. */
static void print_string(FILE *out, const char *s)
{
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\r': fputs("\\r", out); break;
    case '\t': fputs("\\t", out); break;
    case '\f': fputs("\\f", out); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(out, "\\x%02x", *p);
      else
        fputc(*p, out);
    }
  }
  fputc('"', out);
}

static void print_int(FILE *out, int64_t v)
{
  if (v > INT32_MAX || v < INT32_MIN)
    fprintf(out, "%" PRId64 "L", v);
  else
    fprintf(out, "%" PRId64, v);
}

/* Shortest form that reads back as a float ("1.0", not "1"). */
static void format_float(double v, char *buf, size_t size)
{
  snprintf(buf, size, "%.15g", v);
  if (!strpbrk(buf, ".eEn"))
    dw_strlcpy(buf + strlen(buf), ".0", size - strlen(buf));
}

void dw_config_print(const struct dw_config *cfg, FILE *out)
{
  size_t grouplen = 0;
  const char *group = NULL;
  char num[64];
  for (size_t i = 0; i < NOPT; i++) {
    const struct option *o = &options[i];
    const char *dot = strchr(o->path, '.');
    size_t glen = dot ? (size_t)(dot - o->path) : 0;
    if (!group || glen != grouplen || strncmp(group, o->path, glen) != 0) {
      if (group)
        fputs("};\n", out);
      group = o->path;
      grouplen = glen;
      fprintf(out, "%.*s = {\n", (int)glen, o->path);
    }
    fprintf(out, "  %s = ", dot ? dot + 1 : o->path);
    switch (o->kind) {
    case KIND_STRING: {
      const char *v = string_value(cfg, o);
      if ((o->flags & F_SECRET) && o->offset == OFF(feishu.app_secret) &&
          cfg->feishu.app_secret_file && cfg->feishu.app_secret_file[0]) {
        fputs("\"\"; # read from app_secret_file\n", out);
        continue;
      }
      if ((o->flags & F_SECRET) && v[0])
        fputs("\"<redacted>\"", out);
      else
        print_string(out, v);
      break;
    }
    case KIND_INT:
      print_int(out, *(const int64_t *)((const char *)cfg + o->offset));
      break;
    case KIND_FLOAT:
      format_float(*(const double *)((const char *)cfg + o->offset), num, sizeof(num));
      fputs(num, out);
      break;
    case KIND_BOOL:
      fputs(*(const int *)((const char *)cfg + o->offset) ? "true" : "false", out);
      break;
    case KIND_PROPERTIES: {
      size_t left = 0;
      for (size_t j = 0; j < cfg->kafka.properties_count; j++)
        left += cfg->kafka.properties[j].scope == (enum dw_config_scope)o->def_int;
      if (left == 0) {
        fputs("( )", out);
        break;
      }
      fputs("(\n", out);
      for (size_t j = 0; j < cfg->kafka.properties_count; j++) {
        const struct dw_config_property *p = &cfg->kafka.properties[j];
        if (p->scope != (enum dw_config_scope)o->def_int)
          continue;
        fputs("    (", out);
        print_string(out, p->name);
        fputs(", ", out);
        if (dw_config_property_is_secret(p->name) && p->value[0])
          fputs("\"<redacted>\"", out);
        else
          print_string(out, p->value);
        fputs(--left > 0 ? "),\n" : ")\n", out);
      }
      fputs("  )", out);
      break;
    }
    }
    fputs(";\n", out);
  }
  if (group)
    fputs("};\n", out);
}

static void print_cell(FILE *out, const char *s)
{
  for (; *s; s++) {
    if (*s == '|')
      fputs("\\|", out);
    else if (*s == '\n')
      fputc(' ', out);
    else
      fputc(*s, out);
  }
}

void dw_config_print_reference(FILE *out)
{
  char env[PATH_MAX_LEN];
  char num[64];
  fputs("| key | type | default | env | description |\n", out);
  fputs("|---|---|---|---|---|\n", out);
  for (size_t i = 0; i < NOPT; i++) {
    const struct option *o = &options[i];
    env_name(o->path, env, sizeof(env));
    fprintf(out, "| `%s` | ", o->path);
    switch (o->kind) {
    case KIND_STRING:
      fputs("string | `\"", out);
      print_cell(out, o->def_str);
      fputs("\"` | ", out);
      break;
    case KIND_INT:
      fprintf(out, "integer | `%" PRId64 "` | ", o->def_int);
      break;
    case KIND_FLOAT:
      format_float(o->def_float, num, sizeof(num));
      fprintf(out, "number | `%s` | ", num);
      break;
    case KIND_BOOL:
      fprintf(out, "boolean | `%s` | ", o->def_int ? "true" : "false");
      break;
    case KIND_PROPERTIES:
      fputs("list of pairs | `( )` | ", out);
      break;
    }
    fprintf(out, "`%s` | ", env);
    print_cell(out, o->desc);
    if (o->choices) {
      fputs(" One of", out);
      for (size_t j = 0; o->choices[j]; j++)
        fprintf(out, "%s `%s`", j ? "," : "", o->choices[j]);
      fputs(".", out);
    }
    if (o->kind == KIND_INT)
      fprintf(out, " Between %" PRId64 " and %" PRId64 ".", o->min_int, o->max_int);
    if (o->kind == KIND_FLOAT)
      fprintf(out, " Between %g and %g.", o->min_float, o->max_float);
    if (o->flags & F_SECRET)
      fputs(" Secret: never printed or logged.", out);
    fputs(" |\n", out);
  }
}
