// Reads what the policy filter judges from an IPv4 (RFC 791) or IPv6 (RFC 8200) packet:
// addresses, L4 protocol past IPv6 extension headers, ports, TCP flags, ICMP echo ids. Into a
// reused object, without allocating and without throwing on any input.

import type { PolicyDropReason } from './drop-reasons.js';

/** Match classes: which protocol column of the compiled policy a packet is looked up in. */
export const CLASS_TCP = 0;
/** UDP with a complete header. */
export const CLASS_UDP = 1;
/** ICMPv4 in IPv4 or ICMPv6 in IPv6, with a complete 8-byte header. */
export const CLASS_ICMP = 2;
/** Everything else (fragments, truncated headers, other protocols): only `any` rules match. */
export const CLASS_OTHER = 3;

/** IANA protocol numbers used here. */
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

/** TCP flag bits (RFC 9293 section 3.1). */
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

/** At most this many IPv6 extension headers are walked before the packet counts as 'ext-header'. */
export const IPV6_MAX_EXT_HEADERS = 8;

/** Echo request/reply ICMP types (RFC 792; RFC 4443 section 4). */
const ICMP4_ECHO_REQUEST = 8;
const ICMP4_ECHO_REPLY = 0;
const ICMP6_ECHO_REQUEST = 128;
const ICMP6_ECHO_REPLY = 129;

/** What an ICMP packet means to connection tracking. */
export const ICMP_OTHER = 0;
export const ICMP_ECHO_REQUEST = 1;
export const ICMP_ECHO_REPLY = 2;

/**
 * The fields of one packet. Filled by readPacket; valid until the next call. Addresses stay in
 * the packet (srcOffset/dstOffset) and are also copied as big-endian int32 words for hashing.
 */
export class PacketMeta {
  family: 4 | 6 = 4;
  srcOffset = 12;
  dstOffset = 16;
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;
  d0 = 0;
  d1 = 0;
  d2 = 0;
  d3 = 0;
  /** IP protocol number of the upper layer (after IPv6 extension headers), -1 when unknown. */
  proto = -1;
  /** CLASS_TCP / CLASS_UDP / CLASS_ICMP / CLASS_OTHER. */
  klass = CLASS_OTHER;
  /** Why a CLASS_OTHER packet is special ('fragment', ...), or undefined for a whole packet. */
  special: PolicyDropReason | undefined = undefined;
  /** TCP/UDP ports; for ICMP echo, the id in sport (request) or dport (reply), the other 0. */
  sport = 0;
  dport = 0;
  /** TCP flags byte (CLASS_TCP only). */
  tcpFlags = 0;
  /** ICMP_ECHO_REQUEST / ICMP_ECHO_REPLY / ICMP_OTHER (CLASS_ICMP only). */
  icmpKind = ICMP_OTHER;
}

function word(b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

/** Reads the L4 header at [at, end) of protocol `proto` into m (class, ports, flags). */
function readL4(b: Uint8Array, at: number, end: number, proto: number, icmpProto: number, m: PacketMeta): void {
  m.proto = proto;
  if (proto === PROTO_TCP) {
    // RFC 9293 3.1: data offset (upper nibble of byte 12) counts 32-bit words, at least 5.
    if (end - at < 20 || b[at + 12]! >> 4 < 5 || at + (b[at + 12]! >> 4) * 4 > end) {
      m.special = 'truncated-l4';
      return;
    }
    m.klass = CLASS_TCP;
    m.sport = (b[at]! << 8) | b[at + 1]!;
    m.dport = (b[at + 2]! << 8) | b[at + 3]!;
    m.tcpFlags = b[at + 13]!;
  } else if (proto === PROTO_UDP) {
    if (end - at < 8) {
      m.special = 'truncated-l4';
      return;
    }
    m.klass = CLASS_UDP;
    m.sport = (b[at]! << 8) | b[at + 1]!;
    m.dport = (b[at + 2]! << 8) | b[at + 3]!;
  } else if (proto === icmpProto) {
    if (end - at < 8) {
      m.special = 'truncated-l4';
      return;
    }
    m.klass = CLASS_ICMP;
    const type = b[at]!;
    const id = (b[at + 4]! << 8) | b[at + 5]!;
    const v6 = icmpProto === PROTO_ICMPV6;
    if (type === (v6 ? ICMP6_ECHO_REQUEST : ICMP4_ECHO_REQUEST)) {
      m.icmpKind = ICMP_ECHO_REQUEST;
      m.sport = id;
    } else if (type === (v6 ? ICMP6_ECHO_REPLY : ICMP4_ECHO_REPLY)) {
      m.icmpKind = ICMP_ECHO_REPLY;
      m.dport = id;
    }
  } else {
    m.special = 'unknown-protocol';
  }
}

/**
 * Fills `m` from the IP packet `b`. Returns false (m undefined) when the IP header itself is
 * unreadable: too short, wrong version, a bad IPv4 header length, or a length field larger than
 * the buffer. Fragments, truncated L4 headers, unreadable extension-header chains and other
 * protocols return true with klass CLASS_OTHER and `special` saying which.
 */
export function readPacket(b: Uint8Array, m: PacketMeta): boolean {
  m.proto = -1;
  m.klass = CLASS_OTHER;
  m.special = undefined;
  m.sport = 0;
  m.dport = 0;
  m.tcpFlags = 0;
  m.icmpKind = ICMP_OTHER;
  if (b.length < 1) return false;
  const version = b[0]! >> 4;
  if (version === 4) {
    if (b.length < 20) return false;
    const ihl = (b[0]! & 0x0f) * 4;
    const total = (b[2]! << 8) | b[3]!;
    if (ihl < 20 || total < ihl || total > b.length) return false;
    m.family = 4;
    m.srcOffset = 12;
    m.dstOffset = 16;
    m.s0 = word(b, 12);
    m.d0 = word(b, 16);
    m.s1 = m.s2 = m.s3 = m.d1 = m.d2 = m.d3 = 0;
    // RFC 791: fragment offset is the low 13 bits of bytes 6-7; nonzero means no L4 header here.
    if ((((b[6]! & 0x1f) << 8) | b[7]!) !== 0) {
      m.proto = b[9]!;
      m.special = 'fragment';
      return true;
    }
    readL4(b, ihl, total, b[9]!, PROTO_ICMP, m);
    return true;
  }
  if (version === 6) {
    if (b.length < 40) return false;
    const end = 40 + ((b[4]! << 8) | b[5]!);
    if (end > b.length) return false; // includes jumbograms (payload length 0 + hop-by-hop option): unsupported
    m.family = 6;
    m.srcOffset = 8;
    m.dstOffset = 24;
    m.s0 = word(b, 8);
    m.s1 = word(b, 12);
    m.s2 = word(b, 16);
    m.s3 = word(b, 20);
    m.d0 = word(b, 24);
    m.d1 = word(b, 28);
    m.d2 = word(b, 32);
    m.d3 = word(b, 36);
    let next = b[6]!;
    let at = 40;
    // RFC 8200 section 4: walk the chain, at most IPV6_MAX_EXT_HEADERS deep.
    for (let n = 0; ; n++) {
      if (next !== 0 && next !== 43 && next !== 44 && next !== 51 && next !== 60 && next !== 135 && next !== 139 && next !== 140) break;
      if (n === IPV6_MAX_EXT_HEADERS || end - at < 8) {
        m.special = 'ext-header';
        return true;
      }
      const hdrNext = b[at]!;
      if (next === 44) {
        // Fragment header (RFC 8200 4.5): 8 bytes; offset in the upper 13 bits of bytes 2-3.
        if ((((b[at + 2]! << 8) | b[at + 3]!) & 0xfff8) !== 0) {
          m.proto = hdrNext;
          m.special = 'fragment';
          return true;
        }
        at += 8;
      } else if (next === 51) {
        at += (b[at + 1]! + 2) * 4; // AH (RFC 4302): length in 4-byte units minus 2
      } else {
        at += (b[at + 1]! + 1) * 8; // hop-by-hop, routing, destination options, mobility, HIP, shim6
      }
      if (at > end) {
        m.special = 'ext-header';
        return true;
      }
      next = hdrNext;
    }
    readL4(b, at, end, next, PROTO_ICMPV6, m);
    return true;
  }
  return false;
}
