// Cryptokey routing table (whitepaper section 2): longest-prefix match from an inner address to
// the peer allowed to use it, as a path-compressed binary trie per family like Linux allowedips.c.

/**
 * One trie node. Addresses are held as four big-endian int32 words (IPv4 uses w0 only, the rest
 * stay 0) so lookups compare whole words with no allocation. A node with `owned === false` is
 * a junction created where two prefixes diverge; it always has exactly two children.
 */
class Node<T> {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  readonly cidr: number;
  readonly len: 4 | 16;
  owned = false;
  value: T | undefined = undefined;
  c0: Node<T> | null = null;
  c1: Node<T> | null = null;
  parent: Node<T> | null = null;
  // Neighbours in the owner's list, so a peer's prefixes list in insertion order and each one
  // unlinks in O(1).
  prev: Node<T> | null = null;
  next: Node<T> | null = null;

  constructor(len: 4 | 16, w0: number, w1: number, w2: number, w3: number, cidr: number) {
    this.len = len;
    this.cidr = cidr;
    this.w0 = maskWord(w0, cidr, 0);
    this.w1 = maskWord(w1, cidr, 32);
    this.w2 = maskWord(w2, cidr, 64);
    this.w3 = maskWord(w3, cidr, 96);
  }
}

interface OwnerList<T> {
  head: Node<T> | null;
  tail: Node<T> | null;
  count: number;
}

/** Keeps the bits of `word` (covering bits start..start+31) that lie inside the first `cidr` bits. */
function maskWord(word: number, cidr: number, start: number): number {
  const keep = cidr - start;
  if (keep >= 32) return word | 0;
  if (keep <= 0) return 0;
  return word & (-1 << (32 - keep));
}

/** Number of leading bits `node` and the address words agree on (128 when all do). */
function commonBits<T>(node: Node<T>, a0: number, a1: number, a2: number, a3: number): number {
  let x = a0 ^ node.w0;
  if (x !== 0) return Math.clz32(x);
  x = a1 ^ node.w1;
  if (x !== 0) return 32 + Math.clz32(x);
  x = a2 ^ node.w2;
  if (x !== 0) return 64 + Math.clz32(x);
  x = a3 ^ node.w3;
  return x !== 0 ? 96 + Math.clz32(x) : 128;
}

function bitAt(a0: number, a1: number, a2: number, a3: number, pos: number): number {
  const word = pos < 64 ? (pos < 32 ? a0 : a1) : pos < 96 ? a2 : a3;
  return (word >>> (31 - (pos & 31))) & 1;
}

function nodeBitAt<T>(node: Node<T>, pos: number): number {
  return bitAt(node.w0, node.w1, node.w2, node.w3, pos);
}

function readWord(buf: Uint8Array, at: number): number {
  return (buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!;
}

function nodeAddress<T>(node: Node<T>): Uint8Array {
  const out = new Uint8Array(node.len);
  const view = new DataView(out.buffer);
  view.setInt32(0, node.w0);
  if (node.len === 16) {
    view.setInt32(4, node.w1);
    view.setInt32(8, node.w2);
    view.setInt32(12, node.w3);
  }
  return out;
}

function checkPrefix(ip: Uint8Array, cidr: number): void {
  if (!(ip instanceof Uint8Array)) {
    throw new TypeError(`expected a Uint8Array address, got ${ip === null ? 'null' : typeof ip}`);
  }
  if (ip.length !== 4 && ip.length !== 16) {
    throw new RangeError(`expected a 4- or 16-byte address, got ${ip.length} bytes`);
  }
  if (!Number.isInteger(cidr) || cidr < 0 || cidr > ip.length * 8) {
    throw new RangeError(`expected a cidr in 0..${ip.length * 8}, got ${cidr}`);
  }
}

/** tests: walks the trie and throws on a broken invariant; core/index.ts does not export it. */
export const CHECK_INVARIANTS: unique symbol = Symbol('checkInvariants');

/**
 * Maps IPv4 and IPv6 prefixes to values (peers), answering longest-prefix matches. Each prefix
 * has at most one owner; a value may own many prefixes, listed in the order it gained them.
 * Values are compared by identity (they are Map keys).
 */
export class AllowedIps<T> {
  #root4: Node<T> | null = null;
  #root6: Node<T> | null = null;
  #size = 0;
  readonly #owners = new Map<T, OwnerList<T>>();

  /**
   * Makes `value` the owner of ip/cidr (host bits are ignored), taking it from any previous
   * owner. Throws TypeError/RangeError for an address that is not 4/16 bytes or a bad cidr.
   */
  insert(ip: Uint8Array, cidr: number, value: T): void {
    checkPrefix(ip, cidr);
    const len = ip.length as 4 | 16;
    const a0 = maskWord(readWord(ip, 0), cidr, 0);
    const a1 = len === 16 ? maskWord(readWord(ip, 4), cidr, 32) : 0;
    const a2 = len === 16 ? maskWord(readWord(ip, 8), cidr, 64) : 0;
    const a3 = len === 16 ? maskWord(readWord(ip, 12), cidr, 96) : 0;

    let parent: Node<T> | null = null;
    let node = len === 4 ? this.#root4 : this.#root6;
    let common = 0;
    // Descend while the node's prefix is a prefix of (or equal to) the new one.
    while (node !== null) {
      common = commonBits(node, a0, a1, a2, a3);
      if (node.cidr > cidr || common < node.cidr) break;
      if (node.cidr === cidr) {
        this.#own(node, value);
        return;
      }
      parent = node;
      node = bitAt(a0, a1, a2, a3, node.cidr) === 1 ? node.c1 : node.c0;
    }

    const fresh = new Node<T>(len, a0, a1, a2, a3, cidr);
    this.#own(fresh, value);
    if (node === null) {
      this.#replaceChild(len, parent, null, fresh, bitAt(a0, a1, a2, a3, parent === null ? 0 : parent.cidr));
    } else if (common >= cidr) {
      // The new prefix contains `node`: it slots in above it.
      this.#replaceChild(len, parent, node, fresh, 0);
      this.#setChild(fresh, nodeBitAt(node, cidr), node);
    } else {
      // The prefixes part ways at bit `common`, inside both: a junction holds them apart.
      const junction = new Node<T>(len, a0, a1, a2, a3, common);
      this.#replaceChild(len, parent, node, junction, 0);
      this.#setChild(junction, bitAt(a0, a1, a2, a3, common), fresh);
      this.#setChild(junction, nodeBitAt(node, common), node);
    }
  }

  /**
   * Removes ip/cidr (host bits ignored) if `value` owns exactly that prefix; returns whether it
   * did. Shorter prefixes covering the range match again afterwards.
   */
  remove(ip: Uint8Array, cidr: number, value: T): boolean {
    checkPrefix(ip, cidr);
    const len = ip.length as 4 | 16;
    const a0 = readWord(ip, 0);
    const a1 = len === 16 ? readWord(ip, 4) : 0;
    const a2 = len === 16 ? readWord(ip, 8) : 0;
    const a3 = len === 16 ? readWord(ip, 12) : 0;
    let node = len === 4 ? this.#root4 : this.#root6;
    while (node !== null && node.cidr <= cidr && commonBits(node, a0, a1, a2, a3) >= node.cidr) {
      if (node.cidr === cidr) {
        if (!node.owned || node.value !== value) return false;
        this.#removeNode(node);
        return true;
      }
      node = bitAt(a0, a1, a2, a3, node.cidr) === 1 ? node.c1 : node.c0;
    }
    return false;
  }

  /** Removes every prefix `value` owns (a peer being deleted or having its list replaced). */
  removeValue(value: T): void {
    const list = this.#owners.get(value);
    if (list === undefined) return;
    for (let node = list.head; node !== null; ) {
      const next = node.next;
      this.#removeNode(node);
      node = next;
    }
  }

  /**
   * Longest-prefix match for the address at buf[offset..offset+4) (family 4) or
   * buf[offset..offset+16) (family 6), e.g. straight from a packet header. Allocation-free.
   * Returns undefined for no match or a buffer too short. Throws RangeError for another family.
   */
  lookup(family: 4 | 6, buf: Uint8Array, offset: number): T | undefined {
    let node: Node<T> | null;
    let a0: number;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    if (family === 4) {
      if (!(offset >= 0 && offset + 4 <= buf.length)) return undefined;
      node = this.#root4;
      a0 = readWord(buf, offset);
    } else if (family === 6) {
      if (!(offset >= 0 && offset + 16 <= buf.length)) return undefined;
      node = this.#root6;
      a0 = readWord(buf, offset);
      a1 = readWord(buf, offset + 4);
      a2 = readWord(buf, offset + 8);
      a3 = readWord(buf, offset + 12);
    } else {
      throw new RangeError(`expected family 4 or 6, got ${String(family)}`);
    }
    let best: T | undefined = undefined;
    // Every descendant extends its ancestor's prefix, so the first mismatch ends the search.
    while (node !== null) {
      const cidr = node.cidr;
      if (commonBits(node, a0, a1, a2, a3) < cidr) break;
      if (node.owned) best = node.value;
      if (cidr === node.len * 8) break;
      node = bitAt(a0, a1, a2, a3, cidr) === 1 ? node.c1 : node.c0;
    }
    return best;
  }

  /** The prefixes `value` owns, in the order it gained them; fresh arrays the caller may keep. */
  entriesOf(value: T): Array<{ ip: Uint8Array; cidr: number }> {
    const out: Array<{ ip: Uint8Array; cidr: number }> = [];
    this.forEachOf(value, (ip, cidr) => out.push({ ip, cidr }));
    return out;
  }

  /** Calls fn(ip, cidr) for each prefix `value` owns, in the order it gained them. */
  forEachOf(value: T, fn: (ip: Uint8Array, cidr: number) => void): void {
    // Read `next` before calling out, so fn may remove the prefix it is shown.
    for (let node = this.#owners.get(value)?.head ?? null; node !== null; ) {
      const next = node.next;
      fn(nodeAddress(node), node.cidr);
      node = next;
    }
  }

  /** Number of prefixes `value` owns. */
  countOf(value: T): number {
    return this.#owners.get(value)?.count ?? 0;
  }

  /** Number of prefixes stored, both families. */
  get size(): number {
    return this.#size;
  }

  /** Removes everything. */
  clear(): void {
    this.#root4 = null;
    this.#root6 = null;
    this.#size = 0;
    this.#owners.clear();
  }

  /**
   * Walks the whole trie and throws Error if a structural invariant is broken (child order,
   * parent links, junctions with two children, counts). For tests; O(total).
   */
  [CHECK_INVARIANTS](): void {
    let owned = 0;
    const visit = (node: Node<T>, parent: Node<T> | null, len: 4 | 16): void => {
      const fail = (why: string): never => {
        throw new Error(`allowed-ips invariant: ${why} at /${node.cidr}`);
      };
      if (node.parent !== parent) fail('parent link');
      if (node.len !== len) fail('family');
      if (parent !== null) {
        if (node.cidr <= parent.cidr) fail('cidr not increasing');
        if (commonBits(node, parent.w0, parent.w1, parent.w2, parent.w3) < parent.cidr) fail('prefix');
        if ((parent.c1 === node ? 1 : 0) !== nodeBitAt(node, parent.cidr)) fail('child side');
      }
      if (!node.owned && (node.c0 === null || node.c1 === null)) fail('junction without two children');
      if (node.owned) owned++;
      if (node.c0 !== null) visit(node.c0, node, len);
      if (node.c1 !== null) visit(node.c1, node, len);
    };
    if (this.#root4 !== null) visit(this.#root4, null, 4);
    if (this.#root6 !== null) visit(this.#root6, null, 16);
    if (owned !== this.#size) throw new Error(`allowed-ips invariant: size ${this.#size}, found ${owned}`);
    let listed = 0;
    for (const list of this.#owners.values()) {
      let n = 0;
      for (let node = list.head; node !== null; node = node.next) n++;
      if (n !== list.count || n === 0) throw new Error('allowed-ips invariant: owner list count');
      listed += n;
    }
    if (listed !== this.#size) throw new Error(`allowed-ips invariant: lists hold ${listed}`);
  }

  // Like wireguard-go's insert (removeFromPeerEntries, then addToPeerEntries), a prefix given
  // again moves to the end of its owner's list, even when the owner is the same: get=1 order.
  #own(node: Node<T>, value: T): void {
    if (node.owned) {
      this.#unlinkOwner(node);
    } else {
      this.#size++;
    }
    node.owned = true;
    node.value = value;
    let list = this.#owners.get(value);
    if (list === undefined) {
      list = { head: null, tail: null, count: 0 };
      this.#owners.set(value, list);
    }
    node.prev = list.tail;
    node.next = null;
    if (list.tail === null) list.head = node;
    else list.tail.next = node;
    list.tail = node;
    list.count++;
  }

  #unlinkOwner(node: Node<T>): void {
    const list = this.#owners.get(node.value as T)!;
    if (node.prev === null) list.head = node.next;
    else node.prev.next = node.next;
    if (node.next === null) list.tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = null;
    // Forget empty owners so a deleted peer is not kept alive by the table.
    if (--list.count === 0) this.#owners.delete(node.value as T);
  }

  #removeNode(node: Node<T>): void {
    this.#unlinkOwner(node);
    node.owned = false;
    node.value = undefined;
    this.#size--;
    if (node.c0 !== null && node.c1 !== null) return; // still needed as a junction
    const child = node.c0 ?? node.c1;
    const parent = node.parent;
    this.#replaceChild(node.len, parent, node, child, 0);
    node.parent = node.c0 = node.c1 = null;
    // A junction left with one child no longer separates anything: splice it out too.
    if (child === null && parent !== null && !parent.owned) {
      const other = parent.c0 ?? parent.c1;
      this.#replaceChild(parent.len, parent.parent, parent, other, 0);
      parent.parent = parent.c0 = parent.c1 = null;
    }
  }

  #setChild(parent: Node<T>, bit: number, child: Node<T>): void {
    if (bit === 1) parent.c1 = child;
    else parent.c0 = child;
    child.parent = parent;
  }

  /** Puts `repl` where `old` hangs under `parent` (or at the root); `bit` picks the side when old is null. */
  #replaceChild(len: 4 | 16, parent: Node<T> | null, old: Node<T> | null, repl: Node<T> | null, bit: number): void {
    if (parent === null) {
      if (len === 4) this.#root4 = repl;
      else this.#root6 = repl;
    } else if (old !== null ? parent.c0 === old : bit === 0) {
      parent.c0 = repl;
    } else {
      parent.c1 = repl;
    }
    if (repl !== null) repl.parent = parent;
  }
}
