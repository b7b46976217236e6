#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (-fsanitize=fuzzer,address,undefined)
# and fuzzes each for a while, starting from its seed corpus in tests/fuzz/corpus/<target>.
# New inputs go to a working corpus in the build directory, never into the repository, unless
# DW_FUZZ_MERGE=1, which then merges the ones that add coverage into the seed corpus.
#
#   tests/fuzz/run.sh                  every target for DW_FUZZ_SECONDS (default 20) seconds
#   tests/fuzz/run.sh 300 config api   the named targets (codec api config offsetmap), 300 s each
#   tests/fuzz/run.sh --build          only build
#   tests/fuzz/run.sh --ctest          as ctest's fuzz.run calls it (skipped when DW_SANITIZED=1)
#
# Environment: DW_FUZZ_SECONDS, DW_FUZZ_BUILD_DIR (default build/fuzz), DW_FUZZ_MERGE,
# DW_FUZZ_ARGS (more libFuzzer flags), DW_FUZZ_CC (default clang). Exits 1 when a target
# crashes, leaks, times out or fails to build (the crashing input is then in
# <build>/artifacts/<target>/), 77 when no clang with libFuzzer is found (ctest: skipped).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/tests/fuzz
build=${DW_FUZZ_BUILD_DIR:-$root/build/fuzz}
cc=${DW_FUZZ_CC:-clang}
seconds=${DW_FUZZ_SECONDS:-20}
build_only=0
all=(codec api config offsetmap)
targets=()

for a in "$@"; do
  case $a in
    --build) build_only=1 ;;
    --ctest) # from ctest: the sanitizer pass of tests/run.sh would only repeat the same run
      if [[ ${DW_SANITIZED:-0} == 1 ]]; then echo "fuzz: skipped in the sanitizer pass"; exit 77; fi ;;
    [0-9]*) seconds=$a ;;
    codec|api|config|offsetmap) targets+=("$a") ;;
    *) echo "usage: $0 [--build] [--ctest] [SECONDS] [codec|api|config|offsetmap ...]" >&2; exit 2 ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${all[@]}")

if ! command -v "$cc" >/dev/null; then
  echo "fuzz: $cc not found; skipped (apt-get install clang)"; exit 77
fi
mkdir -p "$build"
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}' |
     "$cc" -x c -fsanitize=fuzzer -o "$build/.probe" - 2>/dev/null; then
  echo "fuzz: $cc cannot build libFuzzer targets; skipped"; exit 77
fi

flags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
       -I"$root/include" -I"$src")
sources() { # the worker modules each target links
  case $1 in
    codec|api) echo "worker/event.c worker/answer.c worker/result.c worker/auth.c worker/json.c" \
                    "worker/text.c worker/common.c" ;;
    config) echo "worker/config.c worker/common.c worker/hostport.c worker/http.c worker/log.c" \
                 "worker/text.c worker/properties.c worker/metrics.c" ;; # addresses, URL check,
                                                                       # properties file, call timing
    offsetmap) echo "worker/offsetmap.c worker/common.c" ;;
  esac
}
libs() {
  case $1 in
    codec|api) pkg-config --cflags --libs libcjson ;;
    config) pkg-config --cflags --libs libconfig libcurl libuv; echo -lm -lpthread -DDW_VERSION=\"fuzz\" ;;
    offsetmap) ;;
  esac
}

status=0
for t in "${targets[@]}"; do
  bin=$build/fuzz_$t
  # shellcheck disable=SC2046
  if ! (cd "$root" && "$cc" "${flags[@]}" -o "$bin" "tests/fuzz/fuzz_$t.c" $(sources "$t") $(libs "$t")); then
    echo "fuzz: $t: build failed"; status=1; continue
  fi
done
[[ $status == 0 ]] || exit 1
[[ $build_only == 0 ]] || { echo "fuzz: built ${targets[*]} in $build"; exit 0; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/lsan.supp:print_suppressions=0}
for t in "${targets[@]}"; do
  work=$build/corpus/$t art=$build/artifacts/$t/ log=$build/fuzz_$t.log
  mkdir -p "$work" "$art"
  dict=()
  [[ -f $src/$t.dict ]] && dict=(-dict="$src/$t.dict")
  echo "=== fuzz $t: ${seconds}s (log $log)"
  # shellcheck disable=SC2086
  if "$build/fuzz_$t" "$work" "$src/corpus/$t" "${dict[@]}" -max_total_time="$seconds" \
       -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
       -artifact_prefix="$art" ${DW_FUZZ_ARGS:-} </dev/null >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE' "$log" |
      tr '\n' ' '; echo
    grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1
  else
    echo "fuzz: $t FAILED; the end of its log:"; tail -n 60 "$log"
    ls -l "$art" 2>/dev/null || true
    status=1
    continue
  fi
  if [[ ${DW_FUZZ_MERGE:-0} == 1 ]]; then
    "$build/fuzz_$t" -merge=1 "$src/corpus/$t" "$work" "${dict[@]}" -max_len=8192 \
      </dev/null >"$log.merge" 2>&1 || { echo "fuzz: $t: merge failed"; status=1; }
    echo "fuzz: $t: seed corpus now $(ls "$src/corpus/$t" | wc -l) inputs"
  fi
done
exit $status
