"""`delivery-worker preflight`'s ACL lines against a real Kafka 3.9 broker with an authorizer
(StandardAuthorizer; the PLAINTEXT listener's ANONYMOUS is the super user that sets things up)
over SASL_SSL: a SCRAM user granted what at-least-once needs but Write on the dead-letter
topic gets an ok line for each granted ACL, a FAIL with the kafka-acls command for the missing
one, and exit 1. A PLAIN user that may not list ACLs gets a skip (librdkafka 2.0.2 reads the
broker's refusal as an empty list), never an ok."""
import os
import tempfile
import uuid

import harness as h
from test_preflight_broker import line, preflight

AUTHORIZER = ("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "super.users=User:ANONYMOUS")


def test_acl_lines_against_an_authorizer(procs, own_broker, start_sim):
    kafka = own_broker(server_props=AUTHORIZER, start_args=["--sasl-ssl"])
    secure, ca = kafka.started["KAFKA_SASL_SSL_BOOTSTRAP"], kafka.started["KAFKA_CA_FILE"]
    users = {}
    for l in open(kafka.started["KAFKA_SASL_USERS"]):
        mech, user, password = l.split()
        users[mech] = (user, password)
    name = "it-acl-" + uuid.uuid4().hex[:8]
    topics = (name + ".in", name + ".out", name + ".dlq")
    for t in topics:
        h.kafkatool("create-topic", "-b", kafka.bootstrap, t, "2")
    scram, scram_pw = users["SCRAM-SHA-512"]
    principal = "User:" + scram
    grants = (("topic", topics[0], "READ,DESCRIBE"), ("group", name, "READ"),
              ("topic", topics[1], "WRITE,DESCRIBE"), ("cluster", "kafka-cluster", "DESCRIBE"))
    for kind, res, ops in grants:
        h.kafkatool("create-acl", "-b", kafka.bootstrap, kind, res, principal, ops)
    sim = start_sim()

    def config(mech, user):
        fd, path = tempfile.mkstemp(suffix=".conf", dir=procs.tmp)
        os.write(fd, ('kafka = { brokers = "%s"; group_id = "%s"; input_topic = "%s";\n'
                      '  results_topic = "%s"; dlq_topic = "%s";\n'
                      '  properties = ( ("security.protocol", "SASL_SSL"), '
                      '("sasl.mechanism", "%s"), ("sasl.username", "%s"), '
                      '("ssl.ca.location", "%s") ); };\n'
                      'feishu = { base_url = "%s"; app_id = "cli_test"; app_secret = "secret"; };\n'
                      % ((secure, name) + topics + (mech, user, ca, sim.url))).encode())
        os.close(fd)
        return path

    rc, out, err = preflight(config("SCRAM-SHA-512", scram), timeout_s=15,
                             env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.password=" + scram_pw})
    assert rc == 1, out + err
    line(out, "ok", "brokers")
    for what in ("ACL Read on topic " + topics[0], "ACL Read on group " + name,
                 "ACL Write on topic " + topics[1]):
        assert principal in line(out, "ok", what), out
    assert "not granted to " + principal in line(out, "FAIL", "ACL Write on topic " + topics[2]), out
    assert ("--allow-principal %s --operation Write --topic %s" % (principal, topics[2])) in out, out
    # Without Describe on the dead-letter topic, its metadata is refused too.
    line(out, "FAIL", "topic %s (kafka.dlq_topic)" % topics[2])
    assert scram_pw not in out + err, "the Kafka password was printed"

    plain, plain_pw = users["PLAIN"]
    rc, out, err = preflight(config("PLAIN", plain), timeout_s=15,
                             env={"DELIVERY_WORKER_KAFKA_PROPERTIES": "sasl.password=" + plain_pw})
    assert rc == 1, out + err
    line(out, "skip", "ACLs")
    assert "ACL Read" not in out, out
