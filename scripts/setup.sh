#!/usr/bin/env bash
# Installs what building and testing aip-gateway needs, from Debian packages only.
# Idempotent: installs nothing (and does not touch apt) when everything is already there.
set -euo pipefail

packages=(build-essential cmake pkg-config libuv1-dev libyaml-dev libcjson-dev libhyperscan-dev libpcre2-dev
          libsodium-dev libsqlite3-dev libutf8proc-dev node-llhttp jq curl valgrind openssl
          chromium prometheus python3-yaml iproute2
          clang libclang-rt-14-dev)  # libFuzzer + sanitizer runtimes (tests/fuzz)
# Node.js runs the end-to-end tests with the official MCP SDK; keep an existing install.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
