// What shares the WireGuard UDP socket, told apart by the first byte (the device demultiplexes;
// the codecs above it frame their datagrams accordingly): WireGuard messages are types 1-4 followed
// by three zero bytes, STUN starts with two zero bits (RFC 8489 section 5), path probes with this.

/** First byte of every path probe (src/nat/path-probe.ts); neither WireGuard nor STUN. */
export const PROBE_FIRST_BYTE = 0xf0;

/**
 * True when `data` is framed as STUN (RFC 8489 section 5 and 7, RFC 7983 demultiplexing): at
 * least the 20-byte header, top two bits zero, the magic cookie 0x2112A442 at offset 4, and a
 * length field equal to the size after the header. A WireGuard message (type 1-4, then three zero
 * bytes: length field 0, and never 20 bytes long) and a path probe never pass. The one check of
 * the device's demultiplexer and the STUN codec.
 */
export function looksLikeStun(data: Uint8Array): boolean {
  return (
    data.length >= 20 &&
    (data[0]! & 0xc0) === 0 &&
    data[4] === 0x21 &&
    data[5] === 0x12 &&
    data[6] === 0xa4 &&
    data[7] === 0x42 &&
    ((data[2]! << 8) | data[3]!) + 20 === data.length
  );
}
