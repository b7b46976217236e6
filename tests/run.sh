#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: installs what is missing, fetches the Kafka
# broker jars (cached), builds, and runs every test (unit, fuzz corpus replay, integration
# against the mock cluster and against a real Kafka 3.9 broker) twice: once in a normal
# build and once under AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   tests/run.sh                 everything
#   tests/run.sh -L unit         pass ctest arguments (e.g. a label: unit, integration, broker)
#   DW_SANITIZE=0 tests/run.sh   skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deploy/setup.sh --test
tests/kafka/kafka.sh fetch

jobs=$(nproc 2>/dev/null || echo 2)
started=$(date +%s)
status=0

run_pass() { # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== $name: build ($dir)"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Debug "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" -- --no-print-directory >/dev/null || {
    cmake --build "$dir" -j 1 -- --no-print-directory; return 1; }
  echo "=== $name: test"
  (cd "$dir" && ctest --output-on-failure --timeout 900 "${CTEST_ARGS[@]}")
}

CTEST_ARGS=("$@")
run_pass "normal" build/test || status=1
if [[ "${DW_SANITIZE:-1}" != 0 ]]; then
  # halt_on_error: a finding fails the test that triggered it.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export DW_SANITIZED=1
  run_pass "sanitizers" build/asan -DDW_SANITIZE=ON || status=1
fi
echo "=== tests finished in $(( $(date +%s) - started )) s: $([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
