/* `delivery-worker redrive`: dead letters back to the input topic. Part of the Kafka operations
 * module (with ops.c and replay.c; these, the Kafka modules and oidc.c are the only code that
 * sees rdkafka.h).
 *
 * It reads the dead-letter topic by assignment (no group membership, so running workers are
 * never rebalanced) from its last position up to the high watermarks taken at start, keeps the
 * letters the filters select, and produces each with its original key, value and headers (the
 * dlq.* headers stripped, so the next dead letter is not ambiguous) plus redrive.count,
 * redrive.from and redrive.at. The worker copies an event's headers into its dead letter, so a
 * letter that fails again carries its redrive.count back here, and letters redriven
 * --max-redrives times are left alone ("exhausted"). Nothing is removed from the dead-letter
 * topic. The position is committed to the group `<kafka.group_id>.redrive` only after every
 * produced record is acknowledged, so a second run sees only newer letters; --from-beginning
 * rescans. The producer is idempotent; the command exits 1 if any record was not delivered.
 * Filters read only the worker's own dlq.* headers (dw_ops_letter_read): an event's own dlq.*
 * headers, copied into letters written before the worker renamed them orig.dlq.*, may be
 * forged. */
#include "dw/redrive.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/ops.h"

#define MAX_REASONS 32
#define MAX_HEADERS 256

struct redrive_opts {
  const char *config;
  const char *to_topic; /* NULL: kafka.input_topic */
  struct dw_redrive_filter filter;
  int dry_run;
  int from_beginning;
  struct dw_ops_overrides overrides; /* --set, -X */
};

/* Counts of one dlq.reason. */
struct reason_count {
  char reason[64];
  int64_t scanned, redriven, exhausted, incomplete, filtered;
};

/* Where the scan of one partition stands. */
struct part {
  int32_t partition;
  int64_t start, end; /* from the last position (or the beginning) to the high watermark */
  int64_t next;       /* the next offset to read */
  int done;
};

struct redrive {
  const struct redrive_opts *o;
  const char *dlq_topic, *to_topic;
  rd_kafka_t *consumer, *producer;
  struct part *parts;
  size_t part_count;
  int64_t scanned, matched, redriven, exhausted, incomplete, filtered;
  int64_t delivered, failed; /* delivery reports */
  char first_error[256];
  struct reason_count reasons[MAX_REASONS + 1]; /* the last one collects the rest */
  size_t reason_count;
  struct dw_ops_progress progress;
};

void dw_redrive_usage(FILE *out)
{
  fputs(
      "usage: delivery-worker redrive -c FILE [--reason R[,R..]] [--error-code C[,C..]]\n"
      "           [--since T] [--until T] [--max-redrives N] [--to-topic T]\n"
      "           [--from-beginning] [--dry-run]\n"
      "  Produces dead letters of kafka.dlq_topic back to the input topic with their original\n"
      "  key, value and headers (without the dlq.* and orig.dlq.* headers) plus redrive.count,\n"
      "  redrive.from (topic/partition/offset) and redrive.at. Nothing is removed from the\n"
      "  dead-letter topic.\n"
      "  --reason R         only letters with these dlq.reason values (task_not_found, ...)\n"
      "  --error-code C     only letters with these dlq.error_code values (1002008, ...)\n"
      "  --since/--until T  only letters that failed in [since, until) (dlq.failed_at, else the\n"
      "                     record's timestamp); T is RFC 3339 or epoch milliseconds\n"
      "  --max-redrives N   letters redriven N times already are left alone (default 3)\n"
      "  --to-topic T       where to produce (default kafka.input_topic)\n"
      "  --from-beginning   rescan the whole topic; by default a run starts where the last one\n"
      "                     (not a dry run) ended: its position is kept in the consumer group\n"
      "                     <kafka.group_id>.redrive, committed after every record is delivered\n"
      "  --dry-run          print what would be redriven; produce and commit nothing\n"
      "  --set group.key=value, -X name=value\n"
      "                     a config key, a librdkafka property: over file and environment\n"
      "  Exit codes: 0 done, 1 failure (a record not delivered, Kafka unreachable), 2 usage.\n",
      out);
}

#define usage_error(...) dw_ops_usage_error("redrive", dw_redrive_usage, __VA_ARGS__)

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct redrive_opts *o)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"reason", required_argument, NULL, 'r'},
      {"error-code", required_argument, NULL, 'e'}, {"since", required_argument, NULL, 's'},
      {"until", required_argument, NULL, 'u'}, {"max-redrives", required_argument, NULL, 'm'},
      {"to-topic", required_argument, NULL, 't'}, {"dry-run", no_argument, NULL, 'n'},
      {"from-beginning", no_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
      {"set", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof(*o));
  o->filter.since_ms = o->filter.until_ms = -1;
  o->filter.max_redrives = 3;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "c:hX:", longopts, NULL)) != -1) {
    switch (c) {
    case 'c': o->config = optarg; break;
    case 'S':
    case 'X':
      if (dw_ops_override_add(&o->overrides, c == 'X', optarg) < 0)
        return usage_error("at most %d of --set and of -X", DW_OPS_OVERRIDES_MAX);
      break;
    case 'r': o->filter.reasons = optarg; break;
    case 'e': o->filter.error_codes = optarg; break;
    case 't': o->to_topic = optarg; break;
    case 'n': o->dry_run = 1; break;
    case 'b': o->from_beginning = 1; break;
    case 'h': dw_redrive_usage(stdout); return DW_OPS_EXIT_OK;
    case 's':
    case 'u':
      if (dw_ops_parse_time(optarg, c == 's' ? &o->filter.since_ms : &o->filter.until_ms) < 0)
        return usage_error("not a time (RFC 3339 with a zone, or epoch milliseconds): \"%s\"",
                           optarg);
      break;
    case 'm':
      if (dw_ops_parse_int64(optarg, 1, &o->filter.max_redrives) < 0)
        return usage_error("--max-redrives wants a number >= 1: \"%s\"", optarg);
      break;
    default:
      return usage_error("unknown or incomplete option \"%s\"", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument \"%s\"", argv[optind]);
  if (!o->config)
    return usage_error("-c FILE is required");
  if (o->filter.since_ms >= 0 && o->filter.until_ms >= 0 &&
      o->filter.until_ms <= o->filter.since_ms)
    return usage_error("the time window is empty: --until must be after --since");
  return -1;
}

/* ---- producing ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
  (void)rk;
  struct redrive *r = opaque;
  if (!m->err) {
    r->delivered++;
    return;
  }
  if (r->failed++ == 0)
    snprintf(r->first_error, sizeof(r->first_error), "%s", rd_kafka_err2str(m->err));
}

static void producer_setup(struct rd_kafka_conf_s *conf, void *arg)
{
  rd_kafka_conf_set_opaque(conf, arg);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
}

/* The redriven record's headers: the letter's own minus dlq.* and old redrive.*, plus ours. */
static rd_kafka_headers_t *redrive_headers(struct redrive *r, const rd_kafka_message_t *m,
                                           const struct dw_header *h, size_t n, int64_t count)
{
  rd_kafka_headers_t *out = rd_kafka_headers_new(n + 3);
  char buf[512], ts[32];
  for (size_t i = 0; i < n; i++)
    if (dw_ops_header_kept(h[i].name))
      rd_kafka_header_add(out, h[i].name, -1, h[i].value, (ssize_t)h[i].len);
  snprintf(buf, sizeof(buf), "%lld", (long long)count);
  rd_kafka_header_add(out, "redrive.count", -1, buf, -1);
  snprintf(buf, sizeof(buf), "%s/%d/%lld", r->dlq_topic, (int)m->partition, (long long)m->offset);
  rd_kafka_header_add(out, "redrive.from", -1, buf, -1);
  rd_kafka_header_add(out, "redrive.at", -1, dw_rfc3339(dw_wallclock_ms(), ts, sizeof(ts)), -1);
  return out;
}

/* Produces one letter back; waits while the producer's queue is full. Returns 0 or -1. */
static int produce(struct redrive *r, const rd_kafka_message_t *m, rd_kafka_headers_t *hdrs)
{
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        r->producer, RD_KAFKA_V_TOPIC(r->to_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (!err)
      return 0; /* the headers now belong to the message */
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_headers_destroy(hdrs);
      fprintf(stderr, "delivery-worker redrive: cannot produce to %s: %s\n", r->to_topic,
              rd_kafka_err2str(err));
      return -1;
    }
    rd_kafka_poll(r->producer, 100);
  }
}

/* ---- scanning ---- */

static struct reason_count *reason_of(struct redrive *r, const char *reason)
{
  const char *name = *reason ? reason : "(none)";
  for (size_t i = 0; i < r->reason_count; i++)
    if (strcmp(r->reasons[i].reason, name) == 0)
      return &r->reasons[i];
  if (r->reason_count == MAX_REASONS) {
    dw_strlcpy(r->reasons[MAX_REASONS].reason, "(other)", sizeof(r->reasons[0].reason));
    return &r->reasons[MAX_REASONS];
  }
  struct reason_count *rc = &r->reasons[r->reason_count++];
  dw_strlcpy(rc->reason, name, sizeof(rc->reason));
  return rc;
}

/* Reads a message's headers into h (pointers into the message). */
static size_t read_headers(const rd_kafka_message_t *m, struct dw_header *h, size_t max)
{
  rd_kafka_headers_t *hdrs = NULL;
  size_t n = 0;
  /* rd_kafka_message_headers needs a non-const message; it does not change it. */
  if (rd_kafka_message_headers((rd_kafka_message_t *)m, &hdrs) || !hdrs)
    return 0;
  for (; n < max && n < rd_kafka_header_cnt(hdrs); n++)
    rd_kafka_header_get_all(hdrs, n, &h[n].name, &h[n].value, &h[n].len);
  return n;
}

static int handle_letter(struct redrive *r, const rd_kafka_message_t *m)
{
  struct dw_header h[MAX_HEADERS];
  size_t n = read_headers(m, h, MAX_HEADERS);
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(m, &tstype);
  struct dw_letter l;
  dw_ops_letter_read(h, n, tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts, &l);
  struct reason_count *rc = reason_of(r, l.reason);
  r->scanned++;
  rc->scanned++;
  switch (dw_ops_letter_verdict(&r->o->filter, &l)) {
  case DW_REDRIVE_FILTERED:
    r->filtered++;
    rc->filtered++;
    return 0;
  case DW_REDRIVE_EXHAUSTED:
    r->matched++;
    r->exhausted++;
    rc->exhausted++;
    return 0;
  case DW_REDRIVE_INCOMPLETE:
    r->matched++;
    r->incomplete++;
    rc->incomplete++;
    return 0;
  case DW_REDRIVE_MATCH:
    break;
  }
  r->matched++;
  if (!r->o->dry_run && produce(r, m, redrive_headers(r, m, h, n, l.redrive_count + 1)) < 0)
    return -1;
  r->redriven++;
  rc->redriven++;
  return 0;
}

static struct part *part_of(struct redrive *r, int32_t partition)
{
  for (size_t i = 0; i < r->part_count; i++)
    if (r->parts[i].partition == partition)
      return &r->parts[i];
  return NULL;
}

static size_t parts_left(const struct redrive *r)
{
  size_t left = 0;
  for (size_t i = 0; i < r->part_count; i++)
    left += !r->parts[i].done;
  return left;
}

static int64_t records_total(const struct redrive *r)
{
  int64_t t = 0;
  for (size_t i = 0; i < r->part_count; i++)
    t += r->parts[i].end - r->parts[i].start;
  return t;
}

/* Reads every assigned partition to its end as of the start. Returns 0 or -1 (printed). */
static int scan(struct redrive *r)
{
  int64_t total = records_total(r);
  int idle_polls = 0; /* polls of 500 ms with nothing: a stuck scan must end with a reason */
  while (parts_left(r) > 0) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->consumer, 500);
    if (r->producer)
      rd_kafka_poll(r->producer, 0);
    dw_ops_progress(&r->progress, 0, "scanned %lld of %lld letter(s), %s %lld",
                    (long long)r->scanned, (long long)total,
                    r->o->dry_run ? "would redrive" : "redriven", (long long)r->redriven);
    if (!m) {
      if (++idle_polls * 500 > DW_OPS_TIMEOUT_MS) {
        fprintf(stderr, "delivery-worker redrive: no records for %d s with %zu partition(s) "
                "not read to their end: check kafka.brokers, kafka.properties and the ACLs "
                "(Read on %s)\n", DW_OPS_TIMEOUT_MS / 1000, parts_left(r), r->dlq_topic);
        return -1;
      }
      continue;
    }
    idle_polls = 0;
    struct part *p = part_of(r, m->partition);
    int rc = 0;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      /* At the end of what is readable: with read_committed an open or aborted transaction
       * can keep that below the high watermark. */
      if (p)
        p->done = 1;
    } else if (m->err) {
      fprintf(stderr, "delivery-worker redrive: reading %s failed: %s\n", r->dlq_topic,
              rd_kafka_message_errstr(m));
      rc = -1;
    } else if (p && !p->done && m->offset < p->end) {
      rc = handle_letter(r, m);
      p->next = m->offset + 1;
      p->done = p->next >= p->end;
    } else if (p) { /* a letter newer than the start: the next run takes it */
      p->done = 1;
    }
    rd_kafka_message_destroy(m);
    if (rc < 0)
      return -1;
  }
  dw_ops_progress(&r->progress, 1, "scanned %lld letter(s), %s %lld", (long long)r->scanned,
                  r->o->dry_run ? "would redrive" : "redriven", (long long)r->redriven);
  return 0;
}

/* ---- positions ---- */

/* Finds the partitions of the dead-letter topic and where each scan starts and ends. */
static int plan_parts(struct redrive *r)
{
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->consumer, r->dlq_topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata(r->consumer, 0, rkt, &md, DW_OPS_TIMEOUT_MS);
  int rc = -1;
  if (!err && (md->topic_cnt != 1 || md->topics[0].err))
    err = md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
  if (err) {
    fprintf(stderr, "delivery-worker redrive: topic %s: %s: check kafka.dlq_topic, "
            "kafka.brokers and kafka.properties\n", r->dlq_topic, rd_kafka_err2str(err));
    goto out;
  }
  r->part_count = (size_t)md->topics[0].partition_cnt;
  r->parts = calloc(r->part_count ? r->part_count : 1, sizeof(*r->parts));
  if (!r->parts)
    goto out;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->part_count);
  for (size_t i = 0; i < r->part_count; i++) {
    struct part *p = &r->parts[i];
    p->partition = md->topics[0].partitions[i].id;
    rd_kafka_topic_partition_list_add(l, r->dlq_topic, p->partition);
    err = rd_kafka_query_watermark_offsets(r->consumer, r->dlq_topic, p->partition, &p->start,
                                           &p->end, DW_OPS_TIMEOUT_MS);
    if (err)
      break;
  }
  if (!err && !r->o->from_beginning)
    err = rd_kafka_committed(r->consumer, l, DW_OPS_TIMEOUT_MS);
  for (size_t i = 0; !err && !r->o->from_beginning && i < r->part_count; i++) {
    struct part *p = &r->parts[i];
    /* The last run's position, unless the records there have been deleted since. */
    if (l->elems[i].offset > p->start)
      p->start = DW_MIN(l->elems[i].offset, p->end);
  }
  for (size_t i = 0; !err && i < r->part_count; i++) {
    r->parts[i].next = r->parts[i].start;
    r->parts[i].done = r->parts[i].start >= r->parts[i].end;
    l->elems[i].offset = r->parts[i].start;
  }
  if (err)
    fprintf(stderr, "delivery-worker redrive: cannot read the offsets of %s: %s\n", r->dlq_topic,
            rd_kafka_err2str(err));
  else if ((err = rd_kafka_assign(r->consumer, l)))
    fprintf(stderr, "delivery-worker redrive: cannot assign %s: %s\n", r->dlq_topic,
            rd_kafka_err2str(err));
  rd_kafka_topic_partition_list_destroy(l);
  rc = err ? -1 : 0;
out:
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return rc;
}

/* Records where this run ended, so the next run starts there. */
static int commit_position(struct redrive *r, const char *group)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->part_count);
  for (size_t i = 0; i < r->part_count; i++)
    if (r->parts[i].next > 0)
      rd_kafka_topic_partition_list_add(l, r->dlq_topic, r->parts[i].partition)->offset =
          r->parts[i].next;
  rd_kafka_resp_err_t err = l->cnt ? rd_kafka_commit(r->consumer, l, 0) : 0;
  rd_kafka_topic_partition_list_destroy(l);
  if (err)
    fprintf(stderr, "delivery-worker redrive: every letter was delivered, but the position "
            "could not be saved in group %s: %s. The next run would redrive these letters "
            "again: pass --since to exclude them.\n", group, rd_kafka_err2str(err));
  return err ? -1 : 0;
}

/* Waits for every delivery report. Returns 0 when all were delivered. */
static int drain_producer(struct redrive *r)
{
  while (rd_kafka_outq_len(r->producer) > 0) {
    rd_kafka_poll(r->producer, 100);
    dw_ops_progress(&r->progress, 0, "waiting for %d record(s) to be acknowledged",
                    rd_kafka_outq_len(r->producer));
  }
  if (r->failed) {
    fprintf(stderr, "delivery-worker redrive: %lld of %lld record(s) were not delivered to %s "
            "(first error: %s); the position was not saved, so running redrive again retries "
            "them (some may then arrive twice: results are keyed by task id)\n",
            (long long)r->failed, (long long)r->redriven, r->to_topic, r->first_error);
    return -1;
  }
  return 0;
}

/* ---- the command ---- */

static void print_summary(const struct redrive *r, const char *group)
{
  const char *verb = r->o->dry_run ? "would redrive" : "redriven";
  printf("redrive from %s to %s%s\n", r->dlq_topic, r->to_topic, r->o->dry_run ? " (dry run)" : "");
  printf("scanned: %lld\n", (long long)r->scanned);
  printf("matched: %lld\n", (long long)r->matched);
  printf("%s: %lld\n", verb, (long long)r->redriven);
  printf("skipped by filter: %lld\n", (long long)r->filtered);
  printf("exhausted: %lld (redriven --max-redrives=%lld times already; left alone)\n",
         (long long)r->exhausted, (long long)r->o->filter.max_redrives);
  if (r->incomplete)
    printf("incomplete: %lld (the dead letter lost its key, value or original headers: see "
           "dlq.key_omitted, dlq.value_omitted, dlq.headers_omitted; left alone)\n",
           (long long)r->incomplete);
  printf("by reason:\n");
  size_t n = r->reason_count + (r->reasons[MAX_REASONS].scanned > 0);
  for (size_t i = 0; i < n; i++) {
    const struct reason_count *c = &r->reasons[i < r->reason_count ? i : MAX_REASONS];
    printf("  %-20s scanned %lld, %s %lld, exhausted %lld, skipped by filter %lld",
           c->reason, (long long)c->scanned, verb, (long long)c->redriven,
           (long long)c->exhausted, (long long)c->filtered);
    if (c->incomplete)
      printf(", incomplete %lld", (long long)c->incomplete);
    putchar('\n');
  }
  if (r->o->dry_run)
    printf("dry run: nothing produced, position not saved\n");
  else
    printf("position saved in group %s: the next run starts after these letters "
           "(--from-beginning rescans)\n", group);
}

static int redrive(struct redrive *r, const struct dw_config *cfg, const char *group)
{
  char err[1024];
  const char *cdefaults[] = {"group.id", group, "enable.auto.commit", "false",
                             "enable.auto.offset.store", "false", "enable.partition.eof", "true",
                             "auto.offset.reset", "earliest", NULL};
  r->consumer = dw_ops_kafka_new(cfg, 1, cdefaults, NULL, NULL, err, sizeof(err));
  if (r->consumer && !r->o->dry_run) {
    const char *pdefaults[] = {"enable.idempotence", "true", NULL};
    r->producer = dw_ops_kafka_new(cfg, 0, pdefaults, producer_setup, r, err, sizeof(err));
  }
  if (!r->consumer || (!r->o->dry_run && !r->producer)) {
    fprintf(stderr, "delivery-worker redrive: %s\n", err);
    return DW_OPS_EXIT_FAIL;
  }
  if (plan_parts(r) < 0 || scan(r) < 0)
    goto fail;
  if (r->producer && drain_producer(r) < 0)
    goto fail;
  dw_ops_progress_done(&r->progress);
  if (!r->o->dry_run && commit_position(r, group) < 0) {
    print_summary(r, group);
    return DW_OPS_EXIT_FAIL;
  }
  print_summary(r, group);
  return DW_OPS_EXIT_OK;
fail:
  dw_ops_progress_done(&r->progress);
  if (r->producer) /* what was produced before the failure still gets its reports */
    rd_kafka_flush(r->producer, DW_OPS_TIMEOUT_MS);
  return DW_OPS_EXIT_FAIL;
}

int dw_redrive_main(int argc, char **argv)
{
  struct redrive_opts o;
  struct dw_config cfg;
  struct redrive *r = calloc(1, sizeof(*r));
  char *group = NULL;
  int rc;
  dw_config_init(&cfg);
  if (!r) {
    rc = DW_OPS_EXIT_FAIL;
    goto out;
  }
  if ((rc = parse_args(argc, argv, &o)) >= 0)
    goto out;
  rc = DW_OPS_EXIT_FAIL;
  if (dw_ops_load_config(&cfg, "redrive", o.config, &o.overrides) < 0)
    goto out;
  size_t glen = strlen(cfg.kafka.group_id) + sizeof(".redrive");
  if (!(group = malloc(glen)))
    goto out;
  snprintf(group, glen, "%s.redrive", cfg.kafka.group_id);
  r->o = &o;
  r->dlq_topic = cfg.kafka.dlq_topic;
  r->to_topic = o.to_topic ? o.to_topic : cfg.kafka.input_topic;
  dw_ops_progress_init(&r->progress);
  rc = redrive(r, &cfg, group);
out:
  if (r && r->consumer) {
    rd_kafka_consumer_close(r->consumer);
    rd_kafka_destroy(r->consumer);
  }
  if (r && r->producer)
    rd_kafka_destroy(r->producer);
  if (r)
    free(r->parts);
  free(r);
  free(group);
  dw_config_cleanup(&cfg);
  return rc;
}
