// The library's configuration object: the same keys and semantics as a UAPI `set=1`
// (wireguard.com/xplatform), written the way wg(8) config files write them (base64 keys,
// "host:port" endpoints, CIDR strings). Converted straight into the device's typed transaction
// through the validators the UAPI parser uses too (validate.ts), so both accept the same values
// with the same messages.

import { Buffer } from 'node:buffer';
import type { PackedTransaction } from './contract.js';
import { PeerChangeList, PeerFlag } from './peer-changes.js';
import { invalid, normalizePrivateKey, parseAllowedIpValue, parseEndpointValue, parseUintValue } from './validate.js';

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

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/**
 * Decodes `key` into `out` (32 bytes, owned by the caller): straight from base64 into it, no
 * Buffer from the shared pool keeping a copy of a secret. Returns `out`.
 */
function decodeKey(name: string, key: KeyInput | null, out: Uint8Array): Uint8Array {
  if (key === null) return out.fill(0);
  if (typeof key === 'string') {
    const n = BASE64_KEY.test(key) ? Buffer.from(out.buffer, out.byteOffset, 32).write(key, 'base64') : 0;
    if (n !== 32) {
      out.fill(0);
      throw invalid(`invalid ${name}: expected 32 bytes in base64 (44 characters), got ${JSON.stringify(key)}`);
    }
  } else if (key instanceof Uint8Array && key.length === 32) {
    out.set(key);
  } else {
    throw new TypeError(`expected ${name} to be a base64 string or 32 bytes, got ${typeof key}`);
  }
  return out;
}

// The text a value would have on a UAPI line; a line break or '=' could not be one.
function clean(name: string, value: string | number | boolean): string {
  const s = String(value);
  if (/[\n\r=]/.test(s)) throw invalid(`invalid ${name}: ${JSON.stringify(s)}`);
  return s;
}

/**
 * Converts a DeviceConfig into the transaction it means, validated with the UAPI parser's rules
 * and messages. Throws DeviceError('ERR_DEVICE_INVALID') for a bad value, TypeError for a value
 * of the wrong type.
 */
export function configToTransaction(config: DeviceConfig): PackedTransaction {
  if (config === null || typeof config !== 'object') throw new TypeError(`expected a config object, got ${typeof config}`);
  let privateKey: Uint8Array | null | undefined;
  if (config.privateKey !== undefined) privateKey = normalizePrivateKey(decodeKey('privateKey', config.privateKey, new Uint8Array(32)));
  try {
    const listenPort = config.listenPort === undefined ? undefined : parseUintValue(clean('listenPort', config.listenPort), 0xffff, 'listen_port');
    const fwmark = config.fwmark === undefined ? undefined : parseUintValue(clean('fwmark', config.fwmark), 0xffff_ffff, 'fwmark');
    const peers = new PeerChangeList();
    for (const p of config.peers ?? []) {
      decodeKey('publicKey', p.publicKey, peers.begin());
      if (p.remove === true) peers.flag(PeerFlag.remove);
      if (p.updateOnly === true) peers.flag(PeerFlag.updateOnly);
      if (p.presharedKey !== undefined) decodeKey('presharedKey', p.presharedKey, peers.presharedKey());
      if (p.endpoint !== undefined) {
        const e = parseEndpointValue(clean('endpoint', p.endpoint));
        peers.endpoint(e.ip, e.port, e.zone);
      }
      if (p.persistentKeepalive !== undefined) {
        peers.keepalive(parseUintValue(clean('persistentKeepalive', p.persistentKeepalive), 0xffff, 'persistent_keepalive_interval'));
      }
      if (p.replaceAllowedIps === true) peers.replaceAllowedIps();
      for (const a of p.allowedIps ?? []) {
        const { ip, cidr, remove } = parseAllowedIpValue(clean('allowedIps', a));
        peers.allowedIp(ip, cidr, remove);
      }
    }
    return { privateKey, listenPort, fwmark, replacePeers: config.replacePeers === true, peers };
  } catch (err) {
    privateKey?.fill(0);
    throw err;
  }
}
