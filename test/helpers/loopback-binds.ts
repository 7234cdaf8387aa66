// Loopback binds for the socket bind suites (test/io/bind.test.ts, bind-native.test.ts): one
// factory on 127.0.0.1 and ::1 whose binds go on the caller's list to close after each test.

import type { Bind } from '../../src/io/bind.js';

/** Options every socket bind takes: where it listens. */
interface LoopbackOptions {
  readonly ipv4Address?: string | null;
  readonly ipv6Address?: string | null;
}

/**
 * `bind(options)` makes a bind on 127.0.0.1 and ::1 (options override) and pushes it on `open`;
 * `openedPair(bOptions)` makes two and opens both on free ports.
 */
export function loopbackBinds<O extends LoopbackOptions, B extends Bind>(create: (options: O) => B, open: { push(b: NoInfer<B>): unknown }) {
  const bind = (options: O = {} as O): B => {
    const b = create({ ipv4Address: '127.0.0.1', ipv6Address: '::1', ...options });
    open.push(b);
    return b;
  };
  const openedPair = async (bOptions: O = {} as O): Promise<[B, B]> => {
    const pair: [B, B] = [bind(), bind(bOptions)];
    for (const x of pair) await x.open(0);
    return pair;
  };
  return { bind, openedPair };
}
