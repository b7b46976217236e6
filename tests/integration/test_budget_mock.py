"""The API budget with arrival jitter and across replicas. One replica against a simulator that
counts each call up to 150 ms after it arrives gets no 429. Two replicas, each configured for
the whole budget, draw from one budget in a shared store (a real redis-server on a loopback
port) and get no 429 either; when the store is stopped they fall back at once to their share of
the partitions (the metrics say so) and go on resolving tasks, and when it is back they return
to it."""
import shutil

import pytest

import harness as h


def results(kafka):
    return len(h.dump(kafka.bootstrap, h.OUT))


def test_jittery_server_no_429(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    # Only the per-second window, so that a backlog meets it at once: 600 calls in ~15 s.
    sim = start_sim("--arrival-jitter-ms", "150", "--rate-per-minute", "0")
    n = 600
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "jt-%04d" % i,
                   "ready_after_ms": 0} for i in range(n)])
    worker = start_worker(kafka.bootstrap, sim.url, group="it-jitter",
                          env={"DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": "0"})
    h.produce(kafka.bootstrap, h.IN, [h.event("jt-%04d" % i) for i in range(n)])
    h.wait_until(lambda: results(kafka) >= n, 120, "%d results" % n)
    st = sim.stats()
    m = worker.metrics()
    h.log("jitter 150 ms: %d calls, %d rate limited, max %d in 1 s" %
          (st["calls"], st["rate_limited"], st["max_calls_in_1s"]))
    assert st["rate_limited"] == 0, st
    assert m["dw_limiter_budget_per_second"] == 50, m
    assert m["dw_limiter_share_per_second"] == 50, m  # one replica, every partition
    assert m["dw_limiter_store_in_use"] == 0, m
    assert worker.stop() == 0


def store_in_use(workers, value):
    return all(w.metrics()["dw_limiter_store_in_use"] == value for w in workers)


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="no redis-server: run deploy/setup.sh --quick")
def test_shared_store_and_fallback(procs, start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    redis = h.Redis(procs)
    sim = start_sim("--rate-per-second", "20", "--rate-per-minute", "0")
    n = 900
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "ss-%04d" % i,
                   "ready_after_ms": 0} for i in range(n)])
    # Each replica is configured for the whole budget: only the store keeps them inside it.
    env = {"DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": "20",
           "DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": "0",
           "DELIVERY_WORKER_LIMITS_STORE": redis.url}
    workers = [start_worker(kafka.bootstrap, sim.url, group="it-store", env=env, name="w%d" % i)
               for i in range(2)]
    h.wait_until(lambda: all(w.metrics().get("dw_limiter_share_per_second") == 10 for w in workers)
                 or store_in_use(workers, 1), 60, "both replicas assigned")
    h.produce(kafka.bootstrap, h.IN, [h.event("ss-%04d" % i) for i in range(n)])
    h.wait_until(lambda: store_in_use(workers, 1), 60, "both replicas using the store")
    h.wait_until(lambda: results(kafka) >= 250, 120, "250 results through the store")
    st = sim.stats()
    h.log("store: %d calls, %d rate limited, max %d in 1 s" %
          (st["calls"], st["rate_limited"], st["max_calls_in_1s"]))
    assert st["rate_limited"] == 0, st
    assert st["max_calls_in_1s"] <= 20, st
    for w in workers:
        m = w.metrics()
        assert m["dw_limiter_share_per_second"] == 20, m  # the whole budget, drawn from the store

    # The store stops: each replica falls back to its share (2 of 4 partitions: 10/s). For one
    # window after the store's last answer the ceiling may be lower still (it leaves the other
    # replica what the store said it had used), so the share shows within a few seconds.
    redis.stop()
    h.wait_until(lambda: store_in_use(workers, 0), 30, "both replicas off the store")
    h.wait_until(lambda: all(w.metrics()["dw_limiter_share_per_second"] == 10 for w in workers),
                 5, "both replicas at their share of 10/s")
    before = results(kafka)
    limited = sim.stats()["rate_limited"]
    h.wait_until(lambda: results(kafka) >= before + 150, 120, "150 results on local shares")
    st = sim.stats()
    h.log("fallback: %d calls, %d rate limited" % (st["calls"], st["rate_limited"]))
    assert st["rate_limited"] == limited, st
    assert "shared budget store 127.0.0.1:%d" % redis.port in workers[0].log_text()

    # The store is back: both replicas return to it.
    redis.start()
    h.wait_until(lambda: store_in_use(workers, 1), 60, "both replicas back on the store")
    h.wait_until(lambda: results(kafka) >= n, 180, "%d results" % n)
    st = sim.stats()
    h.log("all: %d calls, %d rate limited" % (st["calls"], st["rate_limited"]))
    assert st["rate_limited"] == 0, st
    # No task lost, none dead-lettered, through the fallback and back.
    assert {r["key"] for r in h.dump(kafka.bootstrap, h.OUT)} == {"ss-%04d" % i for i in range(n)}
    assert h.dump(kafka.bootstrap, h.DLQ) == []
    for w in workers:
        assert w.stop() == 0
