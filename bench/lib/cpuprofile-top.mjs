// Summarizes a V8 .cpuprofile (from node --cpu-prof): self time per function, top N, as a
// percentage of all samples. `node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [N]`.

import { readFileSync } from 'node:fs';

const [file, nText] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpuprofile-top.mjs FILE.cpuprofile [N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (const id of profile.samples) {
  const node = byId.get(id);
  const cf = node.callFrame;
  const where = cf.url ? `${cf.url.replace(/^.*\/(dist|node:)/, '$1')}:${cf.lineNumber + 1}` : '';
  const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
  self.set(key, (self.get(key) ?? 0) + 1);
}
const total = profile.samples.length;
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(nText ?? 25));
console.log(`${total} samples`);
for (const [key, n] of rows) console.log(`${((n / total) * 100).toFixed(1).padStart(5)} %  ${key}`);
