// Registration as plexd does it (plexd-api.md "POST /v1/register"): the bootstrap token from the
// first source that has one (config value, token file, PLEXD_BOOTSTRAP_TOKEN; cloud metadata comes
// last, from the agent: src/agent/metadata-token.ts), checked to be at most 512 bytes of printable ASCII; one nonce
// (UUID v4) per logical registration, reused across retries and never persisted; retry 429
// (honouring Retry-After), 5xx and network failures with backoff for up to 5 minutes; stop at
// once on any other 4xx with the problem code in the message.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MAX_BOOTSTRAP_TOKEN } from '../api/parse.js';
import { ERROR_CODES, type ErrorCode } from '../api/problem.js';
import type { RegisterRequest, RegisterResponse } from '../api/types.js';
import { PlexdError, type PlexdErrorOptions } from '../errors.js';
import type { ControlClient } from './api-client.js';
import { Backoff, sleep as realSleep } from './backoff.js';
import { ApiError } from './http-client.js';

/**
 * Why registration stopped without an API problem code: no usable token (no_token, token_malformed,
 * token_unreadable), retries ran out, the exchange broke (tls_pin, too_large, malformed: the
 * ApiError kinds that are not retried), or the server refused with a code or status we do not know
 * (refused; the server's code is in the message and in the ApiError `cause`).
 */
const LOCAL_REASONS = ['no_token', 'token_malformed', 'token_unreadable', 'retries_exhausted', 'tls_pin', 'too_large', 'malformed', 'refused'] as const;
export type RegistrationErrorCode = ErrorCode | (typeof LOCAL_REASONS)[number];

/** Registration gave up: `code` is the API problem code (token_consumed, ...) or a local reason. */
export class RegistrationError extends PlexdError<RegistrationErrorCode> {
  static readonly codes: readonly RegistrationErrorCode[] = [...(Object.keys(ERROR_CODES) as ErrorCode[]), ...LOCAL_REASONS];
  readonly status: number | undefined;
  constructor(code: RegistrationErrorCode, message: string, status?: number, options?: PlexdErrorOptions) {
    super(code, message, options);
    this.status = status;
  }
}

/** The code of a registration refusal: the exchange's failure, the problem code if the API defines it, else 'refused'. */
function refusalCode(err: ApiError): RegistrationErrorCode {
  if (err.kind === 'tls_pin' || err.kind === 'too_large' || err.kind === 'malformed') return err.kind;
  return err.problemCode !== undefined && Object.hasOwn(ERROR_CODES, err.problemCode) ? (err.problemCode as ErrorCode) : 'refused';
}

/** Where a bootstrap token came from. */
export type TokenSource = 'config' | 'file' | 'env' | 'metadata';

/** A usable token and its source (the file path for 'file', deleted after success). */
export interface BootstrapToken {
  readonly token: string;
  readonly source: TokenSource;
  readonly file?: string;
}

/** Throws RegistrationError('token_malformed') unless `t` is 1..512 bytes of printable ASCII. */
export function checkToken(t: string, where: string): string {
  if (t.length === 0 || t.length > MAX_BOOTSTRAP_TOKEN || !/^[\x21-\x7e]+$/.test(t)) {
    throw new RegistrationError('token_malformed', `the bootstrap token from ${where} is not 1..${MAX_BOOTSTRAP_TOKEN} bytes of printable ASCII`);
  }
  return t;
}

/** The local token sources, shared by {@link resolveToken} and the agent's metadata fallback. */
export interface TokenSources {
  readonly configToken?: string | undefined;
  readonly tokenFile: string;
  readonly tokenEnv?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * The bootstrap token from the first local source that has one: config value -> token file ->
 * PLEXD_BOOTSTRAP_TOKEN (or the variable tokenEnv names); undefined when none has one. Throws
 * RegistrationError for a malformed token or an unreadable file.
 */
export function localToken(opts: TokenSources): BootstrapToken | undefined {
  if (opts.configToken !== undefined && opts.configToken !== '') return { token: checkToken(opts.configToken.trim(), 'registration.token_value'), source: 'config' };
  const envName = opts.tokenEnv ?? 'PLEXD_BOOTSTRAP_TOKEN';
  let text: string | undefined;
  try {
    const buf = readFileSync(opts.tokenFile);
    if (buf.length > 4096) throw new RegistrationError('token_malformed', `${opts.tokenFile} is larger than 4 KiB; expected one token`);
    text = buf.toString('latin1').trim();
  } catch (err) {
    if (err instanceof RegistrationError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new RegistrationError('token_unreadable', `cannot read the bootstrap token file ${opts.tokenFile}: ${(err as Error).message}`);
    }
  }
  if (text !== undefined && text !== '') return { token: checkToken(text, opts.tokenFile), source: 'file', file: opts.tokenFile };
  const env = opts.env[envName];
  if (env !== undefined && env.trim() !== '') return { token: checkToken(env.trim(), envName), source: 'env' };
  return undefined;
}

/** The no_token refusal naming the local sources; `more` adds what else was tried (cloud metadata). */
export function noTokenError(opts: TokenSources, more = ''): RegistrationError {
  return new RegistrationError('no_token', `no bootstrap token: set registration.token_value, write it to ${opts.tokenFile}, or set ${opts.tokenEnv ?? 'PLEXD_BOOTSTRAP_TOKEN'}${more}`);
}

/**
 * Finds the bootstrap token in the local sources ({@link localToken}), without cloud metadata
 * (the agent adds it: src/agent/metadata-token.ts). Throws RegistrationError('no_token') when
 * none has one.
 */
export function resolveToken(opts: TokenSources): BootstrapToken {
  const found = localToken(opts);
  if (found === undefined) throw noTokenError(opts);
  return found;
}

/** Options of {@link register}; the timing hooks are for tests. */
export interface RegisterOptions {
  /** Give up retrying after this long (default 5 min). */
  readonly maxRetryMs?: number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly signal?: AbortSignal;
  readonly log?: (m: string) => void;
  /** The nonce to use (default a fresh UUID v4). */
  readonly nonce?: string;
}

/**
 * Registers with retries. Resolves with the response; rejects with RegistrationError naming the
 * problem code on a refusal (400/401/403/404/409/422 and other 4xx) or when retries ran out.
 */
export async function register(client: ControlClient, req: Omit<RegisterRequest, 'nonce'>, opts: RegisterOptions = {}): Promise<RegisterResponse> {
  const nonce = opts.nonce ?? randomUUID();
  const now = opts.now ?? (() => performance.now());
  const sleep = opts.sleep ?? realSleep;
  const maxRetry = opts.maxRetryMs ?? 5 * 60_000;
  const backoff = new Backoff({ ...(opts.random ? { random: opts.random } : {}) });
  const started = now();
  for (;;) {
    try {
      return await client.register({ ...req, nonce }, opts.signal);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (!err.retryable) {
        const said = err.problemCode ?? (err.status !== undefined ? `http_${err.status}` : err.kind);
        throw new RegistrationError(refusalCode(err), `registration refused (${said}${err.status !== undefined ? `, HTTP ${err.status}` : ''}): ${err.message}`, err.status, { cause: err });
      }
      const delay = Math.max(err.retryAfterMs ?? 0, backoff.next());
      if (now() - started + delay > maxRetry) {
        throw new RegistrationError('retries_exhausted', `registration failed for ${Math.round((now() - started) / 1000)} s, giving up: ${err.message}`, err.status, { cause: err });
      }
      opts.log?.(`registration attempt failed (${err.message}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await sleep(delay, opts.signal);
    }
  }
}
