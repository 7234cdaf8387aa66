// End to end through packet reading: the first packet of each fresh flow gets the verdict of the
// naive first-match twin, for TCP, UDP, ICMP, fragments, truncated and other protocols.

import { describe, expect, it } from 'vitest';
import { formatIp } from '../../src/core/ip.js';
import { PolicyFilter } from '../../src/policy/filter.js';
import { parsePolicy } from '../../src/policy/rules.js';
import { prng } from '../helpers/prng.js';
import { naiveMatch, type NaiveClass } from './naive-policy.js';
import { SYN, packet } from './packets.js';
import { randomAddress, randomPort, randomRules } from './random-policy.js';

describe('PolicyFilter vs naive first match on real packets', () => {
  it('agrees on 20,000 fresh flows over 40 random rule sets', () => {
    const rnd = prng(0xf1175);
    let allowed = 0;
    for (let set = 0; set < 40; set++) {
      const policy = parsePolicy({ revision_id: set, rules: randomRules(rnd, 1 + Math.floor(rnd() * 120)) });
      const f = new PolicyFilter({ conntrackMax: 1 << 16 });
      f.apply(policy);
      for (let k = 0; k < 500; k++) {
        const family = rnd() < 0.75 ? 4 : 6;
        const src = randomAddress(rnd, family);
        const dst = randomAddress(rnd, family);
        const s = formatIp(src);
        const d = formatIp(dst);
        const sport = 1 + k; // a fresh flow every time
        const dport = randomPort(rnd);
        const kind = Math.floor(rnd() * 6);
        let p: Uint8Array;
        let klass: NaiveClass;
        if (kind === 0) [p, klass] = [packet(s, d, { kind: 'tcp', sport, dport, flags: SYN }), 'tcp'];
        else if (kind === 1) [p, klass] = [packet(s, d, { kind: 'udp', sport, dport }), 'udp'];
        else if (kind === 2) [p, klass] = [packet(s, d, { kind: 'icmp', type: family === 4 ? 8 : 128, id: sport }), 'icmp'];
        else if (kind === 3) [p, klass] = [packet(s, d, { kind: 'icmp', type: 3 }), 'icmp'];
        else if (kind === 4) {
          const opts = family === 4 ? { fragOffset: 100 } : { ext: [{ type: 44, fragOffset: 100 }] };
          [p, klass] = [packet(s, d, { kind: 'tcp', sport, dport }, opts), 'other'];
        } else [p, klass] = [packet(s, d, { kind: 'raw', proto: 47, bytes: new Uint8Array(4) }), 'other'];
        const rule = naiveMatch(policy.rules, src, dst, klass, klass === 'tcp' || klass === 'udp' ? dport : 0);
        const want = rule >= 0 && policy.rules[rule]!.action === 'allow';
        const got = rnd() < 0.5 ? f.outbound(p, k) : f.inbound(p, new Uint8Array(32), k);
        if (got !== want) expect({ set, k, s, d, kind, dport, got }).toEqual({ set, k, s, d, kind, dport, got: want });
        if (want) allowed++;
      }
    }
    expect(allowed).toBeGreaterThan(3000);
    expect(allowed).toBeLessThan(17_000);
  });
});
