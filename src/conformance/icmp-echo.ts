// ICMP echo inside IPv4 (RFC 792) and ICMPv6 echo inside IPv6 (RFC 4443 section 4.1, checksum
// over the RFC 8200 section 8.1 pseudo-header), for the conformance adversary: build a request,
// read an echo message, turn a request into its reply. Packets without options or extension headers.

import { checksumNoFold, internetChecksum } from '../core/checksum.js';
import { parseIp } from '../core/ip.js';

/** An echo message read from an IP packet. */
export interface Echo {
  readonly kind: 'request' | 'reply';
  readonly id: number;
  readonly seq: number;
}

const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const ICMP = 1;
const ICMPV6 = 58;
/** Echo request / reply type numbers per IP version. */
const TYPES = { 4: { request: 8, reply: 0 }, 6: { request: 128, reply: 129 } } as const;

/** Writes the Internet checksum of `p`'s ICMP part (after `offset`) into bytes offset+2..3. */
function writeIcmpChecksum(p: Uint8Array, offset: number, version: 4 | 6): void {
  const icmp = p.subarray(offset);
  icmp[2] = 0;
  icmp[3] = 0;
  // ICMPv6 covers the pseudo-header: source, destination, upper-layer length, next header.
  const pseudo = version === 6 ? checksumNoFold(p, 8, 40, icmp.length + ICMPV6) : 0;
  const c = internetChecksum(icmp, 0, icmp.length, pseudo);
  icmp[2] = c >> 8;
  icmp[3] = c & 0xff;
}

/**
 * An echo request from `src` to `dst` (both IPv4 or both IPv6) with identifier `id`, sequence
 * `seq` and `payloadLength` bytes of data. Throws RangeError for mixed or unparsable addresses.
 */
export function echoRequest(src: string, dst: string, id: number, seq: number, payloadLength = 56): Uint8Array {
  const s = parseIp(src);
  const d = parseIp(dst);
  if (s === undefined || d === undefined || s.length !== d.length) throw new RangeError(`expected two IPv4 or two IPv6 addresses, got ${src} and ${dst}`);
  const v6 = s.length === 16;
  const offset = v6 ? IPV6_HEADER : IPV4_HEADER;
  const p = new Uint8Array(offset + 8 + payloadLength);
  if (v6) {
    p[0] = 0x60;
    p[4] = (p.length - offset) >> 8;
    p[5] = (p.length - offset) & 0xff;
    p[6] = ICMPV6;
    p[7] = 64;
    p.set(s, 8);
    p.set(d, 24);
  } else {
    p[0] = 0x45;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    p[8] = 64;
    p[9] = ICMP;
    p.set(s, 12);
    p.set(d, 16);
    const hc = internetChecksum(p, 0, IPV4_HEADER);
    p[10] = hc >> 8;
    p[11] = hc & 0xff;
  }
  p[offset] = TYPES[v6 ? 6 : 4].request;
  p[offset + 4] = id >> 8;
  p[offset + 5] = id & 0xff;
  p[offset + 6] = seq >> 8;
  p[offset + 7] = seq & 0xff;
  for (let i = offset + 8; i < p.length; i++) p[i] = i & 0xff;
  writeIcmpChecksum(p, offset, v6 ? 6 : 4);
  return p;
}

/** Where the ICMP message of `p` starts and its version, or undefined when `p` carries none. */
function icmpOffset(p: Uint8Array): { offset: number; version: 4 | 6 } | undefined {
  const version = p[0]! >> 4;
  if (version === 4 && p.length >= IPV4_HEADER + 8 && p[9] === ICMP) {
    const ihl = (p[0]! & 0x0f) * 4;
    return p.length >= ihl + 8 ? { offset: ihl, version } : undefined;
  }
  if (version === 6 && p.length >= IPV6_HEADER + 8 && p[6] === ICMPV6) return { offset: IPV6_HEADER, version };
  return undefined;
}

/** The echo request or reply carried by IP packet `p`, or undefined for anything else. */
export function parseEcho(p: Uint8Array): Echo | undefined {
  const at = icmpOffset(p);
  if (at === undefined) return undefined;
  const type = p[at.offset];
  const types = TYPES[at.version];
  const kind = type === types.request ? 'request' : type === types.reply ? 'reply' : undefined;
  if (kind === undefined) return undefined;
  return { kind, id: (p[at.offset + 4]! << 8) | p[at.offset + 5]!, seq: (p[at.offset + 6]! << 8) | p[at.offset + 7]! };
}

/** The reply to echo request `request` (a new packet: addresses swapped, type and checksum set). */
export function echoReply(request: Uint8Array): Uint8Array | undefined {
  const at = icmpOffset(request);
  if (at === undefined || request[at.offset] !== TYPES[at.version].request) return undefined;
  const p = request.slice();
  const [from, len] = at.version === 6 ? [8, 16] : [12, 4];
  p.set(request.subarray(from + len, from + 2 * len), from);
  p.set(request.subarray(from, from + len), from + len); // the IPv4 header checksum survives a swap
  p[at.offset] = TYPES[at.version].reply;
  writeIcmpChecksum(p, at.offset, at.version);
  return p;
}
