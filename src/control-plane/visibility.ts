// Visibility (issue 23, docs/policy.md "Visibility and groups"): which nodes of a project learn
// each other. Two nodes see each other when at least one allow rule lets traffic pass between them
// in either direction (a reply direction counts); no rule, no peer (deny by default). Rules name
// their ends by IPv4 CIDR (a node's mesh IP) or by a label selector (a group). The model is built
// once per policy revision and node membership: each rule's two member sets, each node's rules,
// so a node's peer list is the union of its rules' other sides and a pair is decided by the rules
// of one end. A revision is compared with the previous one by the rules that changed only.

import type { FirewallRule } from '../api/index.js';
import { formatIpv4 } from './mesh-ip.js';

/** A node as visibility sees it. `ip` is the IPv4 mesh address as an unsigned 32-bit number.
 *  `owned`: address ranges a bridge stands for besides its mesh IP (its users' access addresses,
 *  its sites' and access subnets; docs/control-plane.md "Policy for users and sites"), as sorted,
 *  disjoint [lo, hi] pairs: a rule side naming any of them names the bridge. */
export interface VisNode {
  readonly id: string;
  readonly ip: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly owned?: readonly (readonly [number, number])[];
  /** The store's nodes.row (carried along; the model does not use it). */
  readonly row?: number;
}

/** True when one of the sorted, disjoint ranges `owned` overlaps lo..hi (binary search). */
export function ownsAny(owned: readonly (readonly [number, number])[] | undefined, lo: number, hi: number): boolean {
  if (owned === undefined || owned.length === 0) return false;
  // The first range ending at or above lo; it overlaps when it starts at or below hi.
  let a = 0;
  let b = owned.length;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (owned[mid]![1] < lo) a = mid + 1;
    else b = mid;
  }
  return a < owned.length && owned[a]![0] <= hi;
}

/** Sorted, merged ranges of `ranges` (the shape VisNode.owned wants). */
export function mergeRanges(ranges: Iterable<readonly [number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** A firewall rule as the control plane stores it: upstream's shape plus optional groups (label
 *  selectors) in place of a CIDR. Agents never see the groups (compileRulesFor). */
export interface PolicyRule extends FirewallRule {
  readonly source_group?: string;
  readonly destination_group?: string;
}

/** A label selector: every `key=value` must hold (sorted by key). */
export type Selector = readonly (readonly [string, string])[];

/** One end of a rule, as far as mesh nodes are concerned. IPv6 CIDRs match no node (mesh IPs
 *  are IPv4). */
export type Side =
  | { readonly kind: 'cidr'; readonly lo: number; readonly hi: number; readonly key: string }
  | { readonly kind: 'group'; readonly selector: Selector; readonly key: string }
  | { readonly kind: 'none'; readonly key: string };

/** Most labels one node may carry. */
export const MAX_LABELS = 32;
const LABEL_KEY = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** Parses `key=value` label arguments. Throws RangeError naming the bad one ("expected
 *  key=value ..."). */
export function parseLabels(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    const value = eq < 0 ? '' : a.slice(eq + 1);
    if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) {
      throw new RangeError(`expected a label key=value (key 1..63 of [A-Za-z0-9._/-], value 1..63 of [A-Za-z0-9._-], both starting and ending alphanumeric), got ${JSON.stringify(a)}`);
    }
    if (Object.hasOwn(out, key) && out[key] !== value) throw new RangeError(`expected one value for label ${key}, got ${out[key]} and ${value}`);
    out[key] = value;
  }
  if (Object.keys(out).length > MAX_LABELS) throw new RangeError(`expected at most ${MAX_LABELS} labels, got ${Object.keys(out).length}`);
  return out;
}

/** Parses a label selector `key=value[,key=value...]`. Throws RangeError. */
export function parseSelector(text: string): Selector {
  if (text.length === 0 || text.length > 1024) throw new RangeError(`expected a label selector key=value[,key=value...], got ${JSON.stringify(text)}`);
  const labels = parseLabels(text.split(','));
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** The IPv4 address `text` as a number. Throws RangeError when it is not one. */
export function ipv4Number(text: string): number {
  const n = parseIpv4(text);
  if (n === undefined) throw new RangeError(`expected an IPv4 address, got ${JSON.stringify(text)}`);
  return n;
}

function cidrSide(cidr: string): Side {
  const slash = cidr.indexOf('/');
  const base = parseIpv4(slash < 0 ? cidr : cidr.slice(0, slash));
  const bits = slash < 0 ? 32 : Number(cidr.slice(slash + 1));
  if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return { kind: 'none', key: `none:${cidr}` };
  const size = 2 ** (32 - bits);
  const lo = base - (base % size);
  return { kind: 'cidr', lo, hi: lo + size - 1, key: `cidr:${lo}/${bits}` };
}

/** The source or destination end of a rule. Throws RangeError on a malformed group selector. */
export function sideOf(rule: PolicyRule, which: 'source' | 'destination'): Side {
  const group = which === 'source' ? rule.source_group : rule.destination_group;
  if (group !== undefined) {
    const selector = parseSelector(group);
    return { kind: 'group', selector, key: `group:${selector.map(([k, v]) => `${k}=${v}`).join(',')}` };
  }
  return cidrSide(which === 'source' ? rule.source_cidr : rule.destination_cidr);
}

/** True when `node` is one of the nodes `side` names (by its mesh IP or, for a bridge, a range it
 *  stands for). */
export function sideMatches(side: Side, node: VisNode): boolean {
  switch (side.kind) {
    case 'cidr':
      return (node.ip >= side.lo && node.ip <= side.hi) || ownsAny(node.owned, side.lo, side.hi);
    case 'group':
      return side.selector.every(([k, v]) => node.labels[k] === v);
    case 'none':
      return false;
  }
}

/** The sorted merge of two lists sorted by `cmp`. */
function mergeSorted(a: readonly number[], b: readonly number[], cmp: (x: number, y: number) => number): number[] {
  if (b.length === 0) return [...a];
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = cmp(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

interface VisRule {
  readonly src: Side;
  readonly dst: Side;
  /** Node indices on each side. */
  readonly srcMembers: readonly number[];
  readonly dstMembers: readonly number[];
}

function ruleKey(src: Side, dst: Side): string {
  return `${src.key}>${dst.key}`;
}

/** Which nodes see which, under one set of rules (immutable). */
export class Visibility {
  readonly nodes: readonly VisNode[];
  /** Node index by id. Shared along a chain of extend() calls: an extension of the newest model
   *  of the chain (#tip.length) adds its ids to the same map, so an older model of the chain may
   *  find indices past its own nodes there, and #at ignores them. */
  readonly #index = new Map<string, number>();
  readonly #tip = { length: 0 };
  readonly #rules = new Map<string, VisRule>();
  /** Per node: indices into #ruleList of the rules naming it as source / as destination. */
  readonly #asSrc: number[][];
  readonly #asDst: number[][];
  readonly #ruleList: VisRule[] = [];
  /** Node indices sorted by IP, for CIDR ranges. */
  readonly #byIp: number[];
  /** Node indices of each side any rule names, by side key. */
  readonly #sideMembers = new Map<string, number[]>();
  /** Indices of the nodes standing for ranges besides their mesh IP (bridges with users/sites). */
  readonly #owners: number[];
  /** The side of each #sideMembers key. */
  readonly #sides = new Map<string, Side>();

  /** The model of `nodes` under `rules` (only allow rules count; a selector's syntax errors
   *  throw RangeError). O(nodes log nodes + sum of the rules' member counts). */
  constructor(nodes: readonly VisNode[], rules: readonly PolicyRule[], from?: { readonly base: Visibility; readonly added: readonly VisNode[] }) {
    if (from !== undefined) {
      const b = from.base;
      const all = [...b.nodes, ...from.added];
      const n0 = b.nodes.length;
      this.nodes = all;
      if (b.#tip.length === n0) {
        // The newest of its chain: share the map (copying 10,000 entries costs ~4 ms).
        this.#index = b.#index;
        this.#tip = b.#tip;
      } else {
        this.#index = new Map();
        for (const [id, i] of b.#index) if (i < n0) this.#index.set(id, i);
      }
      from.added.forEach((n, k) => this.#index.set(n.id, n0 + k));
      this.#tip.length = all.length;
      const byIp = (x: number, y: number): number => all[x]!.ip - all[y]!.ip;
      const fresh = from.added.map((_, k) => n0 + k);
      const freshByIp = [...fresh].sort(byIp);
      this.#byIp = mergeSorted(b.#byIp, freshByIp, byIp);
      this.#owners = [...b.#owners, ...fresh.filter((i) => (all[i]!.owned?.length ?? 0) > 0)];
      this.#asSrc = [...b.#asSrc, ...fresh.map(() => [])];
      this.#asDst = [...b.#asDst, ...fresh.map(() => [])];
      this.#sides = b.#sides;
      // A side's list: by IP for a CIDR (as built), by index for a group; shared when unchanged.
      for (const [key, m] of b.#sideMembers) {
        const side = b.#sides.get(key)!;
        const extra = (side.kind === 'cidr' ? freshByIp : fresh).filter((i) => sideMatches(side, all[i]!));
        this.#sideMembers.set(key, extra.length === 0 ? m : side.kind === 'cidr' ? mergeSorted(m, extra, byIp) : [...m, ...extra]);
      }
      const touched = new Set<number[]>(); // #asSrc/#asDst lists of old nodes copied on write
      const add = (lists: number[][], i: number, at: number): void => {
        let list = lists[i]!;
        if (i < n0 && !touched.has(list)) {
          list = [...list];
          touched.add(list);
          lists[i] = list;
        }
        list.push(at);
      };
      for (const r of b.#ruleList) {
        const rule: VisRule = { src: r.src, dst: r.dst, srcMembers: this.#sideMembers.get(r.src.key)!, dstMembers: this.#sideMembers.get(r.dst.key)! };
        this.#rules.set(ruleKey(r.src, r.dst), rule);
        const at = this.#ruleList.push(rule) - 1;
        if (rule.srcMembers.length === 0 || rule.dstMembers.length === 0) continue;
        // A rule active before gains its new members; one activated now, all of them.
        const wasActive = r.srcMembers.length > 0 && r.dstMembers.length > 0;
        for (const i of rule.srcMembers) if (!wasActive || i >= n0) add(this.#asSrc, i, at);
        for (const i of rule.dstMembers) if (!wasActive || i >= n0) add(this.#asDst, i, at);
      }
      return;
    }
    this.nodes = nodes;
    nodes.forEach((n, i) => this.#index.set(n.id, i));
    this.#tip.length = nodes.length;
    this.#byIp = nodes.map((_, i) => i).sort((a, b) => nodes[a]!.ip - nodes[b]!.ip);
    this.#asSrc = nodes.map(() => []);
    this.#asDst = nodes.map(() => []);
    this.#owners = nodes.flatMap((n, i) => ((n.owned?.length ?? 0) > 0 ? [i] : []));
    const byLabel = new Map<string, number[]>();
    nodes.forEach((n, i) => {
      for (const [k, v] of Object.entries(n.labels)) {
        const list = byLabel.get(`${k}=${v}`);
        if (list === undefined) byLabel.set(`${k}=${v}`, [i]);
        else list.push(i);
      }
    });
    const membersCache = this.#sideMembers;
    const members = (side: Side): number[] => {
      let m = membersCache.get(side.key);
      if (m !== undefined) return m;
      m = [];
      if (side.kind === 'cidr') {
        for (let at = this.#firstAtOrAbove(side.lo); at < this.#byIp.length && nodes[this.#byIp[at]!]!.ip <= side.hi; at++) m.push(this.#byIp[at]!);
        const byIp = m.length;
        for (const i of this.#owners) {
          const n = nodes[i]!;
          if (!(n.ip >= side.lo && n.ip <= side.hi) && ownsAny(n.owned, side.lo, side.hi)) m.push(i);
        }
        if (m.length > byIp) m.sort((x, y) => nodes[x]!.ip - nodes[y]!.ip);
      } else if (side.kind === 'group') {
        // The smallest posting list, filtered by the whole selector.
        let best: number[] | undefined;
        for (const [k, v] of side.selector) {
          const list = byLabel.get(`${k}=${v}`) ?? [];
          if (best === undefined || list.length < best.length) best = list;
        }
        m = (best ?? []).filter((i) => sideMatches(side, nodes[i]!));
      }
      membersCache.set(side.key, m);
      this.#sides.set(side.key, side);
      return m;
    };
    for (const r of rules) {
      if (r.action !== 'allow') {
        // Not for visibility, but compileRulesFor asks for the members of every group side.
        members(sideOf(r, 'source'));
        members(sideOf(r, 'destination'));
        continue;
      }
      const src = sideOf(r, 'source');
      const dst = sideOf(r, 'destination');
      const key = ruleKey(src, dst);
      if (this.#rules.has(key)) continue;
      const rule: VisRule = { src, dst, srcMembers: members(src), dstMembers: members(dst) };
      this.#rules.set(key, rule);
      const at = this.#ruleList.push(rule) - 1;
      if (rule.srcMembers.length === 0 || rule.dstMembers.length === 0) continue;
      for (const i of rule.srcMembers) this.#asSrc[i]!.push(at);
      for (const i of rule.dstMembers) this.#asDst[i]!.push(at);
    }
  }

  /** This model with `added` (ids new to it) appended, under the same rules: what the
   *  constructor builds from [...nodes, ...added], without matching the old nodes again (a
   *  registration grows a 10,000-node model in well under a millisecond instead of ~4 ms). */
  extend(added: readonly VisNode[]): Visibility {
    return new Visibility([], [], { base: this, added });
  }

  /** The index of node `id` in this model. */
  #at(id: string): number | undefined {
    const i = this.#index.get(id);
    return i !== undefined && i < this.nodes.length ? i : undefined;
  }

  #firstAtOrAbove(ip: number): number {
    let lo = 0;
    let hi = this.#byIp.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.nodes[this.#byIp[mid]!]!.ip < ip) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The node with id `id`, if it is in the model. */
  node(id: string): VisNode | undefined {
    const i = this.#at(id);
    return i === undefined ? undefined : this.nodes[i];
  }

  /** True when `a` and `b` (distinct, both in the model) see each other. O(rules naming `a`). */
  canSee(a: string, b: string): boolean {
    const ia = this.#at(a);
    const ib = this.#at(b);
    if (ia === undefined || ib === undefined || ia === ib) return false;
    const nb = this.nodes[ib]!;
    for (const r of this.#asSrc[ia]!) if (sideMatches(this.#ruleList[r]!.dst, nb)) return true;
    for (const r of this.#asDst[ia]!) if (sideMatches(this.#ruleList[r]!.src, nb)) return true;
    return false;
  }

  /** Ids of the nodes `id` sees (never itself). O(sum of the sizes of its rules' other sides). */
  peersOf(id: string): Set<string> {
    const out = new Set<string>();
    const i = this.#at(id);
    if (i === undefined) return out;
    for (const r of this.#asSrc[i]!) for (const j of this.#ruleList[r]!.dstMembers) out.add(this.nodes[j]!.id);
    for (const r of this.#asDst[i]!) for (const j of this.#ruleList[r]!.srcMembers) out.add(this.nodes[j]!.id);
    out.delete(id);
    return out;
  }

  /** {@link peersOf}, or undefined as soon as it has more than `limit` ids (bounded work). */
  peersUpTo(id: string, limit: number): Set<string> | undefined {
    const out = new Set<string>();
    const i = this.#at(id);
    if (i === undefined) return out;
    const self = this.nodes[i]!.id;
    for (const [rules, side] of [[this.#asSrc[i]!, 'dstMembers'], [this.#asDst[i]!, 'srcMembers']] as const) {
      for (const r of rules) {
        for (const j of this.#ruleList[r]![side]) {
          const other = this.nodes[j]!.id;
          if (other === self) continue;
          out.add(other);
          if (out.size > limit) return undefined;
        }
      }
    }
    return out;
  }

  /** The ids of the nodes a side names (its members under this model). */
  membersOf(side: Side): string[] {
    const known = this.#sideMembers.get(side.key);
    if (known !== undefined) return known.map((i) => this.nodes[i]!.id);
    return this.nodes.filter((n) => sideMatches(side, n)).map((n) => n.id);
  }

  /** Distinct allow rules by key (what diffVisibility compares). */
  get ruleKeys(): ReadonlySet<string> {
    return new Set(this.#rules.keys());
  }

  /** @internal Members of the rule with key `key`, as node ids. */
  ruleMembers(key: string): { src: string[]; dst: string[] } | undefined {
    const r = this.#rules.get(key);
    if (r === undefined) return undefined;
    return { src: r.srcMembers.map((i) => this.nodes[i]!.id), dst: r.dstMembers.map((i) => this.nodes[i]!.id) };
  }
}

/** What changes for one node between two models. */
export interface VisibilityChange {
  readonly gained: string[];
  readonly lost: string[];
}

function sameNode(a: VisNode | undefined, b: VisNode | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.ip !== b.ip) return false;
  if (JSON.stringify(a.owned ?? []) !== JSON.stringify(b.owned ?? [])) return false;
  const ka = Object.keys(a.labels);
  return ka.length === Object.keys(b.labels).length && ka.every((k) => a.labels[k] === b.labels[k]);
}

/**
 * The pairs whose visibility differs between `before` and `after`, per node. Incremental: only
 * pairs a changed rule covers (rules added or removed, by their ends) and pairs with a node that
 * was added, removed or relabelled are examined, since a pair of unchanged nodes keeps its
 * visibility while every rule covering it survives. Cost: sum over changed rules of |src| x |dst|,
 * plus the peer lists of changed nodes, each pair decided in O(rules of one end).
 */
export function diffVisibility(before: Visibility, after: Visibility, changedNodes?: Iterable<string>): Map<string, VisibilityChange>;
/** With `maxPairs`: undefined instead of the diff when more than that many pairs would have to be
 *  examined (a change as wide as "allow all" on a large fleet; the caller then treats the whole
 *  project as changed). */
export function diffVisibility(before: Visibility, after: Visibility, changedNodes: Iterable<string> | undefined, maxPairs: number): Map<string, VisibilityChange> | undefined;
export function diffVisibility(before: Visibility, after: Visibility, changedNodes?: Iterable<string>, maxPairs = Infinity): Map<string, VisibilityChange> | undefined {
  const seen = new Set<string>();
  const out = new Map<string, VisibilityChange>();
  const consider = (a: string, b: string): void => {
    if (a === b) return;
    const k = a < b ? `${a}\0${b}` : `${b}\0${a}`;
    if (seen.has(k)) return;
    seen.add(k);
    const was = before.canSee(a, b);
    const is = after.canSee(a, b);
    if (was === is) return;
    for (const [x, y] of [[a, b], [b, a]] as const) {
      let c = out.get(x);
      if (c === undefined) out.set(x, (c = { gained: [], lost: [] }));
      (is ? c.gained : c.lost).push(y);
    }
  };
  const pairsOf = (model: Visibility, key: string): void => {
    const m = model.ruleMembers(key)!;
    for (const a of m.src) for (const b of m.dst) consider(a, b);
  };
  const beforeKeys = before.ruleKeys;
  const afterKeys = after.ruleKeys;
  const added = [...afterKeys].filter((k) => !beforeKeys.has(k));
  const removed = [...beforeKeys].filter((k) => !afterKeys.has(k));
  const changed = new Set<string>(changedNodes ?? []);
  if (changedNodes === undefined) {
    for (const n of before.nodes) if (!sameNode(n, after.node(n.id))) changed.add(n.id);
    for (const n of after.nodes) if (before.node(n.id) === undefined) changed.add(n.id);
  }
  if (maxPairs !== Infinity) {
    let cost = 0;
    const size = (model: Visibility, k: string): number => {
      const m = model.ruleMembers(k)!;
      return m.src.length * m.dst.length;
    };
    for (const k of added) cost += size(after, k);
    for (const k of removed) cost += size(before, k);
    for (const c of changed) cost += before.peersOf(c).size + after.peersOf(c).size;
    if (cost > maxPairs) return undefined;
  }
  for (const k of added) pairsOf(after, k);
  for (const k of removed) pairsOf(before, k);
  for (const c of changed) {
    for (const p of before.peersOf(c)) consider(c, p);
    for (const p of after.peersOf(c)) consider(c, p);
  }
  return out;
}

/**
 * The rules agents get for `node` (upstream's wire shape): rules without groups as they are; a
 * rule naming a group becomes one rule per member address on that side, kept only where `node`
 * is the other end (an agent judges packets to and from its own mesh IP), in rule order, so
 * first-match semantics hold for every packet the node sends or receives. A bridge also judges
 * its users' and sites' traffic (`owned`): a group rule whose CIDR side overlaps a range it stands
 * for is kept with the group expanded (a group never names an access address or a site host, so
 * these are all the group rules such a packet can match).
 */
export function compileRulesFor(model: Visibility, node: VisNode, rules: readonly PolicyRule[]): FirewallRule[] {
  const out: FirewallRule[] = [];
  const me = `${formatIpv4(node.ip)}/32`;
  const hasMe = (side: Side): boolean => side.kind === 'cidr' ? node.ip >= side.lo && node.ip <= side.hi : sideMatches(side, node);
  const stoodFor = (side: Side): boolean => side.kind === 'cidr' && ownsAny(node.owned, side.lo, side.hi);
  for (const r of rules) {
    const base = { action: r.action, protocol: r.protocol, ports: r.ports };
    if (r.source_group === undefined && r.destination_group === undefined) {
      out.push({ ...base, source_cidr: r.source_cidr, destination_cidr: r.destination_cidr });
      continue;
    }
    const src = sideOf(r, 'source');
    const dst = sideOf(r, 'destination');
    const addresses = (side: Side, cidr: string): string[] => (side.kind === 'group' ? model.membersOf(side).map((id) => `${formatIpv4(model.node(id)!.ip)}/32`) : [cidr]);
    if (hasMe(dst)) for (const a of addresses(src, r.source_cidr)) out.push({ ...base, source_cidr: a, destination_cidr: me });
    if (hasMe(src)) for (const a of addresses(dst, r.destination_cidr)) out.push({ ...base, source_cidr: me, destination_cidr: a });
    if (stoodFor(src) || stoodFor(dst)) {
      for (const a of addresses(src, r.source_cidr)) for (const b of addresses(dst, r.destination_cidr)) out.push({ ...base, source_cidr: a, destination_cidr: b });
    }
  }
  return out;
}
