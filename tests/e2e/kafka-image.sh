#!/usr/bin/env bash
# Builds the local stand-in for the apache/kafka image docker-compose.yml names, from the
# broker jars tests/kafka/kafka.sh fetches (the same ones the broker tests run), on the local
# Debian base image (tests/e2e/base-image.sh). Nothing is done when the image is there.
#
#   tests/e2e/kafka-image.sh [IMAGE_NAME]     (default: the kafka service's image in
#                                              docker-compose.yml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:-$(sed -n '/^  kafka:/,/^  [a-z]/s/^    image: *//p' "$root/docker-compose.yml" | head -n1)}
[[ -n $name ]] || { echo "kafka-image: no image name for the kafka service in docker-compose.yml" >&2; exit 1; }
if docker image inspect "$name" >/dev/null 2>&1; then
  echo "kafka-image: $name present"
  exit 0
fi
"$root/tests/kafka/kafka.sh" fetch
libs=${DW_KAFKA_CACHE:-$HOME/.cache/delivery-worker/kafka-3.9.x}/libs
[[ -f $libs/.dw-fetch-complete ]] || { echo "kafka-image: no jars in $libs (tests/kafka/kafka.sh fetch)" >&2; exit 1; }
ctx=$(mktemp -d "${TMPDIR:-/tmp}/dw-kafka-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$here/kafka-image/Dockerfile" "$here/kafka-image/run.sh" "$ctx/"
cp -r "$libs" "$ctx/libs"
rm -f "$ctx/libs/.dw-fetch-complete"
echo "kafka-image: building $name ($(ls "$ctx/libs" | wc -l) jars)"
DOCKER_BUILDKIT=0 docker build -q --network host -t "$name" "$ctx" >/dev/null
echo "kafka-image: built $name"
