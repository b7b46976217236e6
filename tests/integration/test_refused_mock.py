"""A gateway that answers nothing but 429 (each with x-ogw-ratelimit-reset: 86399) holds every
call back, one clamped block after another. Tasks that never got a call behind it still reach
poll.deadline_ms: once the API has refused every call for a whole deadline, they are
dead-lettered as deadline_exceeded naming the rate limit, instead of holding their partition's
offset for as long as the gateway refuses."""
import time

import harness as h

DEADLINE_MS = 6000
CLAMP_S = 65  # the longest block the worker honours (60 s window + 5 s margin)
TASKS = ["rf-%d" % i for i in range(5)]


def task_calls(sim):
    return [r for r in sim.requests() if "/delivery_tasks/" in r["path"]]


def test_refusing_gateway_leads_to_deadline_exceeded(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                  for t in TASKS])
    worker = start_worker(kafka.bootstrap, sim.url, group="it-refused",
                          env={"DELIVERY_WORKER_POLL_DEADLINE_MS": str(DEADLINE_MS)})
    # The first two calls are refused: the second comes a clamped block after the first. One
    # task first, so that no second call leaves before the first 429 is back; the others then
    # wait behind the block without a call.
    sim.fault(kind="rate_limit", reset_s=86399, count=2)
    h.produce(kafka.bootstrap, h.IN, [h.event(TASKS[0])])
    h.wait_until(lambda: sim.stats()["faults_pending"] == 1, 30, "the first call refused")
    first = time.monotonic()
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in TASKS[1:]])
    h.wait_until(lambda: len(task_calls(sim)) >= 2, CLAMP_S + 30, "the call after the block")
    second = time.monotonic() - first
    assert second >= CLAMP_S - 5, "the block was not honoured: %.1f s" % second

    # Refused for longer than the deadline: every task is dead-lettered, the four that never
    # got a call included, without waiting out another block.
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.DLQ)) >= len(TASKS), 30,
                 "every task dead-lettered after the second 429")
    dlq = h.dump(kafka.bootstrap, h.DLQ)
    assert sorted(d["key"] for d in dlq) == sorted(TASKS), dlq
    for d in dlq:
        hdr = d["headers"]
        assert hdr["dlq.reason"] == "deadline_exceeded", hdr
        assert "rate limit" in hdr["dlq.error_msg"], hdr
    assert len(task_calls(sim)) == 2, "calls made while held back"
    assert h.dump(kafka.bootstrap, h.OUT) == [], "a result published"
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-refused", h.IN), 30, "commits")
    h.log("refused twice %.0f s apart: %d tasks dead-lettered, %d calls" % (
        second, len(dlq), len(task_calls(sim))))
    assert worker.stop() == 0
