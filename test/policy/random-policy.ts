// Seeded random rule sets and addresses that overlap a lot (few base addresses, every prefix
// length), so random packets hit nested prefixes, port-range edges and first-match ties.

import { formatIp } from '../../src/core/ip.js';

/** A random rule as the control plane would send it (API field names). */
export interface RawRule {
  action: 'allow' | 'deny';
  protocol: 'tcp' | 'udp' | 'icmp' | 'any';
  source_cidr: string;
  destination_cidr: string;
  ports?: { from: number; to: number } | null;
}

const PORT_EDGES = [0, 1, 21, 22, 23, 53, 79, 80, 81, 443, 1000, 1005, 1010, 8080, 65534, 65535];

/** A random address of `family` from a small neighbourhood (bytes). */
export function randomAddress(rnd: () => number, family: 4 | 6): Uint8Array {
  const pick = (n: number): number => Math.floor(rnd() * n);
  if (family === 4) {
    const a = new Uint8Array([10, 100, pick(4), pick(8)]);
    if (rnd() < 0.1) a[0] = 192;
    if (rnd() < 0.05) a[3] = pick(256);
    return a;
  }
  const a = new Uint8Array(16);
  a[0] = 0xfd;
  a[13] = pick(4);
  a[15] = pick(8);
  if (rnd() < 0.1) a[1] = 1;
  if (rnd() < 0.05) a[7] = pick(256);
  return a;
}

/** A port near a rule edge, or anywhere. */
export function randomPort(rnd: () => number): number {
  if (rnd() < 0.3) return Math.floor(rnd() * 65536);
  const e = PORT_EDGES[Math.floor(rnd() * PORT_EDGES.length)]!;
  return Math.min(65535, Math.max(0, e + Math.floor(rnd() * 3) - 1));
}

function randomCidr(rnd: () => number, family: 4 | 6): string {
  const max = family === 4 ? 32 : 128;
  const r = rnd();
  const len = r < 0.1 ? 0 : r < 0.4 ? max : r < 0.6 ? max - Math.floor(rnd() * 4) : Math.floor(rnd() * (max + 1));
  return `${formatIp(randomAddress(rnd, family))}/${len}`;
}

/** `n` random rules; IPv4 mostly, some IPv6. */
export function randomRules(rnd: () => number, n: number): RawRule[] {
  const rules: RawRule[] = [];
  for (let i = 0; i < n; i++) {
    const family = rnd() < 0.75 ? 4 : 6;
    const protocol = (['tcp', 'udp', 'icmp', 'any'] as const)[Math.floor(rnd() * 4)]!;
    const rule: RawRule = {
      action: rnd() < 0.6 ? 'allow' : 'deny',
      protocol,
      source_cidr: randomCidr(rnd, family),
      destination_cidr: randomCidr(rnd, family),
    };
    if (protocol !== 'icmp' && rnd() < 0.6) {
      const from = randomPort(rnd);
      const span = [0, 0, 1, 10, 100, 70000][Math.floor(rnd() * 6)]!;
      rule.ports = { from, to: Math.min(65535, from + span) };
    } else if (rnd() < 0.2) {
      rule.ports = null;
    }
    rules.push(rule);
  }
  return rules;
}
