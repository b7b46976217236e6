"""On a real Kafka 3.9 broker whose offset.metadata.max.bytes (256) is far below the worker's
kafka.commit_metadata_max_bytes (the default 4096): the broker refuses the commit whose map of
finished tasks is too long (OFFSET_METADATA_TOO_LARGE); the worker warns once, naming the cause
and the fix, gives its maps less room, and its next commits succeed. One partition: a blocker
that is not ready pins the committed offset at 0, and behind it every other task finishes at
once while the others wait, so the map holds one run per finished task (about 2.7 bytes each).

In each mode: one warning; the partition is held at three quarters of the lowered room; once
the blocker is released the committed offset moves past it with a map the broker took (every
map read back fits the broker's limit); after a SIGKILL the next worker skips exactly the tasks
in that (shorter) map and polls the finished ones it leaves out again; once the waiting tasks
are released the committed offset reaches the end and every task has a result. At-least-once
cuts the map short. Exactly-once gets the refusal from the transaction's TxnOffsetCommit
(librdkafka 2.0.2 makes the transaction abortable), aborts it, lowers the room no lower than
the map already committed, and produces the outputs again; a read_committed reader sees each
task's output exactly once. And at-least-once's final commit at SIGTERM, refused, is sent
again with shorter maps until the broker takes it."""
import json
import re

import pytest

import harness as h

LIMIT = 256
K = 150  # tasks that finish at once, each followed by one that waits
REFUSED = re.compile(r"refused commit metadata of (\d+) bytes.*?using (\d+) bytes from now on")


def log_lines(worker):
    out = []
    for line in worker.log_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def refusals(worker):
    """The worker's log lines about refused metadata: (level, refused bytes, room after)."""
    out = []
    for r in log_lines(worker):
        m = REFUSED.search(r.get("msg", ""))
        if m:
            out.append((r["level"], int(m.group(1)), int(m.group(2))))
    return out


class Phase:
    """One partition's workload on its own topics and group: records in offset order."""

    def __init__(self, kafka, sim, name, topics, group, env):
        self.kafka, self.sim, self.name, self.group = kafka, sim, name, group
        self.inp, self.out, self.dlq = topics
        for t in topics:
            h.kafkatool("create-topic", "-b", kafka.bootstrap, t, "1")
        self.blocker = "%s-blocker" % name
        self.quick = ["%s-ok-%03d" % (name, i) for i in range(K)]
        self.waiting = ["%s-wait-%03d" % (name, i) for i in range(K)]
        self.order = [self.blocker] + [t for pair in zip(self.quick, self.waiting) for t in pair]
        sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "final": "never"}
                      for t in [self.blocker] + self.waiting] +
                     [{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                      for t in self.quick])
        self.env = dict(env)
        self.env.update({"DELIVERY_WORKER_POLL_DEADLINE_MS": "600000",
                         "DELIVERY_WORKER_POLL_MAX_INTERVAL_MS": "3000",
                         "DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": "0",
                         "DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": "0",
                         "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000",
                         "DELIVERY_WORKER_KAFKA_INPUT_TOPIC": self.inp,
                         "DELIVERY_WORKER_KAFKA_RESULTS_TOPIC": self.out,
                         "DELIVERY_WORKER_KAFKA_DLQ_TOPIC": self.dlq})
        self.longest = 0  # the longest metadata ever read back

    def worker(self, procs, name):
        return h.Worker(procs, self.kafka.bootstrap, self.sim.url, group=self.group,
                        env=self.env, name=name).start()

    def produce(self):
        h.produce(self.kafka.bootstrap, self.inp, [h.event(t) for t in self.order])

    def committed(self):
        c = h.committed(self.kafka.bootstrap, self.group, self.inp)[0]
        meta = c.get("metadata") or ""
        self.longest = max(self.longest, len(meta))
        assert len(meta) <= LIMIT, "metadata of %d bytes committed past the broker's limit" % len(meta)
        return c

    def map_committed(self, past_blocker=False):
        """The committed offset (past the blocker's, if asked) with a map of at least one
        finished task written for it: (offset, metadata, finished offsets)."""
        c = self.committed()
        meta = c.get("metadata") or ""
        if c["offset"] < 0 or (past_blocker and c["offset"] == 0) or not meta.startswith("dw1."):
            return None
        base, done = h.decode_map(meta)
        return base == c["offset"] and done and (c["offset"], meta, done)

    def results(self, isolation=None):
        return [r["key"] for r in h.dump(self.kafka.bootstrap, self.out, isolation)]

    def release(self, tasks):
        self.sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                           for t in tasks])

    def warned_once(self, worker):
        """Waits for the one warning; returns (refused, room) of the last lowering."""
        h.wait_until(lambda: refusals(worker), 60, "%s: the warning about refused metadata" % worker.name)
        r = refusals(worker)
        warns = [x for x in r if x[0] == "warn"]
        assert len(warns) == 1, "expected one warning, got %s" % r
        assert "set kafka.commit_metadata_max_bytes (4096) to at most the broker's " \
               "offset.metadata.max.bytes" in worker.log_text()
        return r[-1][1], r[-1][2]

    def run(self, procs, isolation=None):
        w1 = self.worker(procs, "%s-worker1" % self.name)
        self.produce()
        refused, room = self.warned_once(w1)
        assert LIMIT < refused <= 4096 and room < refused, (refused, room)
        # The partition is held at three quarters of the lowered room, not of 4096.
        h.wait_until(lambda: {x[2] for x in refusals(w1)} & {int(m) for m in re.findall(
            r"fills \d+ of (\d+) bytes; taking no new records", w1.log_text())}, 60,
            "%s: the partition held at 3/4 of the lowered room" % self.name)
        # Commits go through again: once the blocker is done, the committed offset moves past
        # it, with a map the broker took.
        self.release([self.blocker])
        h.wait_until(lambda: self.map_committed(past_blocker=True), 60,
                     "%s: the committed offset past the blocker, with a map" % self.name)
        h.log("%s: worker1: the broker refused maps of %s bytes; room after each: %s" % (
            self.name, [x[1] for x in refusals(w1)], [x[2] for x in refusals(w1)]))
        h.kill_worker(w1)  # SIGKILL: nothing more is committed
        offset, meta, done1 = self.map_committed(past_blocker=True)
        skipped = {self.order[o] for o in done1 if o < len(self.order)}
        assert len(skipped) == len(done1) and skipped <= set(self.quick), \
            "the map holds unfinished tasks: %s" % sorted(skipped - set(self.quick))[:5]
        mark = len(h.sim_requests_all(self.sim))
        h.log("%s: committed offset %d with a map of %d bytes (broker limit %d): %d of the %d "
              "quick tasks" % (self.name, offset, len(meta), LIMIT, len(done1), K))

        w2 = self.worker(procs, "%s-worker2" % self.name)
        h.wait_until(lambda: "%d task(s) after offset %d were finished before" % (len(done1), offset)
                     in w2.log_text(), 60, "%s: worker2 to read the map" % self.name)
        h.wait_until(lambda: w2.metrics().get("dw_tasks_skipped_total", 0) >= len(done1), 60,
                     "%s: the skipped tasks" % self.name)
        self.warned_once(w2)  # the new process learns the broker's limit again, with one warning
        # Release the waiting tasks: everything finishes and the offset reaches the end.
        self.release(self.waiting)
        h.wait_until(lambda: self.committed()["offset"] == len(self.order), 120,
                     "%s: the committed offset to reach the end (%d)" % (self.name, len(self.order)))
        got = self.results(isolation)
        missing = set(self.order) - set(got)
        assert not missing, "%s: no result for %d task(s): %s" % (self.name, len(missing), sorted(missing)[:5])
        again = {q["task_id"] for q in h.sim_requests_all(self.sim)[mark:] if q.get("task_id")}
        assert not (again & skipped), "skipped tasks polled again: %s" % sorted(again & skipped)[:5]
        repolled = again & set(self.quick)
        assert w2.metrics().get("dw_tasks_skipped_total", 0) == len(skipped)
        assert w2.stop() == 0
        assert len([x for x in refusals(w2) if x[0] == "warn"]) == 1, refusals(w2)
        c = self.committed()
        assert c["offset"] == len(self.order) and not c.get("metadata"), c
        h.log("%s: worker2: the broker refused maps of %s bytes; room after each: %s" % (
            self.name, [x[1] for x in refusals(w2)], [x[2] for x in refusals(w2)]))
        h.log("%s: worker2 skipped %d tasks, polled %d finished but unmapped ones again; longest "
              "metadata read back %d bytes; offset at the end (%d); results %d (distinct %d)" % (
                  self.name, len(skipped), len(repolled), self.longest, c["offset"], len(got),
                  len(set(got))))
        return got


@pytest.fixture(scope="module")
def kafka(module_procs):
    """The file's own broker: its offset.metadata.max.bytes is the point."""
    kafka = h.RealKafka(module_procs, server_props=("offset.metadata.max.bytes=%d" % LIMIT,))
    yield kafka
    kafka.stop()


@pytest.fixture(scope="module")
def sim(module_procs):
    # No rate limit: the waiting tasks are polled all along.
    return h.Sim(module_procs, "--latency-ms", "2-10", "--rate-per-second", "0", "--rate-per-minute", "0")


def test_at_least_once_gives_its_maps_less_room(procs, kafka, sim):
    alo = Phase(kafka, sim, "alo", (h.IN, h.OUT, h.DLQ), "it-metalimit", {})
    alo.run(procs)


def test_refused_final_commit_is_sent_again_shorter(procs, kafka, sim):
    """At-least-once with no periodic commit before SIGTERM (commit_interval_ms 60 s): the
    final, synchronous commit is refused; it is sent again with shorter maps until the broker
    takes it, so the stopped worker leaves its map behind."""
    ph = Phase(kafka, sim, "sync", ("it-sync.in", "it-sync.out", "it-sync.dlq"), "it-metalimit-sync",
               {"DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS": "60000"})
    w = ph.worker(procs, "sync-worker")
    ph.produce()
    h.wait_until(lambda: set(ph.results()) >= set(ph.quick), 60, "sync: the quick tasks' results")
    assert not refusals(w) and ph.committed()["offset"] < 0, "committed before the shutdown"
    assert w.stop() == 0
    r = refusals(w)
    assert len([x for x in r if x[0] == "warn"]) == 1, r
    c = ph.map_committed()
    assert c, "no map committed at the shutdown: %s" % ph.committed()
    offset, meta, done = c
    assert offset == 0 and {ph.order[o] for o in done} <= set(ph.quick), c
    h.log("sync: the final commit was refused with maps of %s bytes (room after each %s), then "
          "taken with a map of %d bytes holding %d of the %d finished tasks" % (
              [x[1] for x in r], [x[2] for x in r], len(meta), len(done), K))


def test_exactly_once_reads_each_output_once(procs, kafka, sim):
    eos = Phase(kafka, sim, "eos", ("it-eos.in", "it-eos.out", "it-eos.dlq"), "it-metalimit-eos",
                {"DELIVERY_WORKER_PROCESSING_GUARANTEE": "exactly_once",
                 "DELIVERY_WORKER_PROCESSING_TRANSACTION_INTERVAL_MS": "100",
                 # The same transactional id across the kill: the next worker aborts what the
                 # killed one left open at once.
                 "DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "eos-0"})
    got = eos.run(procs, isolation="read_committed")
    dups = sorted({k for k in got if got.count(k) > 1})
    assert not dups and len(got) == len(eos.order), "read_committed duplicates: %s" % dups[:5]
