// Policy filter benchmark (issue 7): decisions per second with 10, 1,000 and 10,000 realistic
// random rules, three ways: the compiled matcher alone (every packet judged by the rules), the
// filter on new flows (rules + a conntrack insert each), and the filter on tracked flows (the
// steady state of established connections). Also compile time and memory of the rule sets.
// Then, as root, tunnel TCP throughput of a plexd <-> plexd tunnel whose daemons enforce 1,000
// rules (PLEXD_POLICY_FILE) as a fraction of the same tunnel without a policy (target >= 0.9);
// skipped with the reason when namespaces are unavailable. Reuses bench/lib (the tunnel bench's
// underlay, daemons and iperf3 helpers).
// Run with `npm run bench:policy [-- --quick] [-- --duration=8 --reps=3]`; it measures the built
// dist/, as users run it.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Lab, argOption, hasFlag, labUnavailableReason, median } from './lib/lab.mjs';
import { TUNNEL, iperf, iperfServer, tunnel, underlay } from './lib/wg.mjs';
import { prng } from './lib/prng.mjs';
import { CompiledPolicy } from '../dist/policy/compiled-policy.js';
import { PolicyFilter } from '../dist/policy/filter.js';
import { PacketMeta, readPacket } from '../dist/policy/packet-meta.js';
import { parsePolicy } from '../dist/policy/rules.js';

const SIZES = [10, 1_000, 10_000];
const PACKETS = 4096;
const DECISIONS = 2_000_000;
const RUNS = 5;

const rnd = prng(7); // fixed seed: every run measures the same rules and packets
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const COMMON_PORTS = [22, 53, 80, 443, 5432, 6379, 8080, 9090, 9100, 3000];
const meshIp = () => `10.100.${Math.floor(rnd() * 16)}.${1 + Math.floor(rnd() * 250)}`;

/** Mesh-like rules: host-to-host and group-to-host service rules, some denies, a few broad ones. */
function realisticRules(n) {
  const rules = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const src = r < 0.5 ? `${meshIp()}/32` : r < 0.8 ? `10.100.${Math.floor(rnd() * 16)}.0/24` : r < 0.95 ? '10.100.0.0/16' : '0.0.0.0/0';
    const dst = rnd() < 0.8 ? `${meshIp()}/32` : `10.100.${Math.floor(rnd() * 16)}.0/24`;
    const protocol = pick(['tcp', 'tcp', 'tcp', 'udp', 'icmp', 'any']);
    const rule = { action: rnd() < 0.85 ? 'allow' : 'deny', protocol, source_cidr: src, destination_cidr: dst };
    if (protocol === 'tcp' || protocol === 'udp') {
      const from = rnd() < 0.8 ? pick(COMMON_PORTS) : 1024 + Math.floor(rnd() * 60000);
      rule.ports = { from, to: rnd() < 0.8 ? from : Math.min(65535, from + Math.floor(rnd() * 1000)) };
    }
    rules.push(rule);
  }
  return rules;
}

function ipv4(src, dst, proto, sport, dport) {
  const p = new Uint8Array(proto === 6 ? 40 : 28);
  p[0] = 0x45;
  p[3] = p.length;
  p[8] = 64;
  p[9] = proto;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  p[20] = sport >> 8;
  p[21] = sport & 0xff;
  p[22] = dport >> 8;
  p[23] = dport & 0xff;
  if (proto === 6) {
    p[32] = 5 << 4;
    p[33] = 0x10; // ACK: a mid-stream segment, picked up as established
  }
  if (proto === 1) p[20] = 8; // echo request
  return p;
}

const packets = [];
for (let i = 0; i < PACKETS; i++) {
  const proto = pick([6, 6, 6, 17, 1]);
  packets.push(ipv4(meshIp(), meshIp(), proto, 1024 + (i % 60000), proto === 1 ? 0 : rnd() < 0.7 ? pick(COMMON_PORTS) : Math.floor(rnd() * 65536)));
}

function rate(fn) {
  const t0 = process.hrtime.bigint();
  const n = fn();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const rows = [];
for (const size of SIZES) {
  const policy = parsePolicy({ revision_id: `bench-${size}`, fingerprint: '', rules: realisticRules(size) });
  const t0 = process.hrtime.bigint();
  const compiled = new CompiledPolicy(policy);
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const meta = new PacketMeta();
  const matchRates = [];
  const newFlowRates = [];
  const trackedRates = [];
  let allowed = 0;
  let trackedFlows = 0;
  for (let run = 0; run < RUNS; run++) {
    matchRates.push(rate(() => {
      let hits = 0;
      for (let i = 0; i < DECISIONS; i++) {
        const p = packets[i & (PACKETS - 1)];
        readPacket(p, meta);
        if (compiled.match(meta.family, p, meta.srcOffset, meta.dstOffset, meta.klass, meta.dport) >= 0) hits++;
      }
      allowed = hits;
      return DECISIONS;
    }));
    // New flows: one filter, time jumping past every timeout between passes, so each packet is
    // the first of its flow (its stale entry is reclaimed on the way).
    const fresh = new PolicyFilter({ conntrackMax: 8192 });
    fresh.apply(policy);
    newFlowRates.push(rate(() => {
      for (let i = 0; i < DECISIONS / 4; i++) fresh.outbound(packets[i & (PACKETS - 1)], 1e9 * (run * DECISIONS + i >>> 12));
      return DECISIONS / 4;
    }));
    // Tracked: the packets this policy allows, their flows already open: the established steady state.
    const f = new PolicyFilter({ conntrackMax: 8192 });
    f.apply(policy);
    const open = packets.filter((p) => f.outbound(p, 0));
    trackedRates.push(open.length === 0 ? NaN : rate(() => {
      for (let i = 0; i < DECISIONS; i++) f.outbound(open[i % open.length], 1);
      return DECISIONS;
    }));
    trackedFlows = open.length;
  }
  rows.push({
    rules: size,
    compileMs,
    compiledBytes: compiled.memoryBytes,
    matchedFraction: allowed / DECISIONS,
    matchDecisionsPerSec: median(matchRates),
    newFlowDecisionsPerSec: median(newFlowRates),
    trackedFlows,
    trackedDecisionsPerSec: median(trackedRates),
  });
}

// ---- tunnel TCP throughput with 1,000 rules vs none ------------------------------------------

const TUNNEL_RULES = 1_000;

/** True when a short UDP run gets data through (the bench policy allows only TCP 5201 and ICMP). */
async function udpPasses(nsA) {
  let end;
  try {
    end = (await iperf(nsA, ['-u', '-b', '1M', '-l', '1000'], 1)).end;
  } catch {
    return false;
  }
  return (end.sum_received?.bytes ?? end.sum.bytes * (1 - end.sum.lost_percent / 100)) > 0;
}

async function tunnelWithRules(argv) {
  const reason = labUnavailableReason(['ip', 'wg', 'iperf3', 'ping']);
  if (reason !== undefined) {
    console.log(`tunnel throughput with ${TUNNEL_RULES} rules: skipped (${reason})`);
    return undefined;
  }
  const quick = hasFlag(argv, 'quick');
  const seconds = Number(argOption(argv, 'duration', 'BENCH_DURATION', quick ? 3 : 8));
  const reps = Number(argOption(argv, 'reps', 'BENCH_REPS', quick ? 1 : 3));
  const lab = new Lab();
  try {
    // 998 realistic mesh rules (10.100/16) the tunnel's addresses never match, then the two that
    // let the bench through: iperf3's TCP 5201 and ICMP for the helper's readiness ping. The TCP
    // flow is tracked after its first packet, which is the steady state this measures.
    const rules = [
      ...realisticRules(TUNNEL_RULES - 2),
      { action: 'allow', protocol: 'tcp', source_cidr: `${TUNNEL.a}/24`, destination_cidr: `${TUNNEL.b}/24`, ports: { from: 5201, to: 5201 } },
      { action: 'allow', protocol: 'icmp', source_cidr: `${TUNNEL.a}/24`, destination_cidr: `${TUNNEL.b}/24` },
    ];
    const file = join(lab.tmp, 'policy.json');
    writeFileSync(file, JSON.stringify({ revision_id: 'bench-tunnel', fingerprint: '', rules }));
    const net = await underlay(lab);
    const bps = { none: [], rules: [] };
    let udpBlocked;
    for (let rep = 0; rep < reps; rep++) {
      for (const which of rep % 2 === 0 ? ['none', 'rules'] : ['rules', 'none']) {
        // bench/lib's startDaemon passes our environment to the daemons it starts.
        if (which === 'rules') process.env.PLEXD_POLICY_FILE = file;
        let t;
        try {
          t = await tunnel(lab, net, 'plexd', 'plexd');
        } finally {
          delete process.env.PLEXD_POLICY_FILE;
        }
        // A server per tunnel: one left mid-test by a torn-down tunnel (or by the refused UDP
        // check) answers the next client with "busy" or a reset.
        const server = await iperfServer(lab, net.nsB);
        try {
          bps[which].push((await iperf(net.nsA, [], seconds)).end.sum_received.bits_per_second);
          if (which === 'rules' && udpBlocked === undefined) udpBlocked = !(await udpPasses(net.nsA));
        } finally {
          await lab.stop(server);
          await t.stop();
        }
        console.log(`  rep ${rep + 1}/${reps} ${which === 'none' ? 'no policy' : `${TUNNEL_RULES} rules`}: ${(bps[which].at(-1) / 1e6).toFixed(0)} Mbit/s`);
      }
    }
    const none = median(bps.none);
    const withRules = median(bps.rules);
    return { rules: TUNNEL_RULES, seconds, reps, noPolicyBps: none, rulesBps: withRules, ratio: withRules / none, policyEnforced: udpBlocked, runs: bps };
  } finally {
    await lab.cleanup();
  }
}

const tunnelResult = await tunnelWithRules(process.argv.slice(2));
if (tunnelResult !== undefined) {
  const r = tunnelResult;
  console.log(
    `tunnel TCP: no policy ${(r.noPolicyBps / 1e6).toFixed(0)} Mbit/s, ${r.rules} rules ${(r.rulesBps / 1e6).toFixed(0)} Mbit/s: ratio ${r.ratio.toFixed(3)} (target >= 0.9)` +
      `; policy enforced (UDP refused): ${r.policyEnforced ? 'yes' : 'NO'}`,
  );
}

const result = { bench: 'policy', date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown', runs: RUNS, rows, tunnel: tunnelResult ?? null };
console.table(
  Object.fromEntries(
    rows.map((r) => [
      `${r.rules} rules`,
      {
        'compile (ms)': r.compileMs.toFixed(1),
        'rule sets (MiB)': (r.compiledBytes / 2 ** 20).toFixed(2),
        'matched a rule': `${(r.matchedFraction * 100).toFixed(0)} %`,
        'rules only (M/s)': (r.matchDecisionsPerSec / 1e6).toFixed(2),
        'new flows (M/s)': (r.newFlowDecisionsPerSec / 1e6).toFixed(2),
        'tracked (M/s)': Number.isNaN(r.trackedDecisionsPerSec) ? 'n/a' : (r.trackedDecisionsPerSec / 1e6).toFixed(2),
      },
    ]),
  ),
);
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(`policy-${result.date.replace(/[:.]/g, '-')}.json`, dir);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`saved ${file.pathname}`);
