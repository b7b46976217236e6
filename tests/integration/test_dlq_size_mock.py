"""Every record gets its output, and the worker's own dead-letter headers are the only dlq.*
ones. Invalid events with a 1 MB key, a 2 MB value and 1.5 MB of headers each get exactly one
dead letter, sized up front to the producer's message.max.bytes (the mock cluster does not
answer DescribeConfigs, so librdkafka's default stays, and the worker says so): the part that
does not fit is left out and marked (dlq.key_omitted, dlq.value_omitted, dlq.headers_omitted),
the rest is kept, and the offsets are committed only with every dead letter written. A dead
letter Kafka keeps refusing even without its key, value and original headers stops the worker
without its offset committed; the next worker writes it. An event
that carries a forged dlq.error_code=1002008 keeps it as orig.dlq.error_code, and `redrive
--error-code 1002008` does not pick its dead letter."""
import json
import os
import re
import subprocess

import harness as h

GROUP = "it-dlq-size"
MB = 1024 * 1024


def redrive(worker, *args):
    r = subprocess.run([os.path.join(h.BIN, "delivery-worker"), "redrive", "-c", worker.conf] + list(args),
                       capture_output=True, text=True, timeout=120 * h.SLOW,
                       env=dict(os.environ, **worker.env))
    h.log("$ delivery-worker redrive %s  -> exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    assert r.returncode == 0, r.stderr
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^([a-z ]+): (\d+)", r.stdout, re.M)}


def test_oversized_invalid_events_get_one_dead_letter_each(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka(brokers=1)
    sim = start_sim()
    # One record per partition: the mock keeps only 5 MiB per partition.
    records = [
        {"key": "K" * MB, "value": "not json", "partition": 0, "headers": {"trace-id": "big-key"}},
        {"key": "big-value", "value": "V" * (2 * MB), "partition": 1, "headers": {"trace-id": "big-value"}},
        {"key": "big-headers", "value": "[1,2", "partition": 2,
         "headers": {"trace-id": "big-headers", "h1": "H" * (768 * 1024), "h2": "H" * (768 * 1024)}},
        {"key": "forged", "value": "{oops", "partition": 3,
         "headers": {"trace-id": "forged", "dlq.error_code": "1002008", "dlq.reason": "task_not_found"}},
    ]
    lines = "".join(json.dumps(r) + "\n" for r in records)
    h.kafkatool("produce", "-b", kafka.bootstrap, "-X", "message.max.bytes=10000000", h.IN, stdin=lines)

    worker = start_worker(kafka.bootstrap, sim.url, group=GROUP)
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, GROUP, h.IN), 90, "the commit of every record")
    # Committed only after the outputs: every dead letter is there already.
    letters = h.dump(kafka.bootstrap, h.DLQ)
    by_trace = {}
    for d in letters:
        by_trace.setdefault((d.get("headers") or {}).get("trace-id"), []).append(d)
    assert len(letters) == 4 and all(len(v) == 1 for v in by_trace.values()), \
        [((d.get("headers") or {}).get("trace-id"), (d.get("key") or "")[:20]) for d in letters]
    log = worker.log_text()
    assert "keeps librdkafka's default message.max.bytes of 1000000" in log, "no word on the fallback"

    hd = lambda d: d["headers"]
    [k] = by_trace["big-key"]
    assert k.get("key") is None and "dlq.key_omitted" in hd(k), hd(k)
    assert k["value"] == "not json" and hd(k)["dlq.reason"] == "invalid_event", k
    assert "dlq.value_omitted" not in hd(k) and "dlq.headers_omitted" not in hd(k), hd(k)
    assert hd(k)["dlq.key_omitted"].startswith("key of %d bytes omitted" % MB), hd(k)

    [v] = by_trace["big-value"]
    assert v["key"] == "big-value" and not v.get("value") and "dlq.value_omitted" in hd(v), hd(v)
    assert "dlq.key_omitted" not in hd(v) and "dlq.headers_omitted" not in hd(v), hd(v)

    # trace-id went with the other original headers: found by its key
    [g] = [d for d in letters if d.get("key") == "big-headers"]
    assert g["value"] == "[1,2", g
    assert "dlq.headers_omitted" in hd(g) and "h1" not in hd(g) and "h2" not in hd(g), sorted(hd(g))
    assert "dlq.value_omitted" not in hd(g) and "dlq.key_omitted" not in hd(g), sorted(hd(g))

    [f] = by_trace["forged"]
    assert hd(f)["orig.dlq.error_code"] == "1002008", hd(f)
    assert hd(f)["orig.dlq.reason"] == "task_not_found", hd(f)
    assert hd(f)["dlq.reason"] == "invalid_event" and "dlq.error_code" not in hd(f), hd(f)

    # redrive reads only the worker's own headers
    s = redrive(worker, "--error-code", "1002008", "--from-beginning", "--dry-run")
    assert s["scanned"] == 4 and s["matched"] == 0, s
    s = redrive(worker, "--reason", "task_not_found", "--from-beginning", "--dry-run")
    assert s["matched"] == 0, s

    m = worker.metrics()
    assert m.get('dw_dead_letters_total{reason="invalid_event"}') == 4, m
    assert worker.stop() == 0

    # Kafka refuses a dead letter four times: without its value, its original headers, then its
    # key it is still refused. It can never be written, so its offset must not be committed:
    # the worker stops (exit 1) and the next one writes it.
    h.produce(kafka.bootstrap, h.IN, [{"key": "doomed", "value": "nope", "partition": 0,
                                        "headers": {"trace-id": "doomed"}}])
    kafka.command("produce-errors 4 MSG_SIZE_TOO_LARGE")
    worker2 = start_worker(kafka.bootstrap, sim.url, group=GROUP, name="worker2")
    worker2.proc.stopping = True  # expected to stop by itself
    h.wait_until(lambda: worker2.proc.poll() is not None, 90, "the worker to stop")
    assert worker2.proc.returncode == 1, worker2.proc.returncode
    assert "stopping without committing its offset" in worker2.log_text()
    [p0] = [c for c in h.committed(kafka.bootstrap, GROUP, h.IN) if c["partition"] == 0]
    assert p0["offset"] == 1 and p0["high"] == 2, p0
    assert len(h.dump(kafka.bootstrap, h.DLQ)) == 4
    worker3 = start_worker(kafka.bootstrap, sim.url, group=GROUP, name="worker3")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, GROUP, h.IN), 90, "the commit of the last record")
    [d] = [d for d in h.dump(kafka.bootstrap, h.DLQ) if d.get("key") == "doomed"]
    assert d["value"] == "nope" and d["headers"]["trace-id"] == "doomed", d
    assert worker3.stop() == 0
