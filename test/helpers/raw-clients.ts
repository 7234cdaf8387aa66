// Raw TCP / unix-socket clients for the slow-client tests of the HTTP listeners (control plane,
// agent health and node API): connections that send what they are given and never read.

import { connect, type Socket } from 'node:net';
import { until } from './wait.js';

/** Where to connect: a TCP port (host default 127.0.0.1, optional local address) or a unix socket. */
export type RawTarget = { readonly port: number; readonly host?: string; readonly localAddress?: string } | { readonly path: string };

/**
 * Opens `n` connections to `to`, each sending `first` (if any) and never reading. Resolves once
 * each is connected or already closed (a server may refuse at once).
 */
export function rawClients(n: number, to: RawTarget, first?: string): Promise<Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<Socket>((resolve) => {
      const s = 'path' in to
        ? connect(to.path)
        : connect({ host: to.host ?? '127.0.0.1', port: to.port, ...(to.localAddress === undefined ? {} : { localAddress: to.localAddress }) });
      s.on('error', () => undefined);
      s.pause();
      s.once('connect', () => {
        if (first !== undefined) s.write(first);
        resolve(s);
      });
      s.once('close', () => resolve(s));
    })),
  );
}

/** until (wait.ts) in this file's argument order: polls `fn` every 50 ms until it is true; rejects
 *  after `ms` (a hang guard, not a speed bound). */
export function pollUntil(fn: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  return until(what, ms, fn, 50).then(() => undefined);
}
