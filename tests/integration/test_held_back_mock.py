"""One 429 cannot stop the worker. The API answers a call 429 with x-ogw-ratelimit-reset: 86399
(a day): the worker holds its calls back for at most a minute and a little (Feishu's longest
rate window is a minute), /readyz (still 200) and dw_api_held_back_seconds say it is held back,
a never-ready task still reaches poll.deadline_ms during the pause and is dead-lettered as
deadline_exceeded, and calls resume once the clamped block is over: a task produced during
the pause resolves."""
import json
import time

import harness as h

DEADLINE_MS = 6000
CLAMP_S = 65  # the longest block the worker honours (60 s window + 5 s margin)


def task_calls(sim):
    return [r for r in sim.requests() if "/delivery_tasks/" in r["path"]]


def test_one_day_429_holds_calls_back_for_a_minute(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "hb-never", "final": "never",
                   "pending": "rotate"},
                  {"website_id": h.WEBSITE, "delivery_task_id": "hb-late", "ready_after_ms": 0}])
    worker = start_worker(kafka.bootstrap, sim.url, group="it-held-back",
                          env={"DELIVERY_WORKER_POLL_DEADLINE_MS": str(DEADLINE_MS)})
    h.produce(kafka.bootstrap, h.IN, [h.event("hb-never")])
    h.wait_until(lambda: len(task_calls(sim)) >= 1, 30, "the first call of the never-ready task")

    sim.fault(kind="rate_limit", reset_s=86399, count=1)
    h.wait_until(lambda: sim.stats()["faults_pending"] == 0, 30, "the 429 answered")
    rejected_at = time.monotonic()
    calls_at_429 = len(task_calls(sim))

    # Held back, and saying so: /readyz stays 200 (no restart, no rotation change), the gauge
    # shows the seconds left, never more than the clamp.
    status, body = worker.admin("/readyz")
    assert status == 200 and "held back by the API rate limit" in body, (status, body)
    held = worker.metrics()["dw_api_held_back_seconds"]
    assert 0 < held <= CLAMP_S, held

    # The never-ready task reaches its deadline during the pause: dead-lettered, saying why.
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.DLQ), DEADLINE_MS / 1000 + 30,
                 "the never-ready task dead-lettered during the pause")
    dlq = h.dump(kafka.bootstrap, h.DLQ)
    assert len(dlq) == 1 and dlq[0]["key"] == "hb-never", dlq
    hdr = dlq[0]["headers"]
    assert hdr["dlq.reason"] == "deadline_exceeded", hdr
    assert "rate limit" in hdr["dlq.error_msg"], hdr
    assert len(task_calls(sim)) == calls_at_429, "a call made while held back"
    assert time.monotonic() - rejected_at < CLAMP_S, "dead-lettered only after the pause"

    # Calls resume after the clamped block, not in a day: a task produced meanwhile resolves.
    h.produce(kafka.bootstrap, h.IN, [h.event("hb-late")])
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.OUT), CLAMP_S + 30, "calls resumed")
    out = h.dump(kafka.bootstrap, h.OUT)
    assert len(out) == 1 and out[0]["key"] == "hb-late", out
    assert json.loads(out[0]["value"])["outcome"] == "succeeded", out
    h.wait_until(lambda: worker.metrics()["dw_api_held_back_seconds"] == 0, 10, "no longer held")
    status, body = worker.admin("/readyz")
    assert status == 200 and body == "ready\n", (status, body)
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-held-back", h.IN), 30, "commits")
    assert worker.stop() == 0
