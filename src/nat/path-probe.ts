// Path probes (docs/nat.md "Path probing"): a small authenticated ping/pong between two mesh nodes,
// sent from their WireGuard ports to each endpoint candidate, in the spirit of Tailscale's disco
// pings. Pure (no I/O; time and randomness are arguments). Framing:
//
//   magic 0xF0 'p' 'l' 'x' (4) | type 1=ping 2=pong (1) | sender id (8) | nonce (24) | sealed body
//
// A first byte of 0xF0 is neither WireGuard (type 1..4 then three zero bytes) nor STUN (first two
// bits 00, RFC 8489 section 6), so the device demultiplexes on that one byte. The body is sealed
// with XChaCha20-Poly1305 (the header as associated data) under a per-pair, per-direction key:
//   KDF2(HASH("plexd path probe v1"), X25519(our static private, peer static public))
// gives two keys, the first for messages from the lexicographically lower public key. Both nodes
// derive it from their WireGuard keys alone; the control plane never sees it. The sender id is the
// first 8 bytes of HASH("plexd probe id" || send key): it names the pair and direction without
// showing a public key. Bodies:
//   ping: tx id (12) | counter (8, big-endian)
//   pong: tx id (12) | counter (8) | family 4/6 (1) | port (2) | address (16, IPv4 in the first 4)
// where the pong's address is the ping's source as the answering node saw it (a reflexive hint).
// The counter rises with every message a node seals (from wall-clock ms x 1024, so it also rises
// across restarts); the receiver keeps a WireGuard replay window per peer (src/core/replay.ts).

import { copyBytes } from '../core/bytes.js';
import type { CryptoProvider } from '../core/crypto.js';
import { formatIp, parseIp } from '../core/ip.js';
import { kdf2 } from '../core/kdf.js';
import { ReplayWindow } from '../core/replay.js';
import type { Endpoint } from '../io/bind.js';
import { PROBE_FIRST_BYTE } from '../io/datagram-kinds.js';

/** Re-exported for the codec's users: the first byte every probe starts with. */
export { PROBE_FIRST_BYTE };

const MAGIC = Uint8Array.of(PROBE_FIRST_BYTE, 0x70, 0x6c, 0x78);
/** Probe transaction id length (bytes). */
export const PROBE_TX_ID_LENGTH = 12;
const ID_LENGTH = 8;
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
const HEADER_LENGTH = MAGIC.length + 1 + ID_LENGTH + NONCE_LENGTH;
const PING_BODY = PROBE_TX_ID_LENGTH + 8;
const PONG_BODY = PING_BODY + 1 + 2 + 16;
/** Size of a ping datagram (bytes). */
export const PING_SIZE = HEADER_LENGTH + PING_BODY + TAG_LENGTH;
/** Size of a pong datagram (bytes). */
export const PONG_SIZE = HEADER_LENGTH + PONG_BODY + TAG_LENGTH;
const TYPE_PING = 1;
const TYPE_PONG = 2;
const enc = new TextEncoder();
const LABEL_KEY = enc.encode('plexd path probe v1');
const LABEL_ID = enc.encode('plexd probe id');
/** Counters from one wall-clock ms apart leave room for this many messages per ms. */
const COUNTER_PER_MS = 1024;

/** Why a datagram was not accepted as a probe (counted per reason in ProbeCodec.drops). */
export const PROBE_DROP_REASONS = ['bad-magic', 'bad-type', 'bad-length', 'unknown-sender', 'auth', 'replay', 'bad-address'] as const;
/** One of PROBE_DROP_REASONS. */
export type ProbeDropReason = (typeof PROBE_DROP_REASONS)[number];

/** An opened probe: who sent it (the public key given to addPeer), its tx id and, for a pong, the observed address. */
export type ProbeOpenResult =
  | { readonly kind: 'ping'; readonly peer: Uint8Array; readonly txId: Uint8Array }
  | { readonly kind: 'pong'; readonly peer: Uint8Array; readonly txId: Uint8Array; readonly observed: Endpoint }
  | { readonly kind: 'drop'; readonly reason: ProbeDropReason };

interface PairKeys {
  readonly peer: Uint8Array;
  readonly sendKey: Uint8Array;
  readonly sendId: Uint8Array;
  readonly recvKey: Uint8Array;
  readonly recvId: string;
  readonly replay: ReplayWindow;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Lowercase hex of `b` (map keys for public keys, sender ids and tx ids). */
export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * Seals and opens path probes for one node (its static private key) and its peers. Not
 * thread-safe. Keys are derived once per peer in addPeer and wiped by removePeer/wipe.
 */
export class ProbeCodec {
  readonly #crypto: CryptoProvider;
  readonly #privateKey: Uint8Array;
  readonly #publicKey: Uint8Array;
  readonly #fillRandom: (buf: Uint8Array) => void;
  readonly #byKey = new Map<string, PairKeys>();
  readonly #byRecvId = new Map<string, PairKeys>();
  #counter = 0;
  /** Datagrams refused, per reason. */
  readonly drops: Record<ProbeDropReason, number> = Object.fromEntries(PROBE_DROP_REASONS.map((r) => [r, 0])) as Record<ProbeDropReason, number>;

  /**
   * `privateKey`: our 32-byte WireGuard static private key (copied). `fillRandom` fills nonces.
   * Throws TypeError for a key of another size.
   */
  constructor(crypto: CryptoProvider, privateKey: Uint8Array, fillRandom: (buf: Uint8Array) => void) {
    if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) throw new TypeError(`expected a 32-byte private key, got ${privateKey?.length ?? typeof privateKey}`);
    this.#crypto = crypto;
    this.#privateKey = copyBytes(privateKey);
    this.#publicKey = crypto.x25519PublicKey(this.#privateKey);
    this.#fillRandom = fillRandom;
  }

  /** Our static public key. */
  get publicKey(): Uint8Array {
    return this.#publicKey;
  }

  /** Number of peers with keys. */
  get size(): number {
    return this.#byKey.size;
  }

  /**
   * Derives the probe keys shared with `peer` (32-byte static public key). Returns false (and
   * adds nothing) for our own key or a low-order point (an all-zero X25519 result); true when
   * added or already present.
   */
  addPeer(peer: Uint8Array): boolean {
    if (!(peer instanceof Uint8Array) || peer.length !== 32) throw new TypeError(`expected a 32-byte public key, got ${peer?.length ?? typeof peer}`);
    const k = hex(peer);
    if (this.#byKey.has(k)) return true;
    const order = compareBytes(this.#publicKey, peer);
    if (order === 0) return false;
    const dh = this.#crypto.x25519(this.#privateKey, peer);
    if (dh.every((b) => b === 0)) return false;
    const [fromLower, fromHigher] = kdf2(this.#crypto, this.#crypto.hash(LABEL_KEY), dh);
    dh.fill(0);
    const sendKey = order < 0 ? fromLower : fromHigher;
    const recvKey = order < 0 ? fromHigher : fromLower;
    const keys: PairKeys = {
      peer: copyBytes(peer),
      sendKey,
      sendId: this.#crypto.hash(LABEL_ID, sendKey).subarray(0, ID_LENGTH),
      recvKey,
      recvId: hex(this.#crypto.hash(LABEL_ID, recvKey).subarray(0, ID_LENGTH)),
      replay: new ReplayWindow(),
    };
    this.#byKey.set(k, keys);
    this.#byRecvId.set(keys.recvId, keys);
    return true;
  }

  /** Forgets a peer's keys (wiped). Unknown keys are ignored. */
  removePeer(peer: Uint8Array): void {
    const k = hex(peer);
    const keys = this.#byKey.get(k);
    if (keys === undefined) return;
    this.#byKey.delete(k);
    this.#byRecvId.delete(keys.recvId);
    keys.sendKey.fill(0);
    keys.recvKey.fill(0);
  }

  /** True when `peer` has keys. */
  hasPeer(peer: Uint8Array): boolean {
    return this.#byKey.has(hex(peer));
  }

  /**
   * A ping to `peer` with `txId` (12 bytes). `wallMs`: wall-clock ms, the counter's floor.
   * Throws RangeError for a peer without keys (addPeer first) or a tx id of another size.
   */
  ping(peer: Uint8Array, txId: Uint8Array, wallMs: number): Uint8Array {
    return this.#seal(TYPE_PING, peer, txId, wallMs, undefined);
  }

  /** A pong to `peer` echoing `txId` and the address its ping came from. Throws like ping. */
  pong(peer: Uint8Array, txId: Uint8Array, observed: Endpoint, wallMs: number): Uint8Array {
    return this.#seal(TYPE_PONG, peer, txId, wallMs, observed);
  }

  #seal(type: number, peer: Uint8Array, txId: Uint8Array, wallMs: number, observed: Endpoint | undefined): Uint8Array {
    const keys = this.#byKey.get(hex(peer));
    if (keys === undefined) throw new RangeError('expected a peer added with addPeer');
    if (txId.length !== PROBE_TX_ID_LENGTH) throw new RangeError(`expected a ${PROBE_TX_ID_LENGTH}-byte tx id, got ${txId.length}`);
    const floor = Math.max(0, Math.floor(wallMs)) * COUNTER_PER_MS;
    this.#counter = floor > this.#counter ? floor : this.#counter + 1;
    const header = new Uint8Array(HEADER_LENGTH);
    header.set(MAGIC, 0);
    header[4] = type;
    header.set(keys.sendId, 5);
    const nonce = header.subarray(5 + ID_LENGTH);
    this.#fillRandom(nonce);
    const body = new Uint8Array(observed === undefined ? PING_BODY : PONG_BODY);
    body.set(txId, 0);
    new DataView(body.buffer).setBigUint64(PROBE_TX_ID_LENGTH, BigInt(this.#counter));
    if (observed !== undefined) {
      const ip = parseIp(observed.address);
      if (ip === undefined) throw new RangeError(`expected an IP address, got ${JSON.stringify(observed.address)}`);
      body[PING_BODY] = ip.length === 4 ? 4 : 6;
      body[PING_BODY + 1] = observed.port >>> 8;
      body[PING_BODY + 2] = observed.port & 0xff;
      body.set(ip, PING_BODY + 3);
    }
    const sealed = this.#crypto.xseal(keys.sendKey, nonce, body, header);
    const out = new Uint8Array(HEADER_LENGTH + sealed.length);
    out.set(header, 0);
    out.set(sealed, HEADER_LENGTH);
    return out;
  }

  /**
   * Checks and opens a received datagram. Anything not a genuine, fresh probe from a peer with
   * keys is a drop with a reason (counted in `drops`); it never throws on hostile input.
   */
  open(data: Uint8Array): ProbeOpenResult {
    const r = this.#open(data);
    if (r.kind === 'drop') this.drops[r.reason]++;
    return r;
  }

  #open(data: Uint8Array): ProbeOpenResult {
    if (data.length < MAGIC.length || data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2] || data[3] !== MAGIC[3]) return { kind: 'drop', reason: 'bad-magic' };
    if (data.length < HEADER_LENGTH) return { kind: 'drop', reason: 'bad-length' };
    const type = data[4];
    if (type !== TYPE_PING && type !== TYPE_PONG) return { kind: 'drop', reason: 'bad-type' };
    if (data.length !== (type === TYPE_PING ? PING_SIZE : PONG_SIZE)) return { kind: 'drop', reason: 'bad-length' };
    const keys = this.#byRecvId.get(hex(data.subarray(5, 5 + ID_LENGTH)));
    if (keys === undefined) return { kind: 'drop', reason: 'unknown-sender' };
    const body = this.#crypto.xopen(keys.recvKey, data.subarray(5 + ID_LENGTH, HEADER_LENGTH), data.subarray(HEADER_LENGTH), data.subarray(0, HEADER_LENGTH));
    if (body === undefined) return { kind: 'drop', reason: 'auth' };
    const txId = copyBytes(body.subarray(0, PROBE_TX_ID_LENGTH));
    const counter = new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(PROBE_TX_ID_LENGTH);
    let observed: Endpoint | undefined;
    if (type === TYPE_PONG) {
      const family = body[PING_BODY];
      const port = (body[PING_BODY + 1]! << 8) | body[PING_BODY + 2]!;
      if ((family !== 4 && family !== 6) || port === 0) return { kind: 'drop', reason: 'bad-address' };
      const ip = body.subarray(PING_BODY + 3, PING_BODY + 3 + (family === 4 ? 4 : 16));
      if (family === 4 && body.subarray(PING_BODY + 7).some((b) => b !== 0)) return { kind: 'drop', reason: 'bad-address' };
      observed = { address: formatIp(ip), port };
    }
    // After authentication only, so a stranger cannot move the window.
    if (counter > BigInt(Number.MAX_SAFE_INTEGER) || !keys.replay.accept(Number(counter), Number.MAX_SAFE_INTEGER + 1)) return { kind: 'drop', reason: 'replay' };
    return observed === undefined ? { kind: 'ping', peer: keys.peer, txId } : { kind: 'pong', peer: keys.peer, txId, observed };
  }

  /** Wipes every key; the codec is unusable afterwards. */
  wipe(): void {
    for (const keys of this.#byKey.values()) (keys.sendKey.fill(0), keys.recvKey.fill(0));
    this.#byKey.clear();
    this.#byRecvId.clear();
    this.#privateKey.fill(0);
  }
}
