// Worker thread of bench/control-plane.mjs: the bench's own store on the bench database (what the
// `control-plane token create` and `policy set` commands do), off the main thread so a store call
// that takes seconds does not stall the simulated agents' event loop and inflate their latencies.
// workerData: { db, secretsKeyFile }. Messages in: { op: 'tokens', n } -> { tokens },
// { op: 'policy', rules } -> { startMs, endMs } (wall clock, performance.timeOrigin based),
// { op: 'close' } -> { closed: true }; a failure answers { error }.

import { parentPort, workerData } from 'node:worker_threads';
import { ControlPlaneStore } from '../../dist/control-plane/store.js';

/** Awaited, so a backend whose store is asynchronous works the same. */
const store = await ControlPlaneStore.open(workerData.db, { secretsKeyFile: workerData.secretsKeyFile });
const wallNow = () => performance.timeOrigin + performance.now();

parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'tokens') {
      const tokens = [];
      for (let i = 0; i < msg.n; i += 50) {
        const batch = await Promise.all(Array.from({ length: Math.min(50, msg.n - i) }, () => store.createToken('default', 3_600_000)));
        for (const t of batch) tokens.push(t.token);
      }
      parentPort.postMessage({ tokens });
    } else if (msg.op === 'policy') {
      const startMs = wallNow();
      await store.setPolicy('default', msg.rules);
      parentPort.postMessage({ startMs, endMs: wallNow() });
    } else if (msg.op === 'close') {
      await store.close();
      parentPort.postMessage({ closed: true });
      parentPort.close();
    } else {
      throw new TypeError(`unknown op ${msg.op}`);
    }
  } catch (err) {
    parentPort.postMessage({ error: err.stack ?? String(err) });
  }
});
parentPort.postMessage({ ready: true });
