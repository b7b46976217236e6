"""A log reader that went away ends no command: with stderr a pipe whose reader has exited,
every command (replay, redrive, run and the command line's own errors) still finishes with
its own exit status instead of dying of SIGPIPE at its first line. A redrive killed there,
after producing and before committing its position, would redrive the same letters again."""
import os
import signal
import subprocess

import harness as h


def run_closed_stderr(args, env=None, timeout=120):
    """Runs delivery-worker args with stderr a pipe nobody reads any more; its exit status."""
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([os.path.join(h.BIN, "delivery-worker")] + args, stdout=subprocess.DEVNULL,
                           stderr=w, stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})),
                           timeout=timeout * h.SLOW)
    finally:
        os.close(w)
    return p.returncode


def test_commands_outlive_their_log_reader(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    w = start_worker(kafka.bootstrap, sim.url, group="it-sigpipe", name="sigpipe", start=False)

    cases = [
        (["no-such-command"], None, 2),
        (["replay", "--no-such-option"], None, 2),
        (["redrive", "--no-such-option"], None, 2),
        (["run", "--no-such-option"], None, 2),
        # No file and no app id in the environment: the config's error, exit 1.
        (["run"], {"DELIVERY_WORKER_FEISHU_APP_ID": ""}, 1),
        # A whole redrive (of no letters): it saves its position, then reports on stderr.
        (["redrive", "-c", w.conf, "--from-beginning"], w.env, 0),
    ]
    for args, env, want in cases:
        rc = run_closed_stderr(args, env)
        h.log("$ delivery-worker %s 2>closed-pipe -> %d" % (" ".join(args), rc))
        assert rc != -signal.SIGPIPE, "%s: killed by SIGPIPE" % args
        assert rc == want, (args, rc)
