// The slow twin of CompiledPolicy (docs/STYLE.md item 10): a linear first-match scan over the
// rules, written from the matching semantics in docs/policy.md and nothing else.

import type { PolicyRule } from '../../src/policy/rules.js';

/** Packet classes as the compiled policy takes them. */
export type NaiveClass = 'tcp' | 'udp' | 'icmp' | 'other';

function contains(prefixIp: Uint8Array, cidr: number, addr: Uint8Array): boolean {
  if (prefixIp.length !== addr.length) return false;
  for (let bit = 0; bit < cidr; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((prefixIp[bit >> 3]! & mask) !== (addr[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** Index of the first rule matching, or -1. */
export function naiveMatch(rules: readonly PolicyRule[], src: Uint8Array, dst: Uint8Array, klass: NaiveClass, dport: number): number {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (!contains(r.source.ip, r.source.cidr, src) || !contains(r.destination.ip, r.destination.cidr, dst)) continue;
    if (r.protocol !== 'any' && r.protocol !== klass) continue;
    if (r.ports !== undefined && (!(klass === 'tcp' || klass === 'udp') || dport < r.ports.from || dport > r.ports.to)) continue;
    return i;
  }
  return -1;
}
