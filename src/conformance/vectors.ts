// Known-answer checks for `plexd-userspace conformance vectors`: every file in vectors/ (see
// vectors/README.md for sources) run through each selected crypto provider and the protocol core
// (Noise_IKpsk2 steps, two Engines, the replay window). Product code: the package ships vectors/.

import { readFileSync } from 'node:fs';
import { blake2s } from '@noble/hashes/blake2.js';
import type { ActionSink, DropReason, Endpoint } from '../core/actions.js';
import type { CryptoProvider } from '../core/crypto.js';
import * as noble from '../core/crypto-noble.js';
import { Engine } from '../core/engine.js';
import { kdf1, kdf2, kdf3 } from '../core/kdf.js';
import {
  NoiseState,
  consumeInitiationPayload,
  consumeInitiationStatic,
  consumeResponse,
  createInitiation,
  createResponse,
  initialState,
  initiationBodyLength,
  responseBodyLength,
  split,
} from '../core/noise.js';
import type { Peer } from '../core/peer.js';
import { ReplayWindow } from '../core/replay.js';
import * as node from '../crypto/node.js';
import { isStandaloneBinary, standaloneAsset } from '../io/sea.js';

/** A provider plus its RFC 8439 AEAD with an explicit 12-byte nonce (its Aead is built on it). */
export interface VectorProvider {
  readonly provider: CryptoProvider;
  readonly seal: noble.NonceAeadFn<Uint8Array>;
  readonly open: noble.NonceAeadFn<Uint8Array>;
}

/** Both providers, by name. */
export const VECTOR_PROVIDERS = {
  noble: { provider: noble.nobleCrypto, seal: noble.chacha20Poly1305Seal, open: noble.chacha20Poly1305Open },
  node: { provider: node.nodeCrypto, seal: node.chacha20Poly1305Seal, open: node.chacha20Poly1305Open },
} as const satisfies Record<string, VectorProvider>;

/** A provider name accepted by `--provider`. */
export type VectorProviderName = keyof typeof VECTOR_PROVIDERS;

/** The package's vectors/ directory (src/conformance and dist/conformance are both two levels down). */
export const VECTORS_DIR = new URL('../../vectors/', import.meta.url);

/**
 * Parses vectors/`file` as JSON of type T (unchecked shape); the standalone binary carries the
 * files as assets named vectors/`file`. Throws if missing or not JSON.
 */
export function loadVectorFile<T>(file: string): T {
  const text = isStandaloneBinary() ? standaloneAsset(`vectors/${file}`) : readFileSync(new URL(file, VECTORS_DIR), 'utf8');
  if (text === undefined) throw new Error(`vectors/${file} is not in the standalone binary (scripts/build-binary.mjs)`);
  return JSON.parse(text) as T;
}

// ---- file shapes ------------------------------------------------------------------------------

/** vectors/x25519.json */
export interface X25519File {
  scalarmult: Array<{ name: string; scalar: string; u: string; out: string }>;
  publicKey: Array<{ name: string; private: string; public: string }>;
  iterated: { start: string; results: Array<{ iterations: number; out: string; skip?: string }> };
  lowOrder: { scalar: string; u: string[] };
}
/** One AEAD vector (hex fields). */
export interface AeadVector {
  name: string;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string;
  ciphertext: string;
  tag: string;
}
/** vectors/chacha20poly1305.json and xchacha20poly1305.json */
export interface AeadFile {
  valid: AeadVector[];
  invalid: AeadVector[];
}
/** vectors/blake2s.json */
export interface Blake2sFile {
  hash: Array<{ name: string; input: string; out: string }>;
  mac: Array<{ name: string; key: string; input: string; out: string }>;
  keyed256: Array<{ name: string; key: string; input: string; out: string }>;
  selftest: { outlens: number[]; inlens: number[]; out: string };
}
/** vectors/wireguard-kdf.json */
export interface KdfFile {
  vectors: Array<{ name: string; key: string; input: string; outputs: [string, string, string] }>;
}
/** One entry of vectors/cacophony-ikpsk2.json */
export interface CacophonyVector {
  protocol_name: string;
  init_prologue: string;
  init_psks: string[];
  init_static: string;
  init_ephemeral: string;
  init_remote_static: string;
  resp_prologue: string;
  resp_psks: string[];
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}
/** vectors/replay-kernel-selftest.json: integer expressions over W, T_LIM and LIMIT. */
export interface ReplayFile {
  windowSize: number;
  limits: number[];
  groups: Array<{ name: string; steps: Array<{ expr?: string; loop?: { from: string; to: string; step: 1 | -1 }; expect: boolean }> }>;
}
/** The fixed inputs (hex) of vectors/wireguard-handshake-kat.json. */
export interface HandshakeKatInputs {
  initiator_static_private: string;
  responder_static_private: string;
  preshared_key: string;
  initiator_ephemeral_private: string;
  responder_ephemeral_private: string;
  initiator_sender_index: number;
  responder_sender_index: number;
  /** Wall-clock ms since the Unix epoch the initiator stamps (TAI64N, whitened like wireguard-go). */
  initiator_wall_clock_ms: number;
  /** IP packet the initiator sends first (queued during the handshake), then the responder's reply. */
  initiator_first_packet: string;
  responder_first_packet: string;
}
/** vectors/wireguard-handshake-kat.json (inputs and outputs as test/helpers/wireguard-kat.ts writes them). */
export interface HandshakeKatFile {
  inputs: HandshakeKatInputs;
  outputs: {
    initiator_static_public: string;
    responder_static_public: string;
    initiation: string;
    response: string;
    initiator_transport_0: string;
    responder_transport_0: string;
    initiator_keepalive_1: string;
  };
  invalid: Array<{ name: string; to: 'responder' | 'initiator'; message: string; reason: string }>;
}

// ---- helpers ----------------------------------------------------------------------------------

const HEX = /^(?:[0-9a-f]{2})*$/;

/** Lowercase hex to bytes; throws RangeError on odd length or other characters. */
export function hexToBytes(hex: string): Uint8Array {
  if (!HEX.test(hex)) throw new RangeError(`expected lowercase hex of even length, got ${JSON.stringify(hex.slice(0, 40))}`);
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

/** Bytes to lowercase hex. */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Undefined when equal, else a short "expected … got …" (hex prefixes). */
function same(what: string, got: string, want: string): string | undefined {
  return got === want ? undefined : `${what}: expected ${want.slice(0, 32)}…, got ${got.slice(0, 32)}…`;
}

/** The first mismatch of several comparisons, or undefined. */
function first(...results: Array<string | undefined>): string | undefined {
  return results.find((r) => r !== undefined);
}

/**
 * Evaluates an expression of the kernel replay selftest: integers, W, T_LIM, LIMIT, + - * and
 * parentheses. Throws Error on anything else.
 */
export function evaluateSelftestExpr(text: string, vars: Readonly<Record<string, number>>): number {
  const tokens = text.match(/\d+|[A-Z_]+|[-+*()]/g) ?? [];
  if (tokens.join('') !== text.replace(/\s+/g, '')) throw new Error(`bad expression ${text}`);
  let pos = 0;
  const primary = (): number => {
    const t = tokens[pos++];
    if (t === '(') {
      const v = sum();
      if (tokens[pos++] !== ')') throw new Error(`unbalanced ${text}`);
      return v;
    }
    if (t !== undefined && /^\d+$/.test(t)) return Number(t);
    if (t !== undefined && Object.hasOwn(vars, t)) return vars[t]!;
    throw new Error(`unexpected ${t} in ${text}`);
  };
  const product = (): number => {
    let v = primary();
    while (tokens[pos] === '*') {
      pos++;
      v *= primary();
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[pos] === '+' || tokens[pos] === '-') {
      const op = tokens[pos++];
      const r = product();
      v = op === '+' ? v + r : v - r;
    }
    return v;
  };
  const v = sum();
  if (pos !== tokens.length) throw new Error(`trailing tokens in ${text}`);
  return v;
}

/**
 * Runs one group of the kernel replay selftest on a fresh window with `limit`; undefined when every
 * step gives its expected answer, else the first wrong step.
 */
export function checkReplayGroup(file: ReplayFile, group: ReplayFile['groups'][number], limit: number, window = new ReplayWindow()): string | undefined {
  const vars = { W: file.windowSize, T_LIM: file.windowSize + 1, LIMIT: limit };
  let n = 0;
  for (const step of group.steps) {
    const counters: number[] = [];
    if (step.loop !== undefined) {
      const from = evaluateSelftestExpr(step.loop.from, vars);
      const to = evaluateSelftestExpr(step.loop.to, vars);
      for (let i = from; step.loop.step > 0 ? i <= to : i >= to; i += step.loop.step) counters.push(i);
    } else {
      counters.push(evaluateSelftestExpr(step.expr ?? '', vars));
    }
    for (const c of counters) {
      n++;
      if (window.accept(c, limit) !== step.expect) return `step ${n}: accept(${c}) should be ${step.expect}`;
    }
  }
  return undefined;
}

/**
 * The Noise_IKpsk2 steps of src/core/noise.ts on a cacophony entry: both handshake messages, the
 * handshake hash and the transport messages byte for byte, and a wrong PSK must fail.
 */
export function checkCacophony(crypto: CryptoProvider, v: CacophonyVector): string | undefined {
  const [m1, m2, ...transport] = v.messages;
  if (m1 === undefined || m2 === undefined) return 'fewer than two messages';
  const name = new TextEncoder().encode(v.protocol_name);
  const iStatic = hexToBytes(v.init_static);
  const iStaticPub = crypto.x25519PublicKey(iStatic);
  const rStatic = hexToBytes(v.resp_static);
  const rStaticPub = crypto.x25519PublicKey(rStatic);
  const i = new NoiseState();
  i.copyFrom(initialState(crypto, name, hexToBytes(v.init_prologue)));
  const r = new NoiseState();
  r.copyFrom(initialState(crypto, name, hexToBytes(v.resp_prologue)));

  const payload1 = hexToBytes(m1.payload);
  const msg1 = new Uint8Array(initiationBodyLength(payload1.length));
  const remote = hexToBytes(v.init_remote_static);
  const iEphemeral = hexToBytes(v.init_ephemeral);
  if (!createInitiation(crypto, i, { localStaticPublic: iStaticPub, remoteStatic: remote, staticStatic: crypto.x25519(iStatic, remote), ephemeralPrivate: iEphemeral }, payload1, msg1)) {
    return 'createInitiation failed';
  }
  const seen = consumeInitiationStatic(crypto, r, rStatic, rStaticPub, msg1);
  if (seen === undefined) return 'consumeInitiationStatic failed';
  const got1 = new Uint8Array(payload1.length);
  if (!consumeInitiationPayload(crypto, r, crypto.x25519(rStatic, seen), msg1, got1)) return 'consumeInitiationPayload failed';

  const payload2 = hexToBytes(m2.payload);
  const msg2 = new Uint8Array(responseBodyLength(payload2.length));
  const psk = hexToBytes(v.resp_psks[0] ?? '');
  if (!createResponse(crypto, r, { remoteEphemeral: msg1.subarray(0, 32), remoteStatic: seen, ephemeralPrivate: hexToBytes(v.resp_ephemeral), presharedKey: psk }, payload2, msg2)) {
    return 'createResponse failed';
  }
  const iBefore = new NoiseState();
  iBefore.copyFrom(i);
  const got2 = new Uint8Array(payload2.length);
  const respond = { ephemeralPrivate: iEphemeral, localStaticPrivate: iStatic, presharedKey: hexToBytes(v.init_psks[0] ?? '') };
  if (!consumeResponse(crypto, i, respond, msg2, got2)) return 'consumeResponse failed';
  const wrong = first(
    same('message 1', bytesToHex(msg1), m1.ciphertext),
    same('payload 1', bytesToHex(got1), m1.payload),
    same('static seen by responder', bytesToHex(seen), bytesToHex(iStaticPub)),
    same('message 2', bytesToHex(msg2), m2.ciphertext),
    same('payload 2', bytesToHex(got2), m2.payload),
    same('initiator handshake hash', bytesToHex(i.hash), v.handshake_hash),
    same('responder handshake hash', bytesToHex(r.hash), v.handshake_hash),
  );
  if (wrong !== undefined) return wrong;
  if (consumeResponse(crypto, iBefore, { ...respond, presharedKey: new Uint8Array(32).fill(7) }, msg2, new Uint8Array(payload2.length))) {
    return 'message 2 accepted with a wrong PSK';
  }
  const [iSend, iRecv] = split(crypto, i);
  const keys = [crypto.aead(iSend), crypto.aead(iRecv)];
  for (const [n, m] of transport.entries()) {
    const aead = keys[n % 2]!;
    const payload = hexToBytes(m.payload);
    const out = new Uint8Array(payload.length + 16);
    aead.seal(Math.floor(n / 2), payload, undefined, out);
    const bad = same(`transport message ${n}`, bytesToHex(out), m.ciphertext);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

/** fillRandom answering each request size from a script: 32 bytes ephemeral, 4 index, else zero. */
function scripted(ephemeral: string, index: number): (buf: Uint8Array) => void {
  return (buf) => {
    if (buf.length === 32) buf.set(hexToBytes(ephemeral));
    else if (buf.length === 4) buf.set([index & 0xff, (index >>> 8) & 0xff, (index >>> 16) & 0xff, index >>> 24]);
    else buf.fill(0);
  };
}

/** Records what an Engine asks for. */
class Recorder implements ActionSink<Peer> {
  readonly net: string[] = [];
  readonly tunOut: string[] = [];
  readonly drops: DropReason[] = [];
  network(_p: Peer | undefined, _e: Endpoint, d: Uint8Array): void {
    this.net.push(bytesToHex(d));
  }
  tun(_p: Peer, d: Uint8Array): void {
    this.tunOut.push(bytesToHex(d));
  }
  drop(r: DropReason): void {
    this.drops.push(r);
  }
}

/**
 * Two Engines whose randomness is scripted to the known answer's inputs must emit exactly its
 * datagrams, deliver both packets, then drop each invalid variant with its reason.
 */
export function checkHandshakeKat(provider: CryptoProvider, kat: HandshakeKatFile): string | undefined {
  const { inputs: inp, outputs: out } = kat;
  const now = 5_000;
  const ep = { i: { address: '192.0.2.10', port: 51820 }, r: { address: '192.0.2.20', port: 51820 } };
  const mk = (priv: string, eph: string, idx: number): Engine => {
    const e = new Engine({ crypto: provider, fillRandom: scripted(eph, idx), wallClockMs: () => inp.initiator_wall_clock_ms });
    e.setPrivateKey(hexToBytes(priv), now);
    return e;
  };
  const ie = mk(inp.initiator_static_private, inp.initiator_ephemeral_private, inp.initiator_sender_index);
  const re = mk(inp.responder_static_private, inp.responder_ephemeral_private, inp.responder_sender_index);
  const psk = hexToBytes(inp.preshared_key);
  const ip = ie.addPeer(hexToBytes(out.responder_static_public), { presharedKey: psk, endpoint: ep.r });
  const rp = re.addPeer(hexToBytes(out.initiator_static_public), { presharedKey: psk });
  ie.allowedIps.insert(Uint8Array.of(10, 0, 0, 2), 32, ip);
  re.allowedIps.insert(Uint8Array.of(10, 0, 0, 1), 32, rp);
  const is = new Recorder();
  const rs = new Recorder();

  ie.encapsulate(hexToBytes(inp.initiator_first_packet), now, is);
  let bad = same('initiation', is.net.join(','), out.initiation);
  if (bad !== undefined) return bad;
  re.decapsulate(hexToBytes(out.initiation), ep.i, now, rs);
  bad = same('response', rs.net.join(','), out.response);
  if (bad !== undefined) return bad;
  ie.decapsulate(hexToBytes(out.response), ep.r, now, is);
  bad = same('initiator transport 0', is.net[1] ?? '', out.initiator_transport_0);
  if (bad !== undefined) return bad;
  re.decapsulate(hexToBytes(out.initiator_transport_0), ep.i, now, rs);
  bad = same('responder delivers', rs.tunOut.join(','), inp.initiator_first_packet);
  if (bad !== undefined) return bad;
  re.encapsulate(hexToBytes(inp.responder_first_packet), now, rs);
  bad = same('responder transport 0', rs.net[1] ?? '', out.responder_transport_0);
  if (bad !== undefined) return bad;
  ie.decapsulate(hexToBytes(out.responder_transport_0), ep.r, now, is);
  bad = same('initiator delivers', is.tunOut.join(','), inp.responder_first_packet);
  if (bad !== undefined) return bad;
  ie.sendTo(ip, new Uint8Array(0), now, is);
  bad = same('initiator keepalive 1', is.net[2] ?? '', out.initiator_keepalive_1);
  if (bad !== undefined) return bad;
  if (is.drops.length + rs.drops.length > 0) return `unexpected drops: ${[...is.drops, ...rs.drops].join(', ')}`;

  for (const v of kat.invalid) {
    const [engine, rec, from] = v.to === 'responder' ? [re, rs, ep.i] : [ie, is, ep.r];
    const before = rec.drops.length;
    engine.decapsulate(hexToBytes(v.message), from, now + 1_000, rec);
    const drops = rec.drops.slice(before).join(',');
    if (drops !== v.reason) return `${v.name}: expected drop ${v.reason}, got ${drops || 'none'}`;
  }
  if (rs.tunOut.length !== 1 || is.tunOut.length !== 1) return 'an invalid message was delivered';
  return undefined;
}

// ---- the check list ---------------------------------------------------------------------------

/** One known-answer check: undefined from run() means pass, a string is the mismatch. */
export interface VectorCheck {
  /** The vectors/ file. */
  readonly file: string;
  /** Provider name, or 'core' for checks that do not depend on one. */
  readonly provider: string;
  /** The vector's name within its file. */
  readonly name: string;
  run(): string | undefined;
}

function aeadChecks(file: string, vp: VectorProvider, v: AeadFile, x: boolean): VectorCheck[] {
  const { provider, seal, open } = vp;
  const checks: VectorCheck[] = [];
  const p = provider.name;
  for (const t of v.valid) {
    checks.push({
      file,
      provider: p,
      name: t.name,
      run: () => {
        const [key, nonce, pt, aad] = [hexToBytes(t.key), hexToBytes(t.nonce), hexToBytes(t.plaintext), hexToBytes(t.aad)];
        if (x) {
          const sealed = provider.xseal(key, nonce, pt, aad);
          const opened = provider.xopen(key, nonce, sealed, aad);
          return first(same('xseal', bytesToHex(sealed), t.ciphertext + t.tag), same('xopen', opened ? bytesToHex(opened) : 'undefined', t.plaintext));
        }
        const dst = new Uint8Array(pt.length + 16);
        if (seal(key, nonce, pt, aad, dst) !== dst.length) return 'seal returned a wrong length';
        const back = new Uint8Array(pt.length);
        if (open(key, nonce, dst, aad, back) !== pt.length) return 'open rejected the sealed message';
        return first(same('seal', bytesToHex(dst), t.ciphertext + t.tag), same('open', bytesToHex(back), t.plaintext));
      },
    });
  }
  for (const t of v.invalid) {
    checks.push({
      file,
      provider: p,
      name: `rejects ${t.name}`,
      run: () => {
        const ct = hexToBytes(t.ciphertext + t.tag);
        const ok = x
          ? provider.xopen(hexToBytes(t.key), hexToBytes(t.nonce), ct, hexToBytes(t.aad)) !== undefined
          : open(hexToBytes(t.key), hexToBytes(t.nonce), ct, hexToBytes(t.aad), new Uint8Array(ct.length)) !== -1;
        return ok ? 'accepted an invalid message' : undefined;
      },
    });
  }
  if (!x && v.valid[0] !== undefined) {
    const t = v.valid[0];
    checks.push({
      file,
      provider: p,
      name: 'Aead with the WireGuard nonce equals the raw AEAD',
      run: () => {
        const key = hexToBytes(t.key);
        const aead = provider.aead(key);
        const pt = hexToBytes(t.plaintext);
        const aad = hexToBytes(t.aad);
        for (const counter of [0, 1, 255, 0xffff_ffff, 2 ** 53 - 1]) {
          const nonce = new Uint8Array(12);
          new DataView(nonce.buffer).setBigUint64(4, BigInt(counter), true);
          const want = new Uint8Array(pt.length + 16);
          seal(key, nonce, pt, aad, want);
          const got = new Uint8Array(pt.length + 16);
          aead.seal(counter, pt, aad, got);
          const bad = same(`counter ${counter}`, bytesToHex(got), bytesToHex(want));
          if (bad !== undefined) return bad;
        }
        return undefined;
      },
    });
  }
  return checks;
}

function providerChecks(vp: VectorProvider): VectorCheck[] {
  const crypto = vp.provider;
  const p = crypto.name;
  const checks: VectorCheck[] = [];
  const add = (file: string, name: string, run: () => string | undefined): void => void checks.push({ file, provider: p, name, run });

  const x = loadVectorFile<X25519File>('x25519.json');
  for (const t of x.scalarmult) add('x25519.json', t.name, () => same('x25519', bytesToHex(crypto.x25519(hexToBytes(t.scalar), hexToBytes(t.u))), t.out));
  for (const t of x.publicKey) add('x25519.json', `public key: ${t.name}`, () => same('public key', bytesToHex(crypto.x25519PublicKey(hexToBytes(t.private))), t.public));
  add('x25519.json', 'iterated (entries without skip)', () => {
    let k = hexToBytes(x.iterated.start);
    let u = hexToBytes(x.iterated.start);
    let done = 0;
    for (const r of x.iterated.results.filter((e) => e.skip === undefined)) {
      for (; done < r.iterations; done++) [k, u] = [crypto.x25519(k, u), k];
      const bad = same(`${r.iterations} iterations`, bytesToHex(k), r.out);
      if (bad !== undefined) return bad;
    }
    return undefined;
  });
  for (const u of x.lowOrder.u) {
    add('x25519.json', `low-order ${u.slice(0, 16)}… gives zero`, () => same('shared secret', bytesToHex(crypto.x25519(hexToBytes(x.lowOrder.scalar), hexToBytes(u))), '00'.repeat(32)));
  }

  checks.push(...aeadChecks('chacha20poly1305.json', vp, loadVectorFile<AeadFile>('chacha20poly1305.json'), false));
  checks.push(...aeadChecks('xchacha20poly1305.json', vp, loadVectorFile<AeadFile>('xchacha20poly1305.json'), true));

  const b = loadVectorFile<Blake2sFile>('blake2s.json');
  for (const t of b.hash) {
    add('blake2s.json', `hash ${t.name}`, () => {
      const input = hexToBytes(t.input);
      const cut = input.length >> 1;
      return first(
        same('hash', bytesToHex(crypto.hash(input)), t.out),
        same('hash of parts', bytesToHex(crypto.hash(input.subarray(0, cut), new Uint8Array(0), input.subarray(cut))), t.out),
      );
    });
  }
  for (const t of b.mac) add('blake2s.json', `mac ${t.name}`, () => same('mac', bytesToHex(crypto.mac(hexToBytes(t.key), hexToBytes(t.input))), t.out));

  for (const t of loadVectorFile<KdfFile>('wireguard-kdf.json').vectors) {
    add('wireguard-kdf.json', t.name, () => {
      const key = hexToBytes(t.key);
      const input = hexToBytes(t.input);
      return first(
        same('kdf3', kdf3(crypto, key, input).map(bytesToHex).join(','), t.outputs.join(',')),
        same('kdf2', kdf2(crypto, key, input).map(bytesToHex).join(','), t.outputs.slice(0, 2).join(',')),
        same('kdf1', bytesToHex(kdf1(crypto, key, input)), t.outputs[0]),
      );
    });
  }

  for (const v of loadVectorFile<{ vectors: CacophonyVector[] }>('cacophony-ikpsk2.json').vectors) {
    add('cacophony-ikpsk2.json', v.protocol_name, () => checkCacophony(crypto, v));
  }
  const kat = loadVectorFile<HandshakeKatFile>('wireguard-handshake-kat.json');
  add('wireguard-handshake-kat.json', `two engines reproduce the exchange and drop ${kat.invalid.length} invalid variants`, () => checkHandshakeKat(crypto, kat));
  return checks;
}

/** Checks that use no provider: BLAKE2s keyed-256 and self-test on noble's blake2s, the replay window. */
function coreChecks(): VectorCheck[] {
  const checks: VectorCheck[] = [];
  const b = loadVectorFile<Blake2sFile>('blake2s.json');
  for (const t of b.keyed256) {
    checks.push({ file: 'blake2s.json', provider: 'core', name: `keyed 32-byte ${t.name}`, run: () => same('blake2s', bytesToHex(blake2s(hexToBytes(t.input), { key: hexToBytes(t.key) })), t.out) });
  }
  checks.push({ file: 'blake2s.json', provider: 'core', name: 'RFC 7693 Appendix E self-test', run: () => same('grand hash', blake2sSelftest(b.selftest), b.selftest.out) });
  const r = loadVectorFile<ReplayFile>('replay-kernel-selftest.json');
  for (const limit of r.limits) {
    for (const group of r.groups) {
      checks.push({ file: 'replay-kernel-selftest.json', provider: 'core', name: `${group.name} (LIMIT=${limit})`, run: () => checkReplayGroup(r, group, limit) });
    }
  }
  return checks;
}

/** RFC 7693 Appendix E blake2s_selftest() on noble's blake2s: the grand hash over the listed lengths, as hex. */
export function blake2sSelftest(s: Blake2sFile['selftest']): string {
  const seq = (len: number, seed: number): Uint8Array => {
    const out = new Uint8Array(len);
    let a = Math.imul(0xdead4bad, seed) >>> 0;
    let b = 1;
    for (let i = 0; i < len; i++) {
      const t = (a + b) >>> 0;
      a = b;
      b = t;
      out[i] = (t >>> 24) & 0xff;
    }
    return out;
  };
  const grand = blake2s.create();
  for (const outlen of s.outlens) {
    for (const inlen of s.inlens) {
      const input = seq(inlen, inlen);
      grand.update(blake2s(input, { dkLen: outlen }));
      grand.update(blake2s(input, { dkLen: outlen, key: seq(outlen, outlen) }));
    }
  }
  return bytesToHex(grand.digest());
}

/** Every check for the given providers (in order), then the provider-independent ones. */
export function vectorChecks(providers: readonly VectorProvider[]): VectorCheck[] {
  return [...providers.flatMap(providerChecks), ...coreChecks()];
}

/** The outcome of one check; a check that throws fails with the error message. */
export interface VectorResult {
  readonly file: string;
  readonly provider: string;
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly timeMs: number;
}

/** Runs checks in order; never throws for a failing or throwing check. */
export function runVectorChecks(checks: readonly VectorCheck[], now: () => number = performance.now.bind(performance)): VectorResult[] {
  return checks.map((c) => {
    const start = now();
    let detail: string | undefined;
    try {
      detail = c.run();
    } catch (err) {
      detail = `threw: ${(err as Error).message}`;
    }
    return { file: c.file, provider: c.provider, name: c.name, ok: detail === undefined, detail: detail ?? '', timeMs: now() - start };
  });
}
