"""`delivery-worker preflight` against a real Kafka broker and the simulator: one run where
every check passes, and one run per class of failure (brokers unreachable, a topic missing,
kafka.commit_metadata_max_bytes above the broker's offset.metadata.max.bytes, bad app
credentials, the app's scope missing). Each asserts the checklist lines and the exit code.
The shared broker has no authorizer, so its ACL line is skipped; test_preflight_acl_broker.py
checks the ACL lines against a broker with one."""
import os
import re
import subprocess
import tempfile

import pytest

import harness as h

BINARY = os.path.join(h.BIN, "delivery-worker")


def preflight(conf, *args, env=None, timeout_s=10):
    """Runs preflight on conf with args, in an environment without DELIVERY_WORKER_* variables
    but env's: (exit status, stdout, stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_WORKER_")}
    e.update(env or {})
    r = subprocess.run([BINARY, "preflight", "-c", conf, "--timeout", str(timeout_s)] + list(args),
                       capture_output=True, text=True, env=e, timeout=12 * timeout_s)
    return r.returncode, r.stdout, r.stderr


def line(out, status, what):
    """The checklist line of check `what` (its text up to the colon) if it has that status."""
    for l in out.splitlines():
        if l.startswith(status) and l[6:].startswith(what + ":"):
            return l
    raise AssertionError("no %r line for %r in:\n%s" % (status, what, out))


@pytest.fixture(scope="module")
def setup(broker, module_procs):
    kafka = broker.topics("preflight", 3)
    sim = h.Sim(module_procs)
    fd, path = tempfile.mkstemp(suffix=".conf")
    os.write(fd, ('kafka = { brokers = "%s"; group_id = "%s"; input_topic = "%s";\n'
                  '  results_topic = "%s"; dlq_topic = "%s"; };\n'
                  'feishu = { base_url = "%s"; app_id = "cli_test"; app_secret = "secret"; };\n'
                  % (kafka.bootstrap, kafka.group, kafka.IN, kafka.OUT, kafka.DLQ, sim.url))
             .encode())
    os.close(fd)
    yield kafka, sim, path
    os.unlink(path)


def test_everything_passes(setup):
    kafka, sim, conf = setup
    rc, out, err = preflight(conf)
    assert rc == 0, out + err
    assert "FAIL" not in out, out
    assert re.search(r"^ok    brokers: 1 reachable", out, re.M), out
    for key, topic in (("kafka.input_topic", kafka.IN), ("kafka.results_topic", kafka.OUT),
                       ("kafka.dlq_topic", kafka.DLQ)):
        assert line(out, "ok", "topic %s (%s)" % (topic, key)).endswith(": 3 partitions"), out
    # librdkafka 2.0.2 reads the broker's "no authorizer" answer as an empty list.
    assert "no ACL binding" in line(out, "skip", "ACLs"), out
    assert "the broker allows 4096 bytes" in line(out, "ok", "offset.metadata.max.bytes"), out
    line(out, "ok", "token")
    assert "1002008" in line(out, "ok", "scope"), out
    assert out.rstrip().endswith("passed: 8 checks, 0 failed"), out


def test_brokers_unreachable(setup):
    _, _, conf = setup
    rc, out, _ = preflight(conf, "--set", "kafka.brokers=127.0.0.1:%d" % h.free_port())
    assert rc == 1, out
    line(out, "FAIL", "brokers")
    assert "fix: check kafka.brokers and the security properties" in out, out
    for what in ("ACLs", "offset.metadata.max.bytes"):
        assert "brokers unreachable" in line(out, "skip", what), out
    line(out, "ok", "scope")  # the API checks still run


def test_topic_missing(setup):
    kafka, _, conf = setup
    missing = kafka.IN + ".missing"
    rc, out, _ = preflight(conf, "--set", "kafka.input_topic=" + missing)
    assert rc == 1, out
    assert "does not exist" in line(out, "FAIL", "topic %s (kafka.input_topic)" % missing), out
    assert "--create --topic %s" % missing in out, out
    line(out, "ok", "topic %s (kafka.results_topic)" % kafka.OUT)
    # A consumer never creates topics: the check left it missing.
    rc, out, _ = preflight(conf, "--set", "kafka.input_topic=" + missing)
    line(out, "FAIL", "topic %s (kafka.input_topic)" % missing)


def test_metadata_limit_too_small(setup):
    _, _, conf = setup
    rc, out, _ = preflight(conf, "--set", "kafka.commit_metadata_max_bytes=8192")
    assert rc == 1, out
    l = line(out, "FAIL", "offset.metadata.max.bytes")
    assert "the broker allows 4096 bytes, kafka.commit_metadata_max_bytes = 8192" in l, out
    assert "fix: set kafka.commit_metadata_max_bytes = 4096" in out, out


def test_bad_credentials(setup):
    _, _, conf = setup
    rc, out, _ = preflight(conf, "--set", "feishu.app_secret=wrong")
    assert rc == 1, out
    assert "code 10014" in line(out, "FAIL", "token"), out
    assert "fix: check feishu.app_id and the app secret" in out, out
    assert "no token" in line(out, "skip", "scope"), out
    assert "wrong" not in out, "the secret was printed"


def test_scope_missing(setup):
    _, sim, conf = setup
    sim.fault(code=99991672, count=1)
    rc, out, _ = preflight(conf)
    assert rc == 1, out
    line(out, "ok", "token")
    assert "code 99991672" in line(out, "FAIL", "scope"), out
    assert "hire:site_application:readonly" in out, out
