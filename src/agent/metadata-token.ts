// The bootstrap token from cloud instance metadata, the last token source (plexd-api.md "Metadata
// token", upstream's IMDS provider): with registration.use_metadata, IMDSv2 first (PUT
// /latest/api/token for a session token, then GET {metadata_token_path} with it), plain GET (IMDSv1)
// when the PUT fails; one overall deadline of registration.metadata_timeout; the body is read to at
// most 513 bytes, so a longer one is refused rather than truncated. The token is never logged.

import * as http from 'node:http';
import { MAX_BOOTSTRAP_TOKEN } from '../api/parse.js';
import { checkToken, localToken, noTokenError, RegistrationError, type BootstrapToken, type TokenSources } from '../control/register.js';
import type { Logger } from '../log/logger.js';
import type { AgentConfig } from './config.js';

/** The link-local instance metadata service (AWS, OpenStack and most clouds speak its v1/v2). */
export const METADATA_BASE_URL = 'http://169.254.169.254';
/** Bytes read of a response: one beyond the longest token, to see an oversized one (upstream's 513). */
export const MAX_METADATA_BODY = MAX_BOOTSTRAP_TOKEN + 1;
/** The IMDSv2 session token's lifetime asked for (seconds; upstream's 6 h). */
const SESSION_TTL_S = 21_600;
/** Bytes accepted of an IMDSv2 session token (AWS's are 56). */
const MAX_SESSION_TOKEN = 4096;

/** What a metadata read came to: a token (and which protocol gave it), or why there is none. */
export type MetadataResult =
  | { readonly kind: 'token'; readonly token: string; readonly protocol: 'imdsv2' | 'imdsv1' }
  | { readonly kind: 'unavailable'; readonly reason: string }
  | { readonly kind: 'malformed'; readonly reason: string };

/** Options of {@link readMetadataToken}. */
export interface MetadataOptions {
  /** registration.metadata_token_path, e.g. /plexd/bootstrap-token. */
  readonly path: string;
  /** The deadline for the whole exchange (PUT and GET), ms. */
  readonly timeoutMs: number;
  /** Default METADATA_BASE_URL; unit tests point it at loopback. */
  readonly baseUrl?: string;
  readonly signal?: AbortSignal;
}

interface Reply {
  readonly status: number;
  readonly body: Buffer;
  /** The body was longer than the cap (only the cap was kept). */
  readonly over: boolean;
}

/** One request; the body is read to `cap` bytes plus one. Rejects on network failure or abort. */
function request(url: URL, method: 'GET' | 'PUT', headers: Record<string, string>, cap: number, signal: AbortSignal): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'content-length': '0' }, agent: false, signal }, (res) => {
      const chunks: Buffer[] = [];
      let got = 0;
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > cap) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, body: Buffer.alloc(0), over: true });
        return;
      }
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got > cap) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, cap), over: true });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), over: false }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Reads the bootstrap token from the instance metadata service. Never throws and never rejects:
 * every failure is a result naming it (a timeout, a status, an empty or oversized body).
 */
export async function readMetadataToken(opts: MetadataOptions): Promise<MetadataResult> {
  const base = (opts.baseUrl ?? METADATA_BASE_URL).replace(/\/+$/, '');
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal === undefined ? deadline : AbortSignal.any([deadline, opts.signal]);
  const timedOut = (): MetadataResult => ({ kind: 'unavailable', reason: `no answer from ${base} within ${opts.timeoutMs / 1000} s` });
  let session: string | undefined;
  try {
    const r = await request(new URL(base + '/latest/api/token'), 'PUT', { 'x-aws-ec2-metadata-token-ttl-seconds': String(SESSION_TTL_S) }, MAX_SESSION_TOKEN, signal);
    const text = r.body.toString('latin1').trim();
    if (r.status === 200 && !r.over && /^[\x21-\x7e]+$/.test(text)) session = text;
  } catch (err) {
    // No IMDSv2 (refused, reset, 404 above): fall back to v1 below, unless the deadline is gone.
    if (signal.aborted) return deadline.aborted ? timedOut() : { kind: 'unavailable', reason: `cancelled (${(err as Error).message})` };
  }
  let r: Reply;
  try {
    r = await request(new URL(base + opts.path), 'GET', session === undefined ? {} : { 'x-aws-ec2-metadata-token': session }, MAX_BOOTSTRAP_TOKEN, signal);
  } catch (err) {
    if (deadline.aborted) return timedOut();
    return { kind: 'unavailable', reason: `GET ${base}${opts.path} failed: ${(err as Error).message}` };
  }
  if (r.status !== 200) return { kind: 'unavailable', reason: `GET ${base}${opts.path}: unexpected status ${r.status}` };
  if (r.over) return { kind: 'malformed', reason: `the response to GET ${base}${opts.path} is larger than ${MAX_BOOTSTRAP_TOKEN} bytes; refused` };
  const token = r.body.toString('latin1').trim();
  if (token === '') return { kind: 'unavailable', reason: `GET ${base}${opts.path}: empty token` };
  return { kind: 'token', token, protocol: session === undefined ? 'imdsv1' : 'imdsv2' };
}

/**
 * The bootstrap token from the first source that has one: config value -> token file -> env
 * (control/register.ts localToken) -> cloud metadata when registration.use_metadata. Rejects with
 * RegistrationError: no_token (naming why the metadata read failed), token_malformed (an
 * oversized or non-printable metadata token), or the local sources' refusals. Logs the source
 * only, never the token.
 */
export async function bootstrapToken(config: AgentConfig, env: Readonly<Record<string, string | undefined>>, log: Logger, signal?: AbortSignal, baseUrl?: string): Promise<BootstrapToken> {
  const reg = config.registration;
  const sources: TokenSources = { configToken: reg.token, tokenFile: reg.tokenFile, tokenEnv: reg.tokenEnv, env };
  const local = localToken(sources);
  if (local !== undefined) return local;
  if (!reg.useMetadata) throw noTokenError(sources, ', or enable registration.use_metadata (cloud-init)');
  log.info(`bootstrap token: none local; asking cloud metadata for ${reg.metadataTokenPath}`);
  const r = await readMetadataToken({ path: reg.metadataTokenPath, timeoutMs: reg.metadataTimeoutS * 1000, ...(baseUrl !== undefined ? { baseUrl } : {}), ...(signal ? { signal } : {}) });
  if (r.kind === 'unavailable') throw noTokenError(sources, `; cloud metadata: ${r.reason}`);
  if (r.kind === 'malformed') throw new RegistrationError('token_malformed', `the bootstrap token from cloud metadata: ${r.reason}`);
  log.info(`bootstrap token: from cloud metadata (${r.protocol === 'imdsv2' ? 'IMDSv2' : 'IMDSv1'})`);
  return { token: checkToken(r.token, 'cloud metadata'), source: 'metadata' };
}
