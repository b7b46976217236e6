"""`delivery-worker replay` on a real Kafka 3.9 broker. A worker resolves 40 events (10 per
partition, the last 4 of each with a later timestamp) and stops. A dry run prints, per
partition, the committed offset, the new one and what would be reprocessed; a replay while a
worker runs is refused (exit 3, the members and the fix printed), also with --force (the broker
refuses). The real replay from the later timestamp moves every committed offset back to 6 with
empty commit metadata; a restarted worker gives each of the 16 events in range a second result
(keyed by task id) and polls no task before the range again."""
import collections
import os
import re
import subprocess
import time

import harness as h

PARTS, PER_PART, FROM = 4, 10, 6


def replay(worker, *args):
    r = subprocess.run([os.path.join(h.BIN, "delivery-worker"), "replay", "-c", worker.conf] + list(args),
                       capture_output=True, text=True, timeout=120 * h.SLOW,
                       env=dict(os.environ, **worker.env))
    h.log("$ delivery-worker replay %s  -> exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def plan_rows(out):
    """{partition: (committed, new, end, in_range, reprocessed, note)} from the printed table."""
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s+(-?\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$", line)
        if m:
            rows[int(m.group(1))] = (m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                                     int(m.group(6)), m.group(7))
    return rows


def results_by_task(kafka):
    return collections.Counter(r["key"] for r in h.dump(kafka.bootstrap, kafka.OUT))


def test_replay_resets_offsets_and_reprocesses_the_range(start_sim, start_worker, broker):
    kafka = broker.topics("replay", PARTS)
    group = kafka.group
    sim = start_sim()
    t0 = int(time.time() * 1000) - 600000
    t1 = t0 + 60000  # the last 4 records of each partition
    records, in_range = [], set()
    for p in range(PARTS):
        for i in range(PER_PART):
            tid = "rp-%d-%02d" % (p, i)
            rec = h.event(tid)
            rec.update(partition=p, timestamp=t0 if i < FROM else t1)
            records.append(rec)
            if i >= FROM:
                in_range.add(tid)
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": r["key"], "ready_after_ms": 0}
                  for r in records])
    h.produce(kafka.bootstrap, kafka.IN, records)
    started = time.monotonic()

    w1 = start_worker(kafka.bootstrap, sim.url, group=group, name="worker1", topics=kafka)
    h.wait_until(lambda: sum(results_by_task(kafka).values()) >= len(records), 60, "every result")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, group, kafka.IN), 30, "the commits")
    assert w1.stop() == 0

    # Dry run from an offset, with a to bound and two partitions: the plan, nothing changed.
    r = replay(w1, "--from-offset", str(FROM), "--dry-run")
    assert r.returncode == 0, r.stderr
    rows = plan_rows(r.stdout)
    assert sorted(rows) == list(range(PARTS)), rows
    for p, row in rows.items():
        assert row[:5] == (str(PER_PART), FROM, PER_PART, PER_PART - FROM, PER_PART - FROM), (p, row)
    assert "total: 4 partition(s) reset, 16 record(s) in range, 16 record(s) reprocessed" in r.stdout
    assert "dry run: nothing changed" in r.stdout
    r = replay(w1, "--from-offset", "2", "--to-offset", "5", "--partitions", "0,2", "--dry-run")
    rows = plan_rows(r.stdout)
    assert r.returncode == 0 and sorted(rows) == [0, 2], r.stdout
    assert rows[0][:5] == ("10", 2, 10, 3, 8), rows
    r = replay(w1, "--from-time", str(t0), "--to-time", str(t1), "--dry-run")
    rows = plan_rows(r.stdout)
    assert r.returncode == 0 and all(row[:5] == ("10", 0, 10, FROM, 10) for row in rows.values()), r.stdout
    assert all(c["offset"] == PER_PART for c in h.committed(kafka.bootstrap, group, kafka.IN))

    # A running worker: refused, with the members and the fix; --force: the broker refuses.
    w2 = start_worker(kafka.bootstrap, sim.url, group=group, name="worker2", topics=kafka)
    h.wait_until(lambda: w2.admin("/readyz")[0] == 200, 60, "the second worker's assignment")
    r = replay(w2, "--from-time", str(t1))
    assert r.returncode == 3, r.returncode
    assert "live member" in r.stderr and "host " in r.stderr and "client " in r.stderr, r.stderr
    assert "Stop the workers first (scale to 0) or pass --force" in r.stderr, r.stderr
    r = replay(w2, "--from-time", str(t1), "--force")
    assert r.returncode == 3 and "the broker refused" in r.stderr, r.stderr
    assert all(c["offset"] == PER_PART for c in h.committed(kafka.bootstrap, group, kafka.IN))
    assert w2.stop() == 0

    # The real replay, from a time: offsets back to 6, commit metadata empty.
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t1 / 1000)) + ".%03dZ" % (t1 % 1000)
    r = h.wait_until(lambda: (lambda x: x if x.returncode != 3 else None)(replay(w1, "--from-time", iso)),
                     30, "the group to be empty after the second worker left")
    assert r.returncode == 0, r.stderr
    assert "committed the new offsets of 4 partition(s)" in r.stdout, r.stdout
    c = h.committed(kafka.bootstrap, group, kafka.IN)
    assert [x["offset"] for x in c] == [FROM] * PARTS and all(not x.get("metadata") for x in c), c

    mark = len(sim.requests())
    w3 = start_worker(kafka.bootstrap, sim.url, group=group, name="worker3", topics=kafka)
    h.wait_until(lambda: sum(results_by_task(kafka).values()) >= len(records) + len(in_range), 60,
                 "the replayed results")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, group, kafka.IN), 30, "the commits")
    assert w3.stop() == 0
    counts = results_by_task(kafka)
    for r_ in records:
        want = 2 if r_["key"] in in_range else 1
        assert counts[r_["key"]] == want, (r_["key"], counts[r_["key"]])
    polled = {q["task_id"] for q in sim.requests()[mark:] if q.get("task_id")}
    assert polled == in_range, sorted(polled ^ in_range)
    h.log("replay on the real broker: %d of %d events reprocessed, %.1f s"
          % (len(in_range), len(records), time.monotonic() - started))
