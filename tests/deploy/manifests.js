// Validates deploy/kubernetes: every manifest against the Kubernetes OpenAPI schema (the
// validators kubernetes-models compiles from it) or, for KEDA's ScaledObject and the Prometheus
// Operator's PodMonitor, against the schema of their CRDs (@kubernetes-models/keda,
// @kubernetes-models/prometheus-operator); the Secret of the kustomization's secretGenerator as
// kustomize makes it; then what the schemas cannot know: that the pieces fit together and with
// the worker's effective configuration.
//
//   node manifests.js extract-config DIR            print the ConfigMap's worker.conf
//   node manifests.js check DIR EFFECTIVE_CONF      validate (EFFECTIVE_CONF: the output of
//                                                   `delivery-worker check-config` on it)
// NODE_PATH must name the node_modules of tests/deploy/package.json (npm-install.sh).
"use strict";
const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

const failures = [];
let checks = 0;
function expect(cond, what) {
  checks++;
  if (!cond) failures.push(what);
}

// The keys of an env file ("key=value" lines; # comments and blank lines skipped).
function envKeys(file) {
  return fs.readFileSync(file, "utf8").split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#")).map((l) => l.split("=")[0]);
}

// The Secret a secretGenerator entry makes (its name before kustomize's hash suffix, which
// kustomize also writes into the references). An env file the operator writes and never
// commits is read from its committed ".example" while it does not exist.
function generatedSecret(dir, gen) {
  const data = {};
  for (const env of gen.envs || []) {
    const file = path.join(dir, env);
    for (const k of envKeys(fs.existsSync(file) ? file : file + ".example")) data[k] = "";
  }
  for (const f of gen.files || []) data[f.includes("=") ? f.split("=")[0] : path.basename(f)] = "";
  for (const l of gen.literals || []) data[l.split("=")[0]] = "";
  return { apiVersion: "v1", kind: "Secret", metadata: { name: gen.name }, type: "Opaque", data };
}

function loadDir(dir) {
  const kust = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
  const docs = [];
  for (const file of kust.resources || []) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    for (const d of YAML.parseAllDocuments(text)) {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
      const obj = d.toJS();
      if (obj) docs.push({ file, obj });
    }
  }
  for (const gen of kust.secretGenerator || [])
    docs.push({ file: "kustomization.yaml secretGenerator", obj: generatedSecret(dir, gen) });
  return { kust, docs };
}

// The ports a NetworkPolicy rule allows ([] = every port), as {port, protocol}.
function rulePorts(rule) {
  return (rule.ports || []).map((p) => ({ port: p.port, protocol: p.protocol || "TCP" }));
}

// Whether the policy's egress lets TCP or UDP traffic to port out (to some destination).
function egressAllows(np, port, protocol) {
  return (np.spec.egress || []).some((r) => {
    const ports = rulePorts(r);
    return !ports.length || ports.some((p) => p.port === port && p.protocol === protocol);
  });
}

// apiVersion + kind -> the model class whose validate() applies the schema.
function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const crds = { "keda.sh": "@kubernetes-models/keda",
    "monitoring.coreos.com": "@kubernetes-models/prometheus-operator" };
  const mod = crds[group] ? `${crds[group]}/${group}/${version}/${kind}`
    : group === "" ? `kubernetes-models/${version}/${kind}`
    : `kubernetes-models/${group}/${version}/${kind}`;
  return require(mod)[kind];
}

function find(docs, kind, pred = () => true) {
  return docs.map((d) => d.obj).filter((o) => o.kind === kind && pred(o));
}

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

// The effective config printed by check-config: "group = {", "  key = value;".
function parseEffective(text) {
  const cfg = {};
  let group = null;
  for (const line of text.split("\n")) {
    let m;
    if ((m = line.match(/^(\w+) = \{$/))) group = m[1];
    else if ((m = line.match(/^ {2}(\w+) = (.*);(\s*#.*)?$/)) && group)
      cfg[`${group}.${m[1]}`] = m[2].replace(/^"(.*)"$/, "$1");
    else if ((m = line.match(/^\s+\("([^"]+)", "([^"]*)"\),?$/)))
      cfg[`kafka.properties.${m[1]}`] = m[2];
  }
  return cfg;
}

const MiB = 1024 * 1024;
function bytes(q) {
  const m = String(q).match(/^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/);
  if (!m) return NaN;
  const unit = { Ki: 1024, Mi: MiB, Gi: 1024 * MiB, k: 1e3, M: 1e6, G: 1e9 }[m[2]] || 1;
  return parseFloat(m[1]) * unit;
}

function check(dir, effectiveFile) {
  const { kust, docs } = loadDir(dir);

  // kustomization.yaml lists every manifest of the directory, and only those.
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
  expect(JSON.stringify([...files].sort()) === JSON.stringify([...(kust.resources || [])].sort()),
    `kustomization.yaml resources ${JSON.stringify(kust.resources)} != files ${JSON.stringify(files)}`);

  // Schemas.
  for (const { file, obj } of docs) {
    let Model;
    try {
      Model = modelFor(obj.apiVersion, obj.kind);
    } catch (e) {
      expect(false, `${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
      checks++;
    } catch (e) {
      expect(false, `${file}: ${obj.kind} ${obj.metadata && obj.metadata.name}: ${e.message}`);
    }
    expect(obj.metadata && obj.metadata.name, `${file}: no metadata.name`);
  }

  const cfg = parseEffective(fs.readFileSync(effectiveFile, "utf8"));
  expect(cfg["worker.drain_timeout_ms"] && cfg["admin.listen"], "effective config not parsed");

  // The StatefulSet.
  const [sts] = find(docs, "StatefulSet");
  expect(sts, "no StatefulSet");
  if (!sts) return;
  const pod = sts.spec.template;
  const podLabels = pod.metadata.labels;
  expect(matches(sts.spec.selector.matchLabels, podLabels), "StatefulSet selector does not match its pods");
  const c = pod.spec.containers.find((x) => x.name === "delivery-worker");
  expect(c, "no container delivery-worker");
  if (!c) return;

  const env = Object.fromEntries((c.env || []).map((e) => [e.name, e]));
  const iid = env.DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID;
  expect(iid && iid.valueFrom && iid.valueFrom.fieldRef && iid.valueFrom.fieldRef.fieldPath === "metadata.name",
    "DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID must come from metadata.name (downward API)");
  expect(!cfg["kafka.transactional_id"],
    "kafka.transactional_id must stay empty so that it derives from the pod name");

  // Headless governing Service.
  const headless = find(docs, "Service", (s) => s.metadata.name === sts.spec.serviceName)[0];
  expect(headless && headless.spec.clusterIP === "None", `serviceName ${sts.spec.serviceName} is not a headless Service`);
  expect(headless && matches(headless.spec.selector, podLabels), "headless Service does not select the pods");

  // Admin port, probes.
  const adminPort = parseInt(cfg["admin.listen"].split(":").pop(), 10);
  const port = (c.ports || []).find((p) => p.name === "admin");
  expect(port && port.containerPort === adminPort, `container port admin != admin.listen port ${adminPort}`);
  const probePort = (p) => p && p.httpGet && (p.httpGet.port === "admin" || p.httpGet.port === adminPort);
  expect(c.livenessProbe && c.livenessProbe.httpGet && c.livenessProbe.httpGet.path === "/healthz" &&
    probePort(c.livenessProbe), "liveness probe must GET /healthz on the admin port");
  expect(c.readinessProbe && c.readinessProbe.httpGet && c.readinessProbe.httpGet.path === "/readyz" &&
    probePort(c.readinessProbe), "readiness probe must GET /readyz on the admin port");

  // Config and secret mounted where the config says.
  const args = c.args || [];
  const confPath = args[args.indexOf("-c") + 1];
  expect(args[0] === "run" && confPath, "args must be run -c FILE");
  const mountFor = (file) => (c.volumeMounts || []).find((m) => file && file.startsWith(m.mountPath + "/"));
  const vol = (name) => (pod.spec.volumes || []).find((v) => v.name === name);
  const confMount = mountFor(confPath);
  const cm = confMount && vol(confMount.name) && vol(confMount.name).configMap;
  expect(cm && find(docs, "ConfigMap", (x) => x.metadata.name === cm.name).length,
    `${confPath} is not mounted from a ConfigMap of the kustomization`);
  // The test runs check-config with the secret file overridden: take the path from the
  // ConfigMap itself.
  const rawConf = find(docs, "ConfigMap", (x) => x.data && x.data["worker.conf"])[0].data["worker.conf"];
  const secretFile = (rawConf.match(/^\s*app_secret_file\s*=\s*"([^"]+)"/m) || [])[1];
  const secMount = mountFor(secretFile);
  const sec = secMount && vol(secMount.name) && vol(secMount.name).secret;
  const secObj = sec && find(docs, "Secret", (x) => x.metadata.name === sec.secretName)[0];
  const secKey = secretFile && path.basename(secretFile);
  expect(secObj && ((secObj.stringData && secKey in secObj.stringData) || (secObj.data && secKey in secObj.data)) &&
    (!sec.items || sec.items.some((i) => i.path === secKey)),
    `feishu.app_secret_file ${secretFile} is not a key of a mounted Secret`);
  expect(!cfg["feishu.app_secret"] || cfg["feishu.app_secret"] === "",
    "the app secret must not be in the ConfigMap");

  // Drain: the kubelet must not SIGKILL a drain. The worker waits drain_timeout_ms for tasks
  // in flight, then up to 30 s (worker.c FLUSH_TIMEOUT_MS) for Kafka's acknowledgements.
  const FLUSH_S = 30;
  const drainS = parseInt(cfg["worker.drain_timeout_ms"], 10) / 1000;
  expect(pod.spec.terminationGracePeriodSeconds > drainS + FLUSH_S,
    `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} <= drain ${drainS} s + flush ${FLUSH_S} s`);

  // Security context.
  const psc = pod.spec.securityContext || {};
  const sc = c.securityContext || {};
  expect(sc.runAsNonRoot === true || psc.runAsNonRoot === true, "runAsNonRoot");
  expect((sc.runAsUser || psc.runAsUser || 0) !== 0, "runAsUser must not be 0");
  expect(sc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem");
  expect(sc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation false");
  expect(sc.privileged !== true, "not privileged");
  expect(sc.capabilities && (sc.capabilities.drop || []).includes("ALL") && !(sc.capabilities.add || []).length,
    "capabilities: drop ALL, add none");
  expect(pod.spec.automountServiceAccountToken === false, "no service account token");

  // Resources, from the benchmark (docs/benchmarks.md): 15.0 MiB idle, 1.6 KiB per task
  // in flight; plus librdkafka's prefetch queue as configured. The limit must hold that.
  const r = c.resources || {};
  for (const k of ["requests", "limits"])
    for (const q of ["cpu", "memory"]) expect(r[k] && r[k][q], `resources.${k}.${q}`);
  const inFlight = parseInt(cfg["worker.max_in_flight"], 10);
  const prefetchKiB = parseInt(cfg["kafka.properties.queued.max.messages.kbytes"] || "65536", 10);
  const needed = 15.0 * MiB + inFlight * 1.6 * 1024 + prefetchKiB * 1024;
  const limit = bytes(r.limits && r.limits.memory);
  expect(limit >= 1.5 * needed,
    `memory limit ${r.limits && r.limits.memory} < 1.5 x (idle + max_in_flight x 1.6 KiB + prefetch) = ${(1.5 * needed / MiB).toFixed(0)} MiB`);
  expect(bytes(r.requests && r.requests.memory) <= limit, "memory request <= limit");

  // Prometheus annotations on the pods and the metrics Service.
  const ann = pod.metadata.annotations || {};
  expect(ann["prometheus.io/scrape"] === "true" && ann["prometheus.io/port"] === String(adminPort) &&
    ann["prometheus.io/path"] === "/metrics", "pod prometheus.io annotations");
  const metricsSvc = find(docs, "Service", (s) => s.spec.clusterIP !== "None" &&
    (s.metadata.annotations || {})["prometheus.io/scrape"] === "true")[0];
  expect(metricsSvc && matches(metricsSvc.spec.selector, podLabels) &&
    metricsSvc.spec.ports.some((p) => p.targetPort === "admin" || p.targetPort === adminPort),
    "a Service with prometheus.io annotations selecting the pods' admin port");

  // PodDisruptionBudget.
  const pdb = find(docs, "PodDisruptionBudget")[0];
  expect(pdb && matches(pdb.spec.selector.matchLabels, podLabels), "PodDisruptionBudget selecting the pods");
  expect(pdb && (pdb.spec.maxUnavailable !== undefined || pdb.spec.minAvailable !== undefined), "PDB budget");

  // The app secret comes from the secretGenerator (or from outside), never from a committed
  // placeholder Secret that would overwrite one created out of band.
  for (const { file, obj } of docs)
    expect(obj.kind !== "Secret" || file === "kustomization.yaml secretGenerator",
      `${file}: a committed Secret overwrites one created out of band: use the secretGenerator`);

  // NetworkPolicy: the pods' ingress only on the admin port from a monitoring namespace;
  // egress to DNS, each Kafka broker's port and the Feishu API (443).
  const np = find(docs, "NetworkPolicy", (x) => matches(x.spec.podSelector.matchLabels, podLabels))[0];
  expect(np, "no NetworkPolicy selecting the pods");
  if (np) {
    const types = np.spec.policyTypes || [];
    expect(types.includes("Ingress") && types.includes("Egress"), "NetworkPolicy policyTypes Ingress and Egress");
    const ing = np.spec.ingress || [];
    expect(ing.length > 0 && ing.every((r) => rulePorts(r).length > 0 && rulePorts(r).every((p) =>
      p.port === "admin" || p.port === adminPort)),
      "NetworkPolicy ingress: only the admin port");
    expect(ing.some((r) => (r.from || []).some((f) => f.namespaceSelector && !f.ipBlock)),
      "NetworkPolicy ingress: from the monitoring namespace (a namespaceSelector)");
    expect(egressAllows(np, 53, "UDP") && egressAllows(np, 53, "TCP"), "NetworkPolicy egress: DNS (53 UDP and TCP)");
    for (const b of cfg["kafka.brokers"].split(",")) {
      const port = parseInt(b.split(":").pop(), 10);
      expect(egressAllows(np, port, "TCP"), `NetworkPolicy egress: Kafka broker ${b} (TCP ${port})`);
    }
    const api = parseInt((cfg["feishu.base_url"].match(/^https?:\/\/[^/:]+:(\d+)/) || [])[1] ||
      (cfg["feishu.base_url"].startsWith("http://") ? "80" : "443"), 10);
    expect(egressAllows(np, api, "TCP"), `NetworkPolicy egress: the Feishu API (TCP ${api})`);
  }

  // PodMonitor: the pods' admin port, /metrics.
  const pm = find(docs, "PodMonitor")[0];
  expect(pm, "no PodMonitor");
  if (pm) {
    expect(matches(pm.spec.selector.matchLabels, podLabels), "PodMonitor does not select the pods");
    const ep = (pm.spec.podMetricsEndpoints || [])[0] || {};
    expect(ep.port === "admin" && (ep.path || "/metrics") === "/metrics",
      "PodMonitor endpoint must scrape /metrics on the port named admin");
  }

  // KEDA ScaledObject on consumer lag.
  const so = find(docs, "ScaledObject")[0];
  expect(so, "no ScaledObject");
  if (so) {
    const ref = so.spec.scaleTargetRef;
    expect(ref.kind === "StatefulSet" && ref.name === sts.metadata.name && ref.apiVersion === "apps/v1",
      "ScaledObject must target the StatefulSet");
    const t = (so.spec.triggers || []).find((x) => x.type === "kafka");
    expect(t, "no kafka trigger");
    if (t) {
      const m = t.metadata;
      for (const k of ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"])
        expect(m[k], `kafka trigger needs ${k}`);
      expect(m.consumerGroup === cfg["kafka.group_id"], `consumerGroup ${m.consumerGroup} != kafka.group_id`);
      expect(m.topic === cfg["kafka.input_topic"], `topic ${m.topic} != kafka.input_topic`);
      expect(m.bootstrapServers === cfg["kafka.brokers"], "bootstrapServers != kafka.brokers");
      expect(/^\d+$/.test(m.lagThreshold), "lagThreshold is a string of digits");
      expect(m.allowIdleConsumers !== "true", "allowIdleConsumers would scale past the partition count");
    }
    const parts = parseInt((so.metadata.annotations || {})["delivery-worker/input-partitions"], 10);
    expect(parts > 0, "ScaledObject annotation delivery-worker/input-partitions (the input topic's partition count)");
    expect(so.spec.maxReplicaCount <= parts, `maxReplicaCount ${so.spec.maxReplicaCount} > ${parts} partitions`);
    expect(so.spec.minReplicaCount >= 1 && so.spec.minReplicaCount <= so.spec.maxReplicaCount, "minReplicaCount");
    expect(sts.spec.replicas <= parts, "StatefulSet replicas > input partitions");
  }

  for (const f of failures) console.log("FAIL " + f);
  console.log(`manifests: ${docs.length} objects, ${checks - failures.length} checks passed, ${failures.length} failed`);
  return failures.length ? 1 : 0;
}

const [cmd, dir, arg] = process.argv.slice(2);
if (cmd === "extract-config") {
  const cms = find(loadDir(dir).docs, "ConfigMap", (x) => x.data && x.data["worker.conf"]);
  if (cms.length !== 1) {
    console.error("expected one ConfigMap with worker.conf");
    process.exit(1);
  }
  process.stdout.write(cms[0].data["worker.conf"]);
} else if (cmd === "check") {
  process.exit(check(dir, arg));
} else {
  console.error("usage: manifests.js extract-config DIR | check DIR EFFECTIVE_CONF");
  process.exit(2);
}
