// UAPI text fuzz (issue 11): random and mutated get/set requests, cut into random chunks, through
// the request parser into a real Device (memory twins) as the UAPI handler, the way the socket
// server drives it. Asserts: nothing throws but DeviceError; every framed request gets exactly one
// `errno=N` reply with a wireguard-go errno (or, for a non-operation, a close without reply); a
// set that fails changes nothing; after every request the device's get=1 equals that of the
// naive reference model (test/uapi/naive-device.ts) fed the same accepted transactions (listen_port aside: port 0
// picks a free one). `npm run fuzz` scales it (PLEXD_FUZZ_ITERATIONS).

import { afterAll, describe, expect, it } from 'vitest';
import { nodeCrypto } from '../../src/crypto/node.js';
import { Device, deviceEngine } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';
import { DeviceError } from '../../src/device/errors.js';
import { toUapiError, UAPI_ERRNO } from '../../src/uapi/errors.js';
import { MAX_LINE_BYTES, UapiRequestParser, type UapiRequest } from '../../src/uapi/protocol.js';
import { serializeGet } from '../../src/uapi/serialize.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { retainedBytes } from '../helpers/heap.js';
import { seededInts } from '../helpers/rng.js';
import { NaiveDevice } from '../uapi/naive-device.js';
import { randomSetBody } from '../uapi/naive-set.js';

const ITERATIONS = fuzzIterations(2_000);
const SEED = fuzzSeed(0x0a9110);
const ERRNOS = new Set<number>(Object.values(UAPI_ERRNO));
const GARBAGE_LINES = ['x', '=', 'public_key=', 'allowed_ip=10.0.0.0/33', 'endpoint=[::1]:99999', 'listen_port=-1', 'get=1', 'set=1', '\r', 'replace_peers=false', 'allowed_ip=-', 'persistent_keepalive_interval=65536', 'fwmark=4294967296', 'remove=true', 'protocol_version=2', `private_key=${'0'.repeat(63)}g`];

/** get=1 text without the listen_port line (port 0 lets each side pick its own). */
function getText(handler: { snapshot: NaiveDevice['snapshot'] }): string {
  return [...serializeGet(handler.snapshot())].join('').split('\n').filter((l) => !l.startsWith('listen_port=')).join('\n');
}

describe('UAPI text fuzz', () => {
  const open: Device[] = [];
  afterAll(async () => {
    for (const d of open) await d.close();
  });

  it(`${ITERATIONS} random and mutated requests: one known errno each, no throw, device equal to the reference`, async () => {
    const net = new MemoryNetwork();
    const device = await Device.create({ bind: net.createBind(['10.0.0.1']), onPacket: () => {}, clock: new ManualClock(), listenPort: 51820 });
    open.push(device);
    // The reference asks for its own public key on every set: remember the last one.
    let last: { hex: string; pub: Uint8Array } = { hex: '', pub: new Uint8Array(32) };
    const model = new NaiveDevice({
      publicKeyOf: (k) => {
        const hex = Buffer.from(k).toString('hex');
        if (hex !== last.hex) last = { hex, pub: nodeCrypto.x25519PublicKey(k) };
        return last.pub;
      },
    });
    const int = seededInts(SEED);

    const request = (): string => {
      const kind = int(10);
      if (kind === 0) return ['get=1\n\n', 'get=1\nx', 'get=1\r\n\r\n', 'GET=1\n\n', 'get=1\n'][int(5)]!;
      const lines = `set=1\n${randomSetBody(int, 30)}`.split('\n');
      if (kind <= 3) return lines.join('\n'); // valid
      const edits = 1 + int(3);
      for (let e = 0; e < edits; e++) {
        const at = 1 + int(Math.max(1, lines.length - 1));
        const op = int(5);
        if (op === 0) lines.splice(at, 0, GARBAGE_LINES[int(GARBAGE_LINES.length)]!);
        else if (op === 1) lines.splice(at, 1);
        else if (op === 2 && lines[at] !== undefined && lines[at]!.length > 0) {
          const l = lines[at]!;
          const p = int(l.length);
          lines[at] = l.slice(0, p) + String.fromCharCode(int(256)) + l.slice(p + 1);
        } else if (op === 3) lines[at] = (lines[at] ?? '').slice(0, int((lines[at] ?? '').length + 1));
        else lines.splice(at, 0, lines[int(lines.length)]!);
      }
      return lines.join('\n');
    };

    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    let maxPeers = 0;
    const heapBefore = retainedBytes();
    let parser = new UapiRequestParser();
    for (let i = 0; i < ITERATIONS; i++) {
      if (parser.closed) parser = new UapiRequestParser(); // the server would take a new connection
      const tail = int(32); // now and then a stray blank line (not an operation) or an overlong line
      const bytes = Buffer.from(request() + (tail === 0 ? '\n' : tail === 1 ? `${'x'.repeat(MAX_LINE_BYTES + 1)}\n` : ''), 'latin1');
      const framed: UapiRequest[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + int(64);
        framed.push(...parser.push(bytes.subarray(at, at + n)));
        at += n;
      }
      if (int(8) === 0) framed.push(...parser.end());
      for (const r of framed) {
        const where = `seed ${SEED} request ${i}`;
        if (r.kind === 'close') {
          count('close');
          continue;
        }
        if (r.kind === 'get') {
          const text = [...serializeGet(device.snapshot())].join('') + 'errno=0\n\n';
          expect(text.endsWith('\nerrno=0\n\n') || text === 'errno=0\n\n', where).toBe(true);
          count('get errno=0');
          continue;
        }
        if (r.kind === 'error') {
          expect(ERRNOS.has(r.error.errno), where).toBe(true);
          count(`${r.fatal ? 'fatal ' : ''}errno=${r.error.errno}`);
          continue;
        }
        const before = getText(device);
        let errno = 0;
        try {
          await device.apply(r.tx);
        } catch (err) {
          if (!(err instanceof DeviceError)) throw new Error(`${where}: apply threw ${String(err)}`);
          errno = toUapiError(err).errno;
        }
        expect(errno === 0 || ERRNOS.has(errno), where).toBe(true);
        count(`set errno=${errno}`);
        if (errno === 0) model.apply(r.tx);
        else expect(getText(device), `${where}: a failed set changed the device`).toBe(before);
        expect(getText(device), where).toBe(getText(model));
      }
      if (parser.closed) continue;
      maxPeers = Math.max(maxPeers, deviceEngine(device).peerCount);
    }
    const heapDelta = retainedBytes() - heapBefore;
    console.log(
      `uapi fuzz: seed ${SEED}, ${ITERATIONS} requests, outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}, ` +
        `peers at most ${maxPeers}, now ${deviceEngine(device).peerCount}, heap delta ${(heapDelta / 1048576).toFixed(1)} MiB`,
    );
    for (const k of ['close', 'get errno=0', 'set errno=0', `errno=${UAPI_ERRNO.INVALID}`, `errno=${UAPI_ERRNO.PROTOCOL}`, `fatal errno=${UAPI_ERRNO.IO}`]) expect(outcomes.get(k) ?? 0, k).toBeGreaterThan(0);
    expect(heapDelta).toBeLessThan(64 * 1024 * 1024);
  }, fuzzTimeout(ITERATIONS, 1));
});
