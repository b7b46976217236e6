"""Upstream text never carries a secret out. A token endpoint that refuses the app and quotes
the request in its msg (app secret and all, after a CR LF): the secret is in no log line, not on
/readyz (which still says why: "app secret invalid") and not on /metrics. Then a delivery-task
answer whose msg quotes the app secret, the tenant_access_token the worker holds (bare and as
"Bearer ..."), terminal escapes and a forged log line: its dead letter's dlq.error_msg carries
none of them, and neither does the log."""
import json

import harness as h

SECRET = "Wr0ngS3cret-9f2c1e7a"       # what the worker is configured with (refused)
RIGHT = "R1ghtS3cret-4b8d0a6c"        # the simulator's secret for the app


def clean(text, secrets):
    for s in secrets:
        assert s not in text, "secret %r found in: %r" % (s, text[:2000])


def test_upstream_text_carries_no_secret_out(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--app", "cli_test:" + RIGHT)
    sim.config(token_echo=True)
    bad = start_worker(kafka.bootstrap, sim.url, group="it-scrub", secret=SECRET,
                       name="bad")
    h.wait_until(lambda: sim.stats()["token_calls"] >= 3, 30, "token retries")
    h.wait_until(lambda: "app-level failure" in bad.log_text(), 10, "the reason in the log")
    h.wait_until(lambda: "app-level failure" in bad.admin("/readyz")[1], 30,
                 "the reason on /readyz")
    status, body = bad.admin("/readyz")
    assert status == 503 and "app secret invalid" in body, (status, body)
    assert "[redacted]" in body and body.count("\n") == 1 and "\r" not in body, body
    clean(body, [SECRET])
    status, metrics = bad.admin("/metrics")
    assert status == 200
    clean(metrics, [SECRET])
    log = bad.log_text()
    assert "app secret invalid" in log, log[-2000:]
    clean(log, [SECRET])
    assert bad.stop() == 0
    clean(bad.log_text(), [SECRET])

    # The right secret; a task whose answer quotes what it should not.
    sim.config(token_echo=False)
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "sc-ok", "ready_after_ms": 0}])
    good = start_worker(kafka.bootstrap, sim.url, group="it-scrub", secret=RIGHT,
                        name="good")
    h.produce(kafka.bootstrap, h.IN, [h.event("sc-ok")])
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.OUT), 30, "a first result")
    tokens = {r["token"] for r in sim.requests() if "/delivery_tasks/" in r["path"] and r["token"]}
    assert tokens, "no token seen by the simulator"
    token = tokens.pop()
    sim.fault(kind="code", code=1002002, http=400,
              msg="bad request\r\n{\"level\":\"error\",\"msg\":\"forged\"} secret=%s "
                  "Authorization: Bearer %s raw %s \x1b[2J end" % (RIGHT, token, token))
    h.produce(kafka.bootstrap, h.IN, [h.event("sc-bad")])
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.DLQ), 30, "the dead letter")
    dlq = h.dump(kafka.bootstrap, h.DLQ)
    assert len(dlq) == 1 and dlq[0]["key"] == "sc-bad", dlq
    hdr = dlq[0]["headers"]
    assert hdr["dlq.reason"] == "invalid_request", hdr
    msg = hdr["dlq.error_msg"]
    assert msg.startswith("bad request") and msg.endswith("end"), msg
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in msg), repr(msg)
    clean(json.dumps(dlq), [RIGHT, token])
    status, metrics = good.admin("/metrics")
    clean(metrics, [RIGHT, token])
    assert good.stop() == 0
    log = good.log_text()
    clean(log, [RIGHT, token])
    assert '{"level":"error","msg":"forged"}' not in log.splitlines(), "a forged log line"
