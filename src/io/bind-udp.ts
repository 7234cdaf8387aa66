// The real UDP transport: node:dgram, one socket per address family (udp4, and udp6 with
// ipv6Only) sharing one port number, large socket buffers. wireguard-go's StdNetBind is the
// behavioural reference (same port for both families, retry when the v6 half of a random port
// is taken, tolerate a machine without IPv6).
//
// Buffer ownership: dgram normally hands the datagram to the kernel synchronously (the custom
// lookup below skips the DNS round trip through process.nextTick that IP literals otherwise
// take); only when the socket is congested does libuv queue it and keep a reference. send()
// tells which happened ('sent' / 'queued') by watching the socket's send queue count.
//
// fwmark: dgram has no SO_MARK, so setFwmark applies it through the native addon on the socket's
// fd (reached through dgram's internal state). Without the addon it is stored and reported only.

import * as dgram from 'node:dgram';
import { BindError, bindErrorFrom, checkFunction, errnoOf } from './errors.js';
import { loadNativeAddon } from './native.js';
import {
  checkFwmark,
  checkPort,
  newBindStats,
  socketBindSettings,
  type Bind,
  type BindStats,
  type Endpoint,
  type ReceiveHandler,
  type SendResult,
  type SocketBindOptions,
} from './bind.js';

/** Options for {@link UdpBind}. */
export interface UdpBindOptions extends SocketBindOptions {
  /** Datagrams allowed in a congested socket's user-space queue before send() drops (default 1024). */
  readonly maxQueued?: number;
}

const RANDOM_PORT_ATTEMPTS = 16;

// IP literals only: resolve synchronously so send() reaches the kernel before it returns.
const literalLookup = ((hostname: string, options: unknown, callback: (err: Error | null, address: string, family: number) => void) => {
  const family = typeof options === 'number' ? options : hostname.includes(':') ? 6 : 4;
  callback(null, hostname, family);
}) as unknown as NonNullable<dgram.SocketOptions['lookup']>;

// Errors meaning "this machine has no such address family" rather than a real failure.
function familyUnavailable(err: unknown): boolean {
  const errno = errnoOf(err);
  return errno === 'EAFNOSUPPORT' || errno === 'EADDRNOTAVAIL' || errno === 'EPROTONOSUPPORT';
}

function bindSocket(type: 'udp4' | 'udp6', address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type, ipv6Only: type === 'udp6', lookup: literalLookup });
    const onError = (err: Error): void => {
      try {
        socket.close();
      } catch {
        // already closed by dgram
      }
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

// dgram keeps the libuv handle behind an internal symbol; its `fd` getter is what SO_MARK needs.
function socketFd(socket: dgram.Socket): number | undefined {
  const state = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const handle = state === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

interface SocketPair {
  readonly v4: dgram.Socket | undefined;
  readonly v6: dgram.Socket | undefined;
  readonly port: number;
}

/** A Bind over node:dgram. `new UdpBind(options)`, then `await bind.open(port)`. */
export class UdpBind implements Bind {
  readonly #ipv4Address: string | null;
  readonly #ipv6Address: string | null;
  readonly #socketBufferSize: number;
  readonly #maxQueued: number;
  readonly #stats = newBindStats();
  #pair: SocketPair | undefined;
  #opening = false;
  #onReceive: ReceiveHandler | undefined;
  #fwmark = 0;

  constructor(options: UdpBindOptions = {}) {
    ({ ipv4Address: this.#ipv4Address, ipv6Address: this.#ipv6Address, socketBufferSize: this.#socketBufferSize } = socketBindSettings(options));
    this.#maxQueued = options.maxQueued ?? 1024;
    if (!Number.isInteger(this.#maxQueued) || this.#maxQueued < 0) {
      throw new RangeError(`expected maxQueued to be a non-negative integer, got ${this.#maxQueued}`);
    }
  }

  get port(): number {
    return this.#pair?.port ?? 0;
  }

  get fwmark(): number {
    return this.#fwmark;
  }

  get stats(): BindStats {
    return this.#stats;
  }

  /** The sizes the kernel granted (it doubles the request and caps it at net.core.[rw]mem_max). */
  get socketBufferSizes(): { recv: number; send: number } | undefined {
    const s = this.#pair?.v4 ?? this.#pair?.v6;
    return s === undefined ? undefined : { recv: s.getRecvBufferSize(), send: s.getSendBufferSize() };
  }

  /** Which families are bound: an IPv6-less machine opens IPv4 only. */
  get families(): { ipv4: boolean; ipv6: boolean } {
    return { ipv4: this.#pair?.v4 !== undefined, ipv6: this.#pair?.v6 !== undefined };
  }

  open(port: number): Promise<number> {
    checkPort(port);
    if (this.#pair !== undefined || this.#opening) throw new TypeError('expected a closed Bind, got an open one');
    return this.#open(port);
  }

  async #open(port: number): Promise<number> {
    this.#opening = true;
    try {
      this.#pair = await this.#openPair(port);
    } finally {
      this.#opening = false;
    }
    return this.#pair.port;
  }

  rebind(port: number): Promise<number> {
    checkPort(port);
    if (this.#opening) throw new TypeError('expected no open() or rebind() in progress, got one');
    return this.#rebind(port);
  }

  async #rebind(port: number): Promise<number> {
    const old = this.#pair;
    if (old === undefined) return this.#open(port);
    if (port !== 0 && port === old.port) return port;
    this.#opening = true;
    try {
      const pair = await this.#openPair(port);
      if (this.#pair !== old) {
        // close() ran while we were binding: do not resurrect the Bind.
        closePair(pair);
        return this.port;
      }
      this.#pair = pair;
      closePair(old);
      return pair.port;
    } finally {
      this.#opening = false;
    }
  }

  async #openPair(port: number): Promise<SocketPair> {
    const attempts = port === 0 ? RANDOM_PORT_ATTEMPTS : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      let v4: dgram.Socket | undefined;
      let v6: dgram.Socket | undefined;
      let chosen = port;
      if (this.#ipv4Address !== null) {
        try {
          v4 = await bindSocket('udp4', this.#ipv4Address, port);
          chosen = v4.address().port;
        } catch (err) {
          if (!(familyUnavailable(err) && this.#ipv6Address !== null)) throw bindErrorFrom(err, `udp4 ${this.#ipv4Address}:${port}`);
          lastError = err;
        }
      }
      if (this.#ipv6Address !== null) {
        try {
          v6 = await bindSocket('udp6', this.#ipv6Address, chosen);
          chosen = v6.address().port;
        } catch (err) {
          lastError = err;
          if (v4 !== undefined && familyUnavailable(err)) {
            // No IPv6 here: run IPv4 only.
          } else {
            v4?.close();
            if (port === 0 && v4 !== undefined && errnoOf(err) === 'EADDRINUSE') continue;
            throw bindErrorFrom(err, `udp6 [${this.#ipv6Address}]:${chosen}`);
          }
        }
      }
      if (v4 === undefined && v6 === undefined) throw bindErrorFrom(lastError, `any address family on port ${port}`);
      const pair: SocketPair = { v4, v6, port: chosen };
      for (const socket of [v4, v6]) {
        if (socket !== undefined) this.#setup(socket);
      }
      return pair;
    }
    throw bindErrorFrom(lastError, `udp4 and udp6 on one free port after ${attempts} attempts`);
  }

  #setup(socket: dgram.Socket): void {
    if (!this.#forceBuffers(socket)) {
      try {
        socket.setRecvBufferSize(this.#socketBufferSize);
        socket.setSendBufferSize(this.#socketBufferSize);
      } catch {
        // refused: the default sizes still work
      }
    }
    socket.on('message', this.#message);
    // Without a listener, an 'error' event would crash the process; send errors are not emitted
    // (no per-send callback), so this only sees rare socket-level failures.
    socket.on('error', () => {});
    if (this.#fwmark !== 0) this.#applyMark(socket, this.#fwmark);
  }

  // With CAP_NET_ADMIN the addon sets the full size past net.core.[rw]mem_max (as wireguard-go
  // does); without it dgram's SO_RCVBUF/SO_SNDBUF is capped there by the kernel.
  #forceBuffers(socket: dgram.Socket): boolean {
    const fd = socketFd(socket);
    if (fd === undefined || this.#socketBufferSize === 0) return false;
    try {
      loadNativeAddon('udp').forceSocketBuffers(fd, this.#socketBufferSize);
      return true;
    } catch {
      return false;
    }
  }

  readonly #message = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.#stats.rxPackets++;
    this.#stats.rxBytes += msg.length;
    // rinfo already has { address, port }: pass it as the Endpoint, no allocation.
    this.#onReceive?.(msg, rinfo);
  };

  onReceive(handler: ReceiveHandler): void {
    checkFunction('handler', handler);
    this.#onReceive = handler;
  }

  send(data: Uint8Array, to: Endpoint): SendResult {
    const pair = this.#pair;
    let address = to.address;
    let socket: dgram.Socket | undefined;
    if (address.includes(':')) {
      if (address.startsWith('::ffff:') && address.includes('.')) {
        address = address.slice(7); // IPv4-mapped: the v6 socket is ipv6Only
        socket = pair?.v4;
      } else {
        socket = pair?.v6;
      }
    } else {
      socket = pair?.v4;
    }
    if (socket === undefined) {
      this.#stats.txDropped++;
      return 'dropped';
    }
    const before = socket.getSendQueueCount();
    if (before >= this.#maxQueued) {
      this.#stats.txDropped++;
      return 'dropped';
    }
    try {
      socket.send(data, to.port, address);
    } catch {
      // bad port or address (the peer told us garbage) or a socket closed under us
      this.#stats.txDropped++;
      return 'dropped';
    }
    this.#stats.txPackets++;
    this.#stats.txBytes += data.length;
    if (before > 0 || socket.getSendQueueCount() > before) {
      this.#stats.txQueued++;
      return 'queued';
    }
    return 'sent';
  }

  setFwmark(mark: number): boolean {
    checkFwmark(mark);
    const previous = this.#fwmark;
    this.#fwmark = mark;
    if (mark === 0 && previous === 0) return true;
    let applied = true;
    for (const socket of [this.#pair?.v4, this.#pair?.v6]) {
      if (socket !== undefined) applied = this.#applyMark(socket, mark) && applied;
    }
    return applied;
  }

  // True when SO_MARK is set; false when it cannot be (no addon, no fd). Throws BindError on EPERM.
  #applyMark(socket: dgram.Socket, mark: number): boolean {
    const fd = socketFd(socket);
    if (fd === undefined) return false;
    let addon;
    try {
      addon = loadNativeAddon('udp');
    } catch {
      return false;
    }
    try {
      addon.setSocketMark(fd, mark);
      return true;
    } catch (err) {
      throw new BindError('ERR_BIND_FWMARK', `cannot set fwmark ${mark}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
    }
  }

  close(): void {
    const pair = this.#pair;
    this.#pair = undefined;
    if (pair !== undefined) closePair(pair);
  }
}

function closePair(pair: SocketPair): void {
  pair.v4?.close();
  pair.v6?.close();
}
