// The one validator of configuration values, shared by Device.configure (DeviceConfig) and the
// UAPI parser (src/uapi/protocol.ts), so both accept the same text with the same messages
// (wireguard-go's device/uapi.go rules: Go's strconv.ParseUint, netip.ParseAddrPort and
// netip.ParsePrefix), and the check of a typed DeviceTransaction a library caller builds.

import { parseEndpoint, type ParsedEndpoint } from '../core/endpoint.js';
import { parseIp, parsePrefix } from '../core/ip.js';
import { isZero } from '../core/noise.js';
import type { AllowedIpChange, DeviceTransaction, PeerChange } from './contract.js';
import { DeviceError } from './errors.js';
import { PeerChangeList } from './peer-changes.js';

const DIGITS = /^[0-9]+$/;

/** A DeviceError('ERR_DEVICE_INVALID'): a configuration value was refused. */
export function invalid(message: string): DeviceError {
  return new DeviceError('ERR_DEVICE_INVALID', message);
}

/** Go's strconv.ParseUint(value, 10, bits): decimal digits only, leading zeros allowed. Throws DeviceError. */
export function parseUintValue(value: string, max: number, what: string): number {
  if (!DIGITS.test(value)) throw invalid(`failed to parse ${what}: ${JSON.stringify(value)}`);
  let i = 0;
  while (i < value.length - 1 && value.charCodeAt(i) === 0x30) i++;
  const n = value.length - i > 16 ? Infinity : Number(value.slice(i));
  if (n > max) throw invalid(`failed to parse ${what}: ${value} out of range`);
  return n;
}

/** "1.2.3.4:51820" or "[v6]:51820" / "[v6%zone]:51820" (core/endpoint.ts parseEndpoint). Throws DeviceError. */
export function parseEndpointValue(value: string): ParsedEndpoint {
  const colon = value.lastIndexOf(':');
  const fail = () => invalid(`failed to set endpoint ${JSON.stringify(value)}`);
  if (colon < 0) throw fail();
  // The port first: its message says what is wrong with it.
  parseUintValue(value.slice(colon + 1), 0xffff, `endpoint ${JSON.stringify(value)} port`);
  const endpoint = parseEndpoint(value);
  if (endpoint === undefined) throw fail();
  return endpoint;
}

/** An allowed IP "PREFIX" ("/bits" required), or "-PREFIX" asking for removal. Throws DeviceError. */
export function parseAllowedIpValue(value: string): { ip: Uint8Array; cidr: number; remove: boolean } {
  const remove = value.charCodeAt(0) === 0x2d;
  const text = remove ? value.slice(1) : value;
  const prefix = text.includes('/') ? parsePrefix(text) : undefined;
  if (prefix === undefined) throw invalid(`failed to set allowed ip: ${JSON.stringify(value)}`);
  return { ip: prefix.ip, cidr: prefix.cidr, remove };
}

/**
 * A private key as the device takes it, in place: null for the all-zero key ("remove", wiped),
 * else clamped per RFC 7748 section 5 as wireguard-go does on input (noise-types.go).
 */
export function normalizePrivateKey(key: Uint8Array): Uint8Array | null {
  if (isZero(key)) return null;
  key[0]! &= 248;
  key[31] = (key[31]! & 127) | 64;
  return key;
}

function expectKey(what: string, key: unknown): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new TypeError(`expected ${what} to be 32 bytes, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`);
  }
}

function expectInt(what: string, n: unknown, max: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw new RangeError(`expected ${what} to be an integer in 0..${max}, got ${String(n)}`);
  }
}

function expectBool(what: string, b: unknown): void {
  if (b !== undefined && typeof b !== 'boolean') throw new TypeError(`expected ${what} to be a boolean, got ${typeof b}`);
}

// Checks one peer change and returns it with its allowed IPs read once into an array (an
// iterable may be a one-shot generator: checked here, it must not be read again for applying).
function checkPeer(p: PeerChange, i: number): PeerChange {
  if (p === null || typeof p !== 'object') throw new TypeError(`expected peers[${i}] to be an object, got ${p === null ? 'null' : typeof p}`);
  expectKey(`peers[${i}].publicKey`, p.publicKey);
  expectBool(`peers[${i}].remove`, p.remove);
  expectBool(`peers[${i}].updateOnly`, p.updateOnly);
  expectBool(`peers[${i}].replaceAllowedIps`, p.replaceAllowedIps);
  if (p.presharedKey != null) expectKey(`peers[${i}].presharedKey`, p.presharedKey);
  if (p.endpoint !== undefined) {
    const e = p.endpoint;
    const ip = e !== null && typeof e === 'object' && typeof e.address === 'string' ? parseIp(e.address) : undefined;
    if (ip === undefined) throw new TypeError(`expected peers[${i}].endpoint to be { address: an IP literal, port }, got ${JSON.stringify(e)}`);
    expectInt(`peers[${i}].endpoint.port`, e.port, 0xffff);
  }
  if (p.persistentKeepaliveInterval !== undefined) expectInt(`peers[${i}].persistentKeepaliveInterval`, p.persistentKeepaliveInterval, 0xffff);
  let allowedIps: AllowedIpChange[] | undefined;
  if (p.allowedIps !== undefined) {
    if (p.allowedIps === null || typeof p.allowedIps[Symbol.iterator] !== 'function') throw new TypeError(`expected peers[${i}].allowedIps to be iterable`);
    allowedIps = [...p.allowedIps];
    for (const a of allowedIps) {
      if (a === null || typeof a !== 'object' || !(a.ip instanceof Uint8Array) || (a.ip.length !== 4 && a.ip.length !== 16)) {
        throw new TypeError(`expected peers[${i}].allowedIps to hold { ip: 4 or 16 bytes, cidr }`);
      }
      expectInt(`peers[${i}] allowed IP cidr`, a.cidr, a.ip.length * 8);
      expectBool(`peers[${i}] allowed IP remove`, a.remove);
    }
  }
  return allowedIps === undefined ? p : { ...p, allowedIps };
}

/**
 * Checks a typed transaction before anything applies and returns the peer changes to apply:
 * packed ones (made by configure or the UAPI parser) as they are, valid by construction; any other
 * iterable read once into a checked array. Throws TypeError/RangeError ("expected X, got Y"): a
 * malformed typed transaction is the caller's mistake.
 */
export function checkTransaction(tx: DeviceTransaction): Iterable<PeerChange> {
  if (tx === null || typeof tx !== 'object') throw new TypeError(`expected a transaction object, got ${tx === null ? 'null' : typeof tx}`);
  if (tx.privateKey != null) expectKey('privateKey', tx.privateKey);
  if (tx.listenPort !== undefined) expectInt('listenPort', tx.listenPort, 0xffff);
  if (tx.fwmark !== undefined) expectInt('fwmark', tx.fwmark, 0xffff_ffff);
  expectBool('replacePeers', tx.replacePeers);
  const peers = tx.peers;
  if (peers === undefined) return [];
  if (peers instanceof PeerChangeList) return peers;
  if (peers === null || typeof (peers as Iterable<PeerChange>)[Symbol.iterator] !== 'function') {
    throw new TypeError(`expected peers to be iterable, got ${peers === null ? 'null' : typeof peers}`);
  }
  return [...peers].map(checkPeer);
}
