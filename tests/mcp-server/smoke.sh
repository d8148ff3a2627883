#!/usr/bin/env bash
# Smoke test for aip-test-server: drives the binary over stdio and checks its
# output with jq. Usage: smoke.sh path/to/aip-test-server
# Set AIP_SMOKE_WRAPPER to run the server under a tool, e.g.
#   AIP_SMOKE_WRAPPER="valgrind -q --leak-check=full --error-exitcode=99" smoke.sh ./aip-test-server
set -u

BIN=${1:?usage: smoke.sh path/to/aip-test-server}
read -r -a WRAP <<<"${AIP_SMOKE_WRAPPER:-}"
command -v jq >/dev/null || { echo "smoke: jq is required" >&2; exit 2; }

TMP=$(mktemp -d)
SRV_PID=""
CAT_PID=""
cleanup() {
  exec 3>&- 2>/dev/null
  [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null
  [ -n "$CAT_PID" ] && kill "$CAT_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILS=0
pass() { echo "ok   - $1"; }
fail() { echo "FAIL - $1" >&2; FAILS=$((FAILS + 1)); }

# check DESC FILE JQ_FILTER: the filter runs over all output lines slurped into an array.
check() {
  if jq -e -s "$3" "$2" >/dev/null 2>&1; then pass "$1"; else fail "$1"; fi
}

# ---------------------------------------------------------------- session 1
# Interactive session over two fifos so stdin/stdout are real pipes and stdin
# stays open until the slow calls have answered (the server exits at stdin EOF).
mkfifo "$TMP/in" "$TMP/out"
OUT=$TMP/session.jsonl
AIP_TEST_SMOKE_VAR="from env" "${WRAP[@]}" "$BIN" <"$TMP/in" >"$TMP/out" 2>"$TMP/stderr" &
SRV_PID=$!
cat "$TMP/out" >"$OUT" &
CAT_PID=$!
exec 3>"$TMP/in"

send() { printf '%s\r\n' "$@" >&3; }   # \r\n on purpose: must be accepted
# wait_for JQ_FILTER: polls the output (up to 20 s, valgrind is slow) until the filter holds.
wait_for() {
  for _ in $(seq 200); do
    jq -e -s "$1" "$OUT" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
call() { # call ID TOOL ARGS_JSON [META_JSON]
  printf '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"%s","arguments":%s%s}}' \
    "$1" "$2" "$3" "${4:+,\"_meta\":$4}"
}

send '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"smoke","version":"0"}}}'
send '{"jsonrpc":"2.0","method":"notifications/initialized"}'
send ''
# Slow calls go first so the quick answers below must overtake them.
send "$(call 10 slow '{"ms":600,"steps":3}' '{"progressToken":"tok-1"}')"
send "$(call 11 slow '{"ms":300}')"
send '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":11,"reason":"smoke"}}'
send '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
send "$(call 3 echo '{"message":"hello \"world\" ✓"}')"
send "$(call 4 add '{"a":2,"b":3}')"
send "$(call 5 add '{"a":0.5,"b":"x"}')"
send "$(call 6 fail '{"message":"boom"}')"
send "$(call 7 nope '{}')"
send '{"jsonrpc":"2.0","id":8,"method":"nope/nope"}'
send '{"jsonrpc":"2.0","id":9,"method":"ping"}'
send '{this is not json'
send "$(call 12 env '{"name":"AIP_TEST_SMOKE_VAR"}')"
send "$(call 13 env '{"name":"AIP_TEST_SMOKE_UNSET_VAR"}')"
send "$(call 14 big '{"bytes":100000}')"
send "$(call 15 fail '{}')"
send "$(call 16 echo '{"message":"x","extra":1}')"
send "$(call 17 notify_list_changed '{"add_tool":"added_later"}')"
send '{"jsonrpc":"2.0","id":18,"method":"tools/list"}'
send '{"jsonrpc":"2.0","id":19,"method":"tools/list","params":{"cursor":"bogus"}}'
send "$(call 20 headers '{}')"
send "$(call 21 drop_sessions '{}')"

wait_for 'any(.[]; .id == 10)' || fail "slow call 10 answered"
exec 3>&-   # stdin EOF: the server must exit 0 promptly
wait "$SRV_PID"; RC=$?; SRV_PID=""
wait "$CAT_PID"; CAT_PID=""
[ "$RC" -eq 0 ] && pass "exit status 0 on stdin EOF" || fail "exit status 0 on stdin EOF (got $RC)"

check "stdout is JSON-RPC only" "$OUT" 'length > 0 and all(.[]; type == "object" and .jsonrpc == "2.0")'
check "initialize" "$OUT" '.[] | select(.id == 1) | .result
  | .protocolVersion == "2025-11-25" and .capabilities.tools.listChanged == true
    and .serverInfo == {"name":"aip-test-server","version":"1.0.0"}'
check "tools/list has every tool with a schema" "$OUT" '.[] | select(.id == 2) | .result
  | ([.tools[].name] | sort) == (["add","big","crash","drop_sessions","echo","echo_structured","env","fail","headers","notify_list_changed","raw","slow","stderr"])
    and all(.tools[]; .inputSchema.type == "object" and (.description | length) > 0)
    and (has("nextCursor") | not)'
check "echo returns the message verbatim" "$OUT" \
  '.[] | select(.id == 3) | .result.content == [{"type":"text","text":"hello \"world\" ✓"}]'
check "add" "$OUT" '.[] | select(.id == 4) | .result
  | .content == [{"type":"text","text":"5"}] and .structuredContent == {"sum":5}'
check "bad arguments -> isError" "$OUT" '.[] | select(.id == 5) | .result
  | .isError == true and (.content[0].text | startswith("Input validation error: "))'
check "unexpected argument -> isError" "$OUT" '.[] | select(.id == 16) | .result.isError == true'
check "fail" "$OUT" '.[] | select(.id == 6) | .result == {"content":[{"type":"text","text":"boom"}],"isError":true}'
check "fail default message" "$OUT" '.[] | select(.id == 15) | .result.content[0].text == "tool failed"'
check "unknown tool -> -32602" "$OUT" '.[] | select(.id == 7) | .error == {"code":-32602,"message":"Unknown tool: nope"}'
check "unknown method -> -32601" "$OUT" '.[] | select(.id == 8) | .error.code == -32601 and .error.message == "Method not found"'
check "ping" "$OUT" '.[] | select(.id == 9) | .result == {}'
check "bad json -> -32700 id null" "$OUT" 'any(.[]; has("id") and .id == null and .error.code == -32700)'
check "env" "$OUT" '.[] | select(.id == 12) | .result.content[0].text == "from env"'
check "env unset" "$OUT" '.[] | select(.id == 13) | .result.content[0].text == ""'
check "big" "$OUT" '.[] | select(.id == 14) | .result.content[0].text | length == 100000 and test("^x+$")'
check "slow progress 1..3 then result" "$OUT" '
  ([.[] | select(.method == "notifications/progress" and .params.progressToken == "tok-1") | .params]
     | map([.progress, .total]) == [[1,3],[2,3],[3,3]])
  and (.[] | select(.id == 10) | .result.content == [{"type":"text","text":"slept 600ms"}])'
check "slow does not block other calls" "$OUT" \
  '(map(.id) | index(3)) < (map(.id) | index(10))'
check "progress precedes the slow result" "$OUT" \
  '([to_entries[] | select(.value.method == "notifications/progress") | .key] | max) < (map(.id) | index(10))'
check "cancelled slow call gets no response" "$OUT" 'all(.[]; .id != 11)'
check "notify_list_changed: ok, then notification" "$OUT" '
  (.[] | select(.id == 17) | .result.content[0].text == "ok")
  and (map(.id) | index(17)) < (map(.method) | index("notifications/tools/list_changed"))'
check "added tool is listed" "$OUT" '.[] | select(.id == 18) | any(.result.tools[]; .name == "added_later")'
check "invalid cursor -> -32602" "$OUT" '.[] | select(.id == 19) | .error.code == -32602'
check "headers over stdio -> {}" "$OUT" '.[] | select(.id == 20) | .result.content == [{"type":"text","text":"{}"}]'
check "drop_sessions over stdio is a no-op" "$OUT" '.[] | select(.id == 21) | .result.content[0].text == "ok"'

# ---------------------------------------------------------------- session 2
# Pagination, extra tools, server name, version fallback: all answer at once,
# so a plain pipe is enough (EOF comes after the lines are handled).
OUT2=$TMP/pages.jsonl
printf '%s\n' \
  '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01","capabilities":{}}}' \
  '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}' \
  '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"page-2"}}' \
  '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{"cursor":"page-3"}}' \
  '{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"page-4"}}' \
  "$(call 6 shared '{"message":"from extra"}')" |
  AIP_TEST_PAGE_SIZE=5 AIP_TEST_EXTRA_TOOLS="shared, other" AIP_TEST_NAME=smoke-two \
    "${WRAP[@]}" "$BIN" 2>/dev/null | cat >"$OUT2"
RC=${PIPESTATUS[1]}
[ "$RC" -eq 0 ] && pass "session 2 exit status 0" || fail "session 2 exit status 0 (got $RC)"
check "unsupported version -> 2025-11-25, AIP_TEST_NAME" "$OUT2" '.[] | select(.id == 1) | .result
  | .protocolVersion == "2025-11-25" and .serverInfo.name == "smoke-two"'
check "page 1" "$OUT2" '.[] | select(.id == 2) | .result | (.tools | length) == 5 and .nextCursor == "page-2"'
check "page 2" "$OUT2" '.[] | select(.id == 3) | .result | (.tools | length) == 5 and .nextCursor == "page-3"'
check "page 3 is the last" "$OUT2" '.[] | select(.id == 4) | .result
  | (.tools | length) == 5 and [.tools[3:][].name] == ["shared","other"] and (has("nextCursor") | not)'
check "cursor past the end -> -32602" "$OUT2" '.[] | select(.id == 5) | .error.code == -32602'
check "extra tool behaves like echo" "$OUT2" '.[] | select(.id == 6) | .result.content[0].text == "from extra"'

# ---------------------------------------------------------------- session 3
# crash: exit status 3 and no answer.
OUT3=$TMP/crash.jsonl
{ call 1 crash '{}'; echo; sleep 1; } | "$BIN" 2>/dev/null | cat >"$OUT3"
RC=${PIPESTATUS[1]}
[ "$RC" -eq 3 ] && pass "crash exits with status 3" || fail "crash exits with status 3 (got $RC)"
[ ! -s "$OUT3" ] && pass "crash sends no answer" || fail "crash sends no answer"

if [ "$FAILS" -ne 0 ]; then
  echo "smoke: $FAILS check(s) failed; session output:" >&2
  cut -c1-300 "$OUT" >&2
  echo "--- server stderr:" >&2
  cat "$TMP/stderr" >&2
  exit 1
fi
echo "smoke: all checks passed"
