// An indexed binary min-heap of items keyed by deadline (ms): the engine's single timer queue, so
// no per-peer timer and no scan of all peers (DESIGN.md "Timers").

/** The property keys of an item's heap slot: symbols, so no item's public face shows them. */
export const HEAP_INDEX: unique symbol = Symbol('heapIndex');
export const HEAP_KEY: unique symbol = Symbol('heapKey');

/** What an item stores for the heap: its slot (-1 when absent) and its key. */
export interface HeapItem {
  [HEAP_INDEX]: number;
  [HEAP_KEY]: number;
}

/** Min-heap with O(log n) insert, re-key, remove and pop; each item is in at most one heap. */
export class DeadlineHeap<T extends HeapItem> {
  readonly #items: T[] = [];

  /** Number of items held. */
  get size(): number {
    return this.#items.length;
  }

  /** The item with the smallest key, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** The smallest key, or Infinity when empty. */
  peekKey(): number {
    const top = this.#items[0];
    return top === undefined ? Infinity : top[HEAP_KEY];
  }

  /** Inserts `item` with `key`, or moves it to `key` if already held. Throws RangeError on NaN. */
  schedule(item: T, key: number): void {
    if (Number.isNaN(key)) throw new RangeError('expected a deadline, got NaN');
    const items = this.#items;
    if (item[HEAP_INDEX] < 0) {
      item[HEAP_KEY] = key;
      item[HEAP_INDEX] = items.length;
      items.push(item);
      this.#up(item[HEAP_INDEX]);
      return;
    }
    const old = item[HEAP_KEY];
    item[HEAP_KEY] = key;
    if (key < old) this.#up(item[HEAP_INDEX]);
    else if (key > old) this.#down(item[HEAP_INDEX]);
  }

  /** Removes `item` if held. */
  remove(item: T): void {
    const i = item[HEAP_INDEX];
    if (i < 0) return;
    const items = this.#items;
    const last = items.pop()!;
    item[HEAP_INDEX] = -1;
    if (last === item) return;
    items[i] = last;
    last[HEAP_INDEX] = i;
    this.#down(i);
    this.#up(last[HEAP_INDEX]);
  }

  /** Removes and returns the item with the smallest key, or undefined when empty. */
  pop(): T | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  #up(i: number): void {
    const items = this.#items;
    const item = items[i]!;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex]!;
      if (parent[HEAP_KEY] <= item[HEAP_KEY]) break;
      items[i] = parent;
      parent[HEAP_INDEX] = i;
      i = parentIndex;
    }
    items[i] = item;
    item[HEAP_INDEX] = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && items[right]![HEAP_KEY] < items[child]![HEAP_KEY]) child = right;
      const c = items[child]!;
      if (c[HEAP_KEY] >= item[HEAP_KEY]) break;
      items[i] = c;
      c[HEAP_INDEX] = i;
      i = child;
    }
    items[i] = item;
    item[HEAP_INDEX] = i;
  }
}
