// TUN offloads (IFF_VNET_HDR) as pure functions over byte arrays: the kernel hands a TUN opened
// with IFF_VNET_HDR and TUNSETOFFLOAD(CSUM, TSO4/6, USO4/6) "super-packets" of up to 64 KiB, each
// behind a 10-byte virtio_net_hdr; segmentSuperPacket cuts one into MTU-sized IP packets with
// their own IP/TCP/UDP headers and checksums (what a NIC does with TSO/USO), so each can be
// encrypted as one WireGuard message. In the other direction TunGroBatch coalesces received TCP
// segments of one flow into one super-packet (GRO) so the kernel's TCP receive path runs once per
// ~45 segments instead of once per segment. The syscalls live in native/tun.cc; tun-linux.ts
// glues the two. Facts (header layout, checksum conventions) follow the kernel's virtio_net.h and
// wireguard-go's tun/offload_linux.go; the code is our own.
//
// virtio_net_hdr (host byte order, little-endian on every platform we build for):
//   u8 flags (1 = NEEDS_CSUM), u8 gso_type (0 none, 1 TCPv4, 4 TCPv6, 5 UDP_L4; 0x80 ECN),
//   u16 hdr_len, u16 gso_size, u16 csum_start, u16 csum_offset.
// NEEDS_CSUM means: the checksum field at csum_start + csum_offset holds the folded pseudo-header
// sum (not complemented); the sum over [csum_start, end) must still be added, folded, complemented.

import { checksumNoFold, foldChecksum } from '../core/checksum.js';

export { checksumNoFold, foldChecksum };

/** Bytes of the virtio_net_hdr in front of every packet on an IFF_VNET_HDR TUN. */
export const VIRTIO_NET_HDR_LEN = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
const GSO_ECN = 0x80;

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
/** Most segments one super-packet may turn into (64 KiB / a 576-byte IPv4 MTU, rounded up). */
export const MAX_SEGMENTS = 128;

/** Pseudo-header sum (not folded) for IPv4 (version 4) or IPv6 at `ip`, with `length` the L4 length. */
export function pseudoHeaderSum(pkt: Uint8Array, ip: number, version: number, proto: number, length: number): number {
  const sum = version === 4 ? checksumNoFold(pkt, ip + 12, ip + 20, 0) : checksumNoFold(pkt, ip + 8, ip + 40, 0);
  return sum + proto + length;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}
function get16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}
function get32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}
function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
function getLe16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}
function putLe16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}

/** A parsed virtio_net_hdr. */
export interface VirtioNetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Reads the virtio_net_hdr at `at`. */
export function readVirtioHdr(b: Uint8Array, at: number): VirtioNetHdr {
  return {
    flags: b[at]!, gsoType: b[at + 1]!, hdrLen: getLe16(b, at + 2), gsoSize: getLe16(b, at + 4),
    csumStart: getLe16(b, at + 6), csumOffset: getLe16(b, at + 8),
  };
}

/** Writes a virtio_net_hdr at `at`. */
export function writeVirtioHdr(b: Uint8Array, at: number, h: VirtioNetHdr): void {
  b[at] = h.flags;
  b[at + 1] = h.gsoType;
  putLe16(b, at + 2, h.hdrLen);
  putLe16(b, at + 4, h.gsoSize);
  putLe16(b, at + 6, h.csumStart);
  putLe16(b, at + 8, h.csumOffset);
}

/** Recomputes the IPv4 header checksum of the header at `ip` (length ihl bytes). */
function ipv4HeaderChecksum(b: Uint8Array, ip: number, ihl: number): void {
  b[ip + 10] = 0;
  b[ip + 11] = 0;
  put16(b, ip + 10, ~foldChecksum(checksumNoFold(b, ip, ip + ihl, 0)) & 0xffff);
}

/**
 * Turns the packet behind a virtio_net_hdr, `src[start, end)` (header included), into plain IP
 * packets written back to back into `out` from `outAt`; `offsets[n..]` gets each packet's start
 * and the entry after the last one its end (the TunBatchHandler layout). Returns the number of
 * packets written, or -1 when the header or packet is malformed (nothing usable written), or -2
 * when `out` has too little room (call again with more). Completes a NEEDS_CSUM checksum;
 * segments TCPv4/TCPv6/UDP_L4 GSO packets into gso_size payloads with fixed-up lengths, IPv4 ids,
 * TCP sequence numbers and flags (FIN/PSH only on the last, CWR only on the first) and fresh
 * checksums.
 */
export function segmentSuperPacket(
  src: Uint8Array, start: number, end: number,
  out: Uint8Array, outAt: number, offsets: Uint32Array, n: number,
): number {
  if (end - start < VIRTIO_NET_HDR_LEN + 1) return -1;
  const flags = src[start]!;
  const gsoType = src[start + 1]! & ~GSO_ECN;
  const gsoSize = getLe16(src, start + 4);
  const csumStart = getLe16(src, start + 6);
  const csumOffset = getLe16(src, start + 8);
  const pkt = start + VIRTIO_NET_HDR_LEN;
  const len = end - pkt;
  const version = src[pkt]! >>> 4;
  if (gsoType === VIRTIO_NET_HDR_GSO_NONE) {
    if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      if (csumStart + csumOffset + 2 > len || csumStart >= len) return -1;
    }
    if (n + 1 >= offsets.length) return -2;
    if (out.length - outAt < len) return -2;
    out.set(src.subarray(pkt, end), outAt);
    if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      const field = outAt + csumStart + csumOffset;
      const sum = foldChecksum(checksumNoFold(out, outAt + csumStart, outAt + len, 0));
      put16(out, field, ~sum & 0xffff);
    }
    offsets[n] = outAt;
    offsets[n + 1] = outAt + len;
    return 1;
  }
  // GSO: find the headers ourselves (hdr_len from the kernel is only a hint).
  let ipLen: number;
  let proto: number;
  if (version === 4) {
    if (len < 20) return -1;
    ipLen = (src[pkt]! & 0x0f) * 4;
    proto = src[pkt + 9]!;
    if (ipLen < 20 || gsoType === VIRTIO_NET_HDR_GSO_TCPV6) return -1;
    if ((get16(src, pkt + 6) & 0x3fff) !== 0) return -1; // a fragment cannot be segmented
  } else if (version === 6) {
    ipLen = 40;
    if (len < 40 || gsoType === VIRTIO_NET_HDR_GSO_TCPV4) return -1;
    proto = src[pkt + 6]!; // no extension headers: the kernel's TSO/USO never emits them here
  } else {
    return -1;
  }
  let l4Len: number;
  if (gsoType === VIRTIO_NET_HDR_GSO_TCPV4 || gsoType === VIRTIO_NET_HDR_GSO_TCPV6) {
    if (proto !== PROTO_TCP || len < ipLen + 20) return -1;
    l4Len = (src[pkt + ipLen + 12]! >>> 4) * 4;
    if (l4Len < 20) return -1;
  } else if (gsoType === VIRTIO_NET_HDR_GSO_UDP_L4) {
    if (proto !== PROTO_UDP) return -1;
    l4Len = 8;
  } else {
    return -1;
  }
  const hdrLen = ipLen + l4Len;
  if (csumStart !== ipLen || hdrLen > len || gsoSize === 0) return -1;
  const payload = len - hdrLen;
  const segments = payload === 0 ? 1 : Math.ceil(payload / gsoSize);
  if (segments > MAX_SEGMENTS) return -1;
  if (n + segments >= offsets.length) return -2;
  if (out.length - outAt < payload + segments * hdrLen) return -2;
  const isTcp = proto === PROTO_TCP;
  const id0 = version === 4 ? get16(src, pkt + 4) : 0;
  const seq0 = isTcp ? get32(src, pkt + ipLen + 4) : 0;
  let at = outAt;
  for (let i = 0; i < segments; i++) {
    const from = i * gsoSize;
    const chunk = Math.min(gsoSize, payload - from);
    const segLen = hdrLen + chunk;
    out.set(src.subarray(pkt, pkt + hdrLen), at);
    out.set(src.subarray(pkt + hdrLen + from, pkt + hdrLen + from + chunk), at + hdrLen);
    if (version === 4) {
      put16(out, at + 2, segLen);
      put16(out, at + 4, (id0 + i) & 0xffff);
      ipv4HeaderChecksum(out, at, ipLen);
    } else {
      put16(out, at + 4, segLen - 40);
    }
    const l4 = at + ipLen;
    if (isTcp) {
      put32(out, l4 + 4, (seq0 + from) >>> 0);
      let f = out[l4 + 13]!;
      if (i !== segments - 1) f &= ~(TCP_FIN | TCP_PSH);
      if (i !== 0) f &= ~TCP_CWR;
      out[l4 + 13] = f;
      out[l4 + 16] = 0;
      out[l4 + 17] = 0;
      const sum = checksumNoFold(out, l4, at + segLen, pseudoHeaderSum(out, at, version, PROTO_TCP, segLen - ipLen));
      put16(out, l4 + 16, ~foldChecksum(sum) & 0xffff);
    } else {
      put16(out, l4 + 4, segLen - ipLen);
      out[l4 + 6] = 0;
      out[l4 + 7] = 0;
      const sum = checksumNoFold(out, l4, at + segLen, pseudoHeaderSum(out, at, version, PROTO_UDP, segLen - ipLen));
      const c = ~foldChecksum(sum) & 0xffff;
      put16(out, l4 + 6, c === 0 ? 0xffff : c);
    }
    offsets[n + i] = at;
    at += segLen;
    offsets[n + i + 1] = at;
  }
  return segments;
}

// ---- GRO: coalescing TCP segments on the way into the TUN ----

/** Most open flows TunGroBatch compares a packet against (newest first). */
const GRO_SCAN = 8;
/** Most iovecs per coalesced write (header + payload slices). */
export const GRO_MAX_IOV = 64;
/** Largest coalesced IP packet. */
const GRO_MAX_LEN = 65535;

/**
 * Collects the packets of one event-loop task for an IFF_VNET_HDR TUN and coalesces TCP segments
 * of one flow (same addresses, ports, ack, IP header fields and TCP options, consecutive
 * sequence numbers, equal segment sizes but a shorter last one, ACK with at most PSH on the last)
 * into one GSO write. Packets are copied into `buf` with VIRTIO_NET_HDR_LEN bytes of room in front;
 * `finish()` fills in the headers and writes into `spec` the writev layout native/tun.cc's
 * writeBatch takes: per write [iovCount, off0, len0, off1, len1, ...], all offsets into `buf`.
 */
export class TunGroBatch {
  readonly buf: Uint8Array;
  readonly spec: Uint32Array;
  #used = 0;
  // Per item: start of its first packet (the vnet header is 10 bytes before), the first packet's
  // length, IP header length, L4 header length, segment size, payload bytes so far, open flag,
  // and its payload slices [off, len] after the first packet.
  #items: Item[] = [];
  #count = 0;

  constructor(bufBytes: number, maxItems: number) {
    this.buf = new Uint8Array(bufBytes);
    this.spec = new Uint32Array(maxItems * (1 + 2 * GRO_MAX_IOV));
    for (let i = 0; i < maxItems; i++) this.#items.push(new Item());
  }

  /** Writes of the last finish() that carried more than one segment. */
  coalescedWrites = 0;

  /** Packets (writes) pending. */
  get size(): number {
    return this.#count;
  }

  /** False when the batch is full (flush first); true when the packet was taken. */
  add(pkt: Uint8Array): boolean {
    const len = pkt.length;
    if (len === 0 || len > GRO_MAX_LEN) return true; // nothing to write; the caller counts
    if (this.#used + VIRTIO_NET_HDR_LEN + len > this.buf.length) return false;
    const tcp = tcpSegmentInfo(pkt);
    if (tcp !== undefined) {
      const candidate = tcp.payload > 0 && (tcp.flags & ~TCP_PSH) === 0x10;
      for (let k = this.#count - 1, seen = 0; k >= 0 && seen < GRO_SCAN; k--, seen++) {
        const it = this.#items[k]!;
        if (!it.open || !this.#sameFlow(it, pkt, tcp)) continue;
        // A packet of this flow that cannot merge closes the flow's item, so nothing written
        // later overtakes it.
        if (candidate && this.#tryMerge(it, pkt, tcp)) return true;
        it.open = false;
        break;
      }
    }
    if (this.#count === this.#items.length) return false;
    const at = this.#used + VIRTIO_NET_HDR_LEN;
    this.buf.set(pkt, at);
    this.#used = at + len;
    const it = this.#items[this.#count++]!;
    it.start = at;
    it.len = len;
    it.slices = 0;
    if (tcp !== undefined && tcp.payload > 0 && (tcp.flags & ~TCP_PSH) === 0x10) {
      it.open = (tcp.flags & TCP_PSH) === 0;
      it.ipLen = tcp.ipLen;
      it.l4Len = tcp.l4Len;
      it.gsoSize = tcp.payload;
      it.payload = tcp.payload;
      it.total = len;
      it.segments = 1;
      it.nextSeq = (tcp.seq + tcp.payload) >>> 0;
      it.version = pkt[0]! >>> 4;
    } else {
      it.open = false;
      it.segments = 1;
    }
    return true;
  }

  #sameFlow(it: Item, pkt: Uint8Array, tcp: TcpInfo): boolean {
    const b = this.buf;
    const h = it.start;
    if (pkt[0]! >>> 4 !== it.version || tcp.ipLen !== it.ipLen) return false;
    if (it.version === 4) {
      for (let i = 12; i < 20; i++) if (b[h + i] !== pkt[i]) return false;
    } else {
      for (let i = 8; i < 40; i++) if (b[h + i] !== pkt[i]) return false;
    }
    const l4 = tcp.ipLen;
    for (let i = 0; i < 4; i++) if (b[h + l4 + i] !== pkt[l4 + i]) return false;
    return true;
  }

  // Appends pkt (same flow as it) to it when everything matches; false otherwise.
  #tryMerge(it: Item, pkt: Uint8Array, tcp: TcpInfo): boolean {
    const b = this.buf;
    const h = it.start;
    const version = it.version;
    const l4 = tcp.ipLen;
    if (tcp.l4Len !== it.l4Len || tcp.seq !== it.nextSeq || tcp.payload > it.gsoSize) return false;
    if ((tcp.flags & ~TCP_PSH) !== 0x10) return false;
    if (it.segments >= GRO_MAX_IOV - 1 || it.total + tcp.payload > GRO_MAX_LEN) return false;
    // IP fields that must match: v4 tos, flags/fragment, ttl, protocol (bytes 1, 6-9);
    // v6 traffic class/flow label, next header, hop limit (bytes 0-3, 6-7).
    if (version === 4) {
      if (b[h + 1] !== pkt[1] || b[h + 6] !== pkt[6] || b[h + 7] !== pkt[7] || b[h + 8] !== pkt[8]) return false;
    } else {
      if (b[h] !== pkt[0] || b[h + 1] !== pkt[1] || b[h + 2] !== pkt[2] || b[h + 3] !== pkt[3] ||
        b[h + 6] !== pkt[6] || b[h + 7] !== pkt[7]) return false;
    }
    // ack number and options.
    for (let i = 8; i < 12; i++) if (b[h + l4 + i] !== pkt[l4 + i]) return false;
    for (let i = 20; i < tcp.l4Len; i++) if (b[h + l4 + i] !== pkt[l4 + i]) return false;
    // Merge: copy the payload after the batch's used bytes.
    const hdr = tcp.ipLen + tcp.l4Len;
    if (this.#used + tcp.payload > b.length) return false;
    b.set(pkt.subarray(hdr, hdr + tcp.payload), this.#used);
    it.sliceOff[it.slices] = this.#used;
    it.sliceLen[it.slices] = tcp.payload;
    it.slices++;
    this.#used += tcp.payload;
    it.payload += tcp.payload;
    it.total += tcp.payload;
    it.segments++;
    it.nextSeq = (tcp.seq + tcp.payload) >>> 0;
    if (tcp.flags & TCP_PSH) {
      b[h + l4 + 13] = b[h + l4 + 13]! | TCP_PSH;
      it.open = false;
    }
    if (tcp.payload < it.gsoSize) it.open = false;
    return true;
  }

  /**
   * Finalizes every pending write (virtio headers, lengths, checksums) into `spec`; returns the
   * number of writes. Call reset() after the writes.
   */
  finish(): number {
    const b = this.buf;
    const spec = this.spec;
    let s = 0;
    this.coalescedWrites = 0;
    for (let k = 0; k < this.#count; k++) {
      const it = this.#items[k]!;
      const hdrAt = it.start - VIRTIO_NET_HDR_LEN;
      if (it.segments === 1) {
        b.fill(0, hdrAt, it.start);
        spec[s++] = 1;
        spec[s++] = hdrAt;
        spec[s++] = VIRTIO_NET_HDR_LEN + it.len;
        continue;
      }
      this.coalescedWrites++;
      const h = it.start;
      const total = it.total;
      if (it.version === 4) {
        put16(b, h + 2, total);
        ipv4HeaderChecksum(b, h, it.ipLen);
      } else {
        put16(b, h + 4, total - 40);
      }
      const l4 = h + it.ipLen;
      b[l4 + 16] = 0;
      b[l4 + 17] = 0;
      put16(b, l4 + 16, foldChecksum(pseudoHeaderSum(b, h, it.version, PROTO_TCP, total - it.ipLen)));
      writeVirtioHdr(b, hdrAt, {
        flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gsoType: it.version === 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6,
        hdrLen: it.ipLen + it.l4Len,
        gsoSize: it.gsoSize,
        csumStart: it.ipLen,
        csumOffset: 16,
      });
      spec[s++] = 1 + it.slices;
      spec[s++] = hdrAt;
      spec[s++] = VIRTIO_NET_HDR_LEN + it.len;
      for (let i = 0; i < it.slices; i++) {
        spec[s++] = it.sliceOff[i]!;
        spec[s++] = it.sliceLen[i]!;
      }
    }
    return this.#count;
  }

  /** Empties the batch. */
  reset(): void {
    this.#count = 0;
    this.#used = 0;
  }
}


class Item {
  start = 0;
  len = 0;
  open = false;
  version = 0;
  ipLen = 0;
  l4Len = 0;
  gsoSize = 0;
  payload = 0;
  total = 0;
  segments = 0;
  nextSeq = 0;
  slices = 0;
  readonly sliceOff = new Uint32Array(GRO_MAX_IOV);
  readonly sliceLen = new Uint32Array(GRO_MAX_IOV);
}

interface TcpInfo {
  ipLen: number;
  l4Len: number;
  payload: number;
  seq: number;
  flags: number;
}

// One reused result object (no allocation per packet); valid until the next call.
const scratch: TcpInfo = { ipLen: 0, l4Len: 0, payload: 0, seq: 0, flags: 0 };

/** A well-formed, unfragmented TCP segment without IP options/extension headers, or undefined. */
function tcpSegmentInfo(pkt: Uint8Array): TcpInfo | undefined {
  const len = pkt.length;
  const version = pkt[0]! >>> 4;
  let ipLen: number;
  if (version === 4) {
    if (len < 40 || (pkt[0]! & 0x0f) !== 5 || pkt[9] !== PROTO_TCP) return undefined;
    if (get16(pkt, 2) !== len || (get16(pkt, 6) & 0x3fff) !== 0) return undefined;
    ipLen = 20;
  } else if (version === 6) {
    if (len < 60 || pkt[6] !== PROTO_TCP || get16(pkt, 4) !== len - 40) return undefined;
    ipLen = 40;
  } else {
    return undefined;
  }
  const l4Len = (pkt[ipLen + 12]! >>> 4) * 4;
  if (l4Len < 20 || ipLen + l4Len > len) return undefined;
  scratch.ipLen = ipLen;
  scratch.l4Len = l4Len;
  scratch.payload = len - ipLen - l4Len;
  scratch.seq = get32(pkt, ipLen + 4);
  scratch.flags = pkt[ipLen + 13]!;
  return scratch;
}
