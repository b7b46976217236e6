"""A dead letter Kafka refuses as too large must not block its partition or the shutdown: it
is written again without its value (key, headers and a dlq.value_omitted note kept), then if
need be without the original headers too (dlq.headers_omitted), the offset moves on, and
SIGTERM still exits 0."""
import harness as h


def test_dead_letter_refused_as_too_large_is_written_smaller(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka(brokers=1)
    sim = start_sim()
    h.produce(kafka.bootstrap, h.IN, [{"key": "poison", "value": "not json at all", "partition": 0,
                                        "headers": {"trace-id": "p"}}])
    kafka.command("produce-errors 1 MSG_SIZE_TOO_LARGE")  # the worker's first produce fails
    worker = start_worker(kafka.bootstrap, sim.url, group="it-poison")
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.DLQ), 60, "the dead letter")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-poison", h.IN), 30, "the commit")
    [d] = h.dump(kafka.bootstrap, h.DLQ)
    hd = d["headers"]
    assert d["key"] == "poison" and hd["dlq.reason"] == "invalid_event", d
    assert "dlq.value_omitted" in hd and not d.get("value"), d
    assert hd["trace-id"] == "p", d
    assert worker.stop() == 0

    # Refused twice: the second time the original headers go too.
    h.produce(kafka.bootstrap, h.IN, [{"key": "poison2", "value": "[1,2", "partition": 0,
                                        "headers": {"trace-id": "p2"}}])
    kafka.command("produce-errors 2 MSG_SIZE_TOO_LARGE")
    worker2 = start_worker(kafka.bootstrap, sim.url, group="it-poison", name="worker2")
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.DLQ)) == 2, 60, "the second dead letter")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-poison", h.IN), 30, "the commit")
    d2 = [d for d in h.dump(kafka.bootstrap, h.DLQ) if d["key"] == "poison2"][0]
    hd2 = d2["headers"]
    assert "dlq.value_omitted" in hd2 and "dlq.headers_omitted" in hd2, d2
    assert "trace-id" not in hd2 and hd2["dlq.reason"] == "invalid_event", d2
    assert worker2.stop() == 0
