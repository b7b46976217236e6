"""A drain that times out with tasks still polling ends the process cleanly: on SIGTERM the
worker waits worker.drain_timeout_ms for its tasks, gives up those still polling (one of them
with its call still on the way, another between calls), commits what finished, leaves the
group and exits 0. The given-up tasks are not committed past, so the next run takes them
again and finishes them. A /metrics scrape that comes while it leaves the group is answered
(or refused) without touching the Kafka client the close destroyed."""
import http.client
import os
import re
import signal
import threading

import harness as h

DRAIN_MS = 1500
HANG_MS = 8000      # the simulator holds the hanging call this long
REQUEST_MS = 6000   # feishu.request_timeout_ms: longer than the drain


def test_drain_timeout_gives_up_polling_tasks_and_exits_0(start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "dt-done"},
                  {"website_id": h.WEBSITE, "delivery_task_id": "dt-pending", "final": "never"},
                  # Its first call is held: on its way when the drain times out.
                  {"website_id": h.WEBSITE, "delivery_task_id": "dt-hang",
                   "errors": [{"kind": "timeout", "delay_ms": HANG_MS}]}])
    env = {"DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS": str(DRAIN_MS),
           "DELIVERY_WORKER_FEISHU_REQUEST_TIMEOUT_MS": str(REQUEST_MS),
           "DELIVERY_WORKER_POLL_DEADLINE_MS": "600000"}
    w = start_worker(kafka.bootstrap, sim.url, group="it-drain-timeout", env=env)
    h.produce(kafka.bootstrap, h.IN, [h.event("dt-done"), h.event("dt-pending")])
    h.wait_until(lambda: any(r["key"] == "dt-done" for r in h.dump(kafka.bootstrap, h.OUT)), 30,
                 "the ready task's result")
    h.produce(kafka.bootstrap, h.IN, [h.event("dt-hang")])
    h.wait_until(lambda: sim.stats(tasks=True)["tasks"].get("dt-hang", 0) >= 1, 30,
                 "dt-hang's first call")

    rc = w.stop()
    text = w.log_text()
    assert "drain timeout: 2 task(s) still polling are left for the next run" in text, text[-3000:]
    assert rc == 0, "exit %s after SIGTERM:\n%s" % (rc, text[-3000:])

    # The next run finishes both: nothing was committed past them.
    # dt-pending is ready now (registering it again replaces it).
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "dt-pending"}])
    again = start_worker(kafka.bootstrap, sim.url, group="it-drain-timeout", name="again", env=env)
    h.wait_until(lambda: {"dt-pending", "dt-hang"} <= {r["key"] for r in h.dump(kafka.bootstrap, h.OUT)},
                 60, "the given-up tasks' results from the next run")
    assert again.stop() == 0


def test_assignment_while_draining_then_drain_timeout_exits_0(start_mock_kafka, start_sim, start_worker):
    """A replica draining when another leaves the group is handed the other's partitions
    mid-drain (they stay paused); when its drain times out it still commits, leaves and exits
    0. Both replicas stop at once, as a scale-down does."""
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    tasks = ["dw-%02d" % i for i in range(16)]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "final": "never"} for t in tasks])
    env = {"DELIVERY_WORKER_FEISHU_REQUEST_TIMEOUT_MS": str(REQUEST_MS),
           "DELIVERY_WORKER_POLL_DEADLINE_MS": "600000"}
    a = start_worker(kafka.bootstrap, sim.url, group="it-drain-assign", name="a",
                     env=dict(env, DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS="10000",
                              DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID="drain-a"))
    b = start_worker(kafka.bootstrap, sim.url, group="it-drain-assign", name="b",
                     env=dict(env, DELIVERY_WORKER_WORKER_DRAIN_TIMEOUT_MS="500"))
    h.produce(kafka.bootstrap, h.IN, [h.event(t) for t in tasks])

    def in_flight(w):
        return w.metrics().get("dw_tasks_in_flight", 0)
    h.wait_until(lambda: in_flight(a) > 0 and in_flight(b) > 0 and
                 in_flight(a) + in_flight(b) == len(tasks), 60, "both replicas polling every task")
    a.proc.stopping = b.proc.stopping = True
    a.proc.send_signal(signal.SIGTERM)
    h.wait_until(lambda: "draining" in a.log_text(), 30, "a draining")
    rb = b.stop()
    ra = a.proc.wait(timeout=60 * h.SLOW)  # a second SIGTERM would end it at once
    text = a.log_text()
    assert rb == 0, "b exited %s:\n%s" % (rb, b.log_text()[-3000:])
    assert ra == 0, "a exited %s:\n%s" % (ra, text[-3000:])
    assert "still polling are left for the next run" in text, text[-3000:]
    assert re.search(r"draining .*\n(.*\n)*.*assigned [1-9]\d* partition", text), \
        "a was not handed b's partitions while draining:\n" + text[-3000:]


def test_metrics_scraped_while_leaving_the_group_exits_0(start_mock_kafka, start_sim, start_worker):
    """Prometheus keeps its connection to /metrics open and scrapes on it while the worker
    stops: a scrape served after the consumer's Kafka client is destroyed, before the consumer
    is freed, must not read the lag from it. Freed memory is filled (glibc's MALLOC_PERTURB_,
    ASan's max_free_fill_size: librdkafka is not instrumented), so reading it crashes."""
    kafka = start_mock_kafka()
    sim = start_sim("--latency-ms", "1-5")
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "dt-scraped"}])
    asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS", ""), "max_free_fill_size=1048576") if o)
    w = start_worker(kafka.bootstrap, sim.url, group="it-drain-scraped",
                     env={"MALLOC_PERTURB_": "165", "ASAN_OPTIONS": asan})
    h.produce(kafka.bootstrap, h.IN, [h.event("dt-scraped")])
    h.wait_until(lambda: any(r["key"] == "dt-scraped" for r in h.dump(kafka.bootstrap, h.OUT)), 30,
                 "the task's result")
    scrapes = []

    def scrape():
        conn = http.client.HTTPConnection("127.0.0.1", w.admin_port, timeout=10)
        while w.proc.poll() is None:
            try:
                conn.request("GET", "/metrics")
                scrapes.append(conn.getresponse().read())
            except (OSError, http.client.HTTPException):
                conn.close()  # refused or closed: the endpoint is gone, or going
                conn = http.client.HTTPConnection("127.0.0.1", w.admin_port, timeout=10)
        conn.close()
    scraper = threading.Thread(target=scrape)
    scraper.start()
    h.wait_until(lambda: scrapes, 30, "the first scrape")
    rc = w.stop()
    scraper.join()
    assert rc == 0, "exit %s after SIGTERM while scraped:\n%s" % (rc, w.log_text()[-3000:])
