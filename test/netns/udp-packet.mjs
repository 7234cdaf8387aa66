// A minimal IPv4/UDP-protocol packet (no UDP header: the tunnel only checks the IP header) for the
// namespace node scripts (nat-node.mjs, path-probe-node.mjs).

/** IPv4 packet from `src` to `dst` (dotted quads) carrying `text`. */
export function ipv4Packet(src, dst, text) {
  const body = Buffer.from(text);
  const p = Buffer.alloc(20 + body.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 17;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  body.copy(p, 20);
  return p;
}
