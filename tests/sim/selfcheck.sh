#!/usr/bin/env bash
# Self-check for dw-sim: starts the simulator, drives every endpoint with curl(1), checks the
# answers with jq(1) and a short python3 load run (600 keep-alive connections), and stops it with
# SIGTERM expecting exit 0. Meant to be run against the ASan/TSan builds too.
#
#   tests/sim/selfcheck.sh [path/to/dw-sim]      (default: build/dw-sim)
#
# Exit status 0 when every check passed.
set -u

SIM=${1:-build/dw-sim}
TMP=$(mktemp -d)
PASS=0
FAIL=0
SIMPID=
B=

cleanup() {
  if [ -n "$SIMPID" ] && kill -0 "$SIMPID" 2>/dev/null; then
    kill -TERM "$SIMPID"
    wait "$SIMPID"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
# expect DESC GOT WANT
expect() { if [ "$2" = "$3" ]; then ok; else bad "$1: got [$2] want [$3]"; fi; }

start_sim() {
  rm -f "$TMP/port"
  "$SIM" --port-file "$TMP/port" "$@" >"$TMP/out" 2>"$TMP/err" &
  SIMPID=$!
  for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    sleep 0.05
  done
  B="http://127.0.0.1:$(cat "$TMP/port")"
}

stop_sim() {
  kill -TERM "$SIMPID"
  wait "$SIMPID"
  local rc=$?
  expect "exit status after SIGTERM" "$rc" 0
  [ "$rc" -eq 0 ] || tail -50 "$TMP/err"
  SIMPID=
}

token() { # APP SECRET -> full JSON
  curl -s -X POST "$B/open-apis/auth/v3/tenant_access_token/internal" \
    -H 'Content-Type: application/json; charset=utf-8' -d "{\"app_id\":\"$1\",\"app_secret\":\"$2\"}"
}

task_url() { echo "$B/open-apis/hire/v1/websites/$1/delivery_tasks/$2"; }

# poll TOKEN WEBSITE TASK -> "HTTP BODY" on one line
poll() {
  local out
  out=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $1" "$(task_url "$2" "$3")")
  echo "${out##*$'\n'} ${out%$'\n'*}"
}

ctl() { # METHOD PATH [BODY]
  if [ $# -ge 3 ]; then curl -s -X "$1" "$B$2" -d "$3"; else curl -s -X "$1" "$B$2"; fi
}

# ---------------------------------------------------------------------------------------------
start_sim --app cli_test:secret --app cli_b:sec2
expect "stdout line" "$(cat "$TMP/out")" "dw-sim listening on 127.0.0.1:$(cat "$TMP/port")"

# Tokens ---------------------------------------------------------------------------------------
T1=$(token cli_test secret)
TOK=$(jq -r .tenant_access_token <<<"$T1")
expect "token code" "$(jq .code <<<"$T1")" 0
expect "token prefix" "${TOK:0:2}" "t-"
expect "token expire" "$(jq .expire <<<"$T1")" 7200
T2=$(token cli_test secret)
expect "same token while >= 30 min left" "$(jq -r .tenant_access_token <<<"$T2")" "$TOK"
[ "$(jq .expire <<<"$T2")" -le 7200 ] && ok || bad "second expire > 7200"
H=$(curl -s -D - -o /dev/null -X POST "$B/open-apis/auth/v3/tenant_access_token/internal" \
  -d '{"app_id":"cli_test","app_secret":"nope"}')
expect "wrong secret http" "$(head -1 <<<"$H" | awk '{print $2}')" 400
grep -qi '^X-Tt-Logid: 20' <<<"$H" && ok || bad "X-Tt-Logid missing"
grep -qi '^Content-Type: application/json; charset=utf-8' <<<"$H" && ok || bad "content type"
expect "wrong secret code" "$(token cli_test nope | jq .code)" 10014
expect "unknown app code" "$(token nobody secret | jq .code)" 10014
expect "malformed body code" "$(curl -s -X POST "$B/open-apis/auth/v3/tenant_access_token/internal" -d '{' | jq .code)" 9499
TOKB=$(token cli_b sec2 | jq -r .tenant_access_token)
[ "$TOKB" != "$TOK" ] && ok || bad "apps share a token"

# Auth gates -----------------------------------------------------------------------------------
R=$(curl -s "$(task_url 1 x)")
expect "missing auth" "$(jq .code <<<"$R")" 99991661
expect "error.log_id" "$(jq -r '.error.log_id | length' <<<"$R")" 34
expect "not t- token" "$(poll x-abc 1 x | cut -d' ' -f2- | jq .code)" 99991671
R=$(poll t-abc 1 x)
expect "unknown token" "$(cut -d' ' -f2- <<<"$R" | jq -c '[.code,.msg]')" '[99991663,"Invalid access token for authorization. Please make a request with token attached."]'
expect "unknown token http" "${R%% *}" 400
R=$(poll "$TOK" 1 nope)
expect "unknown task http" "${R%% *}" 400
expect "unknown task code" "$(cut -d' ' -f2- <<<"$R" | jq .code)" 1002008
expect "bad website id" "$(poll "$TOK" 12a x | cut -d' ' -f2- | jq .code)" 1002002
expect "bad task id" "$(poll "$TOK" 1 'a.b' | cut -d' ' -f2- | jq .code)" 1002002

# Registered tasks -----------------------------------------------------------------------------
expect "register" "$(ctl POST /_sim/tasks '[
  {"website_id":"7047318856652261676","delivery_task_id":"f1c2a0f138ec492d99d7ab73594158ad","ready_after_ms":700},
  {"website_id":"1","delivery_task_id":"fail_1","final":"failed","status_msg":"dup","extra_info":"42",
   "errors":[{"code":1002001,"http":500,"count":2}]},
  {"website_id":1,"delivery_task_id":"nf","final":"not_found"},
  {"website_id":"1","delivery_task_id":"inv","final":"invalid_request"},
  {"website_id":"1","delivery_task_id":"nev","final":"never","pending":"status1"},
  {"website_id":"1","delivery_task_id":"own","application_id":"A1","talent_id":"T1","job_id":"J1"}]')" '{"registered":6}'
expect "register rejects unknown field" "$(ctl POST /_sim/tasks '{"website_id":"1","delivery_task_id":"z","readyafter":1}' | jq -r .error)" 'unknown task field "readyafter"'
W=7047318856652261676
TID=f1c2a0f138ec492d99d7ab73594158ad
SHAPES=""
for _ in 1 2 3 4 5 6; do
  SHAPES="$SHAPES$(poll "$TOK" $W $TID | cut -d' ' -f2- | jq -c '[.code, (if has("data") then (.data | if . == null then "null" elif . == {} then "{}" else .status end) else "missing" end)]')"
done
expect "pending rotation" "$SHAPES" '[0,"missing"][0,"null"][0,"{}"][0,0][0,1][0,"missing"]'
sleep 0.8
R=$(poll "$TOK" $W $TID)
expect "succeeded http" "${R%% *}" 200
expect "succeeded body" "$(cut -d' ' -f2- <<<"$R" | jq -c '[.data.status, .data.delivery.application_id, .data.delivery.talent_id, .data.delivery.id, .data.status_msg, .data.extra_info]')" \
  "[2,\"app-$TID\",\"tal-$TID\",\"deprecated-id\",\" \",\"  \"]"
expect "task errors 1" "$(poll "$TOK" 1 fail_1 | cut -c1-25)" '500 {"code":1002001,"msg"'
expect "task errors 2" "$(poll "$TOK" 1 fail_1 | cut -c1-25)" '500 {"code":1002001,"msg"'
expect "failed" "$(poll "$TOK" 1 fail_1)" '200 {"code":0,"msg":"success","data":{"status":3,"status_msg":"dup","extra_info":"42","delivery":null}}'
expect "final not_found" "$(poll "$TOK" 1 nf | cut -d' ' -f2- | jq .code)" 1002008
expect "final invalid_request" "$(poll "$TOK" 1 inv | cut -d' ' -f2- | jq .code)" 1002002
expect "never + status1" "$(poll "$TOK" 1 nev | cut -d' ' -f2- | jq .data.status)" 1
expect "own ids" "$(poll "$TOK" 1 own | cut -d' ' -f2- | jq -c '[.data.delivery.application_id,.data.delivery.talent_id,.data.delivery.job_id,.data.delivery.user_id]')" '["A1","T1","J1","u-own"]'
expect "stats tasks" "$(ctl GET '/_sim/stats?tasks=1' | jq -c '[.tasks.fail_1, .tasks.own, .tasks.nf]')" '[3,1,1]'

# Faults ---------------------------------------------------------------------------------------
expect "queue faults" "$(ctl POST /_sim/faults '[{"kind":"http_500"},{"kind":"garbage"},{"kind":"reset"},
  {"kind":"rate_limit"},{"kind":"code","code":99991672,"count":2},{"code":1002001}]')" '{"queued":6,"pending":7}'
R=$(poll "$TOK" 1 own); expect "fault http_500" "${R:0:22}" '500 {"code":1002001,"m'
R=$(curl -s -D - -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
expect "fault garbage" "$(head -1 <<<"$R" | tr -d '\r')" "HTTP/1.1 502 Bad Gateway"
grep -q '<html>' <<<"$R" && ok || bad "garbage body"
curl -s -o /dev/null -H "Authorization: Bearer $TOK" "$(task_url 1 own)"
expect "fault reset (curl exit 52: empty reply)" "$?" 52
R=$(curl -s -D - -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
expect "fault rate_limit" "$(head -1 <<<"$R" | awk '{print $2}')" 429
grep -qi '^x-ogw-ratelimit-reset: 1' <<<"$R" && ok || bad "rate_limit fault reset header"
expect "fault code 1" "$(poll "$TOK" 1 own | cut -c1-21)" '400 {"code":99991672,'
expect "fault code 2" "$(poll "$TOK" 1 own | cut -c1-21)" '400 {"code":99991672,'
expect "fault code default http" "$(poll "$TOK" 1 own | cut -c1-20)" '500 {"code":1002001,'
expect "faults drained" "$(poll "$TOK" 1 own | cut -c1-4)" '200 '
ctl POST /_sim/faults '{"kind":"timeout","delay_ms":2500}' >/dev/null
S=$(date +%s%N)
curl -s -m 1 -o /dev/null -H "Authorization: Bearer $TOK" "$(task_url 1 own)"
expect "fault timeout: client times out (curl exit 28)" "$?" 28
ctl POST /_sim/faults '{"kind":"timeout","delay_ms":300}' >/dev/null
S=$(date +%s%N)
R=$(poll "$TOK" 1 own)
E=$((($(date +%s%N) - S) / 1000000))
expect "timeout then normal answer" "${R:0:4}" "200 "
[ "$E" -ge 290 ] && ok || bad "timeout held only ${E} ms"
expect "bad fault kind" "$(ctl POST /_sim/faults '{"kind":"nope"}' | jq -r .error)" 'unknown fault kind "nope"'

# Hostile faults: announced but cut, huge, slowloris, invalid UTF-8, deep, mislabelled, empty.
ctl POST /_sim/faults '[{"kind":"truncated"},{"kind":"huge","bytes":300000},{"kind":"slowloris","delay_ms":100},
  {"kind":"bad_utf8"},{"kind":"deep_json","bytes":50},{"kind":"wrong_type"},{"kind":"empty_200"}]' >/dev/null
R=$(curl -s -D - -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
expect "fault truncated (curl exit 18: partial file)" "$?" 18
grep -qi '^content-length: 1[0-9][0-9]' <<<"$R" && ok || bad "truncated: Content-Length of the whole answer"
expect "fault huge: bytes" "$(curl -s -H "Authorization: Bearer $TOK" "$(task_url 1 own)" | wc -c)" 300000
R=$(curl -s -m 1 -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
expect "fault slowloris: client times out (curl exit 28)" "$?" 28
[ "${#R}" -ge 5 ] && [ "${#R}" -le 12 ] && ok || bad "slowloris sent ${#R} bytes in 1 s at 100 ms each"
R=$(curl -s -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
python3 -c 'import sys; sys.stdin.buffer.read().decode("utf-8")' <<<"$R" 2>/dev/null && bad "bad_utf8 body is valid UTF-8" || ok
expect "fault deep_json" "$(poll "$TOK" 1 own | tr -cd '[' | wc -c)" 50
R=$(curl -s -D - -H "Authorization: Bearer $TOK" "$(task_url 1 own)")
grep -qi '^content-type: text/html; charset=gbk' <<<"$R" && ok || bad "wrong_type content type"
grep -q '"code":0' <<<"$R" && ok || bad "wrong_type: the normal answer"
expect "fault empty_200" "$(poll "$TOK" 1 own)" "200 "
expect "hostile faults counted" "$(ctl GET /_sim/stats | jq -c '[.by_code.truncated,.by_code.huge,.by_code.slowloris,.by_code.bad_utf8,.by_code.deep_json,.by_code.wrong_type,.by_code.empty_200]')" '[1,1,1,1,1,1,1]'

# Keep-alive -----------------------------------------------------------------------------------
N=$(curl -sv -o /dev/null -o /dev/null -o /dev/null -H "Authorization: Bearer $TOK" "$(task_url 1 own)" \
  "$(task_url 1 own)" "$B/_sim/stats" 2>&1 | grep -c 'Re-using existing connection')
expect "keep-alive reuse" "$N" 2
ctl POST /_sim/config '{"latency_ms":"100-150"}' >/dev/null
S=$(date +%s%N)
N=$(curl -sv -o /dev/null -o /dev/null -H "Authorization: Bearer $TOK" "$(task_url 1 own)" "$(task_url 1 own)" 2>&1 |
  grep -c 'Re-using existing connection')
E=$((($(date +%s%N) - S) / 1000000))
expect "keep-alive reuse after a held answer" "$N" 1
[ "$E" -ge 200 ] && ok || bad "latency 100-150 x2 took ${E} ms"
ctl POST /_sim/config '{"latency_ms":0}' >/dev/null

# Revoke ---------------------------------------------------------------------------------------
expect "revoke" "$(ctl POST /_sim/revoke | jq .revoked)" 2
expect "revoked token" "$(poll "$TOK" 1 own | cut -d' ' -f2- | jq .code)" 99991663
TOK2=$(token cli_test secret | jq -r .tenant_access_token)
[ "$TOK2" != "$TOK" ] && ok || bad "same token after revoke"
expect "new token works" "$(poll "$TOK2" 1 own | cut -c1-4)" "200 "

# Records --------------------------------------------------------------------------------------
ctl POST /_sim/reset >/dev/null
expect "reset stats" "$(ctl GET /_sim/stats | jq -c '[.calls,.records,.tasks_registered]')" '[0,0,0]'
poll "$TOK2" 5 aa >/dev/null
poll "" 5 bb >/dev/null
token cli_test secret >/dev/null
REQ=$(ctl GET /_sim/requests)
expect "records count" "$(jq length <<<"$REQ")" 3
expect "record 0" "$(jq -c '.[0] | [.i,.method,.path,.website_id,.task_id,.app_id,.token,.http,.code,.status]' <<<"$REQ")" \
  "[0,\"GET\",\"/open-apis/hire/v1/websites/5/delivery_tasks/aa\",\"5\",\"aa\",\"cli_test\",\"$TOK2\",400,1002008,null]"
expect "record 1 (no token)" "$(jq -c '.[1] | [.app_id,.token,.code]' <<<"$REQ")" '[null,null,99991661]'
expect "record 2 (token call)" "$(jq -c '.[2] | [.method,.app_id,.token,.http,.code]' <<<"$REQ")" "[\"POST\",\"cli_test\",\"$TOK2\",200,0]"
expect "records since" "$(ctl GET '/_sim/requests?since=2' | jq -c '[.[].i]')" '[2]'
expect "records limit" "$(ctl GET '/_sim/requests?since=0&limit=2' | jq -c '[.[].i]')" '[0,1]'
[ "$(jq '.[0].ts_ms' <<<"$REQ")" -le "$(jq '.[2].ts_ms' <<<"$REQ")" ] && ok || bad "ts_ms order"

# Rate limit -----------------------------------------------------------------------------------
# Per minute is deterministic: 60 calls against 55/min admit exactly 55.
ctl POST /_sim/config '{"rate_per_second":0,"rate_per_minute":55}' >/dev/null
ctl POST /_sim/reset >/dev/null
for _ in $(seq 60); do echo "url = \"$(task_url 1 q)\""; echo "output = /dev/null"; done >"$TMP/urls"
OUT=$(curl -s -Z --parallel-max 60 -K "$TMP/urls" -H "Authorization: Bearer $TOK2" -w '%{http_code}\n' 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
expect "per-minute limit" "$OUT" " 55 400; 5 429;"
H=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $TOK2" "$(task_url 1 q)")
expect "minute limit header" "$(grep -i '^x-ogw-ratelimit-limit' <<<"$H" | tr -d '\r')" "x-ogw-ratelimit-limit: 55"
RS=$(grep -i '^x-ogw-ratelimit-reset' <<<"$H" | tr -d '\r' | awk '{print $2}')
[ "$RS" -ge 1 ] && [ "$RS" -le 60 ] && ok || bad "minute reset header [$RS]"
# Per second: 60 parallel calls against 50/s; retried if they straddle a window boundary.
ctl POST /_sim/config '{"rate_per_second":50,"rate_per_minute":0}' >/dev/null
for attempt in 1 2 3; do
  ctl POST /_sim/reset >/dev/null
  OUT=$(curl -s -Z --parallel-max 60 -K "$TMP/urls" -H "Authorization: Bearer $TOK2" -w '%{http_code}\n' 2>/dev/null | sort | uniq -c | tr -s ' ' | tr '\n' ';')
  [ "$OUT" = " 50 400; 10 429;" ] && break
  sleep 0.3
done
expect "per-second limit" "$OUT" " 50 400; 10 429;"
expect "stats after per-second burst" "$(ctl GET /_sim/stats | jq -c '[.calls,.rate_limited,.max_calls_in_1s,.by_code["99991400"]]')" '[60,10,50,10]'
ctl POST /_sim/config '{"rate_per_second":0,"rate_per_minute":0}' >/dev/null

# Auto tasks -----------------------------------------------------------------------------------
ctl POST /_sim/config '{"unknown_tasks":"auto","auto_ready":"fixed:300"}' >/dev/null
expect "auto pending" "$(poll "$TOK2" 9 auto1 | cut -d' ' -f2-)" '{"code":0,"msg":"success"}'
sleep 0.35
expect "auto ready" "$(poll "$TOK2" 9 auto1 | cut -d' ' -f2- | jq .data.status)" 2
expect "task inspection" "$(ctl GET '/_sim/task?website_id=9&delivery_task_id=auto1' | jq -c '[.final,.auto,.polls,.ready_at_ms < .now_ms]')" '["succeeded",true,2,true]'
ctl POST /_sim/config '{"auto_ready":"fixed:0","auto_failed":1}' >/dev/null
expect "auto failed" "$(poll "$TOK2" 9 auto2 | cut -d' ' -f2- | jq .data.status)" 3
ctl POST /_sim/config '{"unknown_tasks":"not_found","auto_failed":0}' >/dev/null

# A large registration ---------------------------------------------------------------------------
python3 -c '
import json
print(json.dumps([{"website_id": "77", "delivery_task_id": "bulk-%d" % i, "ready_after_ms": i % 5000} for i in range(30000)]))' >"$TMP/bulk.json"
expect "bulk register" "$(curl -s -X POST "$B/_sim/tasks" --data-binary @"$TMP/bulk.json")" '{"registered":30000}'
expect "bulk task answers" "$(poll "$TOK2" 77 bulk-0 | cut -d' ' -f2- | jq .data.status)" 2
stop_sim

# Short token TTL: every call issues a new token; tokens expire on their own -------------------
start_sim --token-ttl 1 --threads 2
T1=$(token cli_test secret)
T2=$(token cli_test secret)
expect "ttl<1800: new token each call" "$([ "$(jq -r .tenant_access_token <<<"$T1")" != "$(jq -r .tenant_access_token <<<"$T2")" ] && echo yes)" yes
expect "ttl expire" "$(jq .expire <<<"$T2")" 1
expect "old token still valid" "$(poll "$(jq -r .tenant_access_token <<<"$T1")" 1 x | cut -d' ' -f2- | jq .code)" 1002008
sleep 1.1
expect "expired token" "$(poll "$(jq -r .tenant_access_token <<<"$T2")" 1 x | cut -d' ' -f2- | jq .code)" 99991663
expect "token stats" "$(ctl GET /_sim/stats | jq -c '[.tokens_issued,.token_calls]')" '[2,2]'
stop_sim

# Concurrency: 600 keep-alive connections with 50 ms latency ---------------------------------------
start_sim --latency-ms 50 --rate-per-second 0 --rate-per-minute 0
ctl POST /_sim/tasks '{"website_id":"1","delivery_task_id":"c"}' >/dev/null
TOK=$(token cli_test secret | jq -r .tenant_access_token)
OUT=$(python3 - "$(cat "$TMP/port")" "$TOK" <<'EOF'
import asyncio, sys, time
port, tok = int(sys.argv[1]), sys.argv[2]
CONNS, PER = 600, 5
req = (f"GET /open-apis/hire/v1/websites/1/delivery_tasks/c HTTP/1.1\r\nHost: x\r\n"
       f"Authorization: Bearer {tok}\r\n\r\n").encode()
async def one(stats):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(PER):
        w.write(req)
        head = await r.readuntil(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        body = await r.readexactly(n)
        stats[head.split(b" ")[1].decode()] = stats.get(head.split(b" ")[1].decode(), 0) + 1
        if b"connection: close" in head.lower():
            stats["close"] = stats.get("close", 0) + 1
    w.close()
async def main():
    stats = {}
    t = time.time()
    await asyncio.gather(*[one(stats) for _ in range(CONNS)])
    print(sorted(stats.items()), "%.1f" % (time.time() - t))
asyncio.run(main())
EOF
)
expect "600 connections x 5 requests" "${OUT% *}" "[('200', 3000)]"
[ "$(awk '{print $NF}' <<<"$OUT" | cut -d. -f1)" -lt 10 ] && ok || bad "concurrency run too slow: $OUT"
expect "calls counted" "$(ctl GET /_sim/stats | jq .calls)" 3000

# Shutdown while answers are held --------------------------------------------------------------
ctl POST /_sim/config '{"latency_ms":5000}' >/dev/null
curl -s -o /dev/null -m 10 -H "Authorization: Bearer $TOK" "$(task_url 1 c)" &
CURLPID=$!
sleep 0.3
S=$(date +%s%N)
stop_sim
E=$((($(date +%s%N) - S) / 1000000))
[ "$E" -lt 3000 ] && ok || bad "shutdown with a held answer took ${E} ms"
wait "$CURLPID"

echo "dw-sim selfcheck: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
