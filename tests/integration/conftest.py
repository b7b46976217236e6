"""pytest fixtures over harness.py for the integration tests (tests/integration/test_*.py).

  procs        the test's processes and work directory (harness.Processes)
  start_sim    factory: start_sim(*args) starts a dw-sim with those options
  start_mock_kafka  factory: start_mock_kafka(brokers=3, topics=...) starts librdkafka's mock cluster
  start_worker factory: start_worker(bootstrap, sim_url, **options) starts a delivery-worker with a
               test config (harness.Worker; start=False only writes the config); what still
               runs at the end of the test is stopped with SIGTERM
  broker       the shared real broker (one per ctest run or pytest run); each test takes
               its own topics with kafka = broker.topics(tag) (kafka.bootstrap, kafka.IN,
               kafka.OUT, kafka.DLQ; start_worker(..., topics=kafka)) and its own group ids
  own_broker   factory: own_broker(server_props=(), start_args=()) starts a broker for this
               test alone (for tests that restart, reconfigure or kill it); stopped at the end

On a failure the report holds the tail of every process's log, and the work directories are
kept (DW_KEEP_TMP=1 keeps them always). A run whose every test was skipped exits 77, which
ctest reports as skipped (SKIP_RETURN_CODE)."""
import os
import uuid

import pytest

import harness as h

SKIPPED = 77
_open = []  # Processes of the running test, its file and the whole run


class _Tracked(h.Processes):
    def __init__(self):
        super().__init__()
        self.failed = False
        _open.append(self)

    def finish(self):
        self.close()
        _open.remove(self)
        if not self.failed and os.environ.get("DW_KEEP_TMP") != "1":
            self.remove()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        text = []
        for p in _open:
            p.failed = True
            text.append("work directory kept: %s\n%s" % (p.tmp, p.log_tails()))
        rep.sections.append(("process logs", "\n".join(text)))


def pytest_sessionfinish(session, exitstatus):
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = tr.stats if tr else {}
    if exitstatus == 0 and stats.get("skipped") and not stats.get("passed"):
        session.exitstatus = SKIPPED


@pytest.fixture
def procs():
    p = _Tracked()
    yield p
    p.finish()


@pytest.fixture(scope="module")
def module_procs():
    """Processes that live as long as a test file (for a broker its tests share)."""
    p = _Tracked()
    yield p
    p.finish()


@pytest.fixture
def start_sim(procs):
    return lambda *args: h.Sim(procs, *args)


@pytest.fixture
def start_mock_kafka(procs):
    return lambda **kw: h.MockKafka(procs, **kw)


@pytest.fixture
def start_worker(procs):
    started = []

    def make(bootstrap, sim_url, start=True, **kw):
        w = h.Worker(procs, bootstrap, sim_url, **kw)
        started.append(w)
        return w.start() if start else w
    yield make
    for w in started:
        if w.proc is not None and w.proc.poll() is None:
            try:
                w.stop(timeout=10)
            except AssertionError:
                pass


@pytest.fixture
def own_broker(procs):
    brokers = []

    def make(cls=h.RealKafka, **kw):
        b = cls(procs, **kw)
        brokers.append(b)
        return b
    yield make
    for b in brokers:
        b.stop()


class SharedBroker:
    """A running broker that tests share: each creates its own topics."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def topics(self, tag, partitions=4):
        """Creates the topics it-<tag>-<run>.in, .out and .dlq with that many partitions, where
        <run> is new on every call, so that a broker kept running between runs hands no test
        the records, offsets or transactions of an earlier one; returns them as a
        harness.Topics whose bootstrap is the broker's (in place of a broker) and whose group
        (it-<tag>-<run>) is the consumer group id to use."""
        name = "it-%s-%s" % (tag, uuid.uuid4().hex[:8])
        t = h.Topics(name + ".in", name + ".out", name + ".dlq")
        t.bootstrap = self.bootstrap
        t.group = name
        for name in t.all():
            h.kafkatool("create-topic", "-b", self.bootstrap, name, str(partitions))
        return t


@pytest.fixture(scope="session")
def broker():
    """The broker ctest's kafka.start started (its address in the file DW_SHARED_BROKER_FILE
    names), or one started for this pytest run."""
    path = os.environ.get("DW_SHARED_BROKER_FILE")
    if path:
        if not os.path.exists(path):
            raise AssertionError("%s missing: the shared broker is not running (ctest starts it "
                                 "with the test kafka.start)" % path)
        yield SharedBroker(open(path).read().strip())
        return
    p = _Tracked()
    kafka = h.RealKafka(p)
    try:
        yield SharedBroker(kafka.bootstrap)
    finally:
        kafka.stop()
        p.finish()
