#!/usr/bin/env bash
# benchmarks/store.sh -- the store thread under 10,000 approval writes/s beside the loop's
# latency with the store idle, and the cost of a rate-limit check; medians of BENCH_RUNS runs.
#
#   store-bench   (see store-bench.c)  BENCH_STORE_RATE writes/s (10000) for BENCH_DURATION s (5)
#   policy-bench  its "rate limit" section: a limited tool against an unlimited one
#
# Environment: BENCH_RUNS (3), BENCH_DURATION (5), BENCH_STORE_RATE (10000), BENCH_BUILD=0 to
# skip the build. The database goes to a fresh temp dir per run (removed after). Exit 1 when a
# run failed (a write error or a crash); the targets are informational, as in run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${AIP_BUILD_DIR:-build}
RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-5}
RATE=${BENCH_STORE_RATE:-10000}
STORE=$BUILD/benchmarks/store-bench
POLICY=$BUILD/benchmarks/policy-bench
TMP=$(mktemp -d "${TMPDIR:-/tmp}/aip-store-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [[ ${BENCH_BUILD:-1} != 0 ]]; then
  AIP_BUILD_DIR=$BUILD scripts/build.sh >&2 || { echo "store.sh: build failed" >&2; exit 1; }
fi
for f in "$STORE" "$POLICY"; do [[ -x $f ]] || { echo "store.sh: missing $f (build first)" >&2; exit 1; }; done

kv() { awk -v k="$1" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)}' <<<"$2"; }
median() { sort -g | awk '{v[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$TMP/res"
for r in $(seq "$RUNS"); do
  mkdir -p "$TMP/run$r"
  out=$("$STORE" --rate "$RATE" --seconds "$DURATION" --dir "$TMP/run$r") || { echo "$out" >&2; echo "store.sh: store-bench failed" >&2; exit 1; }
  idle=$(grep '^idle ' <<<"$out") load=$(grep '^load ' <<<"$out") batches=$(grep '^batches ' <<<"$out")
  echo "  run $r: ${load#load }" >&2
  echo "$(kv loop_p50_us "$idle") $(kv loop_p99_us "$idle") $(kv loop_p50_us "$load") $(kv loop_p99_us "$load")" \
    "$(kv writes_per_s "$load") $(kv write_p50_us "$load") $(kv write_p99_us "$load")" \
    "$(kv mean_us "$batches") $(kv mean_size "$batches") $(kv p99_le_ms "$batches")" \
    "$(kv loop_cpu_us_per_write "$load") $(kv bucket_persist_ns "$(grep '^ratelimit ' <<<"$out")")" \
    "$(kv work_p99_us "$idle") $(kv work_p99_us "$load") $(kv store_cpu_us_per_write "$load")" >>"$TMP/res"
  rm -rf "$TMP/run$r"
done
col() { awk -v c="$1" '{print $c}' "$TMP/res" | median; }

printf '\nstore: %s approval writes/s for %s s, median of %s runs\n' "$RATE" "$DURATION" "$RUNS"
printf '  %-34s %12s %12s\n' "loop latency (us)" "store idle" "store busy"
printf '  %-34s %12s %12s\n' p50 "$(col 1)" "$(col 3)"
printf '  %-34s %12s %12s   busy/idle %s\n' p99 "$(col 2)" "$(col 4)" \
  "$(awk -v a="$(col 2)" -v b="$(col 4)" 'BEGIN {printf "%.2f", (a > 0 ? b / a : 0)}')"
printf '  %-34s %12s %12s\n' "loop work per iteration p99 (CPU us)" "$(col 13)" "$(col 14)"
printf '  %-34s %12s\n' "writes/s absorbed" "$(col 5)"
printf '  %-34s %12s / %s\n' "write completion p50 / p99 (us)" "$(col 6)" "$(col 7)"
printf '  %-34s %12s us, %s writes each, p99 <= %s ms\n' "store batch: mean" "$(col 8)" "$(col 9)" "$(col 10)"
printf '  %-34s %12s\n' "loop CPU per write (us)" "$(col 11)"
printf '  %-34s %12s\n' "store thread CPU per write (us)" "$(col 15)"
printf '  %-34s %12s\n' "rate-limit bucket persist (ns)" "$(col 12)"
printf '  target: 10,000 writes/s with loop p99 < 2000 us: %s\n' \
  "$(awk -v w="$(col 5)" -v p="$(col 4)" -v r="$RATE" 'BEGIN {print (r >= 10000 && w >= 0.98 * r && p < 2000) ? "PASS" : "MISS"}')"

echo
"$POLICY" --runs 15 | sed -n '/^rate limit/,$p'
