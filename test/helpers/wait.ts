// Waiting in tests: the one polling loop (waitFor, and until that throws on timeout) and sleep
// (src/io/wait.ts's, on real timers).

export { sleep } from '../../src/io/wait.js';

/** A check's "not yet": undefined, null or false. */
type NotYet = undefined | null | false;

/**
 * Polls `check` every `everyMs` until it returns something other than undefined/null/false and
 * resolves with that, or resolves with undefined once `timeoutMs` passed. A throwing check rejects.
 */
export async function waitFor<T>(check: () => T | NotYet | Promise<T | NotYet>, timeoutMs: number, everyMs = 50): Promise<T | undefined> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (performance.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * {@link waitFor}, but throws "timed out after N ms: WHAT" when `check` never held; resolves with
 * its value.
 */
export async function until<T>(what: string, timeoutMs: number, check: () => T | NotYet | Promise<T | NotYet>, everyMs = 20): Promise<T> {
  const v = await waitFor(check, timeoutMs, everyMs);
  if (v === undefined) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
  return v;
}
