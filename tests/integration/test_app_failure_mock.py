"""An app-level failure (a wrong app secret) is not the tasks' fault: the worker stops taking
new work (partitions paused), dead-letters nothing, says why in its log and keeps retrying the
token with backoff; SIGTERM still exits 0, and a worker with the right secret then resolves
every task exactly once: nothing is lost. /metrics counts the failed token requests by cause:
"refused" for the wrong secret, "unreachable" for an auth endpoint nobody listens on."""
import socket

import harness as h
import scenario


def test_wrong_app_secret_pauses_work_and_loses_nothing(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    specs, records, expect = scenario.build("af", 34, never=False)
    sim.register(specs)
    h.produce(kafka.bootstrap, h.IN, records)
    env = {"DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000"}
    bad = start_worker(kafka.bootstrap, sim.url, group="it-app", secret="wrong", env=env,
                       name="bad")
    h.wait_until(lambda: sim.stats()["token_calls"] >= 3, 30, "token retries")
    h.wait_until(lambda: "app-level failure" in bad.log_text(), 10, "the reason in the log")
    st = sim.stats()
    assert st["calls"] == 0, "delivery-task calls made without a token: %s" % st
    assert len(h.dump(kafka.bootstrap, h.OUT)) == 0 and len(h.dump(kafka.bootstrap, h.DLQ)) == 0
    assert "app secret" in bad.log_text()
    failures = 'dw_token_refresh_failures_total{cause="%s"}'
    h.wait_until(lambda: bad.metrics()[failures % "refused"] >= 2, 30, "refusals counted")
    m = bad.metrics()
    assert m[failures % "unreachable"] == 0 and m[failures % "no_ticket"] == 0, m
    assert m["dw_token_refreshes_total"] == 0, m
    assert bad.stop() == 0

    # Nobody listens where the API should be: counted as unreachable, retried, nothing lost.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        nowhere = "http://127.0.0.1:%d" % closed.getsockname()[1]
        lost = start_worker(kafka.bootstrap, nowhere, group="it-app", env=env,
                            name="unreachable")
        h.wait_until(lambda: lost.metrics()[failures % "unreachable"] >= 2, 30,
                     "unreachable token endpoint counted")
        assert lost.metrics()[failures % "refused"] == 0
        assert lost.stop() == 0
    assert len(h.dump(kafka.bootstrap, h.OUT)) == 0 and len(h.dump(kafka.bootstrap, h.DLQ)) == 0

    good = start_worker(kafka.bootstrap, sim.url, group="it-app", name="good")
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 90, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-app", h.IN), 30, "commits")
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect,
                   sim.requests())

    # A scope problem (99991672) in the middle of work: paused, probed, cleared, nothing lost.
    specs2, records2, expect2 = scenario.build("af2", 34, seed=3, never=False)
    sim.register(specs2)
    sim.fault(kind="code", code=99991672, http=400, count=4)
    h.produce(kafka.bootstrap, h.IN, records2)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records) + len(records2), 90, "every output after the scope failure")
    assert "app-level failure cleared" in good.log_text(), "the failure was not seen and cleared"
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records2, expect2,
                   sim.requests())
    assert good.stop() == 0
