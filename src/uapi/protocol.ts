// Request side of wireguard-go's cross-platform userspace API (https://www.wireguard.com/xplatform/,
// device/uapi.go): a streaming parser that frames `get=1` / `set=1` requests and turns a whole
// `set=1` body, line by line as it arrives, into one typed SetTransaction (packed, see
// device/peer-changes.ts; the text is not kept) before anything is applied.

import { Buffer } from 'node:buffer';
import type { PackedTransaction } from '../device/contract.js';
import { DeviceError } from '../device/errors.js';
import { PeerChangeList, PeerFlag } from '../device/peer-changes.js';
import { normalizePrivateKey, parseAllowedIpValue, parseEndpointValue, parseUintValue } from '../device/validate.js';
import { toUapiError, UapiError } from './errors.js';

/** A fully parsed `set=1` request: the device's typed transaction (device/contract.ts). */
export type SetTransaction = PackedTransaction;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The longest set line bufio.Scanner (wireguard-go's reader) accepts, counting a '\r' but not the '\n'. */
export const MAX_LINE_BYTES = 65_535;

/**
 * Default bound on one set request's size: 8 MiB. 130,000 allowed IPs in the longest form `wg`
 * writes ("allowed_ip=" + 39-character IPv6 + "/128\n", 55 bytes) take 7,150,000 bytes; the rest
 * leaves room for the peer sections (~275 bytes each with every field: about 4,500 of them on top).
 * A typical 130,000-prefix set (mixed /32 and /48) is about 3.4 MB. wireguard-go has no bound.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;

function invalid(message: string): UapiError {
  return new UapiError('ERR_UAPI_INVALID', message);
}

/** A hex digit's value (either case), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/**
 * 64 hex digits (either case, like Go's hex.DecodeString) to 32 bytes, decoded straight into
 * `key` (fresh when not given): no Buffer from the shared pool (which would keep a copy of a
 * private or pre-shared key that nothing wipes) and no second array per key.
 */
function parseKey(value: string, what: string, key: Uint8Array = new Uint8Array(32)): Uint8Array {
  let bad = value.length !== 64;
  for (let i = 0; !bad && i < 32; i++) {
    const hi = hexDigit(value.charCodeAt(2 * i));
    const lo = hexDigit(value.charCodeAt(2 * i + 1));
    bad = (hi | lo) < 0;
    key[i] = (hi << 4) | lo;
  }
  if (bad) {
    key.fill(0);
    throw invalid(`failed to set ${what}: expected 64 hex digits`);
  }
  return key;
}

function parseTrue(value: string, what: string): void {
  if (value !== 'true') throw invalid(`failed to set ${what}, invalid value: ${JSON.stringify(value)}`);
}

/**
 * Accumulates the lines of one `set=1` body into a SetTransaction, with wireguard-go's rules:
 * device keys come before the first `public_key`, every later key belongs to the current peer.
 * Only the typed result is kept, packed (peer-ops.ts), never the lines.
 */
export class SetBuilder {
  private readonly tx: Mutable<SetTransaction> = {
    privateKey: undefined,
    listenPort: undefined,
    fwmark: undefined,
    replacePeers: false,
    peers: new PeerChangeList(),
  };
  private inPeer = false;

  /** Applies one non-empty line (no '\n'). Throws UapiError for a malformed line. */
  line(line: string): void {
    try {
      this.#line(line);
    } catch (err) {
      // The device's validators (shared with Device.configure) throw DeviceError.
      throw err instanceof DeviceError ? toUapiError(err) : err;
    }
  }

  #line(line: string): void {
    const eq = line.indexOf('=');
    if (eq < 0) throw new UapiError('ERR_UAPI_PROTOCOL', `failed to parse line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      // A malformed line fails the whole set, so a half-written section is never read.
      parseKey(value, 'public_key', this.tx.peers.begin());
      this.inPeer = true;
    } else if (!this.inPeer) {
      this.deviceLine(key, value);
    } else {
      this.peerLine(this.tx.peers, key, value);
    }
  }

  /** The transaction so far; call once the body ended without error. */
  finish(): SetTransaction {
    return this.tx;
  }

  private deviceLine(key: string, value: string): void {
    const tx = this.tx;
    switch (key) {
      case 'private_key': {
        tx.privateKey = normalizePrivateKey(parseKey(value, 'private_key'));
        return;
      }
      case 'listen_port':
        tx.listenPort = parseUintValue(value, 0xffff, 'listen_port');
        return;
      case 'fwmark':
        tx.fwmark = parseUintValue(value, 0xffff_ffff, 'fwmark');
        return;
      case 'replace_peers':
        parseTrue(value, 'replace_peers');
        tx.replacePeers = true;
        return;
      default:
        throw invalid(`invalid UAPI device key: ${JSON.stringify(key)}`);
    }
  }

  private peerLine(peers: PeerChangeList, key: string, value: string): void {
    switch (key) {
      case 'update_only':
        parseTrue(value, 'update_only');
        peers.flag(PeerFlag.updateOnly);
        return;
      case 'remove':
        parseTrue(value, 'remove');
        peers.flag(PeerFlag.remove);
        return;
      case 'preshared_key':
        parseKey(value, 'preshared_key', peers.presharedKey());
        return;
      case 'endpoint': {
        const { ip, port, zone } = parseEndpointValue(value);
        peers.endpoint(ip, port, zone);
        return;
      }
      case 'persistent_keepalive_interval':
        peers.keepalive(parseUintValue(value, 0xffff, 'persistent_keepalive_interval'));
        return;
      case 'replace_allowed_ips':
        parseTrue(value, 'replace_allowed_ips');
        peers.replaceAllowedIps();
        return;
      case 'allowed_ip':
        const { ip, cidr, remove } = parseAllowedIpValue(value);
        peers.allowedIp(ip, cidr, remove);
        return;
      case 'protocol_version':
        if (value !== '1') throw invalid(`invalid protocol version: ${JSON.stringify(value)}`);
        return;
      default:
        throw invalid(`invalid UAPI peer key: ${JSON.stringify(key)}`);
    }
  }
}

/**
 * Parses a complete `set=1` body (the lines after "set=1\n", up to an optional blank line) into a
 * SetTransaction. Throws UapiError on the first malformed line, TypeError if `body` is not a string.
 */
export function parseSetBody(body: string): SetTransaction {
  if (typeof body !== 'string') throw new TypeError(`expected a string body, got ${typeof body}`);
  const builder = new SetBuilder();
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    let line = body.slice(start, end);
    if (line.length > MAX_LINE_BYTES) throw new UapiError('ERR_UAPI_IO', `line longer than ${MAX_LINE_BYTES} bytes`);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length === 0) break;
    builder.line(line);
    start = end + 1;
  }
  return builder.finish();
}

/**
 * What one framed request asks the server to do:
 * - `get` / `set`: serve it, then reply `errno=N`;
 * - `error`: reply `errno=${error.errno}`; when `fatal`, close the connection afterwards;
 * - `close`: not a UAPI operation; close the connection without a reply (as wireguard-go does).
 */
export type UapiRequest =
  | { readonly kind: 'get' }
  | { readonly kind: 'set'; readonly tx: SetTransaction }
  | { readonly kind: 'error'; readonly error: UapiError; readonly fatal: boolean }
  | { readonly kind: 'close'; readonly reason: string };

type ParserState = 'op' | 'get' | 'set' | 'discard' | 'closed';

/**
 * Streaming request framer for one connection. Feed it bytes as they arrive; it returns the
 * complete requests found so far. Memory is bounded by one line (65,535 bytes) plus the packed
 * transaction of the set being parsed (about its text size or less; the text itself is not kept;
 * `maxRequestBytes` bounds the text). After a `close` or fatal `error` it ignores further input.
 */
export class UapiRequestParser {
  private state: ParserState = 'op';
  private partial = '';
  private requestBytes = 0;
  private builder: SetBuilder | undefined;
  private readonly maxRequestBytes: number;

  /** `maxRequestBytes`: bound on one set request's size in bytes (default DEFAULT_MAX_REQUEST_BYTES, 8 MiB). */
  constructor(options: { maxRequestBytes?: number } = {}) {
    const max = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    if (!Number.isSafeInteger(max) || max < 64) {
      throw new RangeError(`expected maxRequestBytes to be an integer >= 64, got ${String(max)}`);
    }
    this.maxRequestBytes = max;
  }

  /** True once the connection should be closed (after a `close` or fatal `error`). */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Consumes bytes; returns the requests they completed, in order. */
  push(chunk: Uint8Array): UapiRequest[] {
    if (!(chunk instanceof Uint8Array)) throw new TypeError(`expected a Uint8Array chunk, got ${typeof chunk}`);
    const out: UapiRequest[] = [];
    if (this.state === 'closed' || chunk.length === 0) return out;
    // latin1 maps every byte to one char, so lengths are byte counts and any non-ASCII byte
    // survives as a char no key or value accepts.
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    let pos = 0;
    while (pos < text.length && !this.closed) {
      if (this.state === 'get') {
        // wireguard-go reads exactly one more byte after "get=1\n"; it must end the request.
        if (text.charCodeAt(pos) === 0x0a) out.push({ kind: 'get' });
        else out.push(this.error(new UapiError('ERR_UAPI_INVALID', 'trailing character in UAPI get'), false));
        pos++;
        this.state = 'op';
        continue;
      }
      const nl = text.indexOf('\n', pos);
      const end = nl < 0 ? text.length : nl;
      if (this.state === 'set') {
        this.requestBytes += end - pos + (nl < 0 ? 0 : 1);
        if (this.requestBytes > this.maxRequestBytes) {
          out.push(this.error(new UapiError('ERR_UAPI_IO', `request larger than ${this.maxRequestBytes} bytes`), true));
          break;
        }
      }
      if (nl < 0) {
        this.appendPartial(text.slice(pos), out);
        break;
      }
      const line = this.partial.length === 0 ? text.slice(pos, nl) : this.partial + text.slice(pos, nl);
      this.partial = '';
      pos = nl + 1;
      if (this.state === 'discard') {
        if (line === '' || line === '\r') this.state = 'op';
        continue;
      }
      if (this.state === 'op') {
        this.opLine(line, out);
      } else if (line.length > MAX_LINE_BYTES) {
        out.push(this.lineTooLong());
        break;
      } else {
        this.bodyLine(line, out);
      }
    }
    return out;
  }

  /** The peer finished sending. Like wireguard-go, a set body cut short without error applies. */
  end(): UapiRequest[] {
    const out: UapiRequest[] = [];
    if (this.state === 'set') {
      if (this.partial.length > 0) this.bodyLine(this.partial, out);
      if (this.state === 'set') out.push(this.finishSet());
    }
    this.partial = '';
    this.builder = undefined;
    this.state = 'closed';
    return out;
  }

  private appendPartial(rest: string, out: UapiRequest[]): void {
    if (this.state === 'discard') {
      // Only whether the line is empty (or a lone '\r') matters: two characters tell.
      this.partial = (this.partial + rest.slice(0, 2)).slice(0, 2);
      return;
    }
    if (this.state === 'op') {
      // "get=1" and "set=1" are 5 bytes; anything longer without '\n' can only be junk.
      if (this.partial.length + rest.length > 5) out.push(this.close('invalid UAPI operation'));
      else this.partial += rest;
      return;
    }
    if (this.partial.length + rest.length > MAX_LINE_BYTES) out.push(this.lineTooLong());
    else this.partial += rest;
  }

  private opLine(line: string, out: UapiRequest[]): void {
    if (line === 'get=1') {
      this.state = 'get';
    } else if (line === 'set=1') {
      this.state = 'set';
      this.builder = new SetBuilder();
      this.requestBytes = 0;
    } else {
      out.push(this.close(`invalid UAPI operation: ${JSON.stringify(line.slice(0, 32))}`));
    }
  }

  private bodyLine(raw: string, out: UapiRequest[]): void {
    // bufio.ScanLines drops one '\r' before the '\n'.
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length === 0) {
      out.push(this.finishSet());
      this.state = 'op';
      return;
    }
    try {
      this.builder!.line(line);
    } catch (err) {
      if (!(err instanceof UapiError)) throw err;
      this.builder = undefined;
      out.push(this.error(err, false));
      this.state = 'discard';
    }
  }

  private finishSet(): UapiRequest {
    const tx = this.builder!.finish();
    this.builder = undefined;
    return { kind: 'set', tx };
  }

  private lineTooLong(): UapiRequest {
    return this.error(new UapiError('ERR_UAPI_IO', `line longer than ${MAX_LINE_BYTES} bytes`), true);
  }

  private error(error: UapiError, fatal: boolean): UapiRequest {
    if (fatal) this.shutDown();
    return { kind: 'error', error, fatal };
  }

  private close(reason: string): UapiRequest {
    this.shutDown();
    return { kind: 'close', reason };
  }

  private shutDown(): void {
    this.state = 'closed';
    this.partial = '';
    this.builder = undefined;
  }
}
