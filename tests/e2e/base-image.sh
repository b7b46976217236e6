#!/usr/bin/env bash
# Makes a Debian slim base image by its official name (debian:trixie-slim, the worker's
# Dockerfile's; debian:bookworm-slim, the Kafka and Prometheus stand-ins') where no registry is
# reachable: debootstrap --variant=minbase of the suite the name's tag names from Debian's
# mirror, then docker import. The root filesystem's tarball is cached per suite
# (DW_E2E_CACHE), and nothing is done when the image is already there. Needs root
# (debootstrap) and a running Docker engine.
#
#   tests/e2e/base-image.sh [IMAGE_NAME]      (default debian:trixie-slim)
# Environment: DW_E2E_CACHE (default $HOME/.cache/delivery-worker/e2e), DW_DEBIAN_MIRROR
# (default http://deb.debian.org/debian).
set -euo pipefail
name=${1:-debian:trixie-slim}
suite=${name#*:}
suite=${suite%-slim}
[[ $name == debian:* && $suite =~ ^[a-z]+$ ]] ||
  { echo "base-image: want debian:SUITE-slim, not \"$name\"" >&2; exit 2; }
cache=${DW_E2E_CACHE:-$HOME/.cache/delivery-worker/e2e}
mirror=${DW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$cache/$suite-minbase.tar

if docker image inspect "$name" >/dev/null 2>&1; then
  echo "base-image: $name present"
  exit 0
fi
mkdir -p "$cache"
if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "base-image: debootstrap $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap-$suite.log" >&2; echo "base-image: debootstrap failed" >&2; exit 1; }
  # As the official slim image: no apt lists or caches, updates from SUITE-updates too.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" \
    >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  # and, as the slim image, no documentation now or in later installs
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$tarball" "$name" >/dev/null
echo "base-image: imported $name ($(docker image inspect -f '{{.Size}}' "$name") bytes)"
