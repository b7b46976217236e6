#!/bin/bash
# Start script of the local apache/kafka stand-in: KAFKA_FOO_BAR=x becomes foo.bar=x (as in
# the official image: "___" -> "-", "__" -> "_", "_" -> "."), KAFKA_HEAP_OPTS sets the heap,
# CLUSTER_ID formats the log directory on first start, then the broker runs in the foreground.
set -euo pipefail
conf=/tmp/kafka-config
mkdir -p "$conf"
props=$conf/server.properties
{
  echo "log.dirs=/tmp/kraft-combined-logs"
  while IFS='=' read -r name value; do
    case $name in KAFKA_HEAP_OPTS | KAFKA_JVM_OPTS | KAFKA_OPTS) continue ;; esac
    key=${name#KAFKA_}
    key=$(tr 'A-Z' 'a-z' <<<"$key" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
    printf '%s=%s\n' "$key" "$value"
  done < <(env | grep -E '^KAFKA_[A-Z0-9_]+=' | sort)
} >"$props"
cat >"$conf/log4j.properties" <<'L4J'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
L4J
# shellcheck disable=SC2206
jvm=(${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} ${KAFKA_JVM_OPTS:--XX:+UseSerialGC}
     -Djava.awt.headless=true -Dlog4j.configuration="file:$conf/log4j.properties"
     -Dkafka.logs.dir=/tmp -cp "/opt/kafka/libs/*")
logdir=$(sed -n 's/^log\.dirs=//p' "$props" | tail -n1)
if [[ ! -f $logdir/meta.properties ]]; then
  java "${jvm[@]}" kafka.tools.StorageTool format --ignore-formatted \
    -t "${CLUSTER_ID:?CLUSTER_ID is required}" -c "$props"
fi
exec java "${jvm[@]}" kafka.Kafka "$props"
