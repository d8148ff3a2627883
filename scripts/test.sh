#!/usr/bin/env bash
# Installs, builds and runs every test: unit tests (ctest), the end-to-end tests with the
# official MCP SDK, and the unit tests again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== build"
scripts/build.sh
echo "== unit tests"
(cd build && ctest --output-on-failure -j2)
echo "== end-to-end tests"
AIP_BUILD_DIR="$PWD/build" tests/e2e/run.sh
echo "== unit tests under ASan+UBSan"
AIP_BUILD_DIR=build-asan scripts/build.sh -DAIP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2)
echo "== all tests passed"
