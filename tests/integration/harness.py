"""Test harness for the integration tests, the docs check (tests/deploy/docs.py), the chaos test
and the benchmark (bench/bench.py): starts the real binaries (delivery-worker, the API simulator
dw-sim, the Kafka tool dw-kafkatool with its mock cluster) and a real Kafka broker
(tests/kafka/kafka.sh), and reads back from outside what a user would see: the topics, the
group's committed offsets and what the simulator recorded. Every wait is for a condition with a
deadline. The pytest fixtures over it are in conftest.py."""
import base64
import binascii
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("DW_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/dev"))
SRC = os.environ.get("DW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
SANITIZED = os.environ.get("DW_SANITIZED") == "1"
# Sanitized binaries are several times slower: stretch every deadline.
SLOW = 3.0 if SANITIZED else 1.0

IN, OUT, DLQ = "hire.delivery_tasks.created", "hire.delivery_tasks.resolved", "hire.delivery_tasks.dlq"
WEBSITE = "7047318856652261676"


def log(*a):
    print(*a, flush=True)


_watched = []  # processes that must not exit while a test waits


def check_alive():
    for p in _watched:
        if p.poll() is not None and not getattr(p, "stopping", False):
            raise AssertionError("%s exited unexpectedly with status %s" % (os.path.basename(p.logfile), p.returncode))


def wait_until(cond, timeout, what, interval=0.1):
    """Polls cond() until it returns a truthy value or the deadline passes (then fails)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        check_alive()
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


def wait_file(path, timeout, what):
    return wait_until(lambda: os.path.exists(path) and open(path).read().strip(), timeout, what)


class Processes:
    """Owns every child process of a test and ends them all at exit; their logs and files are
    in self.tmp."""

    def __init__(self):
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="dw-it-")

    def start(self, args, name, env=None, stdin=subprocess.DEVNULL):
        out = open(os.path.join(self.tmp, name + ".log"), "ab")
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=stdin, env=e)
        p.logfile = out.name
        self.procs.append(p)
        _watched.append(p)
        return p

    def close(self):
        """Kills what still runs; the processes are no longer watched (check_alive)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p in _watched:
                _watched.remove(p)

    def remove(self):
        """Removes self.tmp (after close)."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tails(self, chars=6000):
        """The last chars of every process's log, for a failure report."""
        out = []
        for p in self.procs:
            try:
                tail = open(p.logfile, errors="replace").read()[-chars:]
            except OSError:
                continue
            out.append("---- %s (last lines) ----\n%s" % (os.path.basename(p.logfile), tail))
        return "\n".join(out)


class Sim:
    def __init__(self, procs, *args):
        port_file = os.path.join(procs.tmp, "sim.port.%d" % len(procs.procs))
        self.proc = procs.start([os.path.join(BIN, "dw-sim"), "--listen", "127.0.0.1:0",
                                 "--port-file", port_file] + list(args), "sim")
        self.url = "http://127.0.0.1:%s" % wait_file(port_file, 30, "the simulator")

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def register(self, tasks):
        return self.call("POST", "/_sim/tasks", tasks)

    def stats(self, tasks=False):
        return self.call("GET", "/_sim/stats" + ("?tasks=1" if tasks else ""))

    def requests(self):
        return self.call("GET", "/_sim/requests")

    def fault(self, **kw):
        return self.call("POST", "/_sim/faults", kw)

    def revoke(self):
        return self.call("POST", "/_sim/revoke", {})

    def config(self, **kw):
        return self.call("POST", "/_sim/config", kw)


class Redis:
    """A redis-server on a loopback port, with no persistence, for the shared budget store;
    stop() and start() again keep the port."""

    def __init__(self, procs, port=None):
        self.procs = procs
        self.port = port or free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        self.proc = None
        self.start()

    def start(self):
        self.proc = self.procs.start([shutil.which("redis-server"), "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     "redis")
        wait_until(self.ping, 30, "redis-server on port %d" % self.port)
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                return c.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        self.proc.stopping = True
        self.proc.terminate()
        self.proc.wait(timeout=30)


def kafkatool(*args, stdin=None, timeout=120):
    r = subprocess.run([os.path.join(BIN, "dw-kafkatool")] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=timeout * SLOW)
    if r.returncode != 0:
        raise AssertionError("dw-kafkatool %s failed: %s" % (args[0], r.stderr[-2000:]))
    return r.stdout


class MockKafka:
    """librdkafka's mock cluster in a dw-kafkatool process; faults through its stdin."""

    def __init__(self, procs, brokers=3, topics=((IN, 4), (OUT, 4), (DLQ, 4))):
        bs_file = os.path.join(procs.tmp, "bootstrap")
        args = [os.path.join(BIN, "dw-kafkatool"), "mock", "--brokers", str(brokers),
                "--bootstrap-file", bs_file]
        for t, n in topics:
            args += ["--topic", "%s:%d" % (t, n)]
        self.proc = procs.start(args, "mock", stdin=subprocess.PIPE)
        self.bootstrap = wait_file(bs_file, 30, "the mock cluster")

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()


class RealKafka:
    """A real Apache Kafka 3.9 broker (KRaft, one node on loopback) from tests/kafka/kafka.sh;
    server_props are extra server.properties lines ("offset.metadata.max.bytes=256"),
    start_args more `kafka.sh start` options ("--sasl-ssl"), directory its data directory
    (default: kafka in the test's). self.started holds the KAFKA_*= lines kafka.sh printed."""

    def __init__(self, procs, server_props=(), start_args=(), directory=None):
        self.dir = directory or os.path.join(procs.tmp, "kafka")
        self.script = os.path.join(SRC, "tests/kafka/kafka.sh")
        env = dict(os.environ)
        if server_props:
            env["DW_KAFKA_EXTRA_PROPS"] = "\n".join(server_props)
        args = [self.script, "start", "--port", "0", "--dir", self.dir] + list(start_args)
        r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
        if r.returncode != 0:
            raise AssertionError("kafka.sh start %s failed:\n%s" % (" ".join(start_args),
                                                                      r.stderr[-4000:]))
        self.started = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
        self.bootstrap = self.started["KAFKA_BOOTSTRAP"]  # PLAINTEXT

    def stop(self):
        subprocess.run([self.script, "stop", "--dir", self.dir], capture_output=True, timeout=120)


def check_config(conf, env):
    """`delivery-worker check-config -c conf` with env added to this environment:
    (exit status, stdout + stderr)."""
    r = subprocess.run([os.path.join(BIN, "delivery-worker"), "check-config", "-c", conf],
                       capture_output=True, text=True, env=dict(os.environ, **env), timeout=30)
    return r.returncode, r.stdout + r.stderr


def decode_map(meta):
    """Decodes the worker's commit metadata ("dw1." + base64url of version, base offset and
    (gap, length) varint pairs, then a CRC-32): (base, the set of finished offsets it records)."""
    raw = base64.urlsafe_b64decode(meta[4:] + "=" * (-len(meta[4:]) % 4))
    body, crc = raw[:-4], int.from_bytes(raw[-4:], "little")
    assert binascii.crc32(body) == crc and body[0] == 1, "bad map %r" % meta
    values, v, shift = [], 0, 0
    for b in body[1:]:
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            values.append(v)
            v, shift = 0, 0
    base, cursor, done = values[0], values[0], set()
    for gap, length in zip(values[1::2], values[2::2]):
        done.update(range(cursor + gap, cursor + gap + length))
        cursor += gap + length
    return base, done


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def produce(bootstrap, topic, records):
    lines = "".join(json.dumps(r) + "\n" for r in records)
    kafkatool("produce", "-b", bootstrap, topic, stdin=lines)


def dump(bootstrap, topic, isolation=None):
    args = ["dump", "-b", bootstrap, topic, "--timeout-ms", "10000"]
    if isolation:
        args += ["--isolation", isolation]
    return [json.loads(l) for l in kafkatool(*args).splitlines() if l.strip()]


def committed(bootstrap, group, topic):
    return [json.loads(l) for l in kafkatool("committed", "-b", bootstrap, group, topic).splitlines()
            if l.strip()]


def all_committed(bootstrap, group, topic):
    """True when the group's committed offset of every partition is its high watermark (an
    empty partition has nothing to commit)."""
    c = committed(bootstrap, group, topic)
    return c and all(p["offset"] == p["high"] or (p["high"] == 0 and p["offset"] < 0) for p in c)


class Topics:
    """The three topics a worker reads and writes: input, results, dead letters."""

    def __init__(self, inp=IN, out=OUT, dlq=DLQ):
        self.IN, self.OUT, self.DLQ = inp, out, dlq

    def all(self):
        return (self.IN, self.OUT, self.DLQ)

    def config(self):
        """The kafka.* lines that name them (empty for the default names)."""
        if self.all() == (IN, OUT, DLQ):
            return ""
        return '  input_topic = "%s";\n  results_topic = "%s";\n  dlq_topic = "%s";\n' % self.all()


DEFAULT_TOPICS = Topics()


class Worker:
    """A delivery-worker with a test config: fast polls and commits, the admin endpoint on a free
    port; extra is more config text, env more environment, topics a Topics (the defaults when
    not given)."""

    def __init__(self, procs, bootstrap, sim_url, group="dw-test", secret="secret", app="cli_test",
                 extra="", properties=(("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")),
                 env=None, name="worker", topics=DEFAULT_TOPICS):
        self.procs = procs
        self.conf = os.path.join(procs.tmp, "%s.conf" % name)
        self.admin_port = free_port()
        props = ", ".join('["%s", "%s"]' % kv for kv in properties)
        with open(self.conf, "w") as f:
            f.write("""kafka = {
  brokers = "%s";
  group_id = "%s";
  commit_interval_ms = 200;
%s  properties = ( %s );
};
feishu = { base_url = "%s"; app_id = "%s"; };
poll = { first_delay_ms = 100; interval_ms = 200; max_interval_ms = 1000; jitter = 0.2;
         deadline_ms = 20000; retry_initial_ms = 100; retry_max_ms = 1000; };
worker = { drain_timeout_ms = 20000; };
admin = { listen = "127.0.0.1:%d"; };
log = { level = "info"; };
%s
""" % (bootstrap, group, topics.config(), props, sim_url, app, self.admin_port, extra))
        self.env = {"DELIVERY_WORKER_FEISHU_APP_SECRET": secret}
        self.env.update(env or {})
        self.name = name
        self.proc = None

    def start(self):
        self.proc = self.procs.start([os.path.join(BIN, "delivery-worker"), "run", "-c", self.conf],
                                     self.name, env=self.env)
        return self

    def log_text(self):
        return open(self.proc.logfile, errors="replace").read()

    def admin(self, path):
        """GET path from the worker's admin endpoint: (status, body)."""
        wait_until(lambda: self._listening(), 30, "the admin endpoint")
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.admin_port, path), timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.admin_port), timeout=1).close()
            return True
        except OSError:
            return False

    def metrics(self):
        """The /metrics samples as {"name{labels}": value}."""
        status, body = self.admin("/metrics")
        assert status == 200, status
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, timeout=60):
        self.proc.stopping = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("worker did not exit %d s after SIGTERM" % timeout)
        return rc


def event(task, website=WEBSITE, **extra):
    v = {"website_id": website, "delivery_task_id": task}
    v.update(extra)
    return {"key": task, "value": json.dumps(v)}


def run(main):
    """Runs main(procs) with a Processes outside pytest (chaos.py from the command line): on
    failure the traceback and the tail of every log, and the work directory is kept. Returns
    True on success."""
    procs = Processes()
    ok = False
    try:
        main(procs)
        ok = True
    except Exception:
        import traceback
        traceback.print_exc()
        log(procs.log_tails())
    finally:
        procs.close()
    if not ok:
        log("failed; work directory kept: %s" % procs.tmp)
    return ok


# ---- additions for the chaos test (tests/integration/chaos.py) ----

def kill_worker(worker):
    """SIGKILL: the process gets no chance to drain or commit (a crash or an OOM kill)."""
    worker.proc.stopping = True
    worker.proc.kill()
    worker.proc.wait()


def high_watermarks(bootstrap, topic):
    """{partition: high watermark} of a topic (read without joining any group)."""
    return {p["partition"]: p["high"] for p in committed(bootstrap, "dw-watermarks", topic)}


def sim_requests_all(sim, page=20000):
    """Every request the simulator recorded, fetched in pages (one answer has a size limit)."""
    out, since = [], 0
    while True:
        part = sim.call("GET", "/_sim/requests?since=%d&limit=%d" % (since, page))
        if not part:
            return out
        out += part
        since = part[-1]["i"] + 1


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def broker_ready(bootstrap):
    """True when the broker lists itself in a metadata answer (as kafka.sh start checks)."""
    r = subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", "3", "-X", "topic.metadata.refresh.interval.ms=-1"],
                       capture_output=True, text=True, timeout=15)
    return r.returncode == 0 and ("at %s" % bootstrap) in r.stdout


def broker_restart(kafka, hard=False, down=None):
    """Restarts the RealKafka broker on the same port and data directory: SIGTERM (a controlled
    shutdown) or SIGKILL with hard=True, then the same java command line again. down(), if given,
    is called while the broker is down. Returns the seconds the broker was unreachable."""
    pid_file = os.path.join(kafka.dir, "kafka.pid")
    pid = int(open(pid_file).read())
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    cwd = os.readlink("/proc/%d/cwd" % pid)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    wait_until(lambda: not _pid_alive(pid), 90, "the broker (pid %d) to exit" % pid, interval=0.2)
    if down:
        down()
    # Detached like kafka.sh does it (new session, adopted by init), so kafka.sh stop can end it.
    out = os.path.join(kafka.dir, "kafka.out")
    r = subprocess.run(["setsid", "sh", "-c", 'exec "$@" </dev/null >>"$0" 2>&1 & echo $!', out] + argv,
                       capture_output=True, text=True, cwd=cwd, timeout=30)
    new_pid = int(r.stdout.strip())
    with open(pid_file, "w") as f:
        f.write("%d\n" % new_pid)
    wait_until(lambda: _pid_alive(new_pid) and broker_ready(kafka.bootstrap) or
               (not _pid_alive(new_pid) and _raise("the restarted broker exited; see %s" % out)),
               120, "the restarted broker to serve metadata", interval=0.5)
    return time.monotonic() - t0


def _raise(msg):
    raise AssertionError(msg)


RealKafka.restart = broker_restart
