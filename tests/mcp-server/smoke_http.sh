#!/usr/bin/env bash
# Smoke test for aip-test-server's Streamable HTTP transport: starts the binary
# on 127.0.0.1 port 0 (the port comes back through --port-file) and drives it
# with curl; jq checks the bodies. Usage: smoke_http.sh path/to/aip-test-server
# Set AIP_SMOKE_WRAPPER to run the server under a tool, e.g.
#   AIP_SMOKE_WRAPPER="valgrind -q --leak-check=full --error-exitcode=99" smoke_http.sh ./aip-test-server
set -u

BIN=${1:?usage: smoke_http.sh path/to/aip-test-server}
read -r -a WRAP <<<"${AIP_SMOKE_WRAPPER:-}"
for tool in jq curl; do
  command -v "$tool" >/dev/null || { echo "smoke_http: $tool is required" >&2; exit 2; }
done

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILS=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1" >&2; FAILS=$((FAILS + 1)); }
expect() { # expect DESC ACTUAL WANTED
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (got '$2', want '$3')"; fi
}
jcheck() { # jcheck DESC FILE JQ_FILTER
  if jq -e "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1: $(head -c 300 "$2")"; fi
}

# start NAME [ENV=VALUE...] -- [ARGS...]: sets URL_<NAME> and PID_<NAME>.
start() {
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  rm -f "$TMP/$name.port" # a stale file from an earlier instance would point at a dead port
  env "${envs[@]}" "${WRAP[@]}" "$BIN" --http 127.0.0.1:0 --port-file "$TMP/$name.port" "$@" \
    2>"$TMP/$name.stderr" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 300); do # up to 30 s: valgrind starts slowly
    [ -s "$TMP/$name.port" ] && break
    sleep 0.1
  done
  printf -v "URL_$name" 'http://127.0.0.1:%s/mcp' "$(cat "$TMP/$name.port" 2>/dev/null)"
  printf -v "PID_$name" '%s' "$pid"
}

# stop NAME SIGNAL: the server must exit 0 on SIGINT and SIGTERM.
stop() {
  local pid_var="PID_$1"
  kill "-$2" "${!pid_var}"
  wait "${!pid_var}"
  expect "$1: exit status 0 on SIG$2" "$?" 0
}

ACCEPT='Accept: application/json, text/event-stream'
JSON='Content-Type: application/json'
# req OUT URL SID BODY [CURL_ARGS...]: POSTs BODY; prints the status, keeps headers in
# OUT.h and the body in OUT.b. SID "" sends no Mcp-Session-Id.
req() {
  local out=$1 url=$2 sid=$3 body=$4; shift 4
  curl -s -o "$TMP/$out.b" -D "$TMP/$out.h" -w '%{http_code}' -H "$JSON" -H "$ACCEPT" \
    ${sid:+-H "Mcp-Session-Id: $sid"} "$@" --data-binary "$body" "$url"
}
header() { grep -i "^$2:" "$TMP/$1.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
# The data lines of an SSE body as one JSON array.
events() { sed -n 's/^data: //p' "$TMP/$1.b" | jq -s . >"$TMP/$1.ev"; }

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"smoke","version":"0"}}}'
INITIALIZED='{"jsonrpc":"2.0","method":"notifications/initialized"}'
call() { # call ID TOOL ARGS_JSON [META_JSON]
  printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s%s}}' \
    "$1" "$2" "$3" "${4:+,\"_meta\":$4}"
}
# session URL: initializes and prints the new session id.
session() {
  req init "$1" "" "$INIT" >/dev/null
  local sid; sid=$(header init mcp-session-id)
  req initialized "$1" "$sid" "$INITIALIZED" >/dev/null
  echo "$sid"
}

# ---------------------------------------------------------------- JSON reply mode
start J AIP_TEST_SMOKE_VAR=x -- --reply json
U=$URL_J
expect "json: initialize -> 200" "$(req init "$U" "" "$INIT")" 200
SID=$(header init mcp-session-id)
if [[ "$SID" =~ ^[!-~]{16,}$ ]]; then pass "json: Mcp-Session-Id is visible ASCII"; else fail "json: Mcp-Session-Id '$SID'"; fi
expect "json: initialize is application/json" "$(header init content-type)" application/json
jcheck "json: initialize result" "$TMP/init.b" '.id == 1 and .result.protocolVersion == "2025-03-26"'
expect "json: notification -> 202" "$(req n "$U" "$SID" "$INITIALIZED")" 202
expect "json: echo -> 200" "$(req echo "$U" "$SID" "$(call 2 echo '{"message":"hi ✓"}')")" 200
jcheck "json: echo body" "$TMP/echo.b" '.id == 2 and .result.content == [{"type":"text","text":"hi ✓"}]'
req slow "$U" "$SID" "$(call 3 slow '{"ms":200,"steps":2}' '{"progressToken":"p"}')" >/dev/null
jcheck "json: progress dropped, result only" "$TMP/slow.b" '.id == 3 and .result.content[0].text == "slept 200ms"'
req batch "$U" "$SID" "[$(call 4 add '{"a":2,"b":3}'),$INITIALIZED,{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}]" >/dev/null
jcheck "json: batch -> array of responses" "$TMP/batch.b" \
  'type == "array" and (map(.id) | sort) == [4,5] and (.[] | select(.id == 4) | .result.structuredContent.sum == 5)'
expect "json: notifications-only batch -> 202" "$(req nb "$U" "$SID" "[$INITIALIZED,$INITIALIZED]")" 202
req hdr "$U" "$SID" "$(call 6 headers '{}')" -H 'X-Smoke-Header: forwarded value' -H 'Authorization: Bearer smoke' >/dev/null
jcheck "json: headers tool echoes request headers" "$TMP/hdr.b" \
  '.result.content[0].text | fromjson | .["x-smoke-header"] == "forwarded value" and .authorization == "Bearer smoke" and .["mcp-session-id"] != null'
# A slow call must not hold back a quick one on another connection.
req overtaken "$U" "$SID" "$(call 7 slow '{"ms":1500}')" >/dev/null &
SLOW_CURL=$!
sleep 0.2
START=$(date +%s%N)
req quick "$U" "$SID" "$(call 8 echo '{"message":"quick"}')" >/dev/null
ELAPSED_MS=$(( ($(date +%s%N) - START) / 1000000 ))
wait "$SLOW_CURL"
jcheck "json: quick call answered" "$TMP/quick.b" '.result.content[0].text == "quick"'
if [ "$ELAPSED_MS" -lt 1000 ]; then pass "json: slow does not block ($ELAPSED_MS ms)"; else fail "json: quick call took $ELAPSED_MS ms"; fi
jcheck "json: slow answered" "$TMP/overtaken.b" '.id == 7'
# Keep-alive: the second request of one curl reuses the first connection.
CONNECTS=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' -H "$JSON" -H "$ACCEPT" -H "Mcp-Session-Id: $SID" \
  --data-binary '{"jsonrpc":"2.0","id":9,"method":"ping"}' "$U" "$U")
expect "json: keep-alive reuses the connection" "$CONNECTS" "1 0 "
# Abort: a client that leaves mid-call must not break the session (its call is cancelled).
curl -s -m 0.3 -o /dev/null -H "$JSON" -H "$ACCEPT" -H "Mcp-Session-Id: $SID" \
  --data-binary "$(call 10 slow '{"ms":60000}')" "$U"
sleep 0.2 # let the server see the connection close before id 10 is reused
expect "json: session works after an aborted call" "$(req ping "$U" "$SID" '{"jsonrpc":"2.0","id":10,"method":"ping"}')" 200
jcheck "json: aborted call id is free again" "$TMP/ping.b" '.id == 10 and .result == {}'

# Errors, each with its exact status.
expect "json: unknown session -> 404" "$(req e "$U" deadbeef '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 404
jcheck "json: 404 body -32001" "$TMP/e.b" '.error.code == -32001 and .id == null'
expect "json: missing session -> 400" "$(req e "$U" "" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 400
expect "json: invalid JSON -> 400" "$(req e "$U" "$SID" '{not json')" 400
jcheck "json: invalid JSON body -32700" "$TMP/e.b" '.error.code == -32700 and .id == null'
expect "json: wrong Content-Type -> 415" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' -H "$ACCEPT" -H "Mcp-Session-Id: $SID" --data-binary '{}' "$U")" 415
expect "json: Accept without event-stream -> 406" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H "$JSON" -H 'Accept: application/json' -H "Mcp-Session-Id: $SID" --data-binary '{}' "$U")" 406
expect "json: PUT -> 405" "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$U")" 405
expect "json: other path -> 404" "$(curl -s -o /dev/null -w '%{http_code}' "${U%/mcp}/other")" 404
expect "json: GET without event-stream Accept -> 406" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: application/json' -H "Mcp-Session-Id: $SID" "$U")" 406

# GET stream: list_changed goes there; only one per session.
curl -sN -D "$TMP/get.h" -o "$TMP/get.b" -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $SID" "$U" &
GET_CURL=$!
for _ in $(seq 100); do grep -q '^HTTP' "$TMP/get.h" 2>/dev/null && break; sleep 0.1; done
expect "json: second GET stream -> 409" \
  "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $SID" "$U")" 409
req nlc "$U" "$SID" "$(call 11 notify_list_changed '{}')" >/dev/null
jcheck "json: notify_list_changed replies ok" "$TMP/nlc.b" '.result.content[0].text == "ok"'
for _ in $(seq 100); do grep -q list_changed "$TMP/get.b" 2>/dev/null && break; sleep 0.1; done
events get
jcheck "json: GET stream receives list_changed" "$TMP/get.ev" \
  '. == [{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}]'
kill "$GET_CURL"; wait "$GET_CURL" 2>/dev/null
sleep 0.2 # the server sees the stream go away; a new one must then be allowed
curl -s -m 0.5 -o /dev/null -D "$TMP/get2.h" -H 'Accept: text/event-stream' -H "Mcp-Session-Id: $SID" "$U"
expect "json: GET stream allowed again after the client left" "$(head -1 "$TMP/get2.h" | cut -d' ' -f2)" 200

# DELETE, then the id is unknown.
expect "json: DELETE -> 200" "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H "Mcp-Session-Id: $SID" "$U")" 200
expect "json: deleted session -> 404" "$(req e "$U" "$SID" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 404

# drop_sessions forgets every session, the caller's included (after its reply).
S1=$(session "$U"); S2=$(session "$U")
expect "json: drop_sessions -> 200" "$(req drop "$U" "$S1" "$(call 12 drop_sessions '{}')")" 200
jcheck "json: drop_sessions replies ok" "$TMP/drop.b" '.result.content[0].text == "ok"'
expect "json: dropped caller -> 404" "$(req e "$U" "$S1" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 404
expect "json: dropped other session -> 404" "$(req e "$U" "$S2" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 404
S3=$(session "$U")
expect "json: re-initialize after drop works" "$(req e "$U" "$S3" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 200
stop J TERM

# ---------------------------------------------------------------- SSE reply mode (default)
start S --
U=$URL_S
expect "sse: initialize -> 200" "$(req init "$U" "" "$INIT")" 200
SID=$(header init mcp-session-id)
[ -n "$SID" ] && pass "sse: initialize returns Mcp-Session-Id" || fail "sse: no Mcp-Session-Id"
expect "sse: initialize is text/event-stream" "$(header init content-type)" text/event-stream
events init
jcheck "sse: initialize result event" "$TMP/init.ev" '.[0].id == 1 and .[0].result.serverInfo.name == "aip-test-server"'
expect "sse: notification -> 202" "$(req n "$U" "$SID" "$INITIALIZED")" 202
req echo "$U" "$SID" "$(call 2 echo '{"message":"hi"}')" >/dev/null
grep -q '^event: message' "$TMP/echo.b" && pass "sse: events are 'event: message'" || fail "sse: event lines"
events echo
jcheck "sse: echo event" "$TMP/echo.ev" '. == [{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hi"}]}}]'
req slow "$U" "$SID" "$(call 3 slow '{"ms":300,"steps":3}' '{"progressToken":"tok"}')" >/dev/null
events slow
jcheck "sse: progress 1..3 then the result" "$TMP/slow.ev" '
  (.[:3] | map([.method, .params.progressToken, .params.progress, .params.total]))
    == [["notifications/progress","tok",1,3],["notifications/progress","tok",2,3],["notifications/progress","tok",3,3]]
  and .[3].id == 3 and .[3].result.content[0].text == "slept 300ms" and length == 4'
req batch "$U" "$SID" "[{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\"},$(call 5 echo '{"message":"b"}')]" >/dev/null
events batch
jcheck "sse: batch -> one event per response" "$TMP/batch.ev" '(map(.id) | sort) == [4,5]'
req big "$U" "$SID" "$(call 6 big '{"bytes":200000}')" >/dev/null
events big
jcheck "sse: big payload in one event" "$TMP/big.ev" '.[0].result.content[0].text | length == 200000'
req hdr "$U" "$SID" "$(call 7 headers '{}')" -H 'X-Smoke-Header: sse' >/dev/null
events hdr
jcheck "sse: headers tool" "$TMP/hdr.ev" '.[0].result.content[0].text | fromjson | .["x-smoke-header"] == "sse"'
# 64 sessions, each with a 500 ms call in flight at once: they overlap, none waits for another.
SIDS=()
for i in $(seq 64); do SIDS+=("$(session "$U")"); done
START=$(date +%s%N)
CURLS=()
for i in $(seq 64); do
  req "par$i" "$U" "${SIDS[$((i - 1))]}" "$(call "$i" slow '{"ms":500}')" >/dev/null &
  CURLS+=("$!")
done
wait "${CURLS[@]}"
ELAPSED_MS=$(( ($(date +%s%N) - START) / 1000000 ))
OKS=0
for i in $(seq 64); do events "par$i"; jq -e ".[0].id == $i" "$TMP/par$i.ev" >/dev/null 2>&1 && OKS=$((OKS + 1)); done
expect "sse: 64 concurrent sessions all answered" "$OKS" 64
if [ "$ELAPSED_MS" -lt 8000 ]; then pass "sse: 64 x slow(500ms) overlap ($ELAPSED_MS ms)"; else fail "sse: 64 concurrent calls took $ELAPSED_MS ms"; fi
expect "sse: unknown session -> 404" "$(req e "$U" 0123456789abcdef0123456789abcdef '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 404
stop S INT

# ---------------------------------------------------------------- fault injection
for fault in garbage 500 hang; do
  start F AIP_TEST_HTTP_FAULT=$fault -- --reply json
  SID=$(session "$URL_F")
  [ -n "$SID" ] && pass "fault $fault: initialize works" || fail "fault $fault: initialize"
  expect "fault $fault: tools/list works" \
    "$(req list "$URL_F" "$SID" '{"jsonrpc":"2.0","id":2,"method":"tools/list"}')" 200
  jcheck "fault $fault: tools/list body" "$TMP/list.b" '.result.tools | length >= 10'
  case $fault in
  garbage)
    expect "fault garbage: tools/call -> 200" "$(req c "$URL_F" "$SID" "$(call 3 echo '{"message":"x"}')")" 200
    expect "fault garbage: body is not json" "$(cat "$TMP/c.b")" "not json"
    expect "fault garbage: content type" "$(header c content-type)" application/json ;;
  500)
    expect "fault 500: tools/call -> 500" "$(req c "$URL_F" "$SID" "$(call 3 echo '{"message":"x"}')")" 500 ;;
  hang)
    req c "$URL_F" "$SID" "$(call 3 echo '{"message":"x"}')" -m 1 >/dev/null
    expect "fault hang: tools/call never answered (curl timeout)" "$?" 28
    # one more left hanging: shutdown must abort it cleanly
    curl -s -o /dev/null -H "$JSON" -H "$ACCEPT" -H "Mcp-Session-Id: $SID" \
      --data-binary "$(call 4 echo '{"message":"y"}')" "$URL_F" &
    PIDS+=("$!")
    sleep 0.3 ;;
  esac
  stop F TERM
done

if [ "$FAILS" -ne 0 ]; then
  echo "smoke_http: $FAILS check(s) failed" >&2
  for f in "$TMP"/*.stderr; do echo "--- $f:" >&2; cat "$f" >&2; done
  exit 1
fi
echo "smoke_http: all checks passed"
