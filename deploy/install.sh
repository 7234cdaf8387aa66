#!/bin/sh
# Installs plexd-userspace on this machine from a file you already have, then runs
# `plexd-userspace install` with the remaining arguments (docs/deploy.md "Bare metal").
# It fetches nothing: copy the standalone binary or the npm tarball to the machine first.
#
#   sh install.sh FILE [install arguments ...]
#
# FILE is either
#   - the standalone binary (plexd-userspace-linux-x64, -linux-arm64): it copies itself to
#     /usr/local/bin/plexd-userspace as part of `install`;
#   - the npm tarball (plexd-userspace-X.Y.Z.tgz): installed with npm into /opt/plexd (under
#     --root DIR when given), then its `install` writes a launcher to /usr/local/bin.
# Example: sh install.sh ./plexd-userspace-linux-x64 --api-url https://cp.example --token-file /root/token
# Exit codes: those of `plexd-userspace install` (0 ok, 1 failure, 2 usage); 2 here for a bad
# command line, 1 for a file that is not there or npm missing.
set -eu

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

if [ "$#" -lt 1 ]; then
  usage >&2
  exit 2
fi
case "$1" in
  -h | --help)
    usage
    exit 0
    ;;
  -*)
    echo "install.sh: the first argument is the file to install (binary or npm tarball), got $1" >&2
    exit 2
    ;;
esac

file=$1
shift
if [ ! -f "$file" ]; then
  echo "install.sh: $file: no such file" >&2
  exit 1
fi
case "$file" in
  /*) ;;
  *) file="$(pwd)/$file" ;;
esac

# --root DIR (or --root=DIR) among the install arguments: the npm package goes under it too.
root=
want_root=no
for arg in "$@"; do
  if [ "$want_root" = yes ]; then
    root=$arg
    want_root=no
    continue
  fi
  case "$arg" in
    --root) want_root=yes ;;
    --root=*) root=${arg#--root=} ;;
  esac
done

# A gzip stream (1f 8b) is the npm tarball; anything else is run as the binary.
magic=$(od -An -tx1 -N2 "$file" | tr -d ' \n')
if [ "$magic" = 1f8b ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: npm is needed to install $file; use the standalone binary on machines without Node.js" >&2
    exit 1
  fi
  prefix="${root%/}/opt/plexd"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --omit=dev --no-audit --no-fund "$file"
  exec "$prefix/node_modules/.bin/plexd-userspace" install "$@"
fi

if [ -x "$file" ]; then
  exec "$file" install "$@"
fi
# Not executable as given (copied without its mode): run a private executable copy.
tmp=$(mktemp "${TMPDIR:-/tmp}/plexd-userspace.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp "$file" "$tmp"
chmod 0700 "$tmp"
status=0
"$tmp" install "$@" || status=$?
exit "$status"
