"""A batch of task-created events of every kind, what the simulator should answer for each,
and the check of what ends up on the results and dead-letter topics."""
import json
import random

from harness import WEBSITE, event, log

INVALID_VALUES = [
    ("inv-notjson", "this is not JSON"),
    ("inv-array", '["website_id", "1"]'),
    ("inv-empty", ""),
    ("inv-number-ids", '{"website_id": 7047318856652261676, "delivery_task_id": "abc"}'),
    ("inv-dotdot", '{"website_id": "%s", "delivery_task_id": "../../open-apis/auth"}' % WEBSITE),
    ("inv-slash", '{"website_id": "%s", "delivery_task_id": "a/b"}' % WEBSITE),
    ("inv-query", '{"website_id": "%s", "delivery_task_id": "a?b=1"}' % WEBSITE),
    ("inv-hash", '{"website_id": "%s", "delivery_task_id": "a#b"}' % WEBSITE),
    ("inv-long-site", '{"website_id": "%s", "delivery_task_id": "abc"}' % ("1" * 33)),
    ("inv-long-task", '{"website_id": "%s", "delivery_task_id": "%s"}' % (WEBSITE, "a" * 65)),
    ("inv-no-site", '{"delivery_task_id": "abc"}'),
    ("inv-truncated", '{"website_id": "%s", "delivery_' % WEBSITE),
]


def build(prefix, n, seed=1, never=True):
    """Returns (sim task specs, records to produce, expected outcome by key). About n valid
    tasks of every kind plus every invalid event."""
    rnd = random.Random(seed)
    specs, records, expect = [], [], {}
    kinds = ["ok"] * 10 + ["dup", "failed", "notfound", "badreq", "flaky", "alias"] + (["never"] if never else [])
    for i in range(n):
        kind = kinds[i % len(kinds)]
        tid = "%s-%s-%05d" % (prefix, kind, i)
        spec = {"website_id": WEBSITE, "delivery_task_id": tid,
                "ready_after_ms": rnd.randint(0, 1500), "pending": "rotate"}
        headers = {"trace-id": "tr-%d" % i}
        if kind in ("ok", "alias"):
            expect[tid] = ("result", "succeeded")
        elif kind == "dup":
            spec.update(final="failed", status_msg="same application exist",
                        extra_info="7100825663201052972")
            expect[tid] = ("result", "failed")
        elif kind == "failed":
            spec.update(final="failed", status_msg="  resume parse failed ", extra_info="  ")
            expect[tid] = ("result", "failed")
        elif kind == "notfound":
            spec = None
            expect[tid] = ("dlq", "task_not_found")
        elif kind == "badreq":
            spec.update(final="invalid_request")
            expect[tid] = ("dlq", "invalid_request")
        elif kind == "flaky":
            spec["errors"] = [{"code": 1002001, "http": 500, "count": 2}]
            expect[tid] = ("result", "succeeded")
        elif kind == "never":
            spec.update(final="never")
            expect[tid] = ("dlq", "deadline_exceeded")
        if spec:
            specs.append(spec)
        if kind == "alias":
            rec = {"key": tid, "value": json.dumps({"website_id": WEBSITE, "task_id": tid, "event_id": "ev-%d" % i})}
        else:
            rec = event(tid, event_id="ev-%d" % i)
        rec["headers"] = headers
        records.append(rec)
    for key, value in INVALID_VALUES:
        k = "%s-%s" % (prefix, key)
        records.append({"key": k, "value": value, "headers": {"trace-id": k}})
        expect[k] = ("dlq", "invalid_event")
    rnd.shuffle(records)
    return specs, records, expect


def check(results, dead, records, expect, requests, allow_duplicates=False):
    """Asserts every record has exactly one result or dead letter of the expected kind, with the
    contract's fields; returns the number of duplicates seen."""
    by_key = {r["key"]: r for r in records}
    seen = {}
    dups = 0
    for r in results:
        if r["key"] not in expect:
            continue
        v = json.loads(r["value"])
        kind, outcome = expect[r["key"]]
        assert kind == "result", "%s: expected a %s, got result %s" % (r["key"], outcome, v)
        assert v["outcome"] == outcome, (r["key"], v)
        assert v["delivery_task_id"] == r["key"] and v["website_id"] == WEBSITE, v
        assert v["polls"] >= 1 and v["resolved_at"].endswith("Z"), v
        if outcome == "succeeded":
            for f, p in (("application_id", "app-"), ("talent_id", "tal-"), ("job_id", "job-")):
                assert v[f] == p + r["key"], (f, v)
        elif "dup" in r["key"]:
            assert v["status_msg"] == "same application exist", v
            assert v["existing_application_id"] == "7100825663201052972", v
        else:
            assert v["status_msg"] == "resume parse failed", v
            assert "existing_application_id" not in v, v
        dups += r["key"] in seen
        seen[r["key"]] = "result"
    for d in dead:
        if d["key"] not in expect:
            continue
        h = d.get("headers", {})
        kind, reason = expect[d["key"]]
        assert kind == "dlq", "%s: expected result %s, got dead letter %s" % (d["key"], reason, h)
        assert h.get("dlq.reason") == reason, (d["key"], h)
        orig = by_key[d["key"]]
        assert (d.get("value") or "") == orig["value"], (d, orig)
        assert h.get("trace-id") == orig["headers"]["trace-id"], h
        for name in ("dlq.error_msg", "dlq.source_topic", "dlq.source_partition",
                     "dlq.source_offset", "dlq.attempts", "dlq.failed_at"):
            assert name in h, (name, h)
        if reason == "task_not_found":
            assert h["dlq.error_code"] == "1002008" and h.get("dlq.log_id"), h
        if reason == "invalid_request":
            assert h["dlq.error_code"] == "1002002", h
        if reason == "invalid_event":
            assert h["dlq.attempts"] == "0", h
        dups += d["key"] in seen
        seen[d["key"]] = "dlq"
    missing = [k for k in expect if k not in seen]
    assert not missing, "no result or dead letter for %d task(s), e.g. %s" % (len(missing), missing[:5])
    if not allow_duplicates:
        assert dups == 0, "%d duplicate outputs" % dups
    # No call for an invalid event ever reached the API.
    invalid = {k for k, (kind, r) in expect.items() if r == "invalid_event"}
    called = {q.get("task_id") for q in requests if q.get("task_id")}
    assert not (called & invalid), called & invalid
    for q in requests:
        assert ".." not in q["path"] and "?" not in q["path"], q
    return dups


def calls_per_task(requests, expect):
    valid = [k for k, (kind, r) in expect.items() if r != "invalid_event"]
    calls = sum(1 for q in requests if q.get("task_id") in expect)
    return calls / max(len(valid), 1)
