"""Security on a real broker: the worker reaches Kafka over a SASL_SSL listener (generated CA)
with each SASL mechanism (SCRAM-SHA-512, PLAIN, OAUTHBEARER with the broker's unsecured JWS
validator) and the API over HTTPS (the simulator with a certificate of the same CA, trusted
through feishu.ca_file). Tasks resolve and offsets commit. A wrong Kafka password and a missing
CA fail with a clear error; without feishu.ca_file the API's certificate is refused, the calls
are retried and nothing is dead-lettered. No password or app secret ever shows in the log,
`check-config` or /metrics, and the admin endpoint serves only its three paths on the
configured address."""
import json
import os
import re
import secrets
import ssl
import urllib.error
import urllib.request

import pytest

import harness as h
import scenario


class SecureKafka(h.RealKafka):
    """The real broker with the extra SASL_SSL listener of `kafka.sh start --sasl-ssl`."""

    def __init__(self, procs):
        super().__init__(procs, start_args=["--sasl-ssl"])
        self.secure = self.started["KAFKA_SASL_SSL_BOOTSTRAP"]
        self.ca = self.started["KAFKA_CA_FILE"]
        self.users = {}
        for line in open(self.started["KAFKA_SASL_USERS"]):
            mech, user, password = line.split()
            self.users[mech] = (user, password)
        self.tls = os.path.dirname(self.ca)


class TlsSim(h.Sim):
    """dw-sim serving HTTPS with a certificate signed by the test CA."""

    def __init__(self, procs, tls_dir, *args):
        super().__init__(procs, "--tls-cert", os.path.join(tls_dir, "broker.pem"),
                         "--tls-key", os.path.join(tls_dir, "broker.key"), *args)
        self.url = self.url.replace("http://", "https://")
        self.ctx = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.pem"))

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60, context=self.ctx) as r:
            return json.loads(r.read() or b"null")


BASE_PROPS = (("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
              ("security.protocol", "SASL_SSL"))
APP = "cli_sec"
APP_SECRET = "app-" + secrets.token_hex(12)


def topics_env(tag):
    return {"DELIVERY_WORKER_KAFKA_INPUT_TOPIC": "sec.%s.in" % tag,
            "DELIVERY_WORKER_KAFKA_RESULTS_TOPIC": "sec.%s.out" % tag,
            "DELIVERY_WORKER_KAFKA_DLQ_TOPIC": "sec.%s.dlq" % tag}


def create_topics(kafka, tag):
    for t in topics_env(tag).values():
        h.kafkatool("create-topic", "-b", kafka.bootstrap, t, "2")


def assert_no_secret(where, text, needles):
    for n in needles:
        assert n not in text, "a secret (%s...) shows in %s" % (n[:3], where)


def run_mechanism(procs, kafka, sim, mech, props, env, needles, via_secure_dump=False, include=None):
    """A worker on the SASL_SSL listener with mechanism mech: every task resolves, offsets
    commit, and no secret shows anywhere. include: a file of more kafka.properties pairs
    (a mounted secret), pulled into the list with libconfig's @include."""
    tag = mech.lower().replace("-", "")
    create_topics(kafka, tag)
    env = dict(env, DELIVERY_WORKER_FEISHU_CA_FILE=kafka.ca, **topics_env(tag))
    group = "sec-" + tag
    w = h.Worker(procs, kafka.secure, sim.url, group=group, app=APP, secret=APP_SECRET,
                 properties=BASE_PROPS + tuple(props), env=env, name="w-" + tag)
    if include:
        with open(w.conf) as f:
            text = f.read()
        with open(w.conf, "w") as f:
            f.write(text.replace("properties = ( ", 'properties = (\n@include "%s"\n  ' % include, 1))
    rc, out = h.check_config(w.conf, w.env)
    assert rc == 0, out
    assert "<redacted>" in out, out
    assert_no_secret("check-config output", out, needles)
    w.start()
    h.wait_until(lambda: re.search(r"assigned \d+ partition", w.log_text()), 60,
                 "%s: the worker to join its group over SASL_SSL" % mech)
    specs, records, expect = scenario.build("sec-" + tag, 4, never=False)
    sim.register(specs)
    t = topics_env(tag)
    h.produce(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"], records)
    out_t, dlq_t = t["DELIVERY_WORKER_KAFKA_RESULTS_TOPIC"], t["DELIVERY_WORKER_KAFKA_DLQ_TOPIC"]
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, out_t)) + len(h.dump(kafka.bootstrap, dlq_t))
                 >= len(records), 90, "%s: every output" % mech)
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, group, t["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"]),
                 30, "%s: every input offset committed" % mech)
    if via_secure_dump:
        # The same topic read back through the SASL_SSL listener by dw-kafkatool -X.
        x = ["-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + kafka.ca]
        for k, v in props:
            x += ["-X", "%s=%s" % (k, v)]
        for kv in env.get("DELIVERY_WORKER_KAFKA_PROPERTIES", "").split(","):
            if kv:
                x += ["-X", kv]
        secure = [json.loads(l) for l in h.kafkatool("dump", "-b", kafka.secure, out_t, "--timeout-ms",
                                                      "10000", *x).splitlines() if l.strip()]
        assert len(secure) == len(h.dump(kafka.bootstrap, out_t)), "dump over SASL_SSL differs"
    scenario.check(h.dump(kafka.bootstrap, out_t), h.dump(kafka.bootstrap, dlq_t), records, expect,
                   sim.requests())
    metrics = w.admin("/metrics")[1]
    assert_no_secret("/metrics", metrics, needles)
    assert w.stop() == 0
    assert_no_secret("the worker's log", w.log_text(), needles)
    h.log("%s: %d records resolved over SASL_SSL, offsets committed, no secret shown" % (mech, len(records)))
    return w


def expect_failure(procs, kafka, sim, name, props, env, pattern, needles, what):
    """A worker that cannot reach Kafka: its log says why (pattern) and it is never ready."""
    w = h.Worker(procs, kafka.secure, sim.url, group="sec-" + name, app=APP, secret=APP_SECRET,
                 properties=props, env=dict(env, DELIVERY_WORKER_FEISHU_CA_FILE=kafka.ca,
                                            **topics_env("scramsha512")), name="w-" + name)
    w.start()
    w.proc.stopping = True  # may exit by itself; the log is what counts
    m = h.wait_until(lambda: re.search(pattern, w.log_text()), 60, what)
    line = next(l for l in w.log_text().splitlines() if m.group(0) in l)
    if w.proc.poll() is None:
        status, body = w.admin("/readyz")
        assert status != 200, "ready although Kafka refuses it: %s" % body
        assert_no_secret("/metrics", w.admin("/metrics")[1], needles)
        w.stop()
    assert "assigned" not in w.log_text()
    assert_no_secret("the worker's log", w.log_text(), needles)
    h.log("%s: %s" % (name, line[:300]))


def check_admin(procs, kafka, sim, env, needles):
    """The admin endpoint: bound to the configured address only, three paths, nothing secret."""
    w = h.Worker(procs, kafka.bootstrap, sim.url, group="sec-admin", app=APP, secret=APP_SECRET,
                 env=dict(env, DELIVERY_WORKER_FEISHU_CA_FILE=kafka.ca, **topics_env("scramsha512")),
                 name="w-admin").start()
    for path in ("/metrics", "/healthz", "/readyz"):
        status, body = w.admin(path)
        assert status in (200, 503), (path, status)
        assert_no_secret(path, body, needles)
    for path in ("/", "/config", "/env", "/debug/vars", "/metrics/../config", "/healthz/x", "/_sim/stats"):
        status, body = w.admin(path)
        assert status == 404, (path, status, body[:200])
    # admin.listen is 127.0.0.1:PORT: another loopback address of the same host gets nothing.
    try:
        import socket
        socket.create_connection(("127.0.0.2", w.admin_port), timeout=2).close()
        raise AssertionError("the admin endpoint answers on 127.0.0.2, not only on admin.listen")
    except ConnectionRefusedError:
        pass
    assert w.stop() == 0
    assert_no_secret("the worker's log", w.log_text(), needles)


def check_api_certificate(procs, kafka, sim, env, needles):
    """Without feishu.ca_file the simulator's certificate (test CA) is refused: the calls fail
    with a certificate error, are retried, nothing reaches the topics; with it, all resolve."""
    tag = "https"
    create_topics(kafka, tag)
    t = topics_env(tag)
    # A deadline far away: the point is that the refusal itself dead-letters nothing.
    env = dict(env, DELIVERY_WORKER_POLL_DEADLINE_MS="600000", **t)
    w = h.Worker(procs, kafka.bootstrap, sim.url, group="sec-https", app=APP, secret=APP_SECRET,
                 env=env, name="w-api-ca").start()
    specs, records, expect = scenario.build("sec-https", 3, never=False)
    sim.register(specs)
    h.produce(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"], records)
    h.wait_until(lambda: len(re.findall(r"SSL certificate problem", w.log_text())) >= 2, 60,
                 "the API's certificate refused (twice: retried)")
    line = next(l for l in w.log_text().splitlines() if "SSL certificate problem" in l)
    h.log("without feishu.ca_file: " + line[:300])
    valid = [k for k, (kind, r) in expect.items() if r != "invalid_event"]
    out = h.dump(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_RESULTS_TOPIC"])
    dead = [d for d in h.dump(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_DLQ_TOPIC"]) if d["key"] in valid]
    assert not out and not dead, "outputs although no call got through: %s %s" % (out, dead)
    assert not [q for q in sim.requests() if q.get("task_id") in valid], "a call got through"
    assert w.stop() == 0
    assert_no_secret("the worker's log", w.log_text(), needles)
    # The same group with the CA: everything resolves.
    w2 = h.Worker(procs, kafka.bootstrap, sim.url, group="sec-https", app=APP, secret=APP_SECRET,
                  env=dict(env, DELIVERY_WORKER_FEISHU_CA_FILE=kafka.ca), name="w-ca").start()
    out_t, dlq_t = t["DELIVERY_WORKER_KAFKA_RESULTS_TOPIC"], t["DELIVERY_WORKER_KAFKA_DLQ_TOPIC"]
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, out_t)) + len(h.dump(kafka.bootstrap, dlq_t))
                 >= len(records), 90, "every output over HTTPS with feishu.ca_file")
    scenario.check(h.dump(kafka.bootstrap, out_t), h.dump(kafka.bootstrap, dlq_t), records, expect,
                   sim.requests())
    assert w2.stop() == 0
    h.log("HTTPS: refused without feishu.ca_file (nothing dead-lettered), %d records resolved with it"
          % len(records))


@pytest.fixture(scope="module")
def kafka(module_procs):
    kafka = SecureKafka(module_procs)
    yield kafka
    kafka.stop()


@pytest.fixture(scope="module")
def sim(module_procs, kafka):
    return TlsSim(module_procs, kafka.tls, "--app", "%s:%s" % (APP, APP_SECRET))


@pytest.fixture
def needles(kafka):
    """What must never show: the Kafka passwords and the app secret."""
    return [kafka.users["SCRAM-SHA-512"][1], kafka.users["PLAIN"][1], APP_SECRET]


def test_api_certificate_is_trusted_through_ca_file(procs, kafka, sim, needles):
    check_api_certificate(procs, kafka, sim, {}, needles)


def test_admin_endpoint_serves_only_its_paths(procs, kafka, sim, needles):
    check_admin(procs, kafka, sim, {}, needles)


def test_scram_password_from_the_environment(procs, kafka, sim, needles):
    scram_user, scram_pw = kafka.users["SCRAM-SHA-512"]
    run_mechanism(procs, kafka, sim, "SCRAM-SHA-512",
                  (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "SCRAM-SHA-512"),
                   ("sasl.username", scram_user)),
                  {"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.password=" + scram_pw}, needles,
                  via_secure_dump=True)


def test_plain_password_from_an_included_file(procs, kafka, sim, needles):
    # PLAIN: the password from a file of its own (a mounted secret), @included by the config.
    # libconfig 1.5 resolves every @include path, even an absolute one, under the config
    # file's directory, so the file lies next to the config (or in a directory below it).
    plain_user, plain_pw = kafka.users["PLAIN"]
    pw_file = os.path.join(procs.tmp, "kafka-password.conf")
    with open(pw_file, "w") as f:
        f.write('("sasl.password", "%s"),\n' % plain_pw)
    os.chmod(pw_file, 0o600)
    run_mechanism(procs, kafka, sim, "PLAIN",
                  (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "PLAIN"),
                   ("sasl.username", plain_user)), {}, needles, include=os.path.basename(pw_file))


def test_oauthbearer_unsecured_jwt(procs, kafka, sim, needles):
    # OAUTHBEARER: librdkafka's unsecured JWT (alg "none") against the broker's unsecured
    # validator -- for tests; production uses sasl.oauthbearer.method=oidc.
    oauth_user = kafka.users["OAUTHBEARER"][0]
    run_mechanism(procs, kafka, sim, "OAUTHBEARER",
                  (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "OAUTHBEARER"),
                   ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
                   ("sasl.oauthbearer.config", "principal=%s" % oauth_user)), {}, needles)


def test_wrong_password_is_a_clear_error_that_hides_it(procs, kafka, sim, needles):
    # A wrong password: a clear authentication error; the wrong password is not shown either.
    scram_user = kafka.users["SCRAM-SHA-512"][0]
    wrong = "wrong-" + secrets.token_hex(8)
    expect_failure(procs, kafka, sim, "badpw",
                   BASE_PROPS + (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "SCRAM-SHA-512"),
                                 ("sasl.username", scram_user)),
                   {"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.password=" + wrong},
                   r"SASL authentication error: Authentication failed[^\"]*", needles + [wrong],
                   "an authentication error in the log")


def test_broker_certificate_refused_without_its_ca(procs, kafka, sim, needles):
    # No ssl.ca.location: the system's CAs do not know the test CA; the broker is refused.
    scram_user, scram_pw = kafka.users["SCRAM-SHA-512"]
    expect_failure(procs, kafka, sim, "noca",
                   BASE_PROPS + (("sasl.mechanism", "SCRAM-SHA-512"), ("sasl.username", scram_user)),
                   {"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.password=" + scram_pw},
                   r"SSL handshake failed: [^\"]*certificate verify failed", needles,
                   "the broker's certificate refused")
