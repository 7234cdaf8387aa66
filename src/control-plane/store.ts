// The control plane's state and every change to it, on one SQLite database: projects, tokens,
// registration, nodes and their liveness, per-pair PSKs, policy and the signed event log. Both the
// server and the CLI (`token`, `nodes`, `policy`) work through this class, so a change made by the
// CLI on the same file is the same transaction, with the same events, as one made over HTTP.

import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import {
  encodeBase64,
  formatRfc3339,
  generateSigningKey,
  parseRfc3339,
  signingKeyId,
  signingPublicKey,
  type CapabilitiesRequest,
  type EndpointRequest,
  type EndpointResponse,
  type FirewallRule,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type KeyRotateResponse,
  type NodeCredential,
  type PeerInfo,
  type Policy,
  type RegisterRequest,
  type RegisterResponse,
  type StateResponse,
} from '../api/index.js';
import { systemClock, type Clock } from '../io/clock.js';
import { bridgeAccessBlock, bridgePrefixes, dropBridgeRows, ownedRanges, recordBridgeKeys, setAccessRange } from './access.js';
import { openDatabase, type Db } from './database.js';
import { ControlPlaneError, ControlPlaneFileError } from './errors.js';
import { appendEvent, lastSeq, pruneEvents, type NewEvent, type Signer } from './event-log.js';
import { ingressBlockFor, ingressPolicyRules, ingressRemovalEvents, withIngressRules } from './ingress.js';
import { allocateMeshIp, DEFAULT_MESH_CIDR, formatIpv4, MESH_HINT_COLUMNS, meshRange, type MeshHint, type MeshRange } from './mesh-ip.js';
import { checkPolicy, getPolicy, putPolicy, ruleKey, rulesFingerprint, VISIBLE_STATUSES } from './policy.js';
import { executionsFor } from './actions.js';
import { prepared } from './prepared.js';
import { isPostgresUrl } from './sql.js';
import { bumpPairEpoch, bumpProjectPskGeneration, dropPsks, projectPskGeneration, pskMaster, pskMasterState, psksOf } from './psk.js';
import { isSealed, loadSecretsKey, SECRETS_KEY_SUFFIX, type SecretBox } from './secrets.js';
import { consumeToken, createToken, DEFAULT_TOKEN_TTL_MS, judgeToken, revokeToken, tokenHash, type CreatedToken } from './tokens.js';
import { compileRulesFor, diffVisibility, ipv4Number, mergeRanges, parseLabels, sideOf, Visibility, type PolicyRule, type VisibilityChange, type VisNode } from './visibility.js';

/** Domain separation of access.ts PSKs from pair PSKs (psk.ts) under the same master. */
const ACCESS_PSK_LABEL = Buffer.from('plexd-userspace access psk v1\0');

/** The project every database has from its first start. */
export const DEFAULT_PROJECT = 'default';
/** Heartbeat clock skew beyond which a heartbeat is refused with clock_skew (plexd-api.md). */
export const MAX_CLOCK_SKEW_MS = 60_000;
/** No heartbeat for this long (3 missed at 30 s): unreachable. */
export const UNREACHABLE_AFTER_MS = 90_000;
/** No heartbeat for this long (10 missed): offline, dropped from peers' lists. */
export const OFFLINE_AFTER_MS = 300_000;
/** Seconds an endpoint report stays fresh (agents report again at min(60, this - 30)). */
export const ENDPOINT_STALE_AFTER_S = 120;
/** How long a retired event-signing key keeps verifying after a rotation, by default: 1 hour. */
export const SIGNING_KEY_TRANSITION_MS = 60 * 60_000;
/** How long a registration's nsk is kept for an identical retry, unless used first. */
export const REGISTRATION_RETRY_MS = 10 * 60_000;

/** A node as stored. */
export interface NodeRow {
  readonly row: number;
  readonly node_id: string;
  readonly project_id: string;
  readonly resource_handle: string;
  readonly mode: string;
  readonly public_key: string;
  readonly key_version: number;
  readonly key_rotated_at: number | null;
  readonly rotation_id: string | null;
  readonly mesh_ip: string;
  readonly status: string;
  readonly registered_at: number;
  readonly last_heartbeat_at: number;
  readonly endpoint: string | null;
  /** JSON array of the last reported endpoint candidates (schema 6), NULL when none. */
  readonly candidates: string | null;
  readonly nat_type: string | null;
  readonly binary_version: string | null;
  readonly last_state_seq: number;
  readonly rotate_requested: number;
  readonly nsk_hash: Buffer;
  /** 1 when schema 4 found this node sharing its key with an older holder (schema.ts). */
  readonly key_conflict: number;
  /** JSON object of the node's labels (schema 7), NULL when none. */
  readonly labels: string | null;
}

/** A visibility change or policy revision touching more nodes than this is announced by the
 *  project-wide policy_updated alone (every node pulls state), not by targeted events per node. */
export const MAX_TARGETED_VISIBILITY_NODES = 1024;
/** A policy change whose changed rules cover more node pairs than this is not diffed pair by pair:
 *  every node pulls after policy_updated, and when rules were removed the project's PSK
 *  generation moves (every pair gets a new PSK) instead of one epoch per lost pair. */
export const MAX_DIFF_PAIRS = 1_000_000;
/** A node gaining or losing more peers than this at once gets one node_state_updated instead of
 *  a peer_added / peer_removed per peer. */
export const MAX_PEER_EVENTS_PER_NODE = 8;
/** A heartbeat's "reconcile?" check reads the event log in pages of this many events... */
const BEHIND_SCAN_PAGE = 64;
/** ...and at most this many pages, then answers yes. */
const BEHIND_SCAN_PAGES = 16;
/** A node seeing at most this many peers has their events looked up by id, in one statement. */
const BEHIND_PEER_LIST = 256;

/** A project's visibility model with the node rows it was built from (cache entry). */
interface CachedModel {
  readonly key: string;
  readonly model: Visibility;
  /** The policy the model was built from (parsed once per revision). */
  readonly policy: Policy | null;
  /** The rules it was built with (the policy's and the ingress rules'). */
  readonly rules: readonly PolicyRule[];
  /** The highest nodes.row among its nodes (membership_appends after it extend the model). */
  readonly maxRow: number;
}

const PUBLIC_KEY_IN_USE = 'this WireGuard public key belongs to another node; generate a new key pair';

/** membership_appends entries older than this are pruned (a process further behind re-reads). */
const MEMBERSHIP_APPENDS_KEEP_MS = 10 * 60_000;

/** The labels column as an object ({} for NULL or anything unreadable). */
export function labelsOf(column: string | null): Record<string, string> {
  if (column === null) return {};
  try {
    const v = JSON.parse(column) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** Options of ControlPlaneStore.open. */
export interface StoreOptions {
  /** Time source; wall time is used throughout. Default: the system clock. */
  readonly clock?: Clock;
  /** Mesh range, used only when the database is created. Default 10.100.0.0/16. */
  readonly meshCidr?: string;
  /** The key file sealing the secrets (secrets.ts). Default: the database path + ".secrets.key". */
  readonly secretsKeyFile?: string;
  /** Accept a database or secrets key readable by group or others (database.ts). Default false. */
  readonly allowInsecurePermissions?: boolean;
  /** Access range of user-access clients (access.ts); set when given, refused while users hold
   *  addresses in another one. Default: as stored, else 10.101.0.0/16. */
  readonly accessCidr?: string;
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

function keyKid(publicKeyB64: string): string {
  return `x25519:${Buffer.from(publicKeyB64, 'base64').subarray(0, 8).toString('hex')}`;
}

/** The control plane's state on one database file. */
export class ControlPlaneStore {
  readonly db: Db;
  readonly clock: Clock;
  readonly range: MeshRange;
  #signer: Signer;
  readonly #pskMaster: Buffer;
  readonly #box: SecretBox;
  /** Called after a committed transaction appended events (the server's bus pumps them). */
  onEvents: (() => void) | undefined;
  #appended = false;
  /** Inside tx() (its outermost call), and whether the signer was checked in it. */
  #inTx = false;
  #signerChecked = false;
  /** Projects whose cached model was checked or made inside the current write transaction: the
   *  writer lock keeps other processes out, and this process's own changes of membership or
   *  policy drop them, so their key need not be read again in it (a round trip on PostgreSQL). */
  readonly #trusted = new Set<string>();
  /** Nodes (and their registered_at) whose registration retry window this process closed. */
  readonly #retryClosed = new Map<string, number>();
  /** Visibility models by project, keyed by membership generation and policy revision. */
  readonly #models = new Map<string, CachedModel>();

  private constructor(db: Db, clock: Clock, range: MeshRange, signer: Signer, pskMasterKey: Buffer, box: SecretBox) {
    this.db = db;
    this.clock = clock;
    this.range = range;
    this.#signer = signer;
    this.#pskMaster = pskMasterKey;
    this.#box = box;
  }

  /** Opens (creating and migrating when needed) the database at `file`; creates the default
   *  project, the signing key, the PSK master, the secrets key and the mesh range on first start,
   *  and seals secrets an older build stored in plaintext. Throws ControlPlaneFileError on a
   *  file readable by others (unless allowed) or a missing or wrong secrets key. */
  static open(file: string, options: StoreOptions = {}): ControlPlaneStore {
    // PLEXD_CP_SECRETS_KEY names a PostgreSQL database's key when the caller does not.
    const clock = options.clock ?? systemClock;
    const allowInsecure = options.allowInsecurePermissions === true;
    // A PostgreSQL database has no file to put the key beside, and every replica needs the same key.
    const envKey = process.env.PLEXD_CP_SECRETS_KEY;
    if (isPostgresUrl(file) && options.secretsKeyFile === undefined && envKey !== undefined && envKey !== '') options = { ...options, secretsKeyFile: envKey };
    if (isPostgresUrl(file) && options.secretsKeyFile === undefined) throw new ControlPlaneFileError('ERR_CP_SECRETS_KEY', 'a postgres:// database needs --secrets-key FILE (the same file on every replica; made 0600 when the database is new)');
    const db = openDatabase(file, { allowInsecurePermissions: allowInsecure });
    try {
      const now = clock.wallMs();
      const init = db.transaction(() => {
        db.prepare('INSERT OR IGNORE INTO projects (id, created_at) VALUES (?, ?)').run(DEFAULT_PROJECT, now);
        db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('domain_mesh_cidr', ?)").run(meshRange(options.meshCidr ?? DEFAULT_MESH_CIDR).cidr);
        // Inside the write transaction: of two processes opening a new file, one makes the key.
        const masterState = pskMasterState(db);
        const keys = prepared(db, 'SELECT key_id, secret_key FROM signing_keys').all() as StoredSigningKey[];
        const sealedBefore = masterState === 'sealed' || keys.some((k) => isSealed(k.secret_key));
        const box = loadSecretsKey(options.secretsKeyFile ?? `${file}${SECRETS_KEY_SUFFIX}`, !sealedBefore, allowInsecure);
        // Migration of rows from before sealing (or written since by an older build).
        const plainKeys = keys.filter((k) => !isSealed(k.secret_key));
        for (const k of plainKeys) {
          prepared(db, 'UPDATE signing_keys SET secret_key = ? WHERE key_id = ?').run(box.seal(signingKeyPurpose(k.key_id), box.reveal(signingKeyPurpose(k.key_id), k.secret_key)), k.key_id);
        }
        let key = activeKey(db);
        if (key === undefined) {
          const k = generateSigningKey();
          const keyId = signingKeyId(k.publicKey);
          key = { key_id: keyId, secret_key: box.seal(signingKeyPurpose(keyId), k.secretKey) };
          db.prepare('INSERT INTO signing_keys (key_id, secret_key, public_key, created_at, active) VALUES (?, ?, ?, ?, 1)').run(key.key_id, key.secret_key, Buffer.from(k.publicKey), now);
        }
        const cidr = (db.prepare("SELECT value FROM meta WHERE key = 'domain_mesh_cidr'").get() as { value: string }).value;
        if (options.accessCidr !== undefined) setAccessRange(db, meshRange(cidr), options.accessCidr);
        return { key, cidr, box, master: pskMaster(db, box), migrated: plainKeys.length > 0 || masterState === 'plain' };
      });
      const { key, cidr, box, master, migrated } = init.immediate();
      // Plaintext secrets just sealed: move the pages out of the WAL now (secure_delete zeroed the
      // old cells), so no copy of the plaintext stays on disk.
      if (migrated) db.pragma('wal_checkpoint(TRUNCATE)');
      return new ControlPlaneStore(db, clock, meshRange(cidr), toSigner(key, box), master, box);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** Wall-clock now in ms. */
  now(): number {
    return this.clock.wallMs();
  }

  /** The active event-signing key. Re-read when another process (`signing-key rotate`) changed
   *  it, so nothing is signed with a retired key. */
  get signer(): Signer {
    // Checked once per write transaction (a registration signs up to three times; on PostgreSQL
    // each check is a round trip): the writer lock keeps the active key from changing under it.
    if (this.#signerChecked) return this.#signer;
    const id = prepared(this.db, 'SELECT key_id FROM signing_keys WHERE active = 1').pluck().get() as string | undefined;
    if (id !== undefined && id !== this.#signer.keyId) this.#signer = toSigner(activeKey(this.db)!, this.#box);
    this.#signerChecked = this.#inTx;
    return this.#signer;
  }

  private emit(e: NewEvent): number {
    this.#appended = true;
    if (this.db.dialect === 'postgres' && this.#inTx && !this.#signerChecked) {
      // The transaction's first event: the signing-key check and the sequence number in one
      // round trip (the check is once per transaction; see the signer getter).
      const r = prepared(this.db, "SELECT nextval('events_seq') AS seq, (SELECT key_id FROM signing_keys WHERE active = 1) AS key_id").get() as { seq: number; key_id: string | null };
      if (r.key_id !== null && r.key_id !== this.#signer.keyId) this.#signer = toSigner(activeKey(this.db)!, this.#box);
      this.#signerChecked = true;
      return appendEvent(this.db, this.#signer, this.now(), e, r.seq);
    }
    return appendEvent(this.db, this.signer, this.now(), e);
  }

  /** Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so a concurrent CLI
   *  writer waits on busy_timeout instead of failing mid-transaction). */
  tx<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.#appended = false;
    this.#inTx = true;
    let out: T;
    try {
      out = this.db.transaction(fn).immediate();
    } finally {
      this.#inTx = false;
      this.#signerChecked = false;
      this.#trusted.clear();
    }
    if (this.#appended) {
      this.#appended = false;
      this.onEvents?.();
    }
    return out;
  }

  // ---- projects and tokens ----

  /** Creates a project (no-op when it exists). Throws RangeError on a bad id. */
  createProject(id: string): void {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) throw new RangeError(`expected a project id of 1..128 [A-Za-z0-9._-], got ${JSON.stringify(id)}`);
    prepared(this.db, 'INSERT OR IGNORE INTO projects (id, created_at) VALUES (?, ?)').run(id, this.now());
  }

  /** Creates a single-use bootstrap token for `projectId` valid for `ttlMs`; the node it
   *  registers carries `labels` from its first registration. */
  createToken(projectId = DEFAULT_PROJECT, ttlMs = DEFAULT_TOKEN_TTL_MS, labels: Readonly<Record<string, string>> = {}): CreatedToken {
    const checked = parseLabels(Object.entries(labels).map(([k, v]) => `${k}=${v}`));
    return createToken(this.db, projectId, ttlMs, this.now(), Object.keys(checked).length === 0 ? null : JSON.stringify(checked));
  }

  /** Revokes a token by text or id; returns how many were revoked. */
  revokeToken(tokenOrId: string): number {
    return revokeToken(this.db, tokenOrId, this.now());
  }

  // ---- registration ----

  /** Registers a node (plexd-api.md "POST /v1/register"). The same nonce with the same request is
   *  the same registration (same node, same nsk while unused); a different request with a used
   *  nonce is nonce_collision. Throws ControlPlaneError with the token/nonce codes. */
  register(req: RegisterRequest): RegisterResponse {
    const now = this.now();
    const mode = req.mode ?? 'node';
    const fingerprint = createHash('sha256')
      .update([req.project_id, req.resource_handle, req.bootstrap_token, req.public_key, mode].join('\n'))
      .digest('hex');
    return this.tx(() => {
      // The nonce's registration and the token, in one statement (a round trip on PostgreSQL).
      const hash = tokenHash(req.bootstrap_token);
      const first = prepared(
        this.db,
        `SELECT r.fingerprint, r.node_id, r.nsk, t.project_id AS token_project, t.expires_at, t.revoked_at, t.consumed_at, t.labels
           FROM (SELECT 1 AS one) x LEFT JOIN registrations r ON r.nonce = ? LEFT JOIN tokens t ON t.hash = ?`,
      ).get(req.nonce, hash) as {
        fingerprint: string | null;
        node_id: string | null;
        nsk: Buffer | null;
        token_project: string | null;
        expires_at: number;
        revoked_at: number | null;
        consumed_at: number | null;
        labels: string | null;
      };
      const prior = first.fingerprint === null ? undefined : { fingerprint: first.fingerprint, node_id: first.node_id!, nsk: first.nsk };
      if (prior !== undefined) {
        if (prior.fingerprint !== fingerprint) throw new ControlPlaneError('nonce_collision', 'nonce already used by a different registration');
        const node = this.node(prior.node_id);
        if (node === undefined || prior.nsk === null) {
          throw new ControlPlaneError('token_consumed', 'this registration completed and its credential is in use; register again with a new token');
        }
        return this.registerResponse(node, this.#box.reveal(registrationNskPurpose(req.nonce), prior.nsk));
      }
      const tokenRow = first.token_project === null ? undefined : { project_id: first.token_project, expires_at: first.expires_at, revoked_at: first.revoked_at, consumed_at: first.consumed_at, labels: first.labels };
      const token = judgeToken(tokenRow, hash, req.project_id, now);
      if (!token.ok) throw new ControlPlaneError(token.code, tokenMessage(token.code));
      // Whether the key is in use, and the mesh allocation hint, in one statement.
      const pre = prepared(this.db, `SELECT (SELECT node_id FROM nodes WHERE public_key = ? LIMIT 1) AS holder, ${MESH_HINT_COLUMNS} FROM mesh_alloc WHERE id = 1`).get(req.public_key) as
        | (MeshHint & { holder: string | null })
        | undefined;
      if (pre === undefined) this.#assertKeyFree(req.public_key, undefined);
      else if (pre.holder !== null) throw new ControlPlaneError('public_key_in_use', PUBLIC_KEY_IN_USE);
      const ip = allocateMeshIp(this.db, this.range, mode, pre);
      if (ip === undefined) throw new ControlPlaneError('mesh_exhausted', `no free address in ${this.range.cidr}`);
      const nodeId = randomUUID();
      const nsk = randomBytes(32);
      const node = prepared(
        this.db,
        `INSERT INTO nodes (node_id, project_id, resource_handle, mode, public_key, mesh_ip, mesh_ip_num, nsk_hash,
           status, registered_at, last_heartbeat_at, labels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'online', ?, ?, ?) RETURNING *`,
      ).get(nodeId, req.project_id, req.resource_handle, mode, req.public_key, formatIpv4(ip), ip, sha256(nsk), now, now, token.labels) as NodeRow;
      this.#touchMembership(req.project_id, { row: node.row, node: { id: nodeId, ip: ip >>> 0, labels: labelsOf(node.labels) } });
      consumeToken(this.db, token.hash, nodeId, now);
      prepared(this.db, 'INSERT INTO registrations (nonce, fingerprint, node_id, nsk, created_at) VALUES (?, ?, ?, ?, ?)').run(req.nonce, fingerprint, nodeId, this.#box.seal(registrationNskPurpose(req.nonce), nsk), now);
      this.emit({ projectId: node.project_id, type: 'peer_added', payload: { peer: publicPeer(node) }, peersOf: nodeId });
      // The response inside the transaction: its model is the one just extended (no round trip).
      return this.registerResponse(node, nsk);
    });
  }

  private registerResponse(node: NodeRow, nsk: Buffer): RegisterResponse {
    return {
      node_id: node.node_id,
      mesh_ip: node.mesh_ip,
      signing_public_key: encodeBase64(this.signer.publicKey),
      signing_key_id: this.signer.keyId,
      nsk: nsk.toString('base64'),
      peer_snapshot: this.peersOf(node),
      domain_mesh_cidr: this.range.cidr,
    };
  }

  // ---- nodes ----

  /** The node with id `nodeId`, if it exists. */
  node(nodeId: string): NodeRow | undefined {
    return prepared(this.db, 'SELECT * FROM nodes WHERE node_id = ?').get(nodeId) as NodeRow | undefined;
  }

  /** Every node, oldest first. */
  listNodes(): NodeRow[] {
    return prepared(this.db, 'SELECT * FROM nodes ORDER BY row').all() as NodeRow[];
  }

  /** Ids of every node that exists (the bus closes streams of the rest). */
  nodeIds(): Set<string> {
    return new Set((prepared(this.db, 'SELECT node_id FROM nodes').pluck().all() as string[]));
  }

  /** The node a bearer credential belongs to, or undefined (unknown node or wrong nsk; the nsk
   *  hash is compared in constant time). The first use ends the registration retry window. */
  authenticate(cred: NodeCredential): NodeRow | undefined {
    const node = this.node(cred.nodeId);
    const given = sha256(cred.nsk);
    // Compare against a dummy when the node is unknown, so timing does not reveal node ids.
    const ok = timingSafeEqual(given, node?.nsk_hash ?? Buffer.alloc(32)) && node !== undefined;
    if (!ok) return undefined;
    const now = this.now();
    if (node.registered_at > now - REGISTRATION_RETRY_MS && !this.#retryClosed.has(node.node_id)) {
      prepared(this.db, 'UPDATE registrations SET nsk = NULL WHERE node_id = ? AND nsk IS NOT NULL').run(node.node_id);
      // Once is enough (nothing sets it again): every request of a new node's first 10 minutes
      // wrote this row before (bench:control-plane: a quarter of the statements while a fleet
      // registers). Not remembered inside a transaction, which may still roll back.
      if (!this.db.inTransaction) {
        if (this.#retryClosed.size >= 65_536) for (const [id, at] of this.#retryClosed) if (at <= now - REGISTRATION_RETRY_MS) this.#retryClosed.delete(id);
        if (this.#retryClosed.size < 65_536) this.#retryClosed.set(node.node_id, node.registered_at);
      }
    }
    return node;
  }

  /**
   * The peers `node` sees, with per-pair PSKs (derived; nothing is written): the nodes of its
   * project an allow rule connects it with (visibility.ts), plus `extra` (bridges relaying for
   * it), while not offline. No policy, no peer.
   */
  peersOf(node: NodeRow, extra: Iterable<string> = []): PeerInfo[] {
    // A deferred (read) transaction: the node list and the pair epochs come from one snapshot.
    // Inside one already (registration's response), no savepoint: two round trips on PostgreSQL.
    // On PostgreSQL a snapshot that takes no writer lock (postgres.ts).
    const read = (fn: () => PeerInfo[]): PeerInfo[] => (this.db.inTransaction ? fn() : this.db.transaction(fn).deferred());
    return read(() => {
      const ids = this.visibility(node.project_id).peersOf(node.node_id);
      for (const id of extra) if (id !== node.node_id) ids.add(id);
      if (ids.size === 0) return [];
      // One indexed query for the set, whatever its size.
      const rows = prepared(this.db, 'SELECT row, node_id, project_id, mode, mesh_ip, public_key, endpoint, candidates, status, key_conflict FROM nodes WHERE node_id IN (SELECT value FROM json_each(?)) ORDER BY row').all(JSON.stringify([...ids])) as NodeRow[];
      const visible = rows.filter((p) => p.project_id === node.project_id && p.key_conflict === 0 && VISIBLE_STATUSES.includes(p.status));
      const psks = psksOf(this.db, this.#pskMaster, node, visible, projectPskGeneration(this.db, node.project_id));
      // A bridge's sites, access subnets and (NAT off) the access range are routed to it.
      const routed = bridgePrefixes(this.db, visible.filter((p) => p.mode === 'bridge').map((p) => p.node_id));
      return visible.map((p) => {
        const extra = routed.get(p.node_id);
        return { ...publicPeer(p), psk: psks.get(p.node_id)!.toString('base64'), ...(extra === undefined ? {} : { allowed_ips: extra }) };
      });
    });
  }

  /** A new membership generation for `projectId` (its node set or labels changed): random, so a
   *  value from a rolled-back transaction is never mistaken for a later change's. */
  #touchMembership(projectId: string, added?: { readonly row: number; readonly node: VisNode }): void {
    // A node this process just added to a model it had current is appended to that model, not
    // re-read with every other node of the project (registration was O(project) in SQL rows and
    // JSON; bench:control-plane's profile at 10,000 agents had the re-read at ~55 % of the CPU).
    // A rollback leaves the random generation unknown to the database: the entry is rebuilt.
    // Other processes (replicas) do the same from membership_appends (#appendsSince).
    const gen = randomBytes(6).readUIntBE(0, 6);
    this.#trusted.delete(projectId);
    if (added === undefined) {
      prepared(this.db, 'UPDATE projects SET membership_gen = ? WHERE id = ?').run(gen, projectId);
      return;
    }
    // The log entry takes the generation it follows from the row itself (one round trip less).
    const prevGen = prepared(
      this.db,
      'INSERT INTO membership_appends (project_id, row, gen, prev_gen, node_id, mesh_ip_num, labels, created_at) SELECT ?, ?, ?, membership_gen, ?, ?, ?, ? FROM projects WHERE id = ? RETURNING prev_gen',
    )
      .pluck()
      .get(projectId, added.row, gen, added.node.id, added.node.ip, Object.keys(added.node.labels).length === 0 ? null : JSON.stringify(added.node.labels), this.now(), projectId) as number | undefined;
    // (The membership_appended trigger sets projects.membership_gen to `gen`.)
    const cached = this.#models.get(projectId);
    // Current when at the generation this one follows; a policy changed meanwhile (a key this
    // process has not seen) is noticed by the next read, which keeps the nodes and rebuilds.
    const current = cached !== undefined && prevGen !== undefined && cached.key.slice(0, cached.key.indexOf(':')) === String(prevGen);
    if (current) {
      const key = `${gen}${cached.key.slice(cached.key.indexOf(':'))}`;
      this.#models.set(projectId, { key, model: cached.model.extend([{ ...added.node, row: added.row }]), policy: cached.policy, rules: cached.rules, maxRow: Math.max(cached.maxRow, added.row) });
      if (this.#inTx) this.#trusted.add(projectId);
    }
  }

  /** The nodes registered since `cached` was current, when membership_appends links its
   *  generation to `gen` (registrations only, none pruned); undefined means a full re-read. */
  #appendsSince(projectId: string, cached: CachedModel, gen: number): Array<{ row: number; node: VisNode }> | undefined {
    let expected = Number(cached.key.slice(0, cached.key.indexOf(':')));
    const list = prepared(this.db, 'SELECT row, gen, prev_gen, node_id, mesh_ip_num, labels FROM membership_appends WHERE project_id = ? AND row > ? ORDER BY row').all(projectId, cached.maxRow) as Array<{
      row: number;
      gen: number;
      prev_gen: number;
      node_id: string;
      mesh_ip_num: number;
      labels: string | null;
    }>;
    const out: Array<{ row: number; node: VisNode }> = [];
    for (const e of list) {
      if (e.prev_gen !== expected) break;
      out.push({ row: e.row, node: { id: e.node_id, ip: e.mesh_ip_num >>> 0, labels: labelsOf(e.labels), row: e.row } });
      expected = e.gen;
      if (expected === gen) return out;
    }
    return undefined;
  }

  /** The visibility model of a project's nodes (key conflicts left out) under its policy; cached
   *  until its membership generation or policy revision changes (also from another process). */
  visibility(projectId: string): Visibility {
    return this.#cachedModel(projectId).model;
  }

  /** The cache key of a project's model: membership generation, policy revision and fingerprint. */
  #modelKey(projectId: string): { gen: number; key: string } {
    // One statement (on PostgreSQL every statement is a round trip; this runs on every request
    // that reads the model). A missing project has generation 0 and no policy.
    const head = prepared(this.db, 'SELECT p.membership_gen AS gen, q.revision, q.fingerprint FROM projects p LEFT JOIN policies q ON q.project_id = p.id WHERE p.id = ?').get(projectId) as
      | { gen: number; revision: number | null; fingerprint: string | null }
      | undefined;
    const gen = head?.gen ?? 0;
    return { gen, key: `${gen}:${head?.revision ?? '-'}:${head?.fingerprint ?? '-'}` };
  }

  #cachedModel(projectId: string, rulesOverride?: readonly PolicyRule[]): CachedModel {
    if (rulesOverride === undefined && this.#trusted.has(projectId)) {
      const trusted = this.#models.get(projectId);
      if (trusted !== undefined) return trusted;
    }
    const { gen, key } = this.#modelKey(projectId);
    const cached = this.#models.get(projectId);
    if (rulesOverride === undefined && cached?.key === key) {
      if (this.#inTx) this.#trusted.add(projectId);
      return cached;
    }
    const policy = cached?.key === key ? cached.policy : getPolicy(this.db, projectId);
    let nodes: VisNode[];
    let maxRow = 0;
    const appended = cached === undefined || cached.key.split(':')[0] === String(gen) ? undefined : this.#appendsSince(projectId, cached, gen);
    // Only registrations since, same policy: the cached model grows (Visibility.extend).
    if (rulesOverride === undefined && appended !== undefined && cached !== undefined && cached.key.slice(cached.key.indexOf(':')) === key.slice(key.indexOf(':'))) {
      const entry: CachedModel = {
        key,
        model: cached.model.extend(appended.map((a) => a.node)),
        policy: cached.policy,
        rules: cached.rules,
        maxRow: appended.reduce((m, a) => Math.max(m, a.row), cached.maxRow),
      };
      this.#models.set(projectId, entry);
      if (this.#inTx) this.#trusted.add(projectId);
      return entry;
    }
    if (cached !== undefined && (cached.key.split(':')[0] === String(gen) || appended !== undefined)) {
      // Same nodes (another policy), or nodes registered since: reuse the node list.
      nodes = [...cached.model.nodes];
      maxRow = cached.maxRow;
      for (const a of appended ?? []) {
        nodes.push(a.node);
        maxRow = Math.max(maxRow, a.row);
      }
    } else {
      const list = prepared(this.db, 'SELECT row, node_id, mesh_ip_num, labels FROM nodes WHERE project_id = ? AND key_conflict = 0 ORDER BY row').all(projectId) as Array<{ row: number; node_id: string; mesh_ip_num: number; labels: string | null }>;
      const owned = ownedRanges(this.db, projectId);
      nodes = list.map((n) => {
        maxRow = Math.max(maxRow, n.row);
        const mine = owned.get(n.node_id);
        return { id: n.node_id, ip: n.mesh_ip_num >>> 0, labels: labelsOf(n.labels), row: n.row, ...(mine === undefined ? {} : { owned: mergeRanges(mine) }) };
      });
    }
    // Ingress rules imply allow rules (ingress.ts): a bridge and its targets see each other.
    const rules = [...(rulesOverride ?? policy?.rules ?? []), ...ingressPolicyRules(this.db, projectId)];
    const entry: CachedModel = { key, model: new Visibility(nodes, rules), policy, rules, maxRow };
    if (rulesOverride === undefined) {
      this.#models.set(projectId, entry);
      if (this.#inTx) this.#trusted.add(projectId);
    }
    return entry;
  }

  /** True when `viewer` sees `subject` in `projectId` under the current policy (the event bus's
   *  audience test for events carrying a node's keys or addresses). */
  sees(projectId: string, viewer: string, subject: string): boolean {
    return this.visibility(projectId).canSee(viewer, subject);
  }

  /**
   * Announces a visibility change inside its transaction: every pair that lost visibility gets a
   * new PSK epoch (a re-grant uses a new key; the old one is forgotten), and each node that gained
   * or lost peers gets peer_added / peer_removed (reason "policy"), or one node_state_updated when
   * there are many. `targeted` false: the caller's project-wide event already makes every node
   * pull, so beyond MAX_TARGETED_VISIBILITY_NODES nodes no targeted events are sent.
   */
  #applyVisibilityChange(projectId: string, diff: ReadonlyMap<string, VisibilityChange>, model: Visibility, alwaysTarget: boolean): void {
    const rowOf = (id: string): number => model.node(id)?.row ?? -1;
    for (const [a, change] of diff) {
      for (const b of change.lost) {
        if (a < b) bumpPairEpoch(this.db, { row: rowOf(a), node_id: a }, { row: rowOf(b), node_id: b });
      }
    }
    if (!alwaysTarget && diff.size > MAX_TARGETED_VISIBILITY_NODES) return;
    for (const [a, change] of diff) {
      if (change.gained.length + change.lost.length > MAX_PEER_EVENTS_PER_NODE) {
        this.emit({ projectId, type: 'node_state_updated', payload: {}, targetNode: a });
        continue;
      }
      for (const b of change.gained) {
        const peer = this.node(b);
        if (peer !== undefined && VISIBLE_STATUSES.includes(peer.status)) this.emit({ projectId, type: 'peer_added', payload: { peer: publicPeer(peer) }, targetNode: a });
      }
      for (const b of change.lost) this.emit({ projectId, type: 'peer_removed', payload: { node_id: b, reason: 'policy' }, targetNode: a });
    }
  }

  /**
   * Runs `change` in the current (or a new) transaction: it edits rules that visibility takes
   * besides the policy in `projectId` (ingress rules, ingress.ts). The model is rebuilt, the
   * visibility this changed is announced as for a policy change (peer events, lost pairs get a
   * new PSK epoch), then the events `change` returns. Returns its result.
   */
  changeImpliedRules<T>(projectId: string, change: () => { events: readonly NewEvent[]; result: T }): T {
    return this.tx(() => {
      const before = this.#cachedModel(projectId);
      const { events, result } = change();
      this.#touchMembership(projectId);
      const after = this.#cachedModel(projectId);
      this.#applyVisibilityChange(projectId, diffVisibility(before.model, after.model, []), after.model, true);
      for (const e of events) this.emit(e);
      return result;
    });
  }

  /** `plaintext` sealed with the database's secrets key for `purpose` (secrets.ts). */
  sealSecret(purpose: string, plaintext: Uint8Array): Buffer {
    return this.#box.seal(purpose, plaintext);
  }

  /** The plaintext of a value sealed by sealSecret for `purpose`; throws ControlPlaneFileError
   *  when it does not open with this database's secrets key. */
  revealSecret(purpose: string, sealed: Uint8Array): Buffer {
    return this.#box.reveal(purpose, sealed, -1);
  }

  /** Tells `nodeId` its state changed (node_state_updated), e.g. its metadata (node-state.ts). */
  notifyNodeState(nodeId: string): void {
    this.tx(() => {
      const node = this.node(nodeId);
      if (node !== undefined) this.emit({ projectId: node.project_id, type: 'node_state_updated', payload: {}, targetNode: nodeId });
    });
  }

  // ---- the bridge access side (access.ts) ----

  /**
   * Runs `change` (writes to a bridge's users, sites or settings) in one transaction and announces
   * it: the bridge gets bridge_config_updated; visibility is recomputed for its pairs (the ranges
   * it stands for in policy may have changed: peer_added / peer_removed, compiled rules); with
   * `routesChange` every node that sees it afterwards gets node_state_updated (its peer entry's
   * allowed_ips changed). Throws ControlPlaneError node_not_found when the bridge is gone, or what
   * `change` throws; nothing is written then.
   */
  changeBridge<T>(bridgeId: string, routesChange: boolean, change: () => T): T {
    return this.tx(() => {
      const bridge = this.node(bridgeId);
      if (bridge === undefined) throw new ControlPlaneError('node_not_found', `no node ${bridgeId}`);
      const projectId = bridge.project_id;
      const before = this.#cachedModel(projectId);
      const out = change();
      this.#touchMembership(projectId);
      const after = this.#cachedModel(projectId);
      const diff = diffVisibility(before.model, after.model, [bridgeId]);
      this.#applyVisibilityChange(projectId, diff, after.model, true);
      this.emit({ projectId, type: 'bridge_config_updated', payload: {}, targetNode: bridgeId });
      if (routesChange) {
        for (const id of after.model.peersOf(bridgeId)) if (!diff.has(id)) this.emit({ projectId, type: 'node_state_updated', payload: {}, targetNode: id });
      }
      return out;
    });
  }

  /** The PSK of a user-access client or site tunnel: HMAC-SHA256 of the PSK master over a label
   *  and the row's random salt (so nothing secret is stored per row). */
  accessPsk(salt: Uint8Array): Buffer {
    return createHmac('sha256', this.#pskMaster).update(ACCESS_PSK_LABEL).update(salt).digest();
  }

  /** Gives the pair of nodes a new PSK (bumps the pair's epoch); both get peer_psk_assigned and
   *  pull state. Returns the new epoch, or undefined when either node is absent or they are one. */
  rotatePairPsk(nodeIdA: string, nodeIdB: string): number | undefined {
    return this.tx(() => {
      const a = this.node(nodeIdA);
      const b = this.node(nodeIdB);
      if (a === undefined || b === undefined || a.node_id === b.node_id) return undefined;
      const epoch = bumpPairEpoch(this.db, a, b);
      this.emit({ projectId: a.project_id, type: 'peer_psk_assigned', payload: { node_id: b.node_id }, targetNode: a.node_id });
      this.emit({ projectId: b.project_id, type: 'peer_psk_assigned', payload: { node_id: a.node_id }, targetNode: b.node_id });
      return epoch;
    });
  }

  /** The authoritative state of `node` (GET /v1/nodes/{id}/state); remembers how far the node is
   *  reconciled. `extra`: node ids it sees besides the policy's (bridges relaying for it). */
  stateOf(node: NodeRow, extra: Iterable<string> = []): StateResponse {
    return this.tx(() => {
      prepared(this.db, 'UPDATE nodes SET last_state_seq = ? WHERE node_id = ?').run(lastSeq(this.db), node.node_id);
      const executions = executionsFor(this.db, node.node_id, this.now());
      return {
        node_id: node.node_id,
        mesh_ip: node.mesh_ip,
        peers: this.peersOf(node, extra),
        policy: this.policyFor(node),
        bridge: node.mode === 'bridge' ? { ...bridgeAccessBlock(this.db, this.node(node.node_id) ?? node, this.range, (salt) => this.accessPsk(salt)), ingress: ingressBlockFor(this.db, this.#box, node) } : null,
        executions,
      };
    });
  }

  /** Records a heartbeat. Throws clock_skew when client_now is more than 60 s off. `streaming`:
   *  whether the node holds an event stream (if not, pending events ask it to reconcile). */
  heartbeat(node: NodeRow, req: HeartbeatRequest, streaming: boolean): HeartbeatResponse {
    const now = this.now();
    const client = parseRfc3339(req.client_now)!;
    if (Math.abs(client - now) > MAX_CLOCK_SKEW_MS) {
      throw new ControlPlaneError('clock_skew', `client_now is ${Math.round((client - now) / 1000)} s off the control plane clock (limit ${MAX_CLOCK_SKEW_MS / 1000} s)`);
    }
    // The common heartbeat (an online node, not a bridge, same endpoint) changes no state anyone
    // is told of: one conditional UPDATE, outside the writer lock (on PostgreSQL the cluster's
    // writers queue on it; bench:control-plane had heartbeats waiting behind registrations). When
    // the row no longer matches (status, endpoint or mode changed meanwhile), the locked path.
    const fast = this.#quietHeartbeat(node, req, now);
    if (fast !== undefined) {
      const behind = !streaming && this.#hasEventsFor(node);
      return { accepted_at: formatRfc3339(now), reconcile: behind, rotate_keys: fast.rotate_requested !== 0 };
    }
    const { current, wasOffline } = this.tx(() => {
      const current = this.node(node.node_id);
      if (current === undefined) throw new ControlPlaneError('unauthorized', 'node was removed');
      const wasOffline = current.status === 'offline';
      prepared(
        this.db,
        `UPDATE nodes SET last_heartbeat_at = ?, status = 'online', binary_version = ?, binary_checksum = ? WHERE node_id = ?`,
      ).run(now, req.binary_version, req.binary_checksum, node.node_id);
      recordBridgeKeys(this.db, current, req);
      const nat = req.nat_summary;
      if (nat.endpoint !== undefined) this.#setEndpoint(current, nat.endpoint, current.candidates, nat.nat_type ?? current.nat_type, now);
      else if (nat.nat_type !== undefined) prepared(this.db, 'UPDATE nodes SET nat_type = ? WHERE node_id = ?').run(nat.nat_type, node.node_id);
      if (wasOffline) {
        this.emit({ projectId: current.project_id, type: 'peer_added', payload: { peer: publicPeer(this.node(node.node_id)!) }, peersOf: node.node_id });
      }
      return { current, wasOffline };
    });
    // The "reconcile?" scan reads the event log after the commit: outside the write transaction
    // (on PostgreSQL, outside the cluster's writer lock; bench:control-plane had heartbeats of
    // stream-less nodes holding it through this scan). A scan racing a new event answers as the
    // next heartbeat would.
    const behind = !wasOffline && !streaming && this.#hasEventsFor(current);
    return { accepted_at: formatRfc3339(now), reconcile: wasOffline || behind, rotate_keys: current.rotate_requested !== 0 };
  }

  /** The heartbeat of {@link heartbeat}'s fast path: undefined when it does not apply. */
  #quietHeartbeat(node: NodeRow, req: HeartbeatRequest, now: number): { rotate_requested: number } | undefined {
    if (node.mode === 'bridge' || node.status !== 'online') return undefined;
    const nat = req.nat_summary;
    if (nat.endpoint !== undefined && nat.endpoint !== node.endpoint) return undefined;
    const set = 'last_heartbeat_at = ?, binary_version = ?, binary_checksum = ?, nat_type = COALESCE(?, nat_type)';
    const where = "node_id = ? AND status = 'online' AND mode <> 'bridge'";
    const row =
      nat.endpoint === undefined
        ? prepared(this.db, `UPDATE nodes SET ${set} WHERE ${where} RETURNING rotate_requested`).get(now, req.binary_version, req.binary_checksum, nat.nat_type ?? null, node.node_id)
        : prepared(this.db, `UPDATE nodes SET ${set}, endpoint_reported_at = ? WHERE ${where} AND endpoint = ? RETURNING rotate_requested`).get(now, req.binary_version, req.binary_checksum, nat.nat_type ?? null, now, node.node_id, nat.endpoint);
    return row as { rotate_requested: number } | undefined;
  }

  /**
   * True when an event `node` should get was logged after its last state pull. Events about no
   * peer (project-wide or for this node) are one indexed probe. Events about a peer (`peers_of`)
   * reach the nodes that see it: none when this node sees nobody, one probe over the peers it
   * sees when they are few, else a page-by-page check (ids only) of up to BEHIND_SCAN_PAGES pages;
   * beyond that it answers true, as a needless reconcile costs one pull and a missed one is lost.
   * (bench:control-plane: stream-less heartbeats paging through every peer_added of a growing
   * fleet, envelopes included, were half of a replica's time at 4,000 agents.)
   */
  #hasEventsFor(node: NodeRow): boolean {
    const after = node.last_state_seq;
    const mine = 'project_id = ? AND seq > ? AND (target_node IS NULL OR target_node = ?) AND (exclude_node IS NULL OR exclude_node <> ?)';
    const args = [node.project_id, after, node.node_id, node.node_id] as const;
    if (prepared(this.db, `SELECT 1 FROM events WHERE peers_of IS NULL AND ${mine} LIMIT 1`).get(...args) !== undefined) return true;
    const model = this.visibility(node.project_id);
    const seen = model.peersUpTo(node.node_id, BEHIND_PEER_LIST);
    if (seen !== undefined) {
      if (seen.size === 0) return false;
      return prepared(this.db, `SELECT 1 FROM events WHERE peers_of IN (SELECT value FROM json_each(?)) AND ${mine} LIMIT 1`).get(JSON.stringify([...seen]), ...args) !== undefined;
    }
    let cursor = after;
    for (let page = 0; page < BEHIND_SCAN_PAGES; page++) {
      const events = prepared(this.db, `SELECT seq, peers_of FROM events WHERE peers_of IS NOT NULL AND ${mine} ORDER BY seq LIMIT ?`).all(node.project_id, cursor, node.node_id, node.node_id, BEHIND_SCAN_PAGE) as Array<{ seq: number; peers_of: string }>;
      if (events.some((e) => model.canSee(node.node_id, e.peers_of))) return true;
      if (events.length < BEHIND_SCAN_PAGE) return false;
      cursor = events[events.length - 1]!.seq;
    }
    return true;
  }

  /** Records an endpoint report (and its candidates, when it carries any: a report without the
   *  field, as upstream's, leaves the stored ones); peers hear of a change through
   *  peer_endpoint_changed. */
  reportEndpoint(node: NodeRow, req: EndpointRequest): EndpointResponse {
    const now = this.now();
    this.tx(() => {
      const current = this.node(node.node_id);
      if (current === undefined) throw new ControlPlaneError('unauthorized', 'node was removed');
      const candidates = req.candidates === undefined ? current.candidates : req.candidates.length === 0 ? null : JSON.stringify(req.candidates);
      this.#setEndpoint(current, req.endpoint, candidates, req.nat_type, now);
    });
    return { accepted_at: formatRfc3339(now), stale_after: ENDPOINT_STALE_AFTER_S };
  }

  /** The one place a node's endpoint changes (PUT endpoint and a heartbeat's nat_summary): stores
   *  it and, when it differs from the stored one, tells the node's peers. Inside a transaction. */
  #setEndpoint(current: NodeRow, endpoint: string, candidates: string | null, natType: string | null, now: number): void {
    prepared(this.db, 'UPDATE nodes SET endpoint = ?, candidates = ?, nat_type = ?, endpoint_reported_at = ? WHERE node_id = ?').run(endpoint, candidates, natType, now, current.node_id);
    if (current.endpoint !== endpoint || current.candidates !== candidates) {
      const list = candidatesOf(candidates);
      this.emit({ projectId: current.project_id, type: 'peer_endpoint_changed', payload: { node_id: current.node_id, endpoint, ...(list === undefined ? {} : { candidates: list }) }, peersOf: current.node_id });
    }
  }

  /** Installs a node's new WireGuard public key (POST /v1/keys/rotate); repeating the same key
   *  returns the same rotation. Peers hear of it through peer_key_rotated. */
  rotateKey(node: NodeRow, newPublicKey: string): KeyRotateResponse {
    return this.tx(() => {
      const current = this.node(node.node_id);
      if (current === undefined) throw new ControlPlaneError('unauthorized', 'node was removed');
      if (current.public_key === newPublicKey && current.rotation_id !== null && current.key_conflict === 0) {
        return { rotation_id: current.rotation_id, kid: keyKid(newPublicKey), wrap_key_version: current.key_version };
      }
      this.#assertKeyFree(newPublicKey, current.node_id);
      const rotationId = randomUUID();
      prepared(
        this.db,
        'UPDATE nodes SET public_key = ?, key_version = key_version + 1, key_rotated_at = ?, rotation_id = ?, rotate_requested = 0, key_conflict = 0 WHERE node_id = ?',
      ).run(newPublicKey, this.now(), rotationId, node.node_id);
      if (current.key_conflict !== 0) this.#touchMembership(current.project_id);
      const updated = this.node(node.node_id)!;
      this.emit({ projectId: updated.project_id, type: 'peer_key_rotated', payload: { peer: publicPeer(updated) }, peersOf: node.node_id });
      return { rotation_id: rotationId, kid: keyKid(newPublicKey), wrap_key_version: updated.key_version };
    });
  }

  /** Throws public_key_in_use when a node other than `self` holds `publicKey` (the UNIQUE index
   *  nodes_public_key is the backstop; this gives the API its 409). Inside a transaction. */
  #assertKeyFree(publicKey: string, self: string | undefined): void {
    const holder = prepared(this.db, 'SELECT node_id FROM nodes WHERE public_key = ? AND node_id IS DISTINCT FROM ? LIMIT 1').pluck().get(publicKey, self ?? null) as string | undefined;
    if (holder !== undefined) throw new ControlPlaneError('public_key_in_use', PUBLIC_KEY_IN_USE);
  }

  /** Nodes that schema 4 found sharing a key with an older holder (left out of peer lists until
   *  they rotate or are removed; the server logs them at start). */
  keyConflicts(): NodeRow[] {
    return prepared(this.db, 'SELECT * FROM nodes WHERE key_conflict <> 0 ORDER BY row').all() as NodeRow[];
  }

  /** Asks a node to rotate its key: the next heartbeat says rotate_keys, and a rotate_keys event is
   *  sent. Returns false when the node does not exist. */
  requestKeyRotation(nodeId: string): boolean {
    return this.tx(() => {
      const node = this.node(nodeId);
      if (node === undefined) return false;
      prepared(this.db, 'UPDATE nodes SET rotate_requested = 1 WHERE node_id = ?').run(nodeId);
      this.emit({ projectId: node.project_id, type: 'rotate_keys', payload: {}, targetNode: nodeId });
      return true;
    });
  }

  /** Stores what a node says it can do. */
  setCapabilities(node: NodeRow, req: CapabilitiesRequest): void {
    prepared(this.db, 'UPDATE nodes SET capabilities = ? WHERE node_id = ?').run(JSON.stringify(req), node.node_id);
  }

  /** Removes a node and everything of it; its peers get peer_removed. Returns false when absent. */
  removeNode(nodeId: string, reason: string): boolean {
    return this.tx(() => {
      const node = this.node(nodeId);
      if (node === undefined) return false;
      for (const e of ingressRemovalEvents(this.db, nodeId)) this.emit(e);
      prepared(this.db, 'DELETE FROM nodes WHERE node_id = ?').run(nodeId);
      this.#touchMembership(node.project_id);
      dropPsks(this.db, node);
      prepared(this.db, 'DELETE FROM registrations WHERE node_id = ?').run(nodeId);
      prepared(this.db, 'DELETE FROM executions WHERE node_id = ?').run(nodeId);
      dropBridgeRows(this.db, nodeId);
      this.emit({ projectId: node.project_id, type: 'peer_removed', payload: { node_id: nodeId, reason }, excludeNode: nodeId });
      return true;
    });
  }

  /** Marks nodes unreachable after 90 s and offline after 300 s without a heartbeat; offline nodes
   *  leave their peers' lists (peer_removed). Returns how many nodes changed status. */
  sweepLiveness(): number {
    const now = this.now();
    return this.tx(() => {
      const unreachable = prepared(this.db, "UPDATE nodes SET status = 'unreachable' WHERE status = 'online' AND last_heartbeat_at < ?").run(now - UNREACHABLE_AFTER_MS).changes;
      const going = prepared(this.db, "SELECT * FROM nodes WHERE status <> 'offline' AND last_heartbeat_at < ?").all(now - OFFLINE_AFTER_MS) as NodeRow[];
      for (const node of going) {
        // Conditional: a heartbeat taking the fast path (outside the writer lock) may have landed
        // since the read; on PostgreSQL the row is re-checked after that commit.
        if (prepared(this.db, "UPDATE nodes SET status = 'offline' WHERE node_id = ? AND last_heartbeat_at < ?").run(node.node_id, now - OFFLINE_AFTER_MS).changes === 0) continue;
        this.emit({ projectId: node.project_id, type: 'peer_removed', payload: { node_id: node.node_id, reason: 'offline' }, peersOf: node.node_id });
      }
      return unreachable + going.length;
    });
  }

  /** Prunes the event log and expired retry credentials. */
  prune(): void {
    const now = this.now();
    this.tx(() => {
      pruneEvents(this.db, now);
      prepared(this.db, 'DELETE FROM membership_appends WHERE created_at < ?').run(now - MEMBERSHIP_APPENDS_KEEP_MS);
      prepared(this.db, 'UPDATE registrations SET nsk = NULL WHERE nsk IS NOT NULL AND created_at < ?').run(now - REGISTRATION_RETRY_MS);
    });
  }

  // ---- event-signing keys ----

  /**
   * Rotates the event-signing key: a new Ed25519 key becomes active, and every project gets
   * `signing_key_rotated {key_id, public_key, previous_key_id, transition_expires}` signed by the
   * OLD key, which agents keep accepting until transition_expires. Throws RangeError on a
   * transition that is not positive.
   */
  rotateSigningKey(transitionMs = SIGNING_KEY_TRANSITION_MS): { keyId: string; previousKeyId: string; transitionExpires: string } {
    if (!(transitionMs > 0)) throw new RangeError(`expected a positive transition in ms, got ${transitionMs}`);
    return this.tx(() => {
      const old = this.signer;
      const k = generateSigningKey();
      const keyId = signingKeyId(k.publicKey);
      const now = this.now();
      const expires = formatRfc3339(now + transitionMs);
      prepared(this.db, 'INSERT INTO signing_keys (key_id, secret_key, public_key, created_at, active) VALUES (?, ?, ?, ?, 0)').run(keyId, this.#box.seal(signingKeyPurpose(keyId), k.secretKey), Buffer.from(k.publicKey), now);
      // Announced while the old key is still the active one: emit signs with it.
      const payload = { key_id: keyId, public_key: encodeBase64(k.publicKey), previous_key_id: old.keyId, transition_expires: expires };
      for (const projectId of prepared(this.db, 'SELECT id FROM projects ORDER BY id').pluck().all() as string[]) {
        this.emit({ projectId, type: 'signing_key_rotated', payload });
      }
      prepared(this.db, 'UPDATE signing_keys SET active = 0, replaced_by = ?, transition_expires = ? WHERE key_id = ?').run(keyId, now + transitionMs, old.keyId);
      prepared(this.db, 'UPDATE signing_keys SET active = 1 WHERE key_id = ?').run(keyId);
      this.#signerChecked = false;
      return { keyId, previousKeyId: old.keyId, transitionExpires: expires };
    });
  }

  /** Retired keys still in their transition, oldest first, each with the key that replaced it:
   *  what a stream re-announces on connect (a logged announcement goes stale after 5 minutes). */
  signingKeysInTransition(): Array<{ signer: Signer; successorId: string; successorPublicKey: Uint8Array; transitionExpires: number }> {
    const rows = prepared(
      this.db,
      `SELECT o.key_id, o.secret_key, o.transition_expires, n.key_id AS next_id, n.public_key AS next_pub FROM signing_keys o
       JOIN signing_keys n ON n.key_id = o.replaced_by WHERE o.transition_expires > ? ORDER BY o.created_at`,
    ).all(this.now()) as Array<{ key_id: string; secret_key: Buffer; transition_expires: number; next_id: string; next_pub: Buffer }>;
    return rows.map((r) => ({ signer: toSigner(r, this.#box), successorId: r.next_id, successorPublicKey: new Uint8Array(r.next_pub), transitionExpires: r.transition_expires }));
  }

  // ---- policy ----

  /** A project's policy, null when never set. */
  policy(projectId: string): Policy | null {
    return getPolicy(this.db, projectId);
  }

  /**
   * Sets a project's firewall rules (groups allowed, visibility.ts). When they changed, the nodes
   * whose compiled rules or peers change get policy_updated (#policyAudience; all nodes when that
   * cannot be told cheaply), and visibility is recomputed from the rules that changed:
   * nodes gaining or losing peers are told, lost pairs get a new PSK epoch. Throws
   * ControlPlaneError project_not_found, or validation_failed (a malformed selector, an unknown
   * group, a rule letting a node see only itself) and then changes nothing. Returns warnings
   * (groups matching no node yet).
   */
  setPolicy(projectId: string, rules: readonly PolicyRule[]): { policy: Policy; changed: boolean; warnings: string[] } {
    return this.tx(() => {
      if (prepared(this.db, 'SELECT 1 FROM projects WHERE id = ?').get(projectId) === undefined) {
        throw new ControlPlaneError('project_not_found', `project ${JSON.stringify(projectId)} does not exist`);
      }
      const before = this.#cachedModel(projectId);
      let after: CachedModel;
      try {
        after = this.#cachedModel(projectId, rules);
      } catch (err) {
        if (err instanceof RangeError) throw new ControlPlaneError('validation_failed', err.message);
        throw err;
      }
      const check = checkPolicy(rules, after.model, this.#labelKeys(projectId));
      if (check.errors.length > 0) throw new ControlPlaneError('validation_failed', check.errors.join('; '));
      const out = putPolicy(this.db, projectId, rules, this.now());
      if (out.changed) {
        // The model just built is the new revision's: cache it, or the next read builds it again.
        // (A rolled-back transaction leaves a key that never matches again.)
        this.#models.set(projectId, { ...after, key: this.#modelKey(projectId).key, policy: out.policy });
        this.#trusted.delete(projectId);
        const diff = diffVisibility(before.model, after.model, [], MAX_DIFF_PAIRS);
        const payload = { revision_id: out.policy.revision_id, fingerprint: out.policy.fingerprint };
        const audience = diff === undefined ? undefined : this.#policyAudience(projectId, before, after, rules, diff);
        if (audience === undefined) this.emit({ projectId, type: 'policy_updated', payload });
        else for (const id of audience) this.emit({ projectId, type: 'policy_updated', payload, targetNode: id });
        if (diff !== undefined) this.#applyVisibilityChange(projectId, diff, after.model, false);
        else if ([...before.model.ruleKeys].some((k) => !after.model.ruleKeys.has(k))) {
          // Too wide to diff pair by pair (policy_updated makes every node pull anyway), and pairs
          // may have been cut off: every pair of the project gets a new PSK at once.
          bumpProjectPskGeneration(this.db, projectId);
        }
      }
      return { ...out, warnings: check.warnings };
    });
  }

  /**
   * The nodes a policy revision must reach: those whose compiled rules (policyFor) or visible
   * peers (`diff`) change, or undefined for every node of the project. A node's compiled rules
   * are the group-free rules plus the group rules it is an end of, in order, with group members
   * expanded (the same before and after: setPolicy changes no membership). So when the rules
   * that differ between the two lists (as multisets) all name a group, and the rules common to
   * both keep their order, a node that is an end of none of the differing rules compiles to the
   * same list and gets nothing. Beyond MAX_TARGETED_VISIBILITY_NODES candidates, everyone.
   */
  #policyAudience(projectId: string, before: CachedModel, after: CachedModel, now: readonly PolicyRule[], diff: ReadonlyMap<string, VisibilityChange>): Set<string> | undefined {
    if (before.policy === null) return undefined; // no policy -> rules: a change for every node
    const was = before.policy.rules as readonly PolicyRule[];
    const count = new Map<string, number>();
    for (const r of was) count.set(ruleKey(r), (count.get(ruleKey(r)) ?? 0) + 1);
    for (const r of now) count.set(ruleKey(r), (count.get(ruleKey(r)) ?? 0) - 1);
    const differs = (r: PolicyRule): boolean => count.get(ruleKey(r)) !== 0;
    const changed = [...was.filter(differs), ...now.filter(differs)];
    if (changed.some((r) => r.source_group === undefined && r.destination_group === undefined)) return undefined;
    const keep = (list: readonly PolicyRule[]): string[] => list.filter((r) => !differs(r)).map(ruleKey);
    if (keep(was).join('\n') !== keep(now).join('\n')) return undefined;
    const candidates = new Set<string>(diff.keys());
    for (const r of changed) {
      for (const side of [sideOf(r, 'source'), sideOf(r, 'destination')]) for (const id of after.model.membersOf(side)) candidates.add(id);
      if (candidates.size > MAX_TARGETED_VISIBILITY_NODES) return undefined;
    }
    // Nodes left out of the model (key conflicts) compile from a stand-in: always told.
    const outside = prepared(this.db, 'SELECT node_id FROM nodes WHERE project_id = ? AND key_conflict != 0').pluck().all(projectId) as string[];
    const audience = new Set<string>([...diff.keys(), ...outside]);
    for (const id of candidates) {
      if (audience.has(id)) continue;
      const self = after.model.node(id)!;
      if (rulesFingerprint(compileRulesFor(before.model, self, was)) !== rulesFingerprint(compileRulesFor(after.model, self, now))) audience.add(id);
    }
    return audience.size > MAX_TARGETED_VISIBILITY_NODES ? undefined : audience;
  }

  /** Label keys any node of the project or any unused, unexpired token for it carries (a group
   *  naming another key is unknown). */
  #labelKeys(projectId: string): Set<string> {
    const keys = new Set<string>();
    for (const n of this.visibility(projectId).nodes) for (const k of Object.keys(n.labels)) keys.add(k);
    const tokens = prepared(this.db, 'SELECT labels FROM tokens WHERE project_id = ? AND labels IS NOT NULL AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > ?').pluck().all(projectId, this.now()) as string[];
    for (const t of tokens) for (const k of Object.keys(labelsOf(t))) keys.add(k);
    return keys;
  }

  /**
   * The policy block `node` gets: the project's rules with groups compiled to member addresses
   * for this node (upstream's rule shape; the fingerprint is then that of the compiled rules, so
   * a membership change reaches the agent as a new fingerprint). Null when no policy is set. The
   * bridge and the target of ingress rules get their implied allow rules first (ingress.ts).
   */
  policyFor(node: NodeRow): Policy | null {
    return withIngressRules(this.db, node, this.#compiledPolicyFor(node));
  }

  /** policyFor without the rules of ingress rules. */
  #compiledPolicyFor(node: NodeRow): Policy | null {
    const { policy, model } = this.#cachedModel(node.project_id);
    if (policy === null) return null;
    const rules = policy.rules as readonly PolicyRule[];
    if (!rules.some((r) => r.source_group !== undefined || r.destination_group !== undefined)) return policy;
    const self = model.node(node.node_id) ?? { id: node.node_id, ip: ipv4Number(node.mesh_ip), labels: labelsOf(node.labels) };
    const compiled = compileRulesFor(model, self, rules);
    return { revision_id: policy.revision_id, fingerprint: rulesFingerprint(compiled), rules: compiled };
  }

  /**
   * Sets and removes labels of a node (`control-plane nodes label`): `set` adds or replaces,
   * `remove` drops keys. Visibility is recomputed for this node's pairs only; nodes gaining or
   * losing it are told, and it and every node that saw it before or after get node_state_updated
   * (their compiled group rules may name it). Returns the new labels, or undefined when the node
   * does not exist. Throws RangeError on malformed labels (nothing changes).
   */
  labelNode(nodeId: string, set: Readonly<Record<string, string>>, remove: readonly string[] = []): Record<string, string> | undefined {
    return this.tx(() => {
      const node = this.node(nodeId);
      if (node === undefined) return undefined;
      const labels = { ...labelsOf(node.labels), ...set };
      for (const k of remove) delete labels[k];
      const checked = parseLabels(Object.entries(labels).map(([k, v]) => `${k}=${v}`));
      const before = this.#cachedModel(node.project_id);
      prepared(this.db, 'UPDATE nodes SET labels = ? WHERE node_id = ?').run(Object.keys(checked).length === 0 ? null : JSON.stringify(checked), nodeId);
      this.#touchMembership(node.project_id);
      const after = this.#cachedModel(node.project_id);
      const diff = diffVisibility(before.model, after.model, [nodeId]);
      this.#applyVisibilityChange(node.project_id, diff, after.model, true);
      const refresh = new Set([nodeId, ...before.model.peersOf(nodeId), ...after.model.peersOf(nodeId)]);
      for (const id of refresh) if (!diff.has(id)) this.emit({ projectId: node.project_id, type: 'node_state_updated', payload: {}, targetNode: id });
      return checked;
    });
  }

  // ---- executions (the rest is actions.ts) ----

  /** Tells `node` (action_request, opaque: it only triggers a pull) that its executions block
   *  changed. Inside the transaction of the change. */
  announceExecution(node: NodeRow, executionId: string): void {
    this.emit({ projectId: node.project_id, type: 'action_request', payload: { execution_id: executionId }, targetNode: node.node_id });
  }
}

/** A signing_keys row's id and its secret key as stored (sealed, or plaintext from older builds). */
interface StoredSigningKey {
  readonly key_id: string;
  readonly secret_key: Buffer;
}

/** Additional data of a sealed signing key: the row it belongs to. */
function signingKeyPurpose(keyId: string): string {
  return `plexd-cp signing_keys ${keyId}`;
}

function activeKey(db: Db): StoredSigningKey | undefined {
  return prepared(db, 'SELECT key_id, secret_key FROM signing_keys WHERE active = 1').get() as StoredSigningKey | undefined;
}

function toSigner(key: StoredSigningKey, box: SecretBox): Signer {
  const secretKey = new Uint8Array(box.reveal(signingKeyPurpose(key.key_id), key.secret_key));
  return { keyId: key.key_id, secretKey, publicKey: signingPublicKey(secretKey) };
}

/** The stored candidates column as a list; undefined for NULL (or, defensively, anything that
 *  is not a non-empty JSON array of strings). */
function candidatesOf(column: string | null): string[] | undefined {
  if (column === null) return undefined;
  let list: unknown;
  try {
    list = JSON.parse(column);
  } catch {
    return undefined;
  }
  return Array.isArray(list) && list.length > 0 && list.every((c) => typeof c === 'string') ? (list as string[]) : undefined;
}

/** What every peer may know about a node (no PSK: that differs per pair). `endpoint` is the
 *  reported one, else the first candidate (docs/nat.md "Endpoint candidates"). */
function publicPeer(n: NodeRow): PeerInfo {
  const candidates = candidatesOf(n.candidates);
  const endpoint = n.endpoint ?? candidates?.[0];
  return {
    node_id: n.node_id,
    mesh_ip: n.mesh_ip,
    public_key: n.public_key,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(candidates === undefined ? {} : { candidates }),
  };
}

function tokenMessage(code: 'token_invalid' | 'token_revoked' | 'token_consumed' | 'token_expired'): string {
  switch (code) {
    case 'token_invalid':
      return 'bootstrap token unknown for this project';
    case 'token_revoked':
      return 'bootstrap token was revoked';
    case 'token_consumed':
      return 'bootstrap token was already used';
    case 'token_expired':
      return 'bootstrap token expired';
  }
}

/** The sealing purpose of a registration's retry copy of its nsk (bound to the nonce, its row). */
function registrationNskPurpose(nonce: string): string {
  return `registration nsk ${nonce}`;
}
