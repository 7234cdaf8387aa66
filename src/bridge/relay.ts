// The bridge relay on a UDP port (plexd: 51821): a RelayTable (relay-table.ts) driven by one Bind.
// Each datagram is decided by the table and forwarded unchanged, answered (STUN, relay binding) or
// dropped and counted. No timers: expiry is checked on use and when sessions are added or listed.

import type { RelaySession } from '../api/types.js';
import { checkPort, type Bind, type Endpoint } from '../io/bind.js';
import { systemClock, type Clock } from '../io/clock.js';
import { singleAddressBind } from '../nat/stun-server.js';
import { RelayTable, type RelayAddError, type RelayCounters, type RelaySessionState, type RelayTableOptions } from './relay-table.js';

/** plexd's relay port. */
export const DEFAULT_RELAY_PORT = 51821;

/** Options of {@link createRelay}. */
export interface RelayOptions extends RelayTableOptions {
  /** Address and port to listen on; default 0.0.0.0:51821. Port 0: any free port. */
  readonly listen?: Endpoint;
  /** Transport; default a UdpBind on `listen.address` (tests pass a MemoryBind). */
  readonly bind?: Bind;
  /** Monotonic time for deadlines, wall time to read expires_at; default the system clock. */
  readonly clock?: Clock;
}

/** A running relay. */
export interface Relay {
  /** The bound address and port. */
  readonly address: Endpoint;
  readonly counters: RelayCounters;
  /** Counters of the STUN server on the relay port (undefined when disabled). */
  readonly stunCounters: RelayTable['stunCounters'];
  /** Adds or refreshes a session; returns why not ('full', 'invalid', 'expired') or undefined. */
  addSession(session: RelaySession): RelayAddError | undefined;
  /** Removes a session (relay_session_revoked); false when unknown. */
  removeSession(sessionId: string): boolean;
  /** Makes the live set equal to a state pull's bridge.relay.sessions; returns the failures. */
  reconcile(sessions: readonly RelaySession[]): Map<string, RelayAddError>;
  /** Live sessions. */
  sessions(): RelaySessionState[];
  /** Closes the socket; sessions are forgotten. Idempotent. */
  close(): void;
}

/** Starts a relay. Rejects with BindError when the port cannot be bound; RangeError for bad options. */
export async function createRelay(options: RelayOptions = {}): Promise<Relay> {
  const listen = options.listen ?? { address: '0.0.0.0', port: DEFAULT_RELAY_PORT };
  checkPort(listen.port);
  const clock = options.clock ?? systemClock;
  const table = new RelayTable(options);
  const bind = options.bind ?? singleAddressBind(listen.address);
  bind.onReceive((data, from) => {
    const action = table.handle(data, from, clock.now());
    if (action.kind === 'forward') {
      if (bind.send(data, action.to) === 'dropped') table.sendFailed();
    } else if (action.kind === 'reply') {
      bind.send(action.data, from);
    }
  });
  const port = await bind.open(listen.port);
  return {
    address: { address: listen.address, port },
    counters: table.counters,
    stunCounters: table.stunCounters,
    addSession: (s) => table.addSession(s, clock.now(), clock.wallMs()),
    removeSession: (id) => table.removeSession(id),
    reconcile: (list) => table.reconcile(list, clock.now(), clock.wallMs()),
    sessions: () => table.sessions(clock.now()),
    close: () => bind.close(),
  };
}
