// TAI64N timestamps as WireGuard puts them in handshake initiations (whitepaper 5.4.2;
// cr.yp.to/libtai/tai64.html), matching wireguard-go tai64n/tai64n.go including its whitening.

/** Length of a TAI64N timestamp in bytes: 8 bytes of seconds, 4 of nanoseconds, big-endian. */
export const TAI64N_LENGTH = 12;

/**
 * TAI64 label of the Unix epoch, 2^62 + 10. Like wireguard-go (and the Linux kernel module) we add
 * the Unix time to it and ignore leap seconds; only monotonicity matters to a responder.
 */
export const TAI64_BASE = 0x400000000000000an;

/**
 * wireguard-go clears the low 24 bits of the nanoseconds (mask 0xffffff, ~16.8 ms granularity) so
 * the timestamp does not leak the sender's precise clock; two initiations within one ~16.8 ms
 * slot get equal timestamps, and the responder rejects the second as not newer.
 */
export const WHITENER_MASK = 0xffffff;

/**
 * Encodes a wall-clock time as a whitened TAI64N timestamp. `unixMs` is milliseconds since the
 * Unix epoch (may be fractional, as performance.timeOrigin + performance.now() is); `extraNs`
 * (integer 0..999999) adds sub-millisecond nanoseconds. Throws RangeError on non-finite input.
 */
export function tai64n(unixMs: number, extraNs = 0): Uint8Array {
  if (!Number.isFinite(unixMs)) throw new RangeError(`expected finite milliseconds, got ${unixMs}`);
  if (!Number.isInteger(extraNs) || extraNs < 0 || extraNs > 999_999) {
    throw new RangeError(`expected extraNs to be an integer in 0..999999, got ${extraNs}`);
  }
  const secs = Math.floor(unixMs / 1000);
  // Whole nanoseconds within the second; the clamp absorbs float rounding near 1e9.
  const nanos = Math.min(Math.floor((unixMs - secs * 1000) * 1e6) + extraNs, 999_999_999);
  const out = new Uint8Array(TAI64N_LENGTH);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, TAI64_BASE + BigInt(secs));
  view.setUint32(8, (nanos & ~WHITENER_MASK) >>> 0);
  return out;
}

/**
 * Orders two timestamps (bytewise, as big-endian numbers): negative when a < b, 0 when equal,
 * positive when a > b. Throws RangeError unless both are 12 bytes.
 */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== TAI64N_LENGTH || b.length !== TAI64N_LENGTH) {
    throw new RangeError(`expected two ${TAI64N_LENGTH}-byte timestamps, got ${a.length} and ${b.length}`);
  }
  for (let i = 0; i < TAI64N_LENGTH; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when `a` is strictly newer than `b` (wireguard-go Timestamp.After). */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  return compareTai64n(a, b) > 0;
}
