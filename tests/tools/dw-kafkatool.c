/*
 * dw-kafkatool: Kafka helper for the delivery-worker tests (librdkafka 2.0.2, cJSON).
 *
 *   dw-kafkatool mock [--brokers 3] [--topic NAME:PARTITIONS[:RF] ...] [--bootstrap-file FILE]
 *                     [--exit-on-eof]
 *   dw-kafkatool create-topic -b B TOPIC PARTITIONS [--replication 1] [--config K=V ...]
 *   dw-kafkatool produce      -b B TOPIC [--file F]
 *   dw-kafkatool dump         -b B TOPIC [--from-beginning|--from-end] [--timeout-ms 5000]
 *                             [--isolation read_committed|read_uncommitted] [--expect N]
 *   dw-kafkatool committed    -b B GROUP TOPIC
 *   dw-kafkatool group        -b B GROUP
 *   dw-kafkatool create-acl   -b B topic|group|cluster NAME PRINCIPAL OPERATION[,OPERATION...]
 *
 * Common options: -b/--bootstrap BROKERS (default: $KAFKA_BOOTSTRAP), -X key=value (any
 * librdkafka property, applied last), --timeout-ms MS (request timeout; dump: see below).
 * Exit codes: 0 success, 1 failure (librdkafka error text on stderr), 2 usage error.
 * Run "dw-kafkatool help" for the details of every subcommand.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PROG "dw-kafkatool"
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_LIST 128
#define DEFAULT_TIMEOUT_MS 10000
#define DUMP_DEFAULT_TIMEOUT_MS 5000
#define SHUTDOWN_GRACE_S 10 /* a consumer's close after its answer: see close_consumer */
#define TEXT_OF(x) TEXT_OF_(x)
#define TEXT_OF_(x) #x

static const char usage_text[] =
    "usage: " PROG " COMMAND [options]\n"
    "\n"
    "  mock [--brokers N] [--topic NAME:PARTITIONS[:RF]]... [--bootstrap-file FILE] [--exit-on-eof]\n"
    "      Start a librdkafka mock cluster (default 3 brokers), create the topics (RF defaults\n"
    "      to min(N,3)), print BOOTSTRAP=<list> and run until SIGTERM/SIGINT (or stdin EOF\n"
    "      with --exit-on-eof). FILE gets the list atomically and is removed on exit.\n"
    "      Control commands on stdin, one per line; each is answered 'ok' or 'error: ...':\n"
    "        down ID | up ID                 broker down/up (ID -1 = all brokers)\n"
    "        rtt ID MS                       broker round-trip time\n"
    "        produce-errors N ERR            next N Produce requests fail with ERR\n"
    "        request-errors API N ERR        same for any API (name or key number)\n"
    "        request-rtts API N MS           each broker answers its next N API requests\n"
    "                                        after MS, without error (a slow coordinator)\n"
    "        clear-errors API                drop queued errors for API\n"
    "        leader TOPIC PARTITION ID       move a partition leader\n"
    "        topic NAME PARTITIONS [RF]      create a topic\n"
    "        topic-error NAME ERR            make the topic return ERR in metadata\n"
    "        ping | help\n"
    "      ERR is a librdkafka error name (NOT_LEADER_FOR_PARTITION, _TRANSPORT,\n"
    "      REQUEST_TIMED_OUT, ...; the RD_KAFKA_RESP_ERR_ prefix is optional) or a number.\n"
    "\n"
    "  create-acl -b B topic|group|cluster NAME PRINCIPAL OPERATION[,OPERATION...]\n"
    "      Add ALLOW bindings (literal name, any host), e.g. create-acl topic in User:alice\n"
    "      READ,DESCRIBE. OPERATION: READ, WRITE, DESCRIBE, DESCRIBE_CONFIGS, ALL. The\n"
    "      cluster's NAME is kafka-cluster.\n"
    "\n"
    "  create-topic -b B TOPIC PARTITIONS [--replication 1] [--config K=V]...\n"
    "      Create with the Admin API, then wait until the topic has leaders for all\n"
    "      partitions. Prints 'created TOPIC' or 'exists TOPIC'; exit 0 in both cases.\n"
    "\n"
    "  produce -b B TOPIC [--file F]\n"
    "      Read JSON lines from F (default stdin), one message each:\n"
    "        {\"key\":\"..\"|null, \"key_b64\":\"..\", \"value\":\"..\"|<any JSON>|null,\n"
    "         \"value_b64\":\"..\", \"partition\":N, \"headers\":{\"name\":\"value\"|null,..},\n"
    "         \"timestamp\":MS}\n"
    "      all fields optional; a non-string \"value\" is sent as compact JSON; null/absent\n"
    "      value is a tombstone. Idempotent producer; waits for every delivery report.\n"
    "      Prints 'produced N' (N delivered); exit 1 if any message or line failed.\n"
    "\n"
    "  dump -b B TOPIC [--from-beginning|--from-end] [--timeout-ms 5000] [--expect N]\n"
    "       [--isolation read_committed|read_uncommitted]\n"
    "      Assign all partitions (no group join, no commit) and print one JSON object per\n"
    "      message: {\"topic\",\"partition\",\"offset\",\"key\",\"value\",\"headers\",\"timestamp\"}\n"
    "      (key/value null when absent; \"key_b64\"/\"value_b64\" instead when not valid UTF-8).\n"
    "      Without --expect: read until every partition reaches its end as of start;\n"
    "      --timeout-ms is then an idle timeout. With --expect N: stop after N messages or\n"
    "      when --timeout-ms has passed in total (warning on stderr). Exit 0.\n"
    "\n"
    "  committed -b B GROUP TOPIC\n"
    "      One line per partition: {\"partition\":N,\"offset\":O,\"high\":H,\"metadata\":\"..\"}\n"
    "      (offset -1001 when nothing is committed). Does not join the group. The offsets are\n"
    "      those of the last finished commit; it does not wait for open transactions.\n"
    "\n"
    "  group -b B GROUP\n"
    "      {\"group\":..,\"state\":..,\"members\":N,\"protocol_type\":..,\"protocol\":..}\n"
    "      (state \"Dead\", members 0 when the broker does not know the group).\n"
    "\n"
    "Common: -b/--bootstrap BROKERS (default $KAFKA_BOOTSTRAP), -X key=value (librdkafka\n"
    "property, applied last, repeatable), --timeout-ms MS (request timeout, default 10000).\n"
    "dump and committed give the client " TEXT_OF(SHUTDOWN_GRACE_S) " s to shut down after printing"
    " their answer, then\n"
    "exit anyway (a warning on stderr).\n"
    "Exit codes: 0 ok, 1 failure, 2 usage.\n";

/* ------------------------------------------------------------------ utilities */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* A consumer is shut down only once its answer is printed and flushed. In librdkafka 2.0.2
 * its close can wait for ever (seen once in a loaded sanitized run: a dump against the mock
 * cluster had printed everything and then stayed in close for six minutes), so the shutdown
 * gets SHUTDOWN_GRACE_S and then the tool exits with the answer it already has. */
static volatile sig_atomic_t g_exit_rc;

static void on_shutdown_timeout(int sig)
{
    static const char msg[] = PROG ": warning: the Kafka client did not shut down within "
                              TEXT_OF(SHUTDOWN_GRACE_S) " s; exiting with the answer already"
                              " printed\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to say */
    }
    _exit(g_exit_rc);
}

static void close_consumer(rd_kafka_t *rk, int rc)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_shutdown_timeout;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    fflush(stdout);
    g_exit_rc = rc;
    alarm(SHUTDOWN_GRACE_S);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    alarm(0);
}

__attribute__((format(printf, 1, 2))) static void errmsg(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;
    if (!s || !*s)
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        errmsg("out of memory");
        exit(EXIT_FAIL);
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Strict UTF-8 check (no overlongs, surrogates or code points above U+10FFFF).
 * NUL bytes are rejected too, because cJSON strings are NUL-terminated. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *p = out;
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        *p++ = b64_alphabet[(v >> 18) & 63];
        *p++ = b64_alphabet[(v >> 12) & 63];
        *p++ = b64_alphabet[(v >> 6) & 63];
        *p++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        *p++ = b64_alphabet[(v >> 18) & 63];
        *p++ = b64_alphabet[(v >> 12) & 63];
        *p++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    *p = '\0';
    return out;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes standard or URL-safe base64, padding optional. Returns NULL if malformed. */
static unsigned char *b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *out = xmalloc(n / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v;
        if (in[i] == '=')
            break;
        if (in[i] == '\n' || in[i] == '\r' || in[i] == ' ')
            continue;
        v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    *outlen = o;
    return out;
}

/* Adds bytes as NAME (string, null when data is NULL) or, when they are not valid UTF-8,
 * as NAME set to null plus B64NAME (base64). */
static void json_add_bytes(cJSON *obj, const char *name, const char *b64name, const void *data,
                           size_t len)
{
    if (!data) {
        cJSON_AddNullToObject(obj, name);
    } else if (utf8_valid(data, len)) {
        char *s = xstrndup(data, len);
        cJSON_AddStringToObject(obj, name, s);
        free(s);
    } else {
        char *s = b64_encode(data, len);
        if (b64name) {
            cJSON_AddNullToObject(obj, name);
            cJSON_AddStringToObject(obj, b64name, s);
        } else {
            cJSON_AddStringToObject(obj, name, s);
        }
        free(s);
    }
}

static void print_json_line(cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (!s) {
        errmsg("out of memory");
        exit(EXIT_FAIL);
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
}

/* Error name (NOT_LEADER_FOR_PARTITION, _TRANSPORT, RD_KAFKA_RESP_ERR__TRANSPORT, 6) -> code */
static bool parse_err_name(const char *name, rd_kafka_resp_err_t *out)
{
    static const struct {
        const char *alias, *name;
    } aliases[] = {
        {"NOT_LEADER_OR_FOLLOWER", "NOT_LEADER_FOR_PARTITION"},
        {"TRANSPORT", "_TRANSPORT"},
        {"TIMED_OUT", "_TIMED_OUT"},
    };
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    long num;
    if (parse_long(name, INT_MIN, INT_MAX, &num)) {
        *out = (rd_kafka_resp_err_t)num;
        return true;
    }
    if (strncasecmp(name, "RD_KAFKA_RESP_ERR_", 18) == 0)
        name += 18;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            name = aliases[i].name;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && strcasecmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return true;
        }
    }
    return false;
}

/* Kafka protocol API name or number -> API key */
static bool parse_api_key(const char *name, int16_t *out)
{
    static const struct {
        const char *name;
        int16_t key;
    } apis[] = {
        {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
        {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
        {"FindCoordinator", 10}, {"JoinGroup", 11},      {"Heartbeat", 12},
        {"LeaveGroup", 13},      {"SyncGroup", 14},      {"ApiVersion", 18},
        {"ApiVersions", 18},     {"InitProducerId", 22}, {"AddPartitionsToTxn", 24},
        {"AddOffsetsToTxn", 25}, {"EndTxn", 26},         {"TxnOffsetCommit", 28},
    };
    long num;
    if (parse_long(name, 0, 32767, &num)) {
        *out = (int16_t)num;
        return true;
    }
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        if (strcasecmp(apis[i].name, name) == 0) {
            *out = apis[i].key;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ options */

enum {
    C_MOCK = 1 << 0,
    C_CREATE = 1 << 1,
    C_PRODUCE = 1 << 2,
    C_DUMP = 1 << 3,
    C_COMMITTED = 1 << 4,
    C_GROUP = 1 << 5,
    C_ACL = 1 << 6,
    C_ALL = 0x7f,
    C_CLIENTS = C_ALL & ~C_MOCK,
};

struct opts {
    int cmd;
    const char *bootstrap;
    const char *pos[8];
    int npos;
    const char *xconf[MAX_LIST];
    int nx;
    long timeout_ms; /* -1: command default */
    /* mock */
    long broker_cnt;
    const char *topics[MAX_LIST];
    int ntopics;
    const char *bootstrap_file;
    bool exit_on_eof;
    /* produce */
    const char *file;
    /* dump */
    const char *isolation;
    long expect; /* -1: not given */
    bool from_end;
    /* create-topic */
    long replication;
    const char *tconf[MAX_LIST];
    int ntconf;
};

enum opt_id {
    O_BOOTSTRAP,
    O_X,
    O_TIMEOUT,
    O_BROKERS,
    O_TOPIC,
    O_BSFILE,
    O_EXIT_EOF,
    O_FILE,
    O_FROM_BEGINNING,
    O_FROM_END,
    O_ISOLATION,
    O_EXPECT,
    O_REPLICATION,
    O_CONFIG,
};

static const struct optdef {
    const char *name;
    enum opt_id id;
    bool has_arg;
    int cmds;
} optdefs[] = {
    {"-b", O_BOOTSTRAP, true, C_CLIENTS},
    {"--bootstrap", O_BOOTSTRAP, true, C_CLIENTS},
    {"-X", O_X, true, C_ALL},
    {"--timeout-ms", O_TIMEOUT, true, C_CLIENTS},
    {"--brokers", O_BROKERS, true, C_MOCK},
    {"--topic", O_TOPIC, true, C_MOCK},
    {"--bootstrap-file", O_BSFILE, true, C_MOCK},
    {"--exit-on-eof", O_EXIT_EOF, false, C_MOCK},
    {"--file", O_FILE, true, C_PRODUCE},
    {"-f", O_FILE, true, C_PRODUCE},
    {"--from-beginning", O_FROM_BEGINNING, false, C_DUMP},
    {"--from-end", O_FROM_END, false, C_DUMP},
    {"--isolation", O_ISOLATION, true, C_DUMP},
    {"--expect", O_EXPECT, true, C_DUMP},
    {"--replication", O_REPLICATION, true, C_CREATE},
    {"--config", O_CONFIG, true, C_CREATE},
};

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run '" PROG " help' for usage)\n");
    exit(EXIT_USAGE);
}

static void push_list(const char **list, int *n, const char *v, const char *what)
{
    if (*n >= MAX_LIST)
        usage_error("too many %s options", what);
    list[(*n)++] = v;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const struct optdef *d = NULL;
        char namebuf[64];
        long n;

        if (a[0] != '-' || a[1] == '\0' || strcmp(a, "--") == 0 ||
            (a[1] >= '0' && a[1] <= '9')) {
            if (strcmp(a, "--") == 0) {
                for (i++; i < argc; i++) {
                    if (o->npos >= 8)
                        usage_error("too many arguments");
                    o->pos[o->npos++] = argv[i];
                }
                break;
            }
            if (o->npos >= 8)
                usage_error("too many arguments");
            o->pos[o->npos++] = a;
            continue;
        }
        /* --name=value and -Xkey=value / -bHOST forms */
        const char *eq = strchr(a, '=');
        if (a[1] == '-' && eq && (size_t)(eq - a) < sizeof namebuf) {
            memcpy(namebuf, a, (size_t)(eq - a));
            namebuf[eq - a] = '\0';
            val = eq + 1;
        } else if (a[1] != '-' && a[2] != '\0') {
            namebuf[0] = a[0];
            namebuf[1] = a[1];
            namebuf[2] = '\0';
            val = a + 2;
        } else {
            snprintf(namebuf, sizeof namebuf, "%s", a);
        }
        for (size_t k = 0; k < sizeof optdefs / sizeof optdefs[0]; k++)
            if (strcmp(optdefs[k].name, namebuf) == 0)
                d = &optdefs[k];
        if (!d)
            usage_error("unknown option %s", a);
        if (!(d->cmds & o->cmd))
            usage_error("option %s does not apply to this command", namebuf);
        if (d->has_arg && !val) {
            if (i + 1 >= argc)
                usage_error("option %s needs a value", namebuf);
            val = argv[++i];
        } else if (!d->has_arg && val) {
            usage_error("option %s takes no value", namebuf);
        }
        switch (d->id) {
        case O_BOOTSTRAP:
            o->bootstrap = val;
            break;
        case O_X:
            if (!strchr(val, '='))
                usage_error("-X needs key=value, got '%s'", val);
            push_list(o->xconf, &o->nx, val, "-X");
            break;
        case O_TIMEOUT:
            if (!parse_long(val, 0, INT_MAX, &o->timeout_ms))
                usage_error("bad --timeout-ms '%s'", val);
            break;
        case O_BROKERS:
            if (!parse_long(val, 1, 64, &o->broker_cnt))
                usage_error("bad --brokers '%s' (1..64)", val);
            break;
        case O_TOPIC:
            push_list(o->topics, &o->ntopics, val, "--topic");
            break;
        case O_BSFILE:
            o->bootstrap_file = val;
            break;
        case O_EXIT_EOF:
            o->exit_on_eof = true;
            break;
        case O_FILE:
            o->file = val;
            break;
        case O_FROM_BEGINNING:
            o->from_end = false;
            break;
        case O_FROM_END:
            o->from_end = true;
            break;
        case O_ISOLATION:
            if (strcmp(val, "read_committed") && strcmp(val, "read_uncommitted"))
                usage_error("--isolation must be read_committed or read_uncommitted");
            o->isolation = val;
            break;
        case O_EXPECT:
            if (!parse_long(val, 0, LONG_MAX, &n))
                usage_error("bad --expect '%s'", val);
            o->expect = n;
            break;
        case O_REPLICATION:
            if (!parse_long(val, 1, 32767, &o->replication))
                usage_error("bad --replication '%s'", val);
            break;
        case O_CONFIG:
            if (!strchr(val, '='))
                usage_error("--config needs key=value, got '%s'", val);
            push_list(o->tconf, &o->ntconf, val, "--config");
            break;
        }
    }
}

/* ------------------------------------------------------------------ client setup */

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    errmsg("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's default logger, minus AUTOCREATE (against the mock cluster, Metadata v2, every
 * consumer warns that allow.auto.create.topics=false cannot be honoured) and FAIL (connection
 * failures, which error_cb reports too). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "AUTOCREATE") == 0 || strcmp(fac, "FAIL") == 0)
        return;
    fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac, rk ? rd_kafka_name(rk) : "", buf);
}

static void conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        errmsg("config %s=%s: %s", key, val, errstr);
        exit(EXIT_USAGE);
    }
}

static void conf_apply_x(rd_kafka_conf_t *conf, const struct opts *o)
{
    for (int i = 0; i < o->nx; i++) {
        const char *eq = strchr(o->xconf[i], '=');
        char *key = xstrndup(o->xconf[i], (size_t)(eq - o->xconf[i]));
        conf_set(conf, key, eq + 1);
        free(key);
    }
}

static rd_kafka_conf_t *client_conf(const struct opts *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "bootstrap.servers", o->bootstrap);
    conf_set(conf, "client.id", PROG);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

/* Applies -X and creates the handle; exits on failure. */
static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const struct opts *o)
{
    char errstr[512];
    rd_kafka_t *rk;
    conf_apply_x(conf, o);
    rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        errmsg("rd_kafka_new: %s", errstr);
        exit(EXIT_FAIL);
    }
    return rk;
}

static int timeout_or(const struct opts *o, int dflt)
{
    return o->timeout_ms >= 0 ? (int)o->timeout_ms : dflt;
}

/* Waits until TOPIC exists with a leader for every partition.
 * Returns the partition count, 0 if the topic does not exist (when !wait_for_existence)
 * or -1 on error/timeout (message printed). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, bool wait_for_existence)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = now_ms() + timeout_ms;
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
    int result = -1;

    if (!rkt) {
        errmsg("topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - now_ms();
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(rk, 0, rkt, &md, (int)(left < 1000 ? 1000 : left > 5000 ? 5000 : left));
        if (!err) {
            const struct rd_kafka_metadata_topic *t = NULL;
            for (int i = 0; i < md->topic_cnt; i++)
                if (strcmp(md->topics[i].topic, topic) == 0)
                    t = &md->topics[i];
            if (t && !t->err && t->partition_cnt > 0) {
                bool leaders = true;
                for (int i = 0; i < t->partition_cnt; i++)
                    if (t->partitions[i].leader < 0)
                        leaders = false;
                if (leaders) {
                    result = t->partition_cnt;
                    rd_kafka_metadata_destroy(md);
                    break;
                }
                last = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
            } else {
                last = t ? (t->err ? t->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                         : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
                if (last == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && !wait_for_existence) {
                    rd_kafka_metadata_destroy(md);
                    result = 0;
                    break;
                }
            }
            rd_kafka_metadata_destroy(md);
        } else {
            last = err;
        }
        if (g_stop || now_ms() >= deadline) {
            errmsg("topic %s: metadata not available within %d ms: %s", topic, timeout_ms,
                   rd_kafka_err2str(last));
            break;
        }
        /* The retry interval of a wait that ends on the condition or the deadline above. */
        usleep(200 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    return result;
}

/* ------------------------------------------------------------------ mock */

static bool write_file_atomic(const char *path, const char *content)
{
    size_t n = strlen(path) + 32;
    char *tmp = xmalloc(n);
    FILE *f;
    bool ok;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f = fopen(tmp, "w");
    if (!f) {
        errmsg("%s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    ok = fprintf(f, "%s\n", content) >= 0;
    ok = (fflush(f) == 0) && ok;
    ok = (fsync(fileno(f)) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        errmsg("%s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return false;
    }
    free(tmp);
    return true;
}

static bool mock_create_topic(rd_kafka_mock_cluster_t *mc, const char *name, long parts, long rf,
                              char *err, size_t errsz)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, (int)parts, (int)rf);
    if (e) {
        snprintf(err, errsz, "topic %s: %s", name, rd_kafka_err2str(e));
        return false;
    }
    return true;
}

/* Parses NAME:PARTITIONS[:RF] */
static bool parse_topic_spec(const char *spec, char **name, long *parts, long *rf, long dflt_rf)
{
    const char *c1 = strchr(spec, ':');
    const char *c2;
    char *tmp;
    bool ok;
    if (!c1 || c1 == spec)
        return false;
    c2 = strchr(c1 + 1, ':');
    *rf = dflt_rf;
    if (c2) {
        tmp = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
        ok = parse_long(tmp, 1, 100000, parts) && parse_long(c2 + 1, 1, 64, rf);
        free(tmp);
    } else {
        ok = parse_long(c1 + 1, 1, 100000, parts);
    }
    if (ok)
        *name = xstrndup(spec, (size_t)(c1 - spec));
    return ok;
}

static void mock_reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static void mock_command(rd_kafka_mock_cluster_t *mc, char *line, long broker_cnt)
{
    char *save = NULL, *argv[8];
    int argc = 0;
    char *tok;
    long id, n, ms;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR, kerr;
    int16_t api;

    for (tok = strtok_r(line, " \t\r", &save); tok && argc < 8; tok = strtok_r(NULL, " \t\r", &save))
        argv[argc++] = tok;
    if (argc == 0 || argv[0][0] == '#')
        return;

#define NEED(cnt, syntax)                                                                          \
    do {                                                                                           \
        if (argc != (cnt)) {                                                                       \
            mock_reply("error: usage: %s", syntax);                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define BROKER_ARG(s)                                                                              \
    do {                                                                                           \
        if (!parse_long((s), -1, broker_cnt, &id) || id == 0) {                                    \
            mock_reply("error: bad broker id '%s' (1..%ld or -1 for all)", (s), broker_cnt);       \
            return;                                                                                \
        }                                                                                          \
    } while (0)

    if (strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) {
        NEED(2, "down|up BROKER_ID");
        BROKER_ARG(argv[1]);
        e = argv[0][0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)id)
                              : rd_kafka_mock_broker_set_up(mc, (int32_t)id);
    } else if (strcmp(argv[0], "rtt") == 0) {
        NEED(3, "rtt BROKER_ID MS");
        BROKER_ARG(argv[1]);
        if (!parse_long(argv[2], 0, INT_MAX, &ms)) {
            mock_reply("error: bad MS '%s'", argv[2]);
            return;
        }
        e = rd_kafka_mock_broker_set_rtt(mc, (int32_t)id, (int)ms);
    } else if (strcmp(argv[0], "produce-errors") == 0 || strcmp(argv[0], "request-errors") == 0) {
        bool produce = argv[0][0] == 'p';
        int base = produce ? 1 : 2;
        rd_kafka_resp_err_t *errs;
        if (produce)
            NEED(3, "produce-errors N ERRNAME");
        else
            NEED(4, "request-errors API N ERRNAME");
        api = 0;
        if (!produce && !parse_api_key(argv[1], &api)) {
            mock_reply("error: unknown API '%s' (name like OffsetCommit or key number)", argv[1]);
            return;
        }
        if (!parse_long(argv[base], 1, 100000, &n)) {
            mock_reply("error: bad N '%s'", argv[base]);
            return;
        }
        if (!parse_err_name(argv[base + 1], &kerr)) {
            mock_reply("error: unknown error name '%s'", argv[base + 1]);
            return;
        }
        errs = xmalloc(sizeof *errs * (size_t)n);
        for (long i = 0; i < n; i++)
            errs[i] = kerr;
        rd_kafka_mock_push_request_errors_array(mc, api, (size_t)n, errs);
        free(errs);
    } else if (strcmp(argv[0], "request-rtts") == 0) {
        NEED(4, "request-rtts API N MS");
        if (!parse_api_key(argv[1], &api)) {
            mock_reply("error: unknown API '%s' (name like EndTxn or key number)", argv[1]);
            return;
        }
        if (!parse_long(argv[2], 1, 100000, &n) || !parse_long(argv[3], 0, INT_MAX, &ms)) {
            mock_reply("error: bad N or MS");
            return;
        }
        /* On every broker: whichever is the coordinator gets them. */
        for (long b = 1; b <= broker_cnt && !e; b++)
            for (long i = 0; i < n && !e; i++)
                e = rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)b, api, 1,
                                                                 RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                 (int)ms);
    } else if (strcmp(argv[0], "clear-errors") == 0) {
        NEED(2, "clear-errors API");
        if (!parse_api_key(argv[1], &api)) {
            mock_reply("error: unknown API '%s'", argv[1]);
            return;
        }
        rd_kafka_mock_clear_request_errors(mc, api);
    } else if (strcmp(argv[0], "leader") == 0) {
        NEED(4, "leader TOPIC PARTITION BROKER_ID");
        if (!parse_long(argv[2], 0, INT32_MAX, &n)) {
            mock_reply("error: bad partition '%s'", argv[2]);
            return;
        }
        if (!parse_long(argv[3], -1, broker_cnt, &id)) {
            mock_reply("error: bad broker id '%s'", argv[3]);
            return;
        }
        e = rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)n, (int32_t)id);
    } else if (strcmp(argv[0], "topic") == 0) {
        long rf = broker_cnt < 3 ? broker_cnt : 3;
        char err[256];
        if (argc != 3 && argc != 4) {
            mock_reply("error: usage: topic NAME PARTITIONS [RF]");
            return;
        }
        if (!parse_long(argv[2], 1, 100000, &n) ||
            (argc == 4 && !parse_long(argv[3], 1, broker_cnt, &rf))) {
            mock_reply("error: bad PARTITIONS or RF");
            return;
        }
        if (!mock_create_topic(mc, argv[1], n, rf, err, sizeof err)) {
            mock_reply("error: %s", err);
            return;
        }
    } else if (strcmp(argv[0], "topic-error") == 0) {
        NEED(3, "topic-error TOPIC ERRNAME");
        if (!parse_err_name(argv[2], &kerr)) {
            mock_reply("error: unknown error name '%s'", argv[2]);
            return;
        }
        rd_kafka_mock_topic_set_error(mc, argv[1], kerr);
    } else if (strcmp(argv[0], "ping") == 0) {
        /* nothing */
    } else if (strcmp(argv[0], "help") == 0) {
        mock_reply("ok down ID | up ID | rtt ID MS | produce-errors N ERR | request-errors API N ERR"
                   " | request-rtts API N MS | clear-errors API | leader TOPIC PART ID | topic NAME PARTS [RF]"
                   " | topic-error NAME ERR | ping");
        return;
    } else {
        mock_reply("error: unknown command '%s' (try help)", argv[0]);
        return;
    }
#undef NEED
#undef BROKER_ARG
    if (e)
        mock_reply("error: %s", rd_kafka_err2str(e));
    else
        mock_reply("ok");
}

static int cmd_mock(struct opts *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc;
    rd_kafka_t *rk;
    const char *bs;
    long dflt_rf;
    char buf[4096];
    size_t have = 0;
    bool stdin_open = true;
    int rc = 0;

    if (o->npos)
        usage_error("mock takes no positional arguments");
    if (o->broker_cnt <= 0)
        o->broker_cnt = 3;
    dflt_rf = o->broker_cnt < 3 ? o->broker_cnt : 3;

    /* The owner handle is an idle producer; silence its "No bootstrap.servers" warning. */
    conf_set(conf, "log_level", "3");
    conf_set(conf, "client.id", PROG "-mock");
    rk = client_new(RD_KAFKA_PRODUCER, conf, o);
    mc = rd_kafka_mock_cluster_new(rk, (int)o->broker_cnt);
    if (!mc) {
        errmsg("rd_kafka_mock_cluster_new(%ld) failed", o->broker_cnt);
        rd_kafka_destroy(rk);
        return EXIT_FAIL;
    }
    for (int i = 0; i < o->ntopics; i++) {
        char *name = NULL, err[256];
        long parts, rf;
        if (!parse_topic_spec(o->topics[i], &name, &parts, &rf, dflt_rf)) {
            errmsg("bad --topic '%s' (NAME:PARTITIONS[:RF])", o->topics[i]);
            rc = EXIT_USAGE;
            goto out;
        }
        if (rf > o->broker_cnt) {
            errmsg("--topic %s: replication factor %ld > %ld brokers", o->topics[i], rf,
                   o->broker_cnt);
            free(name);
            rc = EXIT_USAGE;
            goto out;
        }
        if (!mock_create_topic(mc, name, parts, rf, err, sizeof err)) {
            errmsg("%s", err);
            free(name);
            rc = EXIT_FAIL;
            goto out;
        }
        free(name);
    }

    bs = rd_kafka_mock_cluster_bootstraps(mc);
    signal(SIGPIPE, SIG_IGN); /* a closed control pipe must not kill the cluster */
    install_signals();
    if (o->bootstrap_file && !write_file_atomic(o->bootstrap_file, bs)) {
        rc = EXIT_FAIL;
        goto out;
    }
    printf("BOOTSTRAP=%s\n", bs);
    fflush(stdout);

    while (!g_stop) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int pr = poll(&pfd, stdin_open ? 1 : 0, 200);
        rd_kafka_poll(rk, 0);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            errmsg("poll: %s", strerror(errno));
            rc = EXIT_FAIL;
            break;
        }
        if (pr == 0 || !stdin_open)
            continue;
        ssize_t r = read(STDIN_FILENO, buf + have, sizeof buf - 1 - have);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            r = 0;
        }
        if (r == 0) {
            if (have) { /* last line without newline */
                buf[have] = '\0';
                mock_command(mc, buf, o->broker_cnt);
                have = 0;
            }
            stdin_open = false;
            if (o->exit_on_eof)
                break;
            continue;
        }
        have += (size_t)r;
        for (;;) {
            char *nl = memchr(buf, '\n', have);
            size_t len;
            if (!nl) {
                if (have == sizeof buf - 1) {
                    mock_reply("error: line too long");
                    have = 0;
                }
                break;
            }
            *nl = '\0';
            len = (size_t)(nl - buf) + 1;
            mock_command(mc, buf, o->broker_cnt);
            memmove(buf, buf + len, have - len);
            have -= len;
        }
    }

out:
    if (o->bootstrap_file && rc == 0)
        unlink(o->bootstrap_file);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------ create-topic */

static int cmd_create_topic(struct opts *o)
{
    char errstr[512];
    long parts;
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt;
    rd_kafka_AdminOptions_t *ao;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tres;
    size_t cnt;
    int timeout = timeout_or(o, 30000);
    int rc = EXIT_FAIL, n;
    const char *topic;
    bool exists = false;

    if (o->npos != 2 || !parse_long(o->pos[1], 1, 1000000, &parts))
        usage_error("usage: create-topic -b BROKERS TOPIC PARTITIONS");
    topic = o->pos[0];
    if (o->replication <= 0)
        o->replication = 1;

    rk = client_new(RD_KAFKA_PRODUCER, client_conf(o), o);
    nt = rd_kafka_NewTopic_new(topic, (int)parts, (int)o->replication, errstr, sizeof errstr);
    if (!nt) {
        errmsg("topic %s: %s", topic, errstr);
        rd_kafka_destroy(rk);
        return EXIT_USAGE;
    }
    for (int i = 0; i < o->ntconf; i++) {
        const char *eq = strchr(o->tconf[i], '=');
        char *key = xstrndup(o->tconf[i], (size_t)(eq - o->tconf[i]));
        rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt, key, eq + 1);
        free(key);
        if (e) {
            errmsg("--config %s: %s", o->tconf[i], rd_kafka_err2str(e));
            goto out_nt;
        }
    }
    ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_operation_timeout(ao, timeout, errstr, sizeof errstr) ||
        rd_kafka_AdminOptions_set_request_timeout(ao, timeout, errstr, sizeof errstr)) {
        errmsg("admin options: %s", errstr);
        rd_kafka_AdminOptions_destroy(ao);
        goto out_nt;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    ev = rd_kafka_queue_poll(q, timeout + 5000);
    rd_kafka_AdminOptions_destroy(ao);
    if (!ev) {
        errmsg("create-topic %s: no answer within %d ms", topic, timeout + 5000);
        goto out_q;
    }
    if (rd_kafka_event_error(ev)) {
        errmsg("create-topic %s: %s: %s%s", topic, rd_kafka_err2name(rd_kafka_event_error(ev)),
               rd_kafka_event_error_string(ev),
               " (if this is the librdkafka mock cluster: it has no CreateTopics; use"
               " 'mock --topic NAME:N' or its 'topic NAME N' control command)");
        rd_kafka_event_destroy(ev);
        goto out_q;
    }
    res = rd_kafka_event_CreateTopics_result(ev);
    tres = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tres[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            exists = true;
        } else if (e) {
            const char *s = rd_kafka_topic_result_error_string(tres[i]);
            errmsg("create-topic %s: %s: %s", rd_kafka_topic_result_name(tres[i]),
                   rd_kafka_err2name(e), s ? s : rd_kafka_err2str(e));
            rd_kafka_event_destroy(ev);
            goto out_q;
        }
    }
    rd_kafka_event_destroy(ev);

    n = topic_partitions(rk, topic, timeout, true);
    if (n < 0)
        goto out_q;
    if (exists && n != parts)
        errmsg("warning: topic %s already exists with %d partitions (asked for %ld)", topic, n,
               parts);
    printf("%s %s\n", exists ? "exists" : "created", topic);
    rc = 0;
out_q:
    rd_kafka_queue_destroy(q);
out_nt:
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------ produce */

struct produce_stats {
    long delivered;
    long failed;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct produce_stats *st = opaque;
    (void)rk;
    if (m->err) {
        if (st->failed < 10)
            errmsg("delivery failed (partition %" PRId32 "): %s: %s", m->partition,
                   rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
        else if (st->failed == 10)
            errmsg("(further delivery failures not shown)");
        st->failed++;
    } else {
        st->delivered++;
    }
}

/* Bytes of a JSON field: "name" (string, or any other JSON serialized) or "name_b64". */
static bool json_bytes(const cJSON *obj, const char *name, bool serialize_other, char **data,
                       size_t *len, char *err, size_t errsz)
{
    char b64name[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    const cJSON *b;
    snprintf(b64name, sizeof b64name, "%s_b64", name);
    b = cJSON_GetObjectItemCaseSensitive(obj, b64name);
    *data = NULL;
    *len = 0;
    if (b && !cJSON_IsNull(b)) {
        if (!cJSON_IsString(b)) {
            snprintf(err, errsz, "\"%s\" must be a string", b64name);
            return false;
        }
        *data = (char *)b64_decode(b->valuestring, len);
        if (!*data) {
            snprintf(err, errsz, "\"%s\" is not valid base64", b64name);
            return false;
        }
        return true;
    }
    if (!v || cJSON_IsNull(v))
        return true;
    if (cJSON_IsString(v)) {
        *len = strlen(v->valuestring);
        *data = xstrndup(v->valuestring, *len);
        return true;
    }
    if (!serialize_other) {
        snprintf(err, errsz, "\"%s\" must be a string or null", name);
        return false;
    }
    *data = cJSON_PrintUnformatted(v);
    *len = *data ? strlen(*data) : 0;
    return true;
}

/* Returns true on success; on failure fills err. Ownership of nothing is kept. */
static bool produce_line(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *line, char *err,
                         size_t errsz)
{
    cJSON *j = cJSON_Parse(line);
    char *key = NULL, *val = NULL;
    size_t klen, vlen;
    int32_t partition = RD_KAFKA_PARTITION_UA;
    int64_t ts = 0;
    rd_kafka_headers_t *hdrs = NULL;
    const cJSON *p, *h, *t;
    rd_kafka_resp_err_t e;
    bool ok = false;

    if (!j || !cJSON_IsObject(j)) {
        snprintf(err, errsz, "not a JSON object");
        goto out;
    }
    if (!json_bytes(j, "key", false, &key, &klen, err, errsz) ||
        !json_bytes(j, "value", true, &val, &vlen, err, errsz))
        goto out;
    p = cJSON_GetObjectItemCaseSensitive(j, "partition");
    if (p && !cJSON_IsNull(p)) {
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble > INT32_MAX) {
            snprintf(err, errsz, "\"partition\" must be a non-negative integer");
            goto out;
        }
        partition = (int32_t)p->valuedouble;
    }
    t = cJSON_GetObjectItemCaseSensitive(j, "timestamp");
    if (t && !cJSON_IsNull(t)) {
        if (!cJSON_IsNumber(t) || t->valuedouble < 0) {
            snprintf(err, errsz, "\"timestamp\" must be milliseconds since the epoch");
            goto out;
        }
        ts = (int64_t)t->valuedouble;
    }
    h = cJSON_GetObjectItemCaseSensitive(j, "headers");
    if (h && !cJSON_IsNull(h)) {
        const cJSON *it;
        if (!cJSON_IsObject(h)) {
            snprintf(err, errsz, "\"headers\" must be an object");
            goto out;
        }
        hdrs = rd_kafka_headers_new((size_t)cJSON_GetArraySize(h));
        cJSON_ArrayForEach(it, h)
        {
            if (cJSON_IsNull(it)) {
                rd_kafka_header_add(hdrs, it->string, -1, NULL, 0);
            } else if (cJSON_IsString(it)) {
                rd_kafka_header_add(hdrs, it->string, -1, it->valuestring, -1);
            } else {
                char *s = cJSON_PrintUnformatted(it);
                rd_kafka_header_add(hdrs, it->string, -1, s, -1);
                free(s);
            }
        }
    }

    for (;;) {
        e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
                              RD_KAFKA_V_VALUE(val, vlen), RD_KAFKA_V_HEADERS(hdrs),
                              RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 100); /* queue full: serve delivery reports, then retry */
    }
    if (e) {
        snprintf(err, errsz, "produce: %s: %s", rd_kafka_err2name(e), rd_kafka_err2str(e));
        goto out;
    }
    hdrs = NULL; /* owned by librdkafka now */
    ok = true;
out:
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    free(key);
    free(val);
    cJSON_Delete(j);
    return ok;
}

static int cmd_produce(struct opts *o)
{
    struct produce_stats st = {0, 0};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    FILE *in = stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, queued = 0;
    bool input_failed = false;
    char errstr[512];

    if (o->npos != 1)
        usage_error("usage: produce -b BROKERS TOPIC [--file F]");
    if (o->file && strcmp(o->file, "-") != 0) {
        in = fopen(o->file, "r");
        if (!in) {
            errmsg("%s: %s", o->file, strerror(errno));
            return EXIT_FAIL;
        }
    }
    conf = client_conf(o);
    conf_set(conf, "enable.idempotence", "true");
    conf_set(conf, "linger.ms", "5");
    conf_set(conf, "queue.buffering.max.messages", "1000000");
    conf_set(conf, "message.timeout.ms", "60000");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, &st);
    rk = client_new(RD_KAFKA_PRODUCER, conf, o);
    rkt = rd_kafka_topic_new(rk, o->pos[0], NULL);
    if (!rkt) {
        errmsg("topic %s: %s", o->pos[0], rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(rk);
        return EXIT_FAIL;
    }

    while ((len = getline(&line, &cap, in)) >= 0) {
        char err[512];
        const char *s = line;
        lineno++;
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (!*s)
            continue;
        if (!produce_line(rk, rkt, s, err, sizeof err)) {
            errmsg("%s line %ld: %s", o->file ? o->file : "stdin", lineno, err);
            input_failed = true;
            break;
        }
        if (++queued % 1000 == 0)
            rd_kafka_poll(rk, 0);
    }
    if (ferror(in)) {
        errmsg("reading %s: %s", o->file ? o->file : "stdin", strerror(errno));
        input_failed = true;
    }
    free(line);
    if (in != stdin)
        fclose(in);

    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    rd_kafka_poll(rk, 0);
    if (rd_kafka_fatal_error(rk, errstr, sizeof errstr)) {
        errmsg("fatal producer error: %s", errstr);
        st.failed += queued - st.delivered - st.failed;
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);

    printf("produced %ld\n", st.delivered);
    if (st.failed)
        errmsg("%ld of %ld messages failed", st.failed, queued);
    return (st.failed || input_failed) ? EXIT_FAIL : 0;
}

/* ------------------------------------------------------------------ dump */

static void print_message(const rd_kafka_message_t *m)
{
    cJSON *obj = cJSON_CreateObject(), *hobj, *hb64 = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts;

    cJSON_AddStringToObject(obj, "topic", rd_kafka_topic_name(m->rkt));
    cJSON_AddNumberToObject(obj, "partition", m->partition);
    cJSON_AddNumberToObject(obj, "offset", (double)m->offset);
    json_add_bytes(obj, "key", "key_b64", m->key, m->key_len);
    json_add_bytes(obj, "value", "value_b64", m->payload, m->len);
    hobj = cJSON_AddObjectToObject(obj, "headers");
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t sz;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &sz) == 0; i++) {
            if (val && !utf8_valid(val, sz)) {
                char *s = b64_encode(val, sz);
                if (!hb64)
                    hb64 = cJSON_CreateObject();
                cJSON_AddStringToObject(hb64, name, s);
                cJSON_AddNullToObject(hobj, name);
                free(s);
            } else {
                json_add_bytes(hobj, name, NULL, val, sz);
            }
        }
    }
    if (hb64)
        cJSON_AddItemToObject(obj, "headers_b64", hb64);
    ts = rd_kafka_message_timestamp(m, &tstype);
    cJSON_AddNumberToObject(obj, "timestamp", (double)ts);
    print_json_line(obj);
    cJSON_Delete(obj);
}

static int cmd_dump(struct opts *o)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t e;
    const char *topic;
    int nparts;
    int64_t *high = NULL;
    bool *done = NULL;
    int remaining = 0;
    long count = 0;
    int timeout = timeout_or(o, DUMP_DEFAULT_TIMEOUT_MS);
    bool expect_mode = o->expect >= 0;
    int64_t deadline;
    int rc = 0;

    if (o->npos != 1)
        usage_error("usage: dump -b BROKERS TOPIC [--timeout-ms MS] [--expect N] ...");
    topic = o->pos[0];
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    conf = client_conf(o);
    /* A group.id is needed for assign() in 2.0.2; the group is never joined or committed. */
    conf_set(conf, "group.id", PROG "-dump");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.auto.offset.store", "false");
    conf_set(conf, "enable.partition.eof", "true");
    conf_set(conf, "auto.offset.reset", "earliest");
    conf_set(conf, "allow.auto.create.topics", "false");
    if (o->isolation)
        conf_set(conf, "isolation.level", o->isolation);
    rk = client_new(RD_KAFKA_CONSUMER, conf, o);

    /* With --expect the topic may not exist yet: wait for it within the timeout. */
    nparts = topic_partitions(rk, topic, expect_mode ? timeout : timeout_or(o, DEFAULT_TIMEOUT_MS),
                              expect_mode);
    if (nparts <= 0) {
        if (nparts == 0)
            errmsg("topic %s does not exist", topic);
        rc = EXIT_FAIL;
        goto out;
    }
    high = calloc((size_t)nparts, sizeof *high);
    done = calloc((size_t)nparts, sizeof *done);
    if (!high || !done) {
        errmsg("out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, topic, p);
        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (!expect_mode || o->from_end) {
            /* --from-end starts at the end queried here, so nothing produced after this
             * point can be missed while an OFFSET_END lookup is in flight. */
            int64_t lo = 0, hi = 0;
            e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, DEFAULT_TIMEOUT_MS);
            if (e) {
                errmsg("watermarks %s[%d]: %s", topic, p, rd_kafka_err2str(e));
                rd_kafka_topic_partition_list_destroy(list);
                rc = EXIT_FAIL;
                goto out;
            }
            high[p] = hi;
            if (o->from_end)
                tp->offset = hi;
            if (!expect_mode) {
                done[p] = o->from_end || hi <= lo;
                if (!done[p])
                    remaining++;
            }
        }
    }
    e = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) {
        errmsg("assign: %s", rd_kafka_err2str(e));
        rc = EXIT_FAIL;
        goto out;
    }

    deadline = now_ms() + timeout;
    while (!g_stop) {
        rd_kafka_message_t *m;
        if (expect_mode ? count >= o->expect : remaining == 0)
            break;
        if (now_ms() >= deadline) {
            if (expect_mode)
                errmsg("warning: dump %s: got %ld of %ld expected messages within %d ms", topic,
                       count, o->expect, timeout);
            else
                errmsg("warning: dump %s: no progress for %d ms, %d partition(s) not at their"
                       " start-time end; stopping after %ld messages",
                       topic, timeout, remaining, count);
            break;
        }
        m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!expect_mode && m->partition >= 0 && m->partition < nparts && !done[m->partition]) {
                done[m->partition] = true;
                remaining--;
                deadline = now_ms() + timeout;
            }
        } else if (m->err) {
            errmsg("consume %s[%" PRId32 "]: %s: %s", topic, m->partition, rd_kafka_err2name(m->err),
                   rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                m->err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_message_destroy(m);
                rc = EXIT_FAIL;
                break;
            }
        } else {
            print_message(m);
            count++;
            if (!expect_mode) {
                if (m->partition >= 0 && m->partition < nparts && !done[m->partition] &&
                    m->offset + 1 >= high[m->partition]) {
                    done[m->partition] = true;
                    remaining--;
                }
                deadline = now_ms() + timeout;
            }
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);

out:
    free(high);
    free(done);
    close_consumer(rk, rc);
    return rc;
}

/* ------------------------------------------------------------------ committed */

static int cmd_committed(struct opts *o)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *list = NULL;
    const char *group, *topic;
    int timeout = timeout_or(o, DEFAULT_TIMEOUT_MS);
    int nparts, rc = 0;
    rd_kafka_resp_err_t e;

    if (o->npos != 2)
        usage_error("usage: committed -b BROKERS GROUP TOPIC");
    group = o->pos[0];
    topic = o->pos[1];
    conf = client_conf(o);
    /* group.id is needed for committed(); the consumer never subscribes, so never joins. */
    conf_set(conf, "group.id", group);
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.auto.offset.store", "false");
    conf_set(conf, "allow.auto.create.topics", "false");
    /* The offsets of the last finished commit. With read_committed, librdkafka 2.0.2 asks the
     * broker for stable offsets, and while a transaction holds offsets of the group the
     * broker answers UNSTABLE_OFFSET_COMMIT and librdkafka asks again until the timeout: an
     * exactly-once worker that commits every 100 ms made this time out under load. */
    conf_set(conf, "isolation.level", "read_uncommitted");
    rk = client_new(RD_KAFKA_CONSUMER, conf, o);

    nparts = topic_partitions(rk, topic, timeout, false);
    if (nparts <= 0) {
        if (nparts == 0)
            errmsg("topic %s does not exist", topic);
        rc = EXIT_FAIL;
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(list, topic, p);
    e = rd_kafka_committed(rk, list, timeout);
    if (e) {
        errmsg("committed(%s, %s): %s", group, topic, rd_kafka_err2str(e));
        rc = EXIT_FAIL;
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t lo = -1, hi = -1;
        cJSON *obj = cJSON_CreateObject();
        e = rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &lo, &hi, timeout);
        if (e) {
            errmsg("watermarks %s[%" PRId32 "]: %s", topic, tp->partition, rd_kafka_err2str(e));
            rc = EXIT_FAIL;
        }
        cJSON_AddNumberToObject(obj, "partition", tp->partition);
        cJSON_AddNumberToObject(obj, "offset", (double)tp->offset);
        cJSON_AddNumberToObject(obj, "high", (double)hi);
        json_add_bytes(obj, "metadata", "metadata_b64", tp->metadata ? tp->metadata : "",
                       tp->metadata ? tp->metadata_size : 0);
        if (tp->err)
            cJSON_AddStringToObject(obj, "error", rd_kafka_err2str(tp->err));
        print_json_line(obj);
        cJSON_Delete(obj);
    }
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    close_consumer(rk, rc);
    return rc;
}

/* ------------------------------------------------------------------ group */

static int cmd_group(struct opts *o)
{
    rd_kafka_t *rk;
    const struct rd_kafka_group_list *gl = NULL;
    const char *group;
    rd_kafka_resp_err_t e;
    cJSON *obj;
    int rc = 0;

    if (o->npos != 1)
        usage_error("usage: group -b BROKERS GROUP");
    group = o->pos[0];
    rk = client_new(RD_KAFKA_PRODUCER, client_conf(o), o);
    e = rd_kafka_list_groups(rk, group, &gl, timeout_or(o, DEFAULT_TIMEOUT_MS));
    if (e) {
        errmsg("list_groups(%s): %s%s", group, rd_kafka_err2str(e),
               e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE
                   ? " (the librdkafka 2.0.2 mock cluster has no ListGroups/DescribeGroups)"
                   : "");
        rd_kafka_destroy(rk);
        return EXIT_FAIL;
    }
    obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "group", group);
    if (gl->group_cnt == 0) {
        cJSON_AddStringToObject(obj, "state", "Dead");
        cJSON_AddNumberToObject(obj, "members", 0);
    } else {
        const struct rd_kafka_group_info *g = &gl->groups[0];
        cJSON_AddStringToObject(obj, "state", g->state ? g->state : "");
        cJSON_AddNumberToObject(obj, "members", g->member_cnt);
        cJSON_AddStringToObject(obj, "protocol_type", g->protocol_type ? g->protocol_type : "");
        cJSON_AddStringToObject(obj, "protocol", g->protocol ? g->protocol : "");
        if (g->err) {
            cJSON_AddStringToObject(obj, "error", rd_kafka_err2str(g->err));
            errmsg("group %s: %s", group, rd_kafka_err2str(g->err));
            rc = EXIT_FAIL;
        }
    }
    print_json_line(obj);
    cJSON_Delete(obj);
    rd_kafka_group_list_destroy(gl);
    rd_kafka_destroy(rk);
    return rc;
}

/* ------------------------------------------------------------------ main */

static int acl_operation(const char *name, size_t len, rd_kafka_AclOperation_t *op)
{
    static const struct {
        const char *name;
        rd_kafka_AclOperation_t op;
    } ops[] = {{"READ", RD_KAFKA_ACL_OPERATION_READ},
               {"WRITE", RD_KAFKA_ACL_OPERATION_WRITE},
               {"DESCRIBE", RD_KAFKA_ACL_OPERATION_DESCRIBE},
               {"DESCRIBE_CONFIGS", RD_KAFKA_ACL_OPERATION_DESCRIBE_CONFIGS},
               {"ALL", RD_KAFKA_ACL_OPERATION_ALL}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strlen(ops[i].name) == len && strncasecmp(ops[i].name, name, len) == 0) {
            *op = ops[i].op;
            return 0;
        }
    return -1;
}

/* create-acl: ALLOW bindings of one principal on one literal resource, any host. OPERATION
 * names are librdkafka's (its enum without the prefix). */
static int cmd_create_acl(struct opts *o)
{
    char errstr[512];
    rd_kafka_AclBinding_t *b[8];
    size_t nb = 0;
    int timeout = timeout_or(o, 30000), rc = EXIT_FAIL;
    rd_kafka_ResourceType_t rt;
    if (o->npos != 4)
        usage_error("usage: create-acl -b BROKERS topic|group|cluster NAME PRINCIPAL OPS");
    if (strcmp(o->pos[0], "topic") == 0)
        rt = RD_KAFKA_RESOURCE_TOPIC;
    else if (strcmp(o->pos[0], "group") == 0)
        rt = RD_KAFKA_RESOURCE_GROUP;
    else if (strcmp(o->pos[0], "cluster") == 0)
        rt = RD_KAFKA_RESOURCE_BROKER; /* Kafka's Cluster resource */
    else
        usage_error("create-acl: resource type must be topic, group or cluster, got '%s'",
                    o->pos[0]);
    for (const char *p = o->pos[3]; *p && nb < 8;) {
        size_t len = strcspn(p, ",");
        rd_kafka_AclOperation_t op;
        if (acl_operation(p, len, &op) < 0)
            usage_error("create-acl: unknown operation '%.*s'", (int)len, p);
        b[nb] = rd_kafka_AclBinding_new(rt, o->pos[1], RD_KAFKA_RESOURCE_PATTERN_LITERAL,
                                        o->pos[2], "*", op, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
                                        errstr, sizeof errstr);
        if (!b[nb]) {
            errmsg("create-acl: %s", errstr);
            goto out;
        }
        nb++;
        p += len + (p[len] == ',');
    }
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, client_conf(o), o);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
    rd_kafka_AdminOptions_set_request_timeout(ao, timeout, errstr, sizeof errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateAcls(rk, b, nb, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout + 5000);
    if (!ev) {
        errmsg("create-acl: no answer within %d ms", timeout + 5000);
    } else if (rd_kafka_event_error(ev)) {
        errmsg("create-acl: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t cnt = 0;
        const rd_kafka_acl_result_t **r =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
        rc = 0;
        for (size_t i = 0; i < cnt; i++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(r[i]);
            if (e) {
                errmsg("create-acl: %s", rd_kafka_error_string(e));
                rc = EXIT_FAIL;
            }
        }
        if (rc == 0)
            printf("created %zu binding(s) on %s %s for %s\n", nb, o->pos[0], o->pos[1],
                   o->pos[2]);
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_destroy(rk);
out:
    for (size_t i = 0; i < nb; i++)
        rd_kafka_AclBinding_destroy(b[i]);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int bit;
        int (*fn)(struct opts *);
    } cmds[] = {
        {"mock", C_MOCK, cmd_mock},
        {"create-topic", C_CREATE, cmd_create_topic},
        {"produce", C_PRODUCE, cmd_produce},
        {"dump", C_DUMP, cmd_dump},
        {"committed", C_COMMITTED, cmd_committed},
        {"group", C_GROUP, cmd_group},
        {"create-acl", C_ACL, cmd_create_acl},
    };
    struct opts o;
    int (*fn)(struct opts *) = NULL;

    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    memset(&o, 0, sizeof o);
    o.timeout_ms = -1;
    o.expect = -1;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            o.cmd = cmds[i].bit;
            fn = cmds[i].fn;
        }
    }
    if (!fn)
        usage_error("unknown command '%s'", argv[1]);
    parse_opts(&o, argc - 2, argv + 2);
    if (o.cmd != C_MOCK) {
        if (!o.bootstrap || !*o.bootstrap)
            o.bootstrap = getenv("KAFKA_BOOTSTRAP");
        if (!o.bootstrap || !*o.bootstrap)
            usage_error("%s needs -b BROKERS (or KAFKA_BOOTSTRAP in the environment)", argv[1]);
    }
    return fn(&o);
}
