/* Unit tests of the metrics registry: the exact text of a small registry, label values created
 * on demand up to the cap and then "other", cumulative histogram buckets, escaping, number
 * spelling, registration errors, value lookup and the render cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"
#include "dw/metrics.h"

static char *render(const struct dw_metrics *reg)
{
  char *out = NULL;
  size_t len = 0;
  assert_int_equal(dw_metrics_render(reg, &out, &len), 0);
  assert_non_null(out);
  assert_int_equal(strlen(out), len);
  return out;
}

static double in_flight(void *arg)
{
  return *(double *)arg;
}

static void test_render_exact(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  assert_non_null(reg);
  static const double polls[] = {1, 2, 5};
  double tasks = 7;

  struct dw_metric *calls =
      dw_metrics_counter(reg, "dw_api_calls_total", "Feishu API calls by response code.", "code");
  struct dw_metric *consumed =
      dw_metrics_counter(reg, "dw_events_consumed_total", "Events consumed.", NULL);
  struct dw_metric *paused = dw_metrics_gauge(reg, "dw_partitions_paused", NULL, NULL);
  struct dw_metric *inflight =
      dw_metrics_gauge_fn(reg, "dw_tasks_in_flight", "Tasks being polled.", in_flight, &tasks);
  struct dw_metric *hist =
      dw_metrics_histogram(reg, "dw_task_polls", "API polls per resolved task.", polls, 3);
  struct dw_metric *empty = dw_metrics_counter(reg, "dw_dead_letters_total", "Dead letters.",
                                               "reason");
  assert_non_null(calls);
  assert_non_null(consumed);
  assert_non_null(paused);
  assert_non_null(inflight);
  assert_non_null(hist);
  assert_non_null(empty);

  dw_metric_inc(calls, "0", 3);
  dw_metric_inc(calls, "1002008", 1);
  dw_metric_inc(calls, "0", 1);
  dw_metric_inc(consumed, NULL, 12);
  dw_metric_set(paused, NULL, 2);
  dw_metric_observe(hist, 1);
  dw_metric_observe(hist, 3);
  dw_metric_observe(hist, 9);

  char *out = render(reg);
  const char *want = "# HELP dw_api_calls_total Feishu API calls by response code.\n"
                     "# TYPE dw_api_calls_total counter\n"
                     "dw_api_calls_total{code=\"0\"} 4\n"
                     "dw_api_calls_total{code=\"1002008\"} 1\n"
                     "# HELP dw_events_consumed_total Events consumed.\n"
                     "# TYPE dw_events_consumed_total counter\n"
                     "dw_events_consumed_total 12\n"
                     "# TYPE dw_partitions_paused gauge\n"
                     "dw_partitions_paused 2\n"
                     "# HELP dw_tasks_in_flight Tasks being polled.\n"
                     "# TYPE dw_tasks_in_flight gauge\n"
                     "dw_tasks_in_flight 7\n"
                     "# HELP dw_task_polls API polls per resolved task.\n"
                     "# TYPE dw_task_polls histogram\n"
                     "dw_task_polls_bucket{le=\"1\"} 1\n"
                     "dw_task_polls_bucket{le=\"2\"} 1\n"
                     "dw_task_polls_bucket{le=\"5\"} 2\n"
                     "dw_task_polls_bucket{le=\"+Inf\"} 3\n"
                     "dw_task_polls_sum 13\n"
                     "dw_task_polls_count 3\n"
                     "# HELP dw_dead_letters_total Dead letters.\n"
                     "# TYPE dw_dead_letters_total counter\n";
  assert_string_equal(out, want);
  free(out);

  /* The callback is read at render time. */
  tasks = 0.5;
  out = render(reg);
  assert_non_null(strstr(out, "\ndw_tasks_in_flight 0.5\n"));
  free(out);
  dw_metrics_free(reg);
}

static void test_empty_registry(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  char *out = render(reg);
  assert_string_equal(out, "");
  free(out);
  dw_metrics_free(reg);
  dw_metrics_free(NULL);
}

static void test_label_cap(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  struct dw_metric *m = dw_metrics_counter(reg, "dw_api_calls_total", "Calls.", "code");
  char value[32];
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < DW_METRICS_MAX_LABEL_VALUES + 10; i++) {
      snprintf(value, sizeof(value), "%d", 1000 + i);
      dw_metric_inc(m, value, 1);
    }
  for (int i = 0; i < DW_METRICS_MAX_LABEL_VALUES; i++) {
    snprintf(value, sizeof(value), "%d", 1000 + i);
    assert_true(dw_metrics_value(reg, "dw_api_calls_total", value) == 2);
  }
  /* The 10 values past the cap, twice each, went to "other" and were not created. */
  assert_true(dw_metrics_value(reg, "dw_api_calls_total", "other") == 20);
  snprintf(value, sizeof(value), "%d", 1000 + DW_METRICS_MAX_LABEL_VALUES);
  assert_true(isnan(dw_metrics_value(reg, "dw_api_calls_total", value)));

  /* Existing values still count after the cap is reached. */
  dw_metric_inc(m, "1000", 5);
  assert_true(dw_metrics_value(reg, "dw_api_calls_total", "1000") == 7);

  char *out = render(reg);
  size_t lines = 0;
  for (const char *p = out; (p = strstr(p, "dw_api_calls_total{")); p++)
    lines++;
  assert_int_equal(lines, DW_METRICS_MAX_LABEL_VALUES + 1);
  assert_non_null(strstr(out, "dw_api_calls_total{code=\"other\"} 20\n"));
  free(out);

  /* A too long value goes to "other" even below the cap; NULL is the empty value. */
  struct dw_metric *g = dw_metrics_gauge(reg, "dw_consumer_lag_messages", "Lag.", "partition");
  char long_value[DW_METRICS_MAX_LABEL_LEN + 2];
  memset(long_value, 'x', sizeof(long_value) - 1);
  long_value[sizeof(long_value) - 1] = '\0';
  dw_metric_set(g, long_value, 4);
  dw_metric_set(g, NULL, 9);
  dw_metric_inc(g, "3", -2);
  assert_true(dw_metrics_value(reg, "dw_consumer_lag_messages", "other") == 4);
  assert_true(dw_metrics_value(reg, "dw_consumer_lag_messages", "") == 9);
  assert_true(dw_metrics_value(reg, "dw_consumer_lag_messages", NULL) == 9);
  assert_true(dw_metrics_value(reg, "dw_consumer_lag_messages", "3") == -2);
  dw_metrics_free(reg);
}

static void test_histogram(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  static const double secs[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300};
  struct dw_metric *h = dw_metrics_histogram(reg, "dw_task_resolve_seconds", "Latency.", secs,
                                             DW_ARRAY_SIZE(secs));
  assert_non_null(h);
  /* A value equal to a bound belongs to that bound's bucket (le = less or equal). */
  const double obs[] = {0.05, 0.1, 0.1000001, 0.3, 1, 1, 299.9, 300, 301, 1e9, -1};
  double sum = 0;
  for (size_t i = 0; i < DW_ARRAY_SIZE(obs); i++) {
    dw_metric_observe(h, obs[i]);
    sum += obs[i];
  }
  const char *n = "dw_task_resolve_seconds_bucket";
  assert_true(dw_metrics_value(reg, n, "0.1") == 3); /* -1, 0.05, 0.1 */
  assert_true(dw_metrics_value(reg, n, "0.25") == 4);
  assert_true(dw_metrics_value(reg, n, "0.5") == 5);
  assert_true(dw_metrics_value(reg, n, "1") == 7);
  assert_true(dw_metrics_value(reg, n, "2") == 7);
  assert_true(dw_metrics_value(reg, n, "120") == 7);
  assert_true(dw_metrics_value(reg, n, "300") == 9);
  assert_true(dw_metrics_value(reg, n, "+Inf") == 11);
  assert_true(isnan(dw_metrics_value(reg, n, "0.3")));
  assert_true(isnan(dw_metrics_value(reg, n, NULL)));
  assert_true(dw_metrics_value(reg, "dw_task_resolve_seconds_count", NULL) == 11);
  assert_true(dw_metrics_value(reg, "dw_task_resolve_seconds_sum", NULL) == sum);
  assert_true(isnan(dw_metrics_value(reg, "dw_task_resolve_seconds", NULL)));

  /* The rendered buckets are cumulative and never decrease. */
  char *out = render(reg);
  assert_non_null(strstr(out, "dw_task_resolve_seconds_bucket{le=\"0.25\"} 4\n"
                              "dw_task_resolve_seconds_bucket{le=\"0.5\"} 5\n"));
  assert_non_null(strstr(out, "dw_task_resolve_seconds_bucket{le=\"300\"} 9\n"
                              "dw_task_resolve_seconds_bucket{le=\"+Inf\"} 11\n"
                              "dw_task_resolve_seconds_sum "));
  assert_non_null(strstr(out, "\ndw_task_resolve_seconds_count 11\n"));
  free(out);

  /* NaN lands in +Inf only, and makes the sum NaN. */
  dw_metric_observe(h, NAN);
  assert_true(dw_metrics_value(reg, n, "300") == 9);
  assert_true(dw_metrics_value(reg, n, "+Inf") == 12);
  assert_true(isnan(dw_metrics_value(reg, "dw_task_resolve_seconds_sum", NULL)));
  out = render(reg);
  assert_non_null(strstr(out, "\ndw_task_resolve_seconds_sum NaN\n"));
  free(out);

  /* A trailing +Inf bound is implicit; no bounds at all leaves only +Inf. */
  static const double with_inf[] = {1, INFINITY};
  struct dw_metric *h2 = dw_metrics_histogram(reg, "dw_a", NULL, with_inf, 2);
  assert_non_null(h2);
  struct dw_metric *h3 = dw_metrics_histogram(reg, "dw_b", NULL, NULL, 0);
  assert_non_null(h3);
  dw_metric_observe(h2, 2);
  dw_metric_observe(h3, 2);
  out = render(reg);
  assert_non_null(strstr(out, "# TYPE dw_a histogram\n"
                              "dw_a_bucket{le=\"1\"} 0\n"
                              "dw_a_bucket{le=\"+Inf\"} 1\n"
                              "dw_a_sum 2\n"
                              "dw_a_count 1\n"
                              "# TYPE dw_b histogram\n"
                              "dw_b_bucket{le=\"+Inf\"} 1\n"
                              "dw_b_sum 2\n"
                              "dw_b_count 1\n"));
  free(out);

  /* Bounds must be finite and strictly increasing. */
  static const double unsorted[] = {1, 3, 2};
  static const double repeated[] = {1, 1};
  static const double nan_bound[] = {NAN, 1};
  assert_null(dw_metrics_histogram(reg, "dw_c", NULL, unsorted, 3));
  assert_null(dw_metrics_histogram(reg, "dw_c", NULL, repeated, 2));
  assert_null(dw_metrics_histogram(reg, "dw_c", NULL, nan_bound, 2));
  double many[DW_METRICS_MAX_BUCKETS + 1];
  for (size_t i = 0; i < DW_ARRAY_SIZE(many); i++)
    many[i] = (double)i;
  assert_null(dw_metrics_histogram(reg, "dw_c", NULL, many, DW_ARRAY_SIZE(many)));
  assert_non_null(dw_metrics_histogram(reg, "dw_c", NULL, many, DW_METRICS_MAX_BUCKETS));
  dw_metrics_free(reg);
}

static void test_escaping(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  struct dw_metric *m =
      dw_metrics_counter(reg, "dw_dead_letters_total", "Dead \"letters\" by\nreason \\ code.",
                         "reason");
  dw_metric_inc(m, "a\"b\\c\nd", 1);
  dw_metric_inc(m, "", 2);
  dw_metric_inc(m, "caf\xc3\xa9", 3); /* UTF-8 passes through */
  char *out = render(reg);
  assert_string_equal(out,
                      "# HELP dw_dead_letters_total Dead \"letters\" by\\nreason \\\\ code.\n"
                      "# TYPE dw_dead_letters_total counter\n"
                      "dw_dead_letters_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
                      "dw_dead_letters_total{reason=\"\"} 2\n"
                      "dw_dead_letters_total{reason=\"caf\xc3\xa9\"} 3\n");
  free(out);
  /* Lookup uses the raw value, not the escaped one. */
  assert_true(dw_metrics_value(reg, "dw_dead_letters_total", "a\"b\\c\nd") == 1);
  dw_metrics_free(reg);
}

static void test_numbers(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  struct dw_metric *g = dw_metrics_gauge(reg, "dw_x", NULL, "k");
  dw_metric_set(g, "tenth", 0.1);
  dw_metric_set(g, "third", 1.0 / 3);
  dw_metric_set(g, "big", 9007199254740993.0); /* 2^53 + 1 rounds to 2^53 */
  dw_metric_set(g, "int", 123456789012.0);
  dw_metric_set(g, "small", 1e-9);
  dw_metric_set(g, "neg", -2.5);
  dw_metric_set(g, "inf", INFINITY);
  dw_metric_set(g, "ninf", -INFINITY);
  dw_metric_set(g, "nan", NAN);
  struct dw_metric *c = dw_metrics_counter(reg, "dw_y_total", NULL, NULL);
  dw_metric_inc(c, NULL, 0.2);
  dw_metric_inc(c, NULL, 0.1);
  dw_metric_inc(c, NULL, -5);  /* counters never go down */
  dw_metric_inc(c, NULL, NAN); /* nor become NaN */
  dw_metric_set(c, NULL, 0);   /* nor are set */
  char *out = render(reg);
  assert_string_equal(out, "# TYPE dw_x gauge\n"
                           "dw_x{k=\"tenth\"} 0.1\n"
                           "dw_x{k=\"third\"} 0.33333333333333331\n"
                           "dw_x{k=\"big\"} 9007199254740992\n"
                           "dw_x{k=\"int\"} 123456789012\n"
                           "dw_x{k=\"small\"} 1e-09\n"
                           "dw_x{k=\"neg\"} -2.5\n"
                           "dw_x{k=\"inf\"} +Inf\n"
                           "dw_x{k=\"ninf\"} -Inf\n"
                           "dw_x{k=\"nan\"} NaN\n"
                           "# TYPE dw_y_total counter\n"
                           "dw_y_total 0.30000000000000004\n");
  free(out);
  dw_metrics_free(reg);
}

static double zero(void *arg)
{
  (void)arg;
  return 0;
}

static void test_registration_errors(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  static const double b[] = {1};
  assert_non_null(dw_metrics_counter(reg, "dw_ok_total", NULL, NULL));
  assert_null(dw_metrics_counter(reg, "dw_ok_total", NULL, NULL));  /* duplicate */
  assert_null(dw_metrics_gauge(reg, "dw_ok_total", NULL, NULL));    /* duplicate, other type */
  assert_null(dw_metrics_counter(reg, "dw_calls", NULL, NULL));     /* counter without _total */
  assert_null(dw_metrics_counter(reg, "9dw_total", NULL, NULL));    /* bad first character */
  assert_null(dw_metrics_counter(reg, "dw-x_total", NULL, NULL));   /* bad character */
  assert_null(dw_metrics_counter(reg, "", NULL, NULL));
  assert_null(dw_metrics_counter(reg, NULL, NULL, NULL));
  assert_null(dw_metrics_counter(NULL, "dw_z_total", NULL, NULL));
  assert_null(dw_metrics_counter(reg, "dw_l_total", NULL, "le"));   /* reserved label */
  assert_null(dw_metrics_counter(reg, "dw_l_total", NULL, "__x"));  /* reserved prefix */
  assert_null(dw_metrics_counter(reg, "dw_l_total", NULL, "a:b"));  /* ':' only in names */
  assert_null(dw_metrics_gauge_fn(reg, "dw_f", NULL, NULL, NULL));  /* no callback */
  assert_non_null(dw_metrics_gauge(reg, "dw:ns:g", NULL, "_k9"));   /* ':' is fine in names */

  /* A histogram's series names clash both ways. */
  assert_non_null(dw_metrics_histogram(reg, "dw_h", NULL, b, 1));
  assert_null(dw_metrics_gauge(reg, "dw_h_count", NULL, NULL));
  assert_null(dw_metrics_gauge(reg, "dw_h_bucket", NULL, NULL));
  assert_non_null(dw_metrics_gauge(reg, "dw_h_other", NULL, NULL));
  assert_non_null(dw_metrics_gauge_fn(reg, "dw_g_sum", NULL, zero, NULL));
  assert_null(dw_metrics_histogram(reg, "dw_g", NULL, b, 1));

  /* Updates of the wrong kind, or through a failed registration, are no-ops. */
  dw_metric_inc(NULL, "x", 1);
  dw_metric_set(NULL, "x", 1);
  dw_metric_observe(NULL, 1);
  struct dw_metric *h = dw_metrics_histogram(reg, "dw_h2", NULL, b, 1);
  dw_metric_inc(h, NULL, 1);
  dw_metric_set(h, NULL, 1);
  assert_true(dw_metrics_value(reg, "dw_h2_count", NULL) == 0);
  struct dw_metric *g = dw_metrics_gauge(reg, "dw_g2", NULL, NULL);
  dw_metric_observe(g, 3);
  assert_true(dw_metrics_value(reg, "dw_g2", NULL) == 0);

  /* Lookups of what is not there. */
  assert_true(isnan(dw_metrics_value(reg, "dw_nope", NULL)));
  assert_true(isnan(dw_metrics_value(reg, "dw_ok_total", "x"))); /* unlabelled */
  assert_true(isnan(dw_metrics_value(reg, "dw:ns:g", "x")));     /* value never seen */
  assert_true(dw_metrics_value(reg, "dw_g_sum", NULL) == 0);
  assert_true(isnan(dw_metrics_value(NULL, "dw_ok_total", NULL)));
  dw_metrics_free(reg);
}

static void test_render_cap(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  char name[64], value[DW_METRICS_MAX_LABEL_LEN + 1];
  memset(value, 'v', sizeof(value) - 1);
  value[sizeof(value) - 1] = '\0';
  /* Each metric renders about 65 * 160 bytes: 500 of them pass the 4 MiB cap. */
  for (int i = 0; i < 500; i++) {
    snprintf(name, sizeof(name), "dw_m%d_total", i);
    struct dw_metric *m = dw_metrics_counter(reg, name, NULL, "k");
    assert_non_null(m);
    for (int j = 0; j < DW_METRICS_MAX_LABEL_VALUES; j++) {
      snprintf(value, sizeof(value), "%03d", j);
      value[3] = 'v';
      dw_metric_inc(m, value, 1);
    }
  }
  char *out = (char *)1;
  size_t len = 1;
  assert_int_equal(dw_metrics_render(reg, &out, &len), DW_ERANGE);
  assert_null(out);
  assert_int_equal(len, 0);
  dw_metrics_free(reg);
}

static double cpu_seconds(void *arg)
{
  (void)arg;
  return 1.5;
}

static void two_partitions(void *arg, struct dw_metrics_sink *sink)
{
  int *calls = arg;
  (*calls)++;
  dw_metrics_sink_add(sink, "0", 7);
  dw_metrics_sink_add(sink, "3", 0);
}

static void too_many(void *arg, struct dw_metrics_sink *sink)
{
  (void)arg;
  char label[16];
  for (int i = 0; i < DW_METRICS_MAX_FN_SERIES + 10; i++) {
    snprintf(label, sizeof(label), "%d", i);
    dw_metrics_sink_add(sink, label, i);
  }
}

/* The kinds of the process and operator metrics: an info metric, a counter read from a
 * callback, a labelled histogram and a labelled gauge listed at render time, rendered exactly. */
static void test_info_fn_and_labelled(void **state)
{
  (void)state;
  struct dw_metrics *reg = dw_metrics_new();
  const char *pairs[] = {"version", "1.2.3", "commit", "abc\"d", "librdkafka", "2.0.2"};
  int calls = 0;
  const double bounds[] = {0.1, 1};
  assert_non_null(dw_metrics_info(reg, "dw_build_info", "Build.", pairs, 3));
  assert_non_null(dw_metrics_counter_fn(reg, "process_cpu_seconds_total", "CPU.", cpu_seconds,
                                        NULL));
  struct dw_metric *h =
      dw_metrics_histogram_labelled(reg, "dw_api_call_duration_seconds", "Calls.", "endpoint",
                                    bounds, 2);
  assert_non_null(h);
  assert_non_null(dw_metrics_gauge_vec_fn(reg, "dw_consumer_committed_lag", "Lag.", "partition",
                                          two_partitions, &calls));
  dw_metric_observe_label(h, "delivery_task", 0.05);
  dw_metric_observe_label(h, "delivery_task", 0.5);
  dw_metric_observe_label(h, "app_access_token", 3);
  dw_metric_observe(h, 1); /* the unlabelled series of a labelled histogram: label "" */
  char *out = render(reg);
  assert_string_equal(out,
                      "# HELP dw_build_info Build.\n"
                      "# TYPE dw_build_info gauge\n"
                      "dw_build_info{version=\"1.2.3\",commit=\"abc\\\"d\",librdkafka=\"2.0.2\"} 1\n"
                      "# HELP process_cpu_seconds_total CPU.\n"
                      "# TYPE process_cpu_seconds_total counter\n"
                      "process_cpu_seconds_total 1.5\n"
                      "# HELP dw_api_call_duration_seconds Calls.\n"
                      "# TYPE dw_api_call_duration_seconds histogram\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"delivery_task\",le=\"0.1\"} 1\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"delivery_task\",le=\"1\"} 2\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"delivery_task\",le=\"+Inf\"} 2\n"
                      "dw_api_call_duration_seconds_sum{endpoint=\"delivery_task\"} 0.55\n"
                      "dw_api_call_duration_seconds_count{endpoint=\"delivery_task\"} 2\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"app_access_token\",le=\"0.1\"} 0\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"app_access_token\",le=\"1\"} 0\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"app_access_token\",le=\"+Inf\"} 1\n"
                      "dw_api_call_duration_seconds_sum{endpoint=\"app_access_token\"} 3\n"
                      "dw_api_call_duration_seconds_count{endpoint=\"app_access_token\"} 1\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"\",le=\"0.1\"} 0\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"\",le=\"1\"} 1\n"
                      "dw_api_call_duration_seconds_bucket{endpoint=\"\",le=\"+Inf\"} 1\n"
                      "dw_api_call_duration_seconds_sum{endpoint=\"\"} 1\n"
                      "dw_api_call_duration_seconds_count{endpoint=\"\"} 1\n"
                      "# HELP dw_consumer_committed_lag Lag.\n"
                      "# TYPE dw_consumer_committed_lag gauge\n"
                      "dw_consumer_committed_lag{partition=\"0\"} 7\n"
                      "dw_consumer_committed_lag{partition=\"3\"} 0\n");
  free(out);
  assert_int_equal(calls, 1);
  assert_true(dw_metrics_value(reg, "dw_build_info", NULL) == 1);
  assert_true(dw_metrics_value(reg, "process_cpu_seconds_total", NULL) == 1.5);
  assert_true(dw_metrics_value(reg, "dw_api_call_duration_seconds_count", "delivery_task") == 2);
  assert_true(dw_metrics_value(reg, "dw_api_call_duration_seconds_sum", "app_access_token") == 3);
  assert_true(isnan(dw_metrics_value(reg, "dw_api_call_duration_seconds_count", "resend")));
  assert_true(dw_metrics_value(reg, "dw_consumer_committed_lag", "0") == 7);
  assert_true(isnan(dw_metrics_value(reg, "dw_consumer_committed_lag", "1")));

  /* Registration errors: a counter_fn not ending in _total, an info label "le" or invalid, no
   * label for a labelled kind. */
  assert_null(dw_metrics_counter_fn(reg, "process_cpu_seconds", NULL, cpu_seconds, NULL));
  const char *le[] = {"le", "x"}, *bad[] = {"a-b", "x"};
  assert_null(dw_metrics_info(reg, "dw_x_info", NULL, le, 1));
  assert_null(dw_metrics_info(reg, "dw_x_info", NULL, bad, 1));
  assert_null(dw_metrics_info(reg, "dw_x_info", NULL, pairs, 0));
  assert_null(dw_metrics_histogram_labelled(reg, "dw_h", NULL, NULL, bounds, 2));
  assert_null(dw_metrics_histogram_labelled(reg, "dw_h", NULL, "le", bounds, 2));
  assert_null(dw_metrics_gauge_vec_fn(reg, "dw_g", NULL, NULL, two_partitions, &calls));
  dw_metrics_free(reg);

  /* A callback listing more series than the cap: the scrape stays bounded. */
  reg = dw_metrics_new();
  assert_non_null(dw_metrics_gauge_vec_fn(reg, "dw_many", NULL, "p", too_many, NULL));
  out = render(reg);
  size_t lines = 0;
  for (const char *c = out; *c; c++)
    lines += *c == '\n';
  assert_int_equal(lines, DW_METRICS_MAX_FN_SERIES + 1);
  free(out);
  dw_metrics_free(reg);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_render_exact), cmocka_unit_test(test_empty_registry),
      cmocka_unit_test(test_label_cap),    cmocka_unit_test(test_histogram),
      cmocka_unit_test(test_escaping),     cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_registration_errors), cmocka_unit_test(test_render_cap),
      cmocka_unit_test(test_info_fn_and_labelled),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
