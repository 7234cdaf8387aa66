// PolicyFilter: defaults, connection tracking (replies, reverse flows, timeouts, table full,
// RST/FIN), fragments, malformed and unknown packets, IPv6 extension headers, atomic updates.

import { describe, expect, it } from 'vitest';
import { PolicyFilter, type PolicyFilterOptions } from '../../src/policy/filter.js';
import { parsePolicy } from '../../src/policy/rules.js';
import { ACK, FIN, RST, SYN, icmp, packet, tcp, udp } from './packets.js';
import type { RawRule } from './random-policy.js';

const A = '10.100.0.1';
const B = '10.100.0.2';
const C = '10.100.0.3';
const KEY = new Uint8Array(32);

const SSH_A_TO_B: RawRule = { action: 'allow', protocol: 'tcp', source_cidr: `${A}/32`, destination_cidr: `${B}/32`, ports: { from: 22, to: 22 } };

function filterWith(rules: RawRule[], opts: PolicyFilterOptions = {}, rev = 'r1'): PolicyFilter {
  const f = new PolicyFilter(opts);
  f.apply(parsePolicy({ revision_id: rev, fingerprint: `fp-${rev}`, rules }));
  return f;
}

describe('defaults', () => {
  it('passes everything before any policy in mesh mode (default allow)', () => {
    const f = new PolicyFilter();
    expect(f.outbound(tcp(A, B, 1, 2), 0)).toBe(true);
    expect(f.inbound(new Uint8Array([1, 2, 3]), KEY, 0)).toBe(true);
    expect(f.snapshot().mode).toBe('default-allow');
  });

  it('drops everything as no-policy when the configured default is deny', () => {
    const f = new PolicyFilter({ defaultAction: 'deny' });
    expect(f.outbound(tcp(A, B, 1, 2), 0)).toBe(false);
    expect(f.inbound(udp(B, A, 1, 2), KEY, 0)).toBe(false);
    expect(f.dropCount('no-policy')).toBe(2);
  });

  it('denies what no rule matches once a policy is in force, even with no rules', () => {
    const f = filterWith([]);
    expect(f.outbound(tcp(A, B, 1000, 22, SYN), 0)).toBe(false);
    expect(f.dropCount('default-deny')).toBe(1);
  });

  it('rejects bad options', () => {
    expect(() => new PolicyFilter({ conntrackMax: 0 })).toThrow(RangeError);
    expect(() => new PolicyFilter({ defaultAction: 'maybe' as 'allow' })).toThrow(TypeError);
    expect(() => new PolicyFilter({ timeouts: { udpNew: -1 } })).toThrow(RangeError);
  });
});

describe('connection tracking: TCP', () => {
  it('A -> B:22 opens; B replies; B cannot open a connection to A; C reaches nothing', () => {
    // Seen from A's device: A's packets are outbound, B's inbound.
    const a = filterWith([SSH_A_TO_B]);
    expect(a.outbound(tcp(A, B, 40000, 22, SYN), 0)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 40000, SYN | ACK), KEY, 1)).toBe(true);
    expect(a.outbound(tcp(A, B, 40000, 22, ACK), 2)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 40000, ACK), KEY, 3)).toBe(true);
    expect(a.inbound(tcp(B, A, 40001, 22, SYN), KEY, 4)).toBe(false); // B opening to A:22
    expect(a.inbound(tcp(B, A, 22, 40001, ACK), KEY, 4)).toBe(false); // a "reply" to no flow
    expect(a.inbound(tcp(C, A, 22, 40000, ACK), KEY, 4)).toBe(false); // C spoofing a reply
    expect(a.dropCount('default-deny')).toBe(3);
    // Seen from B's device: the same flow arrives inbound and B's replies go outbound.
    const b = filterWith([SSH_A_TO_B]);
    expect(b.inbound(tcp(A, B, 40000, 22, SYN), KEY, 0)).toBe(true);
    expect(b.outbound(tcp(B, A, 22, 40000, SYN | ACK), 1)).toBe(true);
    expect(b.outbound(tcp(B, A, 40002, 22, SYN), 2)).toBe(false);
    const s = b.snapshot();
    expect(s.accepted).toEqual({ outbound: 1, inbound: 1, tracked: 1 });
    expect(s.rules[0]).toMatchObject({ index: 0, source: '10.100.0.1/32', ports: '22', packets: 1 });
    expect(s.conntrack.byState['tcp-established']).toBe(1);
  });

  it('a reply must travel the other way: the same tuple reversed but outbound is a new flow', () => {
    const a = filterWith([SSH_A_TO_B]);
    expect(a.outbound(tcp(A, B, 40000, 22, SYN), 0)).toBe(true);
    expect(a.outbound(tcp(B, A, 22, 40000, SYN | ACK), 1)).toBe(false);
  });

  it('an inbound packet with an outbound flow\'s own tuple is not that flow: the rules decide it', () => {
    const a = filterWith([SSH_A_TO_B]);
    expect(a.outbound(tcp(A, B, 40000, 22, SYN), 0)).toBe(true);
    // Same source, destination and ports, but arriving from the tunnel: a new flow, matched
    // against the rules (counted by the rule, not as a tracked packet) and tracked on its own.
    expect(a.inbound(tcp(A, B, 40000, 22, ACK), KEY, 1)).toBe(true);
    let s = a.snapshot();
    expect(s.accepted).toEqual({ outbound: 1, inbound: 1, tracked: 0 });
    expect(s.rules[0]!.packets).toBe(2);
    expect(s.conntrack.entries).toBe(2);
    // Under a revision that allows nothing, such a packet is denied by the rules, not treated as
    // a packet of the (now revoked) outbound flow.
    const b = filterWith([SSH_A_TO_B]);
    expect(b.outbound(tcp(A, B, 40000, 22, SYN), 0)).toBe(true);
    b.apply(parsePolicy({ revision_id: 'r2', fingerprint: 'fp-r2', rules: [] }));
    expect(b.inbound(tcp(A, B, 40000, 22, ACK), KEY, 1)).toBe(false);
    expect([b.dropCount('default-deny'), b.dropCount('revoked')]).toEqual([1, 0]);
    s = b.snapshot();
    expect(s.conntrack.entries).toBe(1); // the outbound flow is untouched until its own next packet
  });

  it('times out a SYN nobody answered and an established flow left idle', () => {
    const a = filterWith([SSH_A_TO_B], { timeouts: { tcpSynSent: 1000, tcpEstablished: 5000 } });
    a.outbound(tcp(A, B, 1, 22, SYN), 0);
    expect(a.inbound(tcp(B, A, 22, 1, SYN | ACK), KEY, 1000)).toBe(false);
    a.outbound(tcp(A, B, 2, 22, SYN), 0);
    expect(a.inbound(tcp(B, A, 22, 2, SYN | ACK), KEY, 999)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 2, ACK), KEY, 5998)).toBe(true); // refreshed at 999
    expect(a.inbound(tcp(B, A, 22, 2, ACK), KEY, 10998)).toBe(false);
    expect(a.snapshot().conntrack.expired).toBe(2);
  });

  it('RST ends the flow at once; FIN moves it to the short closing timeout', () => {
    const a = filterWith([SSH_A_TO_B], { timeouts: { tcpClosing: 2000 } });
    a.outbound(tcp(A, B, 1, 22, SYN), 0);
    a.inbound(tcp(B, A, 22, 1, SYN | ACK), KEY, 0);
    expect(a.inbound(tcp(B, A, 22, 1, RST), KEY, 10)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 1, ACK), KEY, 11)).toBe(false);

    a.outbound(tcp(A, B, 2, 22, SYN), 0);
    a.inbound(tcp(B, A, 22, 2, SYN | ACK), KEY, 0);
    expect(a.outbound(tcp(A, B, 2, 22, FIN | ACK), 100)).toBe(true);
    expect(a.snapshot().conntrack.byState['tcp-closing']).toBe(1);
    expect(a.inbound(tcp(B, A, 22, 2, FIN | ACK), KEY, 2000)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 2, ACK), KEY, 4001)).toBe(false);
    // An allowed RST with no flow passes without creating one.
    expect(a.outbound(tcp(A, B, 3, 22, RST), 5000)).toBe(true);
    expect(a.inbound(tcp(B, A, 22, 3, ACK), KEY, 5001)).toBe(false);
  });

  it('picks up an allowed flow mid-stream (e.g. after a restart) so its replies pass', () => {
    const b = filterWith([SSH_A_TO_B]);
    expect(b.inbound(tcp(A, B, 5, 22, ACK), KEY, 0)).toBe(true);
    expect(b.outbound(tcp(B, A, 22, 5, ACK), 1)).toBe(true);
  });
});

describe('connection tracking: UDP and ICMP echo', () => {
  const DNS: RawRule = { action: 'allow', protocol: 'udp', source_cidr: '10.100.0.0/16', destination_cidr: `${B}/32`, ports: { from: 53, to: 53 } };

  it('UDP replies pass until the timeout; a reply makes the flow assured (longer timeout)', () => {
    const a = filterWith([DNS], { timeouts: { udpNew: 1000, udpAssured: 10_000 } });
    expect(a.outbound(udp(A, B, 5353, 53), 0)).toBe(true);
    expect(a.inbound(udp(B, A, 53, 5353), KEY, 999)).toBe(true);
    expect(a.inbound(udp(B, A, 53, 5353), KEY, 10_998)).toBe(true);
    expect(a.inbound(udp(B, A, 53, 5353), KEY, 20_999)).toBe(false);
    expect(a.outbound(udp(A, B, 5354, 53), 30_000)).toBe(true);
    expect(a.inbound(udp(B, A, 53, 5354), KEY, 31_000)).toBe(false); // unreplied: 1 s
    expect(a.inbound(udp(B, A, 53, 9999), KEY, 31_000)).toBe(false);
  });

  it('ICMP echo replies pass by id; other ids and reverse pings do not', () => {
    const a = filterWith([{ action: 'allow', protocol: 'icmp', source_cidr: `${A}/32`, destination_cidr: '10.100.0.0/16' }]);
    expect(a.outbound(icmp(A, B, 8, 7), 0)).toBe(true);
    expect(a.inbound(icmp(B, A, 0, 7), KEY, 1)).toBe(true);
    expect(a.inbound(icmp(B, A, 0, 8), KEY, 1)).toBe(false);
    expect(a.inbound(icmp(B, A, 8, 7), KEY, 1)).toBe(false);
    expect(a.inbound(icmp(B, A, 3, 0), KEY, 1)).toBe(false); // an unsolicited error: not related tracking
    expect(a.inbound(icmp(B, A, 0, 7), KEY, 30_001)).toBe(false);
  });

  it('ICMPv6 echo is `icmp` too', () => {
    const a = filterWith([{ action: 'allow', protocol: 'icmp', source_cidr: 'fd00::1/128', destination_cidr: 'fd00::/64' }]);
    expect(a.outbound(icmp('fd00::1', 'fd00::2', 128, 9), 0)).toBe(true);
    expect(a.inbound(icmp('fd00::2', 'fd00::1', 129, 9), KEY, 1)).toBe(true);
    expect(a.inbound(icmp('fd00::2', 'fd00::1', 128, 9), KEY, 1)).toBe(false);
  });
});

describe('a full table', () => {
  it('drops new flows as conntrack-full while every entry is live, takes them again after expiry', () => {
    const a = filterWith([{ action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0' }], {
      conntrackMax: 4,
      timeouts: { udpNew: 1000 },
    });
    for (let p = 1; p <= 4; p++) expect(a.outbound(udp(A, B, p, 53), 0)).toBe(true);
    expect(a.outbound(udp(A, B, 5, 53), 500)).toBe(false);
    expect(a.dropCount('conntrack-full')).toBe(1);
    // Existing flows are unaffected.
    expect(a.inbound(udp(B, A, 53, 4), KEY, 500)).toBe(true);
    expect(a.outbound(udp(A, B, 6, 53), 1000)).toBe(true); // flows 1-3 expired and are reclaimed
    expect(a.snapshot().conntrack).toMatchObject({ entries: 2, max: 4, created: 5, expired: 3 });
  });

  it('stays bounded under 100,000 distinct flows', () => {
    const a = filterWith([{ action: 'allow', protocol: 'udp', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0' }], { conntrackMax: 1000 });
    let passed = 0;
    for (let i = 0; i < 100_000; i++) if (a.outbound(udp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, B, 1 + (i % 60000), 53), i / 100)) passed++;
    const s = a.snapshot();
    expect(s.conntrack.entries).toBeLessThanOrEqual(1000);
    expect(passed + s.drops['conntrack-full']).toBe(100_000);
    expect(s.drops['conntrack-full']).toBeGreaterThan(0);
  });
});

describe('fragments, malformed and unknown packets', () => {
  const ALLOW_TCP: RawRule = { action: 'allow', protocol: 'tcp', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0' };
  const ALLOW_ANY: RawRule = { action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0' };
  const ALLOW_ANY_PORTS: RawRule = { ...ALLOW_ANY, ports: { from: 0, to: 65535 } };

  it('drops non-first fragments unless an `any` rule without ports allows them; first fragments are L4', () => {
    const t = filterWith([ALLOW_TCP, ALLOW_ANY_PORTS]);
    expect(t.outbound(tcp(A, B, 1, 2, SYN, { fragOffset: 0, moreFragments: true }), 0)).toBe(true);
    expect(t.outbound(tcp(A, B, 1, 2, ACK, { fragOffset: 10 }), 0)).toBe(false);
    expect(t.outbound(tcp('fd00::1', 'fd00::2', 1, 2, ACK, { ext: [{ type: 44, fragOffset: 5 }] }), 0)).toBe(false);
    expect(t.outbound(tcp('fd00::1', 'fd00::2', 1, 2, SYN, { ext: [{ type: 44, fragOffset: 0 }] }), 0)).toBe(false); // v6 rule absent
    expect(t.dropCount('fragment')).toBe(2);
    const any = filterWith([ALLOW_ANY, { ...ALLOW_ANY, source_cidr: '::/0', destination_cidr: '::/0' }]);
    expect(any.outbound(tcp(A, B, 1, 2, ACK, { fragOffset: 10 }), 0)).toBe(true);
    expect(any.outbound(tcp('fd00::1', 'fd00::2', 1, 2, ACK, { ext: [{ type: 44, fragOffset: 5 }] }), 0)).toBe(true);
  });

  it('drops truncated L4 headers and unknown protocols unless `any` allows them', () => {
    const t = filterWith([ALLOW_TCP, { ...ALLOW_TCP, protocol: 'udp' }, { ...ALLOW_TCP, protocol: 'icmp' }, ALLOW_ANY_PORTS]);
    const short = tcp(A, B, 1, 2).subarray(0, 30).slice();
    short[3] = 30;
    expect(t.outbound(short, 0)).toBe(false);
    const gre = packet(A, B, { kind: 'raw', proto: 47, bytes: new Uint8Array(8) });
    expect(t.outbound(gre, 0)).toBe(false);
    const shortIcmp = packet(A, B, { kind: 'raw', proto: 1, bytes: new Uint8Array(4) });
    expect(t.outbound(shortIcmp, 0)).toBe(false);
    const badOffset = tcp(A, B, 1, 2);
    badOffset[20 + 12] = 4 << 4; // data offset below 5 words
    expect(t.outbound(badOffset, 0)).toBe(false);
    expect(t.snapshot().drops).toMatchObject({ 'truncated-l4': 3, 'unknown-protocol': 1 });
    const any = filterWith([ALLOW_ANY]);
    expect(any.outbound(short, 0)).toBe(true);
    expect(any.outbound(gre, 0)).toBe(true);
    expect(any.inbound(gre, KEY, 0)).toBe(true); // untracked: every packet is judged by the rules
  });

  it('always drops unreadable IP headers as malformed-ip, even with an `any` rule', () => {
    const any = filterWith([ALLOW_ANY]);
    const p = tcp(A, B, 1, 2);
    const cases = [new Uint8Array(0), p.subarray(0, 19), Uint8Array.of(0x50, ...p.subarray(1)), Uint8Array.of(0x44, ...p.subarray(1))];
    const long = p.slice();
    long[3] = 200; // total length past the buffer
    cases.push(long, packet('fd00::1', 'fd00::2', { kind: 'udp', sport: 1, dport: 2 }).subarray(0, 39));
    for (const c of cases) expect(any.outbound(c, 0)).toBe(false);
    expect(any.dropCount('malformed-ip')).toBe(cases.length);
  });

  it('walks IPv6 extension headers (hop-by-hop, routing, destination options, AH, fragment) to the L4 header', () => {
    const f = filterWith([{ action: 'allow', protocol: 'tcp', source_cidr: 'fd00::/64', destination_cidr: 'fd00::2/128', ports: { from: 443, to: 443 } }]);
    const ext = [{ type: 0 }, { type: 43 }, { type: 60 }, { type: 51 }, { type: 44, fragOffset: 0 }, { type: 60 }];
    expect(f.outbound(tcp('fd00::1', 'fd00::2', 5, 443, SYN, { ext }), 0)).toBe(true);
    expect(f.inbound(tcp('fd00::2', 'fd00::1', 443, 5, SYN | ACK, { ext: [{ type: 60 }] }), KEY, 1)).toBe(true);
    expect(f.outbound(tcp('fd00::1', 'fd00::2', 6, 444, SYN, { ext }), 0)).toBe(false);
    // Nine headers exceed the walk bound; a header running past the packet is no better.
    const nine = Array.from({ length: 9 }, () => ({ type: 60 }));
    expect(f.outbound(tcp('fd00::1', 'fd00::2', 7, 443, SYN, { ext: nine }), 0)).toBe(false);
    const cut = tcp('fd00::1', 'fd00::2', 8, 443, SYN, { ext: [{ type: 60 }] });
    cut[41] = 200; // length byte of the destination options header
    expect(f.outbound(cut, 0)).toBe(false);
    expect(f.dropCount('ext-header')).toBe(2);
    const any = filterWith([{ action: 'allow', protocol: 'any', source_cidr: '::/0', destination_cidr: '::/0' }]);
    expect(any.outbound(tcp('fd00::1', 'fd00::2', 7, 443, SYN, { ext: nine }), 0)).toBe(true);
  });
});

describe('atomic policy updates', () => {
  it('cuts established flows the new revision denies, keeps the ones it allows, on their next packet', () => {
    const WEB: RawRule = { ...SSH_A_TO_B, ports: { from: 443, to: 443 } };
    const a = filterWith([SSH_A_TO_B, WEB]);
    a.outbound(tcp(A, B, 1, 22, SYN), 0);
    a.inbound(tcp(B, A, 22, 1, SYN | ACK), KEY, 0);
    a.outbound(tcp(A, B, 2, 443, SYN), 0);
    a.inbound(tcp(B, A, 443, 2, SYN | ACK), KEY, 0);
    expect(a.snapshot().rules.map((r) => r.packets)).toEqual([1, 1]);

    a.apply(parsePolicy({ revision_id: 'r2', fingerprint: 'fp-r2', rules: [WEB] }));
    const s = a.snapshot();
    expect([s.revisionId, s.fingerprint, s.revisionsApplied, s.rules.length, s.rules[0]!.packets]).toEqual(['r2', 'fp-r2', 2, 1, 0]);
    expect(a.inbound(tcp(B, A, 22, 1, ACK), KEY, 1)).toBe(false); // a reply of the cut flow
    expect(a.dropCount('revoked')).toBe(1);
    expect(a.outbound(tcp(A, B, 1, 22, ACK), 2)).toBe(false); // gone: now a new flow, denied
    expect(a.dropCount('default-deny')).toBe(1);
    expect(a.inbound(tcp(B, A, 443, 2, ACK), KEY, 1)).toBe(true);
    expect(a.outbound(tcp(A, B, 2, 443, ACK), 1)).toBe(true);
    expect(a.snapshot().conntrack.entries).toBe(1);
  });

  it('a deny rule placed first in the new revision cuts a flow that a later rule still allows', () => {
    const a = filterWith([SSH_A_TO_B]);
    a.outbound(tcp(A, B, 1, 22, SYN), 0);
    a.apply(parsePolicy({ revision_id: 2, rules: [{ ...SSH_A_TO_B, action: 'deny' }, SSH_A_TO_B] }));
    expect(a.inbound(tcp(B, A, 22, 1, SYN | ACK), KEY, 1)).toBe(false);
    expect(a.snapshot().rules[0]!.packets).toBe(1);
  });
});

describe('hostile input', () => {
  it('never throws on 100,000 random and mutated packets, and counts every drop', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const f = filterWith([
      { action: 'allow', protocol: 'any', source_cidr: '10.0.0.0/8', destination_cidr: '10.0.0.0/8', ports: { from: 1, to: 1000 } },
      { action: 'allow', protocol: 'icmp', source_cidr: '::/0', destination_cidr: '::/0' },
      { action: 'deny', protocol: 'udp', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0' },
    ], { conntrackMax: 256 });
    const seeds = [tcp(A, B, 1, 22, SYN), udp(A, B, 1, 53), icmp('fd00::1', 'fd00::2', 128, 1), tcp('fd00::1', 'fd00::2', 1, 2, SYN, { ext: [{ type: 0 }, { type: 44 }] })];
    let passed = 0;
    for (let i = 0; i < 100_000; i++) {
      let p: Uint8Array;
      if (i % 2 === 0) {
        p = new Uint8Array(Math.floor(rnd() * 100));
        for (let k = 0; k < p.length; k++) p[k] = rnd() * 256;
        if (p.length > 0) p[0] = (rnd() < 0.5 ? 0x40 : 0x60) | (p[0]! & 0x0f);
      } else {
        p = seeds[i % seeds.length]!.slice(0, rnd() < 0.2 ? Math.floor(rnd() * 80) : undefined);
        for (let k = 0; k < 3; k++) if (p.length > 0) p[Math.floor(rnd() * p.length)] = rnd() * 256;
      }
      if (i % 3 === 0 ? f.outbound(p, i) : f.inbound(p, KEY, i)) passed++;
    }
    const s = f.snapshot();
    const dropped = Object.values(s.drops).reduce((a, b) => a + b, 0);
    expect(passed + dropped).toBe(100_000);
    expect(s.accepted.outbound + s.accepted.inbound).toBe(passed);
    expect(s.drops['malformed-ip']).toBeGreaterThan(1000);
  });
});
