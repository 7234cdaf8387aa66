// A tiny TCP load balancer for the replica tests (issue 20): listens on 127.0.0.1, hands each new
// connection to the next backend in round-robin order and pipes bytes both ways. A backend whose
// connect fails (a killed replica) is skipped for the next one; when none answers the client is
// closed. close() destroys every socket it holds.

import { connect, createServer, type Server, type Socket } from 'node:net';

/** How long one backend may take to accept before the next is tried, in ms. */
const CONNECT_TIMEOUT_MS = 2000;

/** A running proxy (see startTcpProxy). */
export interface TcpProxy {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /** http://127.0.0.1:PORT, for HTTP clients. */
  readonly url: string;
  /** Replaces the backend list ("host:port" each); open connections are left alone. */
  setBackends(backends: readonly string[]): void;
  /** Connections handed to each backend so far (successful connects), by "host:port". */
  readonly counts: ReadonlyMap<string, number>;
  /** Client connections accepted that found no backend and were closed. */
  readonly refused: number;
  /** Client connections currently piped to a backend. */
  active(): number;
  /** Destroys every client and backend socket and stops listening. */
  close(): Promise<void>;
}

/** Splits "host:port" (host may be a bracketed IPv6 address). Throws RangeError otherwise. */
function parseBackend(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (m === null || m[1] === undefined || port < 1 || port > 65535) throw new RangeError(`expected a backend "host:port", got ${JSON.stringify(s)}`);
  return { host: m[1], port };
}

/** Starts a proxy on 127.0.0.1:0 over `backends` ("host:port" each). */
export async function startTcpProxy(backends: readonly string[]): Promise<TcpProxy> {
  let list = backends.map((b) => ({ name: b, ...parseBackend(b) }));
  let next = 0;
  let refused = 0;
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const pairs = new Set<Socket>(); // client sockets with a connected backend

  const track = (s: Socket): Socket => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
    return s;
  };

  /** Connects to the backends in order from `start`, resolving the first socket that connects. */
  const dial = async (order: typeof list): Promise<{ socket: Socket; name: string } | undefined> => {
    for (const b of order) {
      const socket = await new Promise<Socket | undefined>((resolve) => {
        const s = track(connect({ host: b.host, port: b.port }));
        const timer = setTimeout(() => {
          s.destroy();
          resolve(undefined);
        }, CONNECT_TIMEOUT_MS);
        s.once('connect', () => {
          clearTimeout(timer);
          resolve(s);
        });
        s.once('error', () => {
          clearTimeout(timer);
          s.destroy();
          resolve(undefined);
        });
      });
      if (socket !== undefined) return { socket, name: b.name };
    }
    return undefined;
  };

  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    const start = list.length === 0 ? 0 : next++ % list.length;
    const order = [...list.slice(start), ...list.slice(0, start)];
    void dial(order).then((up) => {
      if (up === undefined || client.destroyed) {
        if (up === undefined) refused += 1;
        up?.socket.destroy();
        client.destroy();
        return;
      }
      counts.set(up.name, (counts.get(up.name) ?? 0) + 1);
      pairs.add(client);
      client.once('close', () => pairs.delete(client));
      // A reset on either side resets the other (a killed replica looks killed to the client);
      // an orderly end is passed on as an end, after what is in flight.
      for (const [a, b] of [[client, up.socket], [up.socket, client]] as const) {
        a.pipe(b);
        a.once('error', () => b.destroy());
        a.once('close', (hadError) => (hadError ? b.destroy() : b.end()));
      }
      client.resume();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no port');
  const port = address.port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    counts,
    get refused() {
      return refused;
    },
    setBackends(b) {
      list = b.map((s) => ({ name: s, ...parseBackend(s) }));
    },
    active: () => pairs.size,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
