#!/usr/bin/env bash
# The README's test command: set up, run the unit tier and (as root) the netns tier against real
# wireguard-go, then print one plain summary line counted from vitest's JSON reports.
#
# --clone-check (CI): afterwards run the unit tier once more from a `git clone` of HEAD inside a
# 0700 directory, with umask 077, TMPDIR closed to other users, LC_ALL=C and / as the current
# directory, so a test that depends on where the checkout lives, on the umask, on the directory
# it is started from, or on other users reading our files fails here as it would for a user.
# Its report is counted in the summary line; a clone check that produced no report counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
clone_check=0
for arg in "$@"; do
  case "$arg" in
    --clone-check) clone_check=1 ;;
    *) echo "usage: bash scripts/test.sh [--clone-check]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh || exit 1
mkdir -p .reports
rm -f .reports/*.json
status=0
expected=(unit.json)
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.reports/unit.json || status=1
# The control plane's tests once more on PostgreSQL (issue 20), on a throwaway cluster of
# Debian's postgresql (bench/lib/pg-cluster.mjs) or PLEXD_TEST_PG_ADMIN_URL's server.
pg_missing=$(node --input-type=module -e 'import { postgresUnavailableReason } from "./bench/lib/pg-cluster.mjs"; process.stdout.write(process.env.PLEXD_TEST_PG_ADMIN_URL ? "" : postgresUnavailableReason() ?? "")')
if [ -z "$pg_missing" ]; then
  expected+=(unit-pg.json)
  npx vitest run --project unit-pg --reporter=default --reporter=json --outputFile.json=.reports/unit-pg.json || status=1
else
  echo "unit-pg tier skipped: $pg_missing"
fi
if [ "$(id -u)" = 0 ]; then
  expected+=(netns.json)
  npx vitest run --project netns --reporter=default --reporter=json --outputFile.json=.reports/netns.json || status=1
else
  echo "netns tier skipped: it needs root (network namespaces, TUN devices, wireguard-go)"
fi
if [ "$clone_check" = 1 ]; then
  expected+=(unit-clone.json)
  bash scripts/clone-check.sh "$PWD/.reports/unit-clone.json" || status=1
fi
node -e '
const fs = require("node:fs");
let passed = 0, failed = 0, skipped = 0;
for (const f of process.argv.slice(1)) {
  if (!fs.existsSync(".reports/" + f)) { console.log(`no report .reports/${f}: counted as a failure`); failed += 1; continue; }
  const r = JSON.parse(fs.readFileSync(".reports/" + f, "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests || 0);
  if (!r.success && r.numFailedTests === 0) failed += 1; // a file that failed to load counts as a failure
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed > 0 ? 1 : 0;
' "${expected[@]}" || status=1
exit $status
