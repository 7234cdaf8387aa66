// The UAPI unix-socket server at /var/run/wireguard/IFNAME.sock, as wireguard-go's ipc package
// sets it up (ipc/uapi_unix.go: directory 0755, socket 0700, stale socket replaced, a live one
// refused) and serves it (device/uapi.go IpcHandle: requests in sequence on each connection).

import { Buffer } from 'node:buffer';
import { wipeTransaction } from '../device/contract.js';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import * as net from 'node:net';
import { join } from 'node:path';
import { errnoOf } from '../io/errors.js';
import { expectInterfaceName as checkInterfaceName } from '../io/interface-name.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { toUapiError, UAPI_ERRNO, UapiSocketError } from './errors.js';
import type { UapiHandler } from './handler.js';
import { UapiRequestParser, type SetTransaction, type UapiRequest } from './protocol.js';
import { serializeGet } from './serialize.js';

/** wireguard-go's socket directory (ipc.socketDirectory). */
export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';
/** A connection with no traffic in either direction for this long is closed. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/**
 * Connections served at once. When all are open, a new one replaces the connection idle the
 * longest (no request being served); only when every one is busy is the new one closed.
 */
export const DEFAULT_MAX_CONNECTIONS = 64;

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL on Linux. */
const MAX_SOCKET_PATH_BYTES = 107;

/** Options of {@link startUapiServer}. */
export interface UapiServerOptions {
  /** The interface name; the socket is `${socketDir}/${interfaceName}.sock`. */
  readonly interfaceName: string;
  readonly handler: UapiHandler;
  /** Default {@link DEFAULT_SOCKET_DIR}; created (mode 0755) if missing. */
  readonly socketDir?: string;
  /** Default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  readonly idleTimeoutMs?: number;
  /** Default {@link DEFAULT_MAX_CONNECTIONS}. */
  readonly maxConnections?: number;
  /** Bound on one set request in bytes (default DEFAULT_MAX_REQUEST_BYTES, 8 MiB). */
  readonly maxRequestBytes?: number;
  readonly logger?: Logger;
}

/** A running UAPI server. */
export interface UapiServer {
  /** The socket's path. */
  readonly path: string;
  /** Connections open right now. */
  readonly connectionCount: number;
  /** Stops accepting, closes every connection and removes the socket file. Idempotent. */
  close(): Promise<void>;
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`expected ${name} to be a positive integer, got ${String(value)}`);
  }
}

/** A FIFO readers-writer lock: gets share it, a set holds it alone (wireguard-go's ipcMutex). */
class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Array<{ write: boolean; grant: () => void }> = [];

  acquire(write: boolean): Promise<() => void> {
    return new Promise((resolve) => {
      this.queue.push({ write, grant: () => resolve(() => this.release(write)) });
      this.pump();
    });
  }

  private release(write: boolean): void {
    if (write) this.writer = false;
    else this.readers--;
    this.pump();
  }

  private pump(): void {
    for (let head = this.queue[0]; head !== undefined; head = this.queue[0]) {
      if (this.writer || (head.write && this.readers > 0)) return;
      this.queue.shift();
      if (head.write) this.writer = true;
      else this.readers++;
      head.grant();
      if (head.write) return;
    }
  }
}

/** Resolves when `socket` can take more data or is gone; leaves no listener behind. */
function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Resolves true if something accepts connections on `path` (within 1 s: assume it does). */
function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(path);
    const finish = (alive: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => finish(true), 1000);
    probe.once('connect', () => finish(true));
    probe.once('error', () => finish(false));
  });
}

/** Binds `server` to `path` with umask 077 where the process allows changing it (not in workers). */
function listen(server: net.Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    let oldUmask: number | undefined;
    try {
      oldUmask = process.umask(0o077);
    } catch {
      // worker threads cannot change the umask; the chmod after listening covers it
    }
    try {
      server.listen(path); // binds synchronously for a path, so the umask window is this call
    } finally {
      if (oldUmask !== undefined) process.umask(oldUmask);
    }
  });
}

/**
 * Serves the UAPI on `${socketDir}/${interfaceName}.sock` (mode 0700). A socket file left by a
 * dead process is replaced; one a live daemon answers on is refused with
 * UapiSocketError('ERR_UAPI_SOCKET_IN_USE'). Throws TypeError/RangeError for bad options.
 */
export async function startUapiServer(options: UapiServerOptions): Promise<UapiServer> {
  const { interfaceName, handler } = options;
  checkInterfaceName(interfaceName);
  if (typeof handler?.snapshot !== 'function' || typeof handler.apply !== 'function') {
    throw new TypeError('expected handler to implement snapshot() and apply()');
  }
  const socketDir = options.socketDir ?? DEFAULT_SOCKET_DIR;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  checkPositiveInt('idleTimeoutMs', idleTimeoutMs);
  checkPositiveInt('maxConnections', maxConnections);
  // Constructing one validates maxRequestBytes before anything touches the filesystem.
  void new UapiRequestParser({ maxRequestBytes: options.maxRequestBytes });
  const log = options.logger ?? silentLogger;
  const path = join(socketDir, `${interfaceName}.sock`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new RangeError(`expected a socket path of at most ${MAX_SOCKET_PATH_BYTES} bytes, got ${path}`);
  }

  try {
    await mkdir(socketDir, { recursive: true, mode: 0o755 });
  } catch (cause) {
    throw new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot create ${socketDir}`, { cause, errno: errnoOf(cause) });
  }

  const lock = new RwLock();
  const sockets = new Map<net.Socket, Activity>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (sockets.size >= maxConnections) {
      // Idle connections must not lock the others out for the idle timeout: make room.
      const victim = longestIdle(sockets);
      if (victim === undefined) {
        log.error(`UAPI: refusing connection, ${maxConnections} already open and busy`);
        socket.destroy();
        return;
      }
      log.verbose(`UAPI: ${maxConnections} connections open; closing the one idle longest`);
      sockets.delete(victim);
      victim.destroy();
    }
    const activity: Activity = { last: performance.now(), busy: 0 };
    sockets.set(socket, activity);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, activity, { handler, lock, log, idleTimeoutMs, maxRequestBytes: options.maxRequestBytes });
  });

  try {
    await listen(server, path);
  } catch (err) {
    if (errnoOf(err) !== 'EADDRINUSE') {
      throw new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot listen on ${path}`, { cause: err, errno: errnoOf(err) });
    }
    await replaceStaleSocket(path, err);
    try {
      await listen(server, path);
    } catch (cause) {
      throw new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot listen on ${path}`, { cause, errno: errnoOf(cause) });
    }
  }
  let inode: number | bigint | undefined;
  try {
    await chmod(path, 0o700);
    inode = (await lstat(path)).ino;
  } catch (cause) {
    server.close();
    throw new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot secure ${path}`, { cause, errno: errnoOf(cause) });
  }
  log.verbose(`UAPI listener started on ${path}`);

  let closing: Promise<void> | undefined;
  return {
    path,
    get connectionCount() {
      return sockets.size;
    },
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets.keys()) socket.destroy();
        await closed;
        try {
          // libuv usually unlinks it on close already; never remove a successor's socket.
          if ((await lstat(path)).ino === inode) await unlink(path);
        } catch {
          // already gone
        }
      })();
      return closing;
    },
  };
}

/** After EADDRINUSE: remove `path` if it is a socket nobody answers on, else throw. */
async function replaceStaleSocket(path: string, listenError: unknown): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return; // vanished meanwhile: just retry
  }
  if (!isSocket) {
    throw new UapiSocketError('ERR_UAPI_SOCKET_NOT_SOCKET', `${path} exists and is not a socket`, {
      cause: listenError,
      errno: 'EADDRINUSE',
    });
  }
  if (await isAlive(path)) {
    throw new UapiSocketError('ERR_UAPI_SOCKET_IN_USE', `unix socket in use: another daemon serves ${path}`, {
      cause: listenError,
      errno: 'EADDRINUSE',
    });
  }
  try {
    await unlink(path);
  } catch (cause) {
    if (errnoOf(cause) !== 'ENOENT') {
      throw new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot remove stale ${path}`, { cause, errno: errnoOf(cause) });
    }
  }
}

/** When a connection last sent or was sent something, and how many of its steps are in progress. */
interface Activity {
  /** performance.now() of the last data in either direction. */
  last: number;
  /** Requests being framed or served (waiting for the lock, applying, writing the reply). */
  busy: number;
}

/** The connection with no work in progress that has been quiet the longest, if any. */
function longestIdle(sockets: ReadonlyMap<net.Socket, Activity>): net.Socket | undefined {
  let victim: net.Socket | undefined;
  let oldest = Infinity;
  for (const [socket, a] of sockets) {
    if (a.busy === 0 && a.last < oldest) {
      oldest = a.last;
      victim = socket;
    }
  }
  return victim;
}

interface ConnectionContext {
  readonly handler: UapiHandler;
  readonly lock: RwLock;
  readonly log: Logger;
  readonly idleTimeoutMs: number;
  readonly maxRequestBytes: number | undefined;
}

/** Serves one connection: requests strictly in order, reading paused while one is served. */
function serveConnection(socket: net.Socket, activity: Activity, ctx: ConnectionContext): void {
  const parser = new UapiRequestParser({ maxRequestBytes: ctx.maxRequestBytes });
  const { log } = ctx;
  let work = Promise.resolve();
  let finished = false;

  const gone = () => socket.destroyed || !socket.writable;
  const write = async (text: string) => {
    if (gone()) return;
    activity.last = performance.now();
    if (!socket.write(text)) await drained(socket);
  };
  const finish = () => {
    // Close our side; keep reading (and dropping) until the peer closes or the idle timer fires.
    finished = true;
    if (!socket.destroyed) socket.end();
    socket.resume();
  };

  const serve = async (requests: UapiRequest[]) => {
    for (const request of requests) {
      if (finished || socket.destroyed) return;
      switch (request.kind) {
        case 'get':
          await serveGet(socket, ctx, write);
          break;
        case 'set':
          await write(`errno=${await applySet(ctx, request.tx)}\n\n`);
          break;
        case 'error':
          log.error(`IPC error ${request.error.errno}: ${request.error.message}`);
          await write(`errno=${request.error.errno}\n\n`);
          if (request.fatal) finish();
          break;
        case 'close':
          log.error(request.reason);
          finish();
          break;
      }
    }
  };

  const enqueue = (step: () => Promise<void> | void) => {
    activity.busy++;
    work = work
      .then(step)
      .catch((err: unknown) => {
        log.error(`UAPI connection failed: ${err instanceof Error ? err.message : String(err)}`);
        finished = true;
        socket.destroy();
      })
      .finally(() => {
        activity.busy--;
        activity.last = performance.now();
      });
  };

  socket.setTimeout(ctx.idleTimeoutMs, () => socket.destroy());
  socket.on('error', (err) => log.verbose(`UAPI connection error: ${err.message}`));
  socket.on('data', (chunk: Buffer) => {
    activity.last = performance.now();
    if (finished) return;
    socket.pause();
    enqueue(async () => {
      await serve(parser.push(chunk));
      if (!finished && !socket.destroyed) socket.resume();
    });
  });
  socket.on('end', () => {
    enqueue(async () => {
      if (!finished) await serve(parser.end());
      finished = true;
      if (!socket.destroyed) socket.end();
    });
  });
  socket.once('close', () => {
    finished = true;
  });
}

async function applySet(ctx: ConnectionContext, tx: SetTransaction): Promise<number> {
  const release = await ctx.lock.acquire(true);
  try {
    await ctx.handler.apply(tx);
    return 0;
  } catch (err) {
    const error = toUapiError(err);
    ctx.log.error(`IPC error ${error.errno}: ${error.message}`);
    return error.errno;
  } finally {
    wipeTransaction(tx);
    release();
  }
}

async function serveGet(socket: net.Socket, ctx: ConnectionContext, write: (text: string) => Promise<void>): Promise<void> {
  const release = await ctx.lock.acquire(false);
  let wrote = false;
  try {
    for (const chunk of serializeGet(ctx.handler.snapshot())) {
      if (socket.destroyed) return;
      wrote = true;
      await write(chunk);
    }
    await write('errno=0\n\n');
  } catch (err) {
    ctx.log.error(`IPC error ${UAPI_ERRNO.UNKNOWN}: get failed: ${err instanceof Error ? err.message : String(err)}`);
    // A half-sent body cannot be followed by a clean errno line: drop the connection instead.
    if (wrote) socket.destroy();
    else await write(`errno=${UAPI_ERRNO.UNKNOWN}\n\n`);
  } finally {
    release();
  }
}

/**
 * Sends one request (e.g. "get=1\n\n") to the UAPI socket at `path` and resolves with the reply
 * up to and including "errno=N\n\n". Rejects with UapiSocketError if the connection fails,
 * ends first ('ERR_UAPI_NO_RESPONSE') or `timeoutMs` (default 10 s) passes.
 */
export function uapiRequest(path: string, text: string, options: { timeoutMs?: number } = {}): Promise<string> {
  if (typeof path !== 'string' || typeof text !== 'string') {
    throw new TypeError(`expected path and text strings, got ${typeof path} and ${typeof text}`);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  checkPositiveInt('timeoutMs', timeoutMs);
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    const chunks: string[] = [];
    let lastChar = '';
    let settled = false;
    const settle = (err: Error | undefined, reply?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    const timer = setTimeout(
      () => settle(new UapiSocketError('ERR_UAPI_NO_RESPONSE', `no complete reply from ${path} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      chunks.push(chunk);
      // Body lines are never empty, so the first "\n\n" ends the reply.
      const at = chunk.indexOf('\n\n');
      if (at >= 0 || (lastChar === '\n' && chunk.startsWith('\n'))) {
        const all = chunks.join('');
        settle(undefined, all.slice(0, all.indexOf('\n\n') + 2));
      }
      lastChar = chunk.length > 0 ? chunk[chunk.length - 1]! : lastChar;
    });
    socket.on('error', (cause) =>
      settle(new UapiSocketError('ERR_UAPI_SOCKET_FAILED', `cannot talk to ${path}`, { cause, errno: errnoOf(cause) })),
    );
    socket.on('close', () => settle(new UapiSocketError('ERR_UAPI_NO_RESPONSE', `${path} closed without a complete reply`)));
    socket.write(text);
  });
}
