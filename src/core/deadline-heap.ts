// An indexed binary min-heap of items keyed by deadline (ms): the engine's single timer queue, so
// no per-peer timer and no scan of all peers (DESIGN.md "Timers").

/** What an item stores for the heap: its slot (-1 when absent) and its key. */
export interface HeapItem {
  heapIndex: number;
  heapKey: number;
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
    return top === undefined ? Infinity : top.heapKey;
  }

  /** Inserts `item` with `key`, or moves it to `key` if already held. Throws RangeError on NaN. */
  schedule(item: T, key: number): void {
    if (Number.isNaN(key)) throw new RangeError('expected a deadline, got NaN');
    const items = this.#items;
    if (item.heapIndex < 0) {
      item.heapKey = key;
      item.heapIndex = items.length;
      items.push(item);
      this.#up(item.heapIndex);
      return;
    }
    const old = item.heapKey;
    item.heapKey = key;
    if (key < old) this.#up(item.heapIndex);
    else if (key > old) this.#down(item.heapIndex);
  }

  /** Removes `item` if held. */
  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const items = this.#items;
    const last = items.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    items[i] = last;
    last.heapIndex = i;
    this.#down(i);
    this.#up(last.heapIndex);
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
      if (parent.heapKey <= item.heapKey) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && items[right]!.heapKey < items[child]!.heapKey) child = right;
      const c = items[child]!;
      if (c.heapKey >= item.heapKey) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
