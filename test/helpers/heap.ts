// Heap measurements for memory bounds in tests and fuzz figures: a full garbage collection first,
// so what is counted is what is still reachable.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes reachable right now (JS heap plus ArrayBuffer memory), measured after two full GCs. */
export function retainedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
