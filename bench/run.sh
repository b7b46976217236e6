#!/usr/bin/env bash
# Benchmark of delivery-worker's polling against a real Kafka broker and the API simulator.
#
#   bench/run.sh [--quick] [--strategies fixed-1s,exponential,...] [--replicas 3|0]
#                [--phases realistic,throughput,memory,jitter,replicas] [--keep]
#                [size overrides, see --help]
#
# Checks the prerequisites (installs gnuplot-nox with apt-get when it is missing), builds
# build/release, runs bench/bench.py and writes bench/results/results.md, results.json and
# polling.png. A full run takes about 17 minutes on 2 cores, --quick under 3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

apt_install() {
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install $*; or install it yourself"
        sudo="sudo"
    fi
    printf 'bench: installing %s\n' "$*" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } ||
        die "could not install $*"
}

# ---- prerequisites
for c in cmake python3 java kcat; do
    command -v "$c" >/dev/null ||
        die "$c not found: run deploy/setup.sh --test (build and test packages, Java 17, Maven)"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))' || die "python3 3.7 or newer needed"
command -v gnuplot >/dev/null || apt_install gnuplot-nox
gnuplot -e 'set terminal pngcairo' </dev/null 2>/dev/null || die "gnuplot lacks the pngcairo terminal (apt-get install gnuplot-nox)"
# The broker's jars: fetched once with Maven into ~/.cache/delivery-worker (needs the network once).
tests/kafka/kafka.sh fetch >/dev/null 2>&1 || tests/kafka/kafka.sh fetch ||
    die "cannot fetch the Kafka jars (tests/kafka/kafka.sh fetch)"

# ---- build (Release)
if [[ -z ${DW_BIN_DIR:-} ]]; then
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build/release -j"$(nproc)" >/dev/null || cmake --build build/release -j1
    export DW_BIN_DIR="$ROOT/build/release"
fi

PYTHONDONTWRITEBYTECODE=1 exec python3 bench/bench.py "$@"
