// IPv4 (RFC 791) and IPv6 (RFC 8200) packet parsing and building for the userspace stack. Parsing
// never throws on content: a bad packet yields the drop reason. Pure: no I/O.

import { checksum } from './checksum.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

/** Why an inbound IP packet was dropped before reaching a transport (counted by NetStack). */
export const IP_DROP_REASONS = [
  'ip-short', // shorter than its header, or than its own total/payload length
  'ip-version', // neither 4 nor 6
  'ip-header', // IPv4 IHL under 5 or beyond the packet; a malformed IPv6 extension header
  'ip-checksum', // IPv4 header checksum wrong
  'ip-fragment', // a fragment: reassembly is not implemented (our MSS and MTU avoid fragments)
  'ip-not-for-us', // destination is not one of our addresses
  'ip-protocol', // a transport we do not speak
] as const;

/** One value of {@link IP_DROP_REASONS}. */
export type IpDropReason = (typeof IP_DROP_REASONS)[number];

/** A parsed inbound packet: views into the original bytes. */
export interface IpPacket {
  readonly version: 4 | 6;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly proto: number;
  readonly ttl: number;
  /** The transport payload (exactly the length the IP header says). */
  readonly payload: Uint8Array;
}

// IPv6 extension headers we skip over (RFC 8200 4.1): hop-by-hop, routing, destination options.
const EXT_HOP_BY_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_DEST_OPTS = 60;
const MAX_EXT_HEADERS = 8;

/** Parses one IP packet; returns the packet or a drop reason. */
export function parseIpPacket(p: Uint8Array): IpPacket | IpDropReason {
  if (p.length < 1) return 'ip-short';
  const version = p[0]! >> 4;
  if (version === 4) {
    if (p.length < 20) return 'ip-short';
    const ihl = (p[0]! & 0x0f) * 4;
    if (ihl < 20) return 'ip-header';
    const total = (p[2]! << 8) | p[3]!;
    if (total < ihl || total > p.length) return total < ihl ? 'ip-header' : 'ip-short';
    if (checksum(0, p.subarray(0, ihl)) !== 0) return 'ip-checksum';
    const flagsFrag = (p[6]! << 8) | p[7]!;
    if ((flagsFrag & 0x3fff) !== 0) return 'ip-fragment'; // MF set or an offset
    return { version: 4, src: p.subarray(12, 16), dst: p.subarray(16, 20), proto: p[9]!, ttl: p[8]!, payload: p.subarray(ihl, total) };
  }
  if (version === 6) {
    if (p.length < 40) return 'ip-short';
    const payloadLen = (p[4]! << 8) | p[5]!;
    const end = 40 + payloadLen;
    if (end > p.length) return 'ip-short';
    let next = p[6]!;
    let at = 40;
    for (let n = 0; ; n++) {
      if (next === EXT_FRAGMENT) return 'ip-fragment';
      if (next !== EXT_HOP_BY_HOP && next !== EXT_ROUTING && next !== EXT_DEST_OPTS) break;
      if (n >= MAX_EXT_HEADERS || at + 8 > end) return 'ip-header';
      const len = (p[at + 1]! + 1) * 8;
      if (at + len > end) return 'ip-header';
      next = p[at]!;
      at += len;
    }
    return { version: 6, src: p.subarray(8, 24), dst: p.subarray(24, 40), proto: next, ttl: p[7]!, payload: p.subarray(at, end) };
  }
  return 'ip-version';
}

/** IPv4 header length we write, and IPv6's fixed header length. */
export const IPV4_HEADER = 20;
export const IPV6_HEADER = 40;

/**
 * Builds an IP packet from `src` to `dst` (4 or 16 bytes each, same family) carrying `payload`
 * of protocol `proto`: IPv4 with DF set (we never fragment), TTL/hop limit 64. `id` is the IPv4
 * identification (ignored for IPv6). Returns a new buffer.
 */
export function buildIpPacket(src: Uint8Array, dst: Uint8Array, proto: number, payload: Uint8Array, id: number): Uint8Array {
  if (src.length === 4) {
    const p = new Uint8Array(IPV4_HEADER + payload.length);
    p[0] = 0x45;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    p[4] = (id >> 8) & 0xff;
    p[5] = id & 0xff;
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = proto;
    p.set(src, 12);
    p.set(dst, 16);
    const c = checksum(0, p.subarray(0, IPV4_HEADER));
    p[10] = c >> 8;
    p[11] = c & 0xff;
    p.set(payload, IPV4_HEADER);
    return p;
  }
  const p = new Uint8Array(IPV6_HEADER + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = proto;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(payload, IPV6_HEADER);
  return p;
}
