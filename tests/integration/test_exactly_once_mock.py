"""Exactly-once mode on the mock cluster, where Kafka's transaction API can be made to fail
(the mock cannot show read_committed visibility; test_exactly_once_broker.py does that on the
real broker). While tasks resolve, the transaction coordinator refuses to add partitions to the
transaction (abortable) and times out a commit (retriable): the worker aborts or resumes, writes
the outputs of the aborted transactions again without calling the API again, stays up, and every
task ends with its result or dead letter. Then SIGTERM: a clean exit."""
import harness as h
import scenario


def outputs(kafka):
    return {r["key"] for r in h.dump(kafka.bootstrap, h.OUT)} | \
           {r["key"] for r in h.dump(kafka.bootstrap, h.DLQ)}


def test_transaction_failures_abort_or_resume(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-10")
    specs, records, expect = scenario.build("em", 120, seed=5, never=False)
    sim.register(specs)
    worker = start_worker(kafka.bootstrap, sim.url, group="it-eos-mock",
                          env={"DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "eos-mock-0"},
                          extra='processing = { guarantee = "exactly_once"; transaction_interval_ms = 100; };')
    h.wait_until(lambda: "assigned" in worker.log_text(), 60, "the first assignment")
    h.produce(kafka.bootstrap, h.IN, records[:40])
    h.wait_until(lambda: len(outputs(kafka)) >= 30, 60, "the first outputs")

    kafka.command("request-errors AddPartitionsToTxn 2 TOPIC_AUTHORIZATION_FAILED")
    kafka.command("request-errors EndTxn 2 COORDINATOR_LOAD_IN_PROGRESS")
    h.produce(kafka.bootstrap, h.IN, records[40:])
    h.wait_until(lambda: len(outputs(kafka)) >= len(expect), 120, "every output")
    m = h.wait_until(lambda: (lambda m: m if m.get('dw_transactions_total{result="aborted"}', 0) >= 1 else None)
                     (worker.metrics()), 30, "an aborted transaction in the metrics")
    text = worker.log_text()
    assert "transaction aborted" in text, "no abort logged"
    # Outputs of an aborted transaction are written again from memory, not by asking the API.
    reqs = sim.requests()
    ready_calls = {}
    for q in reqs:
        if q.get("task_id") and q.get("status") in (2, 3):
            ready_calls[q["task_id"]] = ready_calls.get(q["task_id"], 0) + 1
    twice = [k for k, n in ready_calls.items() if n > 1]
    assert not twice, "finished tasks asked again after an abort: %s" % twice[:5]
    assert worker.stop() == 0, "worker did not exit 0 after SIGTERM"
    h.log("exactly-once on the mock: %d events, %d transactions committed, %d aborted, every "
          "task written" % (len(records), m.get('dw_transactions_total{result="committed"}', 0),
                            m.get('dw_transactions_total{result="aborted"}', 0)))
