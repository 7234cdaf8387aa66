// A node:stream Duplex over one userspace TcpConnection, shaped like net.Socket: 'connect' and
// 'ready', 'data'/'end'/'close'/'error', 'timeout' after setTimeout's idle time, backpressure both
// ways (write() returns false while the engine's send buffer is full; the receive window only
// reopens as the reader consumes), setNoDelay, setKeepAlive, destroy (RST), end (FIN).

import { Duplex } from 'node:stream';
import { formatIp } from '../core/ip.js';
import type { TcpConnection } from './tcp.js';
import type { TcpError } from './tcp-error.js';

/** What a MeshSocket needs from its network: the clock and a nudge after every engine call. */
export interface SocketHost {
  now(): number;
  /** Re-arms the stack's timer after an engine call may have changed its deadlines. */
  kick(): void;
}

/** A TCP connection over the mesh as a Duplex stream; see net.Socket for the shape. */
export class MeshSocket extends Duplex {
  readonly #host: SocketHost;
  #conn: TcpConnection | undefined;
  #connected = false;
  #pendingWrite: { data: Uint8Array; cb: (err?: Error | null) => void } | undefined;
  #unconsumed = 0; // bytes pushed to the reader while it was full: consumed() when it reads
  #idleMs = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  #bytesRead = 0;
  #bytesWritten = 0;
  #noDelay = false;
  #keepAlive: { enable: boolean; idle?: number } | undefined;
  /** True once the three-way handshake completed. */
  get connecting(): boolean {
    return !this.#connected && !this.destroyed;
  }

  /** Use MeshNet.connect() / a server's 'connection' event. */
  constructor(host: SocketHost, opts: { allowHalfOpen?: boolean } = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, decodeStrings: true });
    this.#host = host;
  }

  /** Binds the socket to its engine connection (already established when `established`). */
  attach(conn: TcpConnection, established: boolean): void {
    this.#conn = conn;
    conn.onData = (data) => {
      this.#bytesRead += data.length;
      this.#touch();
      if (this.push(data)) conn.consumed(data.length, this.#host.now());
      else this.#unconsumed += data.length;
    };
    conn.onEnd = () => {
      this.push(null);
    };
    conn.onWritable = () => this.#flushPending();
    conn.onClose = (err?: TcpError) => {
      this.#conn = undefined;
      if (err !== undefined) this.destroy(err);
      else if (!this.destroyed) {
        // Orderly close: make sure both halves are done so 'close' follows.
        this.push(null);
        if (this.#pendingWrite !== undefined) this.destroy();
      }
    };
    conn.onConnected = () => this.#onConnected();
    if (this.#noDelay) conn.setNoDelay(true);
    if (established) this.#onConnected();
  }

  #onConnected(): void {
    if (this.#connected) return;
    this.#connected = true;
    const ka = this.#keepAlive;
    if (ka !== undefined && this.#conn !== undefined) this.#conn.setKeepAlive(ka.enable, this.#host.now(), ka.idle);
    this.#touch();
    this.emit('connect');
    this.emit('ready');
    this.#flushPending();
  }

  get remoteAddress(): string | undefined {
    return this.#conn === undefined ? undefined : formatIp(this.#conn.remote.ip);
  }
  get remotePort(): number | undefined {
    return this.#conn?.remote.port;
  }
  get remoteFamily(): string | undefined {
    return this.#conn === undefined ? undefined : this.#conn.remote.ip.length === 4 ? 'IPv4' : 'IPv6';
  }
  get localAddress(): string | undefined {
    return this.#conn === undefined ? undefined : formatIp(this.#conn.local.ip);
  }
  get localPort(): number | undefined {
    return this.#conn?.local.port;
  }
  get bytesRead(): number {
    return this.#bytesRead;
  }
  get bytesWritten(): number {
    return this.#bytesWritten;
  }
  /** "open", "opening", "readOnly", "writeOnly" or "closed", as net.Socket. */
  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** { address, family, port } of the local end, as net.Socket#address(). */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const c = this.#conn;
    if (c === undefined) return {};
    return { address: formatIp(c.local.ip), family: c.local.ip.length === 4 ? 'IPv4' : 'IPv6', port: c.local.port };
  }

  /** Nagle off (true, the default argument) or on. */
  setNoDelay(noDelay = true): this {
    this.#noDelay = noDelay;
    this.#conn?.setNoDelay(noDelay);
    return this;
  }

  /** Keepalive probes after `initialDelay` ms idle (0 = the engine default). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#keepAlive = initialDelay > 0 ? { enable, idle: initialDelay } : { enable };
    if (this.#connected && this.#conn !== undefined) {
      this.#conn.setKeepAlive(enable, this.#host.now(), initialDelay > 0 ? initialDelay : undefined);
      this.#host.kick();
    }
    return this;
  }

  /** Emits 'timeout' after `ms` without activity (0 disables), as net.Socket; the socket stays open. */
  setTimeout(ms: number, callback?: () => void): this {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`expected a timeout in ms >= 0, got ${ms}`);
    this.#idleMs = ms;
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.#touch();
    return this;
  }

  /** No-ops kept for net.Socket compatibility (our timers are unref'd already). */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  #touch(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#idleMs > 0 && !this.destroyed) {
      this.#idleTimer = setTimeout(() => this.emit('timeout'), this.#idleMs);
      this.#idleTimer.unref();
    }
  }

  override _read(): void {
    const n = this.#unconsumed;
    if (n > 0 && this.#conn !== undefined) {
      this.#unconsumed = 0;
      this.#conn.consumed(n, this.#host.now());
      this.#host.kick();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pendingWrite = { data: chunk, cb };
    if (this.#connected) this.#flushPending();
  }

  #flushPending(): void {
    const p = this.#pendingWrite;
    const conn = this.#conn;
    if (p === undefined || conn === undefined || !this.#connected) return;
    let n: number;
    try {
      n = conn.write(p.data, this.#host.now());
    } catch (err) {
      this.#pendingWrite = undefined;
      p.cb(err as Error);
      return;
    }
    this.#host.kick();
    this.#bytesWritten += n;
    if (n > 0) this.#touch();
    if (n >= p.data.length) {
      this.#pendingWrite = undefined;
      p.cb();
    } else {
      this.#pendingWrite = { data: p.data.subarray(n), cb: p.cb };
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    const conn = this.#conn;
    if (conn !== undefined) {
      conn.shutdown(this.#host.now());
      this.#host.kick();
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn !== undefined) {
      conn.onClose = undefined;
      conn.onData = undefined;
      conn.onWritable = undefined;
      // After an orderly close in both directions the engine finishes the FIN exchange alone;
      // otherwise (destroy() mid-stream, an error) the peer gets a RST like net.Socket#destroy.
      const orderly = err === null && this.readableEnded && this.writableFinished;
      if (!orderly && conn.state !== 'CLOSED' && conn.state !== 'TIME-WAIT') {
        conn.abort(this.#host.now());
        this.#host.kick();
      }
    }
    if (this.#pendingWrite !== undefined) {
      const p = this.#pendingWrite;
      this.#pendingWrite = undefined;
      p.cb(err ?? new Error('socket destroyed'));
    }
    cb(err);
  }
}
