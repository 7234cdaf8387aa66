// The Node adapter of the userspace stack (the only file here with timers and sockets): a
// NetStack bound to a WireGuard Device in packet-callback mode, with a node:net-shaped API over
// it: connect() returning a Duplex, createServer(), dgram-like UDP sockets, ping, an http.Agent
// and a fetch() built on http.request through that agent. No TUN, no root.

import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { formatIp, parseIp } from '../core/ip.js';
import { Device, type DeviceOptions } from '../device/device.js';
import type { DeviceConfig } from '../device/config.js';
import { systemClock, type Clock } from '../io/clock.js';
import { NetError } from './net-error.js';
import { MeshSocket, type SocketHost } from './socket.js';
import { NetStack, type UdpEndpoint } from './stack.js';
import type { SockAddr, TcpConnection, TcpLimits, TcpListener } from './tcp.js';

/** Options shared by {@link MeshNet} and {@link joinMesh}. */
export interface MeshNetOptions {
  /** Our mesh addresses, e.g. ['10.100.0.1'] or with a prefix ('10.100.0.1/32'); at least one. */
  readonly addresses: readonly string[];
  /** Largest IP packet we send (default 1420, the WireGuard default). */
  readonly mtu?: number;
  /** Mesh node names resolved by connect()/fetch() (name -> IP literal), e.g. from the control plane. */
  readonly hosts?: Readonly<Record<string, string>>;
  readonly tcpLimits?: Partial<TcpLimits>;
  /** Default: the system clock. */
  readonly clock?: Clock;
}

/** Options of {@link joinMesh}: either a configuration to build a Device from, or nothing else. */
export interface JoinMeshOptions extends MeshNetOptions {
  /** The WireGuard configuration (private key, peers with allowed IPs and endpoints). */
  readonly config: DeviceConfig;
  /** Device options other than tun/onPacket (bind, logger, crypto, listenPort...). */
  readonly device?: Omit<DeviceOptions, 'tun' | 'onPacket' | 'clock'> & { listenPort?: number };
}

/** Options of {@link MeshNet.connect}, as net.connect's. */
export interface MeshConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Local port (default: an ephemeral one). */
  readonly localPort?: number;
  /** Timeout of the socket (setTimeout) in ms. */
  readonly timeout?: number;
  readonly noDelay?: boolean;
  /** Keep writing after the peer's FIN (default false: end() follows 'end'), as net.connect. */
  readonly allowHalfOpen?: boolean;
}

function toBytes(text: string, what: string): Uint8Array {
  const ip = parseIp(text.replace(/\/\d+$/, ''));
  if (ip === undefined) throw new TypeError(`expected ${what} to be an IP address, got ${JSON.stringify(text)}`);
  return ip;
}

/**
 * A userspace network on a packet link: feed inbound packets to `receive`, and outbound ones go
 * to the link given to `attach` (Device#writePacket). Use {@link joinMesh} for the usual case.
 */
export class MeshNet implements SocketHost {
  readonly stack: NetStack;
  readonly #clock: Clock;
  readonly #hosts: Map<string, Uint8Array>;
  #write: ((packet: Uint8Array) => void) | undefined;
  #device: Device | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closed = false;
  #agent: http.Agent | undefined;
  #pings = new Map<number, (rtt: number) => void>();
  #pingSeq = 0;
  readonly #sockets = new Set<MeshSocket>();

  constructor(opts: MeshNetOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#hosts = new Map(Object.entries(opts.hosts ?? {}).map(([name, ip]) => [name.toLowerCase(), toBytes(ip, `host ${name}`)]));
    this.stack = new NetStack({
      addresses: opts.addresses.map((a) => toBytes(a, 'an address')),
      ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
      ...(opts.tcpLimits !== undefined ? { tcpLimits: opts.tcpLimits } : {}),
      random: (n) => randomBytes(n),
      send: (p) => this.#write?.(p),
    });
    this.stack.onEchoReply((_from, ident, seq) => {
      const done = this.#pings.get((ident << 16) | seq);
      if (done !== undefined) done(this.now());
    });
  }

  /** Monotonic ms (the clock the engine runs on). */
  now(): number {
    return this.#clock.now();
  }

  /** Inbound IP packet from the link (a view, not kept). Bound: pass it as Device's onPacket. */
  readonly receive = (packet: Uint8Array): void => {
    if (this.#closed) return;
    this.stack.input(packet, this.now());
    this.kick();
  };

  /** Sets where outbound packets go: a Device (owned: closed with us) or a function. */
  attach(link: Device | ((packet: Uint8Array) => void), owned = false): void {
    if (typeof link === 'function') this.#write = link;
    else {
      this.#write = (p) => link.writePacket(p);
      if (owned) this.#device = link;
    }
  }

  /** The Device this network created (joinMesh), if any. */
  get device(): Device | undefined {
    return this.#device;
  }

  /** Re-arms the one timer at the stack's next deadline (after any engine call). */
  kick(): void {
    if (this.#closed) return;
    const at = this.stack.nextDeadline() ?? Infinity;
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - this.now()));
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.stack.tick(this.now());
    this.kick();
  };

  /** A host name or IP literal to address bytes; NetError ENOTFOUND for an unknown name. */
  resolve(host: string): Uint8Array {
    if (typeof host !== 'string') throw new TypeError(`expected host to be a string, got ${typeof host}`);
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const ip = parseIp(bare) ?? this.#hosts.get(bare.toLowerCase().replace(/\.$/, ''));
    if (ip === undefined) throw new NetError('ENOTFOUND', `getaddrinfo ENOTFOUND ${host}: not an IP address nor a known mesh node name`);
    return ip;
  }

  /** Opens a TCP connection like net.connect: returns the socket at once, 'connect' follows. */
  connect(opts: MeshConnectOptions, onConnect?: () => void): MeshSocket {
    const socket = this.#track(new MeshSocket(this, { allowHalfOpen: opts.allowHalfOpen ?? false }));
    if (onConnect !== undefined) socket.once('connect', onConnect);
    if (opts.timeout !== undefined) socket.setTimeout(opts.timeout);
    if (opts.noDelay === true) socket.setNoDelay(true);
    let conn: TcpConnection;
    try {
      const remote = this.resolve(opts.host);
      const local = this.stack.localAddress(remote.length === 4 ? 4 : 16);
      if (local === undefined) throw new NetError('ENOTFOUND', `no local IPv${remote.length === 4 ? 4 : 6} address to reach ${opts.host}`);
      conn = this.stack.tcp.connect({ ip: local, port: opts.localPort ?? 0 }, { ip: remote, port: opts.port }, { mss: this.stack.mss(remote.length === 4 ? 4 : 16) }, this.now());
    } catch (err) {
      process.nextTick(() => socket.destroy(err as Error));
      return socket;
    }
    socket.attach(conn, false);
    this.kick();
    return socket;
  }

  /** Alias of connect (http.Agent's createConnection shape). */
  createConnection(opts: MeshConnectOptions, onConnect?: () => void): MeshSocket {
    return this.connect(opts, onConnect);
  }

  /** A TCP server like net.createServer([options], handler): 'connection' gets a MeshSocket. */
  createServer(options?: { allowHalfOpen?: boolean } | ((socket: MeshSocket) => void), handler?: (socket: MeshSocket) => void): MeshServer {
    if (typeof options === 'function') {
      handler = options;
      options = {};
    }
    const server = new MeshServer(this, options?.allowHalfOpen ?? false);
    if (handler !== undefined) server.on('connection', handler);
    return server;
  }

  /** A socket on this network, destroyed by close(). */
  #track(socket: MeshSocket): MeshSocket {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    return socket;
  }

  /** Used by MeshServer for accepted connections. */
  acceptSocket(conn: TcpConnection, allowHalfOpen: boolean): MeshSocket {
    const socket = this.#track(new MeshSocket(this, { allowHalfOpen }));
    socket.attach(conn, true);
    return socket;
  }

  /** A UDP socket like dgram.createSocket('udp4' | 'udp6'). */
  createUdpSocket(): MeshUdpSocket {
    return new MeshUdpSocket(this);
  }

  /** The dgram-shaped namespace: `net.dgram.createSocket()`. */
  get dgram(): { createSocket: (type?: string) => MeshUdpSocket } {
    return { createSocket: () => this.createUdpSocket() };
  }

  /** ICMP echo to `host`: resolves with the round-trip time in ms, rejects after `timeoutMs`. */
  ping(host: string, timeoutMs = 5000): Promise<number> {
    const dst = this.resolve(host);
    const ident = process.pid & 0xffff;
    const seq = (this.#pingSeq = (this.#pingSeq + 1) & 0xffff);
    const key = (ident << 16) | seq;
    const start = this.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(key);
        reject(new Error(`ping ${host}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pings.set(key, (at) => {
        clearTimeout(timer);
        this.#pings.delete(key);
        resolve(at - start);
      });
      this.stack.ping(dst, ident, seq, new Uint8Array(32));
    });
  }

  /** An http.Agent whose connections go through the mesh (for http.get/http.request). */
  get httpAgent(): http.Agent {
    if (this.#agent === undefined) this.#agent = new MeshAgent(this, { keepAlive: true });
    return this.#agent;
  }

  /**
   * fetch() through the mesh: a WHATWG Response from http.request over httpAgent. Supports
   * method, headers, a string/Uint8Array/ArrayBuffer body and redirect 'manual'/'follow' (20 hops).
   * http: only (the mesh is the secure channel). Rejects with TypeError on network errors, as fetch.
   */
  async fetch(input: string | URL, init: MeshFetchInit = {}): Promise<Response> {
    let url = new URL(String(input));
    let method = (init.method ?? 'GET').toUpperCase();
    let body = init.body;
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:') throw new TypeError(`fetch through the mesh supports http: URLs, got ${url.protocol}`);
      const res = await this.#request(url, method, init.headers, body);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (init.redirect !== 'manual' && [301, 302, 303, 307, 308].includes(status) && location !== undefined && hop < 20) {
        res.resume();
        url = new URL(location, url);
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
      }
      const nullBody = method === 'HEAD' || status === 204 || status === 304;
      const stream = nullBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      if (nullBody) res.resume();
      const response = new Response(stream, { status, statusText: res.statusMessage ?? '', headers });
      Object.defineProperty(response, 'url', { value: url.href });
      return response;
    }
  }

  #request(url: URL, method: string, headers: MeshFetchInit['headers'], body: MeshFetchInit['body']): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const h: Record<string, string> = {};
      new Headers(headers).forEach((v, k) => (h[k] = v));
      const req = http.request(url, { method, headers: h, agent: this.httpAgent }, resolve);
      req.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
      if (body !== undefined && body !== null) req.end(typeof body === 'string' ? body : body instanceof ArrayBuffer ? new Uint8Array(body) : body);
      else req.end();
    });
  }

  /** Aborts every connection, closes every listener and the Device joinMesh created. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#agent?.destroy();
    for (const s of this.#sockets) s.destroy(); // RST to each peer, 'close' without an error here
    this.stack.tcp.close(this.now());
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#device?.close();
  }
}

/** The init of {@link MeshNet.fetch}: a subset of RequestInit. */
export interface MeshFetchInit {
  readonly method?: string;
  readonly headers?: Record<string, string> | [string, string][] | Headers;
  readonly body?: string | Uint8Array | ArrayBuffer | null;
  readonly redirect?: 'follow' | 'manual';
}

/** An http.Agent whose createConnection opens a MeshSocket. */
export class MeshAgent extends http.Agent {
  readonly #net: MeshNet;
  constructor(net: MeshNet, opts?: http.AgentOptions) {
    super(opts);
    this.#net = net;
  }
  override createConnection(options: { host?: string | null; hostname?: string | null; port?: number | string | null }, cb?: (err: Error | null, socket: MeshSocket) => void): MeshSocket {
    const host = options.hostname ?? options.host ?? 'localhost';
    const socket = this.#net.connect({ host, port: Number(options.port ?? 80) });
    void cb;
    return socket;
  }
}

/** A TCP server on the mesh, shaped like net.Server: listen(port[, cb]), close(), address(). */
export class MeshServer extends EventEmitter {
  readonly #net: MeshNet;
  readonly #allowHalfOpen: boolean;
  #listener: TcpListener | undefined;
  readonly #sockets = new Set<MeshSocket>();

  /** Use MeshNet.createServer(). */
  constructor(net: MeshNet, allowHalfOpen: boolean) {
    super();
    this.#net = net;
    this.#allowHalfOpen = allowHalfOpen;
  }

  get listening(): boolean {
    return this.#listener !== undefined;
  }

  /** Accepts connections to `port` on our addresses; 'listening' follows. Errors (EADDRINUSE) are emitted. */
  listen(port: number | { port: number; backlog?: number }, cb?: () => void): this {
    const opts = typeof port === 'number' ? { port } : port;
    if (cb !== undefined) this.once('listening', cb);
    const v6 = this.#net.stack.localAddress(16) !== undefined && this.#net.stack.localAddress(4) === undefined;
    try {
      this.#listener = this.#net.stack.tcp.listen(opts.port, { mss: this.#net.stack.mss(v6 ? 16 : 4), backlog: opts.backlog ?? 511 }, (conn) => {
        const socket = this.#net.acceptSocket(conn, this.#allowHalfOpen);
        this.#sockets.add(socket);
        socket.once('close', () => this.#sockets.delete(socket));
        this.emit('connection', socket);
      });
    } catch (err) {
      const e = err instanceof RangeError && /in use/.test(err.message) ? new NetError('EADDRINUSE', `listen EADDRINUSE: port ${opts.port}`, { cause: err }) : err;
      process.nextTick(() => this.emit('error', e));
      return this;
    }
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: string; port: number } | null {
    if (this.#listener === undefined) return null;
    const a = this.#net.stack.localAddress(4) ?? this.#net.stack.localAddress(16)!;
    return { address: formatIp(a), family: a.length === 4 ? 'IPv4' : 'IPv6', port: this.#listener.port };
  }

  /** Stops accepting; 'close' fires when the open connections have ended too. */
  close(cb?: (err?: Error) => void): this {
    this.#listener?.close();
    this.#listener = undefined;
    const done = (): void => {
      this.emit('close');
      cb?.();
    };
    if (this.#sockets.size === 0) process.nextTick(done);
    else {
      let left = this.#sockets.size;
      for (const s of this.#sockets) s.once('close', () => --left === 0 && done());
    }
    return this;
  }

  /** Number of open connections, as net.Server#getConnections. */
  getConnections(cb: (err: Error | null, count: number) => void): void {
    cb(null, this.#sockets.size);
  }
}

/** Most datagrams a UDP socket holds before 'message' listeners drain them (beyond: counted drops). */
const UDP_MAX_BACKLOG = 1024;

/** A UDP socket on the mesh shaped like dgram.Socket: bind, send, 'message' (msg, rinfo), close. */
export class MeshUdpSocket extends EventEmitter {
  readonly #net: MeshNet;
  #endpoint: UdpEndpoint | undefined;
  #queued = 0;

  /** Use MeshNet.dgram.createSocket(). */
  constructor(net: MeshNet) {
    super();
    this.#net = net;
  }

  /** Binds `port` (0 or absent = ephemeral); 'listening' follows. */
  bind(port = 0, cb?: () => void): this {
    if (cb !== undefined) this.once('listening', cb);
    try {
      this.#endpoint = this.#net.stack.udpBind(port, (data, from) => {
        if (this.#queued >= UDP_MAX_BACKLOG) return false;
        this.#queued++;
        setImmediate(() => {
          this.#queued--;
          const family = from.ip.length === 4 ? 'IPv4' : 'IPv6';
          this.emit('message', Buffer.from(data.buffer, data.byteOffset, data.length), { address: formatIp(from.ip), family, port: from.port, size: data.length });
        });
        return true;
      });
    } catch (err) {
      const e = err instanceof RangeError && /in use/.test(err.message) ? new NetError('EADDRINUSE', `bind EADDRINUSE: UDP port ${port}`, { cause: err }) : err;
      process.nextTick(() => this.emit('error', e));
      return this;
    }
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  address(): { address: string; family: string; port: number } {
    if (this.#endpoint === undefined) throw new Error('getsockname EBADF: not bound');
    const a = this.#net.stack.localAddress(4) ?? this.#net.stack.localAddress(16)!;
    return { address: formatIp(a), family: a.length === 4 ? 'IPv4' : 'IPv6', port: this.#endpoint.port };
  }

  /** Sends `msg` to host:port (binding an ephemeral port first if needed). */
  send(msg: Uint8Array | string, port: number, host: string, cb?: (err: Error | null) => void): void {
    try {
      if (this.#endpoint === undefined) this.bind(0);
      const remote: SockAddr = { ip: this.#net.resolve(host), port };
      this.#endpoint!.send(typeof msg === 'string' ? Buffer.from(msg) : msg, remote);
      this.#net.kick();
      if (cb !== undefined) process.nextTick(cb, null);
    } catch (err) {
      if (cb !== undefined) process.nextTick(cb, err as Error);
      else process.nextTick(() => this.emit('error', err));
    }
  }

  close(cb?: () => void): void {
    this.#endpoint?.close();
    this.#endpoint = undefined;
    process.nextTick(() => {
      this.emit('close');
      cb?.();
    });
  }
}

/**
 * Joins a WireGuard mesh from userspace: creates a Device in packet-callback mode (no TUN, no
 * root) with `config`, and a MeshNet on it with `addresses`. close() closes both. Rejects with
 * the Device's errors (BindError, DeviceError) or TypeError for bad addresses.
 */
export async function joinMesh(opts: JoinMeshOptions): Promise<MeshNet> {
  const net = new MeshNet(opts);
  const device = await Device.create({ ...opts.device, ...(opts.clock !== undefined ? { clock: opts.clock } : {}), onPacket: net.receive });
  try {
    await device.configure(opts.config);
  } catch (err) {
    await device.close();
    throw err;
  }
  net.attach(device, true);
  return net;
}
