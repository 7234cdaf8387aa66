// Peer-scale benchmark (issue 4): daemon RSS and UAPI load time with 1,000 / 10,000 / 100,000
// configured peers, each with two allowed IPs (an IPv4 /32 and an IPv6 /128), for plexd-userspace
// next to wireguard-go, both configured with one `wg setconf` of the same file. No traffic: the
// daemons sit alone in a private namespace. Kinds alternate (reversed every other size).
//
//   npm run bench:peers [-- --quick] [-- --sizes=1000,10000,100000 --only=plexd,wggo]
// Saves bench/results/peers-<time>.json. Needs root.

import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import { Lab, argOption, hasFlag, labUnavailableReason, memoryKiB, run, saveResult, sleep } from './lib/lab.mjs';
import { KINDS, setconf, startDaemon, wgKeyPair } from './lib/wg.mjs';

function options(argv) {
  const get = (name, env, dflt) => argOption(argv, name, env, dflt);
  const quick = hasFlag(argv, 'quick');
  return {
    sizes: String(get('sizes', 'BENCH_PEER_SIZES', quick ? '1000,10000' : '1000,10000,100000')).split(',').map(Number),
    only: String(get('only', 'BENCH_ONLY', 'plexd,wggo')).split(',').filter((k) => k in KINDS),
  };
}

/** A wg config with `count` peers (random 32-byte keys) and two allowed IPs each. */
function config(count) {
  const lines = [`[Interface]\nPrivateKey = ${wgKeyPair().private}\nListenPort = 0\n`];
  const key = new Uint8Array(32);
  for (let i = 0; i < count; i++) {
    randomFillSync(key);
    const a = (i >> 16) & 0xff;
    const b = (i >> 8) & 0xff;
    const c = i & 0xff;
    lines.push(`[Peer]\nPublicKey = ${Buffer.from(key).toString('base64')}\nAllowedIPs = 10.${a}.${b}.${c}/32, fd00::${a.toString(16)}:${b.toString(16)}${c.toString(16).padStart(2, '0')}/128\n`);
  }
  return lines.join('\n');
}

/** When the second "settled" RSS is read, ms after the load. */
const LATE_MS = 15_000;

async function measureLoad(lab, ns, kind, text) {
  const d = await startDaemon(lab, ns, kind);
  try {
    await sleep(300);
    const idle = memoryKiB(d.pid);
    const t0 = process.hrtime.bigint();
    await setconf(lab, d, text);
    const loadSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const loaded = memoryKiB(d.pid);
    await sleep(2000);
    const settled = memoryKiB(d.pid);
    // V8 keeps the young generation it grew during the load until its memory reducer runs
    // (~10 s after the last GC), so RSS is read again later, the same way for every daemon.
    await sleep(LATE_MS - 2000);
    const late = memoryKiB(d.pid);
    const t1 = process.hrtime.bigint();
    const dump = await run(['ip', 'netns', 'exec', ns, 'wg', 'show', d.ifname, 'dump'], { timeoutMs: 600_000 });
    const dumpSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    return {
      kind,
      loadSeconds,
      dumpSeconds,
      dumpLines: dump.stdout.split('\n').length - 2,
      idleRssKiB: idle?.rss,
      loadedRssKiB: loaded?.rss,
      settledRssKiB: settled?.rss,
      lateRssKiB: late?.rss,
      peakRssKiB: settled?.hwm,
    };
  } finally {
    await lab.stop(d.child);
  }
}

async function main() {
  const reason = labUnavailableReason(['ip', 'wg', 'wireguard-go']);
  if (reason !== undefined) {
    console.error(`bench:peers cannot run: ${reason}`);
    process.exitCode = 1;
    return;
  }
  const opts = options(process.argv.slice(2));
  const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', options: opts, runs: [] };
  const started = Date.now();
  const lab = new Lab();
  const mib = (k) => (k === undefined ? NaN : k / 1024);
  try {
    const ns = await lab.namespace();
    console.log('peers     implementation            load s   dump s   RSS idle   RSS loaded   RSS 2 s   RSS 15 s   peak     (MiB)');
    for (const [i, size] of opts.sizes.entries()) {
      const text = config(size);
      const order = i % 2 === 0 ? opts.only : [...opts.only].reverse();
      for (const kind of order) {
        try {
          const r = await measureLoad(lab, ns, kind, text);
          result.runs.push({ peers: size, ...r });
          console.log(`${String(size).padStart(7)}   ${KINDS[kind].label.padEnd(24)}  ${r.loadSeconds.toFixed(2).padStart(6)}  ${r.dumpSeconds.toFixed(2).padStart(7)}  ` +
            `${mib(r.idleRssKiB).toFixed(1).padStart(9)}  ${mib(r.loadedRssKiB).toFixed(1).padStart(11)}  ${mib(r.settledRssKiB).toFixed(1).padStart(8)}  ${mib(r.lateRssKiB).toFixed(1).padStart(9)}  ${mib(r.peakRssKiB).toFixed(1).padStart(6)}`);
        } catch (err) {
          console.log(`${String(size).padStart(7)}   ${KINDS[kind].label.padEnd(24)}  failed: ${err.message}`);
          result.runs.push({ peers: size, kind, error: err.message });
        }
      }
      const ours = result.runs.find((r) => r.peers === size && r.kind === 'plexd' && !r.error);
      const theirs = result.runs.find((r) => r.peers === size && r.kind === 'wggo' && !r.error);
      if (ours && theirs) {
        console.log(`          ratio plexd/wg-go: load ${(ours.loadSeconds / theirs.loadSeconds).toFixed(2)}x, RSS at 2 s ${(ours.settledRssKiB / theirs.settledRssKiB).toFixed(2)}x, at 15 s ${(ours.lateRssKiB / theirs.lateRssKiB).toFixed(2)}x`);
      }
    }
  } finally {
    await lab.cleanup();
  }
  saveResult('peers', result, started);
}

await main();
