"""A long feishu.base_url (a path prefix, as behind an API gateway) must never make the worker
ask the API about another task: each call names the event's own task in full, and the result
published for a task is the answer about that task. The URL here is longer than 511 bytes with
the task's path, and a task whose id is a prefix of the first one's is registered too, so that a
cut URL would fetch (and publish) that other task's answer. libcurl removes the "/." segments of
the prefix before sending, so the simulator sees its usual paths."""
import json
import os

import harness as h

URL_LEN = 511  # where a fixed buffer used to cut the URL


def padded_base_url(sim_url, task, cut_after):
    """sim_url plus "/." segments, so long that a URL cut at URL_LEN bytes keeps only cut_after
    characters of task."""
    fixed = len("/open-apis/hire/v1/websites/%s/delivery_tasks/" % h.WEBSITE)
    pad = URL_LEN - len(sim_url) - fixed - cut_after
    assert pad > 10, pad
    head = "/x/.." if pad % 2 else ""  # an odd length: one segment that cancels itself
    return sim_url + head + "/." * ((pad - len(head)) // 2)


def test_long_base_url_asks_only_about_the_events_task(procs, start_mock_kafka, start_sim, start_worker):
    kafka = start_mock_kafka(brokers=1)
    sim = start_sim()
    task = "long-url-task-0123456789-abcdefghijklmnop"
    other = task[:20]
    sim.register([{"website_id": h.WEBSITE, "delivery_task_id": t, "final": "succeeded"}
                  for t in (task, other)])
    base = padded_base_url(sim.url, task, len(other))
    assert len(base) > 400
    conf = os.path.join(procs.tmp, "long-url.conf")
    with open(conf, "w") as f:
        f.write("feishu = { base_url = \"%s\"; app_id = \"cli_test\"; };\n" % base)
    rc, out = h.check_config(conf, {"DELIVERY_WORKER_FEISHU_APP_SECRET": "secret"})
    assert rc == 0 and base in out, out
    worker = start_worker(kafka.bootstrap, base, group="it-long-url")
    h.produce(kafka.bootstrap, h.IN, [h.event(task)])
    h.wait_until(lambda: h.dump(kafka.bootstrap, h.OUT), 60, "the result")
    h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-long-url", h.IN), 30, "the commit")
    asked = [q.get("task_id") for q in sim.requests() if q.get("task_id")]
    assert asked and set(asked) == {task}, "the API was asked about %s" % sorted(set(asked))
    [res] = h.dump(kafka.bootstrap, h.OUT)
    v = json.loads(res["value"])
    assert res["key"] == task and v["delivery_task_id"] == task, v
    assert v["outcome"] == "succeeded" and v["application_id"] == "app-" + task, v
    assert worker.stop() == 0
