// The Internet checksum (RFC 1071) for the IP layer, UDP and ICMP: the one summing routine is
// tcp-segment.ts's `checksum`; this adds the pseudo-header of any upper-layer protocol (RFC 768,
// RFC 8200 8.1). Pure: no I/O.

import { checksum } from './tcp-segment.js';

export { checksum };

/**
 * The unfolded sum of the pseudo-header of an upper-layer packet of `length` bytes and protocol
 * `proto` between `src` and `dst` (both 4 or both 16 bytes).
 */
export function pseudoHeaderSumFor(src: Uint8Array, dst: Uint8Array, proto: number, length: number): number {
  let sum = 0;
  for (let i = 0; i < src.length; i += 2) sum += (src[i]! << 8) | src[i + 1]!;
  for (let i = 0; i < dst.length; i += 2) sum += (dst[i]! << 8) | dst[i + 1]!;
  // IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, three zero bytes, next header.
  return sum + proto + (length >>> 16) + (length & 0xffff);
}

/** The checksum of `data` under the pseudo-header (0 when a packet with it filled in verifies). */
export function transportChecksum(src: Uint8Array, dst: Uint8Array, proto: number, data: Uint8Array): number {
  return checksum(pseudoHeaderSumFor(src, dst, proto, data.length), data);
}
