"""Keeps the documentation true to the binary and to the repository.

  docs.py check ROOT BIN_DIR    the config table of docs/configuration.md equals `delivery-worker
                                config-reference`; the metrics table of docs/operations.md
                                equals what a running worker exports on /metrics (names, types,
                                label names); the result and the dead letter that worker wrote
                                are valid against docs/schemas
  docs.py update ROOT BIN_DIR   rewrite the config table from `config-reference`
  docs.py static ROOT           no binary needed: every file or anchor a file of the repository
                                names exists; each generated table has one copy; the schemas in
                                docs/schemas are valid JSON Schema (2020-12) that accept their
                                examples and the tagged examples of docs/contracts.md and refuse
                                known-bad ones

The running worker: librdkafka's mock cluster (dw-kafkatool mock) and the API simulator
(dw-sim) on loopback, started by the integration tests' harness (tests/integration/harness.py),
one task that succeeds and one invalid event, so that the labelled counters have samples; then
/metrics is read, the output topics are dumped and everything is stopped."""
import json
import os
import re
import unicodedata
import subprocess
import sys

CONFIG_BEGIN, CONFIG_END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"
METRICS_BEGIN, METRICS_END = "<!-- metrics:begin -->", "<!-- metrics:end -->"
IN, OUT, DLQ = "hire.delivery_tasks.created", "hire.delivery_tasks.resolved", "hire.delivery_tasks.dlq"
CONFIG_DOC, METRICS_DOC = os.path.join("docs", "configuration.md"), os.path.join("docs", "operations.md")
SCHEMAS = os.path.join("docs", "schemas")


def between(text, begin, end, where):
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise SystemExit("FAIL: %s has no %s ... %s block" % (where, begin, end))
    return i + len(begin), j


def config_reference(bin_dir):
    return subprocess.run([os.path.join(bin_dir, "delivery-worker"), "config-reference"],
                          check=True, capture_output=True, text=True).stdout


def live_metrics(bin_dir):
    """Runs a worker briefly; returns the /metrics text."""
    return live_run(bin_dir)[0]


def harness(bin_dir):
    """The integration tests' harness (tests/integration/harness.py), on the binaries of
    bin_dir."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
    import harness as h
    h.BIN = bin_dir
    return h


def live_run(bin_dir):
    """Runs a worker briefly; returns the /metrics text and the records of the results and
    dead-letter topics (dw-kafkatool dump)."""
    h = harness(bin_dir)
    procs = h.Processes()
    ok = False
    try:
        kafka = h.MockKafka(procs, brokers=1, topics=((IN, 2), (OUT, 1), (DLQ, 1)))
        sim = h.Sim(procs)
        sim.register([{"website_id": h.WEBSITE, "delivery_task_id": "deploy-docs", "ready_after_ms": 0}])
        worker = h.Worker(procs, kafka.bootstrap, sim.url, group="deploy-docs").start()
        h.wait_until(lambda: worker.admin("/readyz")[0] == 200, 60, "the worker to be ready")
        h.produce(kafka.bootstrap, IN, [h.event("deploy-docs"), {"key": "bad", "value": "not json"}])

        def done():
            text = worker.admin("/metrics")[1]
            return text if ("dw_tasks_resolved_total{" in text and "dw_dead_letters_total{" in text) else None
        text = h.wait_until(done, 60, "a result and a dead letter in /metrics")
        worker.stop()
        outputs = {topic: h.dump(kafka.bootstrap, topic) for topic in (OUT, DLQ)}
        ok = True
        return text, outputs
    except AssertionError as e:
        raise AssertionError("%s\n%s\nwork directory kept: %s" % (e, procs.log_tails(3000), procs.tmp))
    finally:
        procs.close()
        if ok:
            procs.remove()


def parse_exposition(text):
    """{name: {"type": t, "labels": set of label names seen on its samples}}"""
    out = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\w+) (\w+)", line)
        if m:
            out[m.group(1)] = {"type": m.group(2), "labels": set()}
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(\w+?)(_bucket|_sum|_count)?(\{(.*)\})? ", line)
        name = m.group(1) + (m.group(2) or "")
        if name not in out and m.group(1) in out:
            name = m.group(1)
        labels = {kv.split("=")[0] for kv in re.findall(r'(\w+="(?:[^"\\]|\\.)*")', m.group(4) or "")}
        out.setdefault(name, {"type": "untyped", "labels": set()})["labels"] |= labels - {"le"}
    return out


def promtool_lint(exposition):
    """`promtool check metrics` on a /metrics text: Prometheus's own lint of names, units, help
    and types. Its complaints are failures."""
    r = subprocess.run(["promtool", "check", "metrics"], input=exposition, capture_output=True,
                       text=True)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    if r.returncode != 0 or problems:
        return ["promtool check metrics: %s" % p for p in problems or ["exit %d" % r.returncode]]
    print("promtool check metrics: the live /metrics passes Prometheus's lint")
    return []


def parse_doc_table(block):
    """Rows `| `name` | type | `label`, ... | what |` -> {name: {"type", "labels"}}"""
    out = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith(("`dw_", "`process_")):
            continue
        labels = set(re.findall(r"`(\w+)`", cells[2]))
        out[cells[0].strip("`")] = {"type": cells[1], "labels": labels}
    return out


def validators(root):
    """{schema file name: Draft 2020-12 validator} for docs/schemas/*.schema.json."""
    try:
        import jsonschema
    except ImportError:
        raise SystemExit("FAIL: python3 jsonschema missing: run deploy/setup.sh --test")
    out = {}
    if not os.path.isdir(os.path.join(root, SCHEMAS)):
        return out
    for name in sorted(os.listdir(os.path.join(root, SCHEMAS))):
        if name.endswith(".schema.json"):
            schema = json.load(open(os.path.join(root, SCHEMAS, name)))
            jsonschema.Draft202012Validator.check_schema(schema)
            out[name] = jsonschema.Draft202012Validator(schema)
    return out


def schema_errors(validator, instance):
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message)
            for e in validator.iter_errors(instance)]


def check_outputs(root, outputs):
    """The live worker's result and dead letter against the schemas."""
    v = validators(root)
    failures, seen = [], {OUT: 0, DLQ: 0}
    missing = [n for n in ("result.schema.json", "dead-letter.schema.json") if n not in v]
    if missing:
        return ["%s/%s is missing" % (SCHEMAS, n) for n in missing]
    for rec in outputs.get(OUT, []):
        seen[OUT] += 1
        for e in schema_errors(v["result.schema.json"], json.loads(rec["value"])):
            failures.append("result at offset %s: %s" % (rec["offset"], e))
    for rec in outputs.get(DLQ, []):
        seen[DLQ] += 1
        for e in schema_errors(v["dead-letter.schema.json"], rec["headers"]):
            failures.append("dead letter at offset %s: %s" % (rec["offset"], e))
    if not seen[OUT] or not seen[DLQ]:
        failures.append("the worker wrote %d result(s) and %d dead letter(s); expected one of each" %
                        (seen[OUT], seen[DLQ]))
    return failures


# Known-bad instances each schema must refuse, so that a schema that accepts anything fails.
BAD = {
    "event.schema.json": [
        {"delivery_task_id": "t1"},
        {"website_id": 7047318856652261676, "delivery_task_id": "t1"},
        {"website_id": "70473", "delivery_task_id": "../admin"},
        {"website_id": "70473"},
        {"website_id": "70473", "delivery_task_id": "t1", "tenant_key": "has space"},
        ["not", "an", "object"],
    ],
    "result.schema.json": [
        {"website_id": "70473", "delivery_task_id": "t1", "outcome": "succeeded", "polls": 1,
         "resolved_at": "2026-11-24T03:28:04.123Z"},
        {"website_id": "70473", "delivery_task_id": "t1", "outcome": "failed", "status_msg": "x",
         "application_id": "1", "polls": 1, "resolved_at": "2026-11-24T03:28:04.123Z"},
        {"website_id": "70473", "delivery_task_id": "t1", "outcome": "pending", "polls": 1,
         "resolved_at": "2026-11-24T03:28:04.123Z"},
    ],
    "dead-letter.schema.json": [
        {"dlq.reason": "task_not_found"},
        {"dlq.reason": "lost", "dlq.error_msg": "", "dlq.source_topic": "t", "dlq.source_partition": "0",
         "dlq.source_offset": "1", "dlq.attempts": "0", "dlq.failed_at": "2026-11-24T03:28:04.123Z"},
    ],
}


def check_schemas(root):
    """Each schema's own examples, the tagged examples of docs/contracts.md
    (`<!-- schema: NAME -->` on the line before a ```json block) and BAD."""
    failures = []
    v = validators(root)
    for name in ("event.schema.json", "result.schema.json", "dead-letter.schema.json"):
        if name not in v:
            failures.append("%s/%s is missing" % (SCHEMAS, name))
    for name, val in v.items():
        for n, ex in enumerate(val.schema.get("examples", [])):
            failures += ["%s example %d: %s" % (name, n, e) for e in schema_errors(val, ex)]
        for n, bad in enumerate(BAD.get(name, [])):
            if val.is_valid(bad):
                failures.append("%s accepts known-bad instance %d: %s" % (name, n, json.dumps(bad)))
    contracts = os.path.join(root, "docs", "contracts.md")
    tagged = 0
    if os.path.exists(contracts):
        for m in re.finditer(r"<!-- schema: ([\w.-]+) -->\n```json\n(.*?)\n```", open(contracts).read(), re.S):
            tagged += 1
            if m.group(1) not in v:
                failures.append("docs/contracts.md tags an example with unknown schema %s" % m.group(1))
                continue
            failures += ["docs/contracts.md example of %s: %s" % (m.group(1), e)
                         for e in schema_errors(v[m.group(1)], json.loads(m.group(2)))]
    if tagged < 3:
        failures.append("docs/contracts.md has %d tagged examples; expected the event, a result and "
                        "a dead letter's headers" % tagged)
    return failures


SKIP_DIRS = {".git", "node_modules", "corpus", "__pycache__"}
TEXT_EXT = {".md", ".c", ".h", ".py", ".sh", ".js", ".json", ".yml", ".yaml", ".txt", ".cmake", ".conf", ""}
TOP = ("worker", "include", "tests", "deploy", "bench", "docs", ".ci")


def repo_files(root):
    """Relative paths of the repository's text files (build trees, .git and fuzz corpora left out)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS and
                         not os.path.exists(os.path.join(d, x, "CMakeCache.txt")))
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(d, f), root)
            if f in (".gitignore", ".dockerignore"):
                continue  # they name what must not be in the repository
            if os.path.splitext(f)[1] in TEXT_EXT or f in ("Dockerfile", "run", "CMakeLists.txt"):
                out.append(rel)
    return out


def slug(heading):
    """GitHub's anchor of a Markdown heading."""
    h = re.sub(r"[`*_]|<[^>]*>", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    h = "".join(c for c in h if c in " -_" or unicodedata.category(c)[0] in "LN")
    return h.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        found, fence = set(), False
        for line in open(path, encoding="utf-8"):
            if line.startswith("```"):
                fence = not fence
            m = not fence and re.match(r"#{1,6} (.*)", line)
            if m:
                a, n = slug(m.group(1)), 1
                while a in found:
                    a, n = "%s-%d" % (slug(m.group(1)), n), n + 1
                found.add(a)
        cache[path] = found
    return cache[path]


def check_references(root):
    """Every .md file, repository path or Markdown link a file names exists (anchors too)."""
    files = repo_files(root)
    basenames = {os.path.basename(f) for f in files}
    failures = []

    said = set()

    def resolve(src, name, link):
        if link:  # a Markdown link: relative to the file, as GitHub reads it
            cands = [os.path.normpath(os.path.join(os.path.dirname(src), name))]
        else:
            cands = [os.path.normpath(name), os.path.normpath(os.path.join(os.path.dirname(src), name))]
        for c in cands:
            if not c.startswith("..") and os.path.exists(os.path.join(root, c)):
                return c
        if not link and "/" not in name and name in basenames:
            return name  # a bare file name (an output written under that name, say)
        return None

    for src in files:
        try:
            text = open(os.path.join(root, src), encoding="utf-8").read()
        except UnicodeDecodeError:
            continue
        refs = []
        if src.endswith(".md"):
            for m in re.finditer(r"\]\(([^)\s]+)\)", text):
                refs.append((m.start(), m.group(1), True))
        for m in re.finditer(r"(?<![\w./$-])((?:\.\.?/)?[\w.-]+(?:/[\w.-]+)*\.md)(#[\w-]+)?\b", text):
            refs.append((m.start(), m.group(0), False))
        for m in re.finditer(r"(?<![\w./$@-])((?:%s)/[\w./-]*)" % "|".join(re.escape(t) for t in TOP), text):
            after = text[m.end():m.end() + 1]
            if after and after in "*<{$[":
                continue
            refs.append((m.start(), m.group(1).rstrip(".-"), False))
        for pos, ref, link in refs:
            if re.match(r"[a-z]+:", ref):
                continue
            name, _, anchor = ref.partition("#")
            line = text.count("\n", 0, pos) + 1
            if (src, line, name, anchor) in said:
                continue
            said.add((src, line, name, anchor))
            target = resolve(src, name, link) if name else src
            if target is None:
                failures.append("%s:%d names %s, which the repository does not contain" % (src, line, name))
            elif anchor and target.endswith(".md") and anchor not in anchors(os.path.join(root, target)):
                failures.append("%s:%d links %s#%s, which has no such heading" % (src, line, target, anchor))
    return failures


TABLE_ROW = re.compile(r"^\|\s*`((?:kafka|feishu|poll|worker|processing|admin|log)\.[a-z_]+|dw_[a-z_]+)[`{]", re.M)


def check_one_copy(root):
    """Config keys and metrics are tabled only in the generated blocks."""
    failures = []
    for src in repo_files(root):
        if not src.endswith(".md"):
            continue
        text = open(os.path.join(root, src), encoding="utf-8").read()
        blocks = []
        for b, e in ((CONFIG_BEGIN, CONFIG_END), (METRICS_BEGIN, METRICS_END)):
            if b in text and e in text:
                blocks.append((text.find(b), text.find(e)))
        for m in TABLE_ROW.finditer(text):
            if not any(i <= m.start() <= j for i, j in blocks):
                failures.append("%s:%d tables %s outside the generated tables (%s, %s): link to them instead"
                                % (src, text.count("\n", 0, m.start()) + 1, m.group(1), CONFIG_DOC, METRICS_DOC))
    return failures


def static(root):
    failures = check_references(root) + check_one_copy(root) + check_schemas(root)
    for f in failures:
        print("FAIL " + f)
    if not failures:
        print("references: every file and anchor named exists; tables: one copy each; "
              "schemas: valid, examples accepted, known-bad instances refused")
    return 1 if failures else 0


def main():
    mode, root = sys.argv[1:3]
    if mode == "static":
        return static(root)
    bin_dir = sys.argv[3]
    readme = os.path.join(root, CONFIG_DOC)
    for doc in (CONFIG_DOC, METRICS_DOC):
        if not os.path.exists(os.path.join(root, doc)):
            raise SystemExit("FAIL: %s is missing" % doc)
    text = open(readme).read()
    ref = config_reference(bin_dir)
    i, j = between(text, CONFIG_BEGIN, CONFIG_END, CONFIG_DOC)
    if mode == "update":
        open(readme, "w").write(text[:i] + "\n" + ref + text[j:])
        print("%s: config table rewritten (%d keys)" % (CONFIG_DOC, ref.count("\n| `")))
        return 0
    failures = []
    if text[i:j].strip("\n") != ref.strip("\n"):
        failures.append("the config table of %s differs from `delivery-worker config-reference`:"
                        " run python3 tests/deploy/docs.py update . BIN_DIR" % CONFIG_DOC)
    else:
        print("config table: %d keys, equal to config-reference" % ref.count("\n| `"))

    text = open(os.path.join(root, METRICS_DOC)).read()
    i, j = between(text, METRICS_BEGIN, METRICS_END, METRICS_DOC)
    doc = parse_doc_table(text[i:j])
    exposition, outputs = live_run(bin_dir)
    live = parse_exposition(exposition)
    for name in sorted(set(live) | set(doc)):
        if name not in doc:
            failures.append("metric %s (%s) is exported but not in %s" % (name, live[name]["type"], METRICS_DOC))
        elif name not in live:
            failures.append("metric %s is in %s but not exported" % (name, METRICS_DOC))
        elif doc[name]["type"] != live[name]["type"]:
            failures.append("metric %s: the docs say %s, /metrics says %s" % (name, doc[name]["type"], live[name]["type"]))
        elif not live[name]["labels"] <= doc[name]["labels"]:
            failures.append("metric %s: labels %s on /metrics, the docs list %s" % (name, sorted(live[name]["labels"]), sorted(doc[name]["labels"])))
        elif live[name]["labels"] and live[name]["labels"] != doc[name]["labels"]:
            failures.append("metric %s: the docs list labels %s, /metrics has %s" % (name, sorted(doc[name]["labels"]), sorted(live[name]["labels"])))
    if not failures:
        print("metrics table: %d metrics, names, types and labels equal to a running worker's /metrics" % len(live))
    failures += promtool_lint(exposition)
    out_failures = check_outputs(root, outputs)
    if not out_failures:
        print("outputs: the worker's result and dead letter are valid against %s" % SCHEMAS)
    failures += out_failures
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
