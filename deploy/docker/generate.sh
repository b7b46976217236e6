#!/bin/bash
# The compose stack's task generator: produces task-created events to the input topic, RATE
# per second (default 5) in batches of one second, TOTAL in all (default 0: until stopped).
# The simulator runs with --unknown-tasks auto, so every task id it has not seen becomes a
# task that turns ready after a while: each event resolves to a result (or, for the share
# the simulator fails, a result with outcome "failed").
set -u
bs=${KAFKA_BOOTSTRAP:-kafka:9092}
topic=${INPUT_TOPIC:-hire.delivery_tasks.created}
rate=${RATE:-5}
total=${TOTAL:-0}
website=${WEBSITE_ID:-7047318856652261676}
run=${RUN_ID:-$(date +%s)}
trap 'echo "generate: stopped after $n events"; exit 0' TERM INT
n=0
while ((total == 0 || n < total)); do
  batch=$rate
  ((total == 0 || n + batch <= total)) || batch=$((total - n))
  for ((i = 0; i < batch; i++)); do
    id="gen-$run-$((n + i))"
    printf '{"key":"%s","value":{"website_id":"%s","delivery_task_id":"%s","event_id":"ev-%s"}}\n' \
      "$id" "$website" "$id" "$id"
  done | dw-kafkatool produce -b "$bs" "$topic" >/dev/null || { echo "generate: produce failed" >&2; sleep 2; continue; }
  n=$((n + batch))
  ((n % (rate * 30) == 0)) && echo "generate: $n events produced"
  sleep 1 & wait $!
done
echo "generate: done, $n events produced"
