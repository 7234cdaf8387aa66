// sleep and until (src/io/wait.ts): the one copy of each for the layers above io/.
import { describe, expect, it } from 'vitest';
import { sleep, until } from '../../src/io/wait.js';

describe('sleep', () => {
  it('resolves after the delay, or rejects with the abort reason (also when already aborted)', async () => {
    const t0 = performance.now();
    await sleep(20);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
    const abort = new AbortController();
    const p = sleep(10_000, abort.signal);
    abort.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    await expect(sleep(1, abort.signal)).rejects.toThrow('stop');
  });
});

describe('until', () => {
  it('polls until the check holds, sync or async', async () => {
    let n = 0;
    await until('n to reach 3', 1000, () => ++n >= 3, undefined, 1);
    expect(n).toBe(3);
    await until('an async check', 1000, async () => true);
  });

  it('times out naming what it waited for; a throwing check and an abort end it too', async () => {
    await expect(until('the moon', 30, () => false, undefined, 5)).rejects.toThrow('timed out after 0.03 s waiting for the moon');
    await expect(until('x', 1000, () => {
      throw new Error('check broke');
    })).rejects.toThrow('check broke');
    const abort = new AbortController();
    const p = until('forever', 60_000, () => false, abort.signal);
    setTimeout(() => abort.abort(new Error('aborted')), 10);
    const t0 = performance.now();
    await expect(p).rejects.toThrow('aborted');
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
