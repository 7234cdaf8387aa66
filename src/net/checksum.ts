// The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers of UDP, TCP and ICMPv6
// (RFC 768, RFC 9293 3.1, RFC 8200 8.1). Pure: no I/O.

/** Adds the 16-bit big-endian words of `data[from..to)` to `sum` (not folded). */
export function sumWords(data: Uint8Array, from: number, to: number, sum = 0): number {
  let i = from;
  for (; i + 1 < to; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < to) sum += data[i]! << 8;
  return sum;
}

/** Folds a 32-bit-ish sum to 16 bits and complements it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * The unfolded sum of the pseudo-header of an upper-layer packet of `length` bytes and protocol
 * `proto` between `src` and `dst` (both 4 or both 16 bytes).
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, proto: number, length: number): number {
  let sum = sumWords(src, 0, src.length) + sumWords(dst, 0, dst.length);
  // IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, three zero bytes, next header.
  sum += proto + (length & 0xffff) + Math.floor(length / 0x10000);
  return sum;
}

/** The checksum of `data` under the pseudo-header (0 when a packet with it filled in verifies). */
export function transportChecksum(src: Uint8Array, dst: Uint8Array, proto: number, data: Uint8Array): number {
  return finishChecksum(sumWords(data, 0, data.length, pseudoHeaderSum(src, dst, proto, data.length)));
}
