// The visibility model (src/control-plane/visibility.ts) against a naive evaluator: on random
// fleets and random policies, every pair is decided as "some allow rule passes traffic between
// them in either direction", and the incremental diff between two revisions (and two fleets)
// equals comparing every pair.

import { describe, expect, it } from 'vitest';
import { compileRulesFor, diffVisibility, parseLabels, parseSelector, Visibility, type PolicyRule, type VisNode } from '../../src/control-plane/visibility.js';
import { fuzzIterations, fuzzSeed, fuzzTimeout } from '../helpers/fuzz.js';
import { prng } from '../helpers/prng.js';

const BASE = (10 << 24) | (100 << 16);

function ipText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The naive twin: a CIDR by string arithmetic on the mask, a selector by splitting its text. */
function naiveMatches(rule: PolicyRule, which: 'source' | 'destination', node: VisNode): boolean {
  const group = which === 'source' ? rule.source_group : rule.destination_group;
  if (group !== undefined) return group.split(',').every((kv) => node.labels[kv.split('=')[0]!] === kv.split('=')[1]);
  const cidr = which === 'source' ? rule.source_cidr : rule.destination_cidr;
  if (cidr.includes(':')) return false;
  const [addr, bits] = cidr.split('/') as [string, string];
  const b = Number(bits);
  const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  const a = addr.split('.').reduce((x, p) => x * 256 + Number(p), 0);
  return ((a & mask) >>> 0) === ((node.ip & mask) >>> 0);
}

function naiveSees(rules: readonly PolicyRule[], a: VisNode, b: VisNode): boolean {
  if (a.id === b.id) return false;
  return rules.some(
    (r) => r.action === 'allow' && ((naiveMatches(r, 'source', a) && naiveMatches(r, 'destination', b)) || (naiveMatches(r, 'source', b) && naiveMatches(r, 'destination', a))),
  );
}

const KEYS = ['role', 'env', 'zone'];
const VALUES = ['a', 'b', 'c'];

function randomFleet(rand: () => number, n: number): VisNode[] {
  const ips = new Set<number>();
  while (ips.size < n) ips.add((BASE + 1 + Math.floor(rand() * 64)) >>> 0);
  return [...ips].map((ip, i) => ({ id: `n${i}`, ip, labels: randomLabels(rand) }));
}

function randomLabels(rand: () => number): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const k of KEYS) if (rand() < 0.6) labels[k] = VALUES[Math.floor(rand() * VALUES.length)]!;
  return labels;
}

function randomSide(rand: () => number, nodes: readonly VisNode[]): { cidr?: string; group?: string } {
  const x = rand();
  if (x < 0.35) {
    const keys = KEYS.filter(() => rand() < 0.5);
    const sel = (keys.length === 0 ? [KEYS[0]!] : keys).map((k) => `${k}=${VALUES[Math.floor(rand() * VALUES.length)]}`);
    return { group: sel.join(',') };
  }
  if (x < 0.45) return { cidr: '0.0.0.0/0' };
  if (x < 0.5) return { cidr: 'fd00::/8' };
  const ip = nodes.length > 0 && rand() < 0.8 ? nodes[Math.floor(rand() * nodes.length)]!.ip : (BASE + Math.floor(rand() * 128)) >>> 0;
  return { cidr: `${ipText(ip)}/${26 + Math.floor(rand() * 7)}` };
}

function randomRule(rand: () => number, nodes: readonly VisNode[]): PolicyRule {
  const s = randomSide(rand, nodes);
  const d = randomSide(rand, nodes);
  return {
    action: rand() < 0.75 ? 'allow' : 'deny',
    protocol: (['any', 'tcp', 'udp', 'icmp'] as const)[Math.floor(rand() * 4)]!,
    source_cidr: s.cidr ?? '0.0.0.0/0',
    destination_cidr: d.cidr ?? '0.0.0.0/0',
    ports: null,
    ...(s.group === undefined ? {} : { source_group: s.group }),
    ...(d.group === undefined ? {} : { destination_group: d.group }),
  };
}

function checkModel(model: Visibility, nodes: readonly VisNode[], rules: readonly PolicyRule[], where: string): void {
  for (const a of nodes) {
    const expected = new Set(nodes.filter((b) => naiveSees(rules, a, b)).map((b) => b.id));
    const got = [...model.peersOf(a.id)].sort().join();
    if (got !== [...expected].sort().join()) expect(got, `${where} peersOf ${a.id}`).toBe([...expected].sort().join());
    for (const b of nodes) if (model.canSee(a.id, b.id) !== expected.has(b.id)) expect(model.canSee(a.id, b.id), `${where} ${a.id}->${b.id}`).toBe(expected.has(b.id));
  }
}

describe('visibility against a naive evaluator', () => {
  const iterations = fuzzIterations(2000);
  const seed = fuzzSeed(0x23_5eed);
  it(`peer lists and incremental diffs match on ${iterations} random fleets and policies (seed ${seed})`, () => {
    const rand = prng(seed);
    for (let i = 0; i < iterations; i++) {
      const where = `seed ${seed} iteration ${i}`;
      const nodes = randomFleet(rand, Math.floor(rand() * 24));
      const rules = Array.from({ length: Math.floor(rand() * 7) }, () => randomRule(rand, nodes));
      const before = new Visibility(nodes, rules);
      checkModel(before, nodes, rules, where);
      // The next revision: rules added, removed or replaced; nodes relabelled, added, removed.
      const nextRules = rules.filter(() => rand() < 0.7);
      for (let k = Math.floor(rand() * 3); k > 0; k--) nextRules.splice(Math.floor(rand() * (nextRules.length + 1)), 0, randomRule(rand, nodes));
      let nextNodes = nodes.map((n) => (rand() < 0.15 ? { ...n, labels: randomLabels(rand) } : n)).filter(() => rand() < 0.9);
      if (rand() < 0.3) {
        const used = new Set(nextNodes.map((n) => n.ip));
        const ip = (BASE + 65 + Math.floor(rand() * 60)) >>> 0;
        if (!used.has(ip)) nextNodes = [...nextNodes, { id: `new${i}`, ip, labels: randomLabels(rand) }];
      }
      const after = new Visibility(nextNodes, nextRules);
      checkModel(after, nextNodes, nextRules, `${where} (after)`);
      const diff = diffVisibility(before, after);
      const all = new Map([...nodes, ...nextNodes].map((n) => [n.id, n]));
      const beforeIds = new Set(nodes.map((n) => n.id));
      const afterIds = new Set(nextNodes.map((n) => n.id));
      for (const a of all.values()) {
        const gained: string[] = [];
        const lost: string[] = [];
        for (const b of all.values()) {
          const was = beforeIds.has(a.id) && beforeIds.has(b.id) && naiveSees(rules, nodes.find((n) => n.id === a.id)!, nodes.find((n) => n.id === b.id)!);
          const is = afterIds.has(a.id) && afterIds.has(b.id) && naiveSees(nextRules, nextNodes.find((n) => n.id === a.id)!, nextNodes.find((n) => n.id === b.id)!);
          if (is && !was) gained.push(b.id);
          if (was && !is) lost.push(b.id);
        }
        const got = diff.get(a.id) ?? { gained: [], lost: [] };
        const text = (x: readonly string[]): string => [...x].sort().join();
        if (text(got.gained) !== text(gained)) expect(text(got.gained), `${where} gained by ${a.id}`).toBe(text(gained));
        if (text(got.lost) !== text(lost)) expect(text(got.lost), `${where} lost by ${a.id}`).toBe(text(lost));
      }
    }
  }, fuzzTimeout(iterations, 5));
});

describe('a model extended by appended nodes (Visibility.extend)', () => {
  const iterations = fuzzIterations(1000);
  const seed = fuzzSeed(0xe7_7e4d);
  it(`equals the model built afresh, on ${iterations} random fleets, policies and appends (seed ${seed})`, () => {
    const rand = prng(seed);
    for (let i = 0; i < iterations; i++) {
      const where = `seed ${seed} iteration ${i}`;
      const all = randomFleet(rand, 1 + Math.floor(rand() * 24));
      // Some owners of extra ranges (bridges), among the old and the appended nodes.
      const nodes = all.map((n) => (rand() < 0.1 ? { ...n, owned: [[(BASE + 200) >>> 0, (BASE + 200 + Math.floor(rand() * 40)) >>> 0] as [number, number]] } : n));
      const rules = Array.from({ length: Math.floor(rand() * 7) }, () => randomRule(rand, nodes));
      let cut = Math.floor(rand() * nodes.length);
      let model = new Visibility(nodes.slice(0, cut), rules);
      // Appended one at a time (as registrations do) or several at once.
      while (cut < nodes.length) {
        const step = 1 + Math.floor(rand() * 3);
        model = model.extend(nodes.slice(cut, cut + step));
        cut += step;
      }
      const fresh = new Visibility(nodes, rules);
      expect(model.nodes.map((n) => n.id), where).toEqual(fresh.nodes.map((n) => n.id));
      expect([...model.ruleKeys], where).toEqual([...fresh.ruleKeys]);
      for (const k of fresh.ruleKeys) expect(model.ruleMembers(k), `${where} rule ${k}`).toEqual(fresh.ruleMembers(k));
      for (const a of nodes) {
        expect([...model.peersOf(a.id)].sort(), `${where} peersOf ${a.id}`).toEqual([...fresh.peersOf(a.id)].sort());
        const bounded = model.peersUpTo(a.id, 3);
        const every = fresh.peersOf(a.id);
        expect(bounded === undefined ? 'more' : [...bounded].sort().join(), `${where} peersUpTo ${a.id}`).toBe(every.size > 3 ? 'more' : [...every].sort().join());
        for (const b of nodes) if (model.canSee(a.id, b.id) !== fresh.canSee(a.id, b.id)) expect(model.canSee(a.id, b.id), `${where} ${a.id}->${b.id}`).toBe(fresh.canSee(a.id, b.id));
        expect(compileRulesFor(model, a, rules), `${where} compiled for ${a.id}`).toEqual(compileRulesFor(fresh, a, rules));
      }
      checkModel(model, nodes, rules, where);
    }
  }, fuzzTimeout(iterations, 5));
});

describe('extend() from a model that is not the newest of its chain', () => {
  it('keeps each branch and the base as built afresh (the shared id index is not trusted past a model)', () => {
    const rand = prng(7);
    const nodes = randomFleet(rand, 12);
    const rules: PolicyRule[] = [
      { action: 'allow', protocol: 'any', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null },
      { action: 'allow', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: null, source_group: 'role=a', destination_group: 'role=b' },
    ];
    const base = new Visibility(nodes.slice(0, 8), rules);
    const one = base.extend(nodes.slice(8, 10));
    const other = base.extend(nodes.slice(10, 12)); // base again: a branch
    const longer = one.extend(nodes.slice(10, 12));
    for (const [model, list] of [
      [base, nodes.slice(0, 8)],
      [one, nodes.slice(0, 10)],
      [other, [...nodes.slice(0, 8), ...nodes.slice(10, 12)]],
      [longer, nodes],
    ] as const) {
      const fresh = new Visibility(list, rules);
      expect(model.nodes.map((n) => n.id)).toEqual(list.map((n) => n.id));
      for (const a of nodes) {
        expect(model.node(a.id)).toEqual(fresh.node(a.id));
        expect([...model.peersOf(a.id)].sort()).toEqual([...fresh.peersOf(a.id)].sort());
        for (const b of nodes) expect(model.canSee(a.id, b.id)).toBe(fresh.canSee(a.id, b.id));
      }
    }
  });
});

describe('labels and selectors', () => {
  it('parses key=value labels and refuses malformed ones with the argument named', () => {
    expect(parseLabels(['role=web', 'env=prod'])).toEqual({ role: 'web', env: 'prod' });
    for (const bad of ['role', 'role=', '=web', 'ro le=web', 'role=we b', '-x=y', 'x=-y', `${'k'.repeat(64)}=v`]) {
      expect(() => parseLabels([bad]), bad).toThrow(RangeError);
    }
    expect(() => parseLabels(['role=web', 'role=db'])).toThrow(/one value for label role/);
    expect(() => parseLabels(Array.from({ length: 33 }, (_, i) => `k${i}=v`))).toThrow(/at most 32/);
    expect(parseSelector('role=web,env=prod')).toEqual([['env', 'prod'], ['role', 'web']]);
    expect(() => parseSelector('')).toThrow(RangeError);
  });

  it('compiles a group rule to per-member addresses where this node is the other end', () => {
    const nodes: VisNode[] = [
      { id: 'w1', ip: BASE + 1, labels: { role: 'web' } },
      { id: 'w2', ip: BASE + 2, labels: { role: 'web' } },
      { id: 'd1', ip: BASE + 3, labels: { role: 'db' } },
    ];
    const rules: PolicyRule[] = [
      { action: 'allow', protocol: 'tcp', source_cidr: '0.0.0.0/0', destination_cidr: '0.0.0.0/0', ports: { from: 5432, to: 5432 }, source_group: 'role=web', destination_group: 'role=db' },
      { action: 'deny', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '10.100.0.0/16', ports: null },
    ];
    const model = new Visibility(nodes, rules);
    const tcp = { action: 'allow', protocol: 'tcp', ports: { from: 5432, to: 5432 } };
    expect(compileRulesFor(model, nodes[2]!, rules)).toEqual([
      { ...tcp, source_cidr: '10.100.0.1/32', destination_cidr: '10.100.0.3/32' },
      { ...tcp, source_cidr: '10.100.0.2/32', destination_cidr: '10.100.0.3/32' },
      rules[1] !== undefined ? { action: 'deny', protocol: 'any', source_cidr: '0.0.0.0/0', destination_cidr: '10.100.0.0/16', ports: null } : undefined,
    ]);
    expect(compileRulesFor(model, nodes[0]!, rules)[0]).toEqual({ ...tcp, source_cidr: '10.100.0.1/32', destination_cidr: '10.100.0.3/32' });
    expect(model.peersOf('w1')).toEqual(new Set(['d1']));
    expect(model.canSee('w1', 'w2')).toBe(false);
  });
});
