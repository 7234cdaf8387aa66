// CompiledPolicy against the naive linear first-match twin: 100,000 seeded random packets over
// random rule sets (sizes crossing the 32-rule word boundaries), then edge cases by hand.

import { describe, expect, it } from 'vitest';
import { parseIp } from '../../src/core/ip.js';
import { CompiledPolicy } from '../../src/policy/compiled-policy.js';
import { CLASS_ICMP, CLASS_OTHER, CLASS_TCP, CLASS_UDP } from '../../src/policy/packet-meta.js';
import { parsePolicy } from '../../src/policy/rules.js';
import { prng } from '../helpers/prng.js';
import { naiveMatch, type NaiveClass } from './naive-policy.js';
import { randomAddress, randomPort, randomRules, type RawRule } from './random-policy.js';

const CLASSES: Array<[NaiveClass, number]> = [
  ['tcp', CLASS_TCP],
  ['udp', CLASS_UDP],
  ['icmp', CLASS_ICMP],
  ['other', CLASS_OTHER],
];

function compile(rules: RawRule[]): CompiledPolicy {
  return new CompiledPolicy(parsePolicy({ revision_id: 'r1', fingerprint: 'f', rules }));
}

describe('CompiledPolicy vs naive first match', () => {
  it('agrees on 100,000 random packets over 1,000 random rule sets', () => {
    const rnd = prng(0x7011c7);
    const addr = new Uint8Array(32);
    let cases = 0;
    let matched = 0;
    const ruleIndexes = new Set<number>();
    for (let set = 0; set < 1000; set++) {
      const n = set % 50 === 0 ? 300 : Math.floor(rnd() * 100);
      const compiled = compile(randomRules(rnd, n));
      const rules = compiled.policy.rules;
      for (let k = 0; k < 100; k++) {
        const family = rnd() < 0.75 ? 4 : 6;
        const src = randomAddress(rnd, family);
        const dst = randomAddress(rnd, family);
        const [name, klass] = CLASSES[Math.floor(rnd() * 4)]!;
        const dport = name === 'tcp' || name === 'udp' ? randomPort(rnd) : 0;
        addr.set(src, 0);
        addr.set(dst, 16);
        const want = naiveMatch(rules, src, dst, name, dport);
        const got = compiled.match(family, addr, 0, 16, klass, dport);
        if (got !== want) expect({ set, k, family, src, dst, name, dport, got }).toEqual({ set, k, family, src, dst, name, dport, got: want });
        cases++;
        if (want >= 0) {
          matched++;
          ruleIndexes.add(want);
        }
      }
    }
    expect(cases).toBe(100_000);
    // The generator must exercise both outcomes and rules past the first words.
    expect(matched).toBeGreaterThan(20_000);
    expect(cases - matched).toBeGreaterThan(10_000);
    expect(Math.max(...ruleIndexes)).toBeGreaterThan(64);
  });

  it('first match wins: an earlier deny shadows a later allow and vice versa', () => {
    const c = compile([
      { action: 'deny', protocol: 'tcp', source_cidr: '10.0.0.1/32', destination_cidr: '10.0.0.0/24', ports: { from: 22, to: 22 } },
      { action: 'allow', protocol: 'any', source_cidr: '10.0.0.0/8', destination_cidr: '0.0.0.0/0' },
    ]);
    const a = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 9]);
    expect(c.match(4, a, 0, 4, CLASS_TCP, 22)).toBe(0);
    expect(c.match(4, a, 0, 4, CLASS_TCP, 23)).toBe(1);
    expect(c.match(4, a, 0, 4, CLASS_OTHER, 0)).toBe(1);
  });

  it('finds rule 40 and rule 9,999 (beyond the first bitset word)', () => {
    const rules: RawRule[] = [];
    for (let i = 0; i < 10_000; i++) rules.push({ action: 'deny', protocol: 'udp', source_cidr: `10.1.${i >> 8}.${i & 255}/32`, destination_cidr: '10.2.0.0/16' });
    rules[40] = { action: 'allow', protocol: 'tcp', source_cidr: '10.9.0.0/16', destination_cidr: '10.2.0.5/32', ports: { from: 443, to: 443 } };
    const c = compile(rules);
    const a = new Uint8Array(8);
    a.set(parseIp('10.9.3.3')!, 0);
    a.set(parseIp('10.2.0.5')!, 4);
    expect(c.match(4, a, 0, 4, CLASS_TCP, 443)).toBe(40);
    expect(c.match(4, a, 0, 4, CLASS_TCP, 444)).toBe(-1);
    a.set(parseIp('10.1.39.15')!, 0);
    expect(c.match(4, a, 0, 4, CLASS_UDP, 9)).toBe(9_999);
  });

  it('matches nothing with no rules, and never crosses families', () => {
    expect(compile([]).match(4, new Uint8Array(8), 0, 4, CLASS_OTHER, 0)).toBe(-1);
    const c = compile([{ action: 'allow', protocol: 'any', source_cidr: '::/0', destination_cidr: '::/0' }]);
    expect(c.match(4, new Uint8Array(8), 0, 4, CLASS_OTHER, 0)).toBe(-1);
    expect(c.match(6, new Uint8Array(32), 0, 16, CLASS_OTHER, 0)).toBe(0);
  });
});
