#!/usr/bin/env bash
# Validates what deploy/ ships for operators. One part per ctest test (label "deploy"):
#
#   validate.sh manifests BIN_DIR   deploy/kubernetes: Kubernetes OpenAPI schemas, KEDA's and the
#                                   Prometheus Operator's CRD schemas (npm kubernetes-models),
#                                   the secretGenerator's Secret, how the pieces fit together,
#                                   and the ConfigMap's worker.conf through `check-config`;
#                                   `kubectl kustomize` too when kubectl is installed
#   validate.sh prometheus          deploy/prometheus: promtool check rules / check config,
#                                   promtool test rules (tests/deploy/alerts_test.yml), and each
#                                   alert's runbook_url naming a heading of docs/operations.md
#   validate.sh grafana BIN_DIR     deploy/grafana: dashboard structure, every query parsed by
#                                   promtool, every metric one the worker exports
#   validate.sh docs BIN_DIR        docs/: config table == `config-reference`, metrics table == a
#                                   running worker's /metrics (mock Kafka, simulator), which also
#                                   passes `promtool check metrics`, and that worker's outputs
#                                   valid against docs/schemas
#   validate.sh references          every file and anchor the repository names exists, one copy
#                                   of each generated table, the JSON Schemas and their examples
#
# The tools come from deploy/setup.sh --test (Debian's prometheus for promtool; npm packages
# through tests/deploy/npm-install.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
part=${1:?usage: validate.sh manifests|prometheus|grafana|docs|references [BIN_DIR]}
bin=${2:-$root/build/dev}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need() {
  command -v "$1" >/dev/null || { echo "FAIL: $1 not found: run deploy/setup.sh --test" >&2; exit 1; }
}

case $part in
manifests)
  need node
  export NODE_PATH=${DW_DEPLOY_NPM_CACHE:-$HOME/.cache/delivery-worker/deploy-npm}/node_modules
  [[ -d $NODE_PATH/kubernetes-models && -d $NODE_PATH/@kubernetes-models/prometheus-operator ]] ||
    { echo "FAIL: npm packages missing in $NODE_PATH: run deploy/setup.sh --test" >&2; exit 1; }
  k8s=$root/deploy/kubernetes
  # The ConfigMap's file must be a config the worker accepts, with the StatefulSet's env.
  node "$here/manifests.js" extract-config "$k8s" >"$tmp/worker.conf"
  echo "secret" >"$tmp/app_secret"
  DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID=delivery-worker-0 \
    DELIVERY_WORKER_FEISHU_APP_SECRET_FILE="$tmp/app_secret" \
    "$bin/delivery-worker" check-config -c "$tmp/worker.conf" >"$tmp/effective.conf" ||
    { echo "FAIL: deploy/kubernetes/configmap.yaml: check-config refused worker.conf" >&2; exit 1; }
  echo "check-config: the ConfigMap's worker.conf is valid"
  node "$here/manifests.js" check "$k8s" "$tmp/effective.conf"
  # The checker must catch breakage: a copy with a wrong type (schema), a wrong type in the
  # KEDA trigger and in the PodMonitor (CRD schemas), a grace period shorter than the drain, too
  # many replicas, no egress to the Feishu API and a committed Secret.
  cp -r "$k8s" "$tmp/broken"
  sed -i 's/containerPort: 9464/containerPort: "9464"/; s/terminationGracePeriodSeconds: [0-9]*/terminationGracePeriodSeconds: 30/' \
    "$tmp/broken/statefulset.yaml"
  sed -i 's/lagThreshold: "\([0-9]*\)"/lagThreshold: \1/; s/maxReplicaCount: [0-9]*/maxReplicaCount: 99/' \
    "$tmp/broken/keda-scaledobject.yaml"
  sed -i 's/interval: 30s/interval: 30/' "$tmp/broken/podmonitor.yaml"
  sed -i 's/port: 443/port: 8443/' "$tmp/broken/networkpolicy.yaml"
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: placeholder\nstringData:\n  app_secret: replace-me\n' \
    >"$tmp/broken/secret.yaml"
  sed -i 's/^  - namespace.yaml$/&\n  - secret.yaml/' "$tmp/broken/kustomization.yaml"
  if node "$here/manifests.js" check "$tmp/broken" "$tmp/effective.conf" >"$tmp/broken.out"; then
    echo "FAIL: the checker accepted broken manifests" >&2; exit 1
  fi
  for want in "containerPort must be integer" "lagThreshold must be string" \
              "terminationGracePeriodSeconds 30" "maxReplicaCount 99" "interval must be string" \
              "the Feishu API (TCP 443)" "secret.yaml: a committed Secret"; do
    grep -q "$want" "$tmp/broken.out" || { cat "$tmp/broken.out"; echo "FAIL: not caught: $want" >&2; exit 1; }
  done
  echo "broken copy: all 7 planted faults caught"
  # kustomize needs the env file the operator writes: render a copy with the example's.
  cp -r "$k8s" "$tmp/render"
  [[ -f $tmp/render/app-secret.env ]] || cp "$tmp/render/app-secret.env.example" "$tmp/render/app-secret.env"
  if command -v kubectl >/dev/null && kubectl kustomize "$tmp/render" >"$tmp/rendered.yaml" 2>"$tmp/kustomize.err"; then
    echo "kubectl kustomize: $(grep -c '^kind:' "$tmp/rendered.yaml") objects rendered"
    # The generated Secret's hashed name is the one the StatefulSet mounts.
    secret=$(grep -o 'name: delivery-worker-app-secret-[a-z0-9]*' "$tmp/rendered.yaml" | sort -u)
    [[ $(wc -l <<<"$secret") == 1 && -n $secret ]] && grep -q "secretName: ${secret#name: }" "$tmp/rendered.yaml" ||
      { echo "FAIL: the generated Secret ($secret) is not the one the StatefulSet mounts" >&2; exit 1; }
  elif command -v kubectl >/dev/null; then
    cat "$tmp/kustomize.err" >&2
    echo "FAIL: kubectl kustomize deploy/kubernetes" >&2
    exit 1
  else
    echo "kubectl not installed: kustomize rendering not checked (the resource list is)"
  fi
  ;;
prometheus)
  need promtool
  prom=$root/deploy/prometheus
  promtool check rules "$prom/alerts.yml"
  # Debian's promtool is built without Kubernetes service discovery: check a copy whose
  # kubernetes_sd_configs is swapped for static_configs (relabelling, rule files and the rest
  # are checked as they are). check config resolves rule_files next to the config file.
  cp "$prom/alerts.yml" "$tmp/alerts.yml"
  python3 - "$prom/prometheus.yml" "$tmp/prometheus.yml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
sd = re.compile(r"^(\s+)kubernetes_sd_configs:\n(?:\1\s.*\n)+", re.M)
assert sd.search(text), "no kubernetes_sd_configs block"
text = sd.sub(lambda m: m.group(1) + 'static_configs: [ { targets: ["127.0.0.1:9464"] } ]\n', text)
open(sys.argv[2], "w").write(text)
PY
  promtool check config "$tmp/prometheus.yml"
  (cd "$here" && promtool test rules alerts_test.yml)
  # Every alert links its runbook entry: a runbook_url on the documented base whose anchor is
  # a heading of docs/operations.md.
  python3 - "$prom/alerts.yml" "$root/docs/operations.md" <<'PY'
import re, sys, yaml
BASE = "https://delivery-worker.example/docs/operations.md#"
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
heads = set()
for line in open(sys.argv[2], encoding="utf-8"):
    if line.startswith("#"):
        heads.add(re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-"))
bad = []
for r in rules:
    url = r.get("annotations", {}).get("runbook_url", "")
    if not url.startswith(BASE) or url[len(BASE):] not in heads:
        bad.append("%s: runbook_url %r is not %s<a heading of docs/operations.md>" % (r["alert"], url, BASE))
    if "runbook" in r.get("annotations", {}):
        bad.append("%s: a `runbook` path annotation besides runbook_url" % r["alert"])
for b in bad:
    print("FAIL " + b)
print("runbook_url: %d alerts, %d without a runbook entry" % (len(rules), len(bad)))
sys.exit(1 if bad else 0)
PY
  ;;
grafana)
  need promtool
  need node
  export NODE_PATH=${DW_DEPLOY_NPM_CACHE:-$HOME/.cache/delivery-worker/deploy-npm}/node_modules
  python3 "$here/dashboard.py" "$root/deploy/grafana" "$bin" "$tmp"
  promtool check rules "$tmp/dashboard-queries.yml"
  # Provisioning: the dashboard provider loads a folder, the data source is Prometheus.
  node - "$root/deploy/grafana/provisioning" <<'JS'
const fs = require("fs"), YAML = require("yaml"), dir = process.argv[2];
const d = YAML.parse(fs.readFileSync(dir + "/dashboards/delivery-worker.yml", "utf8"));
const s = YAML.parse(fs.readFileSync(dir + "/datasources/prometheus.yml", "utf8"));
const p = (d.providers || [])[0] || {};
const ok = d.apiVersion === 1 && p.type === "file" && p.options && p.options.path &&
  s.apiVersion === 1 && (s.datasources || []).some((x) => x.type === "prometheus" && x.url);
console.log(ok ? "provisioning: dashboard provider and Prometheus data source present"
               : "FAIL provisioning files incomplete");
process.exit(ok ? 0 : 1);
JS
  ;;
docs)
  need promtool
  python3 "$here/docs.py" check "$root" "$bin"
  ;;
references)
  python3 "$here/docs.py" static "$root"
  ;;
*)
  echo "unknown part $part" >&2
  exit 2
  ;;
esac
echo "deploy $part: OK"
