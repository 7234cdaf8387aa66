// Typed plexd API v1 calls over HttpClient (plexd-api.md "Endpoints"): every response body goes
// through the shared lenient parsers of src/api, and a body that does not parse is an ApiError of
// kind 'malformed' naming the fields, never a half-typed object.

import type { IncomingMessage } from 'node:http';
import { encodeNodeCredential } from '../api/credential.js';
import { decodeBase64, type ParseResult } from '../api/fields.js';
import {
  parseEndpointResponse,
  parseExecutionReportResponse,
  parseHeartbeatResponse,
  parseKeyRotateResponse,
  parseRegisterResponse,
  parseStateResponse,
} from '../api/parse.js';
import type {
  CapabilitiesRequest,
  EndpointRequest,
  ExecutionReport,
  ExecutionReportResponse,
  EndpointResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  KeyRotateResponse,
  RegisterRequest,
  RegisterResponse,
  StateResponse,
} from '../api/types.js';
import { ApiError, parseRetryAfter, type HttpClient } from './http-client.js';
import { parseProblem } from '../api/problem.js';
import { SECRET_KID_HEADER, SECRET_VERSION_HEADER, type NodeStateReportRequest } from '../api/types.js';

function parsed<T>(what: string, r: ParseResult<T>): T {
  if (r.ok) return r.value;
  const first = r.errors.slice(0, 3).map((e) => `${e.field} ${e.message}`).join('; ');
  throw new ApiError('malformed', `${what}: the response does not parse (${first})`);
}

/** The node's credential: node id and base64 nsk. */
export interface NodeAuth {
  readonly nodeId: string;
  readonly nsk: string;
}

/** plexd API v1 client for one node. */
export class ControlClient {
  readonly http: HttpClient;
  #bearer: string | undefined;
  #nodeId: string | undefined;

  constructor(http: HttpClient, auth?: NodeAuth) {
    this.http = http;
    if (auth !== undefined) this.setAuth(auth);
  }

  /** Sets the bearer credential for later calls. Throws TypeError for a malformed id or nsk. */
  setAuth(auth: NodeAuth): void {
    const nsk = decodeBase64(auth.nsk, 32);
    if (nsk === undefined) throw new TypeError('expected nsk to be base64 of 32 bytes');
    this.#bearer = encodeNodeCredential(auth.nodeId, nsk);
    this.#nodeId = auth.nodeId;
  }

  #node(): { bearer: string; path: string } {
    if (this.#bearer === undefined || this.#nodeId === undefined) throw new TypeError('expected a node credential (setAuth) first');
    return { bearer: this.#bearer, path: `v1/nodes/${encodeURIComponent(this.#nodeId)}` };
  }

  /** POST /v1/register (one attempt; see register.ts for the retry rules). */
  async register(req: RegisterRequest, signal?: AbortSignal): Promise<RegisterResponse> {
    const res = await this.http.json('POST', 'v1/register', { body: req, ...(signal ? { signal } : {}) });
    return parsed('register', parseRegisterResponse(res.body));
  }

  /** POST /v1/nodes/{id}/heartbeat. */
  async heartbeat(req: HeartbeatRequest, signal?: AbortSignal): Promise<HeartbeatResponse> {
    const n = this.#node();
    const res = await this.http.json('POST', `${n.path}/heartbeat`, { body: req, bearer: n.bearer, ...(signal ? { signal } : {}) });
    return parsed('heartbeat', parseHeartbeatResponse(res.body));
  }

  /** GET /v1/nodes/{id}/state. */
  async state(signal?: AbortSignal): Promise<StateResponse> {
    const n = this.#node();
    const res = await this.http.json('GET', `${n.path}/state`, { bearer: n.bearer, ...(signal ? { signal } : {}) });
    return parsed('state', parseStateResponse(res.body));
  }

  /** PUT /v1/nodes/{id}/endpoint. */
  async reportEndpoint(req: EndpointRequest, signal?: AbortSignal): Promise<EndpointResponse> {
    const n = this.#node();
    const res = await this.http.json('PUT', `${n.path}/endpoint`, { body: req, bearer: n.bearer, ...(signal ? { signal } : {}) });
    return parsed('endpoint', parseEndpointResponse(res.body));
  }

  /** POST /v1/keys/rotate. */
  async rotateKeys(newPublicKey: string, signal?: AbortSignal): Promise<KeyRotateResponse> {
    const n = this.#node();
    const res = await this.http.json('POST', 'v1/keys/rotate', { body: { new_public_key: newPublicKey }, bearer: n.bearer, ...(signal ? { signal } : {}) });
    return parsed('keys/rotate', parseKeyRotateResponse(res.body));
  }

  /** POST /v1/nodes/{id}/deregister. */
  async deregister(reason?: string, signal?: AbortSignal): Promise<void> {
    const n = this.#node();
    await this.http.json('POST', `${n.path}/deregister`, { body: reason === undefined ? {} : { reason }, bearer: n.bearer, ...(signal ? { signal } : {}) });
  }

  /**
   * POST /v1/nodes/{id}/{kind}: one telemetry batch, `body` already encoded (and compressed, with
   * its headers). Resolves with the status and at most 64 KiB of the answer for any status;
   * rejects with ApiError (network, timeout) when no answer came.
   */
  async postTelemetry(kind: string, body: Uint8Array, headers: Record<string, string>, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const n = this.#node();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new ApiError('timeout', `POST ${kind} timed out`)), 30_000);
    const onOuter = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onOuter, { once: true });
    try {
      const res = await this.http.open('POST', `${n.path}/${kind}`, { headers: { ...headers, authorization: `Bearer ${n.bearer}`, accept: 'application/json' }, body, signal: ctl.signal });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        if (size < 65536) chunks.push(chunk);
        size += chunk.length;
      }
      return { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').slice(0, 65536) };
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError(ctl.signal.aborted ? 'timeout' : 'network', `POST ${kind}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onOuter);
    }
  }

  /** GET /v1/nodes/{id}/events: the response head (any status); the caller reads the stream. */
  openEvents(lastEventId: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
    const n = this.#node();
    const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache', authorization: `Bearer ${n.bearer}` };
    if (lastEventId !== undefined && lastEventId !== '' && !/[\r\n\0]/.test(lastEventId)) headers['last-event-id'] = lastEventId;
    return this.http.open('GET', `${n.path}/events`, { headers, signal });
  }

  /** POST /v1/nodes/{id}/executions/{exec_id}: one lifecycle transition of an execution. */
  async reportExecution(executionId: string, req: ExecutionReport, signal?: AbortSignal): Promise<ExecutionReportResponse> {
    const n = this.#node();
    const res = await this.http.json('POST', `${n.path}/executions/${encodeURIComponent(executionId)}`, { body: req, bearer: n.bearer, ...(signal ? { signal } : {}) });
    return parsed('executions', parseExecutionReportResponse(res.body));
  }

  /** PUT /v1/nodes/{id}/capabilities: the manifest of built-in actions and hooks. */
  async updateCapabilities(req: CapabilitiesRequest, signal?: AbortSignal): Promise<void> {
    const n = this.#node();
    await this.http.json('PUT', `${n.path}/capabilities`, { body: req, bearer: n.bearer, ...(signal ? { signal } : {}) });
  }

  /**
   * PUTs an execution's output to the one-time URL the control plane returned: raw bytes,
   * application/octet-stream, no bearer token, no redirects followed. The URL must have the
   * control plane's own origin (so never a downgrade from https, never another host); it is a
   * credential and is never put into an error message.
   */
  async uploadOutput(url: string, body: Buffer, signal: AbortSignal): Promise<void> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new ApiError('malformed', 'output_upload_url is not a URL');
    }
    if (u.origin !== this.http.base.origin) throw new ApiError('malformed', `output_upload_url is not on the control plane's origin ${this.http.base.origin}`);
    const res = await this.http.open('PUT', u.href, { headers: { 'content-type': 'application/octet-stream' }, body, signal });
    res.resume();
    if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) throw new ApiError('http', `output upload answered ${res.statusCode ?? '?'}`, { status: res.statusCode ?? 0 });
  }
  /** GET /v1/nodes/{id}/secrets/{name}[?version=N]: the raw envelope (nonce || ciphertext || tag)
   *  with its version and key id. Rejects with ApiError (http with status and problem code,
   *  network, timeout, too_large past 256 KiB, malformed when the headers are missing). */
  async fetchSecret(name: string, version?: number, signal?: AbortSignal): Promise<{ envelope: Buffer; version: number; kid: string }> {
    const n = this.#node();
    const ctl = AbortSignal.any([AbortSignal.timeout(30_000), ...(signal ? [signal] : [])]);
    const path = `${n.path}/secrets/${encodeURIComponent(name)}${version === undefined ? '' : `?version=${version}`}`;
    const res = await this.http.open('GET', path, { headers: { accept: 'application/octet-stream', authorization: `Bearer ${n.bearer}` }, signal: ctl });
    const body = await readBounded(res, 256 * 1024);
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8')) as unknown;
      } catch {
        parsed = undefined;
      }
      const problem = parseProblem(parsed, status);
      const retry = parseRetryAfter(typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined);
      throw new ApiError('http', `GET secret ${name}: HTTP ${status}${problem.code === 'unknown' ? '' : ` ${problem.code}`}`, {
        status,
        ...(problem.code === 'unknown' ? {} : { problemCode: problem.code }),
        ...(retry === undefined ? {} : { retryAfterMs: retry }),
      });
    }
    const v = Number(res.headers[SECRET_VERSION_HEADER]);
    const kid = res.headers[SECRET_KID_HEADER];
    if (!Number.isSafeInteger(v) || v < 1) throw new ApiError('malformed', `GET secret ${name}: no valid ${SECRET_VERSION_HEADER} header`);
    return { envelope: body, version: v, kid: typeof kid === 'string' ? kid : '' };
  }

  /** PUT /v1/nodes/{id}/state/reports/{key}. */
  async putStateReport(key: string, req: NodeStateReportRequest, signal?: AbortSignal): Promise<void> {
    const n = this.#node();
    await this.http.json('PUT', `${n.path}/state/reports/${encodeURIComponent(key)}`, { body: req, bearer: n.bearer, ...(signal ? { signal } : {}) });
  }

  /** DELETE /v1/nodes/{id}/state/reports/{key}. */
  async deleteStateReport(key: string, signal?: AbortSignal): Promise<void> {
    const n = this.#node();
    await this.http.json('DELETE', `${n.path}/state/reports/${encodeURIComponent(key)}`, { bearer: n.bearer, ...(signal ? { signal } : {}) });
  }
}

/** The whole body of `res`, rejecting with ApiError too_large past `max` bytes. */
function readBounded(res: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        res.destroy();
        reject(new ApiError('too_large', `response exceeds ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', (err) => reject(new ApiError('network', err.message, { cause: err })));
  });
}
