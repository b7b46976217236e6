"""An app-level failure (a wrong app secret) is not the tasks' fault: no task is dead-lettered,
the worker says why in its log and keeps retrying the token with backoff, SIGTERM still exits
0, and a worker with the right secret then resolves every task: nothing is lost."""
import harness as h
import scenario


def main(procs):
    kafka = h.MockKafka(procs)
    sim = h.Sim(procs)
    specs, records, expect = scenario.build("af", 34, never=False)
    sim.register(specs)
    h.produce(kafka.bootstrap, h.IN, records)
    env = {"DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000"}
    bad = h.Worker(procs, kafka.bootstrap, sim.url, group="it-app", secret="wrong", env=env,
                   name="bad").start()
    h.wait_until(lambda: sim.stats()["token_calls"] >= 3, 30, "token retries")
    h.wait_until(lambda: "app-level failure" in bad.log_text(), 10, "the reason in the log")
    # Invalid events are still dead-lettered (they are the event's fault); no valid task is.
    invalid = sum(1 for k, (kind, r) in expect.items() if r == "invalid_event")
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.DLQ)) >= invalid, 30, "invalid events dead-lettered")
    st = sim.stats()
    assert st["calls"] == 0, "delivery-task calls made without a token: %s" % st
    assert len(h.dump(kafka.bootstrap, h.OUT)) == 0
    assert all(d["headers"]["dlq.reason"] == "invalid_event" for d in h.dump(kafka.bootstrap, h.DLQ))
    assert "app secret" in bad.log_text()
    assert bad.stop() == 0

    good = h.Worker(procs, kafka.bootstrap, sim.url, group="it-app", name="good").start()
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 90, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-app", h.IN), 30, "commits")
    # The first worker committed only up to its first unfinished task, so invalid events after
    # it are dead-lettered a second time (at-least-once); valid tasks must not repeat.
    dups = scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records,
                          expect, sim.requests(), allow_duplicates=True)
    assert dups <= invalid, dups
    assert len(h.dump(kafka.bootstrap, h.OUT)) == sum(1 for k, (kind, r) in expect.items() if kind == "result")
    assert good.stop() == 0


h.run(main)
