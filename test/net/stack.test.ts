// The sans-IO NetStack: IP parsing against hand-built packets, ICMP/ICMPv6 echo replies with
// valid checksums, UDP demux and checksum rules, and a fuzz of hostile inbound packets that must
// be dropped and counted (never thrown), with the stack's state bounded.

import { describe, expect, it } from 'vitest';
import { parseIp } from '../../src/core/ip.js';
import { checksum, transportChecksum } from '../../src/net/checksum.js';
import { buildIpPacket, parseIpPacket, PROTO_ICMP, PROTO_ICMPV6, PROTO_UDP } from '../../src/net/ip-packet.js';
import { NET_DROP_REASONS, NetStack } from '../../src/net/stack.js';
import { prng } from '../helpers/prng.js';

const A4 = parseIp('10.1.0.1')!;
const B4 = parseIp('10.1.0.2')!;
const A6 = parseIp('fd01::1')!;
const B6 = parseIp('fd01::2')!;

function stack(): { s: NetStack; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const s = new NetStack({ addresses: [A4, A6], send: (p) => sent.push(p), random: (n) => new Uint8Array(n).fill(7) });
  return { s, sent };
}

function udp(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, body: Uint8Array, fix = true): Uint8Array {
  const d = new Uint8Array(8 + body.length);
  d[0] = sport >> 8;
  d[1] = sport & 0xff;
  d[2] = dport >> 8;
  d[3] = dport & 0xff;
  d[4] = d.length >> 8;
  d[5] = d.length & 0xff;
  d.set(body, 8);
  if (fix) {
    const c = transportChecksum(src, dst, PROTO_UDP, d);
    d[6] = c >> 8;
    d[7] = c & 0xff;
  }
  return buildIpPacket(src, dst, PROTO_UDP, d, 1);
}

function echoRequest(src: Uint8Array, dst: Uint8Array): Uint8Array {
  const v6 = src.length === 16;
  const m = new Uint8Array([v6 ? 128 : 8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3]);
  const c = v6 ? transportChecksum(src, dst, PROTO_ICMPV6, m) : checksum(0, m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return buildIpPacket(src, dst, v6 ? PROTO_ICMPV6 : PROTO_ICMP, m, 9);
}

describe('NetStack', () => {
  it('answers ICMP and ICMPv6 echo with a verifying reply to the sender', () => {
    for (const [src, dst] of [[B4, A4], [B6, A6]] as const) {
      const { s, sent } = stack();
      s.input(echoRequest(src, dst), 0);
      expect(sent).toHaveLength(1);
      const ip = parseIpPacket(sent[0]!);
      if (typeof ip === 'string') throw new Error(ip);
      expect([...ip.dst]).toEqual([...src]);
      expect(ip.payload[0]).toBe(src.length === 4 ? 0 : 129);
      const ok = src.length === 4 ? checksum(0, ip.payload) : transportChecksum(ip.src, ip.dst, PROTO_ICMPV6, ip.payload);
      expect(ok).toBe(0);
      expect([...ip.payload.subarray(4)]).toEqual([0x12, 0x34, 0, 1, 1, 2, 3]);
    }
  });

  it('delivers UDP to the bound port and counts bad checksums, unbound ports and foreign destinations', () => {
    const { s, sent } = stack();
    const got: string[] = [];
    const ep = s.udpBind(53, (data, from) => void got.push(`${new TextDecoder().decode(data)}@${from.port}`));
    s.input(udp(B4, A4, 999, 53, new TextEncoder().encode('q')), 0);
    s.input(udp(B6, A6, 998, 53, new TextEncoder().encode('q6')), 0);
    expect(got).toEqual(['q@999', 'q6@998']);
    const bad = udp(B4, A4, 999, 53, new Uint8Array([1]));
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 1;
    s.input(bad, 0);
    s.input(udp(B4, A4, 999, 54, new Uint8Array(1)), 0);
    s.input(udp(B4, B4, 999, 53, new Uint8Array(1)), 0);
    s.input(udp(B6, A6, 999, 53, new Uint8Array(1), false), 0); // zero checksum: invalid over IPv6
    s.input(udp(B4, A4, 999, 53, new Uint8Array(1), false), 0); // zero checksum: "none" over IPv4
    expect(s.counters).toMatchObject({ 'udp-checksum': 2, 'udp-no-socket': 1, 'ip-not-for-us': 1, udpIn: 3 });
    ep.send(new Uint8Array([5]), { ip: B6, port: 7 });
    const out = parseIpPacket(sent[0]!);
    if (typeof out === 'string') throw new Error(out);
    expect(transportChecksum(out.src, out.dst, PROTO_UDP, out.payload)).toBe(0);
    expect(() => ep.send(new Uint8Array(1500), { ip: B4, port: 7 })).toThrow(RangeError);
    expect(() => s.udpBind(53, () => {})).toThrow(RangeError);
  });

  it('drops truncated, fragmented and corrupted IP headers with their reasons', () => {
    const { s } = stack();
    const good = udp(B4, A4, 1, 53, new Uint8Array(4));
    s.input(good.subarray(0, 10), 0);
    const badSum = good.slice();
    badSum[8] = 1; // TTL changed, checksum not
    s.input(badSum, 0);
    const frag = buildIpPacket(B4, A4, PROTO_UDP, new Uint8Array(8), 1);
    frag[6] = 0x20; // MF
    const c = checksum(0, frag.fill(0, 10, 12).subarray(0, 20));
    frag[10] = c >> 8;
    frag[11] = c & 0xff;
    s.input(frag, 0);
    s.input(new Uint8Array([0x75, 0, 0]), 0);
    s.input(buildIpPacket(B4, A4, 99, new Uint8Array(4), 1), 0);
    expect(s.counters).toMatchObject({ 'ip-short': 1, 'ip-checksum': 1, 'ip-fragment': 1, 'ip-version': 1, 'ip-protocol': 1 });
  });

  it('survives 100,000 random and mutated packets: every one counted, nothing thrown, state bounded', () => {
    const { s, sent } = stack();
    s.udpBind(53, () => {});
    s.tcp.listen(80, { mss: 1360, backlog: 16 }, () => {});
    const rnd = prng(22);
    const seeds = [udp(B4, A4, 1, 53, new Uint8Array(20)), udp(B6, A6, 1, 53, new Uint8Array(20)), echoRequest(B4, A4), echoRequest(B6, A6)];
    for (let i = 0; i < 100_000; i++) {
      let p: Uint8Array;
      if (i % 4 === 0) {
        p = new Uint8Array(Math.floor(rnd() * 120));
        for (let j = 0; j < p.length; j++) p[j] = Math.floor(rnd() * 256);
        p[0] = (p[0]! & 0x0f) | (rnd() < 0.5 ? 0x40 : 0x60);
      } else {
        p = seeds[i % seeds.length]!.slice(0, 1 + Math.floor(rnd() * 80));
        for (let k = 0; k < 3; k++) p[Math.floor(rnd() * p.length)] = Math.floor(rnd() * 256);
      }
      s.input(p, i);
      sent.length = 0;
    }
    const c = s.counters;
    const drops = NET_DROP_REASONS.reduce((n, r) => n + c[r], 0);
    expect(c.packetsIn).toBe(100_000);
    expect(drops).toBeGreaterThan(90_000);
    expect(s.tcp.connectionCount).toBeLessThanOrEqual(16);
  });
});
