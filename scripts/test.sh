#!/usr/bin/env bash
# Installs, builds and runs every test: unit tests (ctest), the end-to-end tests with the
# official MCP SDK, and both again on an AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== build"
scripts/build.sh
echo "== unit tests"
(cd build && ctest --output-on-failure -j2)
echo "== deployment files (promtool, systemd-analyze, manifests, example config)"
AIP_BUILD_DIR=build tests/deploy/run.sh
echo "== AIP conformance vectors"
build/tests/conformance/aip-conformance
echo "== end-to-end tests"
AIP_BUILD_DIR="$PWD/build" tests/e2e/run.sh
echo "== unit and end-to-end tests under ASan+UBSan"
AIP_BUILD_DIR=build-asan scripts/build.sh -DAIP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1
(cd build-asan && ctest --output-on-failure -j2)
# the e2e harness requires a clean exit 0 on SIGTERM, so a leak or error at shutdown fails it
AIP_BUILD_DIR="$PWD/build-asan" tests/e2e/run.sh
echo "== all tests passed"
