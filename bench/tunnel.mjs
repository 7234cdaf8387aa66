// Tunnel benchmark (issue 4): two namespaces over veth, WireGuard MTU 1420, for each pairing
// (a) plexd-userspace <-> plexd-userspace, (b) wireguard-go <-> wireguard-go, (c) plexd-userspace
// -> wireguard-go, and (a) again with PLEXD_CRYPTO=noble: iperf3 TCP (IPv4), iperf3 UDP at the
// highest loss-free rate a short search finds, ping RTT, daemon RSS and CPU seconds per GB moved.
// Also current wireguard-go with offloads (gso, gso-mixed, gso-rev; WIREGUARD_GO_GSO=PATH) and
// iperf3 -P 4. Pairings alternate (reversed order every other repetition); medians and ratios to wireguard-go
// are printed and the raw runs saved to bench/results/tunnel-<time>.json.
//
//   npm run bench:tunnel [-- --quick] [-- --duration=10 --reps=3 --only=plexd,wggo]
// Env: BENCH_DURATION, BENCH_REPS, BENCH_ONLY, BENCH_UDP_LOSS (percent, default 0.1),
// PLEXD_BENCH_NODE_ARGS (node flags for our daemon, e.g. --cpu-prof). --gc: GC counts and heap
// growth of our daemons over the TCP run (perf_hooks probe preloaded). Needs root.

import os from 'node:os';
import { Lab, argOption, cpuSeconds, hasFlag, labUnavailableReason, median, memoryKiB, run, saveResult } from './lib/lab.mjs';
import { TUNNEL, gcSnapshot, iperf, iperfServer, tunnel, underlay } from './lib/wg.mjs';

const PAIRINGS = {
  plexd: ['plexd', 'plexd'],
  wggo: ['wggo', 'wggo'],
  mixed: ['plexd', 'wggo'],
  noble: ['plexd-noble', 'plexd-noble'],
  native: ['plexd-native', 'plexd-native'], // PLEXD_BIND=native / dgram forced, whatever the default
  dgram: ['plexd-dgram', 'plexd-dgram'],
  'native-mixed': ['plexd-native', 'wggo'],
  gso: ['wggo-gso', 'wggo-gso'], // current wireguard-go (TUN offloads, UDP GSO/GRO): WIREGUARD_GO_GSO
  'gso-mixed': ['plexd', 'wggo-gso'],
  'gso-rev': ['wggo-gso', 'plexd'],
  plain: ['plexd-plain', 'plexd-plain'], // PLEXD_TUN_OFFLOAD=0: A/B of the TUN offloads
  'plain-mixed': ['plexd-plain', 'wggo'],
  nogso: ['plexd-nogso', 'plexd-nogso'], // PLEXD_BIND=native-nogso: A/B of UDP GSO
  base: ['plexd-base', 'plexd-base'], // only with --only=...,base and PLEXD_BENCH_BASE (A/B of a change)
};
const LABEL = {
  plexd: 'plexd <-> plexd',
  wggo: 'wg-go <-> wg-go',
  mixed: 'plexd  -> wg-go',
  noble: 'plexd(noble) pair',
  native: 'plexd native bind',
  dgram: 'plexd dgram bind',
  'native-mixed': 'native -> wg-go',
  gso: 'wg-go GSO pair',
  'gso-mixed': 'plexd  -> wg-go GSO',
  'gso-rev': 'wg-go GSO -> plexd',
  plain: 'plexd no TUN offl.',
  'plain-mixed': 'no offl. -> wg-go',
  nogso: 'plexd no UDP GSO',
  base: 'plexd base build',
};

function options(argv) {
  const value = (name, env, dflt) => argOption(argv, name, env, dflt);
  const quick = hasFlag(argv, 'quick');
  return {
    quick,
    duration: Number(value('duration', 'BENCH_DURATION', quick ? 3 : 10)),
    reps: Number(value('reps', 'BENCH_REPS', quick ? 1 : 3)),
    only: String(value('only', 'BENCH_ONLY', 'plexd,wggo,gso,mixed,gso-mixed,gso-rev,noble')).split(',').filter((p) => p in PAIRINGS),
    udpSteps: quick ? 4 : 6,
    udpSeconds: quick ? 1 : 2,
    pings: quick ? 50 : 200,
    udpLossPercent: Number(process.env.BENCH_UDP_LOSS ?? 0.1),
    gc: hasFlag(argv, 'gc'),
  };
}

async function pingRtt(ns, count) {
  const r = await run(['ip', 'netns', 'exec', ns, 'ping', '-q', '-c', String(count), '-i', '0.01', '-W', '1', TUNNEL.b], {
    timeoutMs: count * 50 + 10_000,
  });
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  const loss = Number(/([\d.]+)% packet loss/.exec(r.stdout)?.[1] ?? NaN);
  return { avgMs: m ? Number(m[2]) : NaN, minMs: m ? Number(m[1]) : NaN, maxMs: m ? Number(m[3]) : NaN, lossPercent: loss };
}

// GC activity and heap growth of our daemons over the TCP run (bench:tunnel --gc).
function gcDelta(before, after) {
  if (before === undefined || after === undefined) return undefined;
  const gc = {};
  for (const k of Object.keys(after.gc)) gc[k] = after.gc[k] - (before.gc[k] ?? 0);
  return { gc, gcCount: after.gcCount - before.gcCount, gcPauseMs: after.gcPauseMs - before.gcPauseMs, heapUsedGrowth: after.heapUsed - before.heapUsed, rssGrowth: after.rss - before.rss };
}

async function tcp(t, seconds, args = []) {
  const gc0 = [await gcSnapshot(t.a), await gcSnapshot(t.b)];
  const cpu0 = [cpuSeconds(t.a.pid), cpuSeconds(t.b.pid)];
  const json = await iperf(t.a.ns, args, seconds);
  const cpu1 = [cpuSeconds(t.a.pid), cpuSeconds(t.b.pid)];
  const gc1 = [await gcSnapshot(t.a), await gcSnapshot(t.b)];
  const bytes = json.end.sum_received.bytes;
  const gb = bytes / 1e9;
  return {
    mbps: json.end.sum_received.bits_per_second / 1e6,
    bytes,
    retransmits: json.end.sum_sent.retransmits ?? null,
    cpuA: cpu1[0] - cpu0[0],
    cpuB: cpu1[1] - cpu0[1],
    cpuSecPerGbA: (cpu1[0] - cpu0[0]) / gb,
    cpuSecPerGbB: (cpu1[1] - cpu0[1]) / gb,
    cpuSecPerGb: (cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / gb,
    packets: Math.round(bytes / 1368),
    gcA: gcDelta(gc0[0], gc1[0]),
    gcB: gcDelta(gc0[1], gc1[1]),
  };
}

// Highest offered rate whose loss stays <= lossPercent: grow by 1.5x from a start until loss,
// then bisect; `steps` iperf3 runs of `seconds` each.
async function udpSearch(t, start, { udpSteps, udpSeconds, udpLossPercent }) {
  let good = 0;
  let bad = Infinity;
  const tries = [];
  for (let i = 0; i < udpSteps; i++) {
    const rate = bad === Infinity ? (good === 0 ? start : good * 1.5) : good === 0 ? bad / 2 : (good + bad) / 2;
    const json = await iperf(t.a.ns, ['-u', '-b', String(Math.round(rate)), '-l', '1392'], udpSeconds);
    const lost = json.end.sum.lost_percent;
    tries.push({ mbps: rate / 1e6, lostPercent: lost });
    if (lost <= udpLossPercent) good = rate;
    else bad = rate;
  }
  return { mbps: good / 1e6, tries };
}

async function measurePairing(lab, net, name, opts) {
  const [kindA, kindB] = PAIRINGS[name];
  const t = await tunnel(lab, net, kindA, kindB, { gc: opts.gc });
  try {
    const tcpResult = await tcp(t, opts.duration);
    // Four parallel streams (iperf3 -P 4): what one flow cannot fill.
    const tcp4 = await tcp(t, opts.duration, ['-P', '4']);
    const memA = memoryKiB(t.a.pid);
    const memB = memoryKiB(t.b.pid);
    // After TCP, so both daemons are warm (a fresh node daemon runs its first packets interpreted).
    const ping = await pingRtt(net.nsA, opts.pings);
    const udp = await udpSearch(t, Math.max(tcpResult.mbps * 0.7e6, 20e6), opts);
    return { pairing: name, ping, tcp: tcpResult, tcp4, udp, rssKiB: { a: memA, b: memB } };
  } finally {
    await t.stop();
  }
}

function summarize(runs, names) {
  const out = {};
  for (const name of names) {
    const rs = runs.filter((r) => r.pairing === name && !r.error);
    out[name] = {
      runs: rs.length,
      tcpMbps: median(rs.map((r) => r.tcp.mbps)),
      tcp4Mbps: median(rs.map((r) => r.tcp4.mbps)),
      cpuSecPerGb4: median(rs.map((r) => r.tcp4.cpuSecPerGb)),
      udpMbps: median(rs.map((r) => r.udp.mbps)),
      rttMs: median(rs.map((r) => r.ping.avgMs)),
      rssMiBA: median(rs.map((r) => (r.rssKiB.a?.rss ?? NaN) / 1024)),
      cpuSecPerGb: median(rs.map((r) => r.tcp.cpuSecPerGb)),
      cpuSecPerGbA: median(rs.map((r) => r.tcp.cpuSecPerGbA)),
    };
  }
  return out;
}

function printTable(summary) {
  const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const ratio = (x, y) => (Number.isFinite(x) && Number.isFinite(y) && y !== 0 ? `${(x / y).toFixed(2)}x` : '-');
  const cols = [
    ['TCP Mbit/s', 'tcpMbps', 0], ['TCP x4 Mbit/s', 'tcp4Mbps', 0], ['UDP Mbit/s', 'udpMbps', 0], ['RTT ms', 'rttMs', 3],
    ['RSS(A) MiB', 'rssMiBA', 1], ['CPU s/GB', 'cpuSecPerGb', 2], ['CPU s/GB x4', 'cpuSecPerGb4', 2],
  ];
  // Ratios to each reference from the same run: Debian's wireguard-go pair and the current one.
  for (const [refName, refLabel] of [['wggo', 'Debian wireguard-go pair'], ['gso', 'current wireguard-go (GSO) pair']]) {
    const base = summary[refName];
    if (base === undefined) continue;
    console.log(`\nratios to ${refLabel}`);
    console.log(`${'pairing'.padEnd(21)}${cols.map(([t]) => t.padStart(19)).join('')}`);
    for (const [name, s] of Object.entries(summary)) {
      const cell = ([, k, d]) => `${f(s[k], d).padStart(9)} ${name === refName ? '        ' : `(${ratio(s[k], base[k])})`.padStart(8)}`;
      console.log(`${LABEL[name].padEnd(21)}${cols.map((c) => ' ' + cell(c)).join('')}`);
    }
  }
  console.log('(medians; CPU s/GB counts both daemons; x4 = iperf3 -P 4)');
}

async function main() {
  const reason = labUnavailableReason();
  if (reason !== undefined) {
    console.error(`bench:tunnel cannot run: ${reason}`);
    process.exitCode = 1;
    return;
  }
  const opts = options(process.argv.slice(2));
  const started = Date.now();
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    options: opts,
    runs: [],
  };
  console.log(`bench:tunnel — ${opts.only.join(', ')}; TCP ${opts.duration} s, ${opts.reps} repetition(s), ${result.cores} cores, ${result.cpu}`);
  const lab = new Lab();
  try {
    const net = await underlay(lab);
    await iperfServer(lab, net.nsB);
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = rep % 2 === 0 ? opts.only : [...opts.only].reverse();
      for (const name of order) {
        process.stdout.write(`rep ${rep + 1} ${LABEL[name]} ... `);
        try {
          const r = await measurePairing(lab, net, name, opts);
          result.runs.push({ rep, ...r });
          console.log(`TCP ${r.tcp.mbps.toFixed(0)} Mbit/s, x4 ${r.tcp4.mbps.toFixed(0)} Mbit/s, UDP ${r.udp.mbps.toFixed(0)} Mbit/s, RTT ${r.ping.avgMs} ms, ` +
            `RSS ${((r.rssKiB.a?.rss ?? NaN) / 1024).toFixed(1)} MiB, ${r.tcp.cpuSecPerGb.toFixed(2)} CPU s/GB`);
          for (const [side, g] of [['A (sender)', r.tcp.gcA], ['B (receiver)', r.tcp.gcB]]) {
            if (g !== undefined) {
              console.log(`    GC ${side}: ${g.gcCount} collections (${JSON.stringify(g.gc)}), ${g.gcPauseMs.toFixed(0)} ms paused, ` +
                `heap ${(g.heapUsedGrowth / 1024).toFixed(0)} KiB growth over ~${r.tcp.packets} packets`);
            }
          }
        } catch (err) {
          console.log(`failed: ${err.message}`);
          result.runs.push({ rep, pairing: name, error: err.message });
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
  result.summary = summarize(result.runs, opts.only);
  printTable(result.summary);
  saveResult('tunnel', result, started);
}

await main();
