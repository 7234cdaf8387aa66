// The agent's HTTP client for plexd API v1: JSON requests with a deadline and a response size
// limit, RFC 9457 problem+json errors turned into ApiError with the machine-readable `code`,
// Retry-After read for 429/503, and optional TLS pinning (api.tls_fingerprint: the SHA-256 of
// the server certificate, for a self-hosted control plane with a self-signed certificate).
// With a pin, the TLS connection is made and checked *before* any HTTP byte (and so the bearer
// credential) is written; without one, the system CAs verify the server as usual.

import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { parseProblem } from '../api/problem.js';
import { PlexdError } from '../errors.js';

/** How a request failed: the server said no (http), or the exchange itself broke. */
export type ApiErrorKind = 'http' | 'network' | 'timeout' | 'tls_pin' | 'too_large' | 'malformed';

/** A failed API call. `status`/`problemCode` are set for kind 'http'. */
export class ApiError extends PlexdError<'ERR_API'> {
  static readonly codes = ['ERR_API'] as const;
  readonly kind: ApiErrorKind;
  readonly status: number | undefined;
  /** The problem+json `code` (e.g. token_consumed), when the server sent one. */
  readonly problemCode: string | undefined;
  /** Milliseconds from Retry-After, when present and valid. */
  readonly retryAfterMs: number | undefined;

  constructor(kind: ApiErrorKind, message: string, extra: { status?: number; problemCode?: string; retryAfterMs?: number; cause?: unknown } = {}) {
    super('ERR_API', message, extra);
    this.kind = kind;
    this.status = extra.status;
    this.problemCode = extra.problemCode;
    this.retryAfterMs = extra.retryAfterMs;
  }

  /** True for failures worth retrying: network, timeout, 429, 5xx. */
  get retryable(): boolean {
    if (this.kind === 'network' || this.kind === 'timeout') return true;
    return this.kind === 'http' && this.status !== undefined && (this.status === 429 || this.status >= 500);
  }
}

/** Options of an {@link HttpClient}. */
export interface HttpClientOptions {
  /** "https://cp.example:8443" (a path prefix is kept). */
  readonly baseUrl: string;
  /** SHA-256 of the server certificate, 64 hex digits (normalized). */
  readonly tlsFingerprint?: string | undefined;
  /** Deadline of a whole JSON request in ms (default 30 s). */
  readonly timeoutMs?: number;
  /** Largest response body read in bytes (default 8 MiB). */
  readonly maxBodyBytes?: number;
  readonly userAgent?: string;
}

/** A successful JSON exchange. */
export interface JsonResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or undefined for an empty body (204). */
  readonly body: unknown;
}

/** Parses Retry-After (delta seconds or an HTTP date) into ms from `nowMs`; capped at 1 hour. */
export function parseRetryAfter(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let ms: number;
  if (/^[0-9]{1,10}$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isFinite(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return Math.min(ms, 3_600_000);
}

/** Lowercase hex SHA-256 of a DER certificate. */
export function certificateFingerprint(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** JSON-over-HTTP(S) client for one control plane. */
export class HttpClient {
  readonly base: URL;
  readonly #pin: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxBody: number;
  readonly #userAgent: string;

  /** Throws TypeError for a base URL that is not http(s). */
  constructor(opts: HttpClientOptions) {
    this.base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : opts.baseUrl + '/');
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`expected an http(s) base URL, got ${JSON.stringify(opts.baseUrl)}`);
    }
    this.#pin = opts.tlsFingerprint?.toLowerCase().replace(/:/g, '');
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#maxBody = opts.maxBodyBytes ?? 8 << 20;
    this.#userAgent = opts.userAgent ?? 'plexd-userspace';
  }

  #url(path: string): URL {
    return new URL(path.replace(/^\/+/, ''), this.base);
  }

  /** Opens a TLS connection and checks the pin before handing it to HTTP. */
  #connectPinned(url: URL, signal: AbortSignal): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: Number(url.port || 443),
        servername: /^[0-9.]+$|:/.test(url.hostname) ? undefined : url.hostname,
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
      } as tls.ConnectionOptions);
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const onAbort = () => fail(new ApiError('timeout', `connecting to ${url.host} timed out`));
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (err) => fail(new ApiError('network', `cannot reach ${url.host}: ${err.message}`, { cause: err })));
      socket.once('secureConnect', () => {
        signal.removeEventListener('abort', onAbort);
        const cert = socket.getPeerCertificate(false);
        const got = cert?.raw === undefined ? '' : certificateFingerprint(cert.raw);
        if (got !== this.#pin) {
          fail(new ApiError('tls_pin', `the server certificate of ${url.host} does not match api.tls_fingerprint (got sha256 ${got || 'none'})`));
          return;
        }
        socket.removeAllListeners('error');
        resolve(socket);
      });
    });
  }

  /**
   * Sends a request and resolves with the response head once it arrives; the body is the
   * caller's to read. `signal` aborts everything. Rejects with ApiError (network, tls_pin, timeout).
   */
  async open(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer; signal: AbortSignal }): Promise<http.IncomingMessage> {
    const url = this.#url(path);
    const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...opts.headers };
    if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    let socket: Socket | undefined;
    if (url.protocol === 'https:' && this.#pin !== undefined) socket = await this.#connectPinned(url, opts.signal);
    return new Promise((resolve, reject) => {
      const reqOpts: http.RequestOptions = {
        method,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: url.pathname + url.search,
        headers,
        signal: opts.signal,
      };
      // With a pinned socket there must be no agent: an agent ignores createConnection.
      if (socket !== undefined) reqOpts.createConnection = () => socket;
      else reqOpts.agent = false;
      const req = url.protocol === 'https:' && socket === undefined ? https.request(reqOpts, resolve) : http.request(reqOpts, resolve);
      req.on('error', (err) => {
        if (opts.signal.aborted) reject(new ApiError('timeout', `${method} ${url.pathname} timed out or was aborted`, { cause: err }));
        else reject(new ApiError('network', `${method} ${url.pathname}: ${err.message}`, { cause: err }));
      });
      req.end(opts.body);
    });
  }

  /**
   * One JSON exchange. 2xx resolves with the parsed body; anything else rejects with ApiError
   * (kind 'http' with the problem+json code and Retry-After). Bodies past maxBodyBytes, bodies
   * that are not JSON, and the deadline reject too.
   */
  async json(method: string, path: string, opts: { body?: unknown; bearer?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<JsonResponse> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new ApiError('timeout', `${method} ${path} timed out`)), opts.timeoutMs ?? this.#timeoutMs);
    const onOuter = () => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuter, { once: true });
    try {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (opts.bearer !== undefined) headers['authorization'] = `Bearer ${opts.bearer}`;
      const res = await this.open(method, path, {
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: ctl.signal,
      });
      const text = await this.#readBody(res, ctl.signal);
      const status = res.statusCode ?? 0;
      let body: unknown;
      if (text.length > 0) {
        try {
          body = JSON.parse(text) as unknown;
        } catch {
          if (status >= 200 && status < 300) throw new ApiError('malformed', `${method} ${path}: the response is not JSON`, { status });
        }
      }
      if (status < 200 || status >= 300) {
        const problem = parseProblem(body, status);
        const code = problem.code === 'unknown' ? undefined : problem.code;
        const detail = (problem.detail ?? problem.title).slice(0, 300);
        const retry = parseRetryAfter(headerText(res.headers['retry-after']));
        throw new ApiError('http', `${method} ${path}: HTTP ${status}${code ? ` ${code}` : ''}${detail ? `: ${detail}` : ''}`, {
          status,
          ...(code !== undefined ? { problemCode: code } : {}),
          ...(retry !== undefined ? { retryAfterMs: retry } : {}),
        });
      }
      return { status, headers: res.headers, body };
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (ctl.signal.aborted) throw new ApiError('timeout', `${method} ${path} timed out or was aborted`, { cause: err });
      throw new ApiError('network', `${method} ${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onOuter);
    }
  }

  #readBody(res: http.IncomingMessage, signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > this.#maxBody) {
        reject(new ApiError('too_large', `response of ${declared} bytes exceeds the ${this.#maxBody}-byte limit`));
        res.destroy();
        return;
      }
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > this.#maxBody) {
          reject(new ApiError('too_large', `response exceeds the ${this.#maxBody}-byte limit`));
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', (err) => reject(signal.aborted ? new ApiError('timeout', 'response timed out', { cause: err }) : new ApiError('network', `response broke off: ${err.message}`, { cause: err })));
      res.on('aborted', () => reject(new ApiError('network', 'response broke off')));
    });
  }
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
