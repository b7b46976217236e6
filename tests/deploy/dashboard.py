"""Checks deploy/grafana/delivery-worker.json.

  dashboard.py GRAFANA_DIR BIN_DIR OUT_DIR

Structure (unique panel ids, grid without overlaps, every panel and query on the $datasource
variable), the panels the operators need, and every metric a query names is one a running
worker exports (docs.live_metrics). Writes OUT_DIR/dashboard-queries.yml: every query as a
recording rule, the Grafana variables replaced, for `promtool check rules` to parse."""
import json
import os
import re
import sys

import docs

# Metrics from elsewhere that panels may use: Prometheus' own and kube-state-metrics'.
EXTERNAL = {"up"}
# What the dashboard must show (issue 5): a metric each.
REQUIRED = ["dw_tasks_resolved_total", "dw_dead_letters_total", "dw_api_calls_total",
            "dw_api_rate_limited_total", "dw_limiter_rate_per_minute", "dw_consumer_lag",
            "dw_tasks_in_flight", "dw_poller_ready_tasks", "dw_task_resolve_seconds_bucket",
            "dw_task_polls_bucket", "dw_token_refreshes_total", "dw_app_healthy",
            "dw_ready", "dw_transactions_total", "dw_tasks_skipped_total",
            "dw_commit_metadata_bytes", "dw_token_refresh_failures_total"]
PROMQL_WORDS = {"sum", "by", "without", "rate", "increase", "min", "max", "avg", "histogram_quantile",
                "le", "on", "group_left", "and", "or", "unless", "count", "irate", "deriv", "scalar",
                "job", "instance", "outcome", "reason", "code", "result", "condition", "pod", "cause"}


def main():
    gdir, bin_dir, out = sys.argv[1:4]
    failures = []
    dash = json.load(open(os.path.join(gdir, "delivery-worker.json")))
    for k in ("title", "uid", "schemaVersion", "panels", "templating"):
        if k not in dash:
            failures.append("dashboard has no " + k)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        failures.append("no datasource variable of type prometheus")

    ids, cells, exprs = set(), {}, []
    panels = dash["panels"]
    for p in panels:
        if p["id"] in ids:
            failures.append("panel id %s twice" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            failures.append("panel %r outside the 24-column grid" % p["title"])
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    failures.append("panels %r and %r overlap" % (cells[(x, y)], p["title"]))
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            failures.append("panel %r does not use ${datasource}" % p["title"])
        if not p.get("targets"):
            failures.append("panel %r has no query" % p["title"])
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${datasource}":
                failures.append("a query of %r does not use ${datasource}" % p["title"])
            exprs.append((p["title"], t["expr"]))

    live = docs.parse_exposition(docs.live_metrics(bin_dir))
    exported = set(live)
    for name, m in live.items():
        if m["type"] == "histogram":
            exported |= {name + "_bucket", name + "_sum", name + "_count"}
    used = set()
    for title, expr in exprs:
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no label values
        bare = re.sub(r"\[[^\]]*\]", "", bare)  # no ranges
        for word in re.findall(r"\b[a-z_][a-z0-9_]*\b", bare):
            if word in PROMQL_WORDS:
                continue
            used.add(word)
            if word not in exported and word not in EXTERNAL:
                failures.append("panel %r: %s is not a metric the worker exports" % (title, word))
    for name in REQUIRED:
        if name not in used:
            failures.append("no panel shows " + name)

    # Every query, as promtool would see it after Grafana's substitutions.
    subst = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": ".*", "$instance": ".*"}
    with open(os.path.join(out, "dashboard-queries.yml"), "w") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (title, expr) in enumerate(exprs):
            for k, v in subst.items():
                expr = expr.replace(k, v)
            if "$" in expr:
                failures.append("panel %r: unknown variable in %s" % (title, expr))
            f.write("      - record: dashboard:query_%d\n        expr: %s\n" % (i, json.dumps(expr)))
    for fl in failures:
        print("FAIL " + fl)
    print("dashboard: %d panels, %d queries, %d metrics used, all exported" % (
        sum(1 for p in panels if p["type"] != "row"), len(exprs), len(used)) if not failures else
        "dashboard: %d problems" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
