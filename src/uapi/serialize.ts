// Response side of wireguard-go's UAPI (device/uapi.go IpcGetOperation): the get=1 body in
// wireguard-go's key order, produced in bounded chunks so any number of allowed IPs streams.

import { formatEndpoint } from '../core/endpoint.js';
import { formatPrefix } from '../core/ip.js';
import type { DeviceSnapshot } from '../device/contract.js';

/** Default size at which {@link serializeGet} hands out a chunk. */
export const DEFAULT_CHUNK_CHARS = 64 * 1024;

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const ZERO_KEY_HEX = '0'.repeat(64);

function keyHex(key: Uint8Array, what: string): string {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new TypeError(`expected ${what} to be a 32-byte Uint8Array`);
  }
  let s = '';
  for (let i = 0; i < 32; i++) s += HEX_BYTE[key[i]!]!;
  return s;
}

function counter(value: number | bigint, what: string): string {
  if (typeof value === 'bigint' ? value < 0n : !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`expected ${what} to be a non-negative integer, got ${String(value)}`);
  }
  return String(value);
}

/**
 * The get=1 reply body (everything before "errno=0"), in chunks of about `chunkChars` chars
 * (ASCII, so chars are bytes). Lines and order as wireguard-go: private_key, listen_port, fwmark,
 * then per peer public_key, preshared_key, protocol_version, endpoint, last_handshake_time_sec,
 * last_handshake_time_nsec, tx_bytes, rx_bytes, persistent_keepalive_interval, allowed_ip...
 * Throws TypeError/RangeError (while iterating) for a malformed snapshot.
 */
export function* serializeGet(snapshot: DeviceSnapshot, chunkChars = DEFAULT_CHUNK_CHARS): Generator<string> {
  if (!Number.isInteger(chunkChars) || chunkChars < 1) {
    throw new RangeError(`expected chunkChars to be a positive integer, got ${String(chunkChars)}`);
  }
  let buf = '';
  if (snapshot.privateKey !== null) buf += `private_key=${keyHex(snapshot.privateKey, 'privateKey')}\n`;
  if (snapshot.listenPort !== 0) buf += `listen_port=${snapshot.listenPort}\n`;
  if (snapshot.fwmark !== 0) buf += `fwmark=${snapshot.fwmark}\n`;
  for (const peer of snapshot.peers) {
    buf +=
      `public_key=${keyHex(peer.publicKey, 'publicKey')}\n` +
      `preshared_key=${peer.presharedKey === null ? ZERO_KEY_HEX : keyHex(peer.presharedKey, 'presharedKey')}\n` +
      'protocol_version=1\n';
    if (peer.endpoint !== null) buf += `endpoint=${formatEndpoint(peer.endpoint)}\n`;
    buf +=
      `last_handshake_time_sec=${counter(peer.lastHandshakeTimeSec, 'lastHandshakeTimeSec')}\n` +
      `last_handshake_time_nsec=${counter(peer.lastHandshakeTimeNsec, 'lastHandshakeTimeNsec')}\n` +
      `tx_bytes=${counter(peer.txBytes, 'txBytes')}\n` +
      `rx_bytes=${counter(peer.rxBytes, 'rxBytes')}\n` +
      `persistent_keepalive_interval=${counter(peer.persistentKeepaliveInterval, 'persistentKeepaliveInterval')}\n`;
    for (const { ip, cidr } of peer.allowedIps) {
      buf += `allowed_ip=${formatPrefix(ip, cidr)}\n`;
      if (buf.length >= chunkChars) {
        yield buf;
        buf = '';
      }
    }
    if (buf.length >= chunkChars) {
      yield buf;
      buf = '';
    }
  }
  if (buf.length > 0) yield buf;
}

/** The whole get=1 reply, including the final "errno=0\n\n"; for small devices and tests. */
export function formatGetResponse(snapshot: DeviceSnapshot): string {
  let s = '';
  for (const chunk of serializeGet(snapshot)) s += chunk;
  return `${s}errno=0\n\n`;
}
