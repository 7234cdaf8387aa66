// Userspace TCP/IP benchmark (issue 22): TCP throughput and RTT of plexd-userspace/net (our stack,
// in an unprivileged process with no TUN) next to the kernel's TCP over our TUN daemon, in the same
// run, against the same kernel servers behind our TUN daemon in namespace B. Both clients run in
// namespace A over the same veth: the kernel path is `node:net` over a TUN plexd-userspace daemon
// in A; the userspace path is joinMesh() from uid 65534 as a third WireGuard peer of B.
// wireguard-go's gVisor netstack is not included: see docs/performance.md "Userspace netstack".
//
//   npm run bench:netstack [-- --bytes=104857600 --pings=200 --reps=3]
// Needs root (namespaces). Raw runs go to bench/results/netstack-<time>.json.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, argOption, labUnavailableReason, median, runOk, saveResult } from './lib/lab.mjs';
import { PORTS, TUNNEL, UNDERLAY, TUNNEL_MTU, tunnel, underlay, wgKeyPair } from './lib/wg.mjs';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const KERNEL = join(REPO, 'test/netns/netstack-kernel.mjs');
const PEER = join(REPO, 'test/netns/netstack-peer.mjs');
const USERSPACE_IP = '10.202.0.3';

const argv = process.argv.slice(2);
const bytes = Number(argOption(argv, 'bytes', 'BENCH_BYTES', 100 * 1024 * 1024));
const pings = Number(argOption(argv, 'pings', 'BENCH_PINGS', 200));
const reps = Number(argOption(argv, 'reps', 'BENCH_REPS', 3));

const why = labUnavailableReason(['ip', 'wg', 'ping', 'setpriv']);
if (why !== undefined) {
  console.error(`bench:netstack: ${why}`);
  process.exit(1);
}

function lines(child) {
  const out = [];
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (l) => out.push(l));
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${stderr}`)))));
}

const started = Date.now();
const lab = new Lab();
try {
  const { nsA, nsB } = await underlay(lab);
  const t = await tunnel(lab, { nsA, nsB }, 'plexd', 'plexd');
  const user = wgKeyPair();
  await runOk(['ip', 'netns', 'exec', nsB, 'wg', 'set', t.b.ifname, 'peer', user.public, 'allowed-ips', `${USERSPACE_IP}/32`]);
  const server = spawn('ip', ['netns', 'exec', nsB, process.execPath, KERNEL, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => createInterface({ input: server.stdout }).on('line', (l) => l === 'ready' && resolve()));
  const runs = { kernel: [], userspace: [] };
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? ['kernel', 'userspace'] : ['userspace', 'kernel'];
    for (const kind of order) {
      if (kind === 'kernel') {
        const out = await runOk(['ip', 'netns', 'exec', nsA, process.execPath, KERNEL, 'measure', TUNNEL.b, String(bytes), String(pings)], { timeoutMs: 900_000 });
        runs.kernel.push(JSON.parse(out));
      } else {
        const config = {
          dist: join(REPO, 'dist'),
          privateKey: user.private,
          peer: { publicKey: t.keys.b.public, endpoint: `${UNDERLAY.b}:${PORTS.b}` },
          address: USERSPACE_IP,
          peerAddress: TUNNEL.b,
          mtu: TUNNEL_MTU,
          steps: [{ kind: 'ping' }, { kind: 'measure', bytes, pings }],
        };
        const child = spawn('ip', ['netns', 'exec', nsA, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, PEER, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
        const out = (await lines(child)).map((l) => JSON.parse(l));
        const m = out.find((l) => l.step === 'measure');
        if (m === undefined || m.error !== undefined) throw new Error(`userspace run failed: ${JSON.stringify(out)}`);
        runs.userspace.push(m);
      }
      console.error(`rep ${rep + 1}/${reps} ${kind}: ${JSON.stringify(runs[kind].at(-1))}`);
    }
  }
  server.kill('SIGKILL');
  await t.stop();
  const row = (label, rs) => ({ label, mbit: median(rs.map((r) => r.mbitPerS)), rtt: median(rs.map((r) => r.rttMedianMs)), p99: median(rs.map((r) => r.rttP99Ms)) });
  const k = row('kernel TCP over our TUN', runs.kernel);
  const u = row('our userspace TCP (no root)', runs.userspace);
  console.log(`TCP ${bytes} bytes one way, ${pings} 64-byte ping-pongs, median of ${reps} (${new Date().toISOString()}):`);
  console.log('stack                          Mbit/s   RTT median ms  RTT p99 ms');
  for (const r of [k, u]) console.log(`${r.label.padEnd(30)} ${r.mbit.toFixed(1).padStart(7)}  ${r.rtt.toFixed(3).padStart(13)}  ${r.p99.toFixed(3).padStart(10)}`);
  console.log(`userspace / kernel: throughput ${(u.mbit / k.mbit).toFixed(2)}x, RTT ${(u.rtt / k.rtt).toFixed(2)}x`);
  console.log('wireguard-go netstack (gVisor): not measured (see docs/performance.md "Userspace netstack")');
  saveResult('netstack', { date: new Date(started).toISOString(), bytes, pings, reps, runs, kernel: k, userspace: u }, started);
} finally {
  await lab.cleanup();
}
