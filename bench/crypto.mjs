// Crypto provider benchmark: ChaCha20-Poly1305 seal/open throughput (Gbit/s, packets/s) at 64,
// 1420 and 65535 bytes, and X25519 shared secrets per second, for every provider in dist/.
// Run with `npm run bench:crypto` (builds first); results go to bench/results/crypto-<time>.json.
import { randomFillSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { nobleCrypto } from '../dist/core/crypto-noble.js';
import { nodeCrypto } from '../dist/crypto/node.js';
import { runHandshakes } from '../dist/core/handshake-bench.js';

export const PROVIDERS = [nobleCrypto, nodeCrypto];
const SIZES = [64, 1420, 65535];
const WARMUP_MS = 250;
const MEASURE_MS = 1000;

/** Deterministic bytes (xorshift32), so every run measures the same inputs. */
export function bytes(n, seed = 1) {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/**
 * Calls `op(i)` in batches for `warmupMs`, then for `measureMs`, timed with hrtime.
 * Returns operations per second. Exported for further benches (handshakes, below).
 */
export function measure(op, { warmupMs = WARMUP_MS, measureMs = MEASURE_MS, batch = 64 } = {}) {
  const run = (ms) => {
    const deadline = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
    const start = process.hrtime.bigint();
    let n = 0;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < batch; i++) op(n++);
      now = process.hrtime.bigint();
    }
    return n / (Number(now - start) / 1e9);
  };
  run(warmupMs);
  return run(measureMs);
}

function benchAead(provider, size) {
  const aead = provider.aead(bytes(32, 7));
  const plaintext = bytes(size, size);
  const sealed = new Uint8Array(size + 16);
  const out = new Uint8Array(size + 16);
  // Fewer calls per timer check for big packets keeps the time box honest.
  const batch = size > 4096 ? 4 : 64;
  const sealPps = measure((i) => aead.seal(i, plaintext, undefined, out), { batch });
  aead.seal(3, plaintext, undefined, sealed);
  const openPps = measure(() => {
    if (aead.open(3, sealed, undefined, out) !== size) throw new Error('open failed');
  }, { batch });
  const gbps = (pps) => (pps * size * 8) / 1e9;
  return { size, sealPps, sealGbps: gbps(sealPps), openPps, openGbps: gbps(openPps) };
}

function benchX25519(provider) {
  const publics = Array.from({ length: 16 }, (_, i) => provider.x25519PublicKey(bytes(32, 100 + i)));
  const staticKey = bytes(32, 42);
  // The handshake's static key repeats every handshake; ephemeral keys are new each time.
  const staticOps = measure((i) => provider.x25519(staticKey, publics[i & 15]), { batch: 8, measureMs: 700 });
  const privates = Array.from({ length: 1024 }, (_, i) => bytes(32, 5000 + i));
  const freshOps = measure((i) => provider.x25519(privates[i & 1023], publics[i & 15]), { batch: 8, measureMs: 700 });
  const publicKeyOps = measure((i) => provider.x25519PublicKey(privates[i & 1023]), { batch: 8, measureMs: 700 });
  return { staticOps, freshOps, publicKeyOps };
}

// Further benches plug in here, e.g. the protocol engineer's handshakes per second:
// { name: 'handshakes', unit: 'handshakes/s', run: (provider) => measure(...) } — each result is
// printed and saved under extra[name][provider.name].
export const EXTRA_BENCHES = [
  { name: 'handshakes', unit: 'complete handshakes/s, one core', run: (provider) => handshakesPerSecond(provider) },
];

/** Complete handshakes (both sides, MACs, key derivation) per second on this thread. */
export function handshakesPerSecond(provider) {
  const fill = (b) => void randomFillSync(b);
  return measure(() => runHandshakes(provider, 1, fill), { batch: 4, warmupMs: 300, measureMs: 1500 });
}

const fmt = (n, digits = 2) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function main() {
  const started = Date.now();
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    openssl: process.versions.openssl,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    aead: {},
    x25519: {},
    extra: {},
  };
  for (const p of PROVIDERS) result.aead[p.name] = SIZES.map((size) => benchAead(p, size));
  for (const p of PROVIDERS) result.x25519[p.name] = benchX25519(p);
  for (const b of EXTRA_BENCHES) {
    result.extra[b.name] = {};
    for (const p of PROVIDERS) result.extra[b.name][p.name] = b.run(p);
  }

  console.log(`crypto bench — node ${result.node}, OpenSSL ${result.openssl}, ${result.cpu}`);
  console.log('\nChaCha20-Poly1305 (one core, no AAD, counter nonce)');
  console.log('provider  bytes   seal Gbit/s  seal pkt/s    open Gbit/s  open pkt/s');
  for (const p of PROVIDERS) {
    for (const r of result.aead[p.name]) {
      console.log(
        `${p.name.padEnd(8)}  ${String(r.size).padStart(5)}   ${fmt(r.sealGbps).padStart(11)}  ${fmt(r.sealPps, 0).padStart(11)}  ` +
          `${fmt(r.openGbps).padStart(11)}  ${fmt(r.openPps, 0).padStart(11)}`,
      );
    }
  }
  const [base, fast] = PROVIDERS;
  console.log(`\nspeedup ${fast.name}/${base.name} (seal): ` +
    result.aead[fast.name].map((r, i) => `${r.size} B ${fmt(r.sealPps / result.aead[base.name][i].sealPps)}x`).join(', '));
  console.log('\nX25519 per second: shared secret (static key) | shared secret (fresh key) | public key');
  for (const p of PROVIDERS) {
    const x = result.x25519[p.name];
    console.log(`${p.name.padEnd(8)}  ${fmt(x.staticOps, 0).padStart(9)} | ${fmt(x.freshOps, 0).padStart(9)} | ${fmt(x.publicKeyOps, 0).padStart(9)}`);
  }
  for (const b of EXTRA_BENCHES) {
    console.log(`\n${b.name} (${b.unit}): ` + PROVIDERS.map((p) => `${p.name} ${fmt(result.extra[b.name][p.name], 0)}`).join(', '));
  }

  result.seconds = (Date.now() - started) / 1000;
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/crypto-${result.date.replace(/[:.]/g, '-')}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`\n${result.seconds.toFixed(1)} s; saved ${file.pathname}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
