"""Exactly-once on the mock cluster with a transaction coordinator that takes seconds to answer
(each EndTxn and AddOffsetsToTxn answered after 2 s): the transaction calls wait for it off the
loop, so /healthz and /metrics answer within a fraction of a second all along, and every task
still ends with exactly one result or dead letter, committed with its offset, nothing aborted
and no finished task asked again. Then SIGTERM: a clean exit."""
import threading
import time
import urllib.request

import harness as h
import scenario

SLOW_MS = 2000  # each slow answer; below the worker's 5 s per transaction call
SLOW_CALLS = 3  # of each of EndTxn and AddOffsetsToTxn
FAST_S = 0.5    # the most an admin request may take meanwhile


class Prober(threading.Thread):
    """GETs /healthz and /metrics in turn until stopped; records how long each took."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.times, self.failures = port, [], []
        self.started = []  # wall-clock time (time.time()) at each request's start
        self.done = threading.Event()

    def run(self):
        paths = ("/healthz", "/metrics")
        i = 0
        while not self.done.is_set():
            path = paths[i % 2]
            i += 1
            t0 = time.monotonic()
            self.started.append(time.time())
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                            timeout=30) as r:
                    r.read()
                    status = r.status
            except Exception as e:  # noqa: BLE001 -- reported as a failure below
                status = repr(e)
            self.times.append((time.monotonic() - t0, path))
            if status != 200:
                self.failures.append((path, status))
            self.done.wait(0.05)


def test_slow_transaction_calls_leave_the_loop_free(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-10")
    specs, records, expect = scenario.build("slow", 60, seed=11, never=False)
    sim.register(specs)
    worker = start_worker(kafka.bootstrap, sim.url, group="it-slow-txn",
                          env={"DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "slow-txn-0"},
                          extra='processing = { guarantee = "exactly_once"; transaction_interval_ms = 100; };')
    h.wait_until(lambda: "assigned" in worker.log_text(), 60, "the first assignment")
    h.produce(kafka.bootstrap, h.IN, records[:20])
    h.wait_until(lambda: len({r["key"] for r in h.dump(kafka.bootstrap, h.OUT) +
                              h.dump(kafka.bootstrap, h.DLQ)}) >= 15, 60, "the first outputs")

    worker.admin("/healthz")
    prober = Prober(worker.admin_port)
    prober.start()
    kafka.command("request-rtts EndTxn %d %d" % (SLOW_CALLS, SLOW_MS))
    kafka.command("request-rtts AddOffsetsToTxn %d %d" % (SLOW_CALLS, SLOW_MS))
    h.produce(kafka.bootstrap, h.IN, records[20:])
    # A job leaves the flow once the transaction that carries its output and offset commits
    # (the mock cluster does not keep offsets committed in a transaction to read back).
    h.wait_until(lambda: len({r["key"] for r in h.dump(kafka.bootstrap, h.OUT) +
                              h.dump(kafka.bootstrap, h.DLQ)}) >= len(expect) and
                 worker.metrics().get("dw_tasks_in_flight") == 0, 120,
                 "every output, committed")
    prober.done.set()
    prober.join(60)

    slowest = max(prober.times)
    h.log("slow transaction calls: %d admin requests, the slowest %.3f s (%s)"
          % (len(prober.times), slowest[0], slowest[1]))
    assert not prober.failures, "admin requests failed: %s" % prober.failures[:5]
    assert slowest[0] < FAST_S, "an admin request took %.3f s (%s) while the transaction " \
        "coordinator was slow: the loop was blocked" % slowest
    # The slow calls' time was probed all along: 2 s for each, about 20 probes a second.
    assert len(prober.times) >= SLOW_CALLS * SLOW_MS / 1000 * 10, len(prober.times)

    m = worker.metrics()
    assert m.get('dw_transactions_total{result="committed"}', 0) >= 1, m
    assert m.get('dw_transactions_total{result="aborted"}', 0) == 0, m
    assert "transaction aborted" not in worker.log_text()
    reqs = sim.requests()
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect,
                   reqs)
    ready_calls = {}
    for q in reqs:
        if q.get("task_id") and q.get("status") in (2, 3):
            ready_calls[q["task_id"]] = ready_calls.get(q["task_id"], 0) + 1
    twice = [k for k, n in ready_calls.items() if n > 1]
    assert not twice, "finished tasks asked again: %s" % twice[:5]
    assert worker.stop() == 0, "worker did not exit 0 after SIGTERM"
