"""On a real Kafka 3.9 broker, processing.guarantee = "exactly_once": a few hundred events of
every kind; the first worker is killed with SIGKILL in the middle (its open transaction is
left behind), the second (same group instance id, so the same transactional id) fences it and
is stopped with SIGTERM later, a third finishes. A read_committed reader of the results and
dead-letter topics sees exactly one output per event; a read_uncommitted reader may also see
the aborted ones. The group's committed offsets cover every input."""
import time

import harness as h
import scenario



def committed_outputs(kafka):
    return (h.dump(kafka.bootstrap, kafka.OUT, isolation="read_committed"),
            h.dump(kafka.bootstrap, kafka.DLQ, isolation="read_committed"))


def count(kafka):
    out, dlq = committed_outputs(kafka)
    return len({r["key"] for r in out} | {r["key"] for r in dlq})


def test_killed_and_fenced_workers_write_each_output_once(start_sim, start_worker, broker):
    kafka = broker.topics("eos", 4)
    group = kafka.group
    sim = start_sim("--latency-ms", "5-50")
    specs, records, expect = scenario.build("eo", 300, seed=11)
    sim.register(specs)
    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": "15000",
           "DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "eos-0"}
    extra = 'processing = { guarantee = "exactly_once"; transaction_interval_ms = 100; };'
    started = time.monotonic()

    def worker(name):
        return start_worker(kafka.bootstrap, sim.url, group=group, env=env, extra=extra,
                            name=name, topics=kafka)

    w1 = worker("worker1")
    h.produce(kafka.bootstrap, kafka.IN, records)
    h.wait_until(lambda: count(kafka) >= len(records) // 3, 90, "a third of the outputs")
    h.kill_worker(w1)
    h.log("worker1 killed with SIGKILL after %d committed outputs" % count(kafka))

    w2 = worker("worker2")
    h.wait_until(lambda: count(kafka) >= 2 * len(records) // 3, 90, "two thirds of the outputs")
    m = w2.metrics()
    assert m.get('dw_transactions_total{result="committed"}', 0) > 0, m
    assert w2.stop() == 0, "worker2 did not exit 0 after SIGTERM"
    h.log("worker2 stopped with SIGTERM after %d committed outputs" % count(kafka))

    w3 = worker("worker3")
    h.wait_until(lambda: count(kafka) >= len(expect), 120, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, group, kafka.IN), 60, "the final offsets")
    out, dlq = committed_outputs(kafka)
    scenario.check(out, dlq, records, expect, sim.requests())  # no duplicates allowed
    raw = len(h.dump(kafka.bootstrap, kafka.OUT, isolation="read_uncommitted")) + \
        len(h.dump(kafka.bootstrap, kafka.DLQ, isolation="read_uncommitted"))
    assert w3.stop() == 0
    h.log("exactly-once: %d events, %d outputs read_committed (0 duplicates), %d records "
          "read_uncommitted (%d from aborted transactions), %.2f calls per valid task, %.1f s"
          % (len(records), len(out) + len(dlq), raw, raw - len(out) - len(dlq),
             scenario.calls_per_task(sim.requests(), expect), time.monotonic() - started))
