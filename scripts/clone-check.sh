#!/usr/bin/env bash
# The unit tier from a fresh `git clone` of HEAD as a user in a hurry makes it: inside a 0700
# directory (like a clone in /root), with umask 077 (so everything in it is 0600/0700), TMPDIR a
# 0700 directory as well, LC_ALL=C, and / as the current directory. Writes vitest's JSON report to
# $1 (an absolute path) and exits non-zero when a test fails. Used by `scripts/test.sh --clone-check`.
#
# node_modules is copied from this checkout rather than installed by `npm ci` (minutes of network
# and native builds): the copy is made under umask 077, so its modes are what `npm ci` under that
# umask gives (0600 files, 0700 directories). The package's own artefacts, the N-API addon and
# dist/, are built in the clone under umask 077, as `npm ci` would build them.
set -euo pipefail
report="${1:?usage: clone-check.sh /absolute/path/report.json}"
case "$report" in /*) ;; *) echo "clone-check: the report path must be absolute, got $report" >&2; exit 2 ;; esac
src="$(cd "$(dirname "$0")/.." && pwd)"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
git clone -q "$src" "$work/repo"
cp -RH "$src/node_modules" "$work/repo/node_modules"
mkdir "$work/tmp"
if ! (cd "$work/repo" && npm run install && npm run build) >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  echo "clone check: building the addon and dist/ in the clone failed" >&2
  exit 1
fi
echo "clone check: unit tier from $work/repo (parent 0700, umask $(umask), TMPDIR $work/tmp, LC_ALL=C, cwd /)"
cd /
TMPDIR="$work/tmp" LC_ALL=C "$work/repo/node_modules/.bin/vitest" run --root "$work/repo" --project unit \
  --reporter=default --reporter=json --outputFile.json="$report"
