"""Answers the API does not send, on the mock cluster. A code 0 answer whose data is malformed
(a string status, delivery as an array, a 4,000-character application id) is retried and then
dead-lettered as malformed_answer with dlq.error_msg saying what was wrong, never as "still
pending"; one that goes away is just retried. A 302 whose body looks like a success is never a
result: retried, then dead-lettered as deadline_exceeded naming the HTTP status. A genuine
status 3 with a 200-character extra_info is a result (outcome failed, the text carried whole),
and one with 900 characters is a result with the text cut and marked. An event with invalid
UTF-8 in event_id is invalid_event. Everything on the results topic is valid UTF-8 JSON."""
import base64
import json

import harness as h

W = h.WEBSITE
SUCCESS = {"code": 0, "msg": "success",
           "data": {"status": 2, "delivery": {"application_id": "6987654321012345678"}}}
CUT_MARK = "\u2026"


def raw(body, http=200, count=1000000):
    return {"kind": "raw", "http": http, "msg": json.dumps(body), "count": count}


def test_answers_the_api_does_not_send(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    status_string = {"code": 0, "msg": "success",
                     "data": {"status": "2", "delivery": {"application_id": "1"}}}
    delivery_array = {"code": 0, "msg": "success",
                      "data": {"status": 2, "delivery": [{"application_id": "1"}]}}
    long_id = {"code": 0, "msg": "success",
               "data": {"status": 2, "delivery": {"application_id": "7" * 4000}}}
    malformed = {  # task -> (errors, dlq.error_msg)
        "mf-status-string": ([raw(status_string)], "status is not an integer"),
        "mf-delivery-array": ([raw(delivery_array)], "delivery is not an object"),
        "mf-long-id": ([raw(long_id)], "delivery.application_id too long"),
    }
    dup200, dup900 = "8" * 200, "9" * 900
    specs = [{"website_id": W, "delivery_task_id": t, "ready_after_ms": 0, "errors": e}
             for t, (e, _) in malformed.items()]
    specs += [
        {"website_id": W, "delivery_task_id": "mf-redirect", "ready_after_ms": 0,
         "errors": [raw(SUCCESS, http=302)]},
        {"website_id": W, "delivery_task_id": "mf-passing", "ready_after_ms": 0,
         "errors": [raw(status_string, count=2)]},
        {"website_id": W, "delivery_task_id": "mf-failed-200", "ready_after_ms": 0,
         "final": "failed", "status_msg": "same application exist", "extra_info": dup200},
        {"website_id": W, "delivery_task_id": "mf-failed-900", "ready_after_ms": 0,
         "final": "failed", "status_msg": "same application exist", "extra_info": dup900},
    ]
    records = [h.event(s["delivery_task_id"], event_id="ev-" + s["delivery_task_id"])
               for s in specs]
    # A task the API would resolve: only the event's bytes keep it from the results topic.
    specs.append({"website_id": W, "delivery_task_id": "mf-bad-utf8", "ready_after_ms": 0})
    sim.register(specs)
    bad_utf8 = b'{"website_id":"%s","delivery_task_id":"mf-bad-utf8","event_id":"e-\xc3\x28"}' % W.encode()
    records.append({"key": "mf-bad-utf8", "value_b64": base64.b64encode(bad_utf8).decode()})

    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": "4000"}
    worker = start_worker(kafka.bootstrap, sim.url, group="it-malformed", env=env)
    h.produce(kafka.bootstrap, h.IN, records)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 60, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-malformed", h.IN), 30, "commits")

    out = h.dump(kafka.bootstrap, h.OUT)
    dlq = {d["key"]: d for d in h.dump(kafka.bootstrap, h.DLQ)}
    results = {}
    for r in out:
        assert "value_b64" not in r, "a result that is not UTF-8: %s" % r
        results[r["key"]] = json.loads(r["value"])
    h.log("results:", sorted(results), "dead letters:",
          {k: (d["headers"]["dlq.reason"], d["headers"].get("dlq.error_msg")) for k, d in dlq.items()})
    assert len(out) + len(dlq) == len(records), (len(out), sorted(dlq))

    for task, (_, why) in malformed.items():
        hd = dlq[task]["headers"]
        assert hd["dlq.reason"] == "malformed_answer", (task, hd)
        assert hd["dlq.error_msg"] == why, (task, hd)
        assert int(hd["dlq.attempts"]) >= 2, (task, hd)  # retried before it was given up
        assert task not in results

    hd = dlq["mf-redirect"]["headers"]
    assert hd["dlq.reason"] == "deadline_exceeded", hd
    assert "HTTP 302 is not an answer of the API" in hd["dlq.error_msg"], hd
    assert "still pending" not in hd["dlq.error_msg"], hd
    assert "mf-redirect" not in results

    assert results["mf-passing"]["outcome"] == "succeeded", results["mf-passing"]

    r = results["mf-failed-200"]
    assert r["outcome"] == "failed" and r["existing_application_id"] == dup200, r
    r = results["mf-failed-900"]
    assert r["outcome"] == "failed", r
    cut = r["existing_application_id"]
    assert cut.endswith(CUT_MARK) and dup900.startswith(cut[:-1]) and len(cut) < 512, cut

    hd = dlq["mf-bad-utf8"]["headers"]
    assert hd["dlq.reason"] == "invalid_event", hd
    assert hd["dlq.error_msg"] == "value is not valid UTF-8", hd
    assert int(hd["dlq.attempts"]) == 0, hd

    m = worker.metrics()
    assert m.get('dw_dead_letters_total{reason="malformed_answer"}') == len(malformed), \
        {k: v for k, v in m.items() if k.startswith("dw_dead_letters_total")}
    assert worker.stop() == 0
