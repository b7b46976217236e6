"""Load: 10,000 tasks at once. The limiter keeps calls at the simulator's 50/s with no 429,
backpressure pauses the partitions at worker.max_in_flight and resumes them below the low
mark without losing the group session (no rebalance), and every task is resolved."""
import re
import time

import harness as h

N = 1500  # 1000 in the first 20 s (50/s), then 1000/min: about 50 s
PENDING = 10000


def test_ten_thousand_tasks_at_the_rate_limit(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    w = h.WEBSITE
    sim.register([{"website_id": w, "delivery_task_id": "sc-%05d" % i, "ready_after_ms": 0}
                  for i in range(PENDING)])
    worker = start_worker(kafka.bootstrap, sim.url, group="it-scale",
                          env={"DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT": "2000",
                               "DELIVERY_WORKER_WORKER_RESUME_IN_FLIGHT": "1000",
                               "DELIVERY_WORKER_POLL_DEADLINE_MS": "600000"})
    h.produce(kafka.bootstrap, h.IN, [h.event("sc-%05d" % i) for i in range(PENDING)])
    paused_seen = h.wait_until(lambda: worker.metrics().get("dw_partitions_paused", 0) > 0, 60,
                               "partitions paused at the in-flight bound")
    m = worker.metrics()
    assert m["dw_tasks_in_flight"] <= 2000, m
    started = time.monotonic()
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) >= N, 300, "%d results" % N)
    elapsed = time.monotonic() - started
    st = sim.stats()
    m = worker.metrics()
    h.log("scale: %d results in %.0f s, %d calls, max %d calls in 1 s, %d rate limited, "
          "consumed %d, in flight %d"
          % (N, elapsed, st["calls"], st["max_calls_in_1s"], st["rate_limited"],
             m["dw_tasks_consumed_total"], m["dw_tasks_in_flight"]))
    assert st["rate_limited"] == 0, st
    assert st["max_calls_in_1s"] <= 50, st
    # Backpressure resumed (more than the bound was consumed), and the session was never lost.
    assert m["dw_tasks_consumed_total"] > 2000, m
    text = worker.log_text()
    assert not re.search(r"(lost|revoked) \d+ partition", text) and "SESSTMOUT" not in text, text[-3000:]
    assert worker.stop(timeout=120) == 0
