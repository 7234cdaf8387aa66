// The RFC 9293 state machine of src/net/tcp*.ts driven through two engines and a manual clock:
// handshake options, simultaneous open and close, TIME-WAIT, RST in each state (RFC 5961
// checks included), zero window and persist, retransmission/SYN/keepalive timeouts, delayed
// ACK and Nagle, and 1,000 concurrent connections.

import { describe, expect, it } from 'vitest';
import { TcpError } from '../../src/net/tcp-error.js';
import { ACK, FIN, RST, SYN, buildSegment, parseSegment, pseudoHeaderSum, type Segment } from '../../src/net/tcp-segment.js';
import type { TcpConnection, TcpLimits, TcpState } from '../../src/net/tcp.js';
import { Endpoint, IP_A, IP_B, IP6_A, IP6_B, TcpSim, randomData, sha256 } from '../helpers/tcp-sim.js';

const MSS = 1360;

function parse(seg: { src: Uint8Array; dst: Uint8Array; bytes: Uint8Array }): Segment {
  const p = parseSegment(seg.src, seg.dst, seg.bytes);
  if (typeof p === 'string') throw new Error(p);
  return p;
}

/** A connected pair: A's client connection and B's accepted one. */
function pair(seed = 1, limits: Partial<TcpLimits> = {}, link = {}) {
  const sim = new TcpSim(seed, { delay: 5, ...link }, limits);
  sim.record = true;
  let server: TcpConnection | undefined;
  sim.b.listen(80, { mss: MSS, backlog: 8 }, (c) => {
    server = c;
  });
  const client = sim.a.connect({ ip: IP_A, port: 40000 }, { ip: IP_B, port: 80 }, { mss: MSS }, 0);
  sim.run(() => server !== undefined && client.state === 'ESTABLISHED');
  expect(server?.state).toBe('ESTABLISHED');
  return { sim, client, server: server! };
}

function closeLog(conn: TcpConnection): { closed: boolean; err: TcpError | undefined; ended: boolean } {
  const log = { closed: false, err: undefined as TcpError | undefined, ended: false };
  conn.onClose = (err) => {
    log.closed = true;
    log.err = err;
  };
  conn.onEnd = () => {
    log.ended = true;
  };
  return log;
}

describe('handshake', () => {
  it('negotiates MSS, window scale, SACK and timestamps; a 3-way handshake of 3 segments', () => {
    const sim = new TcpSim(2, { delay: 5 });
    sim.record = true;
    sim.b.listen(80, { mss: 1200, backlog: 8 }, () => {});
    const c = sim.a.connect({ ip: IP6_A, port: 0 }, { ip: IP6_B, port: 80 }, { mss: MSS }, 0);
    sim.run(() => c.state === 'ESTABLISHED');
    sim.advance(100);
    const flags = sim.sent.slice(0, 3).map((s) => parse(s.seg).flags);
    expect(flags).toEqual([SYN, SYN | ACK, ACK]);
    const info = c.info();
    expect(info).toMatchObject({ state: 'ESTABLISHED', mss: 1200 - 12, sack: true, timestamps: true, windowScale: [5, 5] });
    expect(c.local.port).toBeGreaterThanOrEqual(49152);
    expect(info.srtt).toBe(10);
  });

  it('falls back when the peer offers no options: MSS 536 (IPv4 default), no scaling', () => {
    const sim = new TcpSim(3, { delay: 5 }, {}, { timestamps: false, sack: false, windowScaling: false });
    sim.b.listen(80, { mss: MSS, backlog: 8 }, () => {});
    const c = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 80 }, { mss: MSS }, 0);
    sim.run(() => c.state === 'ESTABLISHED');
    expect(c.info()).toMatchObject({ mss: MSS, sack: false, timestamps: false, windowScale: [0, 0] });
  });

  it('simultaneous open (RFC 9293 figure 8): both SYN-RECEIVED, then ESTABLISHED, data flows', () => {
    const sim = new TcpSim(4, { delay: 5 });
    const a = sim.a.connect({ ip: IP_A, port: 5000 }, { ip: IP_B, port: 6000 }, { mss: MSS }, 0);
    const b = sim.b.connect({ ip: IP_B, port: 6000 }, { ip: IP_A, port: 5000 }, { mss: MSS }, 0);
    const seen = new Set<TcpState>();
    sim.run(() => {
      seen.add(a.state);
      return a.state === 'ESTABLISHED' && b.state === 'ESTABLISHED';
    });
    expect(seen.has('SYN-RECEIVED')).toBe(true);
    const got: number[] = [];
    b.onData = (d) => got.push(...d);
    a.write(new Uint8Array([1, 2, 3]), sim.now);
    sim.advance(100);
    expect(got).toEqual([1, 2, 3]);
  });

  it('connect to a port with no listener: RST, ECONNREFUSED', () => {
    const sim = new TcpSim(5, { delay: 5 });
    const c = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 81 }, { mss: MSS }, 0);
    const log = closeLog(c);
    sim.advance(100);
    expect(log.err).toBeInstanceOf(TcpError);
    expect(log.err?.code).toBe('ECONNREFUSED');
    expect(sim.b.counters['no-socket']).toBe(1);
    expect(sim.a.connectionCount).toBe(0);
  });

  it('SYNs to a black hole: retries with backoff, then ETIMEDOUT', () => {
    const sim = new TcpSim(6, { delay: 5, loss: 1 }, { synRetries: 3, rtoInitial: 1000 });
    const c = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 80 }, { mss: MSS }, 0);
    const log = closeLog(c);
    sim.run(() => log.closed);
    expect(log.err?.code).toBe('ETIMEDOUT');
    expect(sim.now).toBe(1000 + 2000 + 4000 + 8000); // RFC 6298 5.5: doubling
    expect(sim.a.counters.retransmits).toBe(3);
  });
});

describe('close', () => {
  it('orderly close: FIN-WAIT-1/2, CLOSE-WAIT, LAST-ACK; TIME-WAIT lasts 2*MSL', () => {
    const { sim, client, server } = pair(7, { msl: 1000 });
    const c = closeLog(client);
    const s = closeLog(server);
    client.shutdown(sim.now);
    expect(client.state).toBe('FIN-WAIT-1');
    sim.advance(50);
    expect([client.state, server.state, s.ended]).toEqual(['FIN-WAIT-2', 'CLOSE-WAIT', true]);
    server.write(new Uint8Array([9]), sim.now); // half close: the other direction still works
    server.shutdown(sim.now);
    expect(server.state).toBe('LAST-ACK');
    sim.advance(50);
    expect([client.state, c.closed, c.err, s.closed, s.err, c.ended]).toEqual(['TIME-WAIT', true, undefined, true, undefined, true]);
    expect(sim.a.connectionCount).toBe(1);
    const entered = sim.now - 45; // the FIN arrived 5 ms after it was sent
    sim.run(() => sim.a.connectionCount === 0);
    expect(sim.now - entered).toBeGreaterThanOrEqual(2000);
    expect(sim.now - entered).toBeLessThan(2100);
  });

  it('TIME-WAIT answers a retransmitted FIN with an ACK and restarts 2*MSL', () => {
    const { sim, client, server } = pair(8, { msl: 1000 });
    let dropAck = true;
    sim.filter = (seg, to) => {
      // Lose the client's first ACK of the server's FIN, so the server retransmits its FIN.
      if (to === 'b' && dropAck && client.state === 'TIME-WAIT') {
        dropAck = false;
        return false;
      }
      return true;
    };
    client.shutdown(sim.now);
    sim.advance(50);
    server.shutdown(sim.now);
    sim.run(() => server.state === 'CLOSED');
    expect(client.state).toBe('TIME-WAIT');
    expect(sim.b.counters.retransmits).toBe(1);
    expect(sim.a.counters['out-of-window']).toBe(1); // the old FIN, answered with an ACK
  });

  it('simultaneous close: both CLOSING, then both TIME-WAIT, no error', () => {
    const { sim, client, server } = pair(9);
    const c = closeLog(client);
    const s = closeLog(server);
    client.shutdown(sim.now);
    server.shutdown(sim.now);
    const seen = new Set<TcpState>();
    sim.run(() => {
      seen.add(client.state);
      return client.state === 'TIME-WAIT' && server.state === 'TIME-WAIT';
    }, 1000);
    expect(seen.has('CLOSING')).toBe(true);
    expect([c.closed, c.err, s.closed, s.err]).toEqual([true, undefined, true, undefined]);
  });

  it('abort sends RST: the peer gets ECONNRESET; onClose fires once for each', () => {
    const { sim, client, server } = pair(10);
    const c = closeLog(client);
    const s = closeLog(server);
    let fired = 0;
    const onClose = client.onClose!;
    client.onClose = (e) => {
      fired++;
      onClose(e);
    };
    client.abort(sim.now);
    client.abort(sim.now);
    sim.advance(50);
    expect([c.closed, c.err, fired]).toEqual([true, undefined, 1]);
    expect(s.err?.code).toBe('ECONNRESET');
    expect(sim.a.connectionCount + sim.b.connectionCount).toBe(0);
    expect(() => client.write(new Uint8Array(1), sim.now)).toThrow(TypeError);
  });
});

describe('RST in each state', () => {
  const states: [TcpState, (p: ReturnType<typeof pair>) => void, string | undefined][] = [
    ['ESTABLISHED', () => {}, 'ECONNRESET'],
    ['FIN-WAIT-1', (p) => {
      p.sim.filter = (_s, to) => to !== 'b';
      p.client.shutdown(p.sim.now);
    }, 'ECONNRESET'],
    ['FIN-WAIT-2', (p) => {
      p.client.shutdown(p.sim.now);
      p.sim.advance(50);
    }, 'ECONNRESET'],
    ['CLOSE-WAIT', (p) => {
      p.server.shutdown(p.sim.now);
      p.sim.advance(50);
    }, 'ECONNRESET'],
    ['LAST-ACK', (p) => {
      p.server.shutdown(p.sim.now);
      p.sim.advance(50);
      p.sim.filter = (_s, to) => to !== 'b';
      p.client.shutdown(p.sim.now);
    }, undefined],
    ['CLOSING', (p) => {
      p.sim.filter = () => false;
      p.client.shutdown(p.sim.now);
      p.server.shutdown(p.sim.now);
      // The server's FIN reaches the client below; the client's never reaches the server.
    }, undefined],
  ];
  for (const [state, setup, code] of states) {
    it(`${state}: a RST at RCV.NXT ends the connection (${code ?? 'no error'}); one off by one gets a challenge ACK (RFC 5961 3.2)`, () => {
      const p = pair(20);
      setup(p);
      if (state === 'CLOSING') {
        // Deliver the server's FIN to the client by hand.
        const fin = p.sim.sent.find((s) => s.to === 'a' && parse(s.seg).flags & FIN)!;
        p.sim.filter = undefined;
        p.sim.a.input(fin.seg.src, fin.seg.dst, fin.seg.bytes, p.sim.now);
      }
      expect(p.client.state).toBe(state);
      const log = closeLog(p.client);
      // Forge RSTs from B with the server's sequence numbers: find B's next sequence number.
      const lastFromB = [...p.sim.sent].reverse().find((s) => s.to === 'a')!;
      const last = parse(lastFromB.seg);
      const nxt = (last.seq + last.payload.length + (last.flags & (SYN | FIN) ? 1 : 0)) >>> 0;
      const rst = (seq: number) => buildSegment({ srcPort: 80, dstPort: 40000, seq, ack: 0, flags: RST, window: 0 }, pseudoHeaderSum(IP_B, IP_A, 0), 0);
      const challenges = p.sim.a.counters.challengeAcks;
      p.sim.a.input(IP_B, IP_A, rst((nxt + 1) >>> 0), p.sim.now);
      expect(p.client.state).toBe(state);
      expect(p.sim.a.counters.challengeAcks).toBe(challenges + 1);
      expect(p.sim.a.counters['rst-invalid']).toBe(1);
      p.sim.a.input(IP_B, IP_A, rst(nxt), p.sim.now);
      expect(p.client.state).toBe('CLOSED');
      expect([log.closed, log.err?.code]).toEqual([true, code]);
    });
  }

  it('SYN-SENT: a RST without an acceptable ACK is ignored, with one it refuses', () => {
    const sim = new TcpSim(21, { delay: 5 });
    sim.record = true;
    sim.filter = () => false;
    const c = sim.a.connect({ ip: IP_A, port: 40000 }, { ip: IP_B, port: 80 }, { mss: MSS }, 0);
    const log = closeLog(c);
    const syn = parse(sim.sent[0]!.seg);
    const rst = (ack: number, flags: number) => buildSegment({ srcPort: 80, dstPort: 40000, seq: 0, ack, flags, window: 0 }, pseudoHeaderSum(IP_B, IP_A, 0), 0);
    sim.a.input(IP_B, IP_A, rst(0, RST), 0);
    sim.a.input(IP_B, IP_A, rst(syn.seq, RST | ACK), 0);
    expect(c.state).toBe('SYN-SENT');
    sim.a.input(IP_B, IP_A, rst((syn.seq + 1) >>> 0, RST | ACK), 0);
    expect(log.err?.code).toBe('ECONNREFUSED');
  });

  it('SYN-RECEIVED (passive): a RST drops the half-open connection silently', () => {
    const sim = new TcpSim(22, { delay: 5 });
    let accepted = 0;
    sim.b.listen(80, { mss: MSS, backlog: 8 }, () => accepted++);
    sim.record = true;
    const syn = buildSegment({ srcPort: 1234, dstPort: 80, seq: 1000, ack: 0, flags: SYN, window: 65535, synMss: 1400 }, pseudoHeaderSum(IP_A, IP_B, 0), 0);
    sim.b.input(IP_A, IP_B, syn, 0);
    expect(sim.b.connectionCount).toBe(1);
    const rst = buildSegment({ srcPort: 1234, dstPort: 80, seq: 1001, ack: 0, flags: RST, window: 0 }, pseudoHeaderSum(IP_A, IP_B, 0), 0);
    sim.b.input(IP_A, IP_B, rst, 0);
    expect([sim.b.connectionCount, accepted]).toEqual([0, 0]);
  });

  it('a SYN in ESTABLISHED gets a challenge ACK and changes nothing (RFC 5961 4.2)', () => {
    const { sim, client } = pair(23);
    const syn = buildSegment({ srcPort: 80, dstPort: 40000, seq: 77, ack: 0, flags: SYN, window: 65535, synMss: 1400 }, pseudoHeaderSum(IP_B, IP_A, 0), 0);
    sim.a.input(IP_B, IP_A, syn, sim.now);
    expect(client.state).toBe('ESTABLISHED');
    expect(sim.a.counters['syn-in-window']).toBe(1);
  });
});

describe('flow control and timers', () => {
  it('zero window: the sender persists (probes with backoff) until the reader consumes, then all arrives', () => {
    const { sim, client, server } = pair(30, { receiveBuffer: 65535, sendBuffer: 1 << 20 });
    const data = randomData(30, 300_000);
    const chunks: Uint8Array[] = [];
    let taken = 0;
    server.onData = (d) => chunks.push(d); // the reader does not consume
    expect(client.write(data, sim.now)).toBe(data.length);
    sim.advance(60_000);
    const held = chunks.reduce((n, c) => n + c.length, 0);
    expect(held).toBeLessThanOrEqual(65535 + 1);
    expect(server.info().receiveWindow).toBe(0);
    const probesBefore = sim.a.counters.segmentsOut;
    sim.advance(60_000);
    const probes = sim.a.counters.segmentsOut - probesBefore;
    expect(probes).toBeGreaterThan(0); // persist timer keeps probing...
    expect(probes).toBeLessThan(10); // ...with exponential backoff
    expect(client.state).toBe('ESTABLISHED');
    server.onData = (d) => {
      chunks.push(d);
      taken += d.length;
      server.consumed(d.length, sim.now);
    };
    server.consumed(held, sim.now);
    sim.run(() => chunks.reduce((n, c) => n + c.length, 0) === data.length, 600_000);
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
    expect(taken).toBeGreaterThan(0);
  });

  it('send buffer full: write accepts what fits, onWritable fires when space opens', () => {
    const { sim, client, server } = pair(31, { sendBuffer: 10_000 });
    server.onData = (d) => server.consumed(d.length, sim.now);
    expect(client.write(new Uint8Array(25_000), sim.now)).toBe(10_000);
    expect(client.writableLength).toBe(0);
    expect(client.write(new Uint8Array(5), sim.now)).toBe(0);
    let writable = 0;
    client.onWritable = () => writable++;
    sim.advance(100);
    expect(writable).toBe(1);
    expect(client.writableLength).toBe(10_000);
  });

  it('retransmissions unanswered: RTO doubles from 200 ms to rtoMax, then ETIMEDOUT and a RST', () => {
    const { sim, client } = pair(32, { maxRetransmits: 5, rtoMax: 2000 });
    const log = closeLog(client);
    sim.filter = () => false;
    const start = sim.now;
    client.write(new Uint8Array(100), sim.now);
    sim.run(() => log.closed);
    expect(log.err?.code).toBe('ETIMEDOUT');
    expect(sim.a.counters.timeouts).toBe(6);
    expect(sim.now - start).toBe(200 + 400 + 800 + 1600 + 2000 + 2000);
    expect(sim.a.counters.resetsSent).toBe(1);
  });

  it('keepalive: probes after idle; an answering peer keeps it open, a silent one times it out', () => {
    const { sim, client } = pair(33, { keepAliveInterval: 1000, keepAliveProbes: 3 });
    const log = closeLog(client);
    client.setKeepAlive(true, sim.now, 5000);
    sim.advance(20_000);
    expect(client.state).toBe('ESTABLISHED');
    expect(sim.b.counters['out-of-window']).toBeGreaterThanOrEqual(3); // probes (SEQ = SND.UNA-1) answered
    sim.filter = () => false;
    const start = sim.now;
    sim.run(() => log.closed, 60_000);
    expect(log.err?.code).toBe('ETIMEDOUT');
    expect(sim.now - start).toBeLessThanOrEqual(5000 + 3 * 1000);
  });

  it('delayed ACK: one small segment is ACKed after delayedAck ms, two full ones at once', () => {
    const { sim, client, server } = pair(34, { delayedAck: 40 });
    server.onData = (d) => server.consumed(d.length, sim.now);
    sim.record = true;
    sim.sent.length = 0;
    client.setNoDelay(true);
    client.write(new Uint8Array(10), sim.now);
    const t0 = sim.now;
    sim.advance(200);
    const ack = sim.sent.find((s) => s.to === 'a')!;
    expect(ack.at - t0).toBe(5 + 40);
    sim.sent.length = 0;
    client.write(new Uint8Array(2 * client.info().mss), sim.now);
    const t1 = sim.now;
    sim.advance(200);
    const acks = sim.sent.filter((s) => s.to === 'a');
    expect(acks.length).toBe(1);
    expect(acks[0]!.at - t1).toBe(5);
  });

  it('Nagle: small writes wait for the ACK of outstanding data; setNoDelay sends each at once', () => {
    for (const noDelay of [false, true]) {
      const { sim, client, server } = pair(35);
      server.onData = (d) => server.consumed(d.length, sim.now);
      client.setNoDelay(noDelay);
      sim.record = true;
      sim.sent.length = 0;
      for (let i = 0; i < 5; i++) client.write(new Uint8Array(10), sim.now);
      const immediate = sim.sent.filter((s) => s.to === 'b' && parse(s.seg).payload.length > 0).length;
      expect(immediate).toBe(noDelay ? 5 : 1);
      sim.advance(100);
      const total = sim.sent.filter((s) => s.to === 'b').reduce((n, s) => n + parse(s.seg).payload.length, 0);
      expect(total).toBe(50);
    }
  });
});

describe('scale', () => {
  it('1,000 concurrent connections each move 4 KB both ways and close; TIME-WAIT drains', () => {
    const sim = new TcpSim(40, { delay: 5, jitter: 2, loss: 0.01 }, { receiveBuffer: 65536, sendBuffer: 65536, msl: 500 });
    const servers: Endpoint[] = [];
    sim.b.listen(80, { mss: MSS, backlog: 1024 }, (c) => servers.push(new Endpoint(c, randomData(c.remote.port, 4096), sim)));
    const clients: Endpoint[] = [];
    for (let i = 0; i < 1000; i++) {
      const c = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 80 }, { mss: MSS }, sim.now);
      clients.push(new Endpoint(c, randomData(i + 1, 4096), sim));
    }
    expect(sim.a.connectionCount).toBe(1000);
    sim.run(() => clients.every((c) => c.closed) && servers.length === 1000 && servers.every((s) => s.closed), 600_000);
    for (const c of clients) {
      expect(c.closeError).toBeUndefined();
      expect(c.received).toBe(4096);
      expect(c.digest()).toBe(sha256(randomData(c.conn.local.port, 4096)));
    }
    sim.run(() => sim.a.connectionCount + sim.b.connectionCount === 0, 10_000);
    expect(sim.a.connectionCount + sim.b.connectionCount).toBe(0);
    expect(sim.a.nextDeadline()).toBeUndefined();
  });
});

describe('loss recovery', () => {
  /** Sends 40 full segments and loses the 5th, 12th and 20th (first transmissions only). */
  function threeLosses(limits: Partial<TcpLimits>) {
    const { sim, client, server } = pair(60, { ...limits, rtoMin: 1000 });
    const got: Uint8Array[] = [];
    server.onData = (d) => {
      got.push(d);
      server.consumed(d.length, sim.now);
    };
    const mss = client.info().mss;
    const data = randomData(61, 40 * mss);
    // Open the congestion window first so all 40 go out in one flight.
    client.write(randomData(62, 200 * mss), sim.now);
    sim.run(() => got.reduce((n, c) => n + c.length, 0) === 200 * mss);
    got.length = 0;
    const seen = new Set<number>();
    let index = 0;
    sim.filter = (seg, to) => {
      if (to !== 'b') return true;
      const p = parse(seg);
      if (p.payload.length === 0 || seen.has(p.seq)) return true;
      seen.add(p.seq);
      index++;
      return index !== 5 && index !== 12 && index !== 20;
    };
    const start = sim.now;
    const before = { ...sim.a.counters };
    client.write(data, sim.now);
    sim.run(() => got.reduce((n, c) => n + c.length, 0) === data.length, 60_000);
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
    return {
      elapsed: sim.now - start,
      retransmits: sim.a.counters.retransmits - before.retransmits,
      timeouts: sim.a.counters.timeouts - before.timeouts,
      fast: sim.a.counters.fastRetransmits - before.fastRetransmits,
    };
  }

  it('with SACK, three losses in one window are repaired in one recovery, each sent once, no RTO', () => {
    const r = threeLosses({ sack: true });
    expect(r).toMatchObject({ retransmits: 3, timeouts: 0, fast: 1 });
    expect(r.elapsed).toBeLessThan(20); // all three holes go in the first round trip of recovery (RTT 10 ms)
  });

  it('without SACK, NewReno repairs them one per round trip via partial ACKs (RFC 6582), no RTO', () => {
    const r = threeLosses({ sack: false });
    expect(r).toMatchObject({ retransmits: 3, timeouts: 0, fast: 1 });
    expect(r.elapsed).toBeGreaterThanOrEqual(30); // one hole per round trip
  });
});

describe('FIN-WAIT-2', () => {
  it('waits for the peer indefinitely by default; with finWait2Timeout a silent peer times out', () => {
    for (const finWait2Timeout of [0, 5000]) {
      const { sim, client } = pair(70, { finWait2Timeout });
      const log = closeLog(client);
      client.shutdown(sim.now);
      sim.advance(50);
      expect(client.state).toBe('FIN-WAIT-2');
      sim.advance(100_000);
      expect([client.state, log.err?.code]).toEqual(finWait2Timeout ? ['CLOSED', 'ETIMEDOUT'] : ['FIN-WAIT-2', undefined]);
    }
  });
});
