#!/usr/bin/env bash
# Installs, builds and runs every test: unit tests (ctest), the AIP conformance vectors, the
# end-to-end tests with the official MCP SDK, the official MCP conformance suite, all of these
# again on an AddressSanitizer + UBSan build,
# and a bounded run of every fuzzer (tests/fuzz/run.sh; AIP_FUZZ_SECONDS per target, 20 s).
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
# 77: AIP_SHARED_DIR names a copy that is not there (it says "SKIPPED"); the default is the
# repository's own copy (tests/conformance/aip)
build/tests/conformance/aip-conformance || [ $? -eq 77 ]
echo "== end-to-end tests"
AIP_BUILD_DIR="$PWD/build" tests/e2e/run.sh
echo "== MCP conformance suite, directly and through aip serve (tests/mcp-conformance)"
AIP_BUILD_DIR="$PWD/build" tests/mcp-conformance/run.sh
echo "== unit, end-to-end and MCP conformance tests under ASan+UBSan"
AIP_BUILD_DIR=build-asan scripts/build.sh -DAIP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1
(cd build-asan && ctest --output-on-failure -j2)
# the e2e harness requires a clean exit 0 on SIGTERM, so a leak or error at shutdown fails it
AIP_BUILD_DIR="$PWD/build-asan" tests/e2e/run.sh
AIP_BUILD_DIR="$PWD/build-asan" tests/mcp-conformance/run.sh
echo "== fuzzers, ${AIP_FUZZ_SECONDS:-20} s each (tests/fuzz/README.md)"
tests/fuzz/run.sh "${AIP_FUZZ_SECONDS:-20}"
echo "== all tests passed"
