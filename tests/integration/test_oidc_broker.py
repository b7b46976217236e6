"""OAUTHBEARER with OIDC on a real broker. tests/tools/oidc_provider.py issues RS256 tokens for
the client-credentials grant and serves their JWKS; the broker's SASL_SSL listener validates
every token's signature, issuer and audience against it (`kafka.sh start --oidc-jwks`, Kafka's
OAuthBearerValidatorCallbackHandler).

Always checked:
  - the broker really validates: a token from the provider is accepted (SASL handshake and
    authenticate spoken here, then an ApiVersions request on the session); the same token with
    a changed claim, an unsigned (alg "none") token and a token for another audience are
    refused; the provider refuses a wrong client secret (401);
  - the worker with librdkafka's unsecured token (`enable.sasl.oauthbearer.unsecure.jwt`) is
    refused by that broker: an authentication error in its log, never ready, nothing consumed.

The worker with sasl.oauthbearer.method=oidc, both ways it can work: librdkafka's own OIDC when
the library has the `oidc` feature (see builtin.features; run with LD_LIBRARY_PATH pointing at
such a librdkafka.so.1), else the worker's (worker/oidc.c: Debian 12's 2.0.2 is built without
libcurl and lacks the feature, so that is what CI runs):
  - check-config hands kafka.properties to librdkafka and names a missing OIDC property;
  - the worker fetches its token from the provider itself; tasks resolve and offsets commit;
    tokens live 20 s and the broker ends each session when its token expires
    (connections.max.reauth.ms, clock skew 2 s; librdkafka 2.0.2 cannot re-authenticate, so it
    is disconnected and connects again), so work that goes on after the first expiry proves the
    token was refreshed (each handle, consumer and producer, fetches its own: 2 tokens at
    start, 2 more at 80% of the lifetime);
  - a wrong client secret: the worker logs the provider's 401 and librdkafka's "Failed to
    acquire SASL OAUTHBEARER token", is never ready, consumes nothing and dead-letters nothing;
    a worker with the right secret in the same group then resolves everything;
  - the client secret never shows in the log, `check-config` or /metrics."""
import base64
import ctypes
import json
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import harness as h
import scenario

PROVIDER = os.path.join(h.SRC, "tests/tools/oidc_provider.py")
CLIENT_ID = "delivery-worker"
AUDIENCE = "kafka"
LIFETIME_S = 20
APP, APP_SECRET = "cli_oidc", "app-" + secrets.token_hex(12)


def rdkafka_features():
    """builtin.features of the librdkafka.so.1 the binaries load (same LD_LIBRARY_PATH)."""
    lib = ctypes.CDLL("librdkafka.so.1")
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_version_str.restype = ctypes.c_char_p
    conf = ctypes.c_void_p(lib.rd_kafka_conf_new())
    buf, size = ctypes.create_string_buffer(1024), ctypes.c_size_t(1024)
    lib.rd_kafka_conf_get(conf, b"builtin.features", buf, ctypes.byref(size))
    lib.rd_kafka_conf_destroy(conf)
    return lib.rd_kafka_version_str().decode(), lib.rd_kafka_version(), buf.value.decode().split(",")


class Provider:
    def __init__(self, procs, secret, lifetime):
        self.proc = procs.start([sys.executable, PROVIDER, "--dir", os.path.join(procs.tmp, "oidc"),
                                 "--client", CLIENT_ID, "--audience", AUDIENCE,
                                 "--lifetime", str(lifetime)], "oidc",
                                env={"OIDC_CLIENT_SECRET": secret})
        log = lambda: open(self.proc.logfile, errors="replace").read()
        self.url = h.wait_until(lambda: re.search(r"^OIDC_URL=(\S+)$", log(), re.M), 60,
                                "the OIDC provider").group(1)
        self.token_url, self.jwks_url = self.url + "/token", self.url + "/jwks"

    def stats(self):
        with urllib.request.urlopen(self.url + "/_stats", timeout=10) as r:
            return json.loads(r.read())

    def fetch(self, client_id, secret, **form):
        """A token the way librdkafka asks for one: Basic auth, form body. (status, json)."""
        body = urllib.parse.urlencode(dict({"grant_type": "client_credentials"}, **form)).encode()
        auth = base64.b64encode(("%s:%s" % (client_id, secret)).encode()).decode()
        req = urllib.request.Request(self.token_url, data=body, method="POST", headers={
            "Authorization": "Basic " + auth, "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class OidcKafka(h.RealKafka):
    """The broker of `kafka.sh start --oidc-jwks`: its SASL_SSL listener checks tokens against
    the provider's JWKS, issuer and audience; sessions end when their token expires."""

    def __init__(self, procs, provider):
        # KIP-368: the broker caps a session at its token's expiry (clients that cannot
        # re-authenticate, like librdkafka 2.0.2, are disconnected and log in again).
        super().__init__(procs, server_props=[
            "listener.name.sasl_ssl.oauthbearer.connections.max.reauth.ms=600000",
            "listener.name.sasl_ssl.sasl.oauthbearer.clock.skew.seconds=2"],
            start_args=["--oidc-jwks", provider.jwks_url, "--oidc-issuer", provider.url,
                        "--oidc-audience", AUDIENCE])
        self.secure = self.started["KAFKA_SASL_SSL_BOOTSTRAP"]
        self.ca = self.started["KAFKA_CA_FILE"]

    def refusals(self):
        """The broker's reasons for the tokens it refused so far (server.log, in order)."""
        with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
            return re.findall(r"^\[[^]]*\] WARN (.*)\(org\.apache\.kafka\.common\.security\.oauthbearer\.[A-Za-z.]*\)$", f.read(), re.M)


# ---- a minimal SASL/OAUTHBEARER client (Kafka protocol over TLS), to test the broker alone

def _request(sock, api_key, version, corr, body):
    client = b"oidc-probe"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    head = _read(sock, 4)
    data = _read(sock, struct.unpack(">i", head)[0])
    assert struct.unpack(">i", data[:4])[0] == corr, "correlation id mismatch"
    return data[4:]


def _read(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        out += chunk
    return out


def _authenticate(sock, corr, payload):
    """SaslAuthenticate v1: (error_code, error_message, auth_bytes)."""
    r = _request(sock, 36, 1, corr, struct.pack(">i", len(payload)) + payload)
    err, mlen = struct.unpack(">hh", r[:4])
    msg = r[4:4 + mlen].decode() if mlen >= 0 else None
    rest = r[4 + max(mlen, 0):]
    blen = struct.unpack(">i", rest[:4])[0]
    return err, msg, rest[4:4 + max(blen, 0)]


def broker_login(kafka, token):
    """(True, None) if the SASL_SSL listener accepts token (and then answers ApiVersions),
    else (False, the broker's error message)."""
    host, port = kafka.secure.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=kafka.ca)
    with socket.create_connection((host, int(port)), timeout=15) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        mech = b"OAUTHBEARER"
        r = _request(sock, 17, 1, 1, struct.pack(">h", len(mech)) + mech)  # SaslHandshake v1
        assert struct.unpack(">h", r[:2])[0] == 0, "OAUTHBEARER not enabled on the listener"
        err, msg, challenge = _authenticate(sock, 2, b"n,,\x01auth=Bearer %s\x01\x01" % token.encode())
        if err == 0 and challenge:  # RFC 7628: an error challenge; answer %x01 to end it
            err, msg, _ = _authenticate(sock, 3, b"\x01")
        if err:
            return False, msg
        r = _request(sock, 18, 0, 4, b"")  # ApiVersions v0 on the authenticated session
        assert struct.unpack(">h", r[:2])[0] == 0, "ApiVersions refused after login"
        return True, None


def jwt_parts(token):
    dec = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    head, claims, sig = token.split(".")
    return dec(head), dec(claims), sig


def b64url_json(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def check_broker_validates(provider, kafka, secret):
    status, body = provider.fetch(CLIENT_ID, secret, scope="kafka")
    assert status == 200, (status, body)
    token = body["access_token"]
    head, claims, sig = jwt_parts(token)
    assert head["alg"] == "RS256" and claims["sub"] == CLIENT_ID and claims["aud"] == AUDIENCE, (head, claims)
    ok, why = broker_login(kafka, token)
    assert ok, "the broker refused a token from the provider: %s" % why

    forged = ".".join([token.split(".")[0], b64url_json(dict(claims, sub="admin")), sig])
    unsigned = ".".join([b64url_json({"alg": "none"}), token.split(".")[1], ""])
    status, other = provider.fetch(CLIENT_ID, secret, audience="not-kafka")
    assert status == 200 and jwt_parts(other["access_token"])[1]["aud"] == "not-kafka", other
    for name, bad, because in (("a changed claim", forged, "invalid signature"),
                               ("alg none and no signature (librdkafka's unsecured JWT)", unsigned,
                                "Malformed JWT"),
                               ("another audience", other["access_token"], '"aud":"not-kafka"')):
        seen = len(kafka.refusals())
        ok, why = broker_login(kafka, bad)
        assert not ok, "the broker accepted a token with %s" % name
        reason = h.wait_until(lambda: kafka.refusals()[seen:], 10, "the broker to log why")[0]
        assert because in reason, "refused for another reason than %r: %s" % (because, reason)
        h.log("broker refuses a token with %s: %s; server.log: %s..." % (name, why, reason[:110]))

    status, body = provider.fetch(CLIENT_ID, "wrong-" + secrets.token_hex(4))
    assert status == 401 and body["error"] == "invalid_client", (status, body)
    h.log("broker accepts the provider's token (sub %s, aud %s, %d s); provider refuses a wrong secret (401)"
          % (claims["sub"], claims["aud"], claims["exp"] - claims["iat"]))


# ---- the worker

BASE_PROPS = (("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"),
              ("security.protocol", "SASL_SSL"))


def topics_env(tag):
    return {"DELIVERY_WORKER_KAFKA_INPUT_TOPIC": "oidc.%s.in" % tag,
            "DELIVERY_WORKER_KAFKA_RESULTS_TOPIC": "oidc.%s.out" % tag,
            "DELIVERY_WORKER_KAFKA_DLQ_TOPIC": "oidc.%s.dlq" % tag}


def oidc_props(kafka, provider):
    return BASE_PROPS + (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "OAUTHBEARER"),
                         ("sasl.oauthbearer.method", "oidc"),
                         ("sasl.oauthbearer.client.id", CLIENT_ID),
                         ("sasl.oauthbearer.token.endpoint.url", provider.token_url),
                         ("sasl.oauthbearer.scope", "kafka"))


def log_msgs(w):
    """The msg of every JSON line of the worker's log."""
    out = []
    for line in w.log_text().splitlines():
        try:
            out.append(json.loads(line)["msg"])
        except (ValueError, KeyError, TypeError):
            pass
    return out


def first_msg(w, needle):
    return next((m for m in log_msgs(w) if needle in m), None)


def assert_no_secret(where, text, needles):
    for n in needles:
        assert n not in text, "a secret (%s...) shows in %s" % (n[:3], where)


def worker(procs, kafka, sim, tag, props, env, group=None, name=None):
    return h.Worker(procs, kafka.secure, sim.url, group=group or "oidc-" + tag, app=APP,
                    secret=APP_SECRET, properties=props, env=dict(env, **topics_env(tag)),
                    name=name or "w-" + tag)


def produce_batch(kafka, sim, tag, prefix):
    specs, records, expect = scenario.build(prefix, 4, never=False)
    sim.register(specs)
    h.produce(kafka.bootstrap, topics_env(tag)["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"], records)
    return records, expect


def wait_resolved(kafka, tag, group, n, what):
    t = topics_env(tag)
    out_t, dlq_t = t["DELIVERY_WORKER_KAFKA_RESULTS_TOPIC"], t["DELIVERY_WORKER_KAFKA_DLQ_TOPIC"]
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, out_t)) + len(h.dump(kafka.bootstrap, dlq_t)) >= n,
                 90, "%s: every output" % what)
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, group, t["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"]),
                 30, "%s: every input offset committed" % what)
    return h.dump(kafka.bootstrap, out_t), h.dump(kafka.bootstrap, dlq_t)


def committed_now(kafka, group, topic):
    """The group's committed offsets, or None while the coordinator is not ready (a new
    group on a new broker)."""
    try:
        return h.committed(kafka.bootstrap, group, topic)
    except AssertionError as e:
        if "coordinator" in str(e).lower():
            return None
        raise


def check_unsecured_refused(procs, kafka, sim, needles):
    """librdkafka's own unsigned token (what test_security_broker uses) against real
    validation: refused, with the reason in the worker's log."""
    tag = "unsecured"
    w = worker(procs, kafka, sim, tag,
               BASE_PROPS + (("ssl.ca.location", kafka.ca), ("sasl.mechanism", "OAUTHBEARER"),
                             ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
                             ("sasl.oauthbearer.config", "principal=%s" % CLIENT_ID)), {})
    w.start()
    m = h.wait_until(lambda: first_msg(w, "SASL authentication error"), 60,
                     "an authentication error for the unsigned token")
    status, body = w.admin("/readyz")
    assert status != 200, "ready although the broker refuses its token: %s" % body
    assert w.stop() == 0
    assert "assigned" not in w.log_text()
    assert_no_secret("the worker's log", w.log_text(), needles)
    h.log("unsecured JWT against real validation, the worker logs: %s" % m[:300])


def check_oidc_worker(procs, kafka, sim, provider, secret, needles, reauth, own):
    tag = "oidc"
    group = "oidc-" + tag
    env = {"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.oauthbearer.client.secret=" + secret}
    # A wrong secret first: refused by the provider, reported, nothing lost or dead-lettered.
    wrong = "wrong-" + secrets.token_hex(8)
    for t in topics_env(tag).values():
        h.kafkatool("create-topic", "-b", kafka.bootstrap, t, "2")
    bad = worker(procs, kafka, sim, tag, oidc_props(kafka, provider),
                 {"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.oauthbearer.client.secret=" + wrong,
                  "DELIVERY_WORKER_POLL_DEADLINE_MS": "600000"}, group=group, name="w-badsecret")
    bad.start()
    bad.proc.stopping = True  # may exit by itself; the log is what counts
    refused0 = provider.stats()["refused"]
    records, expect = produce_batch(kafka, sim, tag, "oidc-a")
    m = h.wait_until(lambda: first_msg(bad, "Failed to acquire SASL OAUTHBEARER token"),
                     60, "the worker to report the refused client secret")
    h.wait_until(lambda: provider.stats()["refused"] > refused0, 10, "the provider's 401")
    if bad.proc.poll() is None:
        status, body = bad.admin("/readyz")
        assert status != 200, "ready without a token: %s" % body
        assert_no_secret("/metrics", bad.admin("/metrics")[1], needles + [wrong])
        bad.stop()
    t = topics_env(tag)
    assert not h.dump(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_RESULTS_TOPIC"])
    assert not h.dump(kafka.bootstrap, t["DELIVERY_WORKER_KAFKA_DLQ_TOPIC"]), "dead-lettered without a token"
    committed = h.wait_until(lambda: committed_now(kafka, group, t["DELIVERY_WORKER_KAFKA_INPUT_TOPIC"]),
                             30, "the group's committed offsets")
    assert not [c for c in committed if c["offset"] >= 0], "offsets committed without a token"
    assert_no_secret("the worker's log", bad.log_text(), needles + [wrong])
    h.log("wrong client secret, the worker logs: %s" % m[:400])
    why = first_msg(bad, "OAUTHBEARER: cannot get a token" if own else "Failed to retrieve OIDC token")
    assert why and "401" in why, "no line with the provider's 401: %s" % why
    h.log("  and: %s" % why[:400])

    # The right secret, same group: everything resolves, tokens are refreshed while it works.
    w = worker(procs, kafka, sim, tag, oidc_props(kafka, provider), env, group=group)
    rc, out = h.check_config(w.conf, dict(w.env, DELIVERY_WORKER_KAFKA_PROPERTIES="linger.ms=5"))
    assert rc == 1 and "sasl.oauthbearer.client.secret" in out, (rc, out)
    h.log("check-config without the client secret exits %d: %s" % (rc, out.strip()[:300]))
    rc, out = h.check_config(w.conf, w.env)
    assert rc == 0, out
    assert "<redacted>" in out, out
    assert_no_secret("check-config output", out, needles)
    issued0 = provider.stats()["issued"]
    t0 = time.monotonic()
    w.start()
    h.wait_until(lambda: re.search(r"assigned \d+ partition", w.log_text()), 60,
                 "the worker to join its group with an OIDC token")
    joined = time.monotonic() - t0
    results, dead = wait_resolved(kafka, tag, group, len(records), "first batch")
    scenario.check(results, dead, records, expect, sim.requests())
    first = provider.stats()
    assert first["issued"] > issued0, "the worker authenticated without a token from the provider"
    assert all(tok["auth"] == "basic" for tok in first["tokens"]), first["tokens"]
    # Each librdkafka handle (consumer, producer) fetches its own token at start; a refresh is
    # a token issued well after those (librdkafka refreshes at 80% of the lifetime). Past the
    # first tokens' expiry the broker has ended every session that used them: a second batch
    # that still resolves went through sessions opened with refreshed tokens.
    start_iat = provider.stats()["tokens"][issued0]["iat"]
    h.wait_until(lambda: max(tok["iat"] for tok in provider.stats()["tokens"]) >= start_iat + LIFETIME_S // 2,
                 3 * LIFETIME_S, "librdkafka to refresh its token")
    expiry = max(tok["exp"] for tok in provider.stats()["tokens"][issued0:]
                 if tok["iat"] < start_iat + LIFETIME_S // 2)
    h.wait_until(lambda: time.time() > expiry + 3, 2 * LIFETIME_S, "the first tokens to expire")
    # librdkafka before 2.2.0 cannot re-authenticate a connection (KIP-368): the broker closes
    # it at the token's expiry and librdkafka connects again, with the current token.
    dropped = None
    if not reauth:
        dropped = h.wait_until(lambda: first_msg(w, "Disconnected (after"), 30,
                               "the broker to end a session at its token's expiry")
    records2, expect2 = produce_batch(kafka, sim, tag, "oidc-b")
    results, dead = wait_resolved(kafka, tag, group, len(records) + len(records2), "second batch")
    both = dict(expect, **expect2)
    scenario.check(results, dead, records + records2, both, sim.requests())
    if own:
        got = first_msg(w, "OAUTHBEARER token for %s" % CLIENT_ID)
        assert got, "the worker did not say it obtained a token"
        h.log("the worker's own OIDC: %s" % got)
    metrics = w.admin("/metrics")[1]
    assert_no_secret("/metrics", metrics, needles)
    assert w.stop() == 0
    elapsed = time.monotonic() - t0
    assert_no_secret("the worker's log", w.log_text(), needles)
    stats = provider.stats()
    issued = stats["issued"] - issued0
    iats = [tok["iat"] - start_iat for tok in stats["tokens"][issued0:]]
    assert issued >= 3, iats
    h.log("OIDC worker: joined in %.1f s; %d + %d records resolved, offsets committed; %d tokens "
          "of %d s in %.0f s (issued at +%s s), the first ones expired before the second batch; "
          "no secret shown" % (joined, len(records), len(records2), issued, LIFETIME_S, elapsed, iats))
    if dropped:
        h.log("  session ended at token expiry, the worker logs: %s" % dropped[:200])


@pytest.fixture(scope="module")
def features():
    version, version_int, features = rdkafka_features()
    h.log("librdkafka %s, builtin.features %s" % (version, ",".join(features)))
    return version_int, features


@pytest.fixture(scope="module")
def secret():
    return "oidc-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def provider(module_procs, secret):
    return Provider(module_procs, secret, LIFETIME_S)


@pytest.fixture(scope="module")
def kafka(module_procs, provider):
    kafka = OidcKafka(module_procs, provider)
    yield kafka
    kafka.stop()


@pytest.fixture(scope="module")
def sim(module_procs, kafka, provider):
    h.wait_until(lambda: provider.stats()["jwks_fetches"] >= 1, 10, "the broker to fetch the JWKS")
    return h.Sim(module_procs, "--app", "%s:%s" % (APP, APP_SECRET))


def test_broker_validates_tokens(provider, kafka, sim, secret):
    check_broker_validates(provider, kafka, secret)


def test_unsecured_token_is_refused(procs, kafka, sim, secret):
    check_unsecured_refused(procs, kafka, sim, [secret, APP_SECRET])


def test_oidc_worker_resolves_and_reauthenticates(procs, kafka, sim, provider, secret, features):
    version_int, feats = features
    check_oidc_worker(procs, kafka, sim, provider, secret, [secret, APP_SECRET],
                      reauth=version_int >= 0x020200ff, own="oidc" not in feats)
