#!/usr/bin/env bash
# benchmarks/run.sh -- the gateway side by side with a direct connection, in one go.
#
# For 64 sessions with a small payload and then with a 64 KiB payload, it measures
#   (a) direct:              mcp-load -> aip-test-server --http (JSON replies)
#   (b) gateway, HTTP up:    mcp-load -> aip serve -> aip-test-server --http (JSON replies)
#   (c) gateway, stdio up:   mcp-load -> aip serve -> aip-test-server (stdio)
# then opens 10,000 idle sessions through a fresh gateway and reads its RSS. Every process is
# started fresh for every run (so peak RSS is per run), on loopback only, and stopped on exit.
# The targets are printed with PASS/MISS for information: the exit status is 0 unless a
# process crashed or a run had errors.
#
# Environment: BENCH_DURATION (s, default 5), BENCH_WARMUP (s, 1), BENCH_RUNS (3; medians are
# printed), BENCH_SESSIONS (64), BENCH_PAYLOADS ("16 65536"), BENCH_IDLE_SESSIONS (10000),
# BENCH_IDLE_HOLD (s, 5), BENCH_BUILD=0 to skip the build, BENCH_KEEP=1 to keep the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${AIP_BUILD_DIR:-build}
DURATION=${BENCH_DURATION:-5}
WARMUP=${BENCH_WARMUP:-1}
RUNS=${BENCH_RUNS:-3}
SESSIONS=${BENCH_SESSIONS:-64}
PAYLOADS=${BENCH_PAYLOADS:-16 65536}
IDLE_N=${BENCH_IDLE_SESSIONS:-10000}
IDLE_HOLD=${BENCH_IDLE_HOLD:-5}
TOKEN=aip_bench_token_0123456789abcdef
# Targets (ARCHITECTURE/issue): gateway CPU per proxied call, added p50 latency, throughput of
# (b) and memory per idle session; judged on the small-payload figures.
T_CPU_US=25 T_ADDED_P50_US=150 T_CALLS_PER_S=20000 T_IDLE_KIB=16

AIP=$ROOT/$BUILD/aip
SERVER=$ROOT/$BUILD/tests/mcp-server/aip-test-server
LOAD=$ROOT/$BUILD/benchmarks/mcp-load
TMP=$(mktemp -d "${TMPDIR:-/tmp}/aip-bench.XXXXXX")
PIDS=()       # every process we started and have not stopped yet
PICKED=" "    # ports handed out, so two picks never collide
FAILED=0

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

# ---- processes --------------------------------------------------------------------------------

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Stops one process we started (and still own: a pid not in PIDS may have been reused), and the
# children it started (the gateway's stdio servers), by pid: TERM, 5 s to exit, then KILL.
stop_pid() {
  local pid=$1 kids i
  [[ " ${PIDS[*]} " == *" $pid "* ]] || return 0
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
  forget_pid "$pid"
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback TCP port into variable $1. Race-free enough for a benchmark: ports are drawn
# at random from a range no service here uses, skipping any socket ss reports.
free_port() {
  local used p
  used=" $(ss -Htan 2>/dev/null | awk '{n=split($4,a,":"); print a[n]}' | tr '\n' ' ') "
  for _ in $(seq 500); do
    p=$((20000 + RANDOM % 40000))
    [[ $used == *" $p "* || $PICKED == *" $p "* ]] && continue
    PICKED+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free port found"
}

# Waits until something accepts on 127.0.0.1:$1, while process $2 is alive.
wait_port() {
  local i
  for i in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Starts aip-test-server --http on a port it picks; sets SRV_PID and SRV_PORT.
start_http_server() {
  local pf=$TMP/server.port i
  rm -f "$pf"
  "$SERVER" --http 127.0.0.1:0 --reply json --port-file "$pf" 2>>"$TMP/server.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  for i in $(seq 100); do [[ -s $pf ]] && break; sleep 0.1; done
  SRV_PORT=$(cat "$pf" 2>/dev/null || true)
  [[ -n $SRV_PORT ]] && wait_port "$SRV_PORT" "$SRV_PID" || die "aip-test-server --http did not start (see $TMP/server.log)"
}

# Writes a gateway config for upstream $1 ("stdio" or an http URL) to $2; sets GW_PORT.
write_config() {
  local up=$1 cfg=$2 admin server
  free_port GW_PORT
  free_port admin
  if [[ $up == stdio ]]; then server="command: [\"$SERVER\"]"; else server="url: \"$up\""; fi
  cat >"$cfg" <<EOF
listen: "127.0.0.1:$GW_PORT"
admin:
  listen: "127.0.0.1:$admin"
store:
  path: "aip.db"
audit:
  path: "audit.jsonl"
limits:
  max_sessions: $((IDLE_N + 1000))
  max_sessions_per_agent: $((IDLE_N + 1000))   # one agent (bench) opens every idle session
servers:
  tools:
    $server
agents:
  - name: bench
    token_sha256: "$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)"
    policy: "policy.yaml"
    servers: [tools]
EOF
}

# Starts the gateway on config $1; sets GW_PID.
start_gateway() {
  rm -f "$TMP/audit.jsonl"
  chmod go-w "$1" "$TMP/policy.yaml" # aip serve refuses files others can write (any umask)
  "$AIP" serve --config "$1" 2>>"$TMP/gateway.log" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_port "$GW_PORT" "$GW_PID" || die "aip serve did not start (see $TMP/gateway.log)"
}

proc_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# ---- one measurement --------------------------------------------------------------------------

kv() { awk -v k="$1" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2)}' <<<"$2"; }

# Runs mode $1 (a|b|c) with payload $2 once; appends "calls/s p50 p99 cpu/call hwm" to a file.
one_run() {
  local mode=$1 payload=$2 url cpu_pid line lpid hwm=- cpu=- rc=0
  case $mode in
  a) start_http_server; url=http://127.0.0.1:$SRV_PORT/mcp; cpu_pid=$SRV_PID ;;
  b) start_http_server; write_config "http://127.0.0.1:$SRV_PORT/mcp" "$TMP/gw.yaml" ;;
  c) write_config stdio "$TMP/gw.yaml" ;;
  esac
  if [[ $mode != a ]]; then
    start_gateway "$TMP/gw.yaml"
    url=http://127.0.0.1:$GW_PORT/mcp
    cpu_pid=$GW_PID
  fi
  # In the background with `wait`, so that ^C stops it at once (bash runs traps only between
  # foreground commands) and cleanup can stop it.
  "$LOAD" --url "$url" --token "$TOKEN" --sessions "$SESSIONS" --duration "$DURATION" \
    --warmup "$WARMUP" --payload "$payload" --cpu-pid "$cpu_pid" >"$TMP/load.out" 2>"$TMP/load.err" &
  lpid=$!
  PIDS+=("$lpid")
  wait "$lpid" || rc=$?
  forget_pid "$lpid"
  cat "$TMP/load.err" >>"$TMP/load.log"
  line=$(cat "$TMP/load.out")
  log "  ($mode) payload=$payload: $line"
  if [[ $mode != a ]]; then
    kill -0 "$GW_PID" 2>/dev/null || { log "run.sh: the gateway died (see $TMP/gateway.log)"; FAILED=1; }
    hwm=$(proc_kib "$GW_PID" VmHWM || echo -)
    cpu=$(kv cpu_us_per_call "$line")
    stop_pid "$GW_PID"
  fi
  [[ $mode != c ]] && stop_pid "$SRV_PID"
  if ((rc != 0)); then # a run with errors has no figures worth a median
    log "run.sh: mcp-load failed (exit $rc):"; head -n 12 "$TMP/load.err" >&2; FAILED=1
    return
  fi
  echo "$(kv calls_per_s "$line") $(kv p50_us "$line") $(kv p99_us "$line") ${cpu:--} ${hwm:--}" \
    >>"$TMP/res-$mode-$payload"
}

# Median of column $2 of file $1 ("-" when there is no number).
median() {
  [[ -s $1 ]] || { echo -; return 0; }
  awk -v c="$2" '$c != "-" && $c != "" {print $c}' "$1" 2>/dev/null | sort -g |
    awk '{v[NR] = $1} END {if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
         else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# ---- idle sessions ----------------------------------------------------------------------------

# Opens IDLE_N sessions through a fresh gateway (upstream $1) and reads its RSS before and while
# they are held. Sets IDLE_BEFORE, IDLE_AFTER (KiB) and IDLE_PER (KiB per session).
idle_test() {
  local up=$1 out=$TMP/idle.out lpid i rc=0
  [[ $up == stdio ]] || { start_http_server; up=http://127.0.0.1:$SRV_PORT/mcp; }
  write_config "$up" "$TMP/gw.yaml"
  start_gateway "$TMP/gw.yaml"
  sleep 0.5
  IDLE_BEFORE=$(proc_kib "$GW_PID" VmRSS)
  "$LOAD" --url "http://127.0.0.1:$GW_PORT/mcp" --token "$TOKEN" --idle-sessions "$IDLE_N" \
    --hold "$IDLE_HOLD" --connections 64 >"$out" 2>>"$TMP/load.log" &
  lpid=$!
  PIDS+=("$lpid")
  for i in $(seq 1200); do grep -q '^ready' "$out" && break; kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
  if grep -q '^ready' "$out"; then
    sleep 0.5 # let the last answers leave the gateway's write queues
    IDLE_AFTER=$(proc_kib "$GW_PID" VmRSS)
  fi
  wait "$lpid" || rc=$?
  forget_pid "$lpid"
  log "  idle: $(tr '\n' ' ' <"$out")"
  kill -0 "$GW_PID" 2>/dev/null || { log "run.sh: the gateway died (see $TMP/gateway.log)"; FAILED=1; }
  stop_pid "$GW_PID"
  stop_pid "${SRV_PID:-0}"
  if ((rc != 0)) || [[ -z ${IDLE_AFTER:-} ]]; then
    log "run.sh: the idle-session test failed (exit $rc):"; tail -n 12 "$TMP/load.log" >&2
    FAILED=1; IDLE_AFTER=-; IDLE_PER=-; return
  fi
  IDLE_PER=$(awk -v a="$IDLE_AFTER" -v b="$IDLE_BEFORE" -v n="$IDLE_N" 'BEGIN {printf "%.2f", (a - b) / n}')
}

# ---- report -----------------------------------------------------------------------------------

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
  if (v == "-" || v == "") print "n/a"; else if (op == "le" ? v + 0 <= t + 0 : v + 0 >= t + 0) print "PASS"; else print "MISS" }'; }

kib() { [[ $1 == - || -z $1 ]] && printf '%s' - || printf '%s KiB' "$1"; }
fmt() { [[ $1 == - || -z $1 ]] && printf '%s' - || printf "%.${2}f" "$1"; }

print_payload() {
  local p=$1 m name
  printf '\npayload %s bytes, %s sessions\n' "$p" "$SESSIONS"
  printf '  %-28s %10s %10s %10s %16s %14s\n' mode "calls/s" "p50 us" "p99 us" "gw CPU us/call" "gw peak RSS"
  for m in a b c; do
    case $m in a) name="(a) direct" ;; b) name="(b) gateway, HTTP upstream" ;; c) name="(c) gateway, stdio upstream" ;; esac
    if [[ ! -s $TMP/res-$m-$p ]]; then printf '  %-28s %s\n' "$name" "no result (skipped or failed, see above)"; continue; fi
    printf '  %-28s %10s %10s %10s %16s %14s\n' "$name" "$(fmt "$(median "$TMP/res-$m-$p" 1)" 0)" \
      "$(fmt "$(median "$TMP/res-$m-$p" 2)" 0)" "$(fmt "$(median "$TMP/res-$m-$p" 3)" 0)" \
      "$(fmt "$(median "$TMP/res-$m-$p" 4)" 1)" "$(kib "$(median "$TMP/res-$m-$p" 5)")"
  done
  local a=$(median "$TMP/res-a-$p" 1) b=$(median "$TMP/res-b-$p" 1)
  local a50=$(median "$TMP/res-a-$p" 2) b50=$(median "$TMP/res-b-$p" 2)
  if [[ $a != - && $b != - ]]; then
    printf '  (b)/(a): throughput ratio %.2f, added p50 %+.0f us\n' \
      "$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')" "$(awk -v a="$a50" -v b="$b50" 'BEGIN {print b - a}')"
  fi
}

print_targets() {
  local p=${PAYLOADS%% *} cpu cps added
  cpu=$(median "$TMP/res-b-$p" 4)
  cps=$(median "$TMP/res-b-$p" 1)
  added=-
  [[ -s $TMP/res-a-$p && -s $TMP/res-b-$p ]] &&
    added=$(awk -v a="$(median "$TMP/res-a-$p" 2)" -v b="$(median "$TMP/res-b-$p" 2)" 'BEGIN {print b - a}')
  printf '\ntargets (payload %s bytes, gateway over HTTP (b)); informational\n' "$p"
  printf '  %-36s %12s %12s  %s\n' target wanted measured verdict
  printf '  %-36s %12s %12s  %s\n' "gateway CPU per proxied call" "<= $T_CPU_US us" "$(fmt "$cpu" 1)" "$(verdict "$cpu" $T_CPU_US le)"
  printf '  %-36s %12s %12s  %s\n' "added p50 latency (b)-(a)" "<= +$T_ADDED_P50_US us" "$(fmt "$added" 0)" "$(verdict "$added" $T_ADDED_P50_US le)"
  printf '  %-36s %12s %12s  %s\n' "throughput of (b)" ">= $T_CALLS_PER_S/s" "$(fmt "$cps" 0)" "$(verdict "$cps" $T_CALLS_PER_S ge)"
  printf '  %-36s %12s %12s  %s\n' "memory per idle session" "<= $T_IDLE_KIB KiB" "${IDLE_PER:--}" "$(verdict "${IDLE_PER:--}" $T_IDLE_KIB le)"
  cpu=$(median "$TMP/res-c-$p" 4)
  printf '  (for comparison, gateway CPU per call over stdio (c): %s us)\n' "$(fmt "$cpu" 1)"
}

# ---- main -------------------------------------------------------------------------------------

main() {
  if [[ ${BENCH_BUILD:-1} != 0 ]]; then scripts/build.sh >&2 || die "build failed"; fi
  for f in "$AIP" "$SERVER" "$LOAD"; do [[ -x $f ]] || die "missing $f (build first)"; done
  grep -q '^AIP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null && log "warning: $BUILD is a sanitizer build"
  cat >"$TMP/policy.yaml" <<EOF
apiVersion: aip.io/v1alpha1
kind: AgentPolicy
metadata:
  name: bench
  version: "1.0.0"
spec:
  mode: enforce
  allowed_tools: [echo]
EOF
  local modes="a b c" p r m up=http
  "$SERVER" --help 2>/dev/null | grep -q -- '--http' || { log "aip-test-server has no --http yet: (a) and (b) skipped"; modes="c"; up=stdio; }
  if [[ $up == http ]]; then
    write_config "http://127.0.0.1:9/mcp" "$TMP/gw.yaml"
    if ! "$AIP" check --config "$TMP/gw.yaml" >"$TMP/check.out" 2>&1; then
      grep -qi 'not supported' "$TMP/check.out" || die "gateway config rejected: $(cat "$TMP/check.out")"
      log "the gateway has no HTTP upstreams yet: (b) skipped"; modes=${modes/b /}; up=stdio
    fi
  fi
  LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
  log "aip-gateway benchmarks: $SESSIONS sessions, ${DURATION}s measured after ${WARMUP}s warmup, $RUNS run(s) each, temp dir $TMP"
  for p in $PAYLOADS; do
    for r in $(seq "$RUNS"); do
      for m in $modes; do one_run "$m" "$p"; done
    done
  done
  log "idle sessions: $IDLE_N through the gateway ($up upstream)"
  idle_test "$up"

  printf 'aip-gateway benchmark: %s, %s CPU(s) shared by load generator, gateway and server\n' \
    "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$(nproc)"
  printf 'medians of %s run(s), %ss measured each after %ss warmup; latency of tools/call echo\n' "$RUNS" "$DURATION" "$WARMUP"
  # Anything else busy on the machine skews every figure; the load average at the start says so.
  printf 'load average before the runs: %s\n' "$LOAD_BEFORE"
  for p in $PAYLOADS; do print_payload "$p"; done
  printf '\nidle sessions through the gateway (%s upstream): %s sessions, RSS before %s KiB, after %s KiB, %s KiB per session\n' \
    "$up" "$IDLE_N" "${IDLE_BEFORE:--}" "${IDLE_AFTER:--}" "${IDLE_PER:--}"
  print_targets
  if ((FAILED)); then log "run.sh: some runs failed (see above)"; exit 1; fi
}

main "$@"
