// The peer changes of a DeviceTransaction, packed: a pending change keeps fixed-size byte records
// in 64 KiB blocks instead of an object (and a Uint8Array) per peer and allowed IP, so what it
// holds is about the size of a UAPI request's text or less (a PeerChange object per peer cost ~4x,
// an AllowedIpChange per allowed IP ~10x). The objects are made on the fly when iterated. Both the
// UAPI parser and Device.configure write into one; every writer method checks its value, so a
// PeerChangeList is valid by construction and Device.apply does not check it again.

import { formatIp } from '../core/ip.js';
import { isZero } from '../core/noise.js';
import type { AllowedIpChange, PeerChange, PeerEndpoint } from './contract.js';

/** An allowed-IP change as a PeerChangeList hands it out: every field present. */
export interface PackedAllowedIpChange extends AllowedIpChange {
  readonly remove: boolean;
}

/** A peer change as a PeerChangeList hands it out: every field present (undefined = unchanged). */
export interface PackedPeerChange extends PeerChange {
  readonly remove: boolean;
  readonly updateOnly: boolean;
  readonly presharedKey: Uint8Array | null | undefined;
  readonly endpoint: PeerEndpoint | undefined;
  readonly persistentKeepaliveInterval: number | undefined;
  readonly replaceAllowedIps: boolean;
  readonly allowedIps: AllowedIpList;
}

const BLOCK_BYTES = 64 * 1024;

/** Fixed-size records in 64 KiB blocks: no reallocation while growing, slack below one block. */
class RecordStore {
  readonly #size: number;
  readonly #perBlock: number;
  readonly #blocks: Uint8Array[] = [];
  #count = 0;

  constructor(size: number) {
    this.#size = size;
    this.#perBlock = Math.floor(BLOCK_BYTES / size);
  }

  get length(): number {
    return this.#count;
  }

  /** Appends a zeroed record and returns its index. */
  push(): number {
    const i = this.#count;
    const b = Math.floor(i / this.#perBlock);
    if (b === this.#blocks.length) this.#blocks.push(new Uint8Array(this.#perBlock * this.#size));
    const off = this.offset(i);
    this.#blocks[b]!.fill(0, off, off + this.#size);
    this.#count++;
    return i;
  }

  /** The block holding record `i` (index < length). */
  block(i: number): Uint8Array {
    return this.#blocks[Math.floor(i / this.#perBlock)]!;
  }

  /** Record `i`'s byte offset in its block. */
  offset(i: number): number {
    return (i % this.#perBlock) * this.#size;
  }

  /** Zeroes every block (the records hold keys). */
  wipe(): void {
    for (const b of this.#blocks) b.fill(0);
  }

  /** Keeps the first `n` records and frees the blocks no longer needed. */
  truncate(n: number): void {
    this.#count = n;
    this.#blocks.length = Math.ceil(n / this.#perBlock);
  }
}

// A peer record: public key, pre-shared key, flags, keepalive, endpoint, its allowed-IP range.
const PEER_RECORD = 96;
const P_PSK = 32;
const P_FLAGS = 64;
const P_FAMILY = 65;
const P_KEEPALIVE = 66;
const P_PORT = 68;
const P_IP = 70;
const P_AIP_START = 88;
const P_AIP_END = 92;

/** Bits of a peer record's flags byte. */
export const PeerFlag = {
  remove: 1,
  updateOnly: 2,
  presharedKey: 4, // a preshared_key line was given (an all-zero key means "none")
  replaceAllowedIps: 8,
  keepalive: 16,
  endpoint: 32,
} as const;

// An allowed-IP record: flags (bit 0 remove, bit 1 IPv6), prefix length, 16 address bytes.
const AIP_RECORD = 18;
const AIP_REMOVE = 1;
const AIP_V6 = 2;

function readU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

function checkRange(what: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`expected ${what} in 0..${max}, got ${String(n)}`);
}

function checkAddress(ip: Uint8Array): void {
  if (!(ip instanceof Uint8Array) || (ip.length !== 4 && ip.length !== 16)) throw new RangeError('expected a 4- or 16-byte address');
}

/** One peer section's allowed_ip lines, in order: iterable (fresh AllowedIpChange each) with a length. */
export class AllowedIpList implements Iterable<PackedAllowedIpChange> {
  readonly #store: RecordStore;
  readonly #start: number;
  readonly #end: number;

  /** @internal Made by PeerChangeList. */
  constructor(store: RecordStore, start: number, end: number) {
    this.#store = store;
    this.#start = start;
    this.#end = end;
  }

  /** Number of allowed_ip lines kept. */
  get length(): number {
    return this.#end - this.#start;
  }

  *[Symbol.iterator](): Iterator<PackedAllowedIpChange> {
    for (let i = this.#start; i < this.#end; i++) {
      const b = this.#store.block(i);
      const at = this.#store.offset(i);
      const flags = b[at]!;
      const ip = b.slice(at + 2, at + 2 + ((flags & AIP_V6) !== 0 ? 16 : 4));
      yield { ip, cidr: b[at + 1]!, remove: (flags & AIP_REMOVE) !== 0 };
    }
  }
}

/**
 * The peer changes of a transaction in order: iterable (a fresh PeerChange each time, keys
 * copied) with a length and at(i). Written through the methods marked "Writer", which act on the
 * last section and throw RangeError for a value out of range (before writing anything).
 */
export class PeerChangeList implements Iterable<PackedPeerChange> {
  readonly #peers = new RecordStore(PEER_RECORD);
  readonly #allowedIps = new RecordStore(AIP_RECORD);
  readonly #zones = new Map<number, string>();

  /** Number of peer sections. */
  get length(): number {
    return this.#peers.length;
  }

  /** Zeroes the records (public and pre-shared keys) once the change was applied. */
  wipe(): void {
    this.#peers.wipe();
  }

  /** Section `i` (negative counts from the end), or undefined when out of range. */
  at(i: number): PackedPeerChange | undefined {
    const n = this.#peers.length;
    const k = i < 0 ? n + i : i;
    return Number.isInteger(k) && k >= 0 && k < n ? this.#op(k) : undefined;
  }

  *[Symbol.iterator](): Iterator<PackedPeerChange> {
    for (let i = 0; i < this.#peers.length; i++) yield this.#op(i);
  }

  #op(i: number): PackedPeerChange {
    const b = this.#peers.block(i);
    const at = this.#peers.offset(i);
    const flags = b[at + P_FLAGS]!;
    let presharedKey: Uint8Array | null | undefined;
    if ((flags & PeerFlag.presharedKey) !== 0) {
      const psk = b.subarray(at + P_PSK, at + P_PSK + 32);
      presharedKey = isZero(psk) ? null : psk.slice();
    }
    let endpoint: PeerEndpoint | undefined;
    if ((flags & PeerFlag.endpoint) !== 0) {
      const ip = b.subarray(at + P_IP, at + P_IP + (b[at + P_FAMILY] === 6 ? 16 : 4));
      const zone = this.#zones.get(i);
      endpoint = zone === undefined
        ? { address: formatIp(ip), port: readU16(b, at + P_PORT) }
        : { address: formatIp(ip), port: readU16(b, at + P_PORT), zone };
    }
    return {
      publicKey: b.slice(at, at + 32),
      remove: (flags & PeerFlag.remove) !== 0,
      updateOnly: (flags & PeerFlag.updateOnly) !== 0,
      presharedKey,
      endpoint,
      persistentKeepaliveInterval: (flags & PeerFlag.keepalive) !== 0 ? readU16(b, at + P_KEEPALIVE) : undefined,
      replaceAllowedIps: (flags & PeerFlag.replaceAllowedIps) !== 0,
      allowedIps: new AllowedIpList(this.#allowedIps, readU32(b, at + P_AIP_START), readU32(b, at + P_AIP_END)),
    };
  }

  #last(): { b: Uint8Array; at: number } {
    const i = this.#peers.length - 1;
    if (i < 0) throw new RangeError('expected a peer section begun first, got none');
    return { b: this.#peers.block(i), at: this.#peers.offset(i) };
  }

  /** Writer: starts a section; returns the 32 bytes to write its public key into. */
  begin(): Uint8Array {
    const i = this.#peers.push();
    const b = this.#peers.block(i);
    const at = this.#peers.offset(i);
    writeU32(b, at + P_AIP_START, this.#allowedIps.length);
    writeU32(b, at + P_AIP_END, this.#allowedIps.length);
    return b.subarray(at, at + 32);
  }

  /** Writer: sets flag bits on the last section. */
  flag(bits: number): void {
    const { b, at } = this.#last();
    b[at + P_FLAGS]! |= bits;
  }

  /** Writer: the 32 bytes to write the last section's pre-shared key into (marks it given). */
  presharedKey(): Uint8Array {
    this.flag(PeerFlag.presharedKey);
    const { b, at } = this.#last();
    return b.subarray(at + P_PSK, at + P_PSK + 32);
  }

  /** Writer: sets the last section's persistent keepalive (seconds, 0..65535). */
  keepalive(seconds: number): void {
    checkRange('persistent keepalive', seconds, 0xffff);
    this.flag(PeerFlag.keepalive);
    const { b, at } = this.#last();
    writeU16(b, at + P_KEEPALIVE, seconds);
  }

  /** Writer: sets the last section's endpoint (`ip` 4 or 16 bytes). */
  endpoint(ip: Uint8Array, port: number, zone: string | undefined): void {
    checkAddress(ip);
    checkRange('endpoint port', port, 0xffff);
    if (zone !== undefined && (typeof zone !== 'string' || zone === '')) throw new TypeError('expected a non-empty zone string');
    this.flag(PeerFlag.endpoint);
    const { b, at } = this.#last();
    b[at + P_FAMILY] = ip.length === 16 ? 6 : 4;
    b.fill(0, at + P_IP, at + P_IP + 16);
    b.set(ip, at + P_IP);
    writeU16(b, at + P_PORT, port);
    const i = this.#peers.length - 1;
    if (zone === undefined) this.#zones.delete(i);
    else this.#zones.set(i, zone);
  }

  /** Writer: `replace_allowed_ips=true` forgets the last section's allowed_ip lines so far. */
  replaceAllowedIps(): void {
    this.flag(PeerFlag.replaceAllowedIps);
    const { b, at } = this.#last();
    const start = readU32(b, at + P_AIP_START);
    this.#allowedIps.truncate(start);
    writeU32(b, at + P_AIP_END, start);
  }

  /** Writer: appends an allowed_ip line (`ip` 4 or 16 bytes) to the last section. */
  allowedIp(ip: Uint8Array, cidr: number, remove: boolean): void {
    checkAddress(ip);
    checkRange('cidr', cidr, ip.length * 8);
    this.#last();
    const store = this.#allowedIps;
    const i = store.push();
    const r = store.block(i);
    const o = store.offset(i);
    r[o] = (remove ? AIP_REMOVE : 0) | (ip.length === 16 ? AIP_V6 : 0);
    r[o + 1] = cidr;
    r.set(ip, o + 2);
    const { b, at } = this.#last();
    writeU32(b, at + P_AIP_END, store.length);
  }
}
