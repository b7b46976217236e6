"""The command line a user meets first: version, check-config (effective config with secrets
redacted; errors as file:line), env overrides, and run refusing a bad config."""
import os
import re
import subprocess
import tempfile

import pytest

import harness as h

BINARY = os.path.join(h.BIN, "delivery-worker")


def run(args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_WORKER_")}
    e.update(env or {})
    return subprocess.run([BINARY] + args, capture_output=True, text=True, env=e, timeout=30)


def write(text):
    fd, path = tempfile.mkstemp(suffix=".conf")
    os.write(fd, text.encode())
    os.close(fd)
    return path


GOOD = ('kafka = { brokers = "k1:9092,k2:9092"; };\n'
        'feishu = { app_id = "cli_a"; app_secret = "s3cr3t-value"; };\n')
NOSECRET = 'feishu = { app_id = "a"; };\n'


@pytest.fixture(scope="module")
def good():
    return write(GOOD)


def test_version():
    r = run(["version"])
    assert r.returncode == 0 and r.stdout.startswith("delivery-worker "), r


def test_check_config_prints_a_valid_config_with_secrets_redacted(good):
    r = run(["check-config", "-c", good])
    assert r.returncode == 0, r.stderr
    assert "s3cr3t-value" not in r.stdout + r.stderr, "secret printed"
    assert "<redacted>" in r.stdout and '"k1:9092,k2:9092"' in r.stdout, r.stdout
    assert 'input_topic = "hire.delivery_tasks.created"' in r.stdout, r.stdout
    # The printed config is itself a valid config (the secret comes from the environment).
    again = write(r.stdout.replace('"<redacted>"', '""'))
    r2 = run(["check-config", "-c", again], env={"DELIVERY_WORKER_FEISHU_APP_SECRET": "x"})
    assert r2.returncode == 0, r2.stderr


def test_environment_overrides_the_file(good):
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_GROUP_ID": "from-env",
                                               "DELIVERY_WORKER_POLL_FIRST_DELAY_MS": "1234"})
    assert r.returncode == 0 and '"from-env"' in r.stdout and "1234" in r.stdout, r


def test_config_errors_name_file_and_line():
    bad = write('kafka = {\n  brokers = "x";\n  broker = "typo";\n};\nfeishu = { app_id = "a"; app_secret = "b"; };\n')
    r = run(["check-config", "-c", bad])
    assert r.returncode != 0 and r.stderr.startswith(bad + ":3:"), r.stderr
    assert "kafka.broker" in r.stderr, r.stderr

    badtype = write('feishu = { app_id = "a"; app_secret = "b"; };\npoll = { jitter = "lots"; };\n')
    r = run(["check-config", "-c", badtype])
    assert r.returncode != 0 and r.stderr.startswith(badtype + ":2:"), r.stderr

    syntax = write('kafka = { brokers = ; };\n')
    r = run(["check-config", "-c", syntax])
    assert r.returncode != 0 and r.stderr.startswith(syntax + ":1"), r.stderr


def test_run_refuses_a_config_without_app_secret():
    nosecret = write(NOSECRET)
    r = run(["run", "-c", nosecret])
    assert r.returncode != 0 and "app_secret" in r.stderr, r.stderr


def test_unknown_environment_variable_is_refused(good):
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_BROKRES": "x"})
    assert r.returncode != 0 and "DELIVERY_WORKER_KAFKA_BROKRES" in r.stderr, r.stderr


def test_kafka_property_secrets_are_redacted_and_ca_file_checked(good):
    # Secrets of kafka.properties (file or environment) are redacted like the app secret;
    # feishu.ca_file is checked at once (a bad path would otherwise fail every API call).
    sasl = write('kafka = { properties = ( ("security.protocol", "SASL_SSL"), '
                 '("sasl.mechanism", "SCRAM-SHA-512"), ("sasl.username", "dw"), '
                 '("ssl.key.password", "k3y-pass") ); };\n'
                 'feishu = { app_id = "cli_a"; app_secret_file = "%s"; };\n' % write("file-s3cret\n"))
    r = run(["check-config", "-c", sasl], env={"DELIVERY_WORKER_KAFKA_PROPERTIES":
                                               "sasl.password=env-pa55,sasl.oauthbearer.config=principal=x"})
    assert r.returncode == 0, r.stderr
    for s in ("k3y-pass", "env-pa55", "principal=x", "file-s3cret"):
        assert s not in r.stdout + r.stderr, "secret printed: " + s
    assert r.stdout.count("<redacted>") == 3 and '"SCRAM-SHA-512"' in r.stdout, r.stdout
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_FEISHU_CA_FILE": "/nonexistent/ca.pem"})
    assert r.returncode != 0 and "DELIVERY_WORKER_FEISHU_CA_FILE: cannot open" in r.stderr, r.stderr
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_FEISHU_CA_FILE": good})
    assert r.returncode != 0 and "holds no PEM certificate" in r.stderr, r.stderr


def test_kafka_properties_are_checked_by_librdkafka(good):
    # kafka.properties go through librdkafka as `run` would give them: a misspelt name or a
    # bad value fails here, not at startup.
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "linger.msec=5"})
    assert r.returncode == 1 and "kafka.properties: linger.msec: No such configuration property" \
        in r.stderr, r.stderr
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "acks=maybe"})
    assert r.returncode == 1 and "kafka.properties: acks" in r.stderr, r.stderr


OIDC = ("sasl.mechanism=OAUTHBEARER,sasl.oauthbearer.method=oidc,sasl.oauthbearer.client.id=dw,"
        "sasl.oauthbearer.client.secret=0idc-s3cret,")


def test_oidc_without_token_endpoint_is_refused(good):
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES":
                                               "sasl.mechanism=OAUTHBEARER,sasl.oauthbearer.method=oidc,"
                                               "sasl.oauthbearer.client.id=dw,"
                                               "sasl.oauthbearer.client.secret=0idc-s3cret"})
    assert r.returncode == 1 and "needs sasl.oauthbearer.token.endpoint.url" in r.stderr, r.stderr
    assert "0idc-s3cret" not in r.stdout + r.stderr


@pytest.mark.parametrize("extra, says", [
    ("sasl.oauthbearer.token.endpoint.url=https://dw:pw@idp/token", "no user or password in the URL"),
    ("sasl.oauthbearer.token.endpoint.url=ftp://idp/token", "want an http://"),
    ("sasl.oauthbearer.token.endpoint.url=https://idp/token,"
     "sasl.oauthbearer.extensions=auth=x", "keys of letters only"),
    ("sasl.oauthbearer.token.endpoint.url=https://idp/token,"
     "sasl.oauthbearer.extensions=tenant1=x", "keys of letters only"),
], ids=["url-credentials", "url-scheme", "extension-auth", "extension-digit"])
def test_bad_oidc_settings_are_refused_without_the_secret(good, extra, says):
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": OIDC + extra})
    assert r.returncode == 1 and says in r.stderr, (extra, r.stderr)
    assert "0idc-s3cret" not in r.stdout + r.stderr and ":pw@" not in r.stderr, r.stderr


def test_good_oidc_settings_are_accepted(good):
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": OIDC +
                                               "sasl.oauthbearer.token.endpoint.url=https://idp/token,"
                                               "sasl.oauthbearer.extensions=tenant=acme"})
    assert r.returncode == 0 and "0idc-s3cret" not in r.stdout, r.stderr


# Properties that would lose or duplicate tasks are refused by check-config and by run,
# naming the property and the key that does its job.
@pytest.mark.parametrize("cmd", ["check-config", "run"])
@pytest.mark.parametrize("env, says", [
    ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "enable.auto.commit=true,enable.auto.offset.store=true"},
     "enable.auto.commit = \"true\""),
    ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "acks=0"}, "acks = all"),
    ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "transactional.id=x"}, "kafka.transactional_id"),
    ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "isolation.level=read_uncommitted",
      "DELIVERY_WORKER_PROCESSING_GUARANTEE": "exactly_once"}, "processing.guarantee"),
    ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "enable.ssl.certificate.verification=false"},
     "kafka.allow_insecure_tls"),
], ids=["auto-commit", "acks", "transactional-id", "isolation-level", "tls-verification"])
def test_unsafe_kafka_properties_are_refused(good, env, says, cmd):
    r = run([cmd, "-c", good], env=env)
    assert r.returncode == 1 and "DELIVERY_WORKER_KAFKA_PROPERTIES: sets" in r.stderr \
        and says in r.stderr, (cmd, env, r.stderr)


def test_allowed_insecure_tls_is_printed_and_logged(good, start_worker):
    # A TLS weakening allowed by kafka.allow_insecure_tls is printed, and logged at start.
    insecure = {"DELIVERY_WORKER_KAFKA_ALLOW_INSECURE_TLS": "true",
                "DELIVERY_WORKER_KAFKA_PROPERTIES": "ssl.endpoint.identification.algorithm=none"}
    r = run(["check-config", "-c", good], env=insecure)
    assert r.returncode == 0 and "allow_insecure_tls = true;" in r.stdout, r.stderr
    worker = start_worker("127.0.0.1:1", "http://127.0.0.1:1", env=insecure)
    h.wait_until(lambda: "kafka.allow_insecure_tls: the brokers' TLS is not fully verified "
                 "(ssl.endpoint.identification.algorithm=none)" in worker.log_text(), 30,
                 "the warning at start")
    worker.stop()


# feishu.base_url is a URL as libcurl reads it; its credentials are never repeated.
@pytest.mark.parametrize("cmd", ["check-config", "run"])
@pytest.mark.parametrize("url, says", [
    ("https://dw:pa55word@open.feishu.cn", "must not hold a user name or password"),
    ("http://[::1:8080", "closed brackets"),
    ("https://open.feishu.cn/?x=1", "must not have a query"),
], ids=["credentials", "brackets", "query"])
def test_bad_base_url_is_refused_without_its_password(good, url, says, cmd):
    r = run([cmd, "-c", good], env={"DELIVERY_WORKER_FEISHU_BASE_URL": url})
    assert r.returncode == 1 and says in r.stderr, (cmd, url, r.stderr)
    assert "pa55word" not in r.stdout + r.stderr, r.stderr


def test_config_files_must_be_regular_files(procs):
    # Files the config reads must be regular files: a FIFO is refused at once, not waited on;
    # a /proc file (which reports size 0) is read to its end.
    nosecret = write(NOSECRET)
    fifo = os.path.join(procs.tmp, "secret.fifo")
    os.mkfifo(fifo)
    nosecret_env = {"DELIVERY_WORKER_FEISHU_APP_SECRET_FILE": fifo}
    for cmd in ("check-config", "run"):
        r = run([cmd, "-c", nosecret], env=nosecret_env)
        assert r.returncode == 1 and "is a FIFO (named pipe), not a regular file" in r.stderr, r.stderr
    r = run(["check-config", "-c", nosecret],
            env={"DELIVERY_WORKER_FEISHU_APP_SECRET_FILE": "/proc/self/comm"})
    assert r.returncode == 0, r.stderr


def test_unknown_command_prints_usage():
    r = run(["frobnicate"])
    assert r.returncode != 0 and "usage" in r.stderr, r


@pytest.mark.parametrize("cmd", ["run", "check-config", "preflight", "config-reference",
                                 "version", "replay", "redrive"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(cmd, flag):
    r = run([cmd, flag])
    assert r.returncode == 0 and r.stdout.startswith("usage: delivery-worker %s" % cmd), r
    assert r.stderr == "", r.stderr


def test_version_names_commit_and_libraries():
    r = run(["version"])
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert re.match(r"delivery-worker \d+\.\d+\.\d+ \(commit \S+\)$", lines[0]), r.stdout
    assert re.match(r"librdkafka \d+\.\d+\.\d+ \(builtin\.features: .*sasl_scram.*\)$",
                    lines[1]), r.stdout
    assert lines[2].startswith("libcurl/"), r.stdout


def test_command_line_overrides_file_and_environment(good):
    r = run(["check-config", "-c", good, "--set", "kafka.group_id=from-set",
             "--set", "poll.first_delay_ms=77", "-X", "linger.ms=9", "-Xclient.id=x"],
            env={"DELIVERY_WORKER_KAFKA_GROUP_ID": "from-env",
                 "DELIVERY_WORKER_KAFKA_PROPERTIES": "linger.ms=1"})
    assert r.returncode == 0, r.stderr
    assert 'group_id = "from-set"' in r.stdout and "first_delay_ms = 77;" in r.stdout, r.stdout
    assert '("linger.ms", "9")' in r.stdout and '("client.id", "x")' in r.stdout, r.stdout
    r = run(["check-config", "-c", good, "--set", "poll.jitter=lots"])
    assert r.returncode == 1 and r.stderr.startswith(
        'command line: --set poll.jitter: must be between 0 and 1, got "lots"'), r.stderr
    r = run(["check-config", "-c", good, "-X", "enable.auto.commit=true"])
    assert r.returncode == 1 and r.stderr.startswith(
        "command line: -X: sets enable.auto.commit"), r.stderr
    r = run(["check-config", "-c", good, "-X", "linger.msec=3"])
    assert r.returncode == 1 and \
        "command line: -X: linger.msec: No such configuration property" in r.stderr, r.stderr
    r = run(["check-config", "-c", good, "--set"])
    assert r.returncode == 2 and "unexpected argument" in r.stderr, r.stderr


def test_properties_file(good):
    props = write("# as kcat -F reads it\nsocket.timeout.ms = 12000\n"
                  "fetch.wait.max.ms: 100\nclient.id=from-file\n")
    r = run(["check-config", "-c", good, "--set", "kafka.properties_file=" + props])
    assert r.returncode == 0, r.stderr
    assert '("socket.timeout.ms", "12000")' in r.stdout, r.stdout
    bad = write("socket.timeout.ms = 12000\n\nacks=0\n")
    r = run(["check-config", "-c", good, "--set", "kafka.properties_file=" + bad])
    assert r.returncode == 1 and r.stderr.startswith(
        bad + ':3: (kafka.properties_file) sets acks = "0"'), r.stderr
    syntax = write("a=1\nno separator here\n")
    r = run(["check-config", "-c", good],
            env={"DELIVERY_WORKER_KAFKA_PROPERTIES_FILE": syntax})
    assert r.returncode == 1 and r.stderr.startswith(syntax + ":2: expected name=value"), \
        r.stderr


def test_production_example_passes_check_config():
    secret = write("the-secret\n")
    example = os.path.join(h.SRC, "examples", "production.conf")
    r = run(["check-config", "-c", example, "--set", "feishu.app_secret_file=" + secret])
    assert r.returncode == 0, r.stderr
    assert 'app_id = "cli_a1b2c3d4e5f6a7b8"' in r.stdout, r.stdout
    r = run(["check-config", "-c", example, "--set", "feishu.app_secret_file=" + secret,
             "--set", "kafka.properties_file=" +
             os.path.join(h.SRC, "examples", "client.properties")])
    assert r.returncode == 0, r.stderr
    assert '("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt")' in r.stdout, r.stdout


@pytest.mark.parametrize("cmd", [["replay", "--from-offset", "0"], ["redrive", "--dry-run"]])
def test_offline_commands_take_overrides(good, cmd):
    r = run([cmd[0], "-c", good] + cmd[1:] + ["-X", "enable.auto.commit=true"])
    assert r.returncode == 1 and "command line: -X: sets enable.auto.commit" in r.stderr, r.stderr
    r = run([cmd[0], "-c", good] + cmd[1:] + ["--set", "kafka.brokerz=x"])
    assert r.returncode == 1 and 'command line: --set: unknown key "kafka.brokerz"' in r.stderr, \
        r.stderr
