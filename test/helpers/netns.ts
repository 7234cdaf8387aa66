// Network-namespace lab for the root test tier (test/netns): the lab itself is product code
// (src/conformance/netns-lab.ts, also used by `plexd-userspace conformance live`); this adds the
// test-only skip helper. Call cleanup() from afterEach/afterAll.
//
// Network rule: tests send traffic only to loopback and to addresses inside namespaces they
// created. Everything is named `plxt<pid base36>-…`, so a sweep can find leftovers of dead runs.

import { netnsUnavailableReason } from '../../src/conformance/netns-lab.js';

export {
  Netns,
  NetnsLab,
  netnsUnavailableReason,
  run,
  runOk,
  sweepStale,
  type RunOptions,
  type RunResult,
  type SpawnOptions,
  type VethAddresses,
} from '../../src/conformance/netns-lab.js';

/**
 * For `describe.skipIf(requireRoot() !== undefined)`: returns the reason the root tier must be
 * skipped (and prints it once, with `what`), or undefined when it can run.
 */
export function requireRoot(what = 'netns tests'): string | undefined {
  const reason = netnsUnavailableReason();
  if (reason !== undefined) console.warn(`[skip] ${what}: ${reason}`);
  return reason;
}
