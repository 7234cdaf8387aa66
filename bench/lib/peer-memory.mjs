// Where the memory of configured peers goes, in-process (no root, no namespaces): configures N
// peers with two allowed IPs each (as bench/peers.mjs does) and prints the time, the heap and RSS
// growth per peer and, with --snapshot, the retained heap grouped by constructor.
//
//   node --expose-gc bench/lib/peer-memory.mjs [--peers=10000] [--mode=engine|uapi]
//        [--crypto=node|noble] [--dist=dist] [--snapshot[=rows]] [--write-snapshot=FILE] [--spaces]
//
// engine: Engine.addPeer + allowedIps.insert directly. uapi: the text `wg setconf` sends, framed
// by UapiRequestParser in 64 KiB chunks and applied by Device.apply (memory bind, no TUN).

import { randomFillSync } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
  return m ? [m[1], m[2] ?? 'true'] : [a, 'true'];
}));
const count = Number(args.peers ?? 10_000);
const mode = args.mode ?? 'uapi';
const dist = path.resolve(args.dist ?? new URL('../../dist', import.meta.url).pathname);
const lib = await import(pathToFileURL(path.join(dist, 'index.js')).href);
const { UapiRequestParser } = await import(pathToFileURL(path.join(dist, 'uapi/protocol.js')).href);
const { deviceEngine } = await import(pathToFileURL(path.join(dist, 'device/device.js')).href);
const crypto = args.crypto === 'noble' ? lib.core.nobleCrypto : lib.nodeCrypto;

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(1);
}
const settle = () => {
  for (let i = 0; i < 4; i++) globalThis.gc();
};

// Inputs are made before the baseline so they are not counted.
const keys = [];
for (let i = 0; i < count; i++) keys.push(randomFillSync(new Uint8Array(32)));
const privateKey = randomFillSync(new Uint8Array(32));
const ip4 = (i) => Uint8Array.of(10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
const ip6 = (i) => {
  const b = new Uint8Array(16);
  b[0] = 0xfd;
  b[13] = (i >> 16) & 0xff;
  b[14] = (i >> 8) & 0xff;
  b[15] = i & 0xff;
  return b;
};
// The request as one UAPI stream in 64 KiB chunks; in a function so only the chunks stay alive.
function uapiRequest() {
  const lines = ['set=1', `private_key=${Buffer.from(privateKey).toString('hex')}`, 'listen_port=0', 'replace_peers=true'];
  for (let i = 0; i < count; i++) {
    const a = (i >> 16) & 0xff;
    const b = (i >> 8) & 0xff;
    const c = i & 0xff;
    lines.push(`public_key=${Buffer.from(keys[i]).toString('hex')}`, 'replace_allowed_ips=true',
      `allowed_ip=10.${a}.${b}.${c}/32`, `allowed_ip=fd00::${a.toString(16)}:${b.toString(16)}${c.toString(16).padStart(2, '0')}/128`);
  }
  const text = Buffer.from(lines.join('\n') + '\n\n', 'latin1');
  const chunks = [];
  for (let i = 0; i < text.length; i += 65536) chunks.push(Buffer.from(text.subarray(i, i + 65536)));
  return chunks;
}
let uapiChunks = mode === 'uapi' ? uapiRequest() : undefined;

let holder;

// In a function so nothing of the parsed transaction stays reachable after it returns.
async function loadUapi() {
  const device = await lib.Device.create({ onPacket: () => {}, crypto, bind: new lib.MemoryNetwork().createBind(['192.0.2.1']) });
  const parser = new UapiRequestParser();
  for (const chunk of uapiChunks) {
    for (const req of parser.push(chunk)) {
      if (req.kind !== 'set') throw new Error(`unexpected ${req.kind}`);
      await device.apply(req.tx);
    }
  }
  const peers = deviceEngine(device).peerCount;
  if (peers !== count) throw new Error(`${peers} peers`);
  return device;
}

settle();
const before = process.memoryUsage();
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
if (mode === 'engine') {
  const engine = new lib.core.Engine({ crypto, fillRandom: randomFillSync, wallClockMs: Date.now });
  engine.setPrivateKey(privateKey, 0);
  for (let i = 0; i < count; i++) {
    const peer = engine.addPeer(keys[i]);
    engine.allowedIps.insert(ip4(i), 32, peer);
    engine.allowedIps.insert(ip6(i), 128, peer);
  }
  holder = engine;
} else {
  holder = await loadUapi();
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const peak = process.memoryUsage();
uapiChunks = undefined;
settle();
const after = process.memoryUsage();
const perPeer = (a, b) => ((a - b) / count).toFixed(0);
console.log(`${count} peers, ${mode}, ${crypto.name}: ${seconds.toFixed(3)} s wall, ${cpuSeconds.toFixed(3)} s CPU (${((cpuSeconds / count) * 1e6).toFixed(1)} µs CPU/peer)`);
console.log(`  retained heapUsed +${((after.heapUsed - before.heapUsed) / 2 ** 20).toFixed(1)} MiB = ${perPeer(after.heapUsed, before.heapUsed)} B/peer;` +
  ` external +${perPeer(after.external, before.external)} B/peer (arrayBuffers +${perPeer(after.arrayBuffers, before.arrayBuffers)})`);
console.log(`  RSS ${(before.rss / 2 ** 20).toFixed(1)} -> peak ${(peak.rss / 2 ** 20).toFixed(1)} -> settled ${(after.rss / 2 ** 20).toFixed(1)} MiB` +
  ` (+${perPeer(after.rss, before.rss)} B/peer); heapTotal ${(after.heapTotal / 2 ** 20).toFixed(1)} MiB`);

if (args.spaces !== undefined) {
  for (const sp of v8.getHeapSpaceStatistics()) {
    if (sp.space_size === 0) continue;
    console.log(`    ${sp.space_name.padEnd(24)} size ${(sp.space_size / 2 ** 20).toFixed(1).padStart(6)} MiB, used ${(sp.space_used_size / 2 ** 20).toFixed(1).padStart(6)} MiB`);
  }
}
if (args.snapshot !== undefined) {
  // Aggregate self sizes by node name (constructor) over the whole heap; the inputs (keys) are
  // included, so compare runs rather than reading absolute numbers.
  const snap = JSON.parse(await new Promise((resolve, reject) => {
    const chunks = [];
    v8.getHeapSnapshot().on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString())).on('error', reject);
  }));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const groups = new Map();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const name = `${types[snap.nodes[i + iType]]}:${snap.strings[snap.nodes[i + iName]]}`.slice(0, 60);
    const g = groups.get(name) ?? { n: 0, bytes: 0 };
    g.n++;
    g.bytes += snap.nodes[i + iSize];
    groups.set(name, g);
  }
  const top = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(args.snapshot === 'true' ? 25 : args.snapshot));
  console.log('  heap by constructor (count, bytes, bytes/peer):');
  for (const [name, g] of top) console.log(`    ${name.padEnd(60)} ${String(g.n).padStart(8)} ${String(g.bytes).padStart(11)} ${(g.bytes / count).toFixed(1).padStart(8)}`);
}
if (args['write-snapshot'] !== undefined) console.log(`  wrote ${v8.writeHeapSnapshot(args['write-snapshot'])}`);
void holder;
