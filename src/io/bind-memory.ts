// The in-memory twin of the UDP transport (docs/STYLE.md 3; wireguard-go's bindtest): binds on
// a MemoryNetwork find each other by address:port. A filter sees every datagram and may drop or
// rewrite it, which is how tests simulate loss, reordering-free NAT, or an attacker.

import { copyBytes } from '../core/bytes.js';
import { parseIp } from '../core/ip.js';
import {
  checkFwmark,
  checkPort,
  newBindStats,
  type Bind,
  type BindStats,
  type Endpoint,
  type ReceiveHandler,
  type SendResult,
} from './bind.js';
import { BindError, checkFunction } from './errors.js';

/** One datagram in flight: `data` is the network's own copy. */
export interface MemoryDatagram {
  readonly from: Endpoint;
  readonly to: Endpoint;
  readonly data: Uint8Array;
}

/**
 * Decides the fate of a datagram: return it (or a rewritten copy: other from/to/data) to deliver,
 * or null to drop it. Runs at send time.
 */
export type MemoryFilter = (datagram: MemoryDatagram) => MemoryDatagram | null;

/** Options for {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /**
   * 'microtask' (default): datagrams arrive on a later microtask, in send order;
   * 'manual': only when deliver() is called (step-by-step tests with a manual clock).
   */
  readonly delivery?: 'microtask' | 'manual';
}

/** Counters of the virtual network. */
export interface MemoryNetworkStats {
  readonly delivered: number;
  /** Dropped by the filter. */
  readonly filtered: number;
  /** No bind at the destination address:port (real UDP would lose it silently too). */
  readonly unreachable: number;
}

const FIRST_EPHEMERAL_PORT = 49152;

// The network's side of its binds, keyed by symbols this module keeps: a user of MemoryNetwork
// can neither claim an address for another bind nor queue a datagram past a bind's checks.
const CLAIM: unique symbol = Symbol('claim');
const RELEASE: unique symbol = Symbol('release');
const TRANSMIT: unique symbol = Symbol('transmit');

// One spelling per address so '::1' and '0:0::1' meet. IPv6 is canonicalized by the URL parser.
function canonical(address: string): string {
  if (!address.includes(':')) return address;
  try {
    const host = new URL(`http://[${address}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
}

// '::ffff:a.b.c.d' (any spelling) as 'a.b.c.d': the socket binds send it over IPv4, since their
// IPv6 socket is V6ONLY. Undefined for anything else.
function ipv4Mapped(address: string): string | undefined {
  if (!/^::ffff:/i.test(address)) return undefined;
  const bytes = parseIp(address);
  return bytes?.length === 16 ? bytes.subarray(12).join('.') : undefined;
}

function key(address: string, port: number): string {
  return `${address}|${port}`;
}

/** A virtual UDP network. Create binds with createBind(addresses). */
export class MemoryNetwork {
  readonly #delivery: 'microtask' | 'manual';
  readonly #binds = new Map<string, MemoryBind>();
  readonly #queue: MemoryDatagram[] = [];
  readonly #stats = { delivered: 0, filtered: 0, unreachable: 0 };
  #filter: MemoryFilter | undefined;
  #scheduled = false;
  #nextPort = FIRST_EPHEMERAL_PORT;

  constructor(options: MemoryNetworkOptions = {}) {
    this.#delivery = options.delivery ?? 'microtask';
  }

  /** A bind reachable at each of `addresses` (IPv4 and/or IPv6 literals) once opened. */
  createBind(addresses: readonly string[]): MemoryBind {
    if (!Array.isArray(addresses) || addresses.length === 0 || addresses.some((a) => typeof a !== 'string' || a === '')) {
      throw new TypeError(`expected a non-empty array of IP address strings, got ${JSON.stringify(addresses)}`);
    }
    return new MemoryBind(this, addresses.map(canonical));
  }

  /** Installs (or with undefined removes) the filter applied to every datagram at send time. */
  setFilter(filter: MemoryFilter | undefined): void {
    if (filter !== undefined) checkFunction('filter', filter);
    this.#filter = filter;
  }

  /** Counters; the object is live. */
  get stats(): MemoryNetworkStats {
    return this.#stats;
  }

  /** Datagrams sent and not yet delivered. */
  get pendingCount(): number {
    return this.#queue.length;
  }

  /**
   * Delivers queued datagrams, including ones sent by handlers while delivering, up to `limit`
   * (default 100000, a guard against ping-pong loops). Returns how many were delivered.
   */
  deliver(limit = 100_000): number {
    let n = 0;
    while (n < limit) {
      const datagram = this.#queue.shift();
      if (datagram === undefined) break;
      const target = this.#binds.get(key(datagram.to.address, datagram.to.port));
      if (target === undefined) {
        this.#stats.unreachable++;
        continue;
      }
      this.#stats.delivered++;
      n++;
      target.receive(datagram.data, datagram.from);
    }
    return n;
  }

  /** Claims address:port for every address of `bind`; port 0 picks a free one. */
  [CLAIM](bind: MemoryBind, addresses: readonly string[], port: number): number {
    if (port === 0) {
      for (let tries = 0; tries < 16384; tries++) {
        const candidate = this.#nextPort;
        this.#nextPort = candidate >= 65535 ? FIRST_EPHEMERAL_PORT : candidate + 1;
        if (addresses.every((a) => !this.#binds.has(key(a, candidate)))) {
          port = candidate;
          break;
        }
      }
      if (port === 0) throw new BindError('ERR_BIND_FAILED', 'no free port on the memory network', { errno: 'EADDRINUSE' });
    } else {
      const taken = addresses.find((a) => this.#binds.has(key(a, port)));
      if (taken !== undefined) {
        throw new BindError('ERR_BIND_IN_USE', `memory network: ${taken}:${port} is in use`, { errno: 'EADDRINUSE' });
      }
    }
    for (const a of addresses) this.#binds.set(key(a, port), bind);
    return port;
  }

  /** Frees what [CLAIM] took. */
  [RELEASE](bind: MemoryBind, addresses: readonly string[], port: number): void {
    for (const a of addresses) {
      const k = key(a, port);
      if (this.#binds.get(k) === bind) this.#binds.delete(k);
    }
  }

  /** Queues a datagram (already copied) after the filter. */
  [TRANSMIT](datagram: MemoryDatagram): void {
    const passed = this.#filter === undefined ? datagram : this.#filter(datagram);
    if (passed === null) {
      this.#stats.filtered++;
      return;
    }
    this.#queue.push(
      passed === datagram ? datagram : { from: passed.from, to: { address: canonical(passed.to.address), port: passed.to.port }, data: passed.data },
    );
    if (this.#delivery === 'microtask' && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.deliver();
      });
    }
  }
}

/** A Bind on a MemoryNetwork. Its sends are copied, so send() always returns 'sent' or 'dropped'. */
export class MemoryBind implements Bind {
  readonly #network: MemoryNetwork;
  readonly #addresses: readonly string[];
  readonly #stats = newBindStats();
  #port = 0;
  #onReceive: ReceiveHandler | undefined;
  #fwmark = 0;

  /** Use MemoryNetwork.createBind. */
  constructor(network: MemoryNetwork, addresses: readonly string[]) {
    this.#network = network;
    this.#addresses = addresses;
  }

  /** The addresses this bind answers on (canonical spelling). */
  get addresses(): readonly string[] {
    return this.#addresses;
  }

  get port(): number {
    return this.#port;
  }

  get fwmark(): number {
    return this.#fwmark;
  }

  get stats(): BindStats {
    return this.#stats;
  }

  /** Which families are bound, like the socket binds: those with an address, while open. */
  get families(): { ipv4: boolean; ipv6: boolean } {
    const open = this.#port !== 0;
    return { ipv4: open && this.#addresses.some((a) => !a.includes(':')), ipv6: open && this.#addresses.some((a) => a.includes(':')) };
  }

  open(port: number): Promise<number> {
    checkPort(port);
    if (this.#port !== 0) throw new TypeError('expected a closed Bind, got an open one');
    return this.#open(port);
  }

  async #open(port: number): Promise<number> {
    this.#port = this.#network[CLAIM](this, this.#addresses, port);
    return this.#port;
  }

  rebind(port: number): Promise<number> {
    checkPort(port);
    return this.#rebind(port);
  }

  async #rebind(port: number): Promise<number> {
    if (this.#port === 0) return this.#open(port);
    if (port !== 0 && port === this.#port) return port;
    const next = this.#network[CLAIM](this, this.#addresses, port);
    this.#network[RELEASE](this, this.#addresses, this.#port);
    this.#port = next;
    return next;
  }

  onReceive(handler: ReceiveHandler): void {
    checkFunction('handler', handler);
    this.#onReceive = handler;
  }

  send(data: Uint8Array, to: Endpoint): SendResult {
    if (!(data instanceof Uint8Array)) throw new TypeError(`expected data to be a Uint8Array, got ${typeof data}`);
    const address = ipv4Mapped(to.address) ?? to.address;
    const v6 = address.includes(':');
    const source = this.#addresses.find((a) => a.includes(':') === v6);
    if (this.#port === 0 || source === undefined || !Number.isInteger(to.port) || to.port < 1 || to.port > 65535) {
      this.#stats.txDropped++;
      return 'dropped';
    }
    this.#stats.txPackets++;
    this.#stats.txBytes += data.length;
    this.#network[TRANSMIT]({
      from: { address: source, port: this.#port },
      to: { address: canonical(address), port: to.port },
      data: copyBytes(data),
    });
    return 'sent';
  }

  /** @internal Called by the network. */
  receive(data: Uint8Array, from: Endpoint): void {
    if (this.#port === 0) return;
    this.#stats.rxPackets++;
    this.#stats.rxBytes += data.length;
    this.#onReceive?.(data, from);
  }

  setFwmark(mark: number): boolean {
    this.#fwmark = checkFwmark(mark);
    return true;
  }

  close(): void {
    if (this.#port === 0) return;
    this.#network[RELEASE](this, this.#addresses, this.#port);
    this.#port = 0;
  }
}
