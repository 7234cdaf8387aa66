// Timer bookkeeping (whitepaper 6, wireguard-go timers.go) and the deadline heap, checked
// against a naive twin with random operations (STYLE.md item 10).

import { describe, expect, it } from 'vitest';
import { DeadlineHeap, HEAP_INDEX, HEAP_KEY } from '../../src/core/deadline-heap.js';
import { PeerTimers } from '../../src/core/timers.js';
import { seededInts } from '../helpers/rng.js';

describe('PeerTimers', () => {
  it('arms and cancels like wireguard-go', () => {
    const t = new PeerTimers();
    expect(t.next()).toBe(Infinity);
    t.dataSent(1000, 100);
    expect(t.newHandshake).toBe(1000 + 15_000 + 100);
    t.dataSent(2000, 0); // already pending: unchanged
    expect(t.newHandshake).toBe(16_100);
    t.anyAuthenticatedPacketReceived();
    expect(t.newHandshake).toBe(Infinity);
    t.dataReceived(3000);
    expect(t.sendKeepalive).toBe(13_000);
    t.dataReceived(4000);
    expect(t.needAnotherKeepalive).toBe(true);
    t.anyAuthenticatedPacketSent();
    expect(t.sendKeepalive).toBe(Infinity);
    t.anyAuthenticatedPacketTraversal(5000, 0);
    expect(t.persistentKeepalive).toBe(Infinity);
    t.anyAuthenticatedPacketTraversal(5000, 25);
    expect(t.persistentKeepalive).toBe(30_000);
    t.handshakeInitiated(6000, 333);
    expect(t.retransmitHandshake).toBe(11_333);
    t.handshakeAttempts = 4;
    t.sentLastMinuteHandshake = true;
    t.handshakeComplete();
    expect([t.retransmitHandshake, t.handshakeAttempts, t.sentLastMinuteHandshake]).toEqual([Infinity, 0, false]);
    t.sessionDerived(7000);
    expect(t.zeroKeyMaterial).toBe(547_000);
    expect(t.next()).toBe(30_000);
    t.stop();
    expect(t.next()).toBe(Infinity);
  });
});

interface Item {
  id: number;
  [HEAP_INDEX]: number;
  [HEAP_KEY]: number;
}

describe('DeadlineHeap', () => {
  it('matches a naive twin under random schedule/remove/pop', () => {
    const rnd = seededInts(99);
    const heap = new DeadlineHeap<Item>();
    const items: Item[] = Array.from({ length: 64 }, (_, id) => ({ id, [HEAP_INDEX]: -1, [HEAP_KEY]: Infinity }));
    const naive = new Map<number, number>();
    for (let step = 0; step < 20_000; step++) {
      const op = rnd(4);
      const item = items[rnd(items.length)]!;
      if (op <= 1) {
        const key = rnd(1000);
        heap.schedule(item, key);
        naive.set(item.id, key);
      } else if (op === 2) {
        heap.remove(item);
        naive.delete(item.id);
      } else {
        const min = Math.min(...naive.values());
        const top = heap.pop();
        if (naive.size === 0) expect(top).toBeUndefined();
        else {
          expect(top![HEAP_KEY]).toBe(min);
          expect(naive.get(top!.id)).toBe(min);
          naive.delete(top!.id);
        }
      }
      expect(heap.size).toBe(naive.size);
      expect(heap.peekKey()).toBe(naive.size === 0 ? Infinity : Math.min(...naive.values()));
    }
  });

  it('refuses NaN keys', () => {
    const heap = new DeadlineHeap<Item>();
    expect(() => heap.schedule({ id: 0, [HEAP_INDEX]: -1, [HEAP_KEY]: 0 }, NaN)).toThrow(RangeError);
  });
});
