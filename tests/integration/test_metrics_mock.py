"""What operators watch: /readyz says why the worker is not ready (before its first assignment,
while draining), /healthz answers, and /metrics agrees with what the simulator recorded and
what is on the topics."""
import threading

import harness as h
import scenario


def test_readyz_healthz_and_metrics_agree(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-10")
    specs, records, expect = scenario.build("mx", 120, never=False)
    sim.register(specs)
    worker = start_worker(kafka.bootstrap, sim.url, group="it-metrics")
    # The mock cluster takes 3 s to assign: not ready until then, and it says why.
    status, body = worker.admin("/readyz")
    assert status == 503 and "waiting for the first partition assignment" in body, (status, body)
    assert worker.admin("/healthz")[0] == 200
    h.wait_until(lambda: worker.admin("/readyz")[0] == 200, 30, "ready")
    h.produce(kafka.bootstrap, h.IN, records)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 90, "every output")
    results, dead = h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ)
    scenario.check(results, dead, records, expect, sim.requests())

    def settled():
        m = worker.metrics()
        return m if m.get("dw_tasks_in_flight") == 0 else None
    m = h.wait_until(settled, 30, "nothing in flight")
    st = sim.stats()
    calls = sum(v for k, v in m.items() if k.startswith("dw_api_calls_total{"))
    assert calls == st["calls"], (calls, st)
    for code, n in st["by_code"].items():
        assert m.get('dw_api_calls_total{code="%s"}' % code, 0) == n, (code, n, m)
    assert m["dw_tasks_consumed_total"] == len(records), m
    succeeded = sum(1 for r in results if '"outcome":"succeeded"' in r["value"])
    assert m['dw_tasks_resolved_total{outcome="succeeded"}'] == succeeded, m
    assert m['dw_tasks_resolved_total{outcome="failed"}'] == len(results) - succeeded, m
    for reason in ("invalid_event", "task_not_found", "invalid_request"):
        n = sum(1 for d in dead if d["headers"]["dlq.reason"] == reason)
        assert m.get('dw_dead_letters_total{reason="%s"}' % reason, 0) == n, (reason, n, m)
    valid = len(records) - len(scenario.INVALID_VALUES)
    assert m["dw_task_polls_count"] == valid, m
    assert m["dw_task_polls_sum"] == st["calls"], m
    assert m["dw_token_refreshes_total"] == st["tokens_issued"] == 1, m
    assert m["dw_api_rate_limited_total"] == 0 and m["dw_app_healthy"] == 1, m
    assert m["dw_limiter_rate_per_second"] == 50, m
    h.log("metrics agree: %d calls, %d consumed" % (calls, m["dw_tasks_consumed_total"]))

    # Draining: /readyz turns 503 while the worker finishes a task that takes a while.
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "mx-slow", "ready_after_ms": 4000}])
    h.produce(kafka.bootstrap, h.IN, [h.event("mx-slow")])
    h.wait_until(lambda: worker.metrics().get("dw_tasks_in_flight") == 1, 30, "mx-slow in flight")
    worker.proc.stopping = True
    worker.proc.send_signal(15)
    h.wait_until(lambda: "draining" in worker.admin("/readyz")[1], 10, "not ready while draining")
    assert worker.proc.wait(timeout=60 * h.SLOW) == 0
    assert any(r["key"] == "mx-slow" for r in h.dump(kafka.bootstrap, h.OUT))
