// TCP segment codec (RFC 9293 section 3.1): header parse and build, options (MSS, window scale
// and timestamps of RFC 7323, SACK of RFC 2018), the Internet checksum over the IPv4 (RFC 9293
// 3.1) or IPv6 (RFC 8200 8.1) pseudo-header, and 32-bit sequence arithmetic (RFC 9293 3.4).

import { internetChecksum } from '../core/checksum.js';
import type { TcpDropReason } from './tcp.js';

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;

/** Minimum header length (data offset 5). */
export const TCP_HEADER = 20;
const PROTO_TCP = 6;

const OPT_END = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERM = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;

/** RFC 7323 2.3: the largest shift a window-scale option may carry. */
export const MAX_WSCALE = 14;

/** `a < b` in sequence space (RFC 9293 3.4: modulo 2^32). */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
/** `a <= b` in sequence space. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
/** `b - a` in sequence space (signed). */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
/** `a + n` in sequence space, as an unsigned 32-bit number. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** A parsed segment: views into the input (payload is a subarray, not a copy). */
export interface Segment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number; // raw 16-bit field, unscaled
  payload: Uint8Array;
  mss: number | undefined;
  wscale: number | undefined;
  sackPermitted: boolean;
  tsVal: number | undefined;
  tsEcr: number;
  /** SACK blocks as [left0, right0, left1, right1, ...], or undefined. */
  sack: number[] | undefined;
}

/** One's-complement sum of the v4/v6 pseudo-header for TCP of `length` bytes (not folded). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, length: number): number {
  let sum = 0;
  for (let i = 0; i < src.length; i += 2) sum += (src[i]! << 8) | src[i + 1]!;
  for (let i = 0; i < dst.length; i += 2) sum += (dst[i]! << 8) | dst[i + 1]!;
  // v4: zero, protocol, 16-bit length; v6: 32-bit length, 3 zero bytes, next header.
  return sum + PROTO_TCP + (length >>> 16) + (length & 0xffff);
}

/** Folds `sum` plus the 16-bit words of bytes into the one's-complement checksum field value. */
export function checksum(initial: number, bytes: Uint8Array): number {
  return internetChecksum(bytes, 0, bytes.length, initial);
}

/**
 * Parses `bytes` as a TCP segment from `src` to `dst` (4- or 16-byte addresses of one family),
 * verifying the checksum. Returns the segment or the reason it is malformed.
 */
export function parseSegment(src: Uint8Array, dst: Uint8Array, bytes: Uint8Array): Segment | TcpDropReason {
  if ((src.length !== 4 && src.length !== 16) || src.length !== dst.length) return 'bad-address';
  if (bytes.length < TCP_HEADER) return 'short';
  const offset = (bytes[12]! >> 4) * 4;
  if (offset < TCP_HEADER) return 'data-offset';
  if (offset > bytes.length) return 'short';
  if (checksum(pseudoHeaderSum(src, dst, bytes.length), bytes) !== 0) return 'checksum';
  const seg: Segment = {
    srcPort: (bytes[0]! << 8) | bytes[1]!,
    dstPort: (bytes[2]! << 8) | bytes[3]!,
    seq: readU32(bytes, 4),
    ack: readU32(bytes, 8),
    flags: bytes[13]!,
    window: (bytes[14]! << 8) | bytes[15]!,
    payload: bytes.subarray(offset),
    mss: undefined,
    wscale: undefined,
    sackPermitted: false,
    tsVal: undefined,
    tsEcr: 0,
    sack: undefined,
  };
  if (seg.srcPort === 0 || seg.dstPort === 0) return 'bad-port';
  // RFC 9293 3.1: options; an option whose length is wrong or runs past the header is an error.
  let i = TCP_HEADER;
  while (i < offset) {
    const kind = bytes[i]!;
    if (kind === OPT_END) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= offset) return 'bad-option';
    const len = bytes[i + 1]!;
    if (len < 2 || i + len > offset) return 'bad-option';
    switch (kind) {
      case OPT_MSS:
        if (len !== 4) return 'bad-option';
        seg.mss = (bytes[i + 2]! << 8) | bytes[i + 3]!;
        break;
      case OPT_WSCALE:
        if (len !== 3) return 'bad-option';
        seg.wscale = Math.min(bytes[i + 2]!, MAX_WSCALE); // RFC 7323 2.3: larger is logged and clamped
        break;
      case OPT_SACK_PERM:
        if (len !== 2) return 'bad-option';
        seg.sackPermitted = true;
        break;
      case OPT_TIMESTAMP:
        if (len !== 10) return 'bad-option';
        seg.tsVal = readU32(bytes, i + 2);
        seg.tsEcr = readU32(bytes, i + 6);
        break;
      case OPT_SACK: {
        if ((len - 2) % 8 !== 0 || len === 2) return 'bad-option';
        const blocks: number[] = [];
        for (let j = i + 2; j < i + len; j += 8) blocks.push(readU32(bytes, j), readU32(bytes, j + 4));
        seg.sack = blocks;
        break;
      }
      default:
        break; // unknown options are skipped (RFC 9293 3.1 MUST)
    }
    i += len;
  }
  return seg;
}

/** What {@link buildSegment} writes. */
export interface SegmentFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** SYN options (only with SYN): MSS always; the others when offered. */
  synMss?: number;
  synWscale?: number | undefined;
  synSackPermitted?: boolean;
  /** Timestamps option, when in use. */
  tsVal?: number | undefined;
  tsEcr?: number;
  /** SACK blocks [l0, r0, l1, r1...] (at most 4 blocks, 3 with timestamps). */
  sack?: readonly number[] | undefined;
}

/** Header length (bytes, a multiple of 4) for `f`'s options. */
export function headerLength(f: SegmentFields): number {
  let n = TCP_HEADER;
  if (f.synMss !== undefined) {
    n += 4; // MSS
    if (f.synSackPermitted) n += 2;
    if (f.tsVal !== undefined) n += f.synSackPermitted ? 10 : 12;
    else if (f.synSackPermitted) n += 2; // NOP NOP before SACK_PERM
    if (f.synWscale !== undefined) n += 4; // NOP + WS
  } else if (f.tsVal !== undefined) n += 12;
  if (f.sack !== undefined && f.sack.length > 0) n += 4 + 4 * f.sack.length;
  return n;
}

/**
 * Builds a segment: header (options in Linux's order: MSS, SACK_PERM, TS, NOP, WS) + payload
 * bytes copied by `fill(out, at)`, checksum over the pseudo-header `pseudo` (from
 * {@link pseudoHeaderSum} with length 0; the length is added here).
 */
export function buildSegment(f: SegmentFields, pseudo: number, payloadLength: number, fill?: (out: Uint8Array, at: number) => void): Uint8Array {
  const hl = headerLength(f);
  const out = new Uint8Array(hl + payloadLength);
  out[0] = f.srcPort >> 8;
  out[1] = f.srcPort;
  out[2] = f.dstPort >> 8;
  out[3] = f.dstPort;
  writeU32(out, 4, f.seq);
  writeU32(out, 8, f.ack);
  out[12] = (hl / 4) << 4;
  out[13] = f.flags;
  out[14] = f.window >> 8;
  out[15] = f.window;
  let i = TCP_HEADER;
  if (f.synMss !== undefined) {
    out[i++] = OPT_MSS;
    out[i++] = 4;
    out[i++] = f.synMss >> 8;
    out[i++] = f.synMss;
    if (f.synSackPermitted) {
      if (f.tsVal === undefined) {
        out[i++] = OPT_NOP;
        out[i++] = OPT_NOP;
      }
      out[i++] = OPT_SACK_PERM;
      out[i++] = 2;
    } else if (f.tsVal !== undefined) {
      out[i++] = OPT_NOP;
      out[i++] = OPT_NOP;
    }
    if (f.tsVal !== undefined) i = writeTimestamp(out, i, f.tsVal, f.tsEcr ?? 0);
    if (f.synWscale !== undefined) {
      out[i++] = OPT_NOP;
      out[i++] = OPT_WSCALE;
      out[i++] = 3;
      out[i++] = f.synWscale;
    }
  } else if (f.tsVal !== undefined) {
    out[i++] = OPT_NOP;
    out[i++] = OPT_NOP;
    i = writeTimestamp(out, i, f.tsVal, f.tsEcr ?? 0);
  }
  if (f.sack !== undefined && f.sack.length > 0) {
    out[i++] = OPT_NOP;
    out[i++] = OPT_NOP;
    out[i++] = OPT_SACK;
    out[i++] = 2 + 4 * f.sack.length;
    for (const edge of f.sack) {
      writeU32(out, i, edge);
      i += 4;
    }
  }
  if (fill !== undefined && payloadLength > 0) fill(out, hl);
  const sum = checksum(pseudo + out.length, out);
  out[16] = sum >> 8;
  out[17] = sum;
  return out;
}

function writeTimestamp(out: Uint8Array, i: number, val: number, ecr: number): number {
  out[i] = OPT_TIMESTAMP;
  out[i + 1] = 10;
  writeU32(out, i + 2, val);
  writeU32(out, i + 6, ecr);
  return i + 10;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}
