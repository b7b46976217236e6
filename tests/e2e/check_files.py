#!/usr/bin/env python3
"""Checks of deploy/Dockerfile and docker-compose.yml that need no Docker engine (hadolint is
not in Debian): the Dockerfile is multi-stage, its runtime runs as a non-root user, has a
HEALTHCHECK and an exec-form ENTRYPOINT, installs only the runtime libraries and names only the
base image tests/e2e builds; the compose file has every service, distinct static instance ids,
and mounts files that exist. Prints one line per check; exit 1 on any failure."""
import json, os, re, sys

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
failures = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def dockerfile_stages(path):
    text = open(path).read().replace("\\\n", " ")
    stages, args = [], {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        elif word == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda g: args.get(g.group(1), ""), m.group(1))
            stages.append({"base": base, "name": m.group(2), "lines": []})
        else:
            stages[-1]["lines"].append((word, rest.strip()))
    return stages


def last(stage, stages, word):
    """The last WORD instruction in effect for stage (following FROM <earlier stage>)."""
    names = {s["name"]: s for s in stages}
    while stage:
        found = [r for w, r in stage["lines"] if w == word]
        if found:
            return found[-1]
        stage = names.get(stage["base"])
    return None


def main():
    df = os.path.join(root, "deploy", "Dockerfile")
    stages = dockerfile_stages(df)
    names = [s["name"] for s in stages]
    check(len(stages) >= 2 and "builder" in names and "runtime" in names,
          "Dockerfile is multi-stage with builder and runtime (%s)" % names)
    bases = {s["base"] for s in stages if s["base"] not in names}
    check(bases == {"debian:bookworm-slim"},
          "Dockerfile's external base images are only debian:bookworm-slim (%s)" % sorted(bases))
    final = stages[-1]
    check(final["name"] == "worker" and final["base"] == "runtime",
          "the default (last) stage is the worker runtime")
    builder = stages[names.index("builder")]
    runs = " ".join(r for w, r in builder["lines"] if w == "RUN")
    check("ctest -L unit" in runs, "the builder runs the unit tests (ctest -L unit)")
    rt = stages[names.index("runtime")]
    user = last(rt, stages, "USER") or "root"
    check(user.split(":")[0] not in ("root", "0"), "runtime runs as a non-root user (USER %s)" % user)
    hc = last(rt, stages, "HEALTHCHECK") or ""
    check("CMD" in hc and "NONE" not in hc.upper().split(), "runtime has a HEALTHCHECK (%s)" % hc[-60:])
    ep = last(final, stages, "ENTRYPOINT") or ""
    try:
        ep_list = json.loads(ep)
    except ValueError:
        ep_list = None
    check(isinstance(ep_list, list) and ep_list and ep_list[0].endswith("delivery-worker"),
          "the worker's ENTRYPOINT is exec form on the binary (%s)" % ep)
    rt_runs = " ".join(r for w, r in rt["lines"] if w == "RUN")
    check(not re.search(r"\S+-dev\b|\bgcc\b|\bcurl\b(?!4)|\bwget\b", rt_runs.replace("libcurl4", "")),
          "runtime installs no -dev packages, compiler, curl or wget")
    for lib in ("librdkafka1", "libcurl4", "libcjson1", "libconfig9", "libuv1", "libmicrohttpd12", "ca-certificates"):
        check(lib in rt_runs, "runtime installs %s" % lib)
    for w, r in (x for s in stages for x in s["lines"]):
        if w == "COPY" and "--from" not in r:
            src = r.split()[:-1]
            for s in src:
                check(os.path.exists(os.path.join(root, s)), "COPY source %s exists" % s)
    ignore = open(os.path.join(root, ".dockerignore")).read().split()
    check("build" in ignore and ".git" in ignore, ".dockerignore keeps build/ and .git out of the context")

    # docker-compose.yml: the normalized form docker-compose config printed (argv[1], JSON or
    # YAML), else the raw file if PyYAML is there.
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "docker-compose.yml")
    text = open(src).read()
    try:
        compose = json.loads(text)
    except ValueError:
        try:
            import yaml
        except ImportError:
            print("skip: compose structure (no JSON given and no PyYAML)")
            return
        compose = yaml.safe_load(text)
    svc = compose.get("services", {})
    for s in ("kafka", "topics", "sim", "generator", "worker-1", "worker-2", "prometheus", "grafana"):
        check(s in svc, "compose has service %s" % s)
    check(svc.get("kafka", {}).get("image", "").startswith("apache/kafka:"), "kafka is the apache/kafka image")
    env = svc.get("kafka", {}).get("environment", {})
    check("controller" in str(env.get("KAFKA_PROCESS_ROLES", "")), "kafka runs in KRaft mode (controller role)")
    ids = []
    for s in ("worker-1", "worker-2"):
        w = svc.get(s, {})
        ids.append((w.get("environment") or {}).get("DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID"))
        check(w.get("read_only") is True and any("/tmp" in t for t in (w.get("tmpfs") or [])),
              "%s: read-only root filesystem with a tmpfs at /tmp" % s)
        check((w.get("build") or {}).get("target") == "worker", "%s: built from deploy/Dockerfile's worker target" % s)
    check(None not in ids and len(set(ids)) == 2, "the two workers have distinct group_instance_ids (%s)" % ids)
    extra = svc.get("worker-extra", {})
    check("DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID" not in (extra.get("environment") or {}),
          "worker-extra (scalable) has no static instance id")
    for name, s in svc.items():
        for v in s.get("volumes") or []:
            host = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            if host and (host.startswith("/") or host.startswith(".")):
                path = host if host.startswith("/") else os.path.join(root, host)
                check(os.path.exists(path), "%s: mounted %s exists" % (name, os.path.relpath(path, root)))
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)


main()
