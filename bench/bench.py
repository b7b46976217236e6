#!/usr/bin/env python3
"""Benchmark of delivery-worker's polling ("Polling at scale"). Run through bench/run.sh, which
checks the prerequisites and builds build/release first; see bench/README.md.

Phases, each on a real Kafka 3.9 broker (tests/kafka/kafka.sh) and the API simulator dw-sim:

1. realistic: every strategy in STRATEGIES (plus the replicas scenario) runs side by side, each
   worker group with its own app in the simulator (so its own 50/s and 1000/min budget, enforced
   by the simulator and by the worker), its own consumer group and its own output topics, on
   the same input events: a paced stream (ARRIVAL tasks/s) and a burst (all at once). Tasks are
   registered in the simulator just before their event is produced, with a log-normal readiness
   time counted from registration (= creation), and 3% never become ready.
2. throughput: one worker, an instant API (ready at the first poll, no latency, no rate limit
   in the simulator or the worker): tasks per CPU-second of the worker process.
3. memory: one worker holding N never-ready tasks (polled once, next poll in an hour): RSS per
   1,000 tasks in flight.
4. jitter: a backlog (every task ready at once) for one worker against a simulator that counts
   each call up to 150 ms after it arrives: 429s, and the budget used while backlogged.
5. replicas: the same backlog for three replicas of one app (one budget): 429s and budget use.

Writes bench/results/results.md, results.json, polling.png and plan-limit.png (with gnuplot)."""
import argparse
import bisect
import datetime
import json
import math
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("DW_BIN_DIR", os.path.join(ROOT, "build/release"))
os.environ.setdefault("DW_SOURCE_DIR", ROOT)
sys.dont_write_bytecode = True  # no __pycache__ in tests/
sys.path.insert(0, os.path.join(ROOT, "tests/integration"))
import harness as h  # noqa: E402  (after DW_BIN_DIR is set)

# ------------------------------------------------------------------ what is compared

# name, description, poll.* overrides as DELIVERY_WORKER_POLL_<KEY> (keys not given keep the
# worker's defaults). Add a row to add a strategy; a row whose config check-config rejects is
# reported as skipped.
STRATEGIES = [
    ("fixed-1s", "naive: poll every 1 s", {"SCHEDULE": "fixed", "FIRST_DELAY_MS": 1000, "INTERVAL_MS": 1000}),
    ("fixed-5s", "naive: poll every 5 s", {"SCHEDULE": "fixed", "FIRST_DELAY_MS": 5000, "INTERVAL_MS": 5000}),
    ("exponential", "the defaults: 2 s, then x1.5 up to 15 s", {"SCHEDULE": "exponential"}),
    ("adaptive", "poll.schedule = adaptive, its defaults (median latency target 2 s)",
     {"SCHEDULE": "adaptive"}),
    ("adaptive-5s", "adaptive with poll.latency_target_ms = 5000: fewer calls for more latency",
     {"SCHEDULE": "adaptive", "LATENCY_TARGET_MS": 5000}),
]

RATE_PER_SECOND, RATE_PER_MINUTE = 50, 1000           # Feishu's tier-4 limits, sim and worker
BUDGET = min(RATE_PER_SECOND, RATE_PER_MINUTE / 60.0)  # sustained calls/s the two allow
SECRET = "bench-secret"
NEVER_FRACTION = 0.03
READY_MEDIAN_MS, READY_SIGMA, READY_MAX_MS = 10000, 0.8, 60000

SIZES = {
    # paced: ARRIVAL tasks/s for PACED_S seconds; burst: BURST tasks at once; deadline: poll.deadline_ms
    "full": dict(arrival=2.0, paced_s=270, burst=800, deadline_ms=300000, tput=50000, mem=10000),
    "quick": dict(arrival=2.0, paced_s=30, burst=150, deadline_ms=90000, tput=5000, mem=2000),
}
# The budget phases (jitter, replicas): tasks in the backlog, and the simulator's arrival jitter.
BACKLOG = {"full": 3000, "quick": 1500}
ARRIVAL_JITTER_MS = 150

KAFKA_PROPS = (("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500"))
TASK_PATH = "/delivery_tasks/"
LATENCY_FLOOR_MS = 50  # an added latency below -50 ms means the clocks are mapped wrongly
CLK_TCK = os.sysconf("SC_CLK_TCK")
BIN = h.BIN


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ------------------------------------------------------------------ processes

class BenchWorker(h.Worker):
    """One delivery-worker process (the harness's, started and logged the same way). The config
    file holds only Kafka and the API; everything else is a default or an environment override
    (docs/configuration.md)."""

    def __init__(self, procs, name, bootstrap, sim_url, group, app, topic, out, dlq, env):
        self.procs, self.name, self.group, self.app = procs, name, group, app
        self.conf = os.path.join(procs.tmp, name + ".conf")
        props = ", ".join('["%s", "%s"]' % kv for kv in KAFKA_PROPS)
        with open(self.conf, "w") as f:
            f.write('kafka = { brokers = "%s"; group_id = "%s"; input_topic = "%s"; results_topic = "%s";\n'
                    '          dlq_topic = "%s"; properties = ( %s ); };\n'
                    'feishu = { base_url = "%s"; app_id = "%s"; };\n'
                    % (bootstrap, group, topic, out, dlq, props, sim_url, app))
        self.env = {"DELIVERY_WORKER_FEISHU_APP_SECRET": SECRET, "DELIVERY_WORKER_LOG_LEVEL": "warn",
                    "DELIVERY_WORKER_ADMIN_LISTEN": "127.0.0.1:0"}
        self.env.update({k: str(v) for k, v in env.items()})
        self.proc = None
        self.final = {}

    def check(self):
        """check-config with this worker's environment: (ok, message)."""
        rc, out = h.check_config(self.conf, self.env)
        return rc == 0, out.strip().splitlines()[-1:] or [""]

    def cpu_s(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def mem_kb(self, key):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=90):
        """Records CPU and peak RSS, then SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.final = {"cpu_s": self.cpu_s(), "hwm_kb": self.mem_kb("VmHWM"), "rss_kb": self.mem_kb("VmRSS")}
        self.proc.stopping = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "killed after %d s" % timeout


def kafkatool(*args, timeout=120):
    return h.kafkatool(*args, timeout=timeout)


def create_topics(bootstrap, topics):
    """Creates topics (name, partitions) in parallel."""
    ps = [subprocess.Popen([os.path.join(BIN, "dw-kafkatool"), "create-topic", "-b", bootstrap, t, str(n)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for t, n in topics]
    for p, (t, _) in zip(ps, topics):
        _, err = p.communicate(timeout=120)
        if p.returncode != 0:
            raise RuntimeError("create-topic %s: %s" % (t, err[-500:]))


def group_state(bootstrap, group):
    try:
        return json.loads(kafkatool("group", "-b", bootstrap, group, timeout=30))
    except (AssertionError, ValueError):
        return {}


def wait_groups_stable(bootstrap, members_by_group, timeout=120):
    pending = dict(members_by_group)

    def ready():
        for g, n in list(pending.items()):
            st = group_state(bootstrap, g)
            if st.get("state") == "Stable" and st.get("members") == n:
                del pending[g]
        return not pending
    h.wait_until(ready, timeout, "consumer groups %s to be stable" % sorted(pending), interval=1.0)
    time.sleep(2)  # cooperative rebalancing may take a second round; workers wait 1 s before calling


def committed_progress(bootstrap, group, topic):
    """(committed records, records) over the topic's partitions."""
    c = h.committed(bootstrap, group, topic)
    done = sum(max(p["offset"], 0) for p in c)
    return done, sum(p["high"] for p in c)


# ------------------------------------------------------------------ simulator helpers

def sim_records(sim, since=0, page=20000):
    out = []
    while True:
        got = sim.call("GET", "/_sim/requests?since=%d&limit=%d" % (since, page))
        out += got
        if len(got) < page:
            return out
        since = got[-1]["i"] + 1


class ClockMap:
    """Maps wall-clock times (the worker's resolved_at, dlq.failed_at) to the simulator's clock
    (ms since its start, monotonic) from samples of the pair taken through the phase.

    One offset is not enough: the system may step or slew the wall clock while the monotonic
    clock runs on (a virtual machine's time sync stepped it by about +11 s during one 11-minute
    run; mapped with the offset read at the end, every earlier latency came out 11 s short, so
    the medians were negative). Sample i's offset holds from sample i-1 to sample i+1 (the step
    may fall anywhere between them); a wall time maps to each offset whose range the result falls
    in. When a step leaves two candidates (a backward step, or one within a sampling period), the
    earliest not before `not_before` (a sim time the event cannot precede) is taken."""

    def __init__(self, samples=()):
        self.sims, self.offs = [], []  # sample i: sim ms, wall ms - sim ms
        for sim_ms, off_ms in samples:
            self.add(sim_ms, off_ms)

    def add(self, sim_ms, off_ms):
        if self.sims and sim_ms < self.sims[-1]:
            raise ValueError("clock samples out of order: %s after %s" % (sim_ms, self.sims[-1]))
        self.sims.append(sim_ms)
        self.offs.append(off_ms)

    def to_sim(self, wall_ms, not_before=None):
        sims, offs, n = self.sims, self.offs, len(self.sims)
        if not n:
            raise ValueError("no clock samples")
        gap = max((b - a for a, b in zip(sims, sims[1:])), default=0)
        first = bisect.bisect_left(sims, wall_ms - max(offs) - 2 * gap)
        last = bisect.bisect_right(sims, wall_ms - min(offs) + 2 * gap)
        cands = []  # (ms outside the offset's range, sim ms)
        for i in range(max(0, first - 1), min(n, last + 1)):
            lo = sims[i - 1] if i > 0 else float("-inf")
            hi = sims[i + 1] if i + 1 < n else float("inf")
            t = wall_ms - offs[i]
            cands.append((max(lo - t, t - hi, 0.0), t))
        if not_before is not None:
            cands = [c for c in cands if c[1] >= not_before - 1] or cands  # both count whole ms
        best = min(d for d, _ in cands)
        return min(t for d, t in cands if d <= best + 1)

    def steps(self, min_ms=50):
        """(sim ms, ms) of every change of the offset by at least min_ms between two samples."""
        return [(self.sims[i], self.offs[i] - self.offs[i - 1]) for i in range(1, len(self.offs))
                if abs(self.offs[i] - self.offs[i - 1]) >= min_ms]


class SimClock(ClockMap):
    """A ClockMap sampled from a running simulator once a second (from start() to stop()):
    /_sim/stats' now_ms read between two wall-clock readings, the tightest of three tries."""

    def __init__(self, sim, period_s=1.0):
        super().__init__()
        self.sim, self.period_s, self.rtt_ms = sim, period_s, 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self):
        best = None
        for _ in range(3):
            a = time.time()
            now_ms = self.sim.stats()["now_ms"]
            b = time.time()
            if best is None or b - a < best[0]:
                best = (b - a, now_ms, (a + b) / 2 * 1000 - now_ms)
        self.rtt_ms = max(self.rtt_ms, best[0] * 1000)
        self.add(best[1], best[2])

    def run(self):
        while not self.stopping.wait(self.period_s):
            try:
                self.sample()
            except OSError as e:  # a missed sample only widens the gap around it
                log("clock sample failed: %s" % e)

    def start(self):
        self.sample()
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.sample()


def clock_selfcheck():
    """The mapping against wall clocks that step: fails on one offset read at the end."""
    period, base = 1000, 1796337161911.0
    step_at, step = 250500, 11000.0

    def wall(sim_ms, step_ms):
        return sim_ms + base + (step_ms if sim_ms >= step_at else 0.0)
    for step_ms in (step, -3000.0, 400.0, 0.0):
        m = ClockMap((t, wall(t, step_ms) - t) for t in range(0, 600001, period))
        for t in (0, 100000, 250000, 250400, 250499, 250500, 250600, 251000, 252000, 400000, 600000, 700000):
            got = m.to_sim(wall(t, step_ms), not_before=t)
            assert abs(got - t) <= 1, "step %+.0f ms: sim %d mapped to %.0f" % (step_ms, t, got)
        if step_ms >= period:  # far enough to be unambiguous without not_before
            for t in (100000, 250499, 250500, 400000):
                got = m.to_sim(wall(t, step_ms))
                assert abs(got - t) <= 1, "step %+.0f ms, no bound: sim %d mapped to %.0f" % (step_ms, t, got)
        assert [s for _, s in m.steps()] == ([step_ms] if abs(step_ms) >= 50 else []), m.steps()
    drift = ClockMap((t, base + t * 0.0005) for t in range(0, 600001, period))  # a 500 ppm slew
    assert abs(drift.to_sim(300000 + base + 150.0) - 300000) <= 1


def sim_ready_at(sim, task_ids):
    out = {}
    for t in task_ids:
        q = urllib.parse.urlencode({"website_id": h.WEBSITE, "delivery_task_id": t})
        out[t] = sim.call("GET", "/_sim/task?" + q)["ready_at_ms"]
    return out


def draw_tasks(prefix, n, seed):
    """n task specs: readiness log-normal (median READY_MEDIAN_MS, sigma READY_SIGMA, capped at
    READY_MAX_MS) from registration, NEVER_FRACTION never ready. Same seed, same fates."""
    rnd = random.Random(seed)
    tasks = []
    for i in range(n):
        never = (i * NEVER_FRACTION) % 1.0 + NEVER_FRACTION > 1.0 - 1e-9  # exactly every 1/F-th task
        delay = min(READY_MAX_MS, READY_MEDIAN_MS * math.exp(READY_SIGMA * rnd.gauss(0.0, 1.0)))
        spec = {"website_id": h.WEBSITE, "delivery_task_id": "%s-%05d" % (prefix, i),
                "ready_after_ms": int(round(delay))}
        if never:
            spec["final"] = "never"
        tasks.append(spec)
    return tasks


# ------------------------------------------------------------------ statistics

def pct(sorted_vals, q):
    """Nearest-rank percentile (inf when it falls on an unresolved task)."""
    if not sorted_vals:
        return None
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def parse_ts(s):
    return datetime.datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000


def max_in_window(ts_sorted, width_ms=1000):
    best, j = 0, 0
    for i, t in enumerate(ts_sorted):
        while ts_sorted[j] <= t - width_ms:
            j += 1
        best = max(best, i - j + 1)
    return best


def capacity(waiting, per_s=RATE_PER_SECOND, per_min=RATE_PER_MINUTE):
    """The most calls a client keeping to both limits (at most per_s in any second, per_min in any
    60 s) can make inside the intervals (ms), greedily second by second from a fresh budget."""
    if not waiting:
        return 0.0
    start = int(waiting[0][0] // 1000)
    frac = [0.0] * (int(waiting[-1][1] // 1000) - start + 1)
    for a, b in waiting:
        t = a
        while t < b:
            k = int(t // 1000)
            e = min(b, (k + 1) * 1000.0)
            frac[k - start] += (e - t) / 1000.0
            t = e
    used, total = [], 0.0
    for k, f in enumerate(frac):
        room = per_min - sum(used[max(0, k - 59):k])
        c = max(0.0, min(per_s * f, room))
        used.append(c)
        total += c
    return total


def union(intervals):
    merged = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def analyse(name, tasks, ready_at, clock, results, dlqs, recs, end_sim_ms, workers):
    """Metrics of one worker group. Times in the simulator's clock (ms since its start); the
    worker's wall-clock timestamps are mapped with clock (a ClockMap). Raises when a result
    seems to come before its task was ready: the clocks are then mapped wrongly, and every
    latency of the run with them."""
    calls = [r for r in recs if TASK_PATH in r["path"]]
    rejected = [r for r in calls if r["http"] == 429]
    admitted_ts = sorted(r["ts_ms"] for r in calls if r["http"] != 429)
    final_seen = {}
    for r in calls:
        if r.get("status") in (2, 3) and r["task_id"] not in final_seen:
            final_seen[r["task_id"]] = r["ts_ms"]
    res = {}
    for m in results:
        v = json.loads(m["value"])
        res.setdefault(m["key"], v)
    dl = {}
    for m in dlqs:
        dl.setdefault(m["key"], m.get("headers") or {})
    resolved = set(res) | set(dl)
    never = {t["delivery_task_id"] for t in tasks if t.get("final") == "never"}
    ready_calls = sum(1 for r in calls if r["task_id"] not in never)
    lat, poll_delay, pipeline, intervals, ready_dlq = [], [], [], [], 0
    for t in tasks:
        tid = t["delivery_task_id"]
        if t.get("final") == "never":
            continue
        r_sim = ready_at[tid]
        if tid in res:
            done_sim = clock.to_sim(parse_ts(res[tid]["resolved_at"]), final_seen.get(tid))
            if done_sim - r_sim < -LATENCY_FLOOR_MS:
                raise RuntimeError(
                    "%s: task %s has a result %.0f ms before it was ready (ready_at_ms %d, resolved_at %s, "
                    "final answer at %s; wall-clock steps seen: %s): the clocks are mapped wrongly"
                    % (name, tid, r_sim - done_sim, r_sim, res[tid]["resolved_at"], final_seen.get(tid),
                       clock.steps() or "none"))
            lat.append(done_sim - r_sim)
            if tid in final_seen:
                poll_delay.append(final_seen[tid] - r_sim)
                pipeline.append(done_sim - final_seen[tid])
        else:
            done_sim = end_sim_ms
            if tid in dl:
                ready_dlq += 1
                done_sim = clock.to_sim(parse_ts(dl[tid]["dlq.failed_at"]), r_sim)
            lat.append(float("inf"))
        intervals.append((r_sim, max(r_sim, done_sim)))
    lat.sort()
    poll_delay.sort()
    pipeline.sort()
    waiting = union(intervals)
    wait_ms = sum(b - a for a, b in waiting)
    in_wait, k = 0, 0
    for t in admitted_ts:
        while k < len(waiting) and waiting[k][1] < t:
            k += 1
        if k < len(waiting) and waiting[k][0] <= t:
            in_wait += 1
    reasons = {}
    for hd in dl.values():
        reasons[hd.get("dlq.reason", "?")] = reasons.get(hd.get("dlq.reason", "?"), 0) + 1
    first = min((r["ts_ms"] for r in calls), default=0)
    last = max((r["ts_ms"] for r in calls), default=0)
    out = {
        "name": name, "tasks": len(tasks), "results": len(res), "dead_letters": len(dl),
        "dlq_reasons": reasons, "resolved": len(resolved), "unresolved": len(tasks) - len(resolved & {t["delivery_task_id"] for t in tasks}),
        "duplicates": len(results) + len(dlqs) - len(resolved),
        "calls": len(calls), "rate_limited": len(rejected),
        "rate_limited_pct": 100.0 * len(rejected) / len(calls) if calls else 0.0,
        "calls_per_resolved": len(calls) / len(resolved) if resolved else None,
        "calls_per_ready_task": ready_calls / (len(tasks) - len(never)) if len(tasks) > len(never) else None,
        "max_calls_1s": max_in_window(sorted(r["ts_ms"] for r in calls)),
        "max_admitted_1s": max_in_window(admitted_ts),
        "calls_span_s": (last - first) / 1000.0,
        "waiting_s": wait_ms / 1000.0, "calls_while_waiting": in_wait,
        "capacity_while_waiting": capacity(waiting),
        "utilisation": in_wait / capacity(waiting) if wait_ms else None,
        "utilisation_sustained": in_wait / (wait_ms / 1000.0 * BUDGET) if wait_ms else None,
        "latency_p50_ms": pct(lat, 0.50), "latency_p99_ms": pct(lat, 0.99),
        "latency_min_ms": lat[0] if lat else None, "ready_dead_lettered": ready_dlq,
        "poll_delay_p50_ms": pct(poll_delay, 0.5), "pipeline_p50_ms": pct(pipeline, 0.5),
        "pipeline_p99_ms": pct(pipeline, 0.99),
        "peak_rss_kb": max((w.final.get("hwm_kb", 0) for w in workers), default=0),
        "cpu_s": sum(w.final.get("cpu_s", 0) for w in workers),
    }
    return out


# ------------------------------------------------------------------ phase 1: realistic load

class Group:
    def __init__(self, key, scenario, strategy, desc, env, replicas=1):
        self.key, self.scenario, self.strategy, self.desc = key, scenario, strategy, desc
        self.env, self.replicas = env, replicas
        self.group = "bench-" + key
        self.app = "cli_" + key.replace("-", "_")
        self.out, self.dlq = "bench.out." + key, "bench.dlq." + key
        self.workers = []
        self.topic = None
        self.done_at = None


def strategy_env(overrides, deadline_ms):
    env = {"DELIVERY_WORKER_POLL_" + k: v for k, v in overrides.items()}
    env["DELIVERY_WORKER_POLL_DEADLINE_MS"] = deadline_ms
    return env


def phase_realistic(procs, kafka, size, strategies, replicas, replicas_strategy, run_id, skipped):
    groups = []
    by_name = {s[0]: s for s in strategies}
    for name, desc, ov in strategies:
        env = strategy_env(ov, size["deadline_ms"])
        groups.append(Group("paced-" + name, "paced", name, desc, env))
        groups.append(Group("burst-" + name, "burst", name, desc, env))
    if replicas > 0:
        s = by_name.get(replicas_strategy)
        if s is None:
            skipped.append(("replicas", "strategy %s not available" % replicas_strategy))
        else:
            groups.append(Group("replicas-%d" % replicas, "burst", s[0], s[1],
                                strategy_env(s[2], size["deadline_ms"]), replicas=replicas))
    apps = ["--app", "%s:%s" % (groups[0].app, SECRET)]
    for g in groups[1:]:
        apps += ["--app", "%s:%s" % (g.app, SECRET)]
    sim = h.Sim(procs, "--rate-per-second", str(RATE_PER_SECOND), "--rate-per-minute", str(RATE_PER_MINUTE),
                "--unknown-tasks", "not_found", *apps)
    paced_topic, burst_topic = "bench.in.paced", "bench.in.burst"
    parts = max(6, replicas)
    topics = [(paced_topic, parts), (burst_topic, parts)]
    for g in groups:
        g.topic = paced_topic if g.scenario == "paced" else burst_topic
        topics += [(g.out, 1), (g.dlq, 1)]
    create_topics(kafka.bootstrap, topics)
    for g in groups:
        for i in range(g.replicas):
            name = g.key if g.replicas == 1 else "%s-%d" % (g.key, i + 1)
            g.workers.append(BenchWorker(procs, name, kafka.bootstrap, sim.url, g.group, g.app, g.topic,
                                         g.out, g.dlq, g.env).start())
    log("realistic: %d worker processes in %d groups (%s), waiting for the groups"
        % (sum(len(g.workers) for g in groups), len(groups), ", ".join(g.key for g in groups)))
    wait_groups_stable(kafka.bootstrap, {g.group: g.replicas for g in groups})

    n_paced = int(round(size["arrival"] * size["paced_s"]))
    paced = draw_tasks("%s-p" % run_id, n_paced, seed=11)
    burst = draw_tasks("%s-b" % run_id, size["burst"], seed=12)
    produced = {}

    def paced_producer():
        p = subprocess.Popen([os.path.join(BIN, "dw-kafkatool"), "produce", "-b", kafka.bootstrap, paced_topic],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        for i, spec in enumerate(paced):
            delay = start + i / size["arrival"] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sim.register([spec])
            p.stdin.write(json.dumps(h.event(spec["delivery_task_id"])) + "\n")
            p.stdin.flush()
            produced[spec["delivery_task_id"]] = time.time()
        out, err = p.communicate(timeout=120)
        produced["_rc"] = (p.returncode, out.strip(), err.strip()[-300:])

    clock = SimClock(sim).start()
    t0 = time.time()
    log("realistic: burst of %d tasks and paced %d tasks at %.1f/s over %d s; deadline %d s"
        % (len(burst), n_paced, size["arrival"], size["paced_s"], size["deadline_ms"] // 1000))
    th = threading.Thread(target=paced_producer, daemon=True)
    th.start()
    sim.register(burst)
    h.produce(kafka.bootstrap, burst_topic, [h.event(s["delivery_task_id"]) for s in burst])
    limit = time.monotonic() + size["paced_s"] + size["deadline_ms"] / 1000 + 150
    last_log = 0
    while True:
        h.check_alive()
        time.sleep(5)
        producing = th.is_alive()
        pending = []
        for g in groups:
            if g.done_at is None:
                if g.scenario == "paced" and producing:
                    pending.append(g.key)
                    continue
                d, n = committed_progress(kafka.bootstrap, g.group, g.topic)
                if d >= n and n > 0:
                    g.done_at = time.time()
                else:
                    pending.append("%s %d/%d" % (g.key, d, n))
        if not pending:
            break
        if time.monotonic() > limit:
            log("realistic: time is up; still pending: %s" % ", ".join(pending))
            break
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            log("realistic: %.0f s; committed offsets (a never-ready task holds its partition's back until "
                "its deadline): %s" % (time.time() - t0, ", ".join(pending)))
    th.join(timeout=60)
    if produced.get("_rc", (1,))[0] != 0:
        raise RuntimeError("paced producer failed: %s" % (produced.get("_rc"),))
    end_wall = time.time()
    log("realistic: finished after %.0f s; collecting" % (end_wall - t0))
    for g in groups:
        for w in g.workers:
            rc = w.stop()
            if rc != 0:
                log("warning: %s exited with %s" % (w.name, rc))
    clock.stop()
    end_sim_ms = clock.to_sim(end_wall * 1000)
    for at, ms in clock.steps():
        log("realistic: the wall clock moved by %+.0f ms against the simulator's at %.0f s (mapped)"
            % (ms, at / 1000))
    recs = sim_records(sim)
    ready_at = sim_ready_at(sim, [s["delivery_task_id"] for s in paced + burst])
    stats = sim.stats()
    rows = []
    for g in groups:
        tasks = paced if g.scenario == "paced" else burst
        results = h.dump(kafka.bootstrap, g.out)
        dlqs = h.dump(kafka.bootstrap, g.dlq)
        row = analyse(g.key, tasks, ready_at, clock, results, dlqs,
                      [r for r in recs if r.get("app_id") == g.app], end_sim_ms, g.workers)
        row.update(scenario=g.scenario, strategy=g.strategy, desc=g.desc, replicas=g.replicas)
        rows.append(row)
    optimal_at_p50(rows)
    never = {"paced": sum(1 for s in paced if s.get("final") == "never"),
             "burst": sum(1 for s in burst if s.get("final") == "never")}
    return {"rows": rows, "clock_rtt_ms": clock.rtt_ms, "clock_samples": len(clock.sims),
            "clock_steps": clock.steps(), "sim_stats": stats, "never": never,
            "paced_tasks": len(paced), "burst_tasks": len(burst), "elapsed_s": end_wall - t0}


def optimal_at_p50(rows):
    """Adds to each row the optimal plan for the true readiness at the row's median added latency
    (dw-schedule-sim --optimal: the fewest calls per ready task any schedule knowing only a task's
    age can make at that median, within poll.min/max_interval_ms, and that plan's p99)."""
    p50s = [r["latency_p50_ms"] for r in rows]
    todo = sorted({round(v, 1) for v in p50s if v is not None and 0 < v < float("inf")})
    if not todo:
        return
    r = subprocess.run([os.path.join(BIN, "dw-schedule-sim"), "--optimal", str(READY_SIGMA), str(READY_MEDIAN_MS)]
                       + ["%.1f" % v for v in todo], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        log("dw-schedule-sim --optimal failed: %s" % r.stderr.strip()[-500:])
        return
    got = {}
    for line in r.stdout.split("\n"):
        if line.strip():
            p50, calls, p99 = (float(x) for x in line.split())
            got[p50] = (calls, p99)
    for row in rows:
        o = got.get(round(row["latency_p50_ms"] or 0, 1))
        if o:
            row["optimal_calls"], row["optimal_p99_ms"] = o


# ------------------------------------------------------------------ phases 4, 5: the budget

def phase_budget(procs, kafka, tag, n, replicas, jitter_ms, run_id):
    """A backlog: n tasks ready at once, taken by `replicas` workers of one app (one budget, the
    worker's defaults) from a 6-partition topic, against a simulator at Feishu's limits that
    counts each call 0..jitter_ms after it arrives. Reports the 429s, and the budget used while
    backlogged: calls admitted over what a client keeping to both limits could have made from the
    first call to the last (capacity(), from a fresh budget)."""
    app = "cli_" + tag
    sim = h.Sim(procs, "--rate-per-second", str(RATE_PER_SECOND), "--rate-per-minute", str(RATE_PER_MINUTE),
                "--arrival-jitter-ms", str(jitter_ms), "--app", "%s:%s" % (app, SECRET))
    topic, out, dlq, group = "bench.in." + tag, "bench.out." + tag, "bench.dlq." + tag, "bench-" + tag
    create_topics(kafka.bootstrap, [(topic, 6), (out, 1), (dlq, 1)])
    env = {"DELIVERY_WORKER_POLL_DEADLINE_MS": 900000}
    workers = [BenchWorker(procs, "%s-%d" % (tag, i + 1), kafka.bootstrap, sim.url, group, app, topic, out,
                           dlq, env).start() for i in range(replicas)]
    wait_groups_stable(kafka.bootstrap, {group: replicas})
    tasks = [{"website_id": h.WEBSITE, "delivery_task_id": "%s-%s-%05d" % (run_id, tag, i), "ready_after_ms": 0}
             for i in range(n)]
    sim.register(tasks)
    log("%s: a backlog of %d tasks for %d replica(s), arrivals counted up to %d ms late"
        % (tag, n, replicas, jitter_ms))
    t0 = time.monotonic()
    h.produce(kafka.bootstrap, topic, [h.event(t["delivery_task_id"]) for t in tasks])
    h.wait_until(lambda: committed_progress(kafka.bootstrap, group, topic)[0] >= n,
                 n / BUDGET + 180, "%s: %d tasks committed" % (tag, n), interval=2)
    elapsed = time.monotonic() - t0
    for w in workers:
        w.stop()
    calls = [r for r in sim_records(sim) if TASK_PATH in r["path"]]
    admitted = sorted(r["ts_ms"] for r in calls if r["http"] != 429)
    limited = sum(1 for r in calls if r["http"] == 429)
    cap = capacity([(admitted[0], admitted[-1] + 1)]) if admitted else 0
    out = {"tag": tag, "replicas": replicas, "jitter_ms": jitter_ms, "tasks": n, "calls": len(calls),
           "rate_limited": limited, "rate_limited_pct": 100.0 * limited / len(calls) if calls else 0.0,
           "calls_per_task": len(calls) / n, "span_s": (admitted[-1] - admitted[0]) / 1000.0 if admitted else 0,
           "budget_used": len(admitted) / cap if cap else None,
           "max_admitted_1s": max_in_window(admitted), "max_admitted_60s": max_in_window(admitted, 60000),
           "elapsed_s": elapsed, "cpu_s": sum(w.final.get("cpu_s", 0) for w in workers)}
    log("%s: %d calls, %d answered 429 (%.2f%%), %.1f%% of the budget used while backlogged"
        % (tag, out["calls"], limited, out["rate_limited_pct"], 100 * (out["budget_used"] or 0)))
    return out


def budget_lines(res):
    """The budget phases' section of results.md."""
    rows = [res[k] for k in ("jitter", "replicas") if res.get(k)]
    if not rows:
        return []
    lines = ["## The budget: arrival jitter and replicas", "",
             "A backlog (every task ready at once) against a simulator at %d/s and %d/min that counts each "
             "call up to the jitter after it arrives (`dw-sim --arrival-jitter-ms`); the workers run with "
             "their defaults. Budget used: calls admitted over what a client keeping to both limits could "
             "have made between the first call and the last. Goals: no 429 with one replica; at most 0.1%% "
             "of calls with three, and at least 90%% of the budget used." % (RATE_PER_SECOND, RATE_PER_MINUTE), "",
             "| phase | replicas | jitter | tasks | calls | 429s | budget used | most admitted in 1 s / 60 s | span |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %d | %d ms | %d | %d | %d (%.2f%%) | %.1f%% | %d / %d | %.0f s |"
                     % (r["tag"], r["replicas"], r["jitter_ms"], r["tasks"], r["calls"], r["rate_limited"],
                        r["rate_limited_pct"], 100 * (r["budget_used"] or 0), r["max_admitted_1s"],
                        r["max_admitted_60s"], r["span_s"]))
    return lines + [""]


# ------------------------------------------------------------------ phase 2: CPU per task

def phase_plan(out_dir, tasks):
    """The schedules on dw-schedule-sim's simulated clock against the optimal plan for the true
    distribution (seconds, no broker): the ratio table, a cold start and the backlog at the
    bench's readiness, and plan-limit.png. Returns the markdown of each, by name."""
    sim = os.path.join(BIN, "dw-schedule-sim")
    runs = {"limit": [sim, "--limit", str(tasks)],
            "cold": [sim, "--cold", str(READY_SIGMA), str(READY_MEDIAN_MS)],
            "backlog": [sim, "--backlog", str(READY_SIGMA), str(READY_MEDIAN_MS)],
            "curve": [sim, "--curve", out_dir, str(READY_SIGMA), str(READY_MEDIAN_MS)]}
    out = {}
    for name, argv in runs.items():
        log("plan: %s" % " ".join(argv[1:]))
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        out[name] = r.stdout.strip() if r.returncode == 0 else "failed: %s" % r.stderr.strip()[-500:]
    return out


def phase_throughput(procs, kafka, n, run_id, max_in_flight=None):
    """Every task ready at its first poll, made at once; no rate limit anywhere. Worker CPU from
    the first event produced to the last offset committed. max_in_flight: worker.max_in_flight
    (None: the default)."""
    tag = "tput" if max_in_flight is None else "tput%d" % max_in_flight
    sim = h.Sim(procs, "--rate-per-second", "0", "--rate-per-minute", "0", "--unknown-tasks", "auto",
                "--auto-ready", "fixed:0", "--app", "cli_tput:" + SECRET)
    topic, out, dlq = "bench.in." + tag, "bench.out." + tag, "bench.dlq." + tag
    create_topics(kafka.bootstrap, [(topic, 6), (out, 6), (dlq, 1)])
    env = {"DELIVERY_WORKER_POLL_SCHEDULE": "exponential", "DELIVERY_WORKER_POLL_FIRST_DELAY_MS": 0,
           "DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": 0, "DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": 0}
    if max_in_flight is not None:
        env["DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT"] = max_in_flight
    w = BenchWorker(procs, tag, kafka.bootstrap, sim.url, "bench-" + tag, "cli_tput", topic, out, dlq, env).start()
    wait_groups_stable(kafka.bootstrap, {"bench-" + tag: 1})
    time.sleep(1)
    events = "".join(json.dumps(h.event("%s-%s-%06d" % (run_id, tag, i))) + "\n" for i in range(n))
    path = write_tmp(procs, tag + ".jsonl", events)
    cpu0, t0 = w.cpu_s(), time.monotonic()
    log("throughput: %d events for an instant API, worker.max_in_flight %s"
        % (n, max_in_flight if max_in_flight is not None else "default"))
    kafkatool("produce", "-b", kafka.bootstrap, topic, "--file", path, timeout=300)
    produced_s = time.monotonic() - t0

    def done():
        d, total = committed_progress(kafka.bootstrap, "bench-" + tag, topic)
        return d >= n and total >= n
    h.wait_until(done, 600, "all %d throughput tasks committed" % n, interval=0.5)
    cpu1, t1 = w.cpu_s(), time.monotonic()
    hwm = w.mem_kb("VmHWM")
    st = sim.stats()
    w.stop()
    nres = len(h.dump(kafka.bootstrap, out))
    return {"tasks": n, "max_in_flight": max_in_flight, "results": nres, "cpu_s": cpu1 - cpu0,
            "wall_s": t1 - t0, "produce_s": produced_s,
            "tasks_per_cpu_s": n / (cpu1 - cpu0) if cpu1 > cpu0 else None,
            "tasks_per_s": n / (t1 - t0), "peak_rss_kb": hwm, "sim_calls": st["calls"]}


def write_tmp(procs, name, text):
    p = os.path.join(procs.tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


# ------------------------------------------------------------------ phase 3: memory per task

def phase_memory(procs, kafka, n, run_id):
    """RSS of a worker holding n never-ready tasks in flight, each polled once and waiting for its
    next poll (an hour away). The first polls are spread over SPREAD_S seconds (first delay
    SPREAD_S/2 with jitter 1), so only a few transfers run at a time."""
    spread_s = 10
    sim = h.Sim(procs, "--rate-per-second", "0", "--rate-per-minute", "0", "--unknown-tasks", "auto",
                "--auto-never", "1", "--app", "cli_mem:" + SECRET)
    topic, out, dlq = "bench.in.mem", "bench.out.mem", "bench.dlq.mem"
    create_topics(kafka.bootstrap, [(topic, 6), (out, 1), (dlq, 1)])
    w = BenchWorker(procs, "mem", kafka.bootstrap, sim.url, "bench-mem", "cli_mem", topic, out, dlq,
                    {"DELIVERY_WORKER_POLL_SCHEDULE": "fixed", "DELIVERY_WORKER_POLL_FIRST_DELAY_MS": spread_s * 500,
                     "DELIVERY_WORKER_POLL_JITTER": 1,
                     "DELIVERY_WORKER_POLL_INTERVAL_MS": 3600000, "DELIVERY_WORKER_POLL_MAX_INTERVAL_MS": 3600000,
                     "DELIVERY_WORKER_POLL_DEADLINE_MS": 86400000,
                     "DELIVERY_WORKER_WORKER_MAX_IN_FLIGHT": n + 1000,
                     "DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": 0,
                     "DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": 0,
                     "DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": 0}).start()
    wait_groups_stable(kafka.bootstrap, {"bench-mem": 1})
    time.sleep(3)
    idle = w.mem_kb("VmRSS")
    events = "".join(json.dumps(h.event("%s-m-%06d" % (run_id, i))) + "\n" for i in range(n))
    log("memory: %d never-ready tasks, first polls spread over %d s" % (n, spread_s))
    kafkatool("produce", "-b", kafka.bootstrap, topic, "--file", write_tmp(procs, "mem.jsonl", events), timeout=300)
    h.wait_until(lambda: sim.stats()["calls"] >= n, 300, "every memory task polled once", interval=0.5)
    time.sleep(3)
    polled = w.mem_kb("VmRSS")
    hwm = w.mem_kb("VmHWM")
    w.stop()
    return {"tasks": n, "spread_s": spread_s, "idle_rss_kb": idle, "polled_rss_kb": polled, "peak_rss_kb": hwm,
            "rss_per_1000_kb": (polled - idle) * 1000.0 / n}


# ------------------------------------------------------------------ report

def fmt_s(ms):
    if ms is None:
        return "–"
    if ms == float("inf"):
        return "unresolved"
    return "%.1f s" % (ms / 1000.0) if ms >= 10000 else "%.2f s" % (ms / 1000.0)


def fmt_mib(kb):
    return "%.1f MiB" % (kb / 1024.0) if kb else "–"


def ratio(v, base):
    return "%.2f×" % (v / base) if v is not None and base else "–"


def report(res, args, cmd, out_dir):
    R = res["realistic"]
    lines = ["# delivery-worker polling benchmark", "",
             "Command: `%s` (%s mode), %s, %s, %d cores, load average before the run %s; the whole "
             "run took %.0f s. One run on a shared machine: read ratios and medians, not the last digit."
             % (cmd, res["mode"], res["date"], platform.node(), os.cpu_count(), res["load_before"],
                res["elapsed_s"]), ""]
    if R:
        sz = res["size"]
        lines += [
            "## Realistic load: every strategy side by side", "",
            "Readiness: log-normal from the task's creation, median %.0f s, sigma %.1f, capped at %.0f s; "
            "%.0f%% never ready (dead-lettered at `poll.deadline_ms` = %d s). Limits: %d/s and %d/min in the "
            "simulator and in the worker, one app (budget) per row. "
            "**paced**: %d tasks arriving at %.1f/s for %d s (below what the budget sustains for a "
            "sensible schedule). **burst**: %d tasks at once (saturates the budget). Total time of the "
            "phase: %.0f s." % (READY_MEDIAN_MS / 1000, READY_SIGMA, READY_MAX_MS / 1000, NEVER_FRACTION * 100,
                                sz["deadline_ms"] // 1000, RATE_PER_SECOND, RATE_PER_MINUTE, R["paced_tasks"],
                                sz["arrival"], sz["paced_s"], R["burst_tasks"], R["elapsed_s"]), ""]
        for scen in ("paced", "burst"):
            rows = [r for r in R["rows"] if r["scenario"] == scen and r["replicas"] == 1]
            base = next((r["calls_per_resolved"] for r in rows if r["strategy"] == "exponential"), None)
            lines += ["### %s (%d tasks, %d never ready)" % (scen, R["%s_tasks" % scen], R["never"][scen]), "",
                      "| strategy | results / dead letters | API calls | calls per resolved task | vs exponential "
                      "| 429s | max calls in 1 s | budget use | added latency p50 | p99 | ready tasks dead-lettered "
                      "| peak RSS | worker CPU |",
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in rows:
                lines.append("| %s (%s) | %d / %d%s | %d | %.2f | %s | %d | %d | %s | %s | %s | %d | %s | %.1f s |" % (
                    r["strategy"], r["desc"], r["results"], r["dead_letters"],
                    (" (%d unresolved)" % r["unresolved"]) if r["unresolved"] else "", r["calls"],
                    r["calls_per_resolved"] or 0, ratio(r["calls_per_resolved"], base), r["rate_limited"],
                    r["max_calls_1s"], "%.0f%%" % (100 * r["utilisation"]) if r["utilisation"] is not None else "–",
                    fmt_s(r["latency_p50_ms"]), fmt_s(r["latency_p99_ms"]), r["ready_dead_lettered"],
                    fmt_mib(r["peak_rss_kb"]), r["cpu_s"]))
            lines.append("")
            if scen == "paced" and any(r.get("optimal_calls") for r in rows):
                lines += ["Against the optimal plan for the true readiness at the same median added latency "
                          "(`dw-schedule-sim --optimal`; calls per ready task: calls on tasks that became "
                          "ready / those tasks, so the never-ready tasks' polls until the deadline are left out):", "",
                          "| strategy | calls per ready task | added latency p50 | p99 | optimal plan's calls "
                          "| ratio | optimal plan's p99 |", "|---|---|---|---|---|---|---|"]
                for r in rows:
                    o = r.get("optimal_calls")
                    lines.append("| %s | %.2f | %s | %s | %s | %s | %s |" % (
                        r["strategy"], r["calls_per_ready_task"] or 0, fmt_s(r["latency_p50_ms"]),
                        fmt_s(r["latency_p99_ms"]), "%.2f" % o if o else "–",
                        "%.2f" % (r["calls_per_ready_task"] / o) if o and r["calls_per_ready_task"] else "–",
                        fmt_s(r.get("optimal_p99_ms"))))
                lines.append("")
        reps = [r for r in R["rows"] if r["replicas"] > 1]
        if reps:
            lines += ["### %d replicas sharing one app budget (burst)" % reps[0]["replicas"], "",
                      "Three worker processes in one consumer group, one app; each replica's limiter allows "
                      "%d/s and %d/min, the simulator enforces them once for the app." % (RATE_PER_SECOND, RATE_PER_MINUTE), "",
                      "| replicas | strategy | results / dead letters | API calls | calls per resolved task "
                      "| combined max calls in 1 s | 429s | 429 % of calls | added latency p50 | p99 |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for r in reps:
                lines.append("| %d | %s | %d / %d%s | %d | %.2f | %d | %d | %.1f%% | %s | %s |" % (
                    r["replicas"], r["strategy"], r["results"], r["dead_letters"],
                    (" (%d unresolved)" % r["unresolved"]) if r["unresolved"] else "", r["calls"],
                    r["calls_per_resolved"] or 0, r["max_calls_1s"], r["rate_limited"], r["rate_limited_pct"],
                    fmt_s(r["latency_p50_ms"]), fmt_s(r["latency_p99_ms"])))
            lines.append("")
    T, M = res.get("throughput"), res.get("memory")
    if T or M:
        lines += ["## CPU and memory", "", "| measure | value |", "|---|---|"]
        if T:
            lines += ["| tasks per CPU-second of the worker (instant API, no rate limits, %d tasks, default "
                      "worker.max_in_flight) | **%.0f** (%.2f CPU-s) |" % (T["tasks"], T["tasks_per_cpu_s"] or 0, T["cpu_s"]),
                      "| wall-clock throughput of that run (worker, simulator and broker on %d cores) | %.0f tasks/s |"
                      % (os.cpu_count(), T["tasks_per_s"]),
                      "| peak RSS (VmHWM) of that run | %s |" % fmt_mib(T["peak_rss_kb"])]
        TB = res.get("throughput_bounded")
        if TB:
            lines += ["| the same with worker.max_in_flight = %d: tasks per CPU-second, wall-clock tasks/s, peak RSS "
                      "| %.0f, %.0f/s, %s |" % (TB["max_in_flight"], TB["tasks_per_cpu_s"] or 0, TB["tasks_per_s"],
                                               fmt_mib(TB["peak_rss_kb"]))]
        if M:
            lines += ["| RSS idle (consumer group joined, token fetched) | %s |" % fmt_mib(M["idle_rss_kb"]),
                      "| RSS with %d never-ready tasks in flight, each polled once and waiting for the next poll "
                      "| %s |" % (M["tasks"], fmt_mib(M["polled_rss_kb"])),
                      "| RSS per 1,000 tasks in flight | **%.0f KiB** |" % M["rss_per_1000_kb"],
                      "| peak RSS (VmHWM) of that run | %s |" % fmt_mib(M["peak_rss_kb"])]
        lines.append("")
    P = res.get("plan")
    if P:
        lines += ["## The optimal plan (simulated clock)", "",
                  "`dw-schedule-sim --limit`: " + P["limit"], "",
                  "`dw-schedule-sim --cold`: " + P.get("cold", "not run"), "",
                  "`dw-schedule-sim --backlog`: " + P["backlog"], "",
                  "Calls per task against median added latency: `%s`" % os.path.basename(P["curve"]), ""]
    if res["skipped"]:
        lines += ["Skipped: " + "; ".join("%s (%s)" % tuple(s) for s in res["skipped"]), ""]
    lines += ["## Definitions", ""]
    if R:
        lines += [
            "- Strategies run side by side, each with its own app (own budget) in one simulator, its own "
            "consumer group and output topics, on the same input events, so they see the same arrivals and "
            "the same readiness. Tasks are registered in the simulator just before their event is produced: "
            "readiness counts from the task's creation, as it does upstream.",
            "- **calls per resolved task**: delivery-task calls the simulator saw from the row's app "
            "(429s included) / tasks with a result or a dead letter.",
            "- **budget use**: the calls the simulator admitted while work was waiting, divided by the most "
            "calls the limits allow in that time. Work waits while some task is ready and not yet answered: "
            "the union over tasks of [ready, result] (never-ready tasks and tasks not ready yet do not count). "
            "The most calls: at most %d in any second and %d in any 60 s, taken greedily second by second "
            "over that union from a fresh budget, i.e. %d/s for the first 20 s, then %.2f/s sustained. "
            "(results.json also has it against a flat %.2f/s.)"
            % (RATE_PER_SECOND, RATE_PER_MINUTE, RATE_PER_SECOND, BUDGET, BUDGET),
            "- **429s**: answers 99991400 from the simulator to the row's app.",
            "- **max calls in 1 s**: most calls (429s included) the simulator received from the app in any "
            "1-second window.",
            "- **added latency**: the result's `resolved_at` minus the moment the task became ready in the "
            "simulator (its `ready_at_ms`, ms since its start on a monotonic clock). `resolved_at` is the "
            "worker's wall clock, which the system may step or slew during a run: it is mapped to the "
            "simulator's clock with pairs (`/_sim/stats` `now_ms`, wall clock) sampled once a second through "
            "the phase (%d samples, the slowest read %.1f ms; wall-clock steps of 50 ms or more: %s), so within "
            "about 1 ms. p50/p99 over the tasks that became ready; a ready task without a result (dead-lettered "
            "at the deadline, or unresolved) counts as infinite. A latency below -%d ms stops the run: the "
            "clocks would be mapped wrongly."
            % (R.get("clock_samples", 1), R["clock_rtt_ms"],
               ", ".join("%+.1f s at %.0f s" % (ms / 1000, at / 1000) for at, ms in R.get("clock_steps", []))
               or "none", LATENCY_FLOOR_MS)]
    if T:
        lines += ["- **tasks per CPU-second**: tasks / (utime + stime of the worker process, from /proc/PID/stat) "
                  "from the moment the events start to be produced until the group has committed them all; "
                  "each task is one event consumed, one API call, one result produced and its offset committed."]
    if M:
        lines += ["- **RSS per 1,000 tasks in flight**: (VmRSS with the tasks in flight - VmRSS idle) / "
                  "thousands of tasks. Each task has been polled once (first polls spread over %d s, so few "
                  "transfers at a time) and waits for its next poll." % M["spread_s"]]
    lines.append("")
    lines += budget_lines(res)
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    return text


def plot(res, out_dir, tmp):
    """Four bar charts (gnuplot, pngcairo): calls per resolved task, added latency of the paced
    and of the burst arrival, budget use."""
    R = res["realistic"]
    if not R:
        return None
    get = {(r["scenario"], r["strategy"]): r for r in R["rows"] if r["replicas"] == 1}
    strategies = [r["strategy"] for r in R["rows"] if r["scenario"] == "paced" and r["replicas"] == 1]

    def cols(p, b):
        """(value, label) for data columns 2..9."""
        def lat(ms):
            if ms is None:
                return None, "-"
            if ms == float("inf"):
                return None, "unresolved"
            v = ms / 1000.0
            return v, ("%.1f" % v if v < 10 else "%.0f" % v)

        def num(v, f):
            return (v, f % v) if v is not None else (None, "-")
        return [num(p["calls_per_resolved"], "%.1f"), num(b["calls_per_resolved"], "%.1f"),
                lat(p["latency_p50_ms"]), lat(p["latency_p99_ms"]), lat(b["latency_p50_ms"]), lat(b["latency_p99_ms"]),
                num(100 * p["utilisation"] if p["utilisation"] is not None else None, "%.0f"),
                num(100 * b["utilisation"] if b["utilisation"] is not None else None, "%.0f")]
    dat = os.path.join(tmp, "plot.dat")
    with open(dat, "w") as f:
        # 1 name, 2-9 values ('?' = none), 10-17 their labels, 18-25 where the labels go
        for st in strategies:
            c = cols(get[("paced", st)], get[("burst", st)])
            f.write('"%s" %s %s %s\n' % (
                st, " ".join("?" if v is None else "%.4f" % v for v, _ in c),
                " ".join('"%s"' % l for _, l in c), " ".join("%.4f" % (v or 0) for v, _ in c)))
    png = os.path.join(out_dir, "polling.png")

    def panel(title, a, b, ta, tb, ca, cb):
        return ("set title \"%s\"\n"
                "plot '%s' using %d:xtic(1) title '%s' lc rgb '%s', '' using %d title '%s' lc rgb '%s', \\\n"
                "     '' using ($0-0.17):%d:%d with labels offset 0,0.7 notitle, \\\n"
                "     '' using ($0+0.17):%d:%d with labels offset 0,0.7 notitle\n"
                % (title, dat, a, ta, ca, b, tb, cb, a + 16, a + 8, b + 16, b + 8))
    blue, orange, green, red = "#4C72B0", "#DD8452", "#55A868", "#C44E52"
    gp = ("set terminal pngcairo size 1400,1000 font 'Sans,11'\n"
          "set output '%s'\n"
          "set datafile missing '?'\n"
          "set style data histograms\nset style histogram clustered gap 1\n"
          "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset grid ytics\nset key below\n"
          "set yrange [0:*]\nset offsets 0, 0, graph 0.12, 0\n"
          "set multiplot layout 2,2 title \"delivery-worker polling strategies: %s (%s mode)\"\n"
          % (png, res["date"], res["mode"]))
    gp += panel("API calls per resolved task (lower is better)", 2, 3, "paced", "burst", blue, orange)
    gp += panel("Added latency, paced arrival (s from ready to result)", 4, 5, "p50", "p99", green, red)
    gp += panel("Added latency, burst arrival (s from ready to result)", 6, 7, "p50", "p99", green, red)
    gp += panel("Budget use while work waited (% of the calls the limits allow)", 8, 9, "paced", "burst", blue, orange)
    gp += "unset multiplot\n"
    gpf = os.path.join(tmp, "plot.gp")
    with open(gpf, "w") as f:
        f.write(gp)
    r = subprocess.run(["gnuplot", gpf], capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr[-1000:])
        return None
    return png


# ------------------------------------------------------------------ main

def unfinite(v):
    if v == "inf":
        return float("inf")
    if isinstance(v, dict):
        return {k: unfinite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unfinite(x) for x in v]
    return v


def finite(v):
    """JSON has no infinity: an unresolved latency is written as the string "inf"."""
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


def main():
    ap = argparse.ArgumentParser(description="delivery-worker polling benchmark (see bench/README.md)")
    ap.add_argument("--quick", action="store_true", help="a ~3 minute smoke run with small sizes")
    ap.add_argument("--strategies", help="comma-separated subset of: " + ",".join(s[0] for s in STRATEGIES))
    ap.add_argument("--replicas", type=int, default=3, help="replicas of the shared-budget scenario (0: skip)")
    ap.add_argument("--replicas-strategy", default="exponential")
    ap.add_argument("--phases", default="plan,realistic,throughput,memory,jitter,replicas")
    ap.add_argument("--backlog", type=int, help="tasks of the jitter and replicas phases (default: %s)"
                    % ", ".join("%d %s" % (v, k) for k, v in BACKLOG.items()))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    ap.add_argument("--selfcheck", action="store_true",
                    help="only check the mapping of wall-clock times to the simulator's clock (seconds)")
    ap.add_argument("--report-only", action="store_true",
                    help="only write results.md and the plot again from OUT/results.json")
    for k in ("arrival", "paced_s", "burst", "deadline_ms", "tput", "mem"):
        ap.add_argument("--" + k.replace("_", "-"), type=float if k == "arrival" else int,
                        help="override the mode's size: " + k)
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    size = dict(SIZES[mode])
    for k in size:
        v = getattr(args, k)
        if v is not None:
            size[k] = v
    phases = set(args.phases.split(","))
    wanted = args.strategies.split(",") if args.strategies else [s[0] for s in STRATEGIES]
    unknown = set(wanted) - {s[0] for s in STRATEGIES}
    if unknown:
        ap.error("unknown strategies: %s" % ", ".join(sorted(unknown)))
    clock_selfcheck()  # every run: a wrong mapping would make every latency of the run wrong
    if args.selfcheck:
        log("selfcheck: wall-clock times map to the simulator's clock across steps and slews")
        return
    os.makedirs(args.out, exist_ok=True)
    if args.report_only:
        with open(os.path.join(args.out, "results.json")) as f:
            res = unfinite(json.load(f))
        procs = h.Processes()
        print(report(res, args, res["command"], args.out))
        png = plot(res, args.out, procs.tmp)
        procs.remove()
        log("wrote %s%s" % (os.path.join(args.out, "results.md"), ", " + png if png else ""))
        return
    cmd = "bench/run.sh" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    started = time.monotonic()
    run_id = "r%x" % int(time.time())
    res = {"mode": mode, "size": size, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
           "load_before": "%.2f" % os.getloadavg()[0], "skipped": [], "realistic": None,
           "command": cmd}
    procs = h.Processes()
    log("work directory %s; binaries from %s" % (procs.tmp, BIN))

    # Which strategies does this build accept?
    strategies = []
    for s in STRATEGIES:
        if s[0] not in wanted:
            continue
        w = BenchWorker(procs, "check-" + s[0], "127.0.0.1:9092", "http://127.0.0.1:1", "g", "cli_x",
                        "t", "o", "d", strategy_env(s[2], size["deadline_ms"]))
        ok, msg = w.check()
        if ok:
            strategies.append(s)
        else:
            res["skipped"].append((s[0], "check-config rejects it: %s" % msg[0]))
            log("skipping %s: %s" % (s[0], msg[0]))
    if "plan" in phases:
        res["plan"] = phase_plan(args.out, 2000 if args.quick else 5000)
    kafka = None
    ok = False
    try:
        log("starting a Kafka broker")
        kafka = h.RealKafka(procs)
        log("broker at %s" % kafka.bootstrap)
        if "realistic" in phases and strategies:
            res["realistic"] = phase_realistic(procs, kafka, size, strategies, args.replicas,
                                               args.replicas_strategy, run_id, res["skipped"])
        if "throughput" in phases:
            res["throughput"] = phase_throughput(procs, kafka, size["tput"], run_id)
            log("throughput: %.0f tasks per CPU-second" % (res["throughput"]["tasks_per_cpu_s"] or 0))
            # The same with fewer tasks in flight: how much of the CPU goes to handling many at once.
            res["throughput_bounded"] = phase_throughput(procs, kafka, size["tput"], run_id, max_in_flight=1000)
            log("throughput: %.0f tasks per CPU-second with 1,000 in flight"
                % (res["throughput_bounded"]["tasks_per_cpu_s"] or 0))
        if "memory" in phases:
            res["memory"] = phase_memory(procs, kafka, size["mem"], run_id)
            log("memory: %.0f KiB per 1,000 tasks in flight" % res["memory"]["rss_per_1000_kb"])
        if "jitter" in phases:
            res["jitter"] = phase_budget(procs, kafka, "jitter", args.backlog or BACKLOG[mode], 1,
                                         ARRIVAL_JITTER_MS, run_id)
        if "replicas" in phases:
            res["replicas"] = phase_budget(procs, kafka, "replicas", args.backlog or BACKLOG[mode], 3,
                                           ARRIVAL_JITTER_MS, run_id)
        ok = True
    except Exception:
        import traceback
        traceback.print_exc()
        log(procs.log_tails(3000))
    finally:
        procs.close()
        if kafka:
            kafka.stop()
    res["elapsed_s"] = time.monotonic() - started
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(finite(res), f, indent=1, default=str)
    if not ok:
        log("benchmark failed; work directory kept: %s" % procs.tmp)
        sys.exit(1)
    text = report(res, args, cmd, args.out)
    png = plot(res, args.out, procs.tmp)
    print(text)
    log("wrote %s%s; whole run %.0f s" % (os.path.join(args.out, "results.md"),
                                          ", " + png if png else "", res["elapsed_s"]))
    if not args.keep:
        procs.remove()


if __name__ == "__main__":
    main()
