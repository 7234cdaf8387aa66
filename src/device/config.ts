// The library's configuration object: the same keys and semantics as a UAPI `set=1`
// (wireguard.com/xplatform), written the way wg(8) config files write them (base64 keys,
// "host:port" endpoints, CIDR strings). It is turned into UAPI text and parsed by the one UAPI
// parser, so both paths validate identically.

import { parseSetBody, type SetTransaction } from '../uapi/protocol.js';
import { UapiError } from '../uapi/errors.js';

/** A key as base64 (what `wg genkey` prints) or 32 raw bytes. */
export type KeyInput = string | Uint8Array;

/** One peer section; only `publicKey` is required. */
export interface PeerConfig {
  readonly publicKey: KeyInput;
  /** Delete this peer. */
  readonly remove?: boolean;
  /** Only change the peer if it exists already. */
  readonly updateOnly?: boolean;
  /** A key, or null to clear it. */
  readonly presharedKey?: KeyInput | null;
  /** "203.0.113.1:51820" or "[2001:db8::1]:51820"; IP literals only. */
  readonly endpoint?: string;
  /** Seconds, 0 = off. */
  readonly persistentKeepalive?: number;
  /** Remove every allowed IP of the peer before adding `allowedIps`. */
  readonly replaceAllowedIps?: boolean;
  /** CIDR strings; a leading '-' removes that prefix. */
  readonly allowedIps?: readonly string[];
}

/** A device configuration; absent keys are left unchanged. */
export interface DeviceConfig {
  /** A key, or null to remove it. */
  readonly privateKey?: KeyInput | null;
  /** 0 = any free port. */
  readonly listenPort?: number;
  readonly fwmark?: number;
  /** Remove every peer not listed here first. */
  readonly replacePeers?: boolean;
  readonly peers?: readonly PeerConfig[];
}

function keyHex(name: string, key: KeyInput | null): string {
  if (key === null) return '0'.repeat(64);
  let bytes: Uint8Array;
  if (typeof key === 'string') {
    bytes = Buffer.from(key, 'base64');
    if (bytes.length !== 32 || !/^[A-Za-z0-9+/]{43}=$/.test(key)) {
      throw new UapiError('ERR_UAPI_INVALID', `invalid ${name}: expected 32 bytes in base64 (44 characters), got ${JSON.stringify(key)}`);
    }
  } else if (key instanceof Uint8Array && key.length === 32) {
    bytes = key;
  } else {
    throw new TypeError(`expected ${name} to be a base64 string or 32 bytes, got ${typeof key}`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function clean(name: string, value: string | number | boolean): string {
  const s = String(value);
  if (/[\n\r=]/.test(s)) throw new UapiError('ERR_UAPI_INVALID', `invalid ${name}: ${JSON.stringify(s)}`);
  return s;
}

/** Converts a DeviceConfig into the UAPI `set=1` body it means. Throws UapiError/TypeError. */
export function configToUapi(config: DeviceConfig): string {
  if (config === null || typeof config !== 'object') throw new TypeError(`expected a config object, got ${typeof config}`);
  const lines: string[] = [];
  if (config.privateKey !== undefined) lines.push(`private_key=${keyHex('privateKey', config.privateKey)}`);
  if (config.listenPort !== undefined) lines.push(`listen_port=${clean('listenPort', config.listenPort)}`);
  if (config.fwmark !== undefined) lines.push(`fwmark=${clean('fwmark', config.fwmark)}`);
  if (config.replacePeers === true) lines.push('replace_peers=true');
  for (const p of config.peers ?? []) {
    lines.push(`public_key=${keyHex('publicKey', p.publicKey)}`);
    if (p.remove === true) lines.push('remove=true');
    if (p.updateOnly === true) lines.push('update_only=true');
    if (p.presharedKey !== undefined) lines.push(`preshared_key=${keyHex('presharedKey', p.presharedKey)}`);
    if (p.endpoint !== undefined) lines.push(`endpoint=${clean('endpoint', p.endpoint)}`);
    if (p.persistentKeepalive !== undefined) {
      lines.push(`persistent_keepalive_interval=${clean('persistentKeepalive', p.persistentKeepalive)}`);
    }
    if (p.replaceAllowedIps === true) lines.push('replace_allowed_ips=true');
    for (const a of p.allowedIps ?? []) lines.push(`allowed_ip=${clean('allowedIps', a)}`);
  }
  return lines.join('\n') + '\n';
}

/** Parses a DeviceConfig into a transaction through the UAPI parser. Throws UapiError/TypeError. */
export function configToTransaction(config: DeviceConfig): SetTransaction {
  return parseSetBody(configToUapi(config));
}
