#!/usr/bin/env bash
# End-to-end tests: real MCP clients (the official TypeScript SDK) -> aip serve -> upstreams.
# Env: AIP_BUILD_DIR (default <repo>/build) holds aip and tests/mcp-server/aip-test-server.
#      AIP_E2E_KEEP=1 keeps each gateway's temp dir (config, policies, audit log).
# Extra arguments are passed to `node --test` (e.g. --test-name-pattern=echo).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export AIP_BUILD_DIR="${AIP_BUILD_DIR:-$repo/build}"

for f in "$AIP_BUILD_DIR/aip" "$AIP_BUILD_DIR/tests/mcp-server/aip-test-server"; do
  if [[ ! -x "$f" ]]; then
    echo "run.sh: missing $f (build with: cmake -S . -B build && cmake --build build)" >&2
    exit 2
  fi
done

cd "$here"
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund
  touch node_modules
fi

exec node --test --test-concurrency=1 --test-timeout=60000 "$@" ./*.test.mjs
