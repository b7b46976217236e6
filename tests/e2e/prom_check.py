"""The compose stack's Prometheus, checked from outside while the stack runs: both workers
scraped and up, every alert rule of deploy/prometheus/alerts.yml loaded and evaluating without
error, and every query of the Grafana dashboard answered by this Prometheus, with Grafana's
variables substituted as Grafana would. The headline panels must show live numbers (results
per second, API calls per second, calls per task, replicas up).

    python3 prom_check.py PROMETHEUS_URL DASHBOARD_JSON ALERTS_YML REPLICAS [TIMEOUT_S]

Prints one line per dashboard query with its value(s); exit 1 on a failure."""
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request

SUBST = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": "delivery-worker",
         "$instance": ".*"}


def get(base, path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        doc = json.load(r)
    if doc.get("status") != "success":
        raise RuntimeError("%s: %s" % (path, doc))
    return doc["data"]


def query(base, expr):
    data = get(base, "/api/v1/query", query=expr)
    return [(s["metric"], float(s["value"][1])) for s in data["result"]]


def wait(what, timeout, fn):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            ok, last = fn()
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            ok, last = False, e
        if ok:
            print("prometheus: ok: %s" % what, flush=True)
            return last
        if time.monotonic() > deadline:
            raise SystemExit("prometheus: FAILED: %s within %d s (last: %s)" % (what, timeout, last))
        time.sleep(2)


def main():
    base, dash_path, alerts_path, replicas = sys.argv[1:5]
    timeout = int(sys.argv[5]) if len(sys.argv) > 5 else 120
    replicas = int(replicas)

    def targets_up():
        active = get(base, "/api/v1/targets")["activeTargets"]
        up = [t["labels"]["instance"] for t in active if t["health"] == "up"]
        return len(up) >= replicas, sorted(up)
    up = wait("%d worker targets scraped and up" % replicas, timeout, targets_up)
    print("prometheus:   targets %s" % " ".join(up))

    want = len(re.findall(r"^\s*- alert:", open(alerts_path).read(), re.M))

    def rules_ok():
        rules = [r for g in get(base, "/api/v1/rules")["groups"] for r in g["rules"]
                 if r["type"] == "alerting"]
        bad = [r["name"] + ": " + r.get("lastError", "") for r in rules if r.get("health") != "ok"]
        return len(rules) == want and not bad, (rules, bad)
    rules, _ = wait("%d alert rules loaded and evaluated without error" % want, timeout, rules_ok)
    firing = sorted("%s(%s)" % (r["name"], r["state"]) for r in rules if r["state"] != "inactive")
    print("prometheus:   alerts pending or firing: %s" % (", ".join(firing) or "none"))

    dash = json.load(open(dash_path))
    queries = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"]
            for k, v in SUBST.items():
                expr = expr.replace(k, v)
            queries.append((p["title"], t.get("legendFormat", ""), expr))

    def positive(expr):
        def check():
            vals = [v for _, v in query(base, expr)]
            return bool(vals) and all(math.isfinite(v) and v > 0 for v in vals), vals
        return check
    job = 'job="delivery-worker"'
    headline = [
        ("replicas up", "sum(up{%s}) == %d" % (job, replicas)),
        ("results per second", "sum(rate(dw_tasks_resolved_total{%s}[1m]))" % job),
        ("API calls per second", "sum(rate(dw_api_calls_total{%s}[1m]))" % job),
        ("calls per task", "sum(rate(dw_api_calls_total{%s}[1m])) / sum(rate(dw_tasks_resolved_total{%s}[1m]))"
         % (job, job)),
    ]
    for what, expr in headline:
        wait("live %s" % what, timeout, positive(expr))

    failures = 0
    for title, legend, expr in queries:
        try:
            res = query(base, expr)
        except (OSError, RuntimeError) as e:
            print("prometheus: FAILED: panel %r: %s: %s" % (title, expr, e))
            failures += 1
            continue
        shown = ", ".join("%s=%.3g" % (",".join("%s" % v for k, v in sorted(m.items())
                                                if k not in ("job", "__name__")) or "-", v)
                          for m, v in res[:4]) or "(no series)"
        print("prometheus:   %-40s %-38s %s" % (title[:40], (legend or "")[:38], shown))
    if failures:
        raise SystemExit("prometheus: FAILED: %d dashboard queries" % failures)
    print("prometheus: ok: all %d dashboard queries answered" % len(queries))


main()
