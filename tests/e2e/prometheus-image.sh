#!/usr/bin/env bash
# Builds the local stand-in for the prom/prometheus image docker-compose.yml names, from
# Debian's prometheus package on the local Debian base image (tests/e2e/base-image.sh).
# Nothing is done when the image is there.
#
#   tests/e2e/prometheus-image.sh [IMAGE_NAME]   (default: the prometheus service's image in
#                                                 docker-compose.yml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=${1:-$(sed -n '/^  prometheus:/,/^  [a-z]/s/^    image: *//p' "$root/docker-compose.yml" | head -n1)}
[[ -n $name ]] || { echo "prometheus-image: no image name for the prometheus service in docker-compose.yml" >&2; exit 1; }
if docker image inspect "$name" >/dev/null 2>&1; then
  echo "prometheus-image: $name present"
  exit 0
fi
echo "prometheus-image: building $name from Debian's prometheus package"
# --network host: apt in the build reaches Debian's mirror as this machine does.
DOCKER_BUILDKIT=0 docker build -q --network host -t "$name" "$here/prometheus-image" >/dev/null
echo "prometheus-image: built $name ($(docker image inspect -f '{{.Size}}' "$name") bytes)"
