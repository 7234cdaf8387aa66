// EventBus backpressure (src/control-plane/event-bus.ts): a stream whose client stopped reading is
// dropped when its writes have not drained for maxStreamStallMs (checked at each keep-alive, on
// the store's clock), even while its buffer stays under the byte cap; a stream that drains stays.

import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/io/clock.js';
import { EventBus } from '../../src/control-plane/event-bus.js';
import { ControlPlaneStore, type NodeRow } from '../../src/control-plane/store.js';

/** A response twin: write() reports backpressure while `full`, buffering what it was given. */
class FakeResponse extends EventEmitter {
  full = true;
  writableLength = 0;
  writableEnded = false;
  destroyed = false;
  readonly socket = { setTimeout: () => undefined, setNoDelay: () => undefined };
  writeHead(): this {
    return this;
  }
  write(text: string): boolean {
    if (!this.full) return true;
    this.writableLength += text.length;
    return false;
  }
  drain(): void {
    this.full = false;
    this.writableLength = 0;
    this.emit('drain');
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
  end(): void {
    this.writableEnded = true;
    this.emit('close');
  }
}

describe('EventBus stalled streams', () => {
  let dir: string | undefined;
  let bus: EventBus | undefined;
  let store: ControlPlaneStore | undefined;
  afterEach(() => {
    bus?.close();
    store?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('drops a stream whose writes stall past the limit and keeps one that drains', async () => {
    dir = mkdtempSync(join(tmpdir(), 'bus-'));
    const clock = new ManualClock();
    store = ControlPlaneStore.open(join(dir, 'cp.db'), { clock });
    bus = new EventBus(store, { keepAliveMs: 20, maxStreamStallMs: 5000 });
    const node = (id: string) => ({ node_id: id, project_id: 'default' }) as NodeRow;
    const stuck = new FakeResponse();
    const reading = new FakeResponse();
    bus.open(node('00000000-0000-4000-8000-000000000001'), stuck as unknown as ServerResponse, undefined);
    bus.open(node('00000000-0000-4000-8000-000000000002'), reading as unknown as ServerResponse, undefined);
    reading.drain();
    await new Promise((r) => setTimeout(r, 100)); // keep-alives: small, far under the byte cap
    expect(stuck.destroyed).toBe(false);
    expect(stuck.writableLength).toBeLessThan(1024);
    clock.advance(5000);
    await new Promise((r) => setTimeout(r, 100));
    expect(stuck.destroyed).toBe(true);
    expect(reading.destroyed).toBe(false);
    expect(bus.dropped).toEqual({ buffer: 0, stalled: 1 });
    expect(bus.size).toBe(1);
  });
});
