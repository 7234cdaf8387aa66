// Handshake benchmark (issue 4):
// 1. complete handshakes per second on one core for each crypto provider, in process
//    (runHandshakes: initiation with MAC1, its check and consumption, response, its consumption,
//    key derivation on both sides);
// 2. a handshake-initiation flood (default 50,000/s, valid MAC1, from 32 other source addresses
//    in the sending namespace) at the receiving daemon of a tunnel carrying iperf3 TCP: the
//    tunnel's throughput during the flood as a fraction of before, for a plexd-userspace pair and
//    a wireguard-go pair, alternating.
//
//   npm run bench:handshake [-- --quick] [-- --duration=10 --reps=3 --rate=50000 --only=plexd,wggo]
// Saves bench/results/handshake-<time>.json. Part 2 needs root.

import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { PROVIDERS, handshakesPerSecond } from './crypto.mjs';
import { Lab, argOption, cpuSeconds, hasFlag, labUnavailableReason, median, runOk, saveResult, sleep } from './lib/lab.mjs';
import { KINDS, PORTS, UNDERLAY, iperf, iperfServer, tunnel, underlay } from './lib/wg.mjs';

const FLOOD = fileURLToPath(new URL('./lib/flood.mjs', import.meta.url));
const FLOOD_SOURCES = Array.from({ length: 32 }, (_, i) => `10.201.0.${100 + i}`);

function options(argv) {
  const get = (name, env, dflt) => argOption(argv, name, env, dflt);
  const quick = hasFlag(argv, 'quick');
  return {
    quick,
    duration: Number(get('duration', 'BENCH_DURATION', quick ? 3 : 10)),
    reps: Number(get('reps', 'BENCH_REPS', quick ? 1 : 3)),
    rate: Number(get('rate', 'BENCH_FLOOD_RATE', 50_000)),
    only: String(get('only', 'BENCH_ONLY', 'plexd,wggo')).split(',').filter((k) => k in KINDS),
  };
}

async function floodRun(lab, net, kind, opts) {
  const t = await tunnel(lab, net, kind, kind);
  try {
    await iperf(net.nsA, [], 2); // warm-up: a fresh node daemon runs its first packets interpreted
    const before = await iperf(net.nsA, [], opts.duration);
    const cpu0 = cpuSeconds(t.b.pid);
    const flood = lab.spawn(net.nsA, [
      process.execPath, FLOOD, UNDERLAY.b, String(PORTS.b), t.keys.b.public, String(opts.rate), String(opts.duration + 3),
      FLOOD_SOURCES.join(','),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let floodOut = '';
    flood.stdout.setEncoding('utf8').on('data', (d) => (floodOut += d));
    const floodDone = new Promise((r) => flood.once('exit', r));
    await sleep(1000);
    let during;
    try {
      during = await iperf(net.nsA, [], opts.duration);
    } catch (err) {
      during = { error: err.message };
    }
    const cpuTarget = cpuSeconds(t.b.pid) - cpu0;
    await floodDone;
    let floodStats = {};
    try {
      floodStats = JSON.parse(floodOut.trim().split('\n').pop());
    } catch {
      floodStats = { error: flood.stderrText().trim() };
    }
    const mbps = (j) => (j.end ? j.end.sum_received.bits_per_second / 1e6 : 0);
    return {
      kind,
      beforeMbps: mbps(before),
      duringMbps: mbps(during),
      fraction: mbps(during) / mbps(before),
      flood: floodStats,
      targetCpuSeconds: cpuTarget,
      ...(during.error ? { error: during.error } : {}),
    };
  } finally {
    await t.stop();
  }
}

async function main() {
  const opts = options(process.argv.slice(2));
  const result = { date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', options: opts };
  const started = Date.now();

  console.log('complete handshakes per second, one core:');
  result.handshakesPerSecond = {};
  for (const p of PROVIDERS) {
    result.handshakesPerSecond[p.name] = handshakesPerSecond(p);
    console.log(`  ${p.name.padEnd(6)} ${result.handshakesPerSecond[p.name].toFixed(0)}`);
  }

  const reason = labUnavailableReason(['ip', 'wg', 'wireguard-go', 'iperf3', 'ping']);
  if (reason !== undefined) {
    console.log(`\nflood part skipped: ${reason}`);
  } else {
    console.log(`\nTCP throughput under a ${opts.rate}/s initiation flood at the receiver (${opts.duration} s each, ${opts.reps} rep(s)):`);
    const lab = new Lab();
    result.flood = [];
    try {
      const net = await underlay(lab);
      for (const addr of FLOOD_SOURCES) await runOk(['ip', '-n', net.nsA, 'addr', 'add', `${addr}/24`, 'dev', net.vethA]);
      await iperfServer(lab, net.nsB);
      for (let rep = 0; rep < opts.reps; rep++) {
        const order = rep % 2 === 0 ? opts.only : [...opts.only].reverse();
        for (const kind of order) {
          process.stdout.write(`  rep ${rep + 1} ${KINDS[kind].label.padEnd(24)} `);
          try {
            const r = await floodRun(lab, net, kind, opts);
            result.flood.push({ rep, ...r });
            console.log(`before ${r.beforeMbps.toFixed(0)} Mbit/s, during ${r.duringMbps.toFixed(0)} Mbit/s ` +
              `(${(r.fraction * 100).toFixed(0)} %), flood ${(r.flood.rate ?? 0).toFixed(0)}/s, target CPU ${r.targetCpuSeconds.toFixed(1)} s`);
          } catch (err) {
            console.log(`failed: ${err.message}`);
            result.flood.push({ rep, kind, error: err.message });
          }
        }
      }
    } finally {
      await lab.cleanup();
    }
    result.floodSummary = {};
    for (const kind of opts.only) {
      const rs = result.flood.filter((r) => r.kind === kind && r.fraction !== undefined);
      result.floodSummary[kind] = {
        beforeMbps: median(rs.map((r) => r.beforeMbps)),
        duringMbps: median(rs.map((r) => r.duringMbps)),
        fraction: median(rs.map((r) => r.fraction)),
        floodRate: median(rs.map((r) => r.flood.rate)),
      };
    }
    console.log('\nmedians:');
    for (const [kind, s] of Object.entries(result.floodSummary)) {
      console.log(`  ${KINDS[kind].label.padEnd(24)} keeps ${(s.fraction * 100).toFixed(0)} % (${s.beforeMbps.toFixed(0)} -> ${s.duringMbps.toFixed(0)} Mbit/s) at ${s.floodRate.toFixed(0)} initiations/s`);
    }
  }

  saveResult('handshake', result, started);
}

await main();
