// Request/response plumbing for the control plane's node:http(s) server: bounded JSON body
// reading, JSON and problem+json replies, correlation ids. Hostile input ends in a 4xx problem,
// never a throw past the handler or an unbounded buffer.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PROBLEM_CONTENT_TYPE, problem, type ErrorCode, type FieldError } from '../api/index.js';
import { ControlPlaneError } from './errors.js';

/** Largest accepted request body: 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

const CORRELATION = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's X-Correlation-Id when it is sane, else a new UUID. */
export function correlationId(req: IncomingMessage): string {
  const given = req.headers['x-correlation-id'];
  return typeof given === 'string' && CORRELATION.test(given) ? given : randomUUID();
}

/** Sends `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Sends a problem+json for `code`. `close` asks the client to drop the connection (used when the
 *  request body was not read to its end). */
export function sendProblem(res: ServerResponse, code: ErrorCode, detail: string, errors?: readonly FieldError[], close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const correlation = res.getHeader('x-correlation-id');
  const body = JSON.stringify(problem(code, detail, { ...(typeof correlation === 'string' ? { correlation_id: correlation } : {}), ...(errors === undefined ? {} : { errors }) }));
  const headers: Record<string, string | number> = { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) };
  if (close) headers.connection = 'close';
  res.writeHead(problem(code).status, headers);
  res.end(body);
}

/**
 * Reads the body as JSON, at most `limit` bytes. Resolves to `undefined` for an empty body.
 * Rejects with ControlPlaneError payload_too_large (Content-Length too big, or more bytes than
 * that arriving) or invalid_json.
 */
export async function readJsonBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<unknown> {
  const text = await readBody(req, limit);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ControlPlaneError('invalid_json', `request body is not JSON: ${(err as Error).message.slice(0, 200)}`, { cause: err });
  }
}

/** Reads the body as UTF-8 text, at most `limit` bytes; rejects with ControlPlaneError
 *  payload_too_large (Content-Length too big, or more bytes than that arriving). */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  return (await readBodyBytes(req, limit)).toString('utf8');
}

/** Reads the body as bytes, at most `limit`; rejects like readBody. */
export function readBodyBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && !(Number(declared) <= limit)) {
      reject(new ControlPlaneError('payload_too_large', `request body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        chunks.length = 0;
        reject(new ControlPlaneError('payload_too_large', `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
  });
}
