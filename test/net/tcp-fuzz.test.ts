// Hostile input to the TCP engine: random bytes, malformed headers and options, bad checksums,
// out-of-window sequence and acknowledgement numbers, and a SYN flood. Everything is dropped and
// counted, nothing throws, memory stays bounded, and a live connection keeps working.

import { describe, expect, it } from 'vitest';
import { ACK, RST, SYN, buildSegment, checksum, parseSegment, pseudoHeaderSum } from '../../src/net/tcp-segment.js';
import { TCP_DROP_REASONS, type TcpConnection } from '../../src/net/tcp.js';
import { retainedBytes } from '../helpers/heap.js';
import { prng } from '../helpers/prng.js';
import { Endpoint, IP_A, IP_B, TcpSim, randomData, sha256 } from '../helpers/tcp-sim.js';

/** The slow twin of checksum(): RFC 1071 over an explicit pseudo-header byte array. */
function naiveChecksum(src: Uint8Array, dst: Uint8Array, tcp: Uint8Array): number {
  const pseudo =
    src.length === 4
      ? [...src, ...dst, 0, 6, tcp.length >> 8, tcp.length & 0xff]
      : [...src, ...dst, 0, 0, tcp.length >> 8, tcp.length & 0xff, 0, 0, 0, 6];
  const all = [...pseudo, ...tcp];
  if (all.length % 2) all.push(0);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) {
    sum += all[i]! * 256 + all[i + 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

/** Sets the checksum field of `tcp` (bytes 16-17) right for src -> dst. */
function fixChecksum(src: Uint8Array, dst: Uint8Array, tcp: Uint8Array): Uint8Array {
  tcp[16] = 0;
  tcp[17] = 0;
  const c = naiveChecksum(src, dst, tcp);
  tcp[16] = c >> 8;
  tcp[17] = c & 0xff;
  return tcp;
}

describe('TCP checksum', () => {
  it('matches the slow twin on random segments, v4 and v6, odd and even lengths', () => {
    const rnd = prng(1);
    for (let i = 0; i < 500; i++) {
      const v6 = rnd() < 0.5;
      const src = new Uint8Array(v6 ? 16 : 4).map(() => rnd() * 256);
      const dst = new Uint8Array(v6 ? 16 : 4).map(() => rnd() * 256);
      const tcp = new Uint8Array(20 + Math.floor(rnd() * 100)).map(() => rnd() * 256);
      tcp[16] = tcp[17] = 0;
      expect(checksum(pseudoHeaderSum(src, dst, tcp.length), tcp)).toBe(naiveChecksum(src, dst, tcp));
      fixChecksum(src, dst, tcp);
      expect(checksum(pseudoHeaderSum(src, dst, tcp.length), tcp)).toBe(0);
    }
  });
});

describe('TCP hostile input', () => {
  it('drops and counts malformed segments of every kind without throwing; a live connection survives', () => {
    const sim = new TcpSim(50, { delay: 5 }, { maxHalfOpen: 64 });
    let server: TcpConnection | undefined;
    sim.b.listen(80, { mss: 1360, backlog: 64 }, (c) => {
      server = c;
    });
    const client = sim.a.connect({ ip: IP_A, port: 40000 }, { ip: IP_B, port: 80 }, { mss: 1360 }, 0);
    sim.run(() => server !== undefined && client.state === 'ESTABLISHED');
    const b = sim.b;
    const rnd = prng(51);
    const byte = () => Math.floor(rnd() * 256);
    const counts = () => ({ ...b.counters });
    const before = counts();

    // Random bytes (mostly checksum failures).
    for (let i = 0; i < 5000; i++) b.input(IP_A, IP_B, new Uint8Array(Math.floor(rnd() * 80)).map(byte), sim.now);
    // Addresses of the wrong size or of mixed families.
    b.input(new Uint8Array(5), IP_B, new Uint8Array(20), sim.now);
    b.input(new Uint8Array(16), IP_B, new Uint8Array(20), sim.now);
    // Data offset under 5 words, and beyond the segment.
    for (const off of [0, 4, 15]) {
      const seg = new Uint8Array(24);
      seg.set([0x9c, 0x40, 0, 80]);
      seg[12] = off << 4;
      b.input(IP_A, IP_B, fixChecksum(IP_A, IP_B, seg), sim.now);
    }
    // Random headers with a right checksum: random flags, sequence numbers and options.
    for (let i = 0; i < 20000; i++) {
      const optLen = 4 * Math.floor(rnd() * 11);
      const seg = new Uint8Array(20 + optLen + Math.floor(rnd() * 40)).map(byte);
      if (rnd() < 0.7) seg.set([0x9c, 0x40, 0, 80]); // toward the live connection's 4-tuple
      seg[12] = ((20 + optLen) / 4) << 4;
      b.input(IP_A, IP_B, fixChecksum(IP_A, IP_B, seg), sim.now);
    }
    // A valid segment with one bit flipped: checksum.
    const good = buildSegment({ srcPort: 40000, dstPort: 80, seq: 1, ack: 1, flags: ACK, window: 100 }, pseudoHeaderSum(IP_A, IP_B, 0), 0);
    good[5] = good[5]! ^ 1;
    b.input(IP_A, IP_B, good, sim.now);
    const after = counts();
    const delta = (k: keyof typeof after) => after[k] - before[k];
    for (const reason of ['short', 'bad-address', 'checksum', 'data-offset', 'bad-option', 'out-of-window', 'no-socket', 'bad-flags'] as const) {
      expect(delta(reason), reason).toBeGreaterThan(0);
    }
    const dropped = TCP_DROP_REASONS.reduce((n, r) => n + delta(r), 0);
    expect(dropped).toBeGreaterThan(20000);
    // A forged RST would need RCV.NXT exactly (RFC 5961): the connection survives and still works.
    expect([client.state, server!.state]).toEqual(['ESTABLISHED', 'ESTABLISHED']);
    {
      const data = randomData(52, 200_000);
      const got: Uint8Array[] = [];
      server!.onData = (d) => {
        got.push(d);
        server!.consumed(d.length, sim.now);
      };
      client.write(data, sim.now);
      sim.run(() => got.reduce((n, c) => n + c.length, 0) === data.length, 60_000);
      expect(sha256(Buffer.concat(got))).toBe(sha256(data));
    }
  });

  it('out-of-window sequence numbers and ACKs of unsent data are dropped with an ACK; the stream stays intact', () => {
    const sim = new TcpSim(53, { delay: 5 });
    const dataA = randomData(54, 300_000);
    const dataB = randomData(55, 300_000);
    let server: Endpoint | undefined;
    sim.b.listen(80, { mss: 1360, backlog: 8 }, (c) => {
      server = new Endpoint(c, dataB, sim);
    });
    const conn = sim.a.connect({ ip: IP_A, port: 40000 }, { ip: IP_B, port: 80 }, { mss: 1360 }, 0);
    const client = new Endpoint(conn, dataA, sim);
    sim.run(() => server !== undefined);
    const rnd = prng(56);
    const pseudo = pseudoHeaderSum(IP_A, IP_B, 0);
    // Forged segments with random sequence and ACK numbers, interleaved with the real traffic.
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 20; i++) {
        const seq = Math.floor(rnd() * 2 ** 32);
        const ack = Math.floor(rnd() * 2 ** 32);
        const flags = rnd() < 0.1 ? RST : ACK;
        const payload = new Uint8Array(Math.floor(rnd() * 100));
        sim.b.input(IP_A, IP_B, buildSegment({ srcPort: 40000, dstPort: 80, seq, ack, flags, window: 1000 }, pseudo, payload.length, (o, at) => o.set(payload, at)), sim.now);
      }
      sim.advance(5);
    }
    sim.run(() => client.closed && server!.closed, 600_000);
    expect(client.digest()).toBe(sha256(dataB));
    expect(server!.digest()).toBe(sha256(dataA));
    expect(sim.b.counters['out-of-window']).toBeGreaterThan(3000);
    expect(sim.b.counters['rst-invalid'] + sim.b.counters['out-of-window']).toBeGreaterThan(3500);
  });

  it('a SYN flood fills at most maxHalfOpen slots, is counted, keeps memory bounded, and drains', () => {
    const sim = new TcpSim(57, { delay: 5, loss: 1 }, { maxHalfOpen: 256, synRetries: 2 });
    sim.b.listen(80, { mss: 1360, backlog: 1024 }, () => {});
    const rnd = prng(58);
    const base = retainedBytes();
    for (let i = 0; i < 100_000; i++) {
      const src = new Uint8Array([10, Math.floor(rnd() * 256), Math.floor(rnd() * 256), 1 + Math.floor(rnd() * 254)]);
      const syn = buildSegment(
        { srcPort: 1024 + Math.floor(rnd() * 60000), dstPort: 80, seq: Math.floor(rnd() * 2 ** 32), ack: 0, flags: SYN, window: 65535, synMss: 1460, synWscale: 7, synSackPermitted: true, tsVal: 1, tsEcr: 0 },
        pseudoHeaderSum(src, IP_B, 0),
        0,
      );
      sim.b.input(src, IP_B, syn, sim.now);
    }
    expect(sim.b.connectionCount).toBe(256);
    expect(sim.b.counters['syn-flood']).toBe(100_000 - 256);
    expect(retainedBytes() - base).toBeLessThan(8 * 1024 * 1024);
    sim.run(() => sim.b.connectionCount === 0, 60_000);
    expect(sim.b.connectionCount).toBe(0);
    // The listener still accepts after the flood.
    sim.link.loss = 0;
    let accepted = 0;
    sim.b.listen(81, { mss: 1360, backlog: 8 }, () => accepted++);
    sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 81 }, { mss: 1360 }, sim.now);
    sim.advance(100);
    expect(accepted).toBe(1);
  });

  it('parses every option layout Linux and others send, and rejects broken option lengths', () => {
    const head = (opts: number[]) => {
      const seg = new Uint8Array(20 + opts.length);
      seg.set([0x9c, 0x40, 0, 80]);
      seg[12] = ((20 + opts.length) / 4) << 4;
      seg[13] = SYN;
      seg.set(opts, 20);
      return parseSegment(IP_A, IP_B, fixChecksum(IP_A, IP_B, seg));
    };
    expect(head([2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0, 1, 3, 3, 7])).toMatchObject({ mss: 1460, sackPermitted: true, tsVal: 9, tsEcr: 0, wscale: 7 });
    expect(head([3, 3, 15, 0])).toMatchObject({ wscale: 14 }); // RFC 7323 2.3: clamped
    expect(head([0, 2, 4, 5])).toMatchObject({ mss: undefined }); // after END-of-options nothing counts
    expect(head([99, 4, 1, 1])).toMatchObject({ mss: undefined }); // unknown option skipped
    expect(head([2, 6, 5, 0xb4, 0, 0, 1, 1])).toBe('bad-option'); // MSS must be 4 long
    expect(head([2, 3, 5, 1])).toBe('bad-option');
    expect(head([2, 0, 0, 0])).toBe('bad-option');
    expect(head([8, 12, 0, 0])).toBe('bad-option');
    expect(head([5, 6, 0, 0, 0, 0, 1, 1])).toBe('bad-option');
  });
});
