// What shares the WireGuard UDP socket, told apart by the first byte (the device demultiplexes;
// the codecs above it frame their datagrams accordingly): WireGuard messages are types 1-4 followed
// by three zero bytes, STUN starts with two zero bits (RFC 8489 section 5), path probes with this.

/** First byte of every path probe (src/nat/path-probe.ts); neither WireGuard nor STUN. */
export const PROBE_FIRST_BYTE = 0xf0;
