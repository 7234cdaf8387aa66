// Registering the node (plexd-api.md "POST /v1/register", docs/agent.md "Lifecycle"): the one
// path both the first start and a re-registration after a 401 take. The token comes from its first
// source (config, file, env, then cloud metadata: ./metadata-token.ts), the request carries our public key (and `mode:
// bridge` for a bridge), retries follow control/register.ts, the identity is written to the
// data_dir, and a token file is deleted once the control plane took its token.

import { rmSync } from 'node:fs';
import type { PeerInfo, RegisterResponse } from '../api/types.js';
import { ControlClient } from '../control/api-client.js';
import { HttpClient } from '../control/http-client.js';
import { register } from '../control/register.js';
import { systemClock, type Clock } from '../io/clock.js';
import type { Logger } from '../log/logger.js';
import { VERSION } from '../version.js';
import { normalizeFingerprint, type AgentConfig } from './config.js';
import { generatePrivateKey, publicKeyOf } from './keys.js';
import { bootstrapToken } from './metadata-token.js';
import type { Identity, Store } from './store.js';

/** The HTTP client for the control plane `config.api` names (TLS pin, timeout, user agent). */
export function controlHttpClient(config: AgentConfig): HttpClient {
  const pin = config.api.tlsFingerprint === undefined ? undefined : normalizeFingerprint(config.api.tlsFingerprint);
  return new HttpClient({ baseUrl: config.api.baseUrl, tlsFingerprint: pin, userAgent: `plexd-userspace/${VERSION}`, timeoutMs: config.api.requestTimeoutS * 1000 });
}

/** What {@link registerNode} needs. */
export interface RegistrationContext {
  readonly config: AgentConfig;
  readonly store: Store;
  readonly client: ControlClient;
  readonly log: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** registered_at is read from it. */
  readonly clock: Clock;
  readonly signal?: AbortSignal;
}

/** A registration that went through: the identity as stored, and the response it came from. */
export interface Registered {
  readonly identity: Identity;
  readonly response: RegisterResponse;
}

/**
 * Registers the node with `privateKey` (base64; its public key is sent) and stores the identity:
 * from `previous` with what the control plane handed out replaced, or a new one. Rejects with
 * RegistrationError (no token, refusal, retries exhausted) or StoreError; nothing is stored then.
 */
export async function registerNode(ctx: RegistrationContext, privateKey: string, publicKey: string = publicKeyOf(privateKey), previous?: Identity): Promise<Registered> {
  const { config, log } = ctx;
  const token = await bootstrapToken(config, ctx.env, log, ctx.signal);
  log.info(`registering ${config.registration.resourceHandle} with ${config.api.baseUrl} (token from ${token.source})`);
  const res = await register(
    ctx.client,
    {
      project_id: config.registration.projectId ?? 'default',
      resource_handle: config.registration.resourceHandle,
      bootstrap_token: token.token,
      public_key: publicKey,
      ...(config.mode === 'bridge' ? { mode: 'bridge' as const } : {}),
    },
    { log: (m) => log.info(m), maxRetryMs: config.registration.maxRetryS * 1000, ...(ctx.signal ? { signal: ctx.signal } : {}) },
  );
  const identity: Identity = {
    ...(previous ?? { api_base_url: config.api.baseUrl }),
    node_id: res.node_id,
    mesh_ip: res.mesh_ip,
    domain_mesh_cidr: res.domain_mesh_cidr,
    signing_key_id: res.signing_key_id,
    registered_at: new Date(ctx.clock.wallMs()).toISOString(),
    private_key: privateKey,
    nsk: res.nsk,
    signing_public_key: res.signing_public_key,
  };
  ctx.store.saveIdentity(identity);
  if (token.file !== undefined) {
    try {
      rmSync(token.file, { force: true });
    } catch (err) {
      // A read-only mount (a Kubernetes Secret volume): registered all the same; the token is spent.
      log.error(`registered, but could not delete the token file ${token.file}: ${(err as Error).message}`);
    }
  }
  log.info(`registered as node ${res.node_id}, mesh IP ${res.mesh_ip}`);
  return { identity, response: res };
}

/** What {@link ensureRegistered} resolves with: `fresh` when it registered just now (then `peers`
 *  and `stunServers` are the registration response's; empty for a stored identity). */
export interface EnsuredIdentity {
  readonly identity: Identity;
  readonly fresh: boolean;
  readonly peers: readonly PeerInfo[];
  readonly stunServers: readonly string[];
}

/**
 * Returns the stored identity, or registers a fresh key (token sources, retries) and stores the
 * new identity; the token file is deleted after success. Rejects with RegistrationError /
 * StoreError.
 */
export async function ensureRegistered(config: AgentConfig, store: Store, log: Logger, env: Readonly<Record<string, string | undefined>> = process.env, signal?: AbortSignal, clock: Clock = systemClock): Promise<EnsuredIdentity> {
  const existing = store.loadIdentity();
  if (existing !== undefined) return { identity: existing, fresh: false, peers: [], stunServers: [] };
  const client = new ControlClient(controlHttpClient(config));
  const { identity, response } = await registerNode({ config, store, client, log, env, clock, ...(signal ? { signal } : {}) }, generatePrivateKey());
  return { identity, fresh: true, peers: response.peer_snapshot, stunServers: response.stun_servers ?? [] };
}
