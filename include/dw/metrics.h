/* Metrics: a small Prometheus registry with no I/O. Counters, gauges (set by the worker or read
 * from a callback at render time) and histograms with fixed buckets; a counter or gauge may have
 * one label whose values are created on demand, up to DW_METRICS_MAX_LABEL_VALUES of them (later
 * new values are counted under the value "other"). Rendered in the Prometheus text exposition
 * format 0.0.4 for the admin endpoint's /metrics. Single-threaded: used on the loop only.
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
/* A histogram with n upper bounds (strictly increasing, finite; a trailing +Inf is dropped, the
 * +Inf bucket is always there). bounds is copied. n may be 0. No label. */
struct dw_metric *dw_metrics_histogram(struct dw_metrics *reg, const char *name,
                                       const char *help, const double *bounds, size_t n);

/* Updates. m may be NULL (no-op), so a failed registration never crashes a hot path.
 * label_value is ignored by unlabelled metrics; for labelled ones NULL means "". A label value
 * seen before costs a lookup and no allocation.
 * dw_metric_inc: counters ignore negative and NaN amounts; gauges accept any amount. */
void dw_metric_inc(struct dw_metric *m, const char *label_value, double by);
/* Gauges only (counters and histograms ignore it). */
void dw_metric_set(struct dw_metric *m, const char *label_value, double value);
/* Histograms only. */
void dw_metric_observe(struct dw_metric *m, double value);

/* Renders every metric, in registration order (label values in order of first use), as the
 * text exposition format 0.0.4. On success *out is a NUL-terminated malloc'd string the caller
 * frees and *len its length. Returns 0, DW_ENOMEM, or DW_ERANGE (over the render cap). */
int dw_metrics_render(const struct dw_metrics *reg, char **out, size_t *len);

/* The current value of a series, for tests: name is a metric's name (label_value NULL for
 * unlabelled ones), or for a histogram "<name>_count", "<name>_sum", or "<name>_bucket" with
 * label_value the le text as rendered ("0.5", "+Inf"; the bucket is cumulative).
 * Returns NAN when there is no such series. */
double dw_metrics_value(const struct dw_metrics *reg, const char *name, const char *label_value);

#endif
