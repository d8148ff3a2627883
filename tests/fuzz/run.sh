#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...] -- builds the libFuzzer harnesses with clang into
# build-fuzz/ (or $AIP_FUZZ_BUILD_DIR) and runs each for SECONDS (default 20) from its checked-in
# seeds (tests/fuzz/corpus/<target>/, never written to; new inputs go to
# build-fuzz/corpus/<target>/, kept between runs). Fails on any crash, leak, sanitizer report or
# timeout; the input that caused it is saved as build-fuzz/artifacts/<target>-crash-<sha1>.
# Every reproducer in tests/fuzz/crashes-found/ (a bug found and fixed) is run first and must pass.
# Longer runs and reproducing: tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
[ $# -gt 0 ] && shift
dir=${AIP_FUZZ_BUILD_DIR:-build-fuzz}
all=(fuzz_http fuzz_json fuzz_sse fuzz_dlp fuzz_policy_yaml fuzz_config_yaml fuzz_approvals)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2; exit 1; }

CC=clang cmake -S . -B "$dir" -DAIP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$dir/artifacts"
failed=()
# the reproducers of the bugs found so far are regression tests
for f in tests/fuzz/crashes-found/*.fuzz_*; do
  [ -e "$f" ] || continue
  t=${f##*.}
  [[ " ${targets[*]} " == *" $t "* ]] || continue
  if ! "$dir/tests/fuzz/$t" "$f" >"$dir/artifacts/$t.repro.log" 2>&1; then
    echo "fuzz: $f fails again (log: $dir/artifacts/$t.repro.log)"
    failed+=("$t")
  fi
done
for t in "${targets[@]}"; do
  work="$dir/corpus/$t"
  mkdir -p "$work"
  log="$dir/artifacts/$t.log"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  printf 'fuzz: %-18s %ss ... ' "$t" "$secs"
  # a fixed seed: the bounded run in the test command tries inputs in the same order, so a
  # red run is a regression, not luck; longer runs (README.md) use random seeds
  if "$dir/tests/fuzz/$t" -seed="${AIP_FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "${dict[@]}" \
       "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
  else
    echo "FAILED (log: $log)"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)|Test unit written to' "$log" | head -5 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s without a finding"
