// Public ingress rules (issue 16, docs/control-plane.md "Ingress"): a bridge node publishes a
// service of a mesh node under a hostname (TLS SNI) on a public TCP port. The control plane checks
// and stores the rules (schema 9), hands each bridge its own in the state's `bridge.ingress` block
// (terminate rules with their certificate and key; nobody else sees them) and makes the bridge and
// the target node peers that may open TCP to the target port: a rule is an operator statement,
// like a relay session, so it implies an allow rule between the two (ingressPolicyRules).

import { createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import type { FirewallRule, IngressConfig, IngressMode, IngressRule, Policy } from '../api/index.js';
import { INGRESS_MODES } from '../api/index.js';
import type { Db } from './database.js';
import { ControlPlaneError } from './errors.js';
import type { NewEvent } from './event-log.js';
import { formatIpv4 } from './mesh-ip.js';
import { rulesFingerprint } from './policy.js';
import { prepared } from './prepared.js';
import type { SecretBox } from './secrets.js';
import type { ControlPlaneStore, NodeRow } from './store.js';
import { ipv4Number, type PolicyRule } from './visibility.js';

/** Most ingress rules one bridge serves (upstream's bridge.max_ingress_rules). */
export const MAX_INGRESS_RULES = 20;
/** Default public port of a rule. */
export const DEFAULT_INGRESS_PORT = 443;
/** Port the bridge keeps for ACME HTTP-01 and the HTTP-to-HTTPS redirect: no TLS rule may take it. */
export const ACME_HTTP_PORT = 80;
/** Largest certificate chain or private key PEM accepted (the wire parser's limit). */
export const MAX_PEM_BYTES = 64 * 1024;
/** Longest hostname (RFC 1123 2.1, as a DNS name without the trailing dot). */
export const MAX_HOSTNAME_LENGTH = 253;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The hostname `text` in canonical form (lowercase), or RangeError saying what is wrong: at most
 * 253 characters, at least two dot-separated labels of 1..63 letters, digits and inner hyphens
 * (RFC 1123 2.1; IDNs in their xn-- form), no trailing dot, not an IPv4 address (last label not
 * numeric), no wildcard (SNI routing matches names exactly, and ACME HTTP-01 cannot issue one).
 */
export function checkHostname(text: string): string {
  if (text.length === 0 || text.length > MAX_HOSTNAME_LENGTH) {
    throw new RangeError(`hostname: expected 1..${MAX_HOSTNAME_LENGTH} characters, got ${text.length}`);
  }
  const name = text.toLowerCase();
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
  if (name.startsWith('*')) throw new RangeError(`hostname: wildcards are not supported (one rule per name), got ${shown}`);
  const labels = name.split('.');
  if (labels.length < 2) throw new RangeError(`hostname: expected a fully qualified name such as app.example.com, got ${shown}`);
  for (const l of labels) {
    if (!LABEL.test(l)) {
      throw new RangeError(`hostname: expected labels of 1..63 letters, digits and inner hyphens separated by single dots (IDNs as xn--), got ${shown}`);
    }
  }
  if (/^[0-9]+$/.test(labels.at(-1)!)) throw new RangeError(`hostname: expected a name, not an address, got ${shown}`);
  return name;
}

/** `MESH_IP:PORT` as its address number and port. Throws RangeError. */
export function parseTarget(text: string): { ip: number; port: number; addr: string } {
  const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(text);
  const port = m === null ? 0 : Number(m[2]);
  let ip: number | undefined;
  try {
    ip = m === null ? undefined : ipv4Number(m[1]!);
  } catch {
    ip = undefined;
  }
  if (ip === undefined || port < 1 || port > 65535) {
    throw new RangeError(`--target: expected MESH_IP:PORT such as 10.100.0.2:8080, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { ip, port, addr: `${formatIpv4(ip)}:${port}` };
}

/** What a terminate rule's certificate says, once checked. */
export interface CheckedCertificate {
  /** notAfter, ms since the epoch. */
  readonly notAfter: number;
  readonly subject: string;
  readonly warnings: readonly string[];
}

/**
 * Checks a terminate rule's PEM certificate chain and private key for `hostname`: both parse
 * (node:crypto; the key unencrypted), the key is the first certificate's, and that certificate
 * covers `hostname` (its SANs, wildcards included, X509Certificate.checkHost). Refused otherwise
 * (RangeError), since clients could never verify it. An expired or not yet valid certificate is a
 * warning: the operator may be replacing it. Each PEM at most MAX_PEM_BYTES.
 */
export function checkCertificate(certPem: string, keyPem: string, hostname: string, now: number): CheckedCertificate {
  for (const [what, pem] of [['--cert', certPem], ['--key', keyPem]] as const) {
    if (Buffer.byteLength(pem) > MAX_PEM_BYTES) throw new RangeError(`${what}: expected at most ${MAX_PEM_BYTES} bytes of PEM, got ${Buffer.byteLength(pem)}`);
  }
  let cert: X509Certificate;
  try {
    if (!certPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no BEGIN CERTIFICATE block');
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new RangeError(`--cert: not a PEM certificate (${oneLine(err)})`, { cause: err });
  }
  let key: KeyObject;
  try {
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) throw new Error('no BEGIN PRIVATE KEY block');
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch (err) {
    throw new RangeError(`--key: not an unencrypted PEM private key (${oneLine(err)})`, { cause: err });
  }
  if (!cert.checkPrivateKey(key)) throw new RangeError('--key: does not match the certificate (the first certificate of --cert must be the server certificate)');
  if (cert.checkHost(hostname, { subject: 'never' }) === undefined) {
    throw new RangeError(`--cert: does not cover ${hostname} (subject alternative names: ${cert.subjectAltName ?? 'none'})`);
  }
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  const warnings: string[] = [];
  if (notAfter <= now) warnings.push(`the certificate for ${hostname} expired ${cert.validTo}`);
  else if (notBefore > now) warnings.push(`the certificate for ${hostname} is not valid before ${cert.validFrom}`);
  return { notAfter, subject: cert.subject, warnings };
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 200);
}

/** What `ingress add` asks for. */
export interface IngressRuleInput {
  readonly hostname: string;
  /** Node id of the bridge (mode "bridge"). */
  readonly bridgeId: string;
  /** "MESH_IP:PORT" of a node of the bridge's project. */
  readonly target: string;
  readonly mode: IngressMode;
  /** Default 443. */
  readonly listenPort?: number;
  /** Terminate only: PEM certificate chain and private key. */
  readonly certPem?: string;
  readonly keyPem?: string;
}

/** A stored rule as `ingress list` shows it (never the private key). */
export interface IngressRuleView {
  readonly rule_id: string;
  readonly project_id: string;
  readonly hostname: string;
  readonly bridge_id: string;
  readonly listen_port: number;
  readonly target_addr: string;
  readonly target_node: string;
  readonly mode: IngressMode;
  /** Terminate rules: the certificate's notAfter (RFC 3339); null otherwise. */
  readonly cert_expires: string | null;
  readonly created_at: string;
}

interface IngressRow {
  readonly rule_id: string;
  readonly project_id: string;
  readonly bridge_id: string;
  readonly target_node: string;
  readonly hostname: string;
  readonly listen_port: number;
  readonly target_addr: string;
  readonly mode: IngressMode;
  readonly cert_pem: string | null;
  readonly key_pem: Buffer | null;
  readonly created_at: number;
}

/** The sealing purpose of a rule's private key: bound to its row. */
function keyPurpose(ruleId: string): string {
  return `plexd-cp ingress_rules ${ruleId} key_pem`;
}

function refuse(message: string): never {
  throw new ControlPlaneError('validation_failed', message);
}

function view(r: IngressRow): IngressRuleView {
  let expires: string | null = null;
  if (r.cert_pem !== null) {
    try {
      expires = new Date(Date.parse(new X509Certificate(r.cert_pem).validTo)).toISOString();
    } catch {
      expires = null; // checked when stored; never fail a listing over it
    }
  }
  return {
    rule_id: r.rule_id,
    project_id: r.project_id,
    hostname: r.hostname,
    bridge_id: r.bridge_id,
    listen_port: r.listen_port,
    target_addr: r.target_addr,
    target_node: r.target_node,
    mode: r.mode,
    cert_expires: expires,
    created_at: new Date(r.created_at).toISOString(),
  };
}

/**
 * Checks and stores an ingress rule; the bridge gets bridge_config_updated, and the bridge and the
 * target node see each other from then on (peer events as for a policy change). Throws
 * ControlPlaneError validation_failed (nothing stored) for: a bad hostname, mode or port (1..65535,
 * not 80), a target that is no node of the bridge's project (or the bridge itself), an unknown
 * node or one that is not a bridge, a hostname the project already publishes, a bridge at
 * MAX_INGRESS_RULES, --cert/--key missing for terminate or given for another mode, or a
 * certificate checkCertificate refuses. Returns the rule and warnings.
 */
export function addIngressRule(store: ControlPlaneStore, input: IngressRuleInput): { rule: IngressRuleView; warnings: string[] } {
  let hostname: string;
  let target: { ip: number; port: number; addr: string };
  try {
    hostname = checkHostname(input.hostname);
    target = parseTarget(input.target);
  } catch (err) {
    return refuse((err as Error).message);
  }
  if (!(INGRESS_MODES as readonly string[]).includes(input.mode)) refuse(`--mode: expected one of ${INGRESS_MODES.join(', ')}, got ${JSON.stringify(input.mode)}`);
  const port = input.listenPort ?? DEFAULT_INGRESS_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) refuse(`--listen-port: expected 1..65535, got ${port}`);
  if (port === ACME_HTTP_PORT) refuse(`--listen-port: ${ACME_HTTP_PORT} is the bridge's ACME HTTP-01 and HTTPS-redirect port; use 443 or another port`);
  const warnings: string[] = [];
  const terminate = input.mode === 'terminate';
  if (terminate && (input.certPem === undefined || input.keyPem === undefined)) refuse('--mode terminate needs --cert FILE and --key FILE');
  if (!terminate && (input.certPem !== undefined || input.keyPem !== undefined)) {
    refuse(`--cert/--key are for --mode terminate only (${input.mode === 'acme' ? 'acme: the bridge obtains the certificate' : 'passthrough: the target holds its own certificate'})`);
  }
  if (terminate) warnings.push(...checkCertificate(input.certPem!, input.keyPem!, hostname, store.now()).warnings);
  const bridgeId = input.bridgeId.toLowerCase();
  return store.tx(() => {
    const bridge = store.node(bridgeId);
    if (bridge === undefined) refuse(`--bridge: no node ${bridgeId}`);
    if (bridge.mode !== 'bridge') refuse(`--bridge: node ${bridgeId} is not a bridge (registered with mode ${bridge.mode})`);
    const targetNode = prepared(store.db, 'SELECT node_id FROM nodes WHERE project_id = ? AND mesh_ip_num = ?').pluck().get(bridge.project_id, target.ip) as string | undefined;
    if (targetNode === undefined) {
      refuse(`--target: no node of project ${bridge.project_id} has mesh IP ${formatIpv4(target.ip)} (mesh ${store.range.cidr}; see nodes list)`);
    }
    if (targetNode === bridge.node_id) refuse('--target: is the bridge itself; publish a service of another mesh node');
    const taken = prepared(store.db, 'SELECT bridge_id FROM ingress_rules WHERE project_id = ? AND hostname = ?').pluck().get(bridge.project_id, hostname) as string | undefined;
    if (taken !== undefined) refuse(`hostname ${hostname} is already published (bridge ${taken}); ingress remove it first`);
    const count = prepared(store.db, 'SELECT COUNT(*) FROM ingress_rules WHERE bridge_id = ?').pluck().get(bridge.node_id) as number;
    if (count >= MAX_INGRESS_RULES) refuse(`bridge ${bridge.node_id} already has ${count} ingress rules (at most ${MAX_INGRESS_RULES})`);
    const ruleId = randomUUID();
    return store.changeImpliedRules(bridge.project_id, () => {
      prepared(
        store.db,
        `INSERT INTO ingress_rules (rule_id, project_id, bridge_id, target_node, hostname, listen_port, target_addr, mode, cert_pem, key_pem, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(ruleId, bridge.project_id, bridge.node_id, targetNode, hostname, port, target.addr, input.mode,
        terminate ? input.certPem! : null, terminate ? store.sealSecret(keyPurpose(ruleId), Buffer.from(input.keyPem!)) : null, store.now());
      const row = prepared(store.db, 'SELECT * FROM ingress_rules WHERE rule_id = ?').get(ruleId) as IngressRow;
      return { events: ruleEvents(row, 'added'), result: { rule: view(row), warnings } };
    });
  });
}

/** The events of a rule's change: the bridge reconciles its listeners, the target its policy. */
function ruleEvents(r: IngressRow, change: 'added' | 'removed'): NewEvent[] {
  return [
    { projectId: r.project_id, type: 'bridge_config_updated', payload: { ingress_rule_id: r.rule_id, change }, targetNode: r.bridge_id },
    { projectId: r.project_id, type: 'node_state_updated', payload: {}, targetNode: r.target_node },
  ];
}

/** The events of removing node `nodeId` for its ingress rules (schema 9's trigger deletes them):
 *  each other bridge that published a service of it reconciles. Call before the node's row goes. */
export function ingressRemovalEvents(db: Db, nodeId: string): NewEvent[] {
  const rows = prepared(db, 'SELECT * FROM ingress_rules WHERE target_node = ? AND bridge_id <> ?').all(nodeId, nodeId) as IngressRow[];
  return rows.map((r) => ruleEvents(r, 'removed')[0]!);
}

/** Removes the rule publishing `hostname` (any project); the bridge gets bridge_config_updated.
 *  Returns the removed rule, or undefined when no rule has that hostname. */
export function removeIngressRule(store: ControlPlaneStore, hostname: string): IngressRuleView | undefined {
  const name = hostname.toLowerCase();
  return store.tx(() => {
    const row = prepared(store.db, 'SELECT * FROM ingress_rules WHERE hostname = ? ORDER BY project_id LIMIT 1').get(name) as IngressRow | undefined;
    if (row === undefined) return undefined;
    return store.changeImpliedRules(row.project_id, () => {
      prepared(store.db, 'DELETE FROM ingress_rules WHERE rule_id = ?').run(row.rule_id);
      return { events: ruleEvents(row, 'removed'), result: view(row) };
    });
  });
}

/** Every rule, by project, bridge and hostname (no private keys). */
export function listIngressRules(db: Db): IngressRuleView[] {
  return (prepared(db, 'SELECT * FROM ingress_rules ORDER BY project_id, bridge_id, hostname').all() as IngressRow[]).map(view);
}

/** The state's `bridge.ingress` for `node`: its rules (terminate ones with certificate and the
 *  key, unsealed) when it is a bridge with rules, else null (the bridge tears ingress down). */
export function ingressBlockFor(db: Db, box: SecretBox, node: Pick<NodeRow, 'node_id' | 'mode'>): IngressConfig | null {
  if (node.mode !== 'bridge') return null;
  const rows = prepared(db, 'SELECT * FROM ingress_rules WHERE bridge_id = ? ORDER BY hostname').all(node.node_id) as IngressRow[];
  if (rows.length === 0) return null;
  const rules = rows.map((r): IngressRule => ({
    rule_id: r.rule_id,
    hostname: r.hostname,
    listen_port: r.listen_port,
    target_addr: r.target_addr,
    mode: r.mode,
    ...(r.cert_pem === null || r.key_pem === null ? {} : { cert_pem: r.cert_pem, key_pem: box.reveal(keyPurpose(r.rule_id), r.key_pem).toString('utf8') }),
  }));
  return { enabled: true, rules };
}

/** The allow rules a project's ingress rules imply: TCP from each bridge's mesh IP to its target
 *  address. Visibility takes them with the policy's (the two see each other). */
export function ingressPolicyRules(db: Db, projectId: string): PolicyRule[] {
  const rows = prepared(
    db,
    `SELECT b.mesh_ip AS bridge_ip, r.target_addr FROM ingress_rules r JOIN nodes b ON b.node_id = r.bridge_id
     WHERE r.project_id = ? ORDER BY r.rule_id`,
  ).all(projectId) as Array<{ bridge_ip: string; target_addr: string }>;
  return rows.map((r) => impliedRule(r.bridge_ip, r.target_addr));
}

function impliedRule(bridgeIp: string, targetAddr: string): FirewallRule {
  const colon = targetAddr.lastIndexOf(':');
  const port = Number(targetAddr.slice(colon + 1));
  return { action: 'allow', protocol: 'tcp', source_cidr: `${bridgeIp}/32`, destination_cidr: `${targetAddr.slice(0, colon)}/32`, ports: { from: port, to: port } };
}

/**
 * `policy` as `node` gets it when it is the bridge or the target of ingress rules: their implied
 * allow rules first (a rule is the operator's explicit, narrow statement: TCP from the bridge to
 * one target port; a broader deny in the policy does not undo it), then the policy's rules; the
 * fingerprint is that of the whole list. A node without ingress rules gets `policy` unchanged.
 */
export function withIngressRules(db: Db, node: Pick<NodeRow, 'node_id'>, policy: Policy | null): Policy | null {
  const rows = prepared(
    db,
    `SELECT b.mesh_ip AS bridge_ip, r.target_addr FROM ingress_rules r JOIN nodes b ON b.node_id = r.bridge_id
     WHERE r.bridge_id = ? OR r.target_node = ? ORDER BY r.rule_id`,
  ).all(node.node_id, node.node_id) as Array<{ bridge_ip: string; target_addr: string }>;
  if (rows.length === 0) return policy;
  const rules = [...rows.map((r) => impliedRule(r.bridge_ip, r.target_addr)), ...(policy?.rules ?? [])];
  return { revision_id: policy?.revision_id ?? 'ingress', fingerprint: rulesFingerprint(rules), rules };
}
