"""At-least-once on the mock cluster with a group coordinator that takes seconds to answer an
offset commit (each OffsetCommit answered after 2 s) while a second worker joins the group: the
first worker's revoke commits what is finished without blocking its loop, so its /healthz and
/metrics answer within a fraction of a second all along; the partitions move once the commit is
over. Every task ends with a result or dead letter, every offset is committed, and a task comes
out twice only when its output was acknowledged after the revoke's commit was taken."""
import datetime
import re

import harness as h
import scenario
from test_slow_transaction_mock import Prober

SLOW_MS = 2000  # each slow answer; far below librdkafka's socket.timeout.ms (60 s)
SLOW_CALLS = 3  # OffsetCommits answered slowly: the revoke's, then what follows it
FAST_S = 0.5    # the most an admin request may take meanwhile
GROUP = "it-slow-commit"


def log_time(text, pattern):
    """The wall-clock time of the first log line matching pattern (its RFC 3339 timestamp)."""
    for line in text.splitlines():
        if re.search(pattern, line):
            ts = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line).group(0)
            return datetime.datetime.strptime(ts.replace("Z", "+0000"),
                                              "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    raise AssertionError("no log line matches %r" % pattern)


def outputs(kafka):
    return h.dump(kafka.bootstrap, h.OUT) + h.dump(kafka.bootstrap, h.DLQ)


def take_over(kafka, a, b, prober, rest, expect):
    """Worker b has joined a's group: the rest of the records go in, a gives partitions up, b
    takes them, every task gets an output; then the prober stops."""
    h.produce(kafka.bootstrap, h.IN, rest)
    h.wait_until(lambda: re.search(r"revoked [1-9]\d* partition", a.log_text()), 90,
                 "worker a to give partitions up")
    h.wait_until(lambda: re.search(r"assigned [1-9]\d* partition", b.log_text()), 90,
                 "worker b to take them")
    h.wait_until(lambda: {r["key"] for r in outputs(kafka)} >= set(expect), 120, "every output")
    prober.done.set()
    prober.join(60)


def test_slow_offset_commit_at_a_revoke_leaves_the_loop_free(start_mock_kafka, start_sim,
                                                             start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-10")
    specs, records, expect = scenario.build("rvk", 80, seed=13, never=False)
    sim.register(specs)
    # The first worker commits on its ticks only once a minute: the slow OffsetCommits are
    # then the revoke's (and the shutdown's), not a tick's.
    a = start_worker(kafka.bootstrap, sim.url, group=GROUP, name="worker-a",
                     env={"DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS": "60000"})
    h.wait_until(lambda: "assigned 4 partition" in a.log_text(), 60, "worker a's assignment")
    h.produce(kafka.bootstrap, h.IN, records[:40])
    h.wait_until(lambda: len({r["key"] for r in outputs(kafka)}) >= 20, 60, "the first outputs")

    a.admin("/healthz")
    prober = Prober(a.admin_port)
    prober.start()
    kafka.command("request-rtts OffsetCommit %d %d" % (SLOW_CALLS, SLOW_MS))
    b = start_worker(kafka.bootstrap, sim.url, group=GROUP, name="worker-b")
    take_over(kafka, a, b, prober, records[40:], expect)

    slowest = max(prober.times)
    # From worker a's revoke to worker b's assignment, as their logs time them: the partitions
    # move only once the revoke's commit (answered after SLOW_MS) is over, so the requests that
    # started in between overlapped it.
    revoke_seen = log_time(a.log_text(), r"revoked [1-9]\d* partition")
    taken_seen = log_time(b.log_text(), r"assigned [1-9]\d* partition")
    during = sum(1 for t in prober.started if revoke_seen <= t <= taken_seen)
    h.log("slow offset commit at a revoke: %d admin requests (%d while the revoke's commit was "
          "slow, %.1f s), the slowest %.3f s (%s)"
          % (len(prober.times), during, taken_seen - revoke_seen, slowest[0], slowest[1]))
    assert not prober.failures, "admin requests failed: %s" % prober.failures[:5]
    assert slowest[0] < FAST_S, "an admin request took %.3f s (%s) while the coordinator was " \
        "slow to commit at a revoke: the loop was blocked" % slowest
    # Probed all along the slow commit: about 20 probes a second.
    assert len(prober.times) >= SLOW_MS / 1000 * 10, len(prober.times)
    assert taken_seen - revoke_seen >= SLOW_MS / 1000 * 0.8, taken_seen - revoke_seen
    assert during >= SLOW_MS / 1000 * 5, during

    # Both leave the group, one after the other; every offset is committed by then. Worker b
    # stops once the group has given it a's partitions: a member that stops while the group
    # is still rebalancing for another's leave finds its generation gone, and its last commit
    # refused (what it did not commit is processed again: at-least-once).
    assert a.stop() == 0, "worker a did not exit 0 after SIGTERM"
    h.wait_until(lambda: len(re.findall(r"assigned [1-9]\d* partition", b.log_text())) >= 2, 60,
                 "worker b to take a's partitions")
    assert b.stop() == 0, "worker b did not exit 0 after SIGTERM"
    assert h.all_committed(kafka.bootstrap, GROUP, h.IN), h.committed(kafka.bootstrap, GROUP, h.IN)
    dups = scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records,
                          expect, sim.requests(), allow_duplicates=True)
    h.log("slow offset commit at a revoke: %d duplicate outputs of %d" % (dups, len(expect)))
    # The revoke committed what was finished with its map, so the next owner skipped it: only
    # outputs still on their way when the commit was taken can come again.
    assert dups <= len(expect) // 10, dups


def test_slow_transaction_commit_at_a_revoke_leaves_the_loop_free(start_mock_kafka, start_sim,
                                                                  start_worker):
    """Exactly-once: each EndTxn answered after 2 s while a second worker joins. The revoke
    waits for the tick's commit in flight and commits its own on the thread pool, its outcome
    awaited on the loop: /healthz and /metrics answer within a fraction of a second all along,
    and every task has an output. (The mock cluster keeps no offsets committed in a transaction,
    so the second worker starts from the beginning: duplicates are not counted here;
    test_exactly_once_broker.py reads exactly once on a real broker.)"""
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-10")
    specs, records, expect = scenario.build("rvt", 60, seed=14, never=False)
    sim.register(specs)
    eos = 'processing = { guarantee = "exactly_once"; transaction_interval_ms = 100; };'
    a = start_worker(kafka.bootstrap, sim.url, group=GROUP + "-eos", name="worker-a", extra=eos)
    h.wait_until(lambda: "assigned 4 partition" in a.log_text(), 60, "worker a's assignment")
    h.produce(kafka.bootstrap, h.IN, records[:30])
    h.wait_until(lambda: len({r["key"] for r in outputs(kafka)}) >= 15, 60, "the first outputs")

    a.admin("/healthz")
    prober = Prober(a.admin_port)
    prober.start()
    # Enough slow commits to last until the revoke: the join takes a few seconds.
    kafka.command("request-rtts EndTxn %d %d" % (15, SLOW_MS))
    b = start_worker(kafka.bootstrap, sim.url, group=GROUP + "-eos", name="worker-b", extra=eos)
    take_over(kafka, a, b, prober, records[30:], expect)

    slowest = max(prober.times)
    h.log("slow transaction commit at a revoke: %d admin requests, the slowest %.3f s (%s)"
          % (len(prober.times), slowest[0], slowest[1]))
    assert not prober.failures, "admin requests failed: %s" % prober.failures[:5]
    assert slowest[0] < FAST_S, "an admin request took %.3f s (%s) while the transaction " \
        "coordinator was slow at a revoke: the loop was blocked" % slowest
    assert len(prober.times) >= SLOW_MS / 1000 * 10, len(prober.times)
    assert a.stop() == 0, "worker a did not exit 0 after SIGTERM"
    assert b.stop() == 0, "worker b did not exit 0 after SIGTERM"
    scenario.check(h.dump(kafka.bootstrap, h.OUT), h.dump(kafka.bootstrap, h.DLQ), records, expect,
                   sim.requests(), allow_duplicates=True)
