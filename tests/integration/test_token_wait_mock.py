"""A token wait is a pause like any other: with a self-built app's token endpoint not answering
(nobody listens there), a task cannot get its first call; it is dead-lettered as
deadline_exceeded at poll.deadline_ms, saying why, instead of holding its partition's offset
for as long as the endpoint is down. The app's credentials were not refused, so this is no
app-level failure: /readyz stays 200."""
import socket

import harness as h

DEADLINE_MS = 3000


def test_token_wait_reaches_the_deadline(start_mock_kafka, start_worker):
    kafka = start_mock_kafka()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        nowhere = "http://127.0.0.1:%d" % closed.getsockname()[1]
        worker = start_worker(kafka.bootstrap, nowhere, group="it-token-wait",
                              env={"DELIVERY_WORKER_POLL_DEADLINE_MS": str(DEADLINE_MS)})
        h.produce(kafka.bootstrap, h.IN, [h.event("tw-1")])
        h.wait_until(lambda: h.dump(kafka.bootstrap, h.DLQ), DEADLINE_MS / 1000 + 30,
                     "the task dead-lettered while no token can be had")
        dlq = h.dump(kafka.bootstrap, h.DLQ)
        assert len(dlq) == 1 and dlq[0]["key"] == "tw-1", dlq
        hdr = dlq[0]["headers"]
        assert hdr["dlq.reason"] == "deadline_exceeded", hdr
        assert "no tenant_access_token" in hdr["dlq.error_msg"], hdr
        assert "unreachable" in hdr["dlq.error_msg"], hdr
        assert hdr["dlq.attempts"] == "0", hdr
        h.wait_until(lambda: h.all_committed(kafka.bootstrap, "it-token-wait", h.IN), 30,
                     "the offset committed past the task")
        status, body = worker.admin("/readyz")
        assert status == 200, (status, body)
        assert worker.stop() == 0
