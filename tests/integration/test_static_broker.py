"""Static membership on a real broker: a replica with kafka.group_instance_id restarted within
the session timeout gets its partitions back without a rebalance, so the other replica of the
group is never interrupted (it logs no revoke or assignment after its first one)."""
import re

import harness as h
import scenario


def assignments(worker):
    return len(re.findall(r"(assigned|revoked|lost) \d+ partition", worker.log_text()))


def test_replica_restarted_in_its_session_keeps_its_partitions(start_sim, start_worker, broker):
    kafka = broker.topics("static", 4)
    sim = start_sim()
    props = (("session.timeout.ms", "10000"), ("heartbeat.interval.ms", "500"))
    a = start_worker(kafka.bootstrap, sim.url, group=kafka.group, properties=props,
                     env={"DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "replica-a"}, name="a1", topics=kafka)
    h.wait_until(lambda: "assigned 4 partition" in a.log_text(), 60, "replica a assigned")
    b = start_worker(kafka.bootstrap, sim.url, group=kafka.group, properties=props,
                     env={"DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "replica-b"}, name="b", topics=kafka)
    # The group settles with two partitions each.
    h.wait_until(lambda: re.search(r"assigned 2 partition", b.log_text()), 60, "replica b assigned")
    h.wait_until(lambda: re.search(r"revoked 2 partition", a.log_text()), 60, "replica a gave two up")
    settled = assignments(b)
    assert a.stop() == 0
    a2 = start_worker(kafka.bootstrap, sim.url, group=kafka.group, properties=props,
                      env={"DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID": "replica-a"}, name="a2", topics=kafka)
    h.wait_until(lambda: "assigned 2 partition" in a2.log_text(), 30, "replica a back with its partitions")
    # Work flows through both and b was never rebalanced.
    specs, records, expect = scenario.build("st", 40, never=False)
    sim.register(specs)
    h.produce(kafka.bootstrap, kafka.IN, records)
    h.wait_until(lambda: len(h.dump(kafka.bootstrap, kafka.OUT)) + len(h.dump(kafka.bootstrap, kafka.DLQ))
                 >= len(records), 90, "every output")
    scenario.check(h.dump(kafka.bootstrap, kafka.OUT), h.dump(kafka.bootstrap, kafka.DLQ), records, expect,
                   sim.requests())
    assert assignments(b) == settled, "replica b was rebalanced:\n" + b.log_text()[-3000:]
    assert a2.stop() == 0 and b.stop() == 0
