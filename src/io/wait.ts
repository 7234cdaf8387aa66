// Waiting helpers for the I/O-facing layers (control, conformance, agent, cli): a sleep and a
// poll-until that an AbortSignal ends early. One copy for every caller above io/.

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Polls `check` every `intervalMs` (default 50) until it returns true. Throws Error "timed out
 * after N s waiting for WHAT" once `timeoutMs` have passed, or the abort reason once `signal`
 * aborts; an error thrown by `check` propagates.
 */
export async function until(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>, signal?: AbortSignal, intervalMs = 50): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    signal?.throwIfAborted();
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs, signal);
  }
}
