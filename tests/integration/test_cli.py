"""The command line a user meets first: version, check-config (effective config with secrets
redacted; errors as file:line), env overrides, and run refusing a bad config."""
import os
import subprocess
import tempfile

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


def main(procs):
    r = run(["version"])
    assert r.returncode == 0 and r.stdout.startswith("delivery-worker "), r

    good = write('kafka = { brokers = "k1:9092,k2:9092"; };\n'
                 'feishu = { app_id = "cli_a"; app_secret = "s3cr3t-value"; };\n')
    r = run(["check-config", "-c", good])
    assert r.returncode == 0, r.stderr
    assert "s3cr3t-value" not in r.stdout + r.stderr, "secret printed"
    assert "<redacted>" in r.stdout and '"k1:9092,k2:9092"' in r.stdout, r.stdout
    assert 'input_topic = "hire.delivery_tasks.created"' in r.stdout, r.stdout
    # The printed config is itself a valid config (the secret comes from the environment).
    again = write(r.stdout.replace('"<redacted>"', '""'))
    r2 = run(["check-config", "-c", again], env={"DELIVERY_WORKER_FEISHU_APP_SECRET": "x"})
    assert r2.returncode == 0, r2.stderr

    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_GROUP_ID": "from-env",
                                               "DELIVERY_WORKER_POLL_FIRST_DELAY_MS": "1234"})
    assert r.returncode == 0 and '"from-env"' in r.stdout and "1234" in r.stdout, r

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

    nosecret = write('feishu = { app_id = "a"; };\n')
    r = run(["run", "-c", nosecret])
    assert r.returncode != 0 and "app_secret" in r.stderr, r.stderr

    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_BROKRES": "x"})
    assert r.returncode != 0 and "DELIVERY_WORKER_KAFKA_BROKRES" in r.stderr, r.stderr

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

    # kafka.properties go through librdkafka as `run` would give them: a misspelt name or a
    # bad value fails here, not at startup.
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "linger.msec=5"})
    assert r.returncode == 1 and "kafka.properties: linger.msec: No such configuration property" \
        in r.stderr, r.stderr
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "acks=maybe"})
    assert r.returncode == 1 and "kafka.properties: acks" in r.stderr, r.stderr
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES":
                                               "sasl.mechanism=OAUTHBEARER,sasl.oauthbearer.method=oidc,"
                                               "sasl.oauthbearer.client.id=dw,"
                                               "sasl.oauthbearer.client.secret=0idc-s3cret"})
    assert r.returncode == 1 and "needs sasl.oauthbearer.token.endpoint.url" in r.stderr, r.stderr
    assert "0idc-s3cret" not in r.stdout + r.stderr
    oidc = ("sasl.mechanism=OAUTHBEARER,sasl.oauthbearer.method=oidc,sasl.oauthbearer.client.id=dw,"
            "sasl.oauthbearer.client.secret=0idc-s3cret,")
    for extra, says in (("sasl.oauthbearer.token.endpoint.url=https://dw:pw@idp/token",
                         "no user or password in the URL"),
                        ("sasl.oauthbearer.token.endpoint.url=ftp://idp/token", "want an http://"),
                        ("sasl.oauthbearer.token.endpoint.url=https://idp/token,"
                         "sasl.oauthbearer.extensions=auth=x", "keys of letters only"),
                        ("sasl.oauthbearer.token.endpoint.url=https://idp/token,"
                         "sasl.oauthbearer.extensions=tenant1=x", "keys of letters only")):
        r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": oidc + extra})
        assert r.returncode == 1 and says in r.stderr, (extra, r.stderr)
        assert "0idc-s3cret" not in r.stdout + r.stderr and ":pw@" not in r.stderr, r.stderr
    r = run(["check-config", "-c", good], env={"DELIVERY_WORKER_KAFKA_PROPERTIES": oidc +
                                               "sasl.oauthbearer.token.endpoint.url=https://idp/token,"
                                               "sasl.oauthbearer.extensions=tenant=acme"})
    assert r.returncode == 0 and "0idc-s3cret" not in r.stdout, r.stderr

    # Properties that would lose or duplicate tasks are refused by check-config and by run,
    # naming the property and the key that does its job.
    for env, says in (({"DELIVERY_WORKER_KAFKA_PROPERTIES":
                        "enable.auto.commit=true,enable.auto.offset.store=true"},
                       "enable.auto.commit = \"true\""),
                      ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "acks=0"}, "acks = all"),
                      ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "transactional.id=x"},
                       "kafka.transactional_id"),
                      ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "isolation.level=read_uncommitted",
                        "DELIVERY_WORKER_PROCESSING_GUARANTEE": "exactly_once"},
                       "processing.guarantee"),
                      ({"DELIVERY_WORKER_KAFKA_PROPERTIES": "enable.ssl.certificate.verification=false"},
                       "kafka.allow_insecure_tls")):
        for cmd in ("check-config", "run"):
            r = run([cmd, "-c", good], env=env)
            assert r.returncode == 1 and "DELIVERY_WORKER_KAFKA_PROPERTIES: sets" in r.stderr \
                and says in r.stderr, (cmd, env, r.stderr)
    # A TLS weakening allowed by kafka.allow_insecure_tls is printed, and logged at start.
    insecure = {"DELIVERY_WORKER_KAFKA_ALLOW_INSECURE_TLS": "true",
                "DELIVERY_WORKER_KAFKA_PROPERTIES": "ssl.endpoint.identification.algorithm=none"}
    r = run(["check-config", "-c", good], env=insecure)
    assert r.returncode == 0 and "allow_insecure_tls = true;" in r.stdout, r.stderr
    worker = h.Worker(procs, "127.0.0.1:1", "http://127.0.0.1:1", env=insecure).start()
    h.wait_until(lambda: "kafka.allow_insecure_tls: the brokers' TLS is not fully verified "
                 "(ssl.endpoint.identification.algorithm=none)" in worker.log_text(), 30,
                 "the warning at start")
    worker.stop()

    # feishu.base_url is a URL as libcurl reads it; its credentials are never repeated.
    for url, says in (("https://dw:pa55word@open.feishu.cn", "must not hold a user name or password"),
                      ("http://[::1:8080", "closed brackets"),
                      ("https://open.feishu.cn/?x=1", "must not have a query")):
        for cmd in ("check-config", "run"):
            r = run([cmd, "-c", good], env={"DELIVERY_WORKER_FEISHU_BASE_URL": url})
            assert r.returncode == 1 and says in r.stderr, (cmd, url, r.stderr)
            assert "pa55word" not in r.stdout + r.stderr, r.stderr

    # Files the config reads must be regular files: a FIFO is refused at once, not waited on;
    # a /proc file (which reports size 0) is read to its end.
    fifo = os.path.join(procs.tmp, "secret.fifo")
    os.mkfifo(fifo)
    nosecret_env = {"DELIVERY_WORKER_FEISHU_APP_SECRET_FILE": fifo}
    for cmd in ("check-config", "run"):
        r = run([cmd, "-c", nosecret], env=nosecret_env)
        assert r.returncode == 1 and "is a FIFO (named pipe), not a regular file" in r.stderr, r.stderr
    r = run(["check-config", "-c", nosecret],
            env={"DELIVERY_WORKER_FEISHU_APP_SECRET_FILE": "/proc/self/comm"})
    assert r.returncode == 0, r.stderr

    r = run(["frobnicate"])
    assert r.returncode != 0 and "usage" in r.stderr, r


h.run(main)
