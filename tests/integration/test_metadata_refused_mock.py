"""The ends of the refused-metadata handling, on the mock cluster, which refuses commits as
OFFSET_METADATA_TOO_LARGE whatever their length when told to (the real limit is shown by
test_metadata_limit_broker.py). A map of a few bytes refused leaves less room than any map
needs:

- at-least-once warns once and commits without a map from then on (the commit, sent again
  each tick until the mock stops refusing, goes through with empty metadata); the offsets
  still advance to the end;
- exactly-once cannot drop the map (a restart would write committed outputs again): it stops
  with exit code 1 and a clear error, and the next worker (same transactional id) finishes
  the work (the mock keeps no transactional offsets, so the skipping after such a stop is left
  to the broker test)."""
import base64

import pytest

import harness as h

EOS_TOPICS = ("eos.in", "eos.out", "eos.dlq")


def tasks(prefix):
    return "%s-blocker" % prefix, ["%s-ok-%02d" % (prefix, i) for i in range(20)]


def committed(kafka, group, topic):
    return h.committed(kafka.bootstrap, group, topic)[0]


def finished(meta):
    """Offsets the worker's map records ("dw1." + base64url of version, base, then (gap,
    length) varint pairs, then a CRC-32 that test_metadata_limit_broker.py checks)."""
    raw = base64.urlsafe_b64decode(meta[4:] + "=" * (-len(meta[4:]) % 4))[1:-4]
    values, v, shift = [], 0, 0
    for b in raw:
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            values.append(v)
            v, shift = 0, 0
    return sum(values[2::2])


def map_committed(kafka, group, topic, n):
    """Offset 0 committed with a map of n finished tasks."""
    c = committed(kafka, group, topic)
    meta = c.get("metadata") or ""
    return c["offset"] == 0 and meta.startswith("dw1.") and finished(meta) == n and c


def warnings(worker, text):
    return [l for l in worker.log_text().splitlines() if '"level":"warn"' in l and text in l]


def test_at_least_once_commits_without_a_map(procs, kafka, sim):
    blocker, ok = tasks("ra")
    w = h.Worker(procs, kafka.bootstrap, sim.url, group="it-refused-alo", name="alo",
                 env={"DELIVERY_WORKER_POLL_DEADLINE_MS": "600000",
                      "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000"}).start()
    h.wait_until(lambda: "assigned" in w.log_text(), 60, "the assignment")
    h.produce(kafka.bootstrap, h.IN, [h.event(blocker)] + [h.event(t) for t in ok[:10]])
    h.wait_until(lambda: map_committed(kafka, "it-refused-alo", h.IN, 10), 60, "a map of 10 committed")
    kafka.command("request-errors OffsetCommit 3 OFFSET_METADATA_TOO_LARGE")
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in ok[10:]])
    h.wait_until(lambda: warnings(w, "committing offsets without the map"), 60, "the warning")
    h.wait_until(lambda: (lambda c: c["offset"] == 0 and not c.get("metadata"))(
        committed(kafka, "it-refused-alo", h.IN)), 60, "offset 0 committed without a map")
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": blocker, "ready_after_ms": 0}])
    h.wait_until(lambda: committed(kafka, "it-refused-alo", h.IN)["offset"] == 21, 60,
                 "the committed offset to reach the end")
    assert w.stop() == 0
    found = warnings(w, "refused commit metadata")
    assert len(found) == 1, found
    assert "set kafka.commit_metadata_max_bytes (4096) to at most the broker's" in found[0], found
    h.log("at-least-once: %s" % found[0])


def test_exactly_once_stops_rather_than_drop_the_map(procs, kafka, sim):
    blocker, ok = tasks("re")
    group = "it-refused-eos"
    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": "600000",
           "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000",
           "DELIVERY_WORKER_PROCESSING_GUARANTEE": "exactly_once",
           "DELIVERY_WORKER_PROCESSING_TRANSACTION_INTERVAL_MS": "100",
           "DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "refused-0",
           "DELIVERY_WORKER_KAFKA_INPUT_TOPIC": EOS_TOPICS[0],
           "DELIVERY_WORKER_KAFKA_RESULTS_TOPIC": EOS_TOPICS[1],
           "DELIVERY_WORKER_KAFKA_DLQ_TOPIC": EOS_TOPICS[2]}
    w1 = h.Worker(procs, kafka.bootstrap, sim.url, group=group, env=env, name="eos1").start()
    h.wait_until(lambda: "assigned" in w1.log_text(), 60, "the assignment")
    h.produce(kafka.bootstrap, EOS_TOPICS[0], [h.event(blocker)] + [h.event(t) for t in ok[:10]])
    h.wait_until(lambda: w1.metrics().get('dw_transactions_total{result="committed"}', 0) >= 1 and
                 {r["key"] for r in h.dump(kafka.bootstrap, EOS_TOPICS[1])} >= set(ok[:10]), 60,
                 "the first outputs committed")
    kafka.command("request-errors TxnOffsetCommit 1 OFFSET_METADATA_TOO_LARGE")
    w1.proc.stopping = True  # it is expected to stop by itself
    h.produce(kafka.bootstrap, EOS_TOPICS[0], [h.event(t) for t in ok[10:]])
    h.wait_until(lambda: w1.proc.poll() is not None, 60, "exactly-once to stop")
    assert w1.proc.returncode == 1, w1.proc.returncode
    text = w1.log_text()
    assert "exactly-once: the broker refused commit metadata of" in text and \
        "set the broker's offset.metadata.max.bytes to at least kafka.commit_metadata_max_bytes " \
        "(4096); stopping" in text, text[-3000:]
    # The mock keeps no transactional offsets, so the next worker starts from the beginning;
    # it finishes everything.
    w2 = h.Worker(procs, kafka.bootstrap, sim.url, group=group, env=env, name="eos2").start()
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": blocker, "ready_after_ms": 0}])
    h.wait_until(lambda: {r["key"] for r in h.dump(kafka.bootstrap, EOS_TOPICS[1])} >= set(ok) | {blocker},
                 60, "every output")
    assert w2.stop() == 0
    h.log("exactly-once: stopped with exit code 1 at the refusal: %s" % [
        l for l in text.splitlines() if "exactly-once: the broker refused" in l][0])


@pytest.fixture(scope="module")
def kafka(module_procs):
    return h.MockKafka(module_procs, brokers=1, topics=((h.IN, 1), (h.OUT, 1), (h.DLQ, 1)) +
                       tuple((t, 1) for t in EOS_TOPICS))


@pytest.fixture(scope="module")
def sim(module_procs):
    """One simulator for both modes, which know every task of both."""
    sim = h.Sim(module_procs, "--latency-ms", "1-5")
    for p in ("ra", "re"):
        blocker, ok = tasks(p)
        sim.register([{"website_id": h.WEBSITE, "delivery_task_id": blocker, "final": "never"}] +
                     [{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0} for t in ok])
    return sim
