#!/usr/bin/env bash
# The compose stack's tests.
#
#   tests/e2e/compose.sh static BIN_DIR   checks that need no Docker engine: docker-compose
#       config, tests/e2e/check_files.py (Dockerfile and compose structure), check-config of
#       deploy/docker/worker.conf, promtool on the stack's Prometheus config, bash -n
#   tests/e2e/compose.sh run [BIN_DIR]    the end-to-end test: the static checks, then a Docker
#       engine (the one DOCKER_HOST or the default socket reaches, else a private dockerd this
#       script starts and stops), the Debian 13 base image (base-image.sh) and the Kafka image
#       (kafka-image.sh) built locally, the worker and tools images from deploy/Dockerfile
#       (the build runs the unit tests on Debian 13); the worker image at most 30 MB, and
#       `docker run` of it with variables alone stopping on a missing app id or secret with
#       the variable's name, and its check-config with OIDC configured saying librdkafka's own
#       OIDC and re-authentication are in use; `docker-compose up` of kafka, topics, sim, generator,
#       worker-1, worker-2 and prometheus; waits for results on the results topic and for
#       both workers to be healthy (the image's HEALTHCHECK: `delivery-worker healthcheck`); checks Prometheus (prom_check.py: both workers scraped, the
#       alert rules loaded and evaluating, every Grafana dashboard query answered with live
#       numbers); scales up (worker-extra) and down (SIGTERM: exit 0), stops the generator,
#       checks every generated task has a result or a dead letter, and tears everything down.
#       Exit 77 (skipped, with the reason) when no engine runs or in the sanitizer pass.
#       Prometheus runs from a local image of Debian's package (prometheus-image.sh); Grafana
#       is not started: its image comes from a registry, and it is not in Debian.
# Environment: DW_E2E_CACHE (base image tarball, private engine's images; default
# $HOME/.cache/delivery-worker/e2e), DW_E2E_KEEP=1 leaves the stack up on failure,
# DW_E2E_CONTEXT builds the images from another checkout (default: this work tree),
# DW_E2E_SCREENSHOT=FILE.png saves Prometheus's graph page of the dashboard's headline queries
# with the stack's live numbers (needs Debian's chromium on this machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mode=${1:-}
bindir=${2:-$root/build/test}
cache=${DW_E2E_CACHE:-$HOME/.cache/delivery-worker/e2e}
SKIP=77
t_start=$SECONDS

say() { printf 'e2e: %s\n' "$*"; }
skip() { say "SKIPPED: $*"; exit $SKIP; }
die() { say "FAILED: $*"; exit 1; }

compose_cmd=()
find_compose() {
  if command -v docker-compose >/dev/null; then compose_cmd=(docker-compose)
  elif docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose)
  else return 1; fi
}

static_checks() {
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/dw-e2e-static.XXXXXX")
  if find_compose; then
    # config validates the file and prints it normalized; it needs no engine.
    DOCKER_HOST=${DOCKER_HOST:-unix:///nonexistent} "${compose_cmd[@]}" -f "$root/docker-compose.yml" \
      config >"$tmp/config.yml" || die "${compose_cmd[*]} config rejected docker-compose.yml"
    say "ok: ${compose_cmd[*]} config"
    python3 "$here/check_files.py" "$tmp/config.yml" || die "check_files.py"
  else
    say "no docker-compose or docker compose: structure checked from the raw file"
    python3 "$here/check_files.py" || die "check_files.py"
  fi
  if [[ -x $bindir/delivery-worker ]]; then
    DELIVERY_WORKER_FEISHU_APP_SECRET=x DELIVERY_WORKER_KAFKA_GROUP_INSTANCE_ID=worker-1 \
      "$bindir/delivery-worker" check-config -c "$root/deploy/docker/worker.conf" >/dev/null ||
      die "check-config rejected deploy/docker/worker.conf"
    say "ok: delivery-worker check-config deploy/docker/worker.conf"
  fi
  if command -v promtool >/dev/null; then
    cp "$root/deploy/docker/prometheus.yml" "$root/deploy/prometheus/alerts.yml" "$tmp/"
    promtool check config "$tmp/prometheus.yml" >"$tmp/promtool.log" 2>&1 ||
      { cat "$tmp/promtool.log"; die "promtool check config deploy/docker/prometheus.yml"; }
    say "ok: promtool check config deploy/docker/prometheus.yml (with deploy/prometheus/alerts.yml)"
  fi
  local f
  for f in "$root"/deploy/docker/*.sh "$here"/*.sh "$here"/kafka-image/run.sh; do
    bash -n "$f" || die "bash -n $f"
  done
  say "ok: bash -n on the scripts"
  rm -rf "$tmp"
}

# ------------------------------------------------------------------ the engine

dockerd_pid=
engine_dir=
stop_engine() {
  [[ -n $dockerd_pid ]] || return 0
  kill "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=
}

start_engine() {
  if docker info >/dev/null 2>&1; then
    say "using the running Docker engine ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
    return 0
  fi
  command -v dockerd >/dev/null || skip "no Docker engine reachable and no dockerd installed (apt-get install docker.io)"
  [[ $(id -u) == 0 ]] || skip "no Docker engine reachable, and starting one needs root"
  engine_dir=$(mktemp -d /tmp/dw-e2e-engine.XXXXXX)
  mkdir -p "$cache/docker"
  export DOCKER_HOST=unix://$engine_dir/docker.sock
  say "starting a private dockerd (log $engine_dir/dockerd.log)"
  dockerd --data-root "$cache/docker" --exec-root "$engine_dir/exec" -H "$DOCKER_HOST" \
    --pidfile "$engine_dir/dockerd.pid" >"$engine_dir/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    say "dockerd did not start; its errors:"
    grep -E 'level=(error|fatal)|failed|Error' "$engine_dir/dockerd.log" | tail -n 15 | sed 's/^/  /'
    stop_engine
    skip "no Docker engine can run on this machine (see the errors above)"
  fi
  say "private dockerd $(docker version -f '{{.Server.Version}}') is up"
}

# ------------------------------------------------------------------ the test

project=dw-e2e-$$
override=
dc() { "${compose_cmd[@]}" -p "$project" -f "$root/docker-compose.yml" -f "$override" "$@"; }
cleanup() {
  local rc=$?
  if [[ -n $override && -f $override ]]; then
    if [[ $rc != 0 && $rc != "$SKIP" ]]; then
      say "logs of the failed run (last 30 lines each):"
      dc logs --no-color --tail 30 2>&1 | sed 's/^/  /' || true
    fi
    if [[ ${DW_E2E_KEEP:-0} == 1 && $rc != 0 ]]; then
      say "DW_E2E_KEEP=1: stack $project left up"
    else
      dc --profile scale down -v --remove-orphans -t 10 >/dev/null 2>&1 || true
    fi
    rm -f "$override"
  fi
  stop_engine
  if [[ -n $engine_dir ]]; then
    # dockerd leaves its network namespace mounted
    grep -o " $engine_dir/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$engine_dir"
  fi
  say "wall time $((SECONDS - t_start)) s"
}

count_keys() { # topic -> distinct keys
  dc exec -T generator dw-kafkatool dump -b kafka:9092 "$1" --timeout-ms 3000 |
    python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in sys.stdin if l.strip()}))'
}

wait_until() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || die "$what: not within the time limit"
    sleep 3
  done
  say "ok: $what ($((SECONDS - t_start)) s)"
}

results_at_least() { local n; n=$(count_keys hire.delivery_tasks.resolved) || return 1; ((n >= $1)); }
healthy() { [[ $(docker inspect -f '{{.State.Health.Status}}' "$(dc ps -q "$1")" 2>/dev/null) == healthy ]]; }
running() { [[ $(docker inspect -f '{{.State.Status}}' "$(dc ps -q "$1")" 2>/dev/null) == running ]]; }
members() { dc exec -T generator dw-kafkatool group -b kafka:9092 delivery-worker |
              python3 -c 'import json,sys; print(json.load(sys.stdin)["members"])'; }
members_are() { [[ $(members 2>/dev/null) == "$1" ]]; }
progress_from() { results_at_least $(( $1 + 20 )); }

# The dashboard's headline queries on the stack's Prometheus, as a PNG of Prometheus's classic
# graph page. The window is taller than the page: a page that scrolls (to its last input) is
# drawn badly by headless screenshots.
screenshot() { # prometheus_url file
  command -v chromium >/dev/null || die "DW_E2E_SCREENSHOT needs chromium (apt-get install chromium)"
  local q url profile
  q=(
    'sum by (outcome) (rate(dw_tasks_resolved_total[1m]))'
    'sum by (code) (rate(dw_api_calls_total[1m]))'
    'sum(rate(dw_api_calls_total[1m])) / sum(rate(dw_tasks_resolved_total[1m]))'
    'sum by (instance) (dw_tasks_in_flight)'
  )
  url="$1/classic/graph?$(python3 -c '
import sys, urllib.parse
print("&".join(urllib.parse.urlencode({"g%d.expr" % i: e, "g%d.tab" % i: "0", "g%d.range_input" % i: "2m"})
               for i, e in enumerate(sys.argv[1:])))' "${q[@]}")"
  profile=$(mktemp -d "${TMPDIR:-/tmp}/dw-e2e-chromium.XXXXXX")
  # The graphs draw after their queries return: chromium waits for the page's network to be
  # idle and then for the virtual time budget, not for the wall clock.
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2960 \
    --virtual-time-budget=10000 --screenshot="$2" "$url" >/dev/null 2>&1 ||
    die "chromium could not take the screenshot"
  rm -rf "$profile"
  say "ok: screenshot of Prometheus's graph page saved to $2"
}

run_test() {
  [[ ${DW_SANITIZED:-0} != 1 ]] || skip "runs in the normal pass only (the images build their own binaries)"
  static_checks
  find_compose || skip "no docker-compose or docker compose client (apt-get install docker-compose)"
  command -v docker >/dev/null || skip "no docker client (apt-get install docker.io)"
  trap cleanup EXIT
  start_engine

  # Debian 13 for the worker's builder and the tools image; Debian 12 for the Kafka and
  # Prometheus stand-ins (only built when missing).
  "$here/base-image.sh" debian:trixie-slim
  docker run --rm debian:trixie-slim true 2>"$cache/run-error.log" ||
    skip "the engine cannot run a container: $(tail -n 3 "$cache/run-error.log")"
  local img
  for img in apache/kafka prom/prometheus; do
    docker image inspect "$(sed -n "s|^    image: *\($img:.*\)|\1|p" "$root/docker-compose.yml")" \
      >/dev/null 2>&1 || { "$here/base-image.sh" debian:bookworm-slim; break; }
  done
  "$here/kafka-image.sh"
  "$here/prometheus-image.sh"
  local t0=$SECONDS ctx=${DW_E2E_CONTEXT:-$root} commit
  commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  # --network host: apt in the build reaches Debian's mirror as this machine does.
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$root/deploy/Dockerfile" --target worker \
    --build-arg DW_COMMIT="$commit" -t delivery-worker:local "$ctx" >/dev/null
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$root/deploy/Dockerfile" --target tools \
    --build-arg DW_COMMIT="$commit" -t delivery-worker-tools:local "$ctx" >/dev/null
  docker run --rm delivery-worker:local version | grep -q "(commit $commit)" ||
    die "the image's \`delivery-worker version\` does not name commit $commit"
  local size
  size=$(docker image inspect -f '{{.Size}}' delivery-worker:local)
  say "ok: images built in $((SECONDS - t0)) s (unit tests passed in the builder); worker image" \
      "$size bytes"
  ((size <= 30000000)) || die "the worker image is $size bytes, more than 30 MB"
  say "ok: the worker image is at most 30 MB"
  # No config file in the image: from variables alone, a missing app id or secret stops the
  # worker at once with the variable to set.
  local out
  out=$(docker run --rm --network none -e DELIVERY_WORKER_FEISHU_APP_SECRET=x delivery-worker:local 2>&1) &&
    die "docker run without an app id did not fail: $out"
  [[ $out == *DELIVERY_WORKER_FEISHU_APP_ID* ]] || die "docker run without an app id: \"$out\" names no variable"
  out=$(docker run --rm --network none -e DELIVERY_WORKER_FEISHU_APP_ID=cli_x delivery-worker:local 2>&1) &&
    die "docker run without an app secret did not fail: $out"
  [[ $out == *DELIVERY_WORKER_FEISHU_APP_SECRET* ]] || die "docker run without an app secret: \"$out\" names no variable"
  say "ok: docker run from variables alone stops on a missing app id or secret, naming the variable"
  # OIDC configured: Debian 13's librdkafka takes the properties itself (it refuses what it
  # does not know), and check-config says its own OIDC is in use.
  out=$(docker run --rm --network none -e DELIVERY_WORKER_FEISHU_APP_ID=cli_x \
        -e DELIVERY_WORKER_FEISHU_APP_SECRET=x -e DELIVERY_WORKER_KAFKA_PROPERTIES="$(printf '%s,' \
          security.protocol=SASL_PLAINTEXT sasl.mechanism=OAUTHBEARER sasl.oauthbearer.method=oidc \
          sasl.oauthbearer.client.id=delivery-worker sasl.oauthbearer.client.secret=x \
          sasl.oauthbearer.token.endpoint.url=http://idp.invalid/token)sasl.oauthbearer.scope=kafka" \
        delivery-worker:local check-config 2>&1) || die "check-config from variables alone failed: $out"
  [[ $out == *"by librdkafka itself (builtin feature oidc): in use; SASL re-authentication (KIP-368): yes"* ]] ||
    die "check-config with OIDC on Debian 13: not librdkafka's own OIDC: $(tail -n 1 <<<"$out")"
  say "ok: check-config from variables alone, with OIDC: $(tail -n 1 <<<"$out")"

  # The test's stack: an internal network (no way out of this machine), a short session
  # timeout so a stopped static member's partitions move on quickly, a steady generator.
  override=$(mktemp "${TMPDIR:-/tmp}/dw-e2e-override.XXXXXX.yml")
  cat >"$override" <<'YML'
networks:
  default:
    internal: true
services:
  generator:
    environment: { RATE: "10", TOTAL: "0", RUN_ID: "e2e" }
  worker-1:
    environment: { DELIVERY_WORKER_KAFKA_PROPERTIES: "session.timeout.ms=10000" }
  worker-2:
    environment: { DELIVERY_WORKER_KAFKA_PROPERTIES: "session.timeout.ms=10000" }
  worker-extra:
    environment: { DELIVERY_WORKER_KAFKA_PROPERTIES: "session.timeout.ms=10000" }
YML
  dc up -d --no-build kafka topics sim generator worker-1 worker-2 prometheus 2>&1 | sed 's/^/  /'
  wait_until 180 "first 50 results on hire.delivery_tasks.resolved" results_at_least 50
  wait_until 60 "worker-1 healthy (HEALTHCHECK on /healthz)" healthy worker-1
  wait_until 60 "worker-2 healthy" healthy worker-2
  wait_until 60 "two members in group delivery-worker" members_are 2

  # Prometheus from this machine, at its address on the stack's network (the network is
  # internal: no published ports).
  wait_until 60 "prometheus running" running prometheus
  local prom ip
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(dc ps -q prometheus)")
  [[ -n $ip ]] || die "the prometheus container has no address on the stack's network"
  prom=http://$ip:9090
  python3 "$here/prom_check.py" "$prom" "$root/deploy/grafana/delivery-worker.json" \
    "$root/deploy/prometheus/alerts.yml" 2 180 || die "Prometheus of the stack (prom_check.py)"

  say "scaling up: worker-extra (dynamic membership)"
  dc --profile scale up -d --no-build --no-recreate --scale worker-extra=1 worker-extra 2>&1 | sed 's/^/  /'
  wait_until 90 "three members in the group" members_are 3
  local n
  n=$(count_keys hire.delivery_tasks.resolved)
  wait_until 90 "results go on with three replicas" progress_from "$n"

  say "scaling down: SIGTERM to worker-2 and worker-extra"
  dc --profile scale stop -t 75 worker-2 worker-extra 2>&1 | sed 's/^/  /'
  local c code
  for c in worker-2 worker-extra; do
    code=$(docker inspect -f '{{.State.ExitCode}}' "$(dc --profile scale ps -q "$c" | head -n1)")
    [[ $code == 0 ]] || die "$c exited $code after SIGTERM (want 0: drained and committed)"
  done
  say "ok: worker-2 and worker-extra drained and exited 0"
  n=$(count_keys hire.delivery_tasks.resolved)
  wait_until 120 "results go on with worker-1 alone" progress_from "$n"
  [[ -z ${DW_E2E_SCREENSHOT:-} ]] || screenshot "$prom" "$DW_E2E_SCREENSHOT"

  dc stop -t 10 generator >/dev/null 2>&1
  # the generator's container is stopped: read from worker-1's side with a one-off tools container
  count_keys() {
    dc run --rm --no-deps -T generator dw-kafkatool dump -b kafka:9092 "$1" --timeout-ms 3000 |
      python3 -c 'import json,sys; print(len({json.loads(l)["key"] for l in sys.stdin if l.strip()}))'
  }
  local produced
  produced=$(count_keys hire.delivery_tasks.created)
  done_all() {
    local r d
    r=$(count_keys hire.delivery_tasks.resolved) && d=$(count_keys hire.delivery_tasks.dlq) || return 1
    say "  $r results + $d dead letters of $produced tasks"
    ((r + d >= produced))
  }
  wait_until 180 "every one of the $produced generated tasks has a result or a dead letter" done_all
  say "PASSED"
}

case $mode in
static) static_checks; say "PASSED (static)" ;;
run) run_test ;;
*) echo "usage: $0 static|run [BIN_DIR]" >&2; exit 2 ;;
esac
