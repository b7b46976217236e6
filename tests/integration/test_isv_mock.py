"""Store (ISV) apps: tokens per tenant through the app_access_token and the pushed app_ticket.

1. Ticket from a file, three tenants: with no ticket yet the worker asks Feishu to push one
   (app_ticket/resend) and the store tenants' tasks wait (nothing is dead-lettered); once the
   ticket is written every task resolves, each tenant with its own token and its own rate
   budget (the simulator counts windows per app and tenant: no 429, at most the limit per tenant
   in any second, more than that for all tenants together). An event without tenant_key is
   dead-lettered as invalid_event. Revoking one tenant's tokens refreshes that tenant only.
2. Ticket from a Kafka topic with rotation: the pushed event envelope on a topic; tokens live
   4 s, so the app_access_token is fetched again with the old ticket after the simulator rotated
   it (10012): the worker asks for a resend, the new ticket arrives on the topic, and work
   goes on with nothing lost.
3. A self-built app still uses tenant_access_token/internal, with or without tenant_key.
4. A tenant the app is not installed in (an unknown tenant_key, refused by the tenant endpoint):
   its task is dead-lettered as deadline_exceeded at poll.deadline_ms, saying why, while the
   other tenants' tasks in the same partition resolve; the partition's offset is committed past
   it, and the refused tenant's token is asked for with backoff, not in a loop."""
import collections
import json
import os

import pytest

import harness as h

TICKETS = "feishu.app_ticket"
APP = "cli_isv"
SECRET = "isvsecret"
TENANTS = ["tenant-a", "tenant-b", "tenant-c"]
RATE = 5


def tasks(prefix, n, tenants):
    specs, records = [], []
    for i in range(n):
        tid = "%s-%d" % (prefix, i)
        specs.append({"website_id": h.WEBSITE, "delivery_task_id": tid, "ready_after_ms": 300})
        ev = h.event(tid, tenant_key=tenants[i % len(tenants)]) if tenants else h.event(tid)
        records.append(ev)
    return specs, records


# Each part has topics of its own on the one mock cluster ("refused": one partition, so the
# refused tenant's task shares it with the others).
PARTS = ("file", "topic", "self")
TENANT_PATH = "/open-apis/auth/v3/tenant_access_token"
APP_PATH = "/open-apis/auth/v3/app_access_token"


def topics(part):
    return ("%s.%s" % (h.IN, part), "%s.%s" % (h.OUT, part), "%s.%s" % (h.DLQ, part))


def topic_env(part):
    t = topics(part)
    return {"DELIVERY_WORKER_KAFKA_INPUT_TOPIC": t[0], "DELIVERY_WORKER_KAFKA_RESULTS_TOPIC": t[1],
            "DELIVERY_WORKER_KAFKA_DLQ_TOPIC": t[2]}


def outputs(kafka, part):
    return h.dump(kafka.bootstrap, topics(part)[1]), h.dump(kafka.bootstrap, topics(part)[2])


def wait_outputs(kafka, part, n, what):
    h.wait_until(lambda: sum(map(len, outputs(kafka, part))) >= n, 90, what)
    return outputs(kafka, part)


def store_worker(procs, kafka, sim, part, **env):
    e = {"DELIVERY_WORKER_FEISHU_APP_TYPE": "store",
         "DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": str(RATE)}
    e.update(topic_env(part))
    e.update(env)
    return h.Worker(procs, kafka.bootstrap, sim.url, group="it-isv-" + part, app=APP,
                    secret=SECRET, env=e, name="worker-" + part).start()


def ticket(sim):
    return sim.call("GET", "/_sim/ticket?app_id=" + APP)


def push_ticket(sim, value):
    return sim.call("POST", "/_sim/ticket", {"app_id": APP, "ticket": value})


def task_calls(sim):
    return [r for r in sim.requests() if r.get("task_id")]


def test_ticket_from_a_file_gives_each_tenant_its_token(procs, kafka):
    sim = h.Sim(procs, "--app", "cli_test:secret", "--app", "%s:%s" % (APP, SECRET),
                "--rate-per-second", str(RATE))
    path = os.path.join(procs.tmp, "app_ticket")
    specs, records = tasks("fa", 60, TENANTS)
    sim.register(specs)
    records.append(h.event("fa-nokey"))  # a store app cannot tell whose task this is
    worker = store_worker(procs, kafka, sim, "file", DELIVERY_WORKER_FEISHU_APP_TICKET_FILE=path)
    h.produce(kafka.bootstrap, topics("file")[0], records)

    # No ticket anywhere: a resend is asked for, the tasks wait, only the keyless one is out.
    h.wait_until(lambda: ticket(sim)["resends"] >= 1, 30, "an app_ticket/resend")
    h.wait_until(lambda: len(outputs(kafka, "file")[1]) >= 1, 30, "the keyless dead letter")
    out, dlq = outputs(kafka, "file")
    assert out == [] and len(dlq) == 1, (out, dlq)
    assert dlq[0]["headers"]["dlq.reason"] == "invalid_event", dlq
    assert "tenant_key" in dlq[0]["headers"]["dlq.error_msg"], dlq
    assert task_calls(sim) == [], "a task was polled without a token"

    # The pushed ticket reaches the file (as the event JSON): everything resolves.
    push_ticket(sim, "tk-file-1")
    with open(path + ".tmp", "w") as f:
        json.dump({"uuid": "u1", "token": "v", "ts": "1", "type": "event_callback",
                   "event": {"app_id": APP, "app_ticket": "tk-file-1", "type": "app_ticket"}}, f)
    os.rename(path + ".tmp", path)
    out, dlq = wait_outputs(kafka, "file", len(records), "every output")
    assert len(out) == 60 and len(dlq) == 1, (len(out), len(dlq))
    for r in out:
        v = json.loads(r["value"])
        assert v["outcome"] == "succeeded", v
        assert v["tenant_key"] == TENANTS[int(v["delivery_task_id"].split("-")[1]) % 3], v

    reqs = sim.requests()
    calls = [r for r in reqs if r.get("task_id")]
    assert all(r["code"] != 99991400 for r in calls), "a 429 with per-tenant budgets"
    per_second = collections.Counter((r["tenant_key"], r["ts_ms"] // 1000) for r in calls)
    assert max(per_second.values()) <= RATE, per_second
    together = collections.Counter(r["ts_ms"] // 1000 for r in calls)
    assert max(together.values()) > RATE, "tenants did not get budgets of their own: %s" % together
    tokens = {}
    for r in calls:  # every tenant polls with its own token
        tokens.setdefault(r["tenant_key"], set()).add(r["token"])
    assert set(tokens) == set(TENANTS), tokens
    assert not set.intersection(*tokens.values()), tokens
    paths = collections.Counter(r["path"] for r in reqs if not r.get("task_id"))
    assert paths["/open-apis/auth/v3/app_access_token"] >= 1, paths
    assert paths["/open-apis/auth/v3/tenant_access_token"] == 3, paths
    assert paths["/open-apis/auth/v3/tenant_access_token/internal"] == 0, paths

    # One tenant's tokens revoked: only that tenant fetches a new one.
    before = len(reqs)
    assert sim.call("POST", "/_sim/revoke?tenant_key=tenant-b", {})["revoked"] >= 1
    specs, records = tasks("fb", 30, TENANTS)
    sim.register(specs)
    h.produce(kafka.bootstrap, topics("file")[0], records)
    out, dlq = wait_outputs(kafka, "file", 61 + 30, "every output after the revocation")
    assert len(dlq) == 1, dlq
    later = sim.requests()[before:]
    refreshed = [r["tenant_key"] for r in later
                 if r["path"] == "/open-apis/auth/v3/tenant_access_token"]
    assert refreshed == ["tenant-b"], refreshed
    rejected = [r["task_id"] for r in later if r["code"] == 99991663]
    assert rejected and all(int(t.split("-")[1]) % 3 == 1 for t in rejected), rejected
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-isv-file", topics("file")[0]), 30,
                 "commits")
    assert worker.stop() == 0


def test_ticket_from_a_topic_survives_rotation(procs, kafka):
    sim = h.Sim(procs, "--app", "%s:%s" % (APP, SECRET), "--token-ttl", "4")
    push_ticket(sim, "tk-topic-1")

    def push_event(value):
        h.produce(kafka.bootstrap, TICKETS, [
            {"key": APP, "value": json.dumps({"type": "event_callback", "event": {
                "app_id": "cli_other", "app_ticket": "not-ours", "type": "app_ticket"}})},
            {"key": APP, "value": json.dumps({"schema": "2.0", "header": {
                "event_type": "app_ticket", "app_id": APP},
                "event": {"app_id": APP, "app_ticket": value, "type": "app_ticket"}})}])

    # An older ticket first, as a topic read from its start has it: the newest one is used.
    push_event("tk-topic-0")
    push_event("tk-topic-1")
    specs, records = tasks("ta", 20, TENANTS[:2])
    sim.register(specs)
    worker = store_worker(procs, kafka, sim, "topic", DELIVERY_WORKER_FEISHU_APP_TICKET_TOPIC=TICKETS)
    h.produce(kafka.bootstrap, topics("topic")[0], records)
    out, dlq = wait_outputs(kafka, "topic", 20, "the first outputs")
    assert len(out) == 20 and dlq == [], (len(out), dlq)
    # Had the old ticket been sent and refused (10012), the newer one read meanwhile is tried
    # at once, not after the resend backoff (>= 2 s).
    apps = [r for r in sim.requests() if r["path"] == APP_PATH and r["http"]]
    first_ok = next(i for i, r in enumerate(apps) if r["code"] == 0)
    if first_ok:
        assert apps[first_ok - 1]["code"] == 10012, apps[:first_ok + 1]
        assert apps[first_ok]["ts_ms"] - apps[first_ok - 1]["ts_ms"] < 1000, apps[:first_ok + 1]

    # Rotation: the old ticket no longer buys an app_access_token (tokens live 4 s).
    resends = ticket(sim)["resends"]
    push_ticket(sim, "tk-topic-2")
    h.wait_until(lambda: ticket(sim)["resends"] > resends, 30, "a resend after the rotation")
    specs, records = tasks("tb", 20, TENANTS[:2])
    sim.register(specs)
    h.produce(kafka.bootstrap, topics("topic")[0], records)
    push_event("tk-topic-2")
    out, dlq = wait_outputs(kafka, "topic", 40, "every output after the rotation")
    assert len(out) == 40 and dlq == [], (len(out), dlq)
    refused = [r for r in sim.requests() if r["path"] == "/open-apis/auth/v3/app_access_token"
               and r["code"] == 10012]
    assert refused, "the old ticket was never refused"
    assert "new app_ticket from feishu.app_ticket_topic" in worker.log_text()
    assert worker.stop() == 0


def test_self_built_app_uses_tenant_access_token(procs, kafka):
    """A self-built app serves its own tenant: tenant_key changes nothing but the result."""
    sim = h.Sim(procs)
    specs, _ = tasks("sb", 10, None)
    records = [h.event(s["delivery_task_id"], **({"tenant_key": "own-tenant"} if i % 2 else {}))
               for i, s in enumerate(specs)]
    sim.register(specs)
    worker = h.Worker(procs, kafka.bootstrap, sim.url, group="it-isv-self", name="worker-self",
                      env=topic_env("self")).start()
    h.produce(kafka.bootstrap, topics("self")[0], records)
    mine = lambda: [json.loads(r["value"]) for r in outputs(kafka, "self")[0]]
    h.wait_until(lambda: len(mine()) >= 10, 60, "self-built outputs")
    paths = collections.Counter(r["path"] for r in sim.requests() if not r.get("task_id"))
    assert set(paths) == {"/open-apis/auth/v3/tenant_access_token/internal"}, paths
    assert all(v["outcome"] == "succeeded" for v in mine()), mine()
    assert sum(1 for v in mine() if v.get("tenant_key") == "own-tenant") == 5, mine()
    assert worker.stop() == 0


def test_tenant_without_the_app_is_dead_lettered_alone(procs, kafka):
    sim = h.Sim(procs, "--app", "%s:%s" % (APP, SECRET), "--tenants", ",".join(TENANTS[:2]))
    push_ticket(sim, "tk-refused-1")
    path = os.path.join(procs.tmp, "app_ticket_refused")
    with open(path, "w") as f:
        f.write("tk-refused-1\n")
    specs, records = tasks("ra", 10, TENANTS[:2])
    sim.register(specs)
    records.insert(2, h.event("ra-gone", tenant_key="tenant-gone"))
    worker = store_worker(procs, kafka, sim, "refused", DELIVERY_WORKER_FEISHU_APP_TICKET_FILE=path,
                          DELIVERY_WORKER_POLL_FIRST_DELAY_MS="200",
                          DELIVERY_WORKER_POLL_DEADLINE_MS="6000")
    h.produce(kafka.bootstrap, topics("refused")[0], records)
    out, dlq = wait_outputs(kafka, "refused", 11, "every output, the refused tenant's too")
    assert len(out) == 10 and len(dlq) == 1, (len(out), dlq)
    assert all(json.loads(r["value"])["outcome"] == "succeeded" for r in out), out
    hdr = dlq[0]["headers"]
    assert json.loads(dlq[0]["value"])["tenant_key"] == "tenant-gone", dlq
    assert hdr["dlq.reason"] == "deadline_exceeded", hdr
    msg = hdr["dlq.error_msg"]
    assert "no tenant_access_token for tenant tenant-gone" in msg and "10013" in msg, msg
    assert hdr["dlq.attempts"] == "0", hdr
    # The partition is not held by the refused tenant: everything is committed.
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-isv-refused", topics("refused")[0]),
                 30, "the committed offset past the refused tenant's task")
    calls = task_calls(sim)
    assert calls and all(r["tenant_key"] in TENANTS[:2] for r in calls), calls
    asks = [r for r in sim.requests()
            if r["path"] == TENANT_PATH and r["tenant_key"] == "tenant-gone"]
    # Refusals are retried with backoff (0.5 s doubling) while the task waits, not in a loop.
    assert 1 <= len(asks) <= 6 and all(r["code"] == 10013 for r in asks), asks
    assert worker.stop() == 0


@pytest.fixture(scope="module")
def kafka(module_procs):
    """One mock cluster for the four parts, each with topics of its own."""
    return h.MockKafka(module_procs, topics=[(t, 2) for p in PARTS for t in topics(p)] +
                       [(t, 1) for t in topics("refused")] + [(TICKETS, 1)])
