import { describe, expect, it } from 'vitest';
import { AllowedIps, CHECK_INVARIANTS } from '../../src/core/allowed-ips.js';
import { formatPrefix, parseIp, parsePrefix } from '../../src/core/ip.js';
import { prng } from '../helpers/prng.js';

const ip = (text: string): Uint8Array => {
  const b = parseIp(text);
  if (b === undefined) throw new Error(`bad test address ${text}`);
  return b;
};
const family = (b: Uint8Array): 4 | 6 => (b.length === 4 ? 4 : 6);

function masked(addr: Uint8Array, cidr: number): Uint8Array {
  const out = addr.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, cidr - 8 * i));
    out[i] = out[i]! & ((0xff00 >> keep) & 0xff);
  }
  return out;
}

/** Slow twin: a list of prefixes scanned linearly for the longest match. */
class NaiveTable<T> {
  readonly byKey = new Map<string, { ip: Uint8Array; cidr: number; value: T }>();
  // Per-owner insertion order, mirroring "listed in the order it gained them".
  readonly owners = new Map<T, Map<string, true>>();
  insert(addr: Uint8Array, cidr: number, value: T): void {
    const m = masked(addr, cidr);
    const key = formatPrefix(m, cidr);
    const old = this.byKey.get(key);
    // Given again (even to the same owner) it moves to the end of the owner's list.
    if (old !== undefined) this.#drop(key, old.value);
    this.byKey.set(key, { ip: m, cidr, value });
    let o = this.owners.get(value);
    if (o === undefined) this.owners.set(value, (o = new Map()));
    o.set(key, true);
  }
  remove(addr: Uint8Array, cidr: number, value: T): boolean {
    const key = formatPrefix(masked(addr, cidr), cidr);
    const old = this.byKey.get(key);
    if (old === undefined || old.value !== value) return false;
    this.byKey.delete(key);
    this.#drop(key, value);
    return true;
  }
  removeValue(value: T): void {
    for (const key of this.owners.get(value)?.keys() ?? []) this.byKey.delete(key);
    this.owners.delete(value);
  }
  lookup(addr: Uint8Array): T | undefined {
    let best: { cidr: number; value: T } | undefined;
    for (const e of this.byKey.values()) {
      if (e.ip.length !== addr.length || (best !== undefined && e.cidr <= best.cidr)) continue;
      const m = masked(addr, e.cidr);
      if (m.every((b, i) => b === e.ip[i])) best = e;
    }
    return best?.value;
  }
  keysOf(value: T): string[] {
    return [...(this.owners.get(value)?.keys() ?? [])];
  }
  #drop(key: string, value: T): void {
    const o = this.owners.get(value)!;
    o.delete(key);
    if (o.size === 0) this.owners.delete(value);
  }
}

const listOf = <T>(t: AllowedIps<T>, v: T): string[] => t.entriesOf(v).map((e) => formatPrefix(e.ip, e.cidr));

describe('AllowedIps known cases', () => {
  it('finds the longest prefix among overlaps', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('10.0.0.0'), 8, 'a');
    t.insert(ip('10.1.0.0'), 16, 'b');
    t.insert(ip('10.1.2.0'), 24, 'c');
    t.insert(ip('10.1.2.3'), 32, 'd');
    const at = (s: string) => t.lookup(4, ip(s), 0);
    expect(at('10.9.9.9')).toBe('a');
    expect(at('10.1.9.9')).toBe('b');
    expect(at('10.1.2.9')).toBe('c');
    expect(at('10.1.2.3')).toBe('d');
    expect(at('11.0.0.0')).toBeUndefined();
    expect(t.size).toBe(4);
    t[CHECK_INVARIANTS]();
  });

  it('handles /0 and full-length prefixes in both families', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('0.0.0.0'), 0, 'all4');
    t.insert(ip('::'), 0, 'all6');
    t.insert(ip('192.168.1.1'), 32, 'host4');
    t.insert(ip('fd00::1'), 128, 'host6');
    expect(t.lookup(4, ip('1.2.3.4'), 0)).toBe('all4');
    expect(t.lookup(4, ip('192.168.1.1'), 0)).toBe('host4');
    expect(t.lookup(4, ip('192.168.1.0'), 0)).toBe('all4');
    expect(t.lookup(6, ip('2001:db8::1'), 0)).toBe('all6');
    expect(t.lookup(6, ip('fd00::1'), 0)).toBe('host6');
    expect(t.lookup(6, ip('fd00::2'), 0)).toBe('all6');
    expect(t.remove(ip('0.0.0.0'), 0, 'all4')).toBe(true);
    expect(t.lookup(4, ip('1.2.3.4'), 0)).toBeUndefined();
    expect(t.lookup(4, ip('192.168.1.1'), 0)).toBe('host4');
    t[CHECK_INVARIANTS]();
  });

  it('keeps IPv4 and IPv6 apart, even ::ffff:a.b.c.d and ::a.b.c.d', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('1.2.3.0'), 24, 'v4');
    expect(t.lookup(6, ip('::ffff:1.2.3.4'), 0)).toBeUndefined();
    expect(t.lookup(6, ip('::1.2.3.4'), 0)).toBeUndefined();
    t.insert(ip('::'), 24, 'v6');
    expect(t.lookup(4, ip('0.0.0.1'), 0)).toBeUndefined();
    expect(t.lookup(4, ip('1.2.3.4'), 0)).toBe('v4');
    expect(t.lookup(6, ip('::1.2.3.4'), 0)).toBe('v6');
  });

  it('masks host bits on insert and remove', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('10.1.2.3'), 8, 'a');
    expect(listOf(t, 'a')).toEqual(['10.0.0.0/8']);
    expect(t.lookup(4, ip('10.200.0.1'), 0)).toBe('a');
    t.insert(ip('2001:db8:ffff::1'), 33, 'b');
    expect(listOf(t, 'b')).toEqual(['2001:db8:8000::/33']);
    expect(t.remove(ip('10.9.9.9'), 8, 'a')).toBe(true);
    expect(t.size).toBe(1);
  });

  it('replaces the owner of an identical prefix', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('10.0.0.0'), 24, 'a');
    t.insert(ip('10.0.1.0'), 24, 'a');
    t.insert(ip('10.0.0.0'), 24, 'b');
    expect(t.lookup(4, ip('10.0.0.1'), 0)).toBe('b');
    expect(listOf(t, 'a')).toEqual(['10.0.1.0/24']);
    expect(listOf(t, 'b')).toEqual(['10.0.0.0/24']);
    expect(t.size).toBe(2);
    expect(t.countOf('a')).toBe(1);
    t.insert(ip('10.0.0.0'), 24, 'b'); // same owner again: no change, no duplicate
    expect(listOf(t, 'b')).toEqual(['10.0.0.0/24']);
    expect(t.size).toBe(2);
    t[CHECK_INVARIANTS]();
  });

  it('removes only when owned by the given value, restoring the shorter match', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('10.0.0.0'), 8, 'short');
    t.insert(ip('10.1.0.0'), 16, 'long');
    expect(t.remove(ip('10.1.0.0'), 16, 'short')).toBe(false);
    expect(t.remove(ip('10.1.0.0'), 17, 'long')).toBe(false);
    expect(t.remove(ip('10.1.0.0'), 15, 'long')).toBe(false);
    expect(t.remove(ip('10.1.0.0'), 16, 'long')).toBe(true);
    expect(t.remove(ip('10.1.0.0'), 16, 'long')).toBe(false);
    expect(t.lookup(4, ip('10.1.0.1'), 0)).toBe('short');
    expect(t.size).toBe(1);
    t[CHECK_INVARIANTS]();
  });

  it('removeValue drops all of one peer and nothing else', () => {
    const t = new AllowedIps<{ name: string }>();
    const a = { name: 'a' };
    const b = { name: 'b' };
    t.insert(ip('10.0.0.0'), 8, a);
    t.insert(ip('10.1.0.0'), 16, b);
    t.insert(ip('10.1.1.0'), 24, a);
    t.insert(ip('fd00::'), 8, a);
    t.removeValue(a);
    expect(t.entriesOf(a)).toEqual([]);
    expect(t.countOf(a)).toBe(0);
    expect(t.lookup(4, ip('10.1.1.1'), 0)).toBe(b);
    expect(t.lookup(4, ip('10.2.0.0'), 0)).toBeUndefined();
    expect(t.lookup(6, ip('fd00::1'), 0)).toBeUndefined();
    expect(t.size).toBe(1);
    t.removeValue(a); // no-op
    t[CHECK_INVARIANTS]();
  });

  it('lists in the order the value gained its prefixes, with fresh copies', () => {
    const t = new AllowedIps<string>();
    const order = ['fd00::/8', '10.0.0.0/8', '192.168.0.0/16', '::/0', '10.1.0.0/16', '1.2.3.4/32'];
    for (const p of order) {
      const { ip: addr, cidr } = parsePrefix(p)!;
      t.insert(addr, cidr, 'x');
    }
    expect(listOf(t, 'x')).toEqual(order);
    const first = t.entriesOf('x')[0]!;
    first.ip[0] = 0x77;
    expect(listOf(t, 'x')[0]).toBe('fd00::/8');
    const seen: string[] = [];
    t.forEachOf('x', (addr, cidr) => {
      seen.push(formatPrefix(addr, cidr));
      t.remove(addr, cidr, 'x'); // removing what we are shown is allowed
    });
    expect(seen).toEqual(order);
    expect(t.size).toBe(0);
    t[CHECK_INVARIANTS]();
  });

  it('moves a prefix given again to the end of its owner\'s list, as wireguard-go does (get=1 order)', () => {
    const t = new AllowedIps<string>();
    for (const p of ['10.0.0.0/8', '192.168.0.0/16', '10.0.0.0/8', 'fd00::/8', '192.168.0.0/16']) {
      const { ip: addr, cidr } = parsePrefix(p)!;
      t.insert(addr, cidr, 'x');
    }
    expect(listOf(t, 'x')).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.0.0/16']);
    expect(t.size).toBe(3);
    t[CHECK_INVARIANTS]();
  });

  it('reads addresses straight out of a packet at an offset', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('192.0.2.0'), 24, 'v4');
    t.insert(ip('2001:db8::'), 32, 'v6');
    const packet = new Uint8Array(60);
    packet.set(ip('192.0.2.99'), 16); // IPv4 destination offset
    expect(t.lookup(4, packet, 16)).toBe('v4');
    packet.set(ip('2001:db8::5'), 24); // IPv6 destination offset
    expect(t.lookup(6, packet, 24)).toBe('v6');
    expect(t.lookup(6, packet, 50)).toBeUndefined(); // truncated: no match, no throw
    expect(t.lookup(4, packet, -1)).toBeUndefined();
    expect(t.lookup(4, packet, 57)).toBeUndefined();
    expect(() => t.lookup(5 as 4, packet, 0)).toThrow(/expected family 4 or 6, got 5/);
  });

  it('rejects misuse', () => {
    const t = new AllowedIps<string>();
    expect(() => t.insert(new Uint8Array(5), 8, 'a')).toThrow(/expected a 4- or 16-byte address, got 5 bytes/);
    expect(() => t.insert(ip('1.2.3.4'), 33, 'a')).toThrow(/expected a cidr in 0..32, got 33/);
    expect(() => t.insert(ip('::'), -1, 'a')).toThrow(RangeError);
    expect(() => t.insert(ip('::'), 1.5, 'a')).toThrow(RangeError);
    expect(() => t.remove('1.2.3.4' as unknown as Uint8Array, 8, 'a')).toThrow(TypeError);
  });

  it('clear empties everything', () => {
    const t = new AllowedIps<string>();
    t.insert(ip('1.0.0.0'), 8, 'a');
    t.insert(ip('::'), 0, 'b');
    t.clear();
    expect(t.size).toBe(0);
    expect(t.lookup(4, ip('1.1.1.1'), 0)).toBeUndefined();
    expect(t.lookup(6, ip('::1'), 0)).toBeUndefined();
    expect(t.entriesOf('a')).toEqual([]);
    t[CHECK_INVARIANTS]();
  });
});

/** A random prefix, often related to one already present so overlaps and junctions happen. */
function randomPrefix(rnd: () => number, known: Array<{ ip: Uint8Array; cidr: number }>): { ip: Uint8Array; cidr: number } {
  const base = known.length > 0 && rnd() < 0.6 ? known[Math.floor(rnd() * known.length)] : undefined;
  const len = base !== undefined ? base.ip.length : rnd() < 0.5 ? 4 : 16;
  const addr = new Uint8Array(len);
  for (let i = 0; i < len; i++) addr[i] = Math.floor(rnd() * 256);
  // Few distinct high bits so random prefixes collide and nest often.
  addr[0] = addr[0]! & 0x83;
  if (base !== undefined) {
    const keep = Math.floor(rnd() * (len * 8 + 1));
    const m = masked(base.ip, keep);
    for (let i = 0; i < len; i++) {
      const bits = Math.min(8, Math.max(0, keep - 8 * i));
      const hi = (0xff00 >> bits) & 0xff;
      addr[i] = (m[i]! & hi) | (addr[i]! & ~hi & 0xff);
    }
  }
  const cidr = rnd() < 0.1 ? len * 8 : Math.floor(rnd() * (len * 8 + 1));
  return { ip: addr, cidr };
}

describe('AllowedIps vs naive twin', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`agrees on random inserts, removals and lookups (seed ${seed})`, () => {
      const rnd = prng(seed);
      const fast = new AllowedIps<number>();
      const slow = new NaiveTable<number>();
      const peers = 6;
      const known: Array<{ ip: Uint8Array; cidr: number }> = [];
      for (let op = 0; op < 4000; op++) {
        const r = rnd();
        if (r < 0.45) {
          const p = randomPrefix(rnd, known);
          const v = Math.floor(rnd() * peers);
          fast.insert(p.ip, p.cidr, v);
          slow.insert(p.ip, p.cidr, v);
          known.push(p);
        } else if (r < 0.65 && known.length > 0) {
          const p = known[Math.floor(rnd() * known.length)]!;
          const v = Math.floor(rnd() * peers);
          expect(fast.remove(p.ip, p.cidr, v)).toBe(slow.remove(p.ip, p.cidr, v));
        } else if (r < 0.67) {
          const v = Math.floor(rnd() * peers);
          fast.removeValue(v);
          slow.removeValue(v);
        } else {
          const addr = randomPrefix(rnd, known).ip;
          if (fast.lookup(family(addr), addr, 0) !== slow.lookup(addr)) {
            expect.fail(`op ${op}: lookup mismatch for ${formatPrefix(addr, addr.length * 8)}`);
          }
        }
        if (op % 500 === 0) fast[CHECK_INVARIANTS]();
      }
      fast[CHECK_INVARIANTS]();
      expect(fast.size).toBe(slow.byKey.size);
      for (let v = 0; v < peers; v++) {
        expect(listOf(fast, v)).toEqual(slow.keysOf(v));
        expect(fast.countOf(v)).toBe(slow.keysOf(v).length);
      }
      for (let v = 0; v < peers; v++) {
        fast.removeValue(v);
        fast[CHECK_INVARIANTS]();
      }
      expect(fast.size).toBe(0);
    });
  }
});

describe('AllowedIps at scale', () => {
  it('inserts 130,000 prefixes for one peer, lists them back exactly and removes them', () => {
    const rnd = prng(99);
    const t = new AllowedIps<string>();
    const expected = new Set<string>();
    const started = performance.now();
    for (let i = 0; i < 130_000; i++) {
      const v6 = i % 2 === 1;
      const addr = new Uint8Array(v6 ? 16 : 4);
      for (let k = 0; k < addr.length; k++) addr[k] = Math.floor(rnd() * 256);
      const cidr = v6 ? 16 + Math.floor(rnd() * 113) : 8 + Math.floor(rnd() * 25);
      t.insert(addr, cidr, 'peer');
      expected.add(formatPrefix(masked(addr, cidr), cidr));
    }
    const insertMs = performance.now() - started;
    t.insert(ip('10.0.0.0'), 7, 'other'); // the loop only makes /8../32, so this one is new
    const listed = listOf(t, 'peer');
    expect(listed.length).toBe(expected.size);
    expect(new Set(listed).size).toBe(listed.length);
    for (const p of listed) expect(expected.has(p)).toBe(true);
    expect(t.size).toBe(expected.size + 1);
    t[CHECK_INVARIANTS]();
    const removeStarted = performance.now();
    t.removeValue('peer');
    const removeMs = performance.now() - removeStarted;
    expect(t.size).toBe(1);
    expect(t.lookup(4, ip('10.1.2.3'), 0)).toBe('other');
    t[CHECK_INVARIANTS]();
    // Only guards against accidentally quadratic code (seconds, not milliseconds); speed is
    // shown by `npm run bench:allowed-ips`, never by tests.
    expect(insertMs).toBeLessThan(15_000);
    expect(removeMs).toBeLessThan(15_000);
  });
});
