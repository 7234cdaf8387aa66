// Bridge user-access benchmark (issue 15): iperf3 TCP from a "laptop" namespace through our bridge
// (wg-access -> kernel forwarding and masquerade -> the bridge's mesh interface) to a mesh node,
// with the laptop running Debian's wireguard-go and then plexd-userspace (both via wg-quick and
// the config `control-plane access add` prints); next to it the laptop to the bridge's own access
// address (one tunnel, no forwarding) and a direct wireguard-go pair over the same veth. The lab
// is the netns test's (test/netns/bridge-access.test.ts, its bench case, gated by
// PLEXD_BENCH_BRIDGE=<seconds>): control plane, bridge agent and mesh node as real processes.
//
//   npm run bench:bridge [-- --duration=10]
// Needs root. Prints Mbit/s per path and the ratios; saves bench/results/bridge-<time>.json.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { argOption, saveResult } from './lib/lab.mjs';

const started = Date.now();
const seconds = Number(argOption(process.argv.slice(2), 'duration', 'BENCH_DURATION', 10));
const repo = fileURLToPath(new URL('../', import.meta.url));
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const r = spawnSync(process.execPath, [vitest, 'run', '--project', 'netns', 'test/netns/bridge-access.test.ts', '-t', 'bench'], {
  cwd: repo,
  env: { ...process.env, PLEXD_BENCH_BRIDGE: String(seconds) },
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
});
const line = /BENCH (\{.*\})/.exec(r.stdout + r.stderr);
if (line === null) {
  process.stderr.write(r.stdout + r.stderr);
  throw new Error(`the bench case printed no result (vitest exit ${r.status})`);
}
const mbps = JSON.parse(line[1]);
const direct = mbps['direct wireguard-go pair laptop <-> bridge'];
console.log(`iperf3 TCP, ${seconds} s per path (Mbit/s; ratio to a direct wireguard-go pair)`);
for (const [path, v] of Object.entries(mbps)) console.log(`  ${path.padEnd(52)} ${v.toFixed(0).padStart(6)}  ${(v / direct).toFixed(2)}`);
saveResult('bridge', { date: new Date().toISOString(), seconds: 0, duration: seconds, mbps }, started);
