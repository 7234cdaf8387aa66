#!/usr/bin/env bash
# Installs everything plexd-userspace needs on a fresh Debian machine: the Debian packages the
# netns tier and benchmarks drive (only as root), then the npm dependencies and the TypeScript build
# (`npm ci` runs `prepare`). The N-API addon (TUN device and batched UDP sockets) is the committed
# prebuilt (prebuilds/) when it loads here, else node-gyp builds build/Release/plexd_native.node
# (scripts/install.mjs); `npx node-gyp rebuild` builds from source anyway, and that build wins.
# `npm ci` also fills the npm cache that test/netns/pack-install.test.ts installs from offline.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for pkg in wireguard-go wireguard-tools iperf3 iputils-ping ncat iproute2 iptables coturn tcpdump pebble curl chromium postgresql; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need[@]}"
  fi
fi
npm ci --no-audit --no-fund
