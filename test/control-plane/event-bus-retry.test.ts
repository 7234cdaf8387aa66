// A scheduled pump runs from setImmediate, with nobody to report to: on PostgreSQL a lost
// connection made it throw there and ended the whole replica (seen once in CI's replica crash
// test). It must survive the failure and try again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { EventBus } from '../../src/control-plane/event-bus.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';

it('a scheduled pump that throws (database gone) is retried, not thrown out of setImmediate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-bus-'));
  const store = ControlPlaneStore.open(join(dir, 'cp.db'));
  const bus = new EventBus(store);
  try {
    const pump = vi.spyOn(bus, 'pump').mockImplementationOnce(() => {
      throw new Error('database unavailable: connection lost');
    });
    bus.schedulePump();
    await vi.waitFor(() => expect(pump).toHaveBeenCalledTimes(2), { timeout: 3000, interval: 20 });
  } finally {
    bus.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
