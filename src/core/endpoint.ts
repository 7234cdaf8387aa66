// UDP endpoints: the one declaration, the one formatter and the one strict parser, in wg's text
// form ("1.2.3.4:51820", "[2001:db8::1]:51820"; Go's netip.AddrPort, which wireguard-go's UAPI
// and wg(8) use). IP literals only: nothing here resolves a name.

import { formatIp, parseIp } from './ip.js';

/** A UDP endpoint: IPv4 dotted quad or IPv6 text (no brackets, no zone) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** What {@link parseEndpoint} found. */
export interface ParsedEndpoint extends Endpoint {
  /** The address canonical (RFC 5952 for IPv6), as `address`; this is the text as written. */
  readonly host: string;
  /** 4 or 16 bytes (IPv6 always 16, also for "::ffff:1.2.3.4"). */
  readonly ip: Uint8Array;
  /** IPv6 scope zone from "[fe80::1%eth0]:51820", if any. */
  readonly zone: string | undefined;
}

/** "1.2.3.4:51820" or "[fd00::1]:51820", as wg prints endpoints (a zone is not printed). Throws RangeError for a port outside 0..65535. */
export function formatEndpoint(e: Endpoint): string {
  const { address, port } = e;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`expected an endpoint port in 0..65535, got ${String(port)}`);
  }
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Go's strconv.ParseUint(text, 10, 16) for a port: decimal digits only (leading zeros allowed),
 * 0..65535. -1 when it is not one.
 */
export function parsePort(text: string): number {
  if (text.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
    if (n > 0xffff) return -1;
  }
  return n;
}

/**
 * Go's netip.ParseAddrPort: "1.2.3.4:51820" or "[v6]:51820" (optionally "[v6%zone]:port"), port
 * 0..65535 with leading zeros allowed. IPv4 in brackets, IPv6 without them and host names are
 * refused. undefined when malformed; TypeError when `text` is not a string.
 */
export function parseEndpoint(text: string): ParsedEndpoint | undefined {
  if (typeof text !== 'string') throw new TypeError(`expected an endpoint string, got ${typeof text}`);
  const colon = text.lastIndexOf(':');
  if (colon < 0) return undefined;
  const port = parsePort(text.slice(colon + 1));
  if (port < 0) return undefined;
  let host = text.slice(0, colon);
  let zone: string | undefined;
  let ip: Uint8Array | undefined;
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) return undefined;
    host = host.slice(1, -1);
    const percent = host.indexOf('%');
    if (percent >= 0) {
      zone = host.slice(percent + 1);
      host = host.slice(0, percent);
      if (zone.length === 0) return undefined;
    }
    ip = parseIp(host);
    if (ip?.length !== 16) return undefined;
  } else {
    ip = parseIp(host);
    if (ip?.length !== 4) return undefined;
  }
  return { address: formatIp(ip), port, host, ip, zone };
}

/** Strips the IPv4-mapped prefix a dual-stack socket may report ('::ffff:a.b.c.d' -> 'a.b.c.d'). */
export function plainAddress(address: string): string {
  return address.length > 7 && address.slice(0, 7).toLowerCase() === '::ffff:' && address.includes('.') ? address.slice(7) : address;
}

/** True when two endpoints name the same address and port (IPv4-mapped IPv6 equals its IPv4). */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && plainAddress(a.address).toLowerCase() === plainAddress(b.address).toLowerCase();
}

/** A map key for an endpoint under {@link sameEndpoint}'s equality. */
export function endpointKey(e: Endpoint): string {
  return `${plainAddress(e.address).toLowerCase()}|${e.port}`;
}
