/* Metrics: a small Prometheus registry with no I/O. Counters, gauges (set by the worker or read
 * from a callback at render time), histograms with fixed buckets, and info metrics (one series
 * of value 1 with constant labels); a counter, gauge or histogram may have one label whose
 * values are created on demand, up to DW_METRICS_MAX_LABEL_VALUES of them (later new values are
 * counted under the value "other"), and a labelled gauge may be read from a callback that
 * lists its series at render time (up to DW_METRICS_MAX_FN_SERIES). Rendered in the Prometheus
 * text exposition format 0.0.4 for the admin endpoint's /metrics. Single-threaded: used on the
 * loop only.
 *
 * Values are doubles (Prometheus values are float64): integers are exact up to 2^53. */
#ifndef DW_METRICS_H
#define DW_METRICS_H

#include <stddef.h>

struct dw_metrics;
struct dw_metric;

/* Distinct label values kept per metric; further new values go to DW_METRICS_OTHER. */
#define DW_METRICS_MAX_LABEL_VALUES 64
/* Longer label values (in bytes) also go to DW_METRICS_OTHER. */
#define DW_METRICS_MAX_LABEL_LEN 128
#define DW_METRICS_OTHER "other"
/* Buckets of one histogram (besides +Inf). */
#define DW_METRICS_MAX_BUCKETS 64
/* Series one callback of dw_metrics_gauge_vec_fn may list per render; more are left out. */
#define DW_METRICS_MAX_FN_SERIES 4096
/* Constant labels of an info metric. */
#define DW_METRICS_MAX_INFO_LABELS 16
/* dw_metrics_render fails with DW_ERANGE beyond this many bytes. */
#define DW_METRICS_MAX_RENDER_BYTES (4u << 20)

struct dw_metrics *dw_metrics_new(void);
/* Frees the registry and every metric registered in it; NULL is fine. */
void dw_metrics_free(struct dw_metrics *reg);

/* Registration. Each returns a metric owned by the registry (valid until dw_metrics_free), or
 * NULL when the name is not a valid Prometheus name, is already registered, a counter's name
 * does not end in "_total", the label name is invalid (or "le"), or memory ran out.
 * name, help and label_name are copied. label_name NULL = no label. help may be NULL. */
struct dw_metric *dw_metrics_counter(struct dw_metrics *reg, const char *name, const char *help,
                                     const char *label_name);
struct dw_metric *dw_metrics_gauge(struct dw_metrics *reg, const char *name, const char *help,
                                   const char *label_name);
/* A gauge whose value is fn(arg), called at render time (and by dw_metrics_value). */
struct dw_metric *dw_metrics_gauge_fn(struct dw_metrics *reg, const char *name, const char *help,
                                      double (*fn)(void *arg), void *arg);
/* A counter whose value is fn(arg), called at render time (and by dw_metrics_value): a total
 * kept elsewhere (the process's CPU time). The name must end in "_total". */
struct dw_metric *dw_metrics_counter_fn(struct dw_metrics *reg, const char *name,
                                        const char *help, double (*fn)(void *arg), void *arg);
/* A histogram with n upper bounds (strictly increasing, finite; a trailing +Inf is dropped, the
 * +Inf bucket is always there). bounds is copied. n may be 0. No label. */
struct dw_metric *dw_metrics_histogram(struct dw_metrics *reg, const char *name,
                                       const char *help, const double *bounds, size_t n);
/* The same with one label (not "le"), its values created on demand as a counter's; observe
 * with dw_metric_observe_label. Each value's buckets are allocated on its first use. */
struct dw_metric *dw_metrics_histogram_labelled(struct dw_metrics *reg, const char *name,
                                                const char *help, const char *label_name,
                                                const double *bounds, size_t n);

/* What a dw_metrics_gauge_vec_fn callback lists its series into. */
struct dw_metrics_sink;
/* One series of a labelled gauge read from a callback: label_value is copied into the output
 * (escaped; NULL means ""). Beyond DW_METRICS_MAX_FN_SERIES per render, series are dropped. */
void dw_metrics_sink_add(struct dw_metrics_sink *sink, const char *label_value, double value);
/* A gauge with one label whose series are whatever fn(arg, sink) lists at render time (and at
 * dw_metrics_value), in its order: series that come and go (one per assigned partition). */
struct dw_metric *dw_metrics_gauge_vec_fn(struct dw_metrics *reg, const char *name,
                                          const char *help, const char *label_name,
                                          void (*fn)(void *arg, struct dw_metrics_sink *sink),
                                          void *arg);
/* An info metric: one gauge series of value 1 whose labels are n (name, value) pairs, pairs[2i]
 * the name and pairs[2i+1] the value (copied; label names valid and not "le", at most
 * DW_METRICS_MAX_INFO_LABELS). For build information: dw_build_info{version="..."} 1. */
struct dw_metric *dw_metrics_info(struct dw_metrics *reg, const char *name, const char *help,
                                  const char *const *pairs, size_t n);

/* Updates. m may be NULL (no-op), so a failed registration never crashes a hot path.
 * label_value is ignored by unlabelled metrics; for labelled ones NULL means "". A label value
 * seen before costs a lookup and no allocation.
 * dw_metric_inc: counters ignore negative and NaN amounts; gauges accept any amount. */
void dw_metric_inc(struct dw_metric *m, const char *label_value, double by);
/* Gauges only (counters and histograms ignore it). */
void dw_metric_set(struct dw_metric *m, const char *label_value, double value);
/* Histograms only (dw_metric_observe: the unlabelled series; label_value as for
 * dw_metric_inc). */
void dw_metric_observe(struct dw_metric *m, double value);
void dw_metric_observe_label(struct dw_metric *m, const char *label_value, double value);

/* Renders every metric, in registration order (label values in order of first use), as the
 * text exposition format 0.0.4. On success *out is a NUL-terminated malloc'd string the caller
 * frees and *len its length. Returns 0, DW_ENOMEM, or DW_ERANGE (over the render cap). */
int dw_metrics_render(const struct dw_metrics *reg, char **out, size_t *len);

/* The current value of a series, for tests: name is a metric's name (label_value NULL for
 * unlabelled ones; an info metric's one series answers to NULL), or for a histogram
 * "<name>_count", "<name>_sum" (label_value: the label's value for a labelled histogram, else
 * NULL), or, for an unlabelled histogram, "<name>_bucket" with label_value the le text as
 * rendered ("0.5", "+Inf"; the bucket is cumulative). Returns NAN when there is no such
 * series. */
double dw_metrics_value(const struct dw_metrics *reg, const char *name, const char *label_value);

#endif
