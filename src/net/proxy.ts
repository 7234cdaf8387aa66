// Local entry points into a userspace mesh for programs that know nothing about it (like
// tailscale's userspace-networking mode): a SOCKS5 proxy (RFC 1928, CONNECT only, no
// authentication) and TCP port forwards, both listening on a local node:net socket and piping
// each connection to a MeshNet TCP connection.

import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Logger } from '../log/logger.js';
import type { MeshNet } from './mesh.js';
import type { MeshSocket } from './socket.js';

/** Parses "HOST:PORT" ("[v6]:port" too); RangeError for anything else. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) throw new RangeError(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2]!, port };
}

/** One forward: connections to `listen` (local) go to `target` (on the mesh). */
export interface ForwardSpec {
  readonly listen: { host: string; port: number };
  readonly target: { host: string; port: number };
}

/** Parses "LOCALHOST:PORT=MESHHOST:PORT" (the --forward syntax). RangeError when malformed. */
export function parseForward(text: string): ForwardSpec {
  const eq = text.indexOf('=');
  if (eq < 0) throw new RangeError(`expected LISTEN_HOST:PORT=MESH_HOST:PORT, got ${JSON.stringify(text)}`);
  const target = parseHostPort(text.slice(eq + 1));
  if (target.port === 0) throw new RangeError(`expected a mesh port in 1..65535, got ${JSON.stringify(text)}`);
  return { listen: parseHostPort(text.slice(0, eq)), target };
}

function splice(local: Socket, remote: MeshSocket): void {
  local.on('error', () => remote.destroy());
  remote.on('error', () => local.destroy());
  local.on('close', () => remote.destroy());
  remote.on('close', () => local.destroy());
  local.pipe(remote);
  remote.pipe(local);
}

async function listen(server: Server, at: { host: string; port: number }): Promise<Server> {
  server.listen(at.port, at.host);
  await once(server, 'listening'); // rejects on 'error' (EADDRINUSE...)
  return server;
}

/** Starts a TCP forward; resolves with the listening server (close() it to stop). */
export function startForward(net: MeshNet, spec: ForwardSpec, log?: Logger): Promise<Server> {
  const server = createServer((local) => {
    const remote = net.connect({ host: spec.target.host, port: spec.target.port });
    remote.once('error', (e) => log?.verbose(`forward ${spec.target.host}:${spec.target.port}: ${e.message}`));
    splice(local, remote);
  });
  return listen(server, spec.listen);
}

// RFC 1928 constants.
const VER = 5;
const CMD_CONNECT = 1;
const ATYP_V4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_V6 = 4;
const REP_OK = 0;
const REP_FAILURE = 1;
const REP_HOST_UNREACHABLE = 4;
const REP_REFUSED = 5;
const REP_CMD_UNSUPPORTED = 7;
const REP_ATYP_UNSUPPORTED = 8;
/** The longest SOCKS5 greeting plus request: 2+255 and 4+1+255+2 bytes. */
const MAX_HANDSHAKE = 600;

/** Reads exactly the handshake bytes a parser asks for (bounded), or undefined on EOF/error. */
function reader(sock: Socket): { read: (n: number) => Promise<Buffer | undefined>; rest: () => Buffer } {
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  let ended = false;
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d]);
    if (buf.length > MAX_HANDSHAKE) sock.destroy();
    waiter?.();
  };
  sock.on('data', onData);
  sock.once('close', () => {
    ended = true;
    waiter?.();
  });
  return {
    read: async (n) => {
      while (buf.length < n && !ended) await new Promise<void>((r) => (waiter = r));
      waiter = undefined;
      if (buf.length < n) return undefined;
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
    // Stops collecting: what the client sent beyond the handshake belongs to the tunnel.
    rest: () => {
      sock.off('data', onData);
      return buf;
    },
  };
}

function reply(sock: Socket, rep: number): void {
  sock.write(Buffer.from([VER, rep, 0, ATYP_V4, 0, 0, 0, 0, 0, 0]));
}

async function socksSession(net: MeshNet, sock: Socket, log?: Logger): Promise<void> {
  sock.on('error', () => {});
  const { read, rest: takeRest } = reader(sock);
  const hello = await read(2);
  if (hello === undefined || hello[0] !== VER) return void sock.destroy();
  const methods = await read(hello[1]!);
  if (methods === undefined || !methods.includes(0)) {
    sock.end(Buffer.from([VER, 0xff])); // no acceptable method: we offer "no authentication" only
    return;
  }
  sock.write(Buffer.from([VER, 0]));
  const req = await read(4);
  if (req === undefined || req[0] !== VER) return void sock.destroy();
  let host: string;
  if (req[3] === ATYP_V4) {
    const a = await read(4);
    if (a === undefined) return void sock.destroy();
    host = [...a].join('.');
  } else if (req[3] === ATYP_V6) {
    const a = await read(16);
    if (a === undefined) return void sock.destroy();
    host = Array.from({ length: 8 }, (_, i) => a.readUInt16BE(i * 2).toString(16)).join(':');
  } else if (req[3] === ATYP_DOMAIN) {
    const len = await read(1);
    const name = len === undefined ? undefined : await read(len[0]!);
    if (name === undefined) return void sock.destroy();
    host = name.toString('latin1');
  } else {
    reply(sock, REP_ATYP_UNSUPPORTED);
    return void sock.end();
  }
  const portBytes = await read(2);
  if (portBytes === undefined) return void sock.destroy();
  if (req[1] !== CMD_CONNECT) {
    reply(sock, REP_CMD_UNSUPPORTED);
    return void sock.end();
  }
  sock.pause();
  const rest = takeRest();
  const port = portBytes.readUInt16BE(0);
  const remote = net.connect({ host, port });
  // events.once rejects with the 'error' event's argument.
  const ok = await once(remote, 'connect').then(() => undefined, (e: NodeJS.ErrnoException) => e);
  if (ok !== undefined) {
    log?.verbose(`socks5 ${host}:${port}: ${ok.message}`);
    reply(sock, ok.code === 'ECONNREFUSED' ? REP_REFUSED : ok.code === 'ENOTFOUND' || ok.code === 'ETIMEDOUT' ? REP_HOST_UNREACHABLE : REP_FAILURE);
    return void sock.end();
  }
  reply(sock, REP_OK);
  if (rest.length > 0) remote.write(rest);
  splice(sock, remote);
}

/** Starts a SOCKS5 proxy (CONNECT, no auth) into `net` on `at`; resolves with the listening server. */
export function startSocks5(net: MeshNet, at: { host: string; port: number }, log?: Logger): Promise<Server> {
  const server = createServer((sock) => void socksSession(net, sock, log).catch(() => sock.destroy()));
  return listen(server, at);
}
