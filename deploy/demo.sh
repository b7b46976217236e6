#!/usr/bin/env bash
# The embedded demo: builds delivery-worker, starts librdkafka's mock Kafka cluster and the
# Feishu API simulator on loopback, publishes a batch of sample task-created events of every
# kind, runs the worker until every task is resolved, shows the results and dead letters, then
# stops the worker with SIGTERM (it drains and commits) and shows the committed offsets.
# Needs nothing but Debian's packages (installed if missing) and no network.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deploy/setup.sh
build=${DW_BUILD_DIR:-$root/build/release}
echo "== building in $build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
  --target delivery-worker dw-sim dw-kafkatool -- --no-print-directory >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/dw-demo.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_file() { # file, what, seconds
  local deadline=$(( $(date +%s) + $3 ))
  until [[ -s "$1" ]]; do
    (( $(date +%s) < deadline )) || { echo "demo: $2 did not start; see $work" >&2; exit 1; }
    sleep 0.1
  done
}

IN=hire.delivery_tasks.created OUT=hire.delivery_tasks.resolved DLQ=hire.delivery_tasks.dlq
echo "== starting the mock Kafka cluster"
"$build/dw-kafkatool" mock --brokers 1 --topic "$IN:4" --topic "$OUT:4" --topic "$DLQ:4" \
  --bootstrap-file "$work/bootstrap" >"$work/mock.log" 2>&1 </dev/null &
pids+=($!)
wait_for_file "$work/bootstrap" "the mock cluster" 30
BS=$(cat "$work/bootstrap")

echo "== starting the Feishu API simulator"
"$build/dw-sim" --listen 127.0.0.1:0 --port-file "$work/sim.port" --app cli_demo:demo-secret \
  --latency-ms 20-80 >"$work/sim.log" 2>&1 &
pids+=($!)
wait_for_file "$work/sim.port" "the simulator" 30
SIM="http://127.0.0.1:$(cat "$work/sim.port")"

# Sample tasks: what upstream created with create_by_attachment, as the simulator will answer.
W=7047318856652261676
tasks=()
for i in 01 02 03 04 05 06 07 08 09 10; do
  tasks+=("{\"website_id\":\"$W\",\"delivery_task_id\":\"demo-ok-$i\",\"ready_after_ms\":$(( 3000 + 10#$i * 600 ))}")
done
tasks+=("{\"website_id\":\"$W\",\"delivery_task_id\":\"demo-duplicate\",\"ready_after_ms\":800,\"final\":\"failed\",\"status_msg\":\"same application exist\",\"extra_info\":\"7100825663201052972\"}")
tasks+=("{\"website_id\":\"$W\",\"delivery_task_id\":\"demo-flaky\",\"ready_after_ms\":500,\"errors\":[{\"code\":1002001,\"http\":500,\"count\":2}]}")
tasks+=("{\"website_id\":\"$W\",\"delivery_task_id\":\"demo-bad-request\",\"final\":\"invalid_request\"}")
printf '[%s]' "$(IFS=,; echo "${tasks[*]}")" |
  curl -fsS -X POST --data-binary @- "$SIM/_sim/tasks" >/dev/null

echo "== publishing sample task-created events to $IN"
{
  for i in 01 02 03 04 05 06 07 08 09 10; do
    echo "{\"key\":\"demo-ok-$i\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"delivery_task_id\\\":\\\"demo-ok-$i\\\",\\\"event_id\\\":\\\"ev-$i\\\"}\",\"headers\":{\"trace\":\"t-$i\"}}"
  done
  echo "{\"key\":\"demo-duplicate\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"task_id\\\":\\\"demo-duplicate\\\"}\"}"
  echo "{\"key\":\"demo-flaky\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"delivery_task_id\\\":\\\"demo-flaky\\\"}\"}"
  echo "{\"key\":\"demo-bad-request\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"delivery_task_id\\\":\\\"demo-bad-request\\\"}\"}"
  echo "{\"key\":\"demo-unknown\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"delivery_task_id\\\":\\\"demo-unknown\\\"}\"}"
  echo "{\"key\":\"demo-not-json\",\"value\":\"this is not JSON\"}"
  echo "{\"key\":\"demo-path-trick\",\"value\":\"{\\\"website_id\\\":\\\"$W\\\",\\\"delivery_task_id\\\":\\\"../../auth\\\"}\"}"
  echo "{\"key\":\"demo-no-website\",\"value\":\"{\\\"delivery_task_id\\\":\\\"abc\\\"}\"}"
} | "$build/dw-kafkatool" produce -b "$BS" "$IN" >/dev/null
expected=17

cat >"$work/worker.conf" <<CONF
kafka = {
  brokers = "$BS";
  group_id = "delivery-worker-demo";
  properties = ( ["session.timeout.ms", "6000"], ["heartbeat.interval.ms", "500"] );
};
feishu = {
  base_url = "$SIM";
  app_id = "cli_demo";
};
poll = {
  first_delay_ms = 300;
  interval_ms = 500;
  max_interval_ms = 2000;
  deadline_ms = 60000;
};
admin = { listen = "127.0.0.1:0"; };
log = { format = "text"; };
CONF
echo "== the worker's effective config (check-config)"
DELIVERY_WORKER_FEISHU_APP_SECRET=demo-secret "$build/delivery-worker" check-config -c "$work/worker.conf" | sed 's/^/   /'

echo "== running delivery-worker (its log follows)"
DELIVERY_WORKER_FEISHU_APP_SECRET=demo-secret "$build/delivery-worker" run -c "$work/worker.conf" \
  2> >(sed 's/^/   worker| /' >&2) &
worker=$!
pids+=($worker)

deadline=$(( $(date +%s) + 90 ))
done_count=0
while (( done_count < expected )); do
  (( $(date +%s) < deadline )) || { echo "demo: only $done_count of $expected tasks resolved in 90 s" >&2; exit 1; }
  r=$("$build/dw-kafkatool" dump -b "$BS" "$OUT" --timeout-ms 2000 | grep -c . || true)
  d=$("$build/dw-kafkatool" dump -b "$BS" "$DLQ" --timeout-ms 2000 | grep -c . || true)
  if (( r + d != done_count )); then
    done_count=$(( r + d ))
    echo "== progress: $done_count of $expected tasks resolved ($r results, $d dead letters)"
  fi
  sleep 0.5
done

echo "== stopping the worker with SIGTERM (it drains, flushes and commits)"
kill -TERM "$worker"
wait "$worker" && echo "   worker exited 0"

"$build/dw-kafkatool" dump -b "$BS" "$OUT" >"$work/results.jsonl"
"$build/dw-kafkatool" dump -b "$BS" "$DLQ" >"$work/dlq.jsonl"
curl -fsS "$SIM/_sim/stats" >"$work/stats.json"
"$build/dw-kafkatool" committed -b "$BS" delivery-worker-demo "$IN" >"$work/committed.jsonl"
python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(w, "results.jsonl")) if l.strip()]
print("\n== results on hire.delivery_tasks.resolved (%d)" % len(rows))
print("   %-16s %-10s %-22s %-22s %s" % ("task", "outcome", "application_id", "talent_id", "polls"))
for r in sorted(rows, key=lambda r: r["key"]):
    v = json.loads(r["value"])
    other = v.get("application_id") or "status_msg=%r existing=%s" % (v.get("status_msg"), v.get("existing_application_id"))
    print("   %-16s %-10s %-22s %-22s %s" % (v["delivery_task_id"], v["outcome"], other, v.get("talent_id", ""), v["polls"]))
dl = [json.loads(l) for l in open(os.path.join(w, "dlq.jsonl")) if l.strip()]
print("\n== dead letters on hire.delivery_tasks.dlq (%d): original key and value, plus dlq.* headers" % len(dl))
for d in sorted(dl, key=lambda d: d["key"] or ""):
    h = d.get("headers", {})
    print("   %-16s reason=%-17s code=%-8s attempts=%s  %s" % (d["key"], h.get("dlq.reason"), h.get("dlq.error_code", "-"),
          h.get("dlq.attempts"), h.get("dlq.error_msg", "")))
s = json.load(open(os.path.join(w, "stats.json")))
valid = len(rows) + sum(1 for d in dl if d["headers"].get("dlq.reason") != "invalid_event")
print("\n== simulator: %d API calls for %d valid tasks (%.2f per task), %d rate-limited, %d token call(s)"
      % (s["calls"], valid, s["calls"] / max(valid, 1), s["rate_limited"], s["token_calls"]))
print("== committed offsets of group delivery-worker-demo:")
for l in open(os.path.join(w, "committed.jsonl")):
    c = json.loads(l)
    print("   partition %d: committed %d of %d" % (c["partition"], c["offset"], c["high"]))
PY
