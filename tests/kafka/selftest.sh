#!/usr/bin/env bash
# Self-test of tests/kafka/kafka.sh and dw-kafkatool against the real broker and the mock.
#   tests/kafka/selftest.sh [BUILD_DIR]       (default build/; needs dw-kafkatool built, kcat)
# Starts a broker on a free port, runs: create-topic, produce 1000 lines with headers, dump,
# commit with a kcat -G consumer, committed, group; then the same against `dw-kafkatool mock`
# (which has no CreateTopics/ListGroups, so those two steps are skipped there); stops everything.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build}
TOOL=$BUILD/dw-kafkatool
KAFKA_SH=$ROOT/tests/kafka/kafka.sh
[[ -x $TOOL ]] || { echo "selftest: $TOOL not built" >&2; exit 1; }
WORK=$(mktemp -d)
MOCK_PID=
KAFKA_DIR=

cleanup() {
    [[ -n $MOCK_PID ]] && kill -TERM "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
    [[ -n $KAFKA_DIR ]] && "$KAFKA_SH" stop --dir "$KAFKA_DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "selftest: FAIL: $*" >&2; exit 1; }

python3 - "$WORK/in.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        d = {"key": f"k{i}", "value": f"v{i} \u00fc", "headers": {"task-id": f"t{i}", "n": str(i)}}
        if i % 100 == 7:
            d.pop("value"); d["value_b64"] = "/wAB"   # not UTF-8
        f.write(json.dumps(d) + "\n")
EOF

check_dump() { # FILE
    python3 - "$WORK/in.jsonl" "$1" <<'EOF'
import json, sys
inp = {d["key"]: d for d in map(json.loads, open(sys.argv[1]))}
out = [json.loads(l) for l in open(sys.argv[2])]
assert len(out) == len(inp), (len(out), len(inp))
for o in out:
    d = inp[o["key"]]
    assert o["headers"] == d["headers"], o
    assert (o.get("value_b64") == d["value_b64"]) if "value_b64" in d else o["value"] == d["value"], o
print("dump ok:", len(out), "messages")
EOF
}

run_suite() { # BOOTSTRAP LABEL CAN_ADMIN
    local b=$1 label=$2 admin=$3 topic=st1 group=stg
    echo "== $label ($b)"
    if [[ $admin == 1 ]]; then
        "$TOOL" create-topic -b "$b" $topic 4
        "$TOOL" create-topic -b "$b" $topic 4 | grep -q "^exists $topic" || fail "create-topic twice"
    fi
    "$TOOL" produce -b "$b" $topic --file "$WORK/in.jsonl" | grep -qx "produced 1000" || fail "produce"
    "$TOOL" dump -b "$b" $topic >"$WORK/out.jsonl"
    check_dump "$WORK/out.jsonl"
    "$TOOL" committed -b "$b" $group $topic | grep -q '"offset":-1001' || fail "committed before"
    timeout 60 kcat -b "$b" -G $group -X auto.offset.reset=earliest -X session.timeout.ms=6000 \
        -q -e -f '.' $topic >/dev/null
    "$TOOL" committed -b "$b" $group $topic | tee "$WORK/committed.jsonl"
    python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4 and all(r["offset"] == r["high"] for r in rows), rows
assert sum(r["high"] for r in rows) == 1000, rows' "$WORK/committed.jsonl" || fail "committed after"
    if [[ $admin == 1 ]]; then
        local g
        g=$("$TOOL" group -b "$b" $group)
        echo "$g"
        grep -q '"members":0' <<<"$g" || fail "group: $g"
    fi
}

eval "$("$KAFKA_SH" start --port 0)"
run_suite "$KAFKA_BOOTSTRAP" "real Kafka broker" 1

coproc MOCK { exec "$TOOL" mock --topic st1:4; }
MOCK_PID=$MOCK_PID
read -r -t 10 line <&"${MOCK[0]}" || fail "mock did not start"
run_suite "${line#BOOTSTRAP=}" "librdkafka mock cluster" 0
echo "produce-errors 2 NOT_LEADER_FOR_PARTITION" >&"${MOCK[1]}"
read -r -t 10 ans <&"${MOCK[0]}"
[[ $ans == ok ]] || fail "mock control: $ans"
echo '{"value":"after-fault"}' | "$TOOL" produce -b "${line#BOOTSTRAP=}" st1 | grep -qx "produced 1" ||
    fail "produce after injected errors"
echo "selftest: PASS"
