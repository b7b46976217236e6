"""Dead letters sized to a real broker's limits. The broker takes records of at most 100000
bytes (message.max.bytes) and the dead-letter topic at most 60000 (max.message.bytes); the
input topic takes more. The worker reads these limits at start (DescribeConfigs), sets its
producer's message.max.bytes to the dead-letter topic's limit and says so. Invalid events with a 200 kB key,
80 kB of headers and a 63 kB value each get exactly one dead letter with the part that does
not fit left out and marked, where librdkafka's default of 1000000 would have let the broker
refuse them; a task resolved meanwhile gets its result; every offset is committed."""
import json

import harness as h

GROUP = "it-dlq-limit"
BROKER_LIMIT, DLQ_LIMIT = 100000, 60000


def test_dead_letters_fit_the_brokers_limits(start_sim, own_broker, start_worker):
    kafka = own_broker(server_props=("message.max.bytes=%d" % BROKER_LIMIT,))
    h.kafkatool("create-topic", "-b", kafka.bootstrap, h.IN, "1", "--config", "max.message.bytes=2000000")
    h.kafkatool("create-topic", "-b", kafka.bootstrap, h.OUT, "1")
    h.kafkatool("create-topic", "-b", kafka.bootstrap, h.DLQ, "1", "--config",
                "max.message.bytes=%d" % DLQ_LIMIT)
    sim = start_sim()
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "ok-1", "ready_after_ms": 0}])
    records = [
        {"key": "K" * 200000, "value": "not json", "headers": {"trace-id": "big-key"}},
        {"key": "big-headers", "value": "[1,2", "headers": {"trace-id": "big-headers", "h1": "H" * 80000}},
        {"key": "big-value", "value": "V" * 63000, "headers": {"trace-id": "big-value"}},
        h.event("ok-1"),
    ]
    lines = "".join(json.dumps(r) + "\n" for r in records)
    h.kafkatool("produce", "-b", kafka.bootstrap, "-X", "message.max.bytes=2000000", h.IN, stdin=lines)

    worker = start_worker(kafka.bootstrap, sim.url, group=GROUP)
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, GROUP, h.IN), 120, "the commit of every record")
    letters = h.dump(kafka.bootstrap, h.DLQ)
    results = h.dump(kafka.bootstrap, h.OUT)
    assert [r["key"] for r in results] == ["ok-1"], results
    assert len(letters) == 3, [((d.get("headers") or {}).get("trace-id"), (d.get("key") or "")[:20])
                               for d in letters]
    assert "producer message.max.bytes %d" % DLQ_LIMIT in worker.log_text(), "the chosen limit is not logged"

    [k] = [d for d in letters if d["headers"].get("trace-id") == "big-key"]
    assert k.get("key") is None and "dlq.key_omitted" in k["headers"], k["headers"]
    assert k["value"] == "not json" and "dlq.value_omitted" not in k["headers"], k
    [g] = [d for d in letters if d.get("key") == "big-headers"]
    assert "dlq.headers_omitted" in g["headers"] and "h1" not in g["headers"], sorted(g["headers"])
    assert g["value"] == "[1,2" and "dlq.value_omitted" not in g["headers"], g["headers"]
    [v] = [d for d in letters if d.get("key") == "big-value"]
    assert "dlq.value_omitted" in v["headers"] and not v.get("value"), v["headers"]
    assert v["headers"]["trace-id"] == "big-value", v["headers"]
    assert worker.stop() == 0
