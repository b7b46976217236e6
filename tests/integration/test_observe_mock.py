"""What an operator sees of one task and of an idle replica. An event's headers (a W3C
traceparent) come back on its result and on its dead letter; the JSON log's outcome lines carry
the task's website, tenant, event id, outcome, reason, calls and duration as fields of their own;
and a replica the group gives no partition (one more than the input topic has) is ready, idle,
so a rolling update does not stall on it."""
import json

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
