#!/usr/bin/env bash
# deploy/deps.sh — installs the Debian packages Herald builds and tests with,
# only those missing. Sourced or run by quickstart.sh and tests/run.sh.
set -euo pipefail

HERALD_DEPS=(build-essential cmake pkg-config libnng-dev liblmdb-dev lmdb-utils
  libmsgpack-dev libev-dev libraft-dev libcmocka-dev libsodium-dev libjansson-dev
  libmbedtls-dev libcurl4-openssl-dev openssl python3-websockets python3-msgpack mosquitto-clients
  python3-paho-mqtt
  prometheus) # prometheus: promtool check metrics (tests of GET /metrics)
# The TypeScript SDK's tests (common/js, `npm ci`) and its browser test
# (tests/browser: Debian's Chromium, driven by npm playwright-core). A
# machine that already has Node.js (v18+) and npm keeps them.
HERALD_DEPS+=(chromium)
command -v node >/dev/null 2>&1 || HERALD_DEPS+=(nodejs)
command -v npm >/dev/null 2>&1 || HERALD_DEPS+=(npm)

missing=()
for p in "${HERALD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
