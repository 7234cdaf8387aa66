#!/usr/bin/env bash
# `npm run build:prebuilds` (not "prebuild": npm would run that before every `npm run build`):
# builds the N-API addon (native/*.cc, binding.gyp) for the platforms the package ships prebuilt,
# so installing it needs no compiler (issue 17; loaded by src/io/native.ts):
#   prebuilds/linux-x64/plexd_native.node     node-gyp with the host's g++
#   prebuilds/linux-arm64/plexd_native.node   cross-compiled with Debian's g++-aarch64-linux-gnu
#   prebuilds/manifest.json                   N-API version and the sha256 of the sources built
# Both are built against Node's own headers (/usr/include/node, or node-gyp's download) in a
# scratch directory, so the developer's build/ is left alone. The .node files are committed: a unit
# test (test/io/prebuilds.test.ts) fails when native/ or binding.gyp changed without a re-run.
# Needs g++, make, python3 and g++-aarch64-linux-gnu (`apt-get install g++-aarch64-linux-gnu`; not in
# scripts/setup.sh: only this script needs it, the tests check the committed files).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
gyp="$root/node_modules/.bin/node-gyp"
napi=$(sed -n 's/.*"NAPI_VERSION=\([0-9]*\)".*/\1/p' binding.gyp)
[ -n "$napi" ] || { echo "prebuild: binding.gyp defines no NAPI_VERSION" >&2; exit 1; }
nodedir=()
[ -f /usr/include/node/node_api.h ] && nodedir=(--nodedir=/usr)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

build() { # arch strip-tool [VAR=value ...]: builds into prebuilds/linux-$arch
  local arch=$1 strip=$2
  shift 2
  command -v "$strip" >/dev/null || { echo "prebuild: $strip missing (linux-$arch needs its toolchain)" >&2; exit 1; }
  rm -rf "$scratch/src" && mkdir -p "$scratch/src"
  cp -r binding.gyp native "$scratch/src/"
  (cd "$scratch/src" && env "$@" "$gyp" rebuild --arch="$arch" "${nodedir[@]}" >"$scratch/linux-$arch.log" 2>&1) ||
    { cat "$scratch/linux-$arch.log" >&2; echo "prebuild: linux-$arch failed" >&2; exit 1; }
  mkdir -p "prebuilds/linux-$arch"
  "$strip" --strip-unneeded -o "prebuilds/linux-$arch/plexd_native.node" "$scratch/src/build/Release/plexd_native.node"
  echo "prebuilds/linux-$arch/plexd_native.node: $(stat -c %s "prebuilds/linux-$arch/plexd_native.node") bytes"
}

build x64 strip
build arm64 aarch64-linux-gnu-strip CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar
# binding.gyp then native/* in byte order, concatenated (test/io/prebuilds.test.ts hashes the same).
sources=$(cd native && LC_ALL=C ls | sed 's|^|native/|' | (cd .. && xargs cat binding.gyp) | sha256sum | cut -d" " -f1)
printf '{\n  "napi": %s,\n  "sources": "%s",\n  "platforms": ["linux-x64", "linux-arm64"]\n}\n' "$napi" "$sources" >prebuilds/manifest.json
echo "prebuilds/manifest.json: N-API $napi, sources $sources"
