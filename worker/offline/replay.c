/* `delivery-worker replay`: re-processing a range of the input topic. Part of the Kafka
 * operations module (with ops.c and redrive.c; these, the Kafka modules and oidc.c are the only
 * code that sees rdkafka.h). It plans per partition where the group's committed offset goes
 * (timestamps are resolved with rd_kafka_offsets_for_times), refuses while the group has live members (their
 * own commits would overwrite ours, and the broker refuses anyway), and commits the new offsets
 * with AlterConsumerGroupOffsets and EMPTY commit metadata: the worker's metadata lists tasks
 * finished beyond the committed offset, which a restarted worker skips, and a replay must skip
 * nothing. Results are keyed by task id, so what is processed again is an idempotent upsert.
 *
 * The worker has no stop offset: a replayed partition is processed from its new offset to its
 * end. The "to" bound therefore selects partitions (those with no record in the range are left
 * as they are) and bounds the "in range" count; it does not stop the workers. */
#include "dw/replay.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/ops.h"

#define MAX_PARTITIONS 4096

struct replay_opts {
  const char *config;
  const char *group;   /* NULL: kafka.group_id */
  int64_t from_offset; /* -1 when --from-time is used */
  int64_t from_ms;
  int64_t to_offset;   /* -1: no bound */
  int64_t to_ms;
  int32_t partitions[MAX_PARTITIONS];
  size_t partition_count; /* 0: every partition */
  int dry_run;
  int force;
  struct dw_ops_overrides overrides; /* --set, -X */
};

/* The plan of one partition. */
struct plan {
  int32_t partition;
  int64_t low, high;  /* the partition's watermarks */
  int64_t committed;  /* the group's committed offset, < 0 if none */
  size_t metadata_len;
  int64_t from, to;   /* the range, resolved to offsets */
  int reset;          /* the committed offset moves to `from` */
  const char *note;   /* why not, when not */
};

void dw_replay_usage(FILE *out)
{
  fputs(
      "usage: delivery-worker replay -c FILE (--from-offset N | --from-time T)\n"
      "           [--to-offset N | --to-time T] [--partitions 0,2,5] [--group G]\n"
      "           [--dry-run] [--force]\n"
      "  Sets the group's committed offsets of kafka.input_topic back to the start of the range,\n"
      "  so the workers process those records again (results are keyed by task id: upserts).\n"
      "  T is RFC 3339 (2026-11-24T03:00:00Z) or milliseconds since the epoch; a time resolves\n"
      "  to the first record at or after it. A partition is reset only if it has records in\n"
      "  the range and its committed offset is beyond the start; the workers then process it\n"
      "  from there to its end (--to selects partitions and bounds the \"in range\" count, it\n"
      "  does not stop the workers). Offsets are committed with empty metadata, so nothing\n"
      "  in the range is skipped.\n"
      "  --group G    consumer group (default kafka.group_id)\n"
      "  --dry-run    print the plan per partition and change nothing\n"
      "  --force      try even if the group has live members (the broker still refuses to\n"
      "               change the offsets of a group with members)\n"
      "  --set group.key=value, -X name=value\n"
      "                     a config key, a librdkafka property: over file and environment\n"
      "  Exit codes: 0 done, 1 failure, 2 usage error, 3 refused: the group has live members.\n",
      out);
}

#define usage_error(...) dw_ops_usage_error("replay", dw_replay_usage, __VA_ARGS__)

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct replay_opts *o)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"from-offset", required_argument, NULL, 'f'},
      {"from-time", required_argument, NULL, 'F'}, {"to-offset", required_argument, NULL, 't'},
      {"to-time", required_argument, NULL, 'T'}, {"partitions", required_argument, NULL, 'p'},
      {"group", required_argument, NULL, 'g'}, {"dry-run", no_argument, NULL, 'n'},
      {"force", no_argument, NULL, 'x'}, {"help", no_argument, NULL, 'h'},
      {"set", required_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof(*o));
  o->from_offset = o->from_ms = o->to_offset = o->to_ms = -1;
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
    case 'g': o->group = optarg; break;
    case 'n': o->dry_run = 1; break;
    case 'x': o->force = 1; break;
    case 'h': dw_replay_usage(stdout); return DW_OPS_EXIT_OK;
    case 'f':
    case 't':
      if (dw_ops_parse_int64(optarg, 0, c == 'f' ? &o->from_offset : &o->to_offset) < 0)
        return usage_error("not an offset (a number >= 0): \"%s\"", optarg);
      break;
    case 'F':
    case 'T':
      if (dw_ops_parse_time(optarg, c == 'F' ? &o->from_ms : &o->to_ms) < 0)
        return usage_error("not a time (RFC 3339 with a zone, or epoch milliseconds): \"%s\"",
                           optarg);
      break;
    case 'p':
      if (dw_ops_parse_partitions(optarg, o->partitions, MAX_PARTITIONS, &o->partition_count))
        return usage_error("--partitions wants distinct numbers like 0,2,5: \"%s\"", optarg);
      break;
    default:
      return usage_error("unknown or incomplete option \"%s\"", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument \"%s\"", argv[optind]);
  if (!o->config)
    return usage_error("-c FILE is required");
  if ((o->from_offset >= 0) == (o->from_ms >= 0))
    return usage_error("give exactly one of --from-offset and --from-time");
  if (o->to_offset >= 0 && o->to_ms >= 0)
    return usage_error("give at most one of --to-offset and --to-time");
  if ((o->to_offset >= 0 && o->to_offset <= o->from_offset) ||
      (o->to_ms >= 0 && o->to_ms <= o->from_ms))
    return usage_error("the range is empty: --to must be after --from");
  return -1;
}

/* ---- the group ---- */

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
  char errstr[256];
  rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
  rd_kafka_AdminOptions_set_request_timeout(opts, DW_OPS_TIMEOUT_MS, errstr, sizeof(errstr));
  return opts;
}

/* Waits for an admin result on q; NULL (with the message printed) on timeout or error. */
static rd_kafka_event_t *admin_result(rd_kafka_queue_t *q, const char *what)
{
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, DW_OPS_TIMEOUT_MS + 5000);
  if (!ev) {
    fprintf(stderr, "delivery-worker replay: no answer to %s within %d s: check kafka.brokers "
            "and kafka.properties (TLS, SASL)\n", what, DW_OPS_TIMEOUT_MS / 1000);
    return NULL;
  }
  if (rd_kafka_event_error(ev)) {
    fprintf(stderr, "delivery-worker replay: %s failed: %s\n", what,
            rd_kafka_event_error_string(ev));
    rd_kafka_event_destroy(ev);
    return NULL;
  }
  return ev;
}

static void print_members(const rd_kafka_ConsumerGroupDescription_t *g, FILE *out)
{
  size_t n = rd_kafka_ConsumerGroupDescription_member_count(g);
  for (size_t i = 0; i < n; i++) {
    const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(g, i);
    const char *inst = rd_kafka_MemberDescription_group_instance_id(m);
    fprintf(out, "  member %s  client %s  host %s%s%s\n",
            rd_kafka_MemberDescription_consumer_id(m), rd_kafka_MemberDescription_client_id(m),
            rd_kafka_MemberDescription_host(m), inst ? "  instance " : "", inst ? inst : "");
  }
}

/* Describes the group: returns its live member count (printing them to stderr), or -1 when it
 * cannot be described (printed). */
static int describe_group(rd_kafka_t *rk, const char *group)
{
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opts = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
  const char *groups[] = {group};
  rd_kafka_DescribeConsumerGroups(rk, groups, 1, opts, q);
  rd_kafka_event_t *ev = admin_result(q, "describing the group");
  int members = -1;
  if (!ev)
    goto out;
  size_t n;
  const rd_kafka_ConsumerGroupDescription_t **gs =
      rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
  const rd_kafka_error_t *gerr = n == 1 ? rd_kafka_ConsumerGroupDescription_error(gs[0]) : NULL;
  if (n != 1 || gerr) {
    fprintf(stderr, "delivery-worker replay: cannot describe group %s: %s (the principal needs "
            "Describe on the group)\n", group, gerr ? rd_kafka_error_string(gerr) : "no answer");
    goto out;
  }
  members = (int)rd_kafka_ConsumerGroupDescription_member_count(gs[0]);
  if (members > 0) {
    fprintf(stderr, "group %s has %d live member(s) (state %s):\n", group, members,
            rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(gs[0])));
    print_members(gs[0], stderr);
  }
out:
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  return members;
}

/* ---- the plan ---- */

/* The input topic's partition count, or -1 (printed). */
static int topic_partition_count(rd_kafka_t *rk, const char *topic)
{
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, DW_OPS_TIMEOUT_MS);
  int n = -1;
  if (err)
    fprintf(stderr, "delivery-worker replay: cannot read the metadata of %s: %s: check "
            "kafka.brokers and kafka.properties\n", topic, rd_kafka_err2str(err));
  else if (md->topic_cnt != 1 || md->topics[0].err)
    fprintf(stderr, "delivery-worker replay: topic %s: %s: check kafka.input_topic\n", topic,
            rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
  else
    n = md->topics[0].partition_cnt;
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return n;
}

/* Resolves a time to an offset per plan: the first record at or after it, or the end. */
static int offsets_for_time(rd_kafka_t *rk, const char *topic, struct plan *p, size_t n,
                            int64_t ms, int64_t *out)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, p[i].partition)->offset = ms;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, DW_OPS_TIMEOUT_MS);
  for (size_t i = 0; !err && i < n; i++) {
    err = l->elems[i].err;
    out[i] = l->elems[i].offset >= 0 ? l->elems[i].offset : p[i].high;
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (err)
    fprintf(stderr, "delivery-worker replay: cannot look up offsets by time in %s: %s\n", topic,
            rd_kafka_err2str(err));
  return err ? -1 : 0;
}

static int read_committed(rd_kafka_t *rk, const char *topic, struct plan *p, size_t n)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++)
    rd_kafka_topic_partition_list_add(l, topic, p[i].partition);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk, l, DW_OPS_TIMEOUT_MS);
  for (size_t i = 0; !err && i < n; i++) {
    err = l->elems[i].err;
    p[i].committed = l->elems[i].offset;
    p[i].metadata_len = l->elems[i].metadata_size;
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (err)
    fprintf(stderr, "delivery-worker replay: cannot read the committed offsets: %s (the "
            "principal needs Describe on the group)\n", rd_kafka_err2str(err));
  return err ? -1 : 0;
}

/* Decides, per partition, whether and where its committed offset moves. */
static void decide(struct plan *p)
{
  p->from = DW_MAX(p->low, DW_MIN(p->from, p->high));
  p->to = DW_MAX(p->from, DW_MIN(p->to, p->high));
  if (p->committed < 0)
    p->note = "no committed offset: the workers start where auto.offset.reset says";
  else if (p->to <= p->from)
    p->note = "no records in the range";
  else if (p->committed <= p->from && p->metadata_len == 0)
    p->note = "not processed that far yet: nothing to reprocess";
  else if (p->committed <= p->from) {
    /* Tasks finished beyond the committed offset would be skipped: the offset stays where it
     * is (moving it to `from` would skip records never processed), the map is cleared. */
    p->from = p->committed;
    p->reset = 1;
  } else
    p->reset = 1;
}

static int make_plan(rd_kafka_t *rk, const struct replay_opts *o, const char *topic,
                     struct plan *p, size_t n)
{
  int64_t *tmp = calloc(n, sizeof(*tmp));
  int rc = -1;
  if (!tmp)
    goto out;
  for (size_t i = 0; i < n; i++) {
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, p[i].partition,
                                                               &p[i].low, &p[i].high,
                                                               DW_OPS_TIMEOUT_MS);
    if (err) {
      fprintf(stderr, "delivery-worker replay: cannot read the offsets of %s [%d]: %s\n", topic,
              (int)p[i].partition, rd_kafka_err2str(err));
      goto out;
    }
    p[i].from = o->from_offset;
    p[i].to = o->to_offset >= 0 ? o->to_offset : p[i].high;
  }
  if (o->from_ms >= 0) {
    if (offsets_for_time(rk, topic, p, n, o->from_ms, tmp) < 0)
      goto out;
    for (size_t i = 0; i < n; i++)
      p[i].from = tmp[i];
  }
  if (o->to_ms >= 0) {
    if (offsets_for_time(rk, topic, p, n, o->to_ms, tmp) < 0)
      goto out;
    for (size_t i = 0; i < n; i++)
      p[i].to = tmp[i];
  }
  if (read_committed(rk, topic, p, n) < 0)
    goto out;
  for (size_t i = 0; i < n; i++)
    decide(&p[i]);
  rc = 0;
out:
  free(tmp);
  return rc;
}

static void print_plan(const struct replay_opts *o, const char *group, const char *topic,
                       const struct plan *p, size_t n)
{
  char from[32], to[32];
  if (o->from_ms >= 0)
    dw_rfc3339(o->from_ms, from, sizeof(from));
  else
    snprintf(from, sizeof(from), "offset %lld", (long long)o->from_offset);
  if (o->to_ms >= 0)
    dw_rfc3339(o->to_ms, to, sizeof(to));
  else if (o->to_offset >= 0)
    snprintf(to, sizeof(to), "offset %lld", (long long)o->to_offset);
  else
    dw_strlcpy(to, "the end", sizeof(to));
  printf("replay of %s for group %s, from %s to %s%s\n", topic, group, from, to,
         o->dry_run ? " (dry run)" : "");
  printf("%9s %10s %10s %10s %9s %11s  %s\n", "partition", "committed", "new", "end",
         "in range", "reprocessed", "note");
  int64_t total = 0, in_range = 0;
  size_t resets = 0;
  for (size_t i = 0; i < n; i++) {
    const struct plan *q = &p[i];
    char committed[24];
    if (q->committed >= 0)
      snprintf(committed, sizeof(committed), "%lld", (long long)q->committed);
    else
      dw_strlcpy(committed, "none", sizeof(committed));
    int64_t rng = q->reset ? q->to - q->from : 0, again = q->reset ? q->committed - q->from : 0;
    printf("%9d %10s %10lld %10lld %9lld %11lld  %s%s\n", (int)q->partition, committed,
           (long long)(q->reset ? q->from : q->committed), (long long)q->high, (long long)rng,
           (long long)again, q->reset ? "reset" : "left as is: ", q->reset ? "" : q->note);
    if (q->reset && q->metadata_len)
      printf("%9s commit metadata (%zu bytes: tasks finished beyond the offset) is cleared\n",
             "", q->metadata_len);
    total += again;
    in_range += rng;
    resets += q->reset != 0;
  }
  printf("total: %zu partition(s) reset, %lld record(s) in range, %lld record(s) reprocessed\n",
         resets, (long long)in_range, (long long)total);
}

/* ---- the commit ---- */

static int refused_error(rd_kafka_resp_err_t err)
{
  return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
         err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
         err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

/* Commits the new offsets with empty metadata. Returns an exit code. */
static int commit_plan(rd_kafka_t *rk, const char *group, const char *topic,
                       const struct plan *p, size_t n)
{
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
  for (size_t i = 0; i < n; i++)
    if (p[i].reset) /* metadata stays NULL: an empty string on the wire */
      rd_kafka_topic_partition_list_add(l, topic, p[i].partition)->offset = p[i].from;
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *opts = admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
  rd_kafka_AlterConsumerGroupOffsets_t *alter = rd_kafka_AlterConsumerGroupOffsets_new(group, l);
  rd_kafka_AlterConsumerGroupOffsets(rk, &alter, 1, opts, q);
  rd_kafka_event_t *ev = admin_result(q, "committing the new offsets");
  int rc = DW_OPS_EXIT_FAIL;
  if (!ev)
    goto out;
  size_t cnt;
  const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
      rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &cnt);
  const rd_kafka_error_t *gerr = cnt == 1 ? rd_kafka_group_result_error(gr[0]) : NULL;
  rd_kafka_resp_err_t err = gerr ? rd_kafka_error_code(gerr) : RD_KAFKA_RESP_ERR_NO_ERROR;
  const rd_kafka_topic_partition_list_t *res = cnt == 1 ? rd_kafka_group_result_partitions(gr[0]) : NULL;
  for (int i = 0; !err && res && i < res->cnt; i++)
    err = res->elems[i].err;
  if (cnt != 1) {
    fprintf(stderr, "delivery-worker replay: no answer for group %s\n", group);
  } else if (refused_error(err)) {
    fprintf(stderr, "delivery-worker replay: the broker refused to change the offsets: %s. "
            "The group has live members: stop the workers first (scale to 0), wait until "
            "the group is empty, and run replay again.\n", rd_kafka_err2str(err));
    rc = DW_OPS_EXIT_REFUSED;
  } else if (err) {
    fprintf(stderr, "delivery-worker replay: committing the new offsets failed: %s (the "
            "principal needs Read on the group and Describe on the topic)\n", rd_kafka_err2str(err));
  } else {
    printf("committed the new offsets of %d partition(s) for group %s; start the workers: "
           "they process each reset partition from its new offset to its end\n", l->cnt, group);
    rc = DW_OPS_EXIT_OK;
  }
out:
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_AlterConsumerGroupOffsets_destroy(alter);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_topic_partition_list_destroy(l);
  return rc;
}

/* ---- the command ---- */

/* Fills the plans' partitions (all, or the chosen ones after checking they exist). */
static int choose_partitions(const struct replay_opts *o, int count, struct plan *p, size_t *n)
{
  *n = o->partition_count ? o->partition_count : (size_t)count;
  for (size_t i = 0; i < *n; i++) {
    p[i].partition = o->partition_count ? o->partitions[i] : (int32_t)i;
    if (p[i].partition >= count) {
      fprintf(stderr, "delivery-worker replay: partition %d does not exist (the topic has %d)\n",
              (int)p[i].partition, count);
      return -1;
    }
  }
  return 0;
}

static int replay(const struct replay_opts *o, const struct dw_config *cfg, rd_kafka_t *rk)
{
  const char *group = o->group ? o->group : cfg->kafka.group_id;
  const char *topic = cfg->kafka.input_topic;
  int members = describe_group(rk, group);
  if (members < 0 && !o->force)
    return DW_OPS_EXIT_FAIL;
  if (members > 0 && !o->force && !o->dry_run) {
    fprintf(stderr, "delivery-worker replay: refused: workers of group %s are running and "
            "would overwrite the offsets. Stop the workers first (scale to 0) or pass --force.\n",
            group);
    return DW_OPS_EXIT_REFUSED;
  }
  int count = topic_partition_count(rk, topic);
  if (count <= 0)
    return DW_OPS_EXIT_FAIL;
  struct plan *p = calloc((size_t)count > MAX_PARTITIONS ? (size_t)count : MAX_PARTITIONS,
                          sizeof(*p));
  size_t n = 0;
  int rc = DW_OPS_EXIT_FAIL;
  if (!p || choose_partitions(o, count, p, &n) < 0 || make_plan(rk, o, topic, p, n) < 0)
    goto out;
  print_plan(o, group, topic, p, n);
  size_t resets = 0;
  for (size_t i = 0; i < n; i++)
    resets += p[i].reset != 0;
  if (o->dry_run) {
    printf("dry run: nothing changed%s\n", members > 0 ? "; a real run would be refused now: "
           "the group has live members (stop the workers first)" : "");
    rc = DW_OPS_EXIT_OK;
  } else if (resets == 0) {
    printf("nothing to replay: no offsets changed\n");
    rc = DW_OPS_EXIT_OK;
  } else {
    if (members > 0)
      fprintf(stderr, "delivery-worker replay: --force: trying although the group has live "
              "members\n");
    rc = commit_plan(rk, group, topic, p, n);
  }
out:
  free(p);
  return rc;
}

int dw_replay_main(int argc, char **argv)
{
  struct replay_opts *o = malloc(sizeof(*o));
  struct dw_config cfg;
  rd_kafka_t *rk = NULL;
  char err[1024];
  int rc;
  dw_config_init(&cfg);
  if (!o) {
    rc = DW_OPS_EXIT_FAIL;
    goto out;
  }
  if ((rc = parse_args(argc, argv, o)) >= 0)
    goto out;
  rc = DW_OPS_EXIT_FAIL;
  if (dw_ops_load_config(&cfg, "replay", o->config, &o->overrides) < 0)
    goto out;
  /* A consumer of the group that never subscribes: it reads offsets, it never joins. */
  const char *defaults[] = {"group.id", o->group ? o->group : cfg.kafka.group_id,
                            "enable.auto.commit", "false", NULL};
  rk = dw_ops_kafka_new(&cfg, 1, defaults, NULL, NULL, err, sizeof(err));
  if (!rk) {
    fprintf(stderr, "delivery-worker replay: %s\n", err);
    goto out;
  }
  rc = replay(o, &cfg, rk);
out:
  if (rk)
    rd_kafka_destroy(rk);
  dw_config_cleanup(&cfg);
  free(o);
  return rc;
}
