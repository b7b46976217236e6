"""A lost or stalled log reader neither kills the worker nor stops it. stderr is a pipe whose
reader stalls (never reads, pipe shrunk to one page), then a pipe whose reader has exited: in
both the worker resolves every task, /healthz answers, the lines it could not write show in
dw_log_lines_dropped_total, and SIGTERM still drains and exits 0."""
import fcntl
import os
import signal
import subprocess

import harness as h

F_SETPIPE_SZ = 1031
TASKS = 60


def start(procs, worker, stderr_fd):
    p = subprocess.Popen([os.path.join(h.BIN, "delivery-worker"), "run", "-c", worker.conf],
                         stdout=subprocess.DEVNULL, stderr=stderr_fd, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, **worker.env))
    p.logfile = os.path.join(procs.tmp, worker.name + ".log")  # nothing reaches it
    open(p.logfile, "w").close()
    procs.procs.append(p)
    h._watched.append(p)
    worker.proc = p
    return p


def outputs(kafka):
    return len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))


def check(kafka, worker, expect_outputs, what):
    h.wait_until(lambda: worker.admin("/readyz")[0] == 200, 30, "%s: ready" % what)
    h.wait_until(lambda: outputs(kafka) >= expect_outputs, 90, "%s: every task resolved" % what)
    assert worker.admin("/healthz") == (200, "ok\n")
    m = worker.metrics()
    assert m.get("dw_log_lines_dropped_total", 0) > 0, m
    h.log("%s: %d outputs, %d log lines dropped" % (what, outputs(kafka),
                                                    m["dw_log_lines_dropped_total"]))
    assert worker.stop() == 0


def test_stalled_or_lost_log_reader_stops_nothing(procs, start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    tasks = ["lp-%03d" % i for i in range(TASKS)]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                  for t in tasks])
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in tasks])

    # 1. A reader that stalls: the pipe fills with the start-up lines already.
    r, wfd = os.pipe()
    fcntl.fcntl(wfd, F_SETPIPE_SZ, 4096)
    w1 = start_worker(kafka.bootstrap, sim.url, group="it-logpipe-1", name="stalled", start=False)
    start(procs, w1, wfd)
    os.close(wfd)
    check(kafka, w1, TASKS, "reader stalls")
    os.close(r)

    # 2. A reader that went away (another group: the same tasks are resolved again).
    r, wfd = os.pipe()
    os.close(r)
    w2 = start_worker(kafka.bootstrap, sim.url, group="it-logpipe-2", name="gone", start=False)
    start(procs, w2, wfd)
    os.close(wfd)
    check(kafka, w2, 2 * TASKS, "reader gone")
    assert w2.proc.returncode != -signal.SIGPIPE
