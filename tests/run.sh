#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: installs what is missing, fetches the Kafka
# broker jars (cached), builds, and runs every test (unit, fuzz corpus replay, integration
# against the mock cluster and against a real Kafka 3.9 broker) twice: once in a normal
# build and once under AddressSanitizer + UndefinedBehaviorSanitizer. ctest runs the tests in
# parallel (most of them wait on timers); tests/CMakeLists.txt keeps apart those that must not
# overlap.
#
#   tests/run.sh                 everything
#   tests/run.sh --quick         the quick tier (ctest label "quick": unit, fuzz corpus replay,
#                                integration on the mock cluster, the CLI, the simulator's
#                                self-check) in one normal build; installs only what it needs
#                                (deploy/setup.sh --quick: no Java, Kafka jars, npm or Docker)
#   tests/run.sh -L unit         pass ctest arguments (e.g. a label: unit, integration, broker)
#   DW_SANITIZE=0 tests/run.sh   skip the sanitizer pass
#   DW_TEST_JOBS=N tests/run.sh  tests run at once (default 6, 4 in the sanitizer pass)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
if [[ "${1:-}" == "--quick" ]]; then
  quick=1
  shift
fi

if [[ $quick == 1 ]]; then
  deploy/setup.sh --quick
else
  deploy/setup.sh --test
  tests/kafka/kafka.sh fetch
fi

jobs=$(nproc 2>/dev/null || echo 2)
# The tests mostly wait on timers, brokers and the simulator: more of them than cores run at
# once (measured on 2 cores; see docs/testing.md).
test_jobs=${DW_TEST_JOBS:-6}
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
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j "$test_jobs" "${CTEST_ARGS[@]}")
}

CTEST_ARGS=("$@")
if [[ $quick == 1 ]]; then
  CTEST_ARGS=(-L quick "$@")
  run_pass "quick" build/test || status=1
else
  run_pass "normal" build/test || status=1
fi
if [[ $quick == 0 && "${DW_SANITIZE:-1}" != 0 ]]; then
  # halt_on_error: a finding fails the test that triggered it.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export DW_SANITIZED=1
  test_jobs=${DW_TEST_JOBS:-4} # sanitized binaries use several times the CPU
  run_pass "sanitizers" build/asan -DDW_SANITIZE=ON || status=1
fi
echo "=== tests finished in $(( $(date +%s) - started )) s: $([[ $status == 0 ]] && echo PASSED || echo FAILED)"
exit $status
