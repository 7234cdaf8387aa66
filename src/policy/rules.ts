// Policy rules as the plexd control-plane API v1 sends them (docs/plexd-api.md, `policy` block of
// GET /v1/nodes/{id}/state): parsed leniently about unknown fields and strictly about values.
// Input is the raw JSON or the wire contract's `Policy` (src/api/types.ts, what
// parseStateResponse yields); missing fields default as the wire contract's parser defaults them
// (protocol "any", CIDRs "0.0.0.0/0", ports every port), so both inputs mean the same thing.

import { formatPrefix, maskHostBits, parsePrefix } from '../core/ip.js';
import { PolicyError } from './policy-error.js';

/** What a matching rule does with a packet. */
export type PolicyAction = 'allow' | 'deny';

/** Which packets a rule covers; `icmp` means ICMPv4 and ICMPv6 alike. */
export type PolicyProtocol = 'tcp' | 'udp' | 'icmp' | 'any';

/** A parsed prefix: network address with host bits cleared, length, and canonical text. */
export interface PolicyPrefix {
  readonly ip: Uint8Array;
  readonly cidr: number;
  /** Canonical "address/cidr" (host bits cleared, RFC 5952 for IPv6). */
  readonly text: string;
}

/** An inclusive destination-port range. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * One validated rule. `ports` limits the destination port; a rule with ports matches only TCP
 * and UDP packets whose headers were read (for `any` too), one without ports any port.
 */
export interface PolicyRule {
  readonly action: PolicyAction;
  readonly protocol: PolicyProtocol;
  readonly source: PolicyPrefix;
  readonly destination: PolicyPrefix;
  readonly ports: PortRange | undefined;
}

/** A validated policy revision: rules in priority order (first match wins). */
export interface Policy {
  readonly revisionId: string;
  readonly fingerprint: string;
  readonly rules: readonly PolicyRule[];
}

const ACTIONS: readonly string[] = ['allow', 'deny'];
const PROTOCOLS: readonly string[] = ['tcp', 'udp', 'icmp', 'any'];
const ANY_IPV4 = '0.0.0.0/0';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function parseCidr(v: unknown, field: string, index: number): PolicyPrefix {
  if (typeof v !== 'string') throw new PolicyError(field, index, `expected a CIDR string, got ${describe(v)}`);
  const p = parsePrefix(v.trim());
  if (p === undefined) throw new PolicyError(field, index, `expected an IPv4 or IPv6 prefix like 10.100.0.0/16, got ${describe(v)}`);
  const ip = maskHostBits(p.ip, p.cidr);
  return { ip, cidr: p.cidr, text: formatPrefix(ip, p.cidr) };
}

function parsePort(v: unknown, field: string, index: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new PolicyError(field, index, `expected an integer port 0..65535, got ${describe(v)}`);
  }
  return v;
}

/**
 * Validates one rule object (index `index` of `rules`). Unknown keys are ignored. Throws
 * PolicyError naming the index and field for a missing or bad value.
 */
export function parseRule(raw: unknown, index: number): PolicyRule {
  if (!isRecord(raw)) throw new PolicyError('rule', index, `expected an object, got ${describe(raw)}`);
  const action = raw['action'];
  if (typeof action !== 'string' || !ACTIONS.includes(action)) {
    throw new PolicyError('action', index, `expected "allow" or "deny", got ${describe(action)}`);
  }
  const protocol = raw['protocol'] ?? 'any';
  if (typeof protocol !== 'string' || !PROTOCOLS.includes(protocol)) {
    throw new PolicyError('protocol', index, `expected "tcp", "udp", "icmp" or "any", got ${describe(protocol)}`);
  }
  const source = parseCidr(raw['source_cidr'] ?? ANY_IPV4, 'source_cidr', index);
  const destination = parseCidr(raw['destination_cidr'] ?? ANY_IPV4, 'destination_cidr', index);
  if (source.ip.length !== destination.ip.length) {
    throw new PolicyError('destination_cidr', index, `expected the same address family as source_cidr ${source.text}, got ${destination.text}`);
  }
  let ports: PortRange | undefined;
  const rawPorts = raw['ports'];
  if (rawPorts !== undefined && rawPorts !== null) {
    if (!isRecord(rawPorts)) throw new PolicyError('ports', index, `expected {from, to} or null, got ${describe(rawPorts)}`);
    const from = parsePort(rawPorts['from'], 'ports.from', index);
    const to = rawPorts['to'] === undefined || rawPorts['to'] === null ? from : parsePort(rawPorts['to'], 'ports.to', index);
    if (to < from) throw new PolicyError('ports.to', index, `expected to >= from (${from}), got ${to}`);
    if (protocol === 'icmp') throw new PolicyError('ports', index, 'expected no ports for protocol "icmp"');
    ports = { from, to };
  }
  return { action: action as PolicyAction, protocol: protocol as PolicyProtocol, source, destination, ports };
}

/**
 * Validates the API's `policy` block `{revision_id, fingerprint, rules[]}`. `revision_id` may be
 * a string or an integer; `fingerprint` a string (missing: ""). Throws PolicyError.
 */
export function parsePolicy(raw: unknown): Policy {
  if (!isRecord(raw)) throw new PolicyError('policy', undefined, `expected an object, got ${describe(raw)}`);
  const rev = raw['revision_id'];
  if (!(typeof rev === 'string' && rev !== '') && !(typeof rev === 'number' && Number.isSafeInteger(rev))) {
    throw new PolicyError('revision_id', undefined, `expected a non-empty string or an integer, got ${describe(rev)}`);
  }
  const fp = raw['fingerprint'];
  if (fp !== undefined && fp !== null && typeof fp !== 'string') {
    throw new PolicyError('fingerprint', undefined, `expected a string, got ${describe(fp)}`);
  }
  const rules = raw['rules'] ?? [];
  if (!Array.isArray(rules)) throw new PolicyError('rules', undefined, `expected an array, got ${describe(rules)}`);
  return { revisionId: String(rev), fingerprint: fp ?? '', rules: rules.map((r, i) => parseRule(r, i)) };
}
