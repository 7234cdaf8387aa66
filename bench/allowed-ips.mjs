// Allowed-IPs trie benchmark (docs/DESIGN.md: 130,000 prefixes must load in well under a second):
// insert time, lookups per second, per-peer listing and removeValue time, heap used.
// Run with `npm run bench:allowed-ips`; it measures the built dist/, as users run it.
import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AllowedIps } from '../dist/core/allowed-ips.js';
import { prng } from './lib/prng.mjs';

const PREFIXES = 130_000;
const LOOKUPS = 2_000_000;
const RUNS = 5;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const rnd = prng(2024); // fixed seed: every run measures the same prefixes
const prefixes = [];
for (let i = 0; i < PREFIXES; i++) {
  const v6 = i % 2 === 1;
  const ip = new Uint8Array(v6 ? 16 : 4);
  for (let k = 0; k < ip.length; k++) ip[k] = Math.floor(rnd() * 256);
  const cidr = v6 ? 16 + Math.floor(rnd() * 113) : 8 + Math.floor(rnd() * 25);
  prefixes.push({ ip, cidr });
}
// Lookup addresses packed like packet headers: half inside inserted prefixes, half random.
const v4Addrs = new Uint8Array(65_536 * 4);
const v6Addrs = new Uint8Array(65_536 * 16);
for (let i = 0; i < 65_536; i++) {
  const src4 = prefixes[(i * 2) % PREFIXES].ip;
  const src6 = prefixes[(i * 2 + 1) % PREFIXES].ip;
  for (let k = 0; k < 4; k++) v4Addrs[i * 4 + k] = i % 2 === 0 ? src4[k] : Math.floor(rnd() * 256);
  for (let k = 0; k < 16; k++) v6Addrs[i * 16 + k] = i % 2 === 0 && k < 4 ? src6[k] : Math.floor(rnd() * 256);
}

const peer = { name: 'big-peer' };
function build() {
  const t = new AllowedIps();
  for (const p of prefixes) t.insert(p.ip, p.cidr, peer);
  return t;
}

function time(fn) {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
}

const insertMs = [];
const listMs = [];
const removeMs = [];
let heapBytes = 0;
let stored = 0;
let matched = 0;
const lookup4 = [];
const lookup6 = [];
for (let run = 0; run < RUNS; run++) {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const { ms, r: table } = time(build);
  insertMs.push(ms);
  gc();
  heapBytes = process.memoryUsage().heapUsed - heapBefore;
  stored = table.size;

  for (const [family, addrs, stride, out] of [
    [4, v4Addrs, 4, lookup4],
    [6, v6Addrs, 16, lookup6],
  ]) {
    const count = addrs.length / stride;
    let hits = 0;
    const { ms: lms } = time(() => {
      for (let i = 0; i < LOOKUPS; i++) if (table.lookup(family, addrs, (i & (count - 1)) * stride) !== undefined) hits++;
    });
    out.push(LOOKUPS / (lms / 1000));
    matched = hits;
  }

  const { ms: lsMs, r: listed } = time(() => table.entriesOf(peer));
  if (listed.length !== stored) throw new Error(`listed ${listed.length}, stored ${stored}`);
  listMs.push(lsMs);
  removeMs.push(time(() => table.removeValue(peer)).ms);
  if (table.size !== 0) throw new Error('removeValue left prefixes behind');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  bench: 'allowed-ips',
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  prefixesInserted: PREFIXES,
  prefixesStored: stored,
  runs: RUNS,
  insertMsMedian: median(insertMs),
  insertMsBest: Math.min(...insertMs),
  lookupsPerSecV4Median: median(lookup4),
  lookupsPerSecV6Median: median(lookup6),
  entriesOfMsMedian: median(listMs),
  removeValueMsMedian: median(removeMs),
  heapBytesForTable: heapBytes,
};

console.table({
  'insert 130k (ms, median)': result.insertMsMedian.toFixed(1),
  'insert 130k (ms, best)': result.insertMsBest.toFixed(1),
  'lookup IPv4 (M/s)': (result.lookupsPerSecV4Median / 1e6).toFixed(2),
  'lookup IPv6 (M/s)': (result.lookupsPerSecV6Median / 1e6).toFixed(2),
  'entriesOf 130k (ms)': result.entriesOfMsMedian.toFixed(1),
  'removeValue 130k (ms)': result.removeValueMsMedian.toFixed(1),
  'heap for table (MiB)': (heapBytes / 2 ** 20).toFixed(1),
  'bytes per prefix': (heapBytes / stored).toFixed(0),
});
void matched;

const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(`allowed-ips-${result.date.replace(/[:.]/g, '-')}.json`, dir);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`saved ${file.pathname}`);
