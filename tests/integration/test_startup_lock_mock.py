"""The start-up bound holds even when the thread stuck starting holds the log's lock. gdb stops
the worker while it opens the admin endpoint and has its main thread take the lock, so that
thread blocks on it at its next line, lock in hand: the guard must still end the start-up
within its bound with a message and exit 2, which it cannot if it logs through the lock."""
import os
import re
import shutil
import signal
import subprocess

import harness as h

STARTUP_BOUND_S = 30  # the worker's start-up bound (worker.c: STARTUP_TIMEOUT_S)


def test_startup_bound_holds_with_the_log_lock_held(procs, start_mock_kafka, start_sim, start_worker):
    if not shutil.which("gdb"):
        h.log("skipping: no gdb to stop the worker with the log's lock held")
        return
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    w = start_worker(kafka.bootstrap, sim.url, group="it-startup-lock", name="locked", start=False)
    gdb = procs.start(["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                       "-ex", "break dw_admin_start", "-ex", "run", "-ex", "info proc",
                       "-ex", "call (int)pthread_mutex_lock(&'log.c'::lock)",
                       "-ex", "delete", "-ex", "continue",
                       "--args", os.path.join(h.BIN, "delivery-worker"), "run", "-c", w.conf],
                      "locked", env=w.env)
    gdb.stopping = True  # expected to exit
    text = lambda: open(gdb.logfile, errors="replace").read()
    h.wait_until(lambda: re.search(r"^process (\d+)", text(), re.M) or gdb.poll() is not None,
                 60 * h.SLOW, "gdb to stop the worker while it starts")
    m = re.search(r"^process (\d+)", text(), re.M)
    assert m, text()[-3000:]
    pid = int(m.group(1))
    try:
        h.wait_until(lambda: re.search(r"^\$1 = ", text(), re.M) or "No symbol" in text()
                     or gdb.poll() is not None, 30, "gdb to take the log's lock")
        if "No symbol" in text():
            h.log("skipping: the binary has no symbols for the log's lock:\n%s" % text()[-2000:])
            return
        try:
            gdb.wait(timeout=STARTUP_BOUND_S + 30 * h.SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError("the start-up bound did not fire with the log's lock held:\n%s"
                                 % text()[-3000:])
        out = text()
        assert "exited with code 02" in out, out[-3000:]
        assert re.search(r"cannot start: start-up \(.*\) did not finish within %d s"
                         % STARTUP_BOUND_S, out), out[-3000:]
        h.log("start-up bound with the log's lock held: %s" % [
            l for l in out.splitlines() if "did not finish" in l][-1][:300])
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
