"""`delivery-worker redrive` on a real Kafka 3.9 broker, with a worker running throughout. Six
events for tasks the API does not know yet and one it never knows become task_not_found dead
letters (1002008), three invalid events become invalid_event letters. The six tasks are then
registered with the simulator. A dry run prints what would move and moves nothing; the redrive
of task_not_found moves seven letters (original key, value and headers, no dlq.* headers, with
redrive.count/from/at), the worker resolves the six, and the dead-letter topic still holds every
letter. The never-known task fails again with its redrive.count carried into its new dead
letter; later runs see only new letters and redrive it until --max-redrives, then count it as
exhausted."""
import collections
import os
import re
import subprocess
import time

import harness as h



def redrive(worker, *args):
    r = subprocess.run([os.path.join(h.BIN, "delivery-worker"), "redrive", "-c", worker.conf] + list(args),
                       capture_output=True, text=True, timeout=120 * h.SLOW,
                       env=dict(os.environ, **worker.env))
    h.log("$ delivery-worker redrive %s  -> exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    assert r.returncode == 0, r.stderr
    return r


def summary(out):
    """The "name: number" lines of the summary."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^([a-z ]+): (\d+)", out, re.M)}


def by_key(records):
    out = collections.defaultdict(list)
    for r in records:
        out[r["key"]].append(r)
    return out


def test_redrive_moves_letters_back_until_max_redrives(start_sim, start_worker, broker):
    kafka = broker.topics("redrive", 2)
    group = kafka.group
    sim = start_sim()
    started = time.monotonic()
    w = start_worker(kafka.bootstrap, sim.url, group=group, topics=kafka)
    late = ["rd-late-%d" % i for i in range(6)]  # known to the API only after they failed
    records = [dict(h.event(t), headers={"trace": "tr-" + t}) for t in late + ["rd-loop"]]
    records += [{"key": "rd-bad-%d" % i, "value": '{"website_id": "abc", "delivery_task_id": "x"}',
                 "headers": {"trace": "bad"}} for i in range(3)]
    h.produce(kafka.bootstrap, kafka.IN, records)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.DLQ)) >= 10, 60, "ten dead letters")
    letters = h.dump(kafka.bootstrap, kafka.DLQ)
    reasons = collections.Counter(l["headers"]["dlq.reason"] for l in letters)
    assert reasons == {"task_not_found": 7, "invalid_event": 3}, reasons
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0} for t in late])

    # Dry run: the counts, nothing produced, no position saved.
    r = redrive(w, "--reason", "task_not_found", "--dry-run")
    s = summary(r.stdout)
    assert (s["scanned"], s["matched"], s["would redrive"], s["skipped by filter"], s["exhausted"]) == \
        (10, 7, 7, 3, 0), s
    assert re.search(r"task_not_found\s+scanned 7, would redrive 7", r.stdout), r.stdout
    assert re.search(r"invalid_event\s+scanned 3, would redrive 0, exhausted 0, skipped by filter 3", r.stdout)
    assert len(h.dump(kafka.bootstrap, kafka.IN)) == len(records)

    # The redrive: seven letters back; the worker resolves the six the API now knows.
    r = redrive(w, "--reason", "task_not_found", "--error-code", "1002008", "--until",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60)))
    s = summary(r.stdout)
    assert (s["scanned"], s["redriven"], s["skipped by filter"]) == (10, 7, 3), s
    h.wait_until(lambda: {x["key"] for x in h.dump(kafka.bootstrap, kafka.OUT)} >= set(late), 60,
                 "results of the redriven tasks")
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.DLQ)) >= 11, 60, "the never-known task's next letter")
    results = by_key(h.dump(kafka.bootstrap, kafka.OUT))
    assert all(len(results[t]) == 1 and '"succeeded"' in results[t][0]["value"] for t in late), results
    redriven = [x for x in h.dump(kafka.bootstrap, kafka.IN) if "redrive.count" in x["headers"]]
    assert sorted(x["key"] for x in redriven) == sorted(late + ["rd-loop"]), redriven
    source = {l["key"]: "%s/%d/%d" % (kafka.DLQ, l["partition"], l["offset"]) for l in letters}
    for x in redriven:
        hd = x["headers"]
        assert not [n for n in hd if n.startswith("dlq.")], hd
        assert hd["redrive.count"] == "1" and hd["trace"] == "tr-" + x["key"], hd
        assert hd["redrive.from"] == source[x["key"]], (hd, source[x["key"]])
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", hd["redrive.at"]), hd
        assert x["value"] == [l for l in letters if l["key"] == x["key"]][0]["value"]

    # Nothing left the dead-letter topic; the loop's new letter carries its count.
    now = h.dump(kafka.bootstrap, kafka.DLQ)
    kept = {(l["partition"], l["offset"], l["key"], l["value"]) for l in now}
    assert all((l["partition"], l["offset"], l["key"], l["value"]) in kept for l in letters), \
        "letters disappeared from the dead-letter topic"
    again = [l for l in now if l["key"] == "rd-loop" and "redrive.count" in l["headers"]]
    assert len(again) == 1 and again[0]["headers"]["redrive.count"] == "1", again
    assert again[0]["headers"]["dlq.reason"] == "task_not_found" and again[0]["headers"]["trace"] == "tr-rd-loop"

    # Later runs see only new letters: the loop is redriven up to --max-redrives (3) times.
    for n in (2, 3):
        s = summary(redrive(w).stdout)
        assert (s["scanned"], s["redriven"], s["exhausted"]) == (1, 1, 0), s
        h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.DLQ)) >= 10 + n, 60, "letter %d of the loop" % n)
    s = summary(redrive(w).stdout)
    assert (s["scanned"], s["redriven"], s["exhausted"]) == (1, 0, 1), s
    s = summary(redrive(w, "--from-beginning", "--reason", "task_not_found", "--dry-run").stdout)
    assert (s["scanned"], s["would redrive"], s["exhausted"]) == (13, 9, 1), s
    counts = [l["headers"].get("redrive.count") for l in h.dump(kafka.bootstrap, kafka.DLQ) if l["key"] == "rd-loop"]
    assert counts == [None, "1", "2", "3"], counts
    assert len(h.dump(kafka.bootstrap, kafka.IN)) == len(records) + 9
    assert w.stop() == 0
    h.log("redrive on the real broker: %.1f s" % (time.monotonic() - started))
