#!/usr/bin/env bash
# Installs, builds and runs the gateway on the bundled example config (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
mkdir -p var
# a checkout made under umask 002 leaves the example group-writable, which aip serve refuses
[ $# -gt 0 ] || chmod go-w examples/gateway.yaml examples/policies/*.yaml
exec build/aip serve --config "${1:-examples/gateway.yaml}"
