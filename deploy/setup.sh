#!/usr/bin/env bash
# Installs what delivery-worker needs to build (with --quick, also to run the quick test tier,
# tests/run.sh --quick; with --test, to run the whole test suite) from Debian's packages.
# Installs only what is missing; safe to run any number of times.
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config librdkafka-dev libcurl4-openssl-dev libcjson-dev
            libconfig-dev libuv1-dev libmicrohttpd-dev libcmocka-dev python3 kcat curl)
build_pkgs+=(libhiredis-dev) # optional: the shared budget store (limits.store)
quick_pkgs=(jq python3-pytest) # sim.selfcheck; pytest: the integration tests
quick_pkgs+=(redis-server) # the shared budget store's integration test
test_pkgs=(openjdk-17-jre-headless maven jq python3-pytest clang libclang-rt-14-dev) # clang + libFuzzer: fuzz.run
test_pkgs+=(prometheus nodejs npm python3-jsonschema) # promtool, node + npm, JSON Schema: tests/deploy
test_pkgs+=(docker.io docker-compose debootstrap) # tests/e2e: engine, compose, base image

want=("${build_pkgs[@]}")
case "${1:-}" in
  "") ;;
  --quick) want+=("${quick_pkgs[@]}") ;;
  --test) want+=("${quick_pkgs[@]}" "${test_pkgs[@]}") ;; # the whole suite holds the quick tier
  *) echo "usage: deploy/setup.sh [--quick|--test]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may have Java and Maven from elsewhere: accept them if they work.
if [[ " ${missing[*]} " == *" openjdk-17-jre-headless "* ]] && command -v java >/dev/null &&
   java -version 2>&1 | grep -q '"17\.'; then
  missing=("${missing[@]/openjdk-17-jre-headless}")
fi
if [[ " ${missing[*]} " == *" maven "* ]] && command -v mvn >/dev/null; then
  missing=("${missing[@]/maven}")
fi
# pytest from elsewhere (pip) will do.
if [[ " ${missing[*]} " == *" python3-pytest "* ]] && python3 -m pytest --version >/dev/null 2>&1; then
  missing=("${missing[@]/python3-pytest}")
fi
# Node and npm from elsewhere (NodeSource's nodejs ships npm) will do.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}")
  missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
deploy_npm() { # --test: the deploy tests' npm packages, cached by their lockfile
  [[ "${1:-}" != "--test" ]] || "$(dirname "$0")/../tests/deploy/npm-install.sh"
}
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all packages present"
  deploy_npm "${1:-}"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
deploy_npm "${1:-}"
