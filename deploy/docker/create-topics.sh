#!/bin/bash
# The compose stack's topic job: creates the three topics (PARTITIONS each, default 4) once
# the broker answers, retrying for up to 120 s. Exit 0 when all exist.
set -u
bs=${KAFKA_BOOTSTRAP:-kafka:9092}
parts=${PARTITIONS:-4}
deadline=$((SECONDS + ${TOPICS_TIMEOUT:-120}))
for t in hire.delivery_tasks.created hire.delivery_tasks.resolved hire.delivery_tasks.dlq; do
  until dw-kafkatool create-topic -b "$bs" "$t" "$parts" --timeout-ms 10000; do
    ((SECONDS < deadline)) || { echo "create-topics: $bs did not create $t" >&2; exit 1; }
    sleep 2
  done
done
