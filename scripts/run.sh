#!/usr/bin/env bash
# Installs, builds and runs the gateway on the bundled example config (Ctrl-C to stop).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
mkdir -p var
exec build/aip serve --config "${1:-examples/gateway.yaml}"
