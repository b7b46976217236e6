"""Keeps deploy/README.md true to the binary.

  docs.py check ROOT BIN_DIR    the config table equals `delivery-worker config-reference`, and
                                the metrics table equals what a running worker exports on
                                /metrics (names, types, label names)
  docs.py update ROOT BIN_DIR   rewrite the config table from `config-reference`

The running worker: librdkafka's mock cluster (dw-kafkatool mock) and the API simulator
(dw-sim) on loopback, one task that succeeds and one invalid event, so that the labelled
counters have samples; then /metrics is read and everything is stopped."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CONFIG_BEGIN, CONFIG_END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"
METRICS_BEGIN, METRICS_END = "<!-- metrics:begin -->", "<!-- metrics:end -->"
IN, OUT, DLQ = "hire.delivery_tasks.created", "hire.delivery_tasks.resolved", "hire.delivery_tasks.dlq"
SLOW = 3.0 if os.environ.get("DW_SANITIZED") == "1" else 1.0


def between(text, begin, end, where):
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise SystemExit("FAIL: %s has no %s ... %s block" % (where, begin, end))
    return i + len(begin), j


def config_reference(bin_dir):
    return subprocess.run([os.path.join(bin_dir, "delivery-worker"), "config-reference"],
                          check=True, capture_output=True, text=True).stdout


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def read_file(path):
    return os.path.exists(path) and open(path).read().strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def live_metrics(bin_dir):
    """Runs a worker briefly; returns the /metrics text."""
    tmp = tempfile.mkdtemp(prefix="dw-deploy-")
    procs = []

    def start(args, name, **kw):
        log = open(os.path.join(tmp, name + ".log"), "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kw)
        p.logfile = log.name
        procs.append(p)
        return p

    try:
        bs_file = os.path.join(tmp, "bootstrap")
        start([os.path.join(bin_dir, "dw-kafkatool"), "mock", "--brokers", "1", "--bootstrap-file",
               bs_file, "--topic", IN + ":2", "--topic", OUT + ":1", "--topic", DLQ + ":1"],
              "mock", stdin=subprocess.PIPE)
        bootstrap = wait(lambda: read_file(bs_file), 30, "the mock cluster")
        port_file = os.path.join(tmp, "sim.port")
        start([os.path.join(bin_dir, "dw-sim"), "--listen", "127.0.0.1:0", "--port-file", port_file], "sim")
        sim = "http://127.0.0.1:%s" % wait(lambda: read_file(port_file), 30, "the simulator")
        req = urllib.request.Request(sim + "/_sim/tasks", method="POST",
                                     data=json.dumps([{"website_id": "7047318856652261676",
                                                       "delivery_task_id": "deploy-docs",
                                                       "ready_after_ms": 0}]).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()
        admin = free_port()
        conf = os.path.join(tmp, "worker.conf")
        with open(conf, "w") as f:
            f.write("""kafka = { brokers = "%s"; group_id = "deploy-docs"; commit_interval_ms = 200;
  properties = ( ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500") ); };
feishu = { base_url = "%s"; app_id = "cli_test"; };
poll = { first_delay_ms = 100; interval_ms = 200; max_interval_ms = 1000; };
admin = { listen = "127.0.0.1:%d"; };
""" % (bootstrap, sim, admin))
        env = dict(os.environ, DELIVERY_WORKER_FEISHU_APP_SECRET="secret")
        worker = start([os.path.join(bin_dir, "delivery-worker"), "run", "-c", conf], "worker", env=env)
        url = "http://127.0.0.1:%d" % admin
        wait(lambda: worker.poll() is None and get(url + "/readyz")[0] == 200 or
             worker.poll() is not None, 60, "the worker to be ready")
        if worker.poll() is not None:
            raise AssertionError("the worker exited:\n" + open(worker.logfile).read()[-3000:])
        lines = "".join(json.dumps(r) + "\n" for r in (
            {"key": "deploy-docs", "value": json.dumps({"website_id": "7047318856652261676",
                                                        "delivery_task_id": "deploy-docs"})},
            {"key": "bad", "value": "not json"}))
        subprocess.run([os.path.join(bin_dir, "dw-kafkatool"), "produce", "-b", bootstrap, IN],
                       input=lines, text=True, check=True, capture_output=True, timeout=60 * SLOW)

        def done():
            text = get(url + "/metrics")[1]
            return text if ("dw_tasks_resolved_total{" in text and "dw_dead_letters_total{" in text) else None
        text = wait(done, 60, "a result and a dead letter in /metrics")
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60 * SLOW)
        return text
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def parse_exposition(text):
    """{name: {"type": t, "labels": set of label names seen on its samples}}"""
    out = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\w+) (\w+)", line)
        if m:
            out[m.group(1)] = {"type": m.group(2), "labels": set()}
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(\w+?)(_bucket|_sum|_count)?(\{(.*)\})? ", line)
        name = m.group(1) + (m.group(2) or "")
        if name not in out and m.group(1) in out:
            name = m.group(1)
        labels = {kv.split("=")[0] for kv in re.findall(r'(\w+="(?:[^"\\]|\\.)*")', m.group(4) or "")}
        out.setdefault(name, {"type": "untyped", "labels": set()})["labels"] |= labels - {"le"}
    return out


def parse_doc_table(block):
    """Rows `| `name` | type | `label`, ... | what |` -> {name: {"type", "labels"}}"""
    out = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`dw_"):
            continue
        labels = set(re.findall(r"`(\w+)`", cells[2]))
        out[cells[0].strip("`")] = {"type": cells[1], "labels": labels}
    return out


def main():
    mode, root, bin_dir = sys.argv[1:4]
    readme = os.path.join(root, "deploy", "README.md")
    text = open(readme).read()
    ref = config_reference(bin_dir)
    i, j = between(text, CONFIG_BEGIN, CONFIG_END, "deploy/README.md")
    if mode == "update":
        open(readme, "w").write(text[:i] + "\n" + ref + text[j:])
        print("deploy/README.md: config table rewritten (%d keys)" % ref.count("\n| `"))
        return 0
    failures = []
    if text[i:j].strip("\n") != ref.strip("\n"):
        failures.append("the config table of deploy/README.md differs from `delivery-worker config-reference`:"
                        " run python3 tests/deploy/docs.py update . BIN_DIR")
    else:
        print("config table: %d keys, equal to config-reference" % ref.count("\n| `"))

    i, j = between(text, METRICS_BEGIN, METRICS_END, "deploy/README.md")
    doc = parse_doc_table(text[i:j])
    live = parse_exposition(live_metrics(bin_dir))
    for name in sorted(set(live) | set(doc)):
        if name not in doc:
            failures.append("metric %s (%s) is exported but not in deploy/README.md" % (name, live[name]["type"]))
        elif name not in live:
            failures.append("metric %s is in deploy/README.md but not exported" % name)
        elif doc[name]["type"] != live[name]["type"]:
            failures.append("metric %s: README says %s, /metrics says %s" % (name, doc[name]["type"], live[name]["type"]))
        elif not live[name]["labels"] <= doc[name]["labels"]:
            failures.append("metric %s: labels %s on /metrics, README lists %s" % (name, sorted(live[name]["labels"]), sorted(doc[name]["labels"])))
        elif live[name]["labels"] and live[name]["labels"] != doc[name]["labels"]:
            failures.append("metric %s: README lists labels %s, /metrics has %s" % (name, sorted(doc[name]["labels"]), sorted(live[name]["labels"])))
    if not failures:
        print("metrics table: %d metrics, names, types and labels equal to a running worker's /metrics" % len(live))
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
