#!/usr/bin/env bash
# Configures and builds into build/ (or $AIP_BUILD_DIR). Extra arguments go to cmake.
#   scripts/build.sh                      release build with debug info, warnings as errors
#   AIP_BUILD_DIR=build-asan scripts/build.sh -DAIP_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${AIP_BUILD_DIR:-build}
cmake -S . -B "$dir" -DAIP_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
