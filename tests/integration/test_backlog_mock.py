"""A backlog makes calls scarce. The worker first learns when tasks become ready (log-normal,
median 1.5 s), then gets 200 tasks at once against a budget of 20 calls a second: the price of
a call (dw_schedule_call_price) falls below 1 while tasks wait for the budget and returns to 1
once they are done, every task is resolved, with few calls beyond one per task, and no 429."""
import math

import harness as h

LEARN, BACKLOG = 40, 200


def ready_after(i, n):
    """Log-normal readiness (median 1.5 s, sigma 0.5) at evenly spaced quantiles."""
    q = (i + 0.5) / n
    z = math.sqrt(2) * erfinv(2 * q - 1)
    return int(1500 * math.exp(0.5 * z))


def erfinv(y):
    """The inverse error function by bisection (enough for test data)."""
    lo, hi = -6.0, 6.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if math.erf(mid) < y:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def tasks(prefix, n):
    return [{"website_id": h.WEBSITE, "delivery_task_id": "%s-%04d" % (prefix, i),
             "ready_after_ms": ready_after(i, n)} for i in range(n)]


def test_backlog_lowers_the_price_of_a_call(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim()
    worker = start_worker(kafka.bootstrap, sim.url, group="it-backlog",
                          env={"DELIVERY_WORKER_FEISHU_RATE_PER_SECOND": "20",
                               "DELIVERY_WORKER_FEISHU_RATE_PER_MINUTE": "1000",
                               "DELIVERY_WORKER_POLL_MAX_INTERVAL_MS": "15000",
                               "DELIVERY_WORKER_POLL_DEADLINE_MS": "120000"})

    # Learning: a few dozen tasks, spread out, give the adaptive plan its model.
    learn = tasks("bl-learn", LEARN)
    sim.register(learn)
    h.produce(kafka.bootstrap, h.IN, [h.event(t["delivery_task_id"]) for t in learn])
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, h.OUT)) >= LEARN, 120,
                 "%d results of the learning tasks" % LEARN)
    # They came as a burst too (all at once, polled every 200 ms before there is a model): the
    # price may have fallen; with nothing waiting it returns to 1, a level a second.
    h.wait_until(lambda: worker.metrics()["dw_schedule_call_price"] == 1, 60,
                 "the price of a call at 1 before the backlog")
    calls_before = sim.stats()["calls"]
    h.log("backlog: learnt from %d tasks, price at 1" % LEARN)

    # The backlog: 200 tasks at once, 10 s of calls at one call per task.
    backlog = tasks("bl-back", BACKLOG)
    sim.register(backlog)
    h.produce(kafka.bootstrap, h.IN, [h.event(t["delivery_task_id"]) for t in backlog])
    lowest = [1.0]

    def done():
        lowest[0] = min(lowest[0], worker.metrics()["dw_schedule_call_price"])
        return len(h.dump(kafka.bootstrap, h.OUT)) >= LEARN + BACKLOG
    h.wait_until(done, 180, "%d results" % (LEARN + BACKLOG), interval=0.5)
    st = sim.stats()
    calls = st["calls"] - calls_before
    h.log("backlog: %d calls for %d tasks (%.3f per task), lowest price %g, %d rate limited"
          % (calls, BACKLOG, calls / BACKLOG, lowest[0], st["rate_limited"]))
    assert lowest[0] < 1, lowest
    assert st["rate_limited"] == 0, st
    assert calls <= 1.25 * BACKLOG, (calls, BACKLOG)

    # The backlog is over: the price comes back to 1, a level a second, though nothing is left
    # to drive the poller (at most 12 levels).
    h.wait_until(lambda: worker.metrics()["dw_schedule_call_price"] == 1, 30,
                 "the price of a call back at 1")
    assert worker.stop(timeout=60) == 0
