"""Hostile API answers (the simulator's hostile fault kinds) against a batch of tasks on the mock
cluster: a body cut short after its Content-Length was announced, an 8 MiB body (beyond
feishu.max_response_bytes), a slowloris body (headers, then a byte every 500 ms, beyond
feishu.request_timeout_ms), invalid UTF-8 in a message (of a retryable error, and of an
app-level failure, which the worker logs), JSON nested 10000 deep, the normal answer labelled
text/html, and an empty 200. The worker stays up (process alive, /healthz 200
while and after the faults hit), loses nothing (exactly one result or dead letter of the
expected kind per event), counts every hostile answer in dw_api_calls_total (transport or
unparsable), and every log line it writes stays valid UTF-8 JSON."""
import json

import harness as h
import scenario

# kind -> (calls, the dw_api_calls_total code the worker counts them under; None: the answer
# itself counts, under its own code)
HOSTILE = {
    "truncated": (3, "transport"),
    "huge": (3, "transport"),
    "slowloris": (2, "transport"),
    "bad_utf8": (3, "1002001"),
    "deep_json": (3, "unparsable"),
    "empty_200": (3, "unparsable"),
    "wrong_type": (3, None),
}


def calls(metrics, code):
    return metrics.get('dw_api_calls_total{code="%s"}' % code, 0)


def test_hostile_answers_are_retried_or_dead_lettered(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    specs, records, expect = scenario.build("hm", 40, seed=5, never=False)
    sim.register(specs)
    env = {"DELIVERY_WORKER_FEISHU_REQUEST_TIMEOUT_MS": "2000",
           "DELIVERY_WORKER_FEISHU_CONNECT_TIMEOUT_MS": "1000",
           "DELIVERY_WORKER_FEISHU_MAX_RESPONSE_BYTES": "65536"}
    worker = start_worker(kafka.bootstrap, sim.url, group="it-hostile", env=env)
    assert worker.admin("/healthz")[0] == 200
    before = worker.metrics()

    # Every hostile kind, interleaved, queued for the first calls of the batch.
    faults = []
    for round_ in range(3):
        for kind, (n, _) in HOSTILE.items():
            if round_ < n:
                f = {"kind": kind}
                if kind == "slowloris":
                    f["delay_ms"] = 500
                faults.append(f)
    # An app-level failure (missing scope) whose message is invalid UTF-8: logged, then cleared.
    faults.append({"kind": "bad_utf8", "code": 99991672, "http": 400})
    queued = sim.call("POST", "/_sim/faults", faults)
    assert queued["queued"] == len(faults), queued
    h.produce(kafka.bootstrap, h.IN, records)

    def faults_done():
        assert worker.proc.poll() is None, "the worker died"
        assert worker.admin("/healthz")[0] == 200, "/healthz while hostile answers arrive"
        return sim.stats()["faults_pending"] == 0
    h.wait_until(faults_done, 30, "every hostile answer served", interval=0.2)

    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
                 >= len(records), 45, "every output")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-hostile", h.IN), 30, "commits")
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect,
                   sim.requests())

    # The simulator served each kind as often as asked; the worker counted them.
    by_code = sim.stats()["by_code"]
    for kind, (n, _) in HOSTILE.items():
        assert by_code.get(kind) == n + (kind == "bad_utf8"), (kind, by_code)
    m = worker.metrics()
    h.log("calls by code:", {k: v for k, v in m.items() if k.startswith("dw_api_calls_total")})
    for code in ("transport", "unparsable", "1002001"):
        want = sum(n for n, c in HOSTILE.values() if c == code)
        got = calls(m, code) - calls(before, code)
        assert got >= want, "dw_api_calls_total{code=%s}: %s, want >= %d" % (code, got, want)

    assert calls(m, "99991672") - calls(before, "99991672") >= 1
    h.wait_until(lambda: "app-level failure cleared" in worker.log_text(), 20, "the app failure cleared")
    assert worker.proc.poll() is None and worker.admin("/healthz")[0] == 200
    status, body = worker.admin("/readyz")
    assert status == 200, (status, body)

    # Invalid UTF-8 in what the API said never makes an invalid log line.
    raw = open(worker.proc.logfile, "rb").read()
    assert b"99991672" in raw, "the app-level failure was not logged"
    lines = [l for l in raw.split(b"\n") if l.startswith(b"{")]
    assert lines, "no JSON log lines"
    for line in lines:
        json.loads(line.decode("utf-8"))  # strict: raises on invalid UTF-8 or JSON
    assert worker.stop() == 0
