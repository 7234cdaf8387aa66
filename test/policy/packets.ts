// Builds IPv4/IPv6 packets with TCP, UDP, ICMP or other payloads for the policy tests, including
// fragments and IPv6 extension headers. Checksums are left zero: the filter does not read them.

import { parseIp } from '../../src/core/ip.js';

/** What to put above IP. */
export type L4 =
  | { kind: 'tcp'; sport: number; dport: number; flags?: number; payload?: number }
  | { kind: 'udp'; sport: number; dport: number; payload?: number }
  | { kind: 'icmp'; type: number; id?: number }
  | { kind: 'raw'; proto: number; bytes: Uint8Array };

/** Extra IP-layer options for a packet. */
export interface IpOptions {
  /** IPv4 fragment offset in 8-byte units (non-zero: a non-first fragment). */
  fragOffset?: number;
  /** IPv4 "more fragments". */
  moreFragments?: boolean;
  /** IPv4 header options length in bytes (multiple of 4). */
  ipv4Options?: number;
  /** IPv6 extension headers, in order: next-header numbers (0, 43, 60, 51, 44). */
  ext?: Array<{ type: number; fragOffset?: number }>;
}

export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const ACK = 0x10;

function l4Bytes(l4: L4, v6: boolean): { proto: number; bytes: Uint8Array } {
  switch (l4.kind) {
    case 'tcp': {
      const b = new Uint8Array(20 + (l4.payload ?? 0));
      b[0] = l4.sport >> 8;
      b[1] = l4.sport & 0xff;
      b[2] = l4.dport >> 8;
      b[3] = l4.dport & 0xff;
      b[12] = 5 << 4;
      b[13] = l4.flags ?? ACK;
      return { proto: 6, bytes: b };
    }
    case 'udp': {
      const b = new Uint8Array(8 + (l4.payload ?? 0));
      b[0] = l4.sport >> 8;
      b[1] = l4.sport & 0xff;
      b[2] = l4.dport >> 8;
      b[3] = l4.dport & 0xff;
      b[5] = b.length & 0xff;
      b[4] = b.length >> 8;
      return { proto: 17, bytes: b };
    }
    case 'icmp': {
      const b = new Uint8Array(16);
      b[0] = l4.type;
      b[4] = (l4.id ?? 0) >> 8;
      b[5] = (l4.id ?? 0) & 0xff;
      return { proto: v6 ? 58 : 1, bytes: b };
    }
    case 'raw':
      return { proto: l4.proto, bytes: l4.bytes };
  }
}

/** A packet from `src` to `dst` (same family) carrying `l4`. */
export function packet(src: string, dst: string, l4: L4, opts: IpOptions = {}): Uint8Array {
  const s = parseIp(src);
  const d = parseIp(dst);
  if (s === undefined || d === undefined || s.length !== d.length) throw new RangeError(`bad addresses ${src} ${dst}`);
  const v6 = s.length === 16;
  const { proto, bytes } = l4Bytes(l4, v6);
  if (!v6) {
    const ihl = 20 + (opts.ipv4Options ?? 0);
    const p = new Uint8Array(ihl + bytes.length);
    p[0] = 0x40 | (ihl / 4);
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    const frag = ((opts.moreFragments === true ? 0x2000 : 0) | (opts.fragOffset ?? 0)) & 0xffff;
    p[6] = frag >> 8;
    p[7] = frag & 0xff;
    p[8] = 64;
    p[9] = proto;
    p.set(s, 12);
    p.set(d, 16);
    p.set(bytes, ihl);
    return p;
  }
  const ext = opts.ext ?? [];
  const extLen = ext.reduce((n, e) => n + (e.type === 51 ? 16 : e.type === 44 ? 8 : 8), 0);
  const p = new Uint8Array(40 + extLen + bytes.length);
  p[0] = 0x60;
  const payload = extLen + bytes.length;
  p[4] = payload >> 8;
  p[5] = payload & 0xff;
  p[6] = ext.length > 0 ? ext[0]!.type : proto;
  p[7] = 64;
  p.set(s, 8);
  p.set(d, 24);
  let at = 40;
  ext.forEach((e, i) => {
    p[at] = i + 1 < ext.length ? ext[i + 1]!.type : proto;
    if (e.type === 44) {
      const off = (e.fragOffset ?? 0) << 3;
      p[at + 2] = off >> 8;
      p[at + 3] = off & 0xff;
      at += 8;
    } else if (e.type === 51) {
      p[at + 1] = 2; // (2 + 2) * 4 = 16 bytes
      at += 16;
    } else {
      p[at + 1] = 0; // 8 bytes
      at += 8;
    }
  });
  p.set(bytes, at);
  return p;
}

/** Shorthands. */
export const tcp = (src: string, dst: string, sport: number, dport: number, flags = ACK, opts?: IpOptions): Uint8Array =>
  packet(src, dst, { kind: 'tcp', sport, dport, flags }, opts);
export const udp = (src: string, dst: string, sport: number, dport: number, opts?: IpOptions): Uint8Array =>
  packet(src, dst, { kind: 'udp', sport, dport }, opts);
export const icmp = (src: string, dst: string, type: number, id = 0, opts?: IpOptions): Uint8Array =>
  packet(src, dst, { kind: 'icmp', type, id }, opts);
