#!/usr/bin/env python3
"""Checks of deploy/Dockerfile and docker-compose.yml that need no Docker engine (hadolint is
not in Debian): the Dockerfile is multi-stage, builds on Debian 13 (the base image tests/e2e
builds) and runs the unit tests there; its runtime is FROM scratch with only files copied from
the builder (no shell, no config file), runs as a non-root user, has an exec-form HEALTHCHECK
by the worker's own `healthcheck` and an exec-form ENTRYPOINT; the tools image installs only
runtime libraries; the compose file has every service, distinct static instance ids, runs the
workers on the config it mounts, and mounts files that exist. Prints one line per check; exit
1 on any failure."""
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
    check(bases == {"debian:trixie-slim", "scratch"},
          "Dockerfile's external bases are only debian:trixie-slim and scratch (%s)" % sorted(bases))
    final = stages[-1]
    check(final["name"] == "worker" and final["base"] == "runtime",
          "the default (last) stage is the worker runtime")
    builder = stages[names.index("builder")]
    runs = " ".join(r for w, r in builder["lines"] if w == "RUN")
    check("ctest -L unit" in runs, "the builder runs the unit tests (ctest -L unit)")
    check("ldd " in runs, "the builder collects the worker's shared-library closure with ldd")
    rt = stages[names.index("runtime")]
    check(rt["base"] == "scratch", "runtime is FROM scratch (%s)" % rt["base"])
    check(not [r for w, r in rt["lines"] if w == "RUN"], "runtime has no RUN (no shell in it)")
    copies = [r for w, r in rt["lines"] if w == "COPY"]
    check(copies and all(r.startswith("--from=builder") for r in copies),
          "runtime holds only files laid out by the builder (%s)" % copies)
    user = last(rt, stages, "USER") or "root"
    check(user.split(":")[0] not in ("root", "0"), "runtime runs as a non-root user (USER %s)" % user)
    hc = last(rt, stages, "HEALTHCHECK") or ""
    hc_cmd = hc[hc.find("CMD") + 3:].strip() if "CMD" in hc else ""
    try:
        hc_list = json.loads(hc_cmd)
    except ValueError:
        hc_list = None
    check(isinstance(hc_list, list) and len(hc_list) >= 2 and hc_list[0].endswith("delivery-worker")
          and hc_list[1] == "healthcheck",
          "runtime's HEALTHCHECK is exec form `delivery-worker healthcheck` (%s)" % hc_cmd)
    ep = last(final, stages, "ENTRYPOINT") or ""
    try:
        ep_list = json.loads(ep)
    except ValueError:
        ep_list = None
    check(isinstance(ep_list, list) and ep_list and ep_list[0].endswith("delivery-worker"),
          "the worker's ENTRYPOINT is exec form on the binary (%s)" % ep)
    cmd = last(final, stages, "CMD") or ""
    check(cmd and "-c" not in json.loads(cmd),
          "the worker's CMD names no config file: defaults and environment (%s)" % cmd)
    tools = stages[names.index("tools")]
    tools_runs = " ".join(r for w, r in tools["lines"] if w == "RUN")
    check(not re.search(r"\S+-dev\b|\bgcc\b|\bcurl\b(?!4)|\bwget\b", tools_runs.replace("libcurl4", "")),
          "tools installs no -dev packages, compiler, curl or wget")
    for lib in ("librdkafka1", "libcurl4t64", "libcjson1", "libconfig11", "libuv1t64",
                "libmicrohttpd12t64", "ca-certificates"):
        check(lib in tools_runs, "tools installs %s" % lib)
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
    for s in ("worker-1", "worker-2", "worker-extra"):
        w = svc.get(s, {})
        command = w.get("command") or []
        if isinstance(command, str):
            command = command.split()
        conf = command[command.index("-c") + 1] if "-c" in command[:-1] else None
        mounts = [v.get("target") if isinstance(v, dict) else v.split(":")[1]
                  for v in w.get("volumes") or []]
        check(conf is not None and conf in mounts,
              "%s: runs on the config file it mounts (command %s)" % (s, command))
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
