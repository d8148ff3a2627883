#!/usr/bin/env bash
# smoke.sh MCP_LOAD TEST_SERVER -- ctest `mcp_load_smoke`: mcp-load against aip-test-server --http
# in both reply modes, the idle mode, and the error paths that must make it fail (a server that
# answers 500, one that answers garbage, one that never answers). A load generator that counts
# a wrong answer as a call would make every benchmark figure meaningless, so this is tested.
set -euo pipefail
LOAD=$1 SERVER=$2
TMP=$(mktemp -d)
SRV=
trap '[[ -n $SRV ]] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT

# Starts the server with reply mode $1 (and env from the caller); sets SRV and URL.
start() {
  rm -f "$TMP/port"
  "$SERVER" --http 127.0.0.1:0 --reply "$1" --port-file "$TMP/port" 2>>"$TMP/server.log" &
  SRV=$!
  for _ in $(seq 50); do [[ -s $TMP/port ]] && break; sleep 0.1; done
  URL=http://127.0.0.1:$(cat "$TMP/port")/mcp
}
stop() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; SRV=; }
fail() { echo "FAIL: $*" >&2; cat "$TMP/out" "$TMP/err" >&2 2>/dev/null || true; exit 1; }
run() { "$LOAD" --url "$URL" "$@" >"$TMP/out" 2>"$TMP/err"; }
field() { tr ' ' '\n' <"$TMP/out" | sed -n "s/^$1=//p"; }

for reply in json sse; do
  start "$reply"
  run --sessions 4 --duration 0.3 --warmup 0.1 --payload 16 || fail "$reply small"
  [[ $(field errors) == 0 && $(field calls) -gt 0 ]] || fail "$reply small: no calls"
  run --sessions 2 --duration 0.3 --warmup 0.1 --payload 65536 --protocol 2025-11-25 --cpu-pid "$SRV" ||
    fail "$reply 64 KiB"
  [[ -n $(field cpu_us_per_call) ]] || fail "$reply: no cpu_us_per_call"
  stop
done

start json
run --idle-sessions 300 --hold 0.1 --connections 8 || fail "idle"
grep -q '^ready sessions=300 ok=300' "$TMP/out" || fail "idle: no ready line"
run --sessions 2 --duration 0.3 --tool add && fail "isError results must count as errors"
stop

for fault in 500 garbage hang; do
  AIP_TEST_HTTP_FAULT=$fault start json
  run --sessions 2 --duration 0.5 --warmup 0 --timeout 0.2 && fail "fault $fault passed"
  [[ $(field errors) -gt 0 ]] || fail "fault $fault: no errors counted"
  stop
done

run --sessions 1 --duration 0.3 && fail "a refused connection passed"
rc=0
"$LOAD" --sessions 1 >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "no --url: exit $rc, want 2"
echo "mcp-load smoke: ok"
