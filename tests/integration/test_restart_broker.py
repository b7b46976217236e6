"""On a real Kafka 3.9 broker: a few hundred events of every kind, the worker stopped with
SIGTERM in the middle and started again. Every task ends with exactly one result or dead
letter, the group's committed offsets cover every input, and tasks finished before the restart
are not polled again after it. Prints the API calls per task the simulator recorded."""
import time

import harness as h
import scenario


def outputs(kafka):
    return len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))


def test_sigterm_restart_loses_and_repeats_nothing(start_sim, own_broker, start_worker):
    kafka = own_broker()
    for t in (h.IN, h.OUT, h.DLQ):
        h.kafkatool("create-topic", "-b", kafka.bootstrap, t, "4")
    sim = start_sim("--latency-ms", "5-50")
    specs, records, expect = scenario.build("rb", 380, seed=7)
    sim.register(specs)
    # A small in-flight bound: the worker pauses its partitions (backpressure), so at the
    # SIGTERM part of the input is not even consumed yet.
    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": "15000",
           "DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT": "60",
           "DELIVERY_WORKER_WORKER_RESUME_IN_FLIGHT": "40"}
    started = time.monotonic()
    w1 = start_worker(kafka.bootstrap, sim.url, group="it-broker", env=env, name="worker1")
    h.produce(kafka.bootstrap, h.IN, records)
    h.wait_until(lambda: outputs(kafka) >= len(records) // 3, 90, "a third of the outputs")
    assert w1.stop() == 0, "first worker did not exit 0 after SIGTERM"
    before = {r["key"] for r in h.dump(kafka.bootstrap, h.OUT)} | \
             {r["key"] for r in h.dump(kafka.bootstrap, h.DLQ)}
    mark = len(sim.requests())
    h.log("stopped after %d of %d outputs" % (len(before), len(records)))
    assert len(before) < len(records), "the restart came too late to test anything"

    w2 = start_worker(kafka.bootstrap, sim.url, group="it-broker", env=env, name="worker2")
    h.wait_until(lambda: outputs(kafka) >= len(records), 120, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-broker", h.IN), 60, "the final commits")
    reqs = sim.requests()
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect, reqs)
    again = {q["task_id"] for q in reqs[mark:] if q.get("task_id") in before}
    assert not again, "finished tasks polled again after the restart: %s" % sorted(again)[:5]
    st = sim.stats()
    assert st["rate_limited"] == 0 and st["max_calls_in_1s"] <= 50, st
    assert w2.stop() == 0
    h.log("real broker: %d records, %d API calls, %.2f calls per valid task, %.1f s"
          % (len(records), st["calls"], scenario.calls_per_task(reqs, expect), time.monotonic() - started))
