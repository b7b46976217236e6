"""Short-lived tokens: the simulator issues tenant tokens that live 4 s. The worker refreshes
each one before it expires (from the returned `expire`, not an assumed 7200 s), so no call is
ever made with an expired token, and every task still resolves. Also: a second SIGTERM during
the drain exits at once."""
import signal

import harness as h
import scenario


def test_short_lived_tokens_are_refreshed_before_expiry(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--token-ttl", "4")
    specs, records, expect = scenario.build("tx", 60, never=False)
    for s in specs:  # spread readiness over ~10 s so polling spans several token lifetimes
        s["ready_after_ms"] = 4000 + s["ready_after_ms"] * 4
    sim.register(specs)
    worker = start_worker(kafka.bootstrap, sim.url, group="it-token")
    h.produce(kafka.bootstrap, h.IN, records)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 90, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-token", h.IN), 30, "commits")
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect,
                   sim.requests())
    st = sim.stats()
    h.log("token ttl 4 s: %d tokens issued, %d token calls, %d API calls" %
          (st["tokens_issued"], st["token_calls"], st["calls"]))
    assert st["tokens_issued"] >= 3, st
    assert st["by_code"].get("99991663", 0) == 0, "a call used an expired token: %s" % st
    assert worker.stop() == 0

    # A second signal while draining ends the worker at once.
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "tx-slow", "final": "never"}])
    h.produce(kafka.bootstrap, h.IN, [h.event("tx-slow")])
    w2 = start_worker(kafka.bootstrap, sim.url, group="it-token", name="worker2")
    h.wait_until(lambda: any(q.get("task_id") == "tx-slow" for q in sim.requests()), 30, "tx-slow polled")
    w2.proc.stopping = True
    w2.proc.send_signal(signal.SIGTERM)
    h.wait_until(lambda: "draining" in w2.log_text(), 10, "the drain to start")
    w2.proc.send_signal(signal.SIGTERM)
    rc = w2.proc.wait(timeout=10 * h.SLOW)
    assert rc == 128 + signal.SIGTERM, rc
