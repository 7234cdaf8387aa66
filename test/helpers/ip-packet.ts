// Builds minimal IPv4/IPv6 packets for tests (header fields the engine reads, a payload).

import { parseIp } from '../../src/core/ip.js';

/** An IPv4 (20-byte header) or IPv6 (40-byte header) packet from `src` to `dst` carrying `payload`. */
export function ipPacket(src: string, dst: string, payload: Uint8Array | string = 'hello'): Uint8Array {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const s = parseIp(src);
  const d = parseIp(dst);
  if (s === undefined || d === undefined || s.length !== d.length) throw new RangeError(`expected two addresses of one family, got ${src} ${dst}`);
  if (s.length === 4) {
    const p = new Uint8Array(20 + body.length);
    p[0] = 0x45;
    p[2] = p.length >> 8;
    p[3] = p.length & 0xff;
    p[8] = 64;
    p[9] = 17;
    p.set(s, 12);
    p.set(d, 16);
    p.set(body, 20);
    return p;
  }
  const p = new Uint8Array(40 + body.length);
  p[0] = 0x60;
  p[4] = body.length >> 8;
  p[5] = body.length & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.set(s, 8);
  p.set(d, 24);
  p.set(body, 40);
  return p;
}
