// The bridge relay on a UDP port (plexd: 51821): a RelayTable (relay-table.ts) driven by one Bind.
// Each datagram is decided by the table and forwarded unchanged, answered (STUN, relay binding) or
// dropped and counted. Expiry is checked on use, when sessions are added or listed, and by a sweep
// timer (unref'd) that releases expired sessions' ports.
//
// One port per session (docs/nat.md): a session with `relay_port` gets its own Bind on
// `listen.address`:relay_port, opened when the session is added and closed when it is removed
// (revoked, expired, reconciled away, relay closed). The table's session limit bounds the sockets.
// The base port keeps serving STUN, relay bindings and sessions without a port.

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
  /** Makes the Bind of a session port; default a UdpBind on `listen.address` (tests: MemoryBind). */
  readonly sessionBind?: () => Bind;
  /** Period of the expiry sweep (ms); default 1000. 0: no timer (sweeps on use only). */
  readonly sweepMs?: number;
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
  /** Session ports with an open (or opening) socket. */
  ports(): number[];
  /** Resolves when every session port being opened is open or failed; returns the failures
   *  since the last call (session ID -> error message; such a session is removed). */
  settled(): Promise<Map<string, string>>;
  /** Removes expired sessions and closes their ports (the timer does this every sweepMs). */
  sweep(): void;
  /** Closes the socket; sessions are forgotten. Idempotent. */
  close(): void;
}

/** Starts a relay. Rejects with BindError when the port cannot be bound; RangeError for bad options. */
export async function createRelay(options: RelayOptions = {}): Promise<Relay> {
  const listen = options.listen ?? { address: '0.0.0.0', port: DEFAULT_RELAY_PORT };
  checkPort(listen.port);
  const clock = options.clock ?? systemClock;
  const makeBind = options.sessionBind ?? (() => singleAddressBind(listen.address));
  /** Session ID -> its port's Bind. */
  const portBinds = new Map<string, { readonly port: number; readonly bind: Bind }>();
  const pending = new Set<Promise<void>>();
  let failures = new Map<string, string>();
  let closed = false;
  const table = new RelayTable({
    ...options,
    basePort: listen.port === 0 ? undefined : listen.port,
    onRemove: (id) => {
      const pb = portBinds.get(id);
      if (pb === undefined) return;
      portBinds.delete(id);
      pb.bind.close();
    },
  });
  const serve = (b: Bind, localPort: number | undefined) =>
    b.onReceive((data, from) => {
      const action = table.handle(data, from, clock.now(), localPort);
      if (action.kind === 'forward') {
        if (b.send(data, action.to) === 'dropped') table.sendFailed();
      } else if (action.kind === 'reply') {
        b.send(action.data, from);
      }
    });
  const bind = options.bind ?? singleAddressBind(listen.address);
  serve(bind, undefined);
  const port = await bind.open(listen.port);

  /** Opens a socket for each live session port that has none. */
  const openPorts = () => {
    if (closed) return;
    for (const s of table.sessions(clock.now())) {
      if (s.relayPort === undefined || portBinds.has(s.sessionId)) continue;
      const b = makeBind();
      const entry = { port: s.relayPort, bind: b };
      portBinds.set(s.sessionId, entry);
      serve(b, s.relayPort);
      const p = b.open(s.relayPort).then(
        () => {
          // Removed or closed while opening: onRemove closed it before it was open; close again.
          if (portBinds.get(s.sessionId) !== entry) b.close();
        },
        (err: unknown) => {
          failures.set(s.sessionId, (err as Error)?.message ?? String(err));
          if (portBinds.get(s.sessionId) === entry) portBinds.delete(s.sessionId);
          b.close();
          table.removeSession(s.sessionId);
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  };
  const timer = options.sweepMs === 0 ? undefined : setInterval(() => table.sessions(clock.now()), options.sweepMs ?? 1000);
  timer?.unref?.();
  return {
    address: { address: listen.address, port },
    counters: table.counters,
    stunCounters: table.stunCounters,
    addSession: (s) => {
      const err = table.addSession(s, clock.now(), clock.wallMs());
      openPorts();
      return err;
    },
    removeSession: (id) => table.removeSession(id),
    reconcile: (list) => {
      const failed = table.reconcile(list, clock.now(), clock.wallMs());
      openPorts();
      return failed;
    },
    sessions: () => table.sessions(clock.now()),
    ports: () => [...portBinds.values()].map((pb) => pb.port),
    settled: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
      const out = failures;
      failures = new Map();
      return out;
    },
    sweep: () => void table.sessions(clock.now()),
    close: () => {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      for (const pb of portBinds.values()) pb.bind.close();
      portBinds.clear();
      bind.close();
    },
  };
}
