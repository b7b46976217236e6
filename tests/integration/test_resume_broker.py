"""On a real Kafka 3.9 broker: tasks finished beyond the committed offset are not polled again
after a crash. One partition; its first task never becomes ready, so the committed offset stays
at it while the 150 tasks behind it finish. The worker is killed with SIGKILL (no drain, no
final commit); the next worker reads the map of finished tasks from the commit metadata, skips
them (no API call, no second result) and polls only the unfinished one. Then `replay
--from-offset 0` clears the map (the committed offset is already 0), and a third worker
processes all of them again."""
import os
import subprocess

import harness as h

N = 150


def test_finished_tasks_are_skipped_after_a_crash(start_sim, start_worker, broker):
    kafka = broker.topics("resume", 1)
    sim = start_sim("--latency-ms", "2-10")
    blocker = "rs-blocker"
    tasks = ["rs-ok-%04d" % i for i in range(N)]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": blocker, "final": "never"}] +
                 [{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                  for t in tasks])
    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": "600000",
           "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": "1000"}
    w1 = start_worker(kafka.bootstrap, sim.url, group=kafka.group, env=env, name="worker1", topics=kafka)
    h.produce(kafka.bootstrap, kafka.IN, [{"key": blocker, "value": h.json.dumps(
        {"website_id": h.WEBSITE, "delivery_task_id": blocker})}] + [h.event(t) for t in tasks])
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.OUT)) >= N, 90, "every result but the blocker's")

    def map_committed():
        c = h.committed(kafka.bootstrap, kafka.group, kafka.IN)
        return c and c[0]["offset"] == 0 and c[0].get("metadata", "").startswith("dw1.") and \
            len(h.decode_map(c[0]["metadata"])[1]) == N and c[0]
    c = h.wait_until(map_committed, 30, "offset 0 committed with a map of %d finished tasks" % N)
    h.log("committed offset 0 with %d bytes of metadata" % len(c["metadata"]))
    assert len(c["metadata"]) < 100, "one run of 150 finished tasks should take a few bytes"
    w1.proc.stopping = True
    w1.proc.kill()  # SIGKILL: nothing more is committed
    w1.proc.wait()
    mark = len(sim.requests())

    w2 = start_worker(kafka.bootstrap, sim.url, group=kafka.group, env=env, name="worker2", topics=kafka)
    h.wait_until(lambda: "%d task(s) after offset 0 were finished before" % N in w2.log_text(), 60,
                 "the restarted worker to read the map")
    h.wait_until(lambda: w2.metrics().get("dw_tasks_skipped_total", 0) >= N, 60, "the skipped tasks")
    h.wait_until(lambda: any(q.get("task_id") == blocker for q in sim.requests()[mark:]), 60,
                 "the blocker polled again")
    again = sorted({q["task_id"] for q in sim.requests()[mark:]
                    if q.get("task_id") and q["task_id"] != blocker})
    assert not again, "finished tasks polled again after the crash: %s" % again[:5]
    results = [r["key"] for r in h.dump(kafka.bootstrap, kafka.OUT)]
    assert len(results) == N and len(set(results)) == N, "results: %d, distinct %d" % (len(results), len(set(results)))
    assert w2.stop() == 0
    h.log("resume: %d finished tasks skipped after SIGKILL, 0 polled again, 0 duplicate results" % N)

    c = h.committed(kafka.bootstrap, kafka.group, kafka.IN)[0]
    assert c["offset"] == 0 and len(h.decode_map(c["metadata"])[1]) == N, c
    r = subprocess.run([os.path.join(h.BIN, "delivery-worker"), "replay", "-c", w2.conf,
                        "--from-offset", "0"], capture_output=True, text=True, timeout=120)
    h.log("$ delivery-worker replay --from-offset 0 -> %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    assert r.returncode == 0 and "is cleared" in r.stdout, r
    c = h.committed(kafka.bootstrap, kafka.group, kafka.IN)[0]
    assert c["offset"] == 0 and not c.get("metadata"), c
    mark = len(sim.requests())
    w3 = start_worker(kafka.bootstrap, sim.url, group=kafka.group, env=env, name="worker3", topics=kafka)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.OUT)) >= 2 * N, 90, "every task resolved again")
    again = {q["task_id"] for q in sim.requests()[mark:] if q.get("task_id")}
    assert again >= set(tasks), "not polled again after the replay: %s" % sorted(set(tasks) - again)[:5]
    assert w3.stop() == 0
