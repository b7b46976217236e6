/* The metrics registry behind /metrics. The worker registers its counters, gauges and
 * histograms once at startup and keeps the pointers; updates on the loop are a label lookup
 * and an add. A labelled metric preallocates room for DW_METRICS_MAX_LABEL_VALUES values plus
 * "other", so the only allocation after startup is the copy of a label value seen for the first
 * time (and a labelled histogram's buckets for it), and a misbehaving label source (an API
 * returning ever new codes) cannot grow memory or the scrape without bound. Series read from a
 * callback at render time are capped per render the same way. Rendering writes the text exposition format 0.0.4 into one
 * capped buffer; no I/O happens here. */
#include "dw/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"

#define MAX_NAME_LEN 128

enum kind {
  KIND_COUNTER,
  KIND_GAUGE,
  KIND_GAUGE_FN,
  KIND_HISTOGRAM,
  KIND_COUNTER_FN,
  KIND_GAUGE_VEC_FN,
  KIND_INFO,
};

struct series {
  char *label_value; /* NULL for the one series of an unlabelled metric */
  double value;
  /* Histograms: nbounds + 1 counts, not cumulative; the last is (bounds[n-1], +Inf). */
  uint64_t *buckets;
  double sum;
  uint64_t count;
};

struct dw_metrics_sink {
  struct buf *out;              /* rendering: sample lines go here */
  const struct dw_metric *m;
  size_t n;                     /* series listed so far */
  const char *want;             /* dw_metrics_value: the label value looked for */
  double found;
};

struct dw_metric {
  enum kind kind;
  char *name;
  char *help;       /* NULL = no HELP line */
  char *label_name; /* NULL = unlabelled */
  struct series *series;
  size_t nseries; /* unlabelled: always 1; labelled: up to DW_METRICS_MAX_LABEL_VALUES + 1 */
  double (*fn)(void *arg);
  void (*vec_fn)(void *arg, struct dw_metrics_sink *sink);
  void *fn_arg;
  double *bounds; /* histogram upper bounds, strictly increasing */
  size_t nbounds;
  char *info_labels; /* an info metric's labels as rendered: a="x",b="y" */
  struct dw_metric *next;
};

struct dw_metrics {
  struct dw_metric *head, *tail;
};

/* A growing output buffer with a cap; the first failure sticks. */
struct buf {
  char *p;
  size_t len, cap;
  int err;
};

static const char *const type_names[] = {
    [KIND_COUNTER] = "counter",
    [KIND_GAUGE] = "gauge",
    [KIND_GAUGE_FN] = "gauge",
    [KIND_HISTOGRAM] = "histogram",
    [KIND_COUNTER_FN] = "counter",
    [KIND_GAUGE_VEC_FN] = "gauge",
    [KIND_INFO] = "gauge",
};

static const char *const histogram_suffixes[] = {"_bucket", "_sum", "_count"};

struct dw_metrics *dw_metrics_new(void)
{
  return calloc(1, sizeof(struct dw_metrics));
}

static void metric_free(struct dw_metric *m)
{
  if (!m)
    return;
  if (m->series)
    for (size_t i = 0; i < m->nseries; i++) {
      free(m->series[i].label_value);
      free(m->series[i].buckets);
    }
  free(m->series);
  free(m->name);
  free(m->help);
  free(m->label_name);
  free(m->bounds);
  free(m->info_labels);
  free(m);
}

void dw_metrics_free(struct dw_metrics *reg)
{
  if (!reg)
    return;
  struct dw_metric *m = reg->head;
  while (m) {
    struct dw_metric *next = m->next;
    metric_free(m);
    m = next;
  }
  free(reg);
}

static char *dup_bounded(const char *s, size_t max)
{
  size_t n = strnlen(s, max + 1);
  if (n > max)
    return NULL;
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; label names allow no ':' and no "__" prefix. */
static int valid_name(const char *s, int label)
{
  size_t n = strnlen(s, MAX_NAME_LEN + 1);
  if (n == 0 || n > MAX_NAME_LEN)
    return 0;
  if (label && (strncmp(s, "__", 2) == 0 || strcmp(s, "le") == 0))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
             (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok)
      return 0;
  }
  return 1;
}

static int has_suffix(const char *s, const char *suffix)
{
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* Whether rendering m produces sample lines named name. */
static int metric_owns_name(const struct dw_metric *m, const char *name)
{
  if (strcmp(m->name, name) == 0)
    return 1;
  if (m->kind != KIND_HISTOGRAM)
    return 0;
  size_t n = strlen(m->name);
  if (strncmp(name, m->name, n) != 0)
    return 0;
  for (size_t i = 0; i < DW_ARRAY_SIZE(histogram_suffixes); i++)
    if (strcmp(name + n, histogram_suffixes[i]) == 0)
      return 1;
  return 0;
}

static struct dw_metric *find_owner(const struct dw_metrics *reg, const char *name)
{
  for (struct dw_metric *m = reg->head; m; m = m->next)
    if (metric_owns_name(m, name))
      return m;
  return NULL;
}

/* A new name must not clash with the names of existing series, nor (for a histogram) its
 * _bucket/_sum/_count names. */
static int name_taken(const struct dw_metrics *reg, const char *name, enum kind kind)
{
  if (find_owner(reg, name))
    return 1;
  if (kind != KIND_HISTOGRAM)
    return 0;
  size_t n = strlen(name);
  for (const struct dw_metric *m = reg->head; m; m = m->next)
    for (size_t i = 0; i < DW_ARRAY_SIZE(histogram_suffixes); i++)
      if (strncmp(m->name, name, n) == 0 && strcmp(m->name + n, histogram_suffixes[i]) == 0)
        return 1;
  return 0;
}

/* Creates and links a metric; the caller fills in what is specific to its kind. */
static struct dw_metric *metric_add(struct dw_metrics *reg, enum kind kind, const char *name,
                                    const char *help, const char *label_name)
{
  struct dw_metric *m = NULL;
  if (!reg || !name || !valid_name(name, 0) || name_taken(reg, name, kind))
    return NULL;
  if ((kind == KIND_COUNTER || kind == KIND_COUNTER_FN) && !has_suffix(name, "_total"))
    return NULL;
  if (label_name && !valid_name(label_name, 1))
    return NULL;
  m = calloc(1, sizeof(*m));
  if (!m)
    goto fail;
  m->kind = kind;
  m->name = dup_bounded(name, MAX_NAME_LEN);
  if (!m->name)
    goto fail;
  if (help && help[0]) {
    m->help = strdup(help);
    if (!m->help)
      goto fail;
  }
  if (label_name) {
    m->label_name = dup_bounded(label_name, MAX_NAME_LEN);
    if (!m->label_name)
      goto fail;
  }
  if (kind == KIND_COUNTER || kind == KIND_GAUGE || kind == KIND_HISTOGRAM) {
    if (label_name) {
      /* Room for every value and "other": no reallocation, series never move. */
      m->series = calloc(DW_METRICS_MAX_LABEL_VALUES + 1, sizeof(*m->series));
    } else {
      m->series = calloc(1, sizeof(*m->series));
      m->nseries = 1;
    }
    if (!m->series)
      goto fail;
  }
  if (reg->tail)
    reg->tail->next = m;
  else
    reg->head = m;
  reg->tail = m;
  return m;
fail:
  metric_free(m);
  return NULL;
}

struct dw_metric *dw_metrics_counter(struct dw_metrics *reg, const char *name, const char *help,
                                     const char *label_name)
{
  return metric_add(reg, KIND_COUNTER, name, help, label_name);
}

struct dw_metric *dw_metrics_gauge(struct dw_metrics *reg, const char *name, const char *help,
                                   const char *label_name)
{
  return metric_add(reg, KIND_GAUGE, name, help, label_name);
}

/* A metric whose one value fn(arg) gives at scrape time. */
static struct dw_metric *fn_add(struct dw_metrics *reg, enum kind kind, const char *name,
                                const char *help, double (*fn)(void *arg), void *arg)
{
  if (!fn)
    return NULL;
  struct dw_metric *m = metric_add(reg, kind, name, help, NULL);
  if (m) {
    m->fn = fn;
    m->fn_arg = arg;
  }
  return m;
}

struct dw_metric *dw_metrics_gauge_fn(struct dw_metrics *reg, const char *name, const char *help,
                                      double (*fn)(void *arg), void *arg)
{
  return fn_add(reg, KIND_GAUGE_FN, name, help, fn, arg);
}

static int valid_bounds(const double *bounds, size_t n)
{
  if (n > DW_METRICS_MAX_BUCKETS || (n > 0 && !bounds))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
      return 0;
  return 1;
}

static struct dw_metric *histogram_add(struct dw_metrics *reg, const char *name,
                                       const char *help, const char *label_name,
                                       const double *bounds, size_t n)
{
  if (n > 0 && bounds && isinf(bounds[n - 1]) && bounds[n - 1] > 0)
    n--; /* +Inf is implicit */
  if (!valid_bounds(bounds, n))
    return NULL;
  /* Allocate before linking so a failure leaves the registry unchanged. */
  double *b = n ? malloc(n * sizeof(*b)) : NULL;
  uint64_t *counts = label_name ? NULL : calloc(n + 1, sizeof(*counts));
  struct dw_metric *m = NULL;
  if ((n && !b) || (!label_name && !counts))
    goto fail;
  m = metric_add(reg, KIND_HISTOGRAM, name, help, label_name);
  if (!m)
    goto fail;
  if (n)
    memcpy(b, bounds, n * sizeof(*b));
  m->bounds = b;
  m->nbounds = n;
  if (!label_name)
    m->series[0].buckets = counts;
  return m;
fail:
  free(b);
  free(counts);
  return NULL;
}

struct dw_metric *dw_metrics_histogram(struct dw_metrics *reg, const char *name,
                                       const char *help, const double *bounds, size_t n)
{
  return histogram_add(reg, name, help, NULL, bounds, n);
}

struct dw_metric *dw_metrics_histogram_labelled(struct dw_metrics *reg, const char *name,
                                                const char *help, const char *label_name,
                                                const double *bounds, size_t n)
{
  if (!label_name)
    return NULL;
  return histogram_add(reg, name, help, label_name, bounds, n);
}

struct dw_metric *dw_metrics_counter_fn(struct dw_metrics *reg, const char *name,
                                        const char *help, double (*fn)(void *arg), void *arg)
{
  return fn_add(reg, KIND_COUNTER_FN, name, help, fn, arg);
}

struct dw_metric *dw_metrics_gauge_vec_fn(struct dw_metrics *reg, const char *name,
                                          const char *help, const char *label_name,
                                          void (*fn)(void *arg, struct dw_metrics_sink *sink),
                                          void *arg)
{
  if (!fn || !label_name)
    return NULL;
  struct dw_metric *m = metric_add(reg, KIND_GAUGE_VEC_FN, name, help, label_name);
  if (m) {
    m->vec_fn = fn;
    m->fn_arg = arg;
  }
  return m;
}

static void buf_add(struct buf *b, const char *s, size_t n);
static void buf_str(struct buf *b, const char *s);
static void buf_escaped(struct buf *b, const char *s, int label);

struct dw_metric *dw_metrics_info(struct dw_metrics *reg, const char *name, const char *help,
                                  const char *const *pairs, size_t n)
{
  struct buf labels = {0};
  if (n == 0 || n > DW_METRICS_MAX_INFO_LABELS || !pairs)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *label = pairs[2 * i], *value = pairs[2 * i + 1];
    if (!label || !valid_name(label, 1)) {
      free(labels.p);
      return NULL;
    }
    if (i > 0)
      buf_str(&labels, ",");
    buf_str(&labels, label);
    buf_str(&labels, "=\"");
    buf_escaped(&labels, value ? value : "", 1);
    buf_str(&labels, "\"");
  }
  struct dw_metric *m = labels.err ? NULL : metric_add(reg, KIND_INFO, name, help, NULL);
  if (!m) {
    free(labels.p);
    return NULL;
  }
  m->info_labels = labels.p;
  return m;
}

static struct series *series_find(struct dw_metric *m, const char *value)
{
  for (size_t i = 0; i < m->nseries; i++)
    if (strcmp(m->series[i].label_value, value) == 0)
      return &m->series[i];
  return NULL;
}

/* The series of a label value, created on first use; NULL only when memory ran out. */
static struct series *series_get(struct dw_metric *m, const char *value)
{
  if (!m->label_name)
    return &m->series[0];
  if (!value)
    value = "";
  struct series *s = series_find(m, value);
  if (s)
    return s;
  if (m->nseries >= DW_METRICS_MAX_LABEL_VALUES ||
      strnlen(value, DW_METRICS_MAX_LABEL_LEN + 1) > DW_METRICS_MAX_LABEL_LEN) {
    value = DW_METRICS_OTHER;
    s = series_find(m, value);
    if (s)
      return s;
  }
  /* nseries <= DW_METRICS_MAX_LABEL_VALUES here: the array has one more slot, for "other". */
  uint64_t *counts = NULL;
  if (m->kind == KIND_HISTOGRAM) {
    counts = calloc(m->nbounds + 1, sizeof(*counts));
    if (!counts)
      return NULL;
  }
  char *copy = strdup(value);
  if (!copy) {
    free(counts);
    return NULL;
  }
  s = &m->series[m->nseries++];
  s->label_value = copy;
  s->value = 0;
  s->buckets = counts;
  return s;
}

void dw_metric_inc(struct dw_metric *m, const char *label_value, double by)
{
  if (!m || (m->kind != KIND_COUNTER && m->kind != KIND_GAUGE))
    return;
  if (m->kind == KIND_COUNTER && !(by >= 0))
    return; /* counters only go up (this also drops NaN) */
  struct series *s = series_get(m, label_value);
  if (s)
    s->value += by;
}

void dw_metric_set(struct dw_metric *m, const char *label_value, double value)
{
  if (!m || m->kind != KIND_GAUGE)
    return;
  struct series *s = series_get(m, label_value);
  if (s)
    s->value = value;
}

void dw_metric_observe_label(struct dw_metric *m, const char *label_value, double value)
{
  if (!m || m->kind != KIND_HISTOGRAM)
    return;
  struct series *s = series_get(m, label_value);
  if (!s)
    return;
  /* Bucket i counts bounds[i-1] < v <= bounds[i]; NaN fails every comparison and lands in
   * +Inf, as in the Prometheus client libraries. Binary search for the first bound >= v. */
  size_t lo = 0, hi = m->nbounds;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (value <= m->bounds[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  if (isnan(value))
    lo = m->nbounds;
  s->buckets[lo]++;
  s->count++;
  s->sum += value;
}

void dw_metric_observe(struct dw_metric *m, double value)
{
  dw_metric_observe_label(m, NULL, value);
}

/* Shortest of %.15g and %.17g that reads back as the same double; Prometheus spellings of the
 * special values. */
static void format_double(double v, char *out, size_t size)
{
  if (isnan(v)) {
    dw_strlcpy(out, "NaN", size);
  } else if (isinf(v)) {
    dw_strlcpy(out, v > 0 ? "+Inf" : "-Inf", size);
  } else {
    snprintf(out, size, "%.15g", v);
    if (strtod(out, NULL) != v)
      snprintf(out, size, "%.17g", v);
  }
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
  if (b->err)
    return;
  if (b->len + n + 1 > b->cap) {
    if (b->len + n + 1 > DW_METRICS_MAX_RENDER_BYTES) {
      b->err = DW_ERANGE;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    if (cap > DW_METRICS_MAX_RENDER_BYTES)
      cap = DW_METRICS_MAX_RENDER_BYTES;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->err = DW_ENOMEM;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
  buf_add(b, s, strlen(s));
}

/* HELP text escapes '\' and newline; label values also '"'. */
static void buf_escaped(struct buf *b, const char *s, int label)
{
  const char *run = s;
  for (; *s; s++) {
    const char *esc = NULL;
    if (*s == '\\')
      esc = "\\\\";
    else if (*s == '\n')
      esc = "\\n";
    else if (label && *s == '"')
      esc = "\\\"";
    if (esc) {
      buf_add(b, run, (size_t)(s - run));
      buf_str(b, esc);
      run = s + 1;
    }
  }
  buf_add(b, run, (size_t)(s - run));
}

static void buf_double(struct buf *b, double v)
{
  char num[40];
  format_double(v, num, sizeof(num));
  buf_str(b, num);
}

static void buf_u64(struct buf *b, uint64_t v)
{
  char num[24];
  snprintf(num, sizeof(num), "%" PRIu64, v);
  buf_str(b, num);
}

/* One sample line's start: name[suffix][{label="value"[,le="x"]}] and a space. */
static void buf_sample_start2(struct buf *b, const char *name, const char *suffix,
                              const char *label, const char *value, const char *le)
{
  buf_str(b, name);
  if (suffix)
    buf_str(b, suffix);
  if (label || le) {
    buf_str(b, "{");
    if (label) {
      buf_str(b, label);
      buf_str(b, "=\"");
      buf_escaped(b, value ? value : "", 1);
      buf_str(b, "\"");
    }
    if (label && le)
      buf_str(b, ",");
    if (le) {
      buf_str(b, "le=\"");
      buf_str(b, le);
      buf_str(b, "\"");
    }
    buf_str(b, "}");
  }
  buf_str(b, " ");
}

/* One sample line: name[suffix][{label="value"}] value */
static void buf_sample_start(struct buf *b, const char *name, const char *suffix,
                             const char *label, const char *value)
{
  buf_sample_start2(b, name, suffix, label, value, NULL);
}

void dw_metrics_sink_add(struct dw_metrics_sink *sink, const char *label_value, double value)
{
  if (!sink || sink->n >= DW_METRICS_MAX_FN_SERIES)
    return;
  sink->n++;
  if (!sink->out) {
    if (isnan(sink->found) && strcmp(label_value ? label_value : "", sink->want) == 0)
      sink->found = value;
    return;
  }
  buf_sample_start(sink->out, sink->m->name, NULL, sink->m->label_name, label_value);
  buf_double(sink->out, value);
  buf_str(sink->out, "\n");
}

static void render_histogram(struct buf *b, const struct dw_metric *m, const struct series *s)
{
  uint64_t cumulative = 0;
  char le[40];
  for (size_t i = 0; i <= m->nbounds; i++) {
    cumulative += s->buckets[i];
    if (i < m->nbounds)
      format_double(m->bounds[i], le, sizeof(le));
    else
      dw_strlcpy(le, "+Inf", sizeof(le));
    buf_sample_start2(b, m->name, "_bucket", m->label_name, s->label_value, le);
    buf_u64(b, cumulative);
    buf_str(b, "\n");
  }
  buf_sample_start(b, m->name, "_sum", m->label_name, s->label_value);
  buf_double(b, s->sum);
  buf_str(b, "\n");
  buf_sample_start(b, m->name, "_count", m->label_name, s->label_value);
  buf_u64(b, s->count);
  buf_str(b, "\n");
}

static void render_metric(struct buf *b, const struct dw_metric *m)
{
  if (m->help) {
    buf_str(b, "# HELP ");
    buf_str(b, m->name);
    buf_str(b, " ");
    buf_escaped(b, m->help, 0);
    buf_str(b, "\n");
  }
  buf_str(b, "# TYPE ");
  buf_str(b, m->name);
  buf_str(b, " ");
  buf_str(b, type_names[m->kind]);
  buf_str(b, "\n");
  switch (m->kind) {
  case KIND_COUNTER:
  case KIND_GAUGE:
    for (size_t i = 0; i < m->nseries; i++) {
      buf_sample_start(b, m->name, NULL, m->label_name, m->series[i].label_value);
      buf_double(b, m->series[i].value);
      buf_str(b, "\n");
    }
    break;
  case KIND_GAUGE_FN:
  case KIND_COUNTER_FN:
    buf_sample_start(b, m->name, NULL, NULL, NULL);
    buf_double(b, m->fn(m->fn_arg));
    buf_str(b, "\n");
    break;
  case KIND_GAUGE_VEC_FN: {
    struct dw_metrics_sink sink = {.out = b, .m = m};
    m->vec_fn(m->fn_arg, &sink);
    break;
  }
  case KIND_INFO:
    buf_str(b, m->name);
    buf_str(b, "{");
    buf_str(b, m->info_labels);
    buf_str(b, "} 1\n");
    break;
  case KIND_HISTOGRAM:
    for (size_t i = 0; i < m->nseries; i++)
      render_histogram(b, m, &m->series[i]);
    break;
  }
}

int dw_metrics_render(const struct dw_metrics *reg, char **out, size_t *len)
{
  struct buf b = {0};
  *out = NULL;
  *len = 0;
  buf_add(&b, "", 0); /* an empty registry still renders "" */
  for (const struct dw_metric *m = reg->head; m; m = m->next)
    render_metric(&b, m);
  if (b.err) {
    free(b.p);
    return b.err;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

static double histogram_value(const struct dw_metric *m, const char *suffix, const char *arg)
{
  const struct series *s = NULL;
  if (!m->label_name) {
    s = &m->series[0];
  } else {
    for (size_t i = 0; i < m->nseries && !s; i++)
      if (strcmp(m->series[i].label_value, arg ? arg : "") == 0)
        s = &m->series[i];
    if (!s || strcmp(suffix, "_bucket") == 0)
      return NAN;
  }
  if (strcmp(suffix, "_count") == 0)
    return (double)s->count;
  if (strcmp(suffix, "_sum") == 0)
    return s->sum;
  if (!arg)
    return NAN;
  uint64_t cumulative = 0;
  char text[40];
  for (size_t i = 0; i <= m->nbounds; i++) {
    cumulative += s->buckets[i];
    if (i < m->nbounds)
      format_double(m->bounds[i], text, sizeof(text));
    else
      dw_strlcpy(text, "+Inf", sizeof(text));
    if (strcmp(text, arg) == 0)
      return (double)cumulative;
  }
  return NAN;
}

double dw_metrics_value(const struct dw_metrics *reg, const char *name, const char *label_value)
{
  if (!reg || !name)
    return NAN;
  const struct dw_metric *m = find_owner(reg, name);
  if (!m)
    return NAN;
  switch (m->kind) {
  case KIND_HISTOGRAM:
    if (strcmp(m->name, name) == 0)
      return NAN; /* the bare name has no sample; ask for _count, _sum or _bucket */
    return histogram_value(m, name + strlen(m->name), label_value);
  case KIND_GAUGE_FN:
  case KIND_COUNTER_FN:
    return label_value ? NAN : m->fn(m->fn_arg);
  case KIND_INFO:
    return label_value ? NAN : 1;
  case KIND_GAUGE_VEC_FN: {
    struct dw_metrics_sink sink = {.m = m, .want = label_value ? label_value : "", .found = NAN};
    m->vec_fn(m->fn_arg, &sink);
    return sink.found;
  }
  case KIND_COUNTER:
  case KIND_GAUGE:
    if (!m->label_name)
      return label_value ? NAN : m->series[0].value;
    for (size_t i = 0; i < m->nseries; i++)
      if (strcmp(m->series[i].label_value, label_value ? label_value : "") == 0)
        return m->series[i].value;
    return NAN;
  }
  return NAN;
}
