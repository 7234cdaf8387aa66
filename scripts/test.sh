#!/usr/bin/env bash
# The README's test command: set up, run the unit tier and (as root) the netns tier against real
# wireguard-go, then print one plain summary line counted from vitest's JSON report.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
mkdir -p .reports
rm -f .reports/*.json
status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.reports/unit.json || status=1
if [ "$(id -u)" = 0 ]; then
  npx vitest run --project netns --reporter=default --reporter=json --outputFile.json=.reports/netns.json || status=1
else
  echo "netns tier skipped: it needs root (network namespaces, TUN devices, wireguard-go)"
fi
node -e '
const fs = require("node:fs");
let passed = 0, failed = 0, skipped = 0;
for (const f of fs.readdirSync(".reports")) {
  const r = JSON.parse(fs.readFileSync(".reports/" + f, "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests || 0);
  if (!r.success && r.numFailedTests === 0) failed += 1; // a file that failed to load counts as a failure
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' || status=1
exit $status
