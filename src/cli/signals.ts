// Shutdown signals of the long-running commands: SIGTERM and SIGINT both mean "stop cleanly".

/** Calls `handler` on every SIGTERM and SIGINT; returns the function that removes it again. */
export function onShutdownSignal(handler: (sig: NodeJS.Signals) => void): () => void {
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/** Resolves with the first SIGTERM or SIGINT (the handlers are removed then). */
export function untilSignalled(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const off = onShutdownSignal((sig) => {
      off();
      resolve(sig);
    });
  });
}

/**
 * Runs `shutdown(why)` once, at the first SIGTERM/SIGINT (why: the signal name) or end reported
 * through `onEnd` (why: its reason), with the signal handlers already removed. Resolves when
 * `shutdown` has finished; rejects with its error.
 */
export function untilShutdown(onEnd: (handler: (why: string) => void) => void, shutdown: (why: string) => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      off();
      shutdown(why).then(resolve, reject);
    };
    const off = onShutdownSignal(finish);
    onEnd(finish);
  });
}
