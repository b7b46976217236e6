"""A worker with no config file, as the image runs it: `run` without -c takes the defaults and
DELIVERY_WORKER_* variables alone, resolves tasks, and `delivery-worker healthcheck` (the
image's HEALTHCHECK) finds it healthy at the address those variables give, and unhealthy once
it has stopped. Without the app id it does not start, and says which variable to set."""
import os
import subprocess

import harness as h

BINARY = os.path.join(h.BIN, "delivery-worker")
TASKS = 5


def clean_env(extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("DELIVERY_WORKER_")}
    e.update(extra)
    return e


def healthcheck(env, *args):
    return subprocess.run([BINARY, "healthcheck"] + list(args), capture_output=True, text=True,
                          env=clean_env(env), timeout=30)


def test_run_from_variables_alone(procs, start_mock_kafka, start_sim):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    tasks = ["env-%02d" % i for i in range(TASKS)]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "ready_after_ms": 0}
                  for t in tasks])
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in tasks])
    port = h.free_port()
    env = {
        "DELIVERY_WORKER_KAFKA_BROKERS": kafka.bootstrap,
        "DELIVERY_WORKER_KAFKA_GROUP_ID": "it-env-only",
        "DELIVERY_WORKER_KAFKA_PROPERTIES": "session.timeout.ms=6000,heartbeat.interval.ms=500",
        "DELIVERY_WORKER_KAFKA_COMMIT_INTERVAL_MS": "200",
        "DELIVERY_WORKER_FEISHU_BASE_URL": sim.url,
        "DELIVERY_WORKER_FEISHU_APP_ID": "cli_test",
        "DELIVERY_WORKER_FEISHU_APP_SECRET": "secret",
        "DELIVERY_WORKER_POLL_FIRST_DELAY_MS": "100",
        "DELIVERY_WORKER_ADMIN_LISTEN": "127.0.0.1:%d" % port,
    }
    # Without the app id: no start, and the variable to set is named.
    no_id = {k: v for k, v in env.items() if k != "DELIVERY_WORKER_FEISHU_APP_ID"}
    r = subprocess.run([BINARY, "run"], capture_output=True, text=True, env=clean_env(no_id),
                       timeout=30)
    assert r.returncode == 1 and "DELIVERY_WORKER_FEISHU_APP_ID" in r.stderr, r

    p = procs.start([BINARY, "run"], "worker", env=clean_env(env))
    h.wait_until(lambda: healthcheck(env).returncode == 0, 30, "healthcheck passes")
    r = healthcheck(env)
    assert r.stdout.strip() == "healthy: http://127.0.0.1:%d/healthz answered 200" % port, r
    # The address given explicitly, as a wildcard listen address: asked on loopback.
    assert healthcheck({}, "--address", "0.0.0.0:%d" % port).returncode == 0
    outputs = lambda: len(h.dump(kafka.bootstrap, h.OUT)) + len(h.dump(kafka.bootstrap, h.DLQ))
    h.wait_until(lambda: outputs() >= TASKS, 60, "every task resolved")
    assert len(h.dump(kafka.bootstrap, h.OUT)) == TASKS

    p.stopping = True
    p.terminate()
    assert p.wait(timeout=60 * h.SLOW) == 0
    r = healthcheck(env)
    assert r.returncode == 1 and r.stdout.startswith("unhealthy: "), r
