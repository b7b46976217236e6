"""What an operator sees of one task and of an idle replica. An event's headers (a W3C
traceparent) come back on its result and on its dead letter; the JSON log's outcome lines carry
the task's website, tenant, event id, outcome, reason, calls and duration as fields of their own;
and a replica the group gives no partition (one more than the input topic has) is ready, idle,
so a rolling update does not stall on it. The operator's metrics (build, process, call
durations, lag per partition, token expiry) say what the worker is doing."""
import json
import os
import re
import subprocess
import time

import harness as h

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def outcome_lines(worker):
    lines = []
    for line in worker.log_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "outcome" in obj:
            lines.append(obj)
    return lines


def test_headers_and_outcome_fields(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "ob-ok", "ready_after_ms": 0}])
    ok = h.event("ob-ok", event_id="evt-ok", tenant_key="tk-1")
    ok["headers"] = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    gone = h.event("ob-gone", event_id="evt-gone")  # unknown to the API: 1002008
    gone["headers"] = {"traceparent": TRACEPARENT}
    h.produce(kafka.bootstrap, h.IN, [ok, gone])
    worker = start_worker(kafka.bootstrap, sim.url, group="it-observe")
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.OUT) and h.dump(kafka.bootstrap, h.DLQ), 60,
                 "a result and a dead letter")

    [result] = h.dump(kafka.bootstrap, h.OUT)
    assert result["key"] == "ob-ok", result
    assert result["headers"].get("traceparent") == TRACEPARENT, result
    assert result["headers"].get("tracestate") == "vendor=1", result
    [dead] = h.dump(kafka.bootstrap, h.DLQ)
    assert dead["headers"].get("traceparent") == TRACEPARENT, dead
    assert dead["headers"]["dlq.reason"] == "task_not_found", dead

    lines = h.wait_until(lambda: len(outcome_lines(worker)) >= 2 and outcome_lines(worker), 10,
                         "two outcome lines")
    by_task = {l["task"]: l for l in lines}
    r = by_task["ob-ok"]
    assert r["msg"] == "resolved: succeeded after 1 call(s)", r
    assert (r["website"], r["tenant"], r["event_id"], r["outcome"], r["calls"]) == \
        (h.WEBSITE, "tk-1", "evt-ok", "succeeded", 1), r
    assert "reason" not in r and isinstance(r["duration_ms"], int) and r["duration_ms"] >= 0, r
    d = by_task["ob-gone"]
    assert d["msg"].startswith("dead letter task_not_found"), d
    assert (d["website"], d["event_id"], d["outcome"], d["reason"], d["calls"]) == \
        (h.WEBSITE, "evt-gone", "dead_letter", "task_not_found", 1), d
    assert "tenant" not in d and d["level"] == "warn" and d["duration_ms"] >= 0, d
    assert worker.stop() == 0


def test_replica_without_partitions_is_ready(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka(topics=((h.IN, 1), (h.OUT, 1), (h.DLQ, 1)))
    sim = start_sim()
    a = start_worker(kafka.bootstrap, sim.url, group="it-idle", name="a")
    h.wait_until(lambda: a.admin("/readyz")[0] == 200, 30, "a ready")
    b = start_worker(kafka.bootstrap, sim.url, group="it-idle", name="b")

    # One partition, two members: after the rebalance one of them has none, and is ready.
    def both_ready():
        answers = [w.admin("/readyz") for w in (a, b)]
        return answers if all(s == 200 for s, _ in answers) and \
            any("idle: no partitions" in body for _, body in answers) else None
    answers = h.wait_until(both_ready, 60, "both ready, one idle")
    h.log("readyz: %r" % answers)
    idle = [w for w, (_, body) in zip((a, b), answers) if "idle" in body]
    assert len(idle) == 1, answers
    assert idle[0].metrics()["dw_ready"] == 1
    for w in (a, b):
        assert w.stop() == 0


def samples(worker):
    """/metrics as {name: {labels text: value}}, the raw lines kept for the labels."""
    status, body = worker.admin("/metrics")
    assert status == 200, status
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        name, _, labels = key.partition("{")
        out.setdefault(name, {})[labels.rstrip("}")] = float(value)
    return out


def test_operator_metrics(start_mock_kafka, start_sim, start_worker):
    """dw_build_info, the process_* metrics, the API call duration histogram by endpoint, the
    committed and fetched lag per partition (one task that never finishes holds its partition's
    committed offset back, not its fetch position) and the token's expiry time."""
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    tasks = ["om-%02d" % i for i in range(12)]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                  for t in tasks] +
                 [{"website_id": h.WEBSITE, "delivery_task_id": "om-never", "final": "never"}])
    started = time.time()
    worker = start_worker(kafka.bootstrap, sim.url, group="it-observe-metrics",
                          properties=(("session.timeout.ms", "6000"),
                                      ("heartbeat.interval.ms", "500"),
                                      ("statistics.interval.ms", "500")),
                          env={"DELIVERY_WORKER_POLL_DEADLINE_MS": "600000",
                               "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000"})
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in tasks + ["om-never"]])

    # The never-ready task's partition: behind by it (and what follows it) in committed
    # offsets, caught up in fetched ones; every other partition caught up in both.
    def held_back():
        m = samples(worker)
        committed = m.get("dw_consumer_committed_lag", {})
        fetched = m.get("dw_consumer_fetched_lag", {})
        if len(committed) != 4 or len(fetched) != 4 or \
                m.get("dw_tasks_resolved_total", {}).get('outcome="succeeded"', 0) < len(tasks):
            return None
        behind = [k for k, v in committed.items() if v > 0]
        if len(behind) == 1 and all(v == 0 for v in fetched.values()) and \
                all(v == 0 for k, v in committed.items() if k not in behind):
            return m
        return None
    m = h.wait_until(held_back, 60, "lag held back by om-never on one partition only")
    h.log("committed lag %r, fetched lag %r" % (m["dw_consumer_committed_lag"],
                                                m["dw_consumer_fetched_lag"]))

    [(labels, value)] = m["dw_build_info"].items()
    info = dict(kv.split("=", 1) for kv in labels.split(","))
    assert value == 1 and set(info) == {"version", "commit", "librdkafka", "libcurl", "libuv"}, m
    for lib in ("librdkafka", "libcurl", "libuv"):
        assert re.fullmatch(r'"\d+\.\d+\.\d+.*"', info[lib]), info
    assert info["version"].strip('"') in subprocess.run(
        [os.path.join(h.BIN, "delivery-worker"), "version"], capture_output=True,
        text=True).stdout, info

    now = time.time()
    assert started - 5 <= m["process_start_time_seconds"][""] <= now, (started, m)
    assert m["process_cpu_seconds_total"][""] > 0, m
    assert m["process_resident_memory_bytes"][""] > 1 << 20, m
    assert 3 <= m["process_open_fds"][""] < m["process_max_fds"][""], m

    # Every call the simulator answered is in the histogram, under its endpoint. om-never is
    # still polling: compare at a moment no call of it is on its way.
    def agree():
        st = sim.stats()
        d = samples(worker)
        return (d, st) if d["dw_api_call_duration_seconds_count"].get(
            'endpoint="delivery_task"') == st["calls"] == sim.stats()["calls"] else None
    d, st = h.wait_until(agree, 30, "the call histogram to agree with the simulator")
    calls = d["dw_api_call_duration_seconds_count"]
    assert calls['endpoint="tenant_access_token_internal"'] == st["tokens_issued"] == 1, calls
    buckets = d["dw_api_call_duration_seconds_bucket"]
    assert buckets['endpoint="delivery_task",le="+Inf"'] == st["calls"], buckets
    assert buckets['endpoint="delivery_task",le="0.025"'] <= st["calls"], buckets
    assert d["dw_api_call_duration_seconds_sum"]['endpoint="delivery_task"'] > 0, d

    expiry = m["dw_token_expiry_timestamp_seconds"][""]
    assert now < expiry < now + 3 * 3600, (now, expiry)
    assert worker.stop() == 0
