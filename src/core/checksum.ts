// The Internet checksum (RFC 1071): one place for the IP, ICMP, UDP and TCP checksums of the TUN
// offloads (io/offload.ts), the agent's ICMP echo (agent/icmp.ts) and the userspace stack (net/).

/**
 * One's complement sum of buf[start, end) added to `initial`, not folded past 32 bits of slack:
 * callers fold with {@link foldChecksum}. Big-endian 16-bit words; an odd trailing byte is padded.
 */
export function checksumNoFold(buf: Uint8Array, start: number, end: number, initial: number): number {
  let sum = initial;
  let i = start;
  const last = end - 1;
  // Fold every 2^15 words (never reaches 2^53) — cheap and exact.
  while (i < last) {
    const stop = Math.min(last, i + 65536);
    for (; i < stop; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
    sum = (sum & 0xffff) + Math.floor(sum / 65536);
  }
  if (i === last) sum += buf[i]! << 8;
  return sum;
}

/** Folds a sum from checksumNoFold to 16 bits (not complemented). */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** The checksum field value over buf[start, end) plus `initial` (e.g. a pseudo-header sum):
 *  0 when verifying a buffer whose checksum field is right. */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length, initial = 0): number {
  return ~foldChecksum(checksumNoFold(buf, start, end, initial)) & 0xffff;
}
