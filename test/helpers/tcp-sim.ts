// Two TCP engines back to back over a simulated link (seeded loss, duplication, reordering
// jitter, fixed delay) under a manual clock that jumps to the next event: the "pair driver" of
// STYLE.md item 11 for src/net/tcp*.ts.

import { createHash } from 'node:crypto';
import { TcpEngine, type TcpConnection, type TcpLimits, type TcpSegmentOut } from '../../src/net/tcp.js';
import { prng } from './prng.js';

export const IP_A = new Uint8Array([10, 0, 0, 1]);
export const IP_B = new Uint8Array([10, 0, 0, 2]);
export const IP6_A = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
export const IP6_B = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

/** Link behaviour, per direction the same. Probabilities in [0, 1], times in ms. */
export interface LinkOptions {
  delay: number;
  jitter: number; // extra uniform random delay: reorders segments
  loss: number;
  duplicate: number;
}

export type Side = 'a' | 'b';

interface InFlight {
  at: number;
  order: number;
  to: Side;
  seg: TcpSegmentOut;
}

/** A seeded random-bytes source for the engines (not for crypto). */
export function seededBytes(seed: number): (n: number) => Uint8Array {
  const next = prng(seed);
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
    return out;
  };
}

export class TcpSim {
  now = 0;
  readonly a: TcpEngine;
  readonly b: TcpEngine;
  link: LinkOptions;
  /** Sees every segment before the link: return false to drop it. */
  filter: ((seg: TcpSegmentOut, to: Side) => boolean) | undefined;
  /** Every segment handed to the link, with its direction. */
  readonly sent: { to: Side; seg: TcpSegmentOut; at: number }[] = [];
  record = false;
  readonly #rng: () => number;
  readonly #queue: InFlight[] = [];
  #order = 0;

  constructor(seed: number, link: Partial<LinkOptions> = {}, limits: Partial<TcpLimits> = {}, limitsB: Partial<TcpLimits> = limits) {
    this.#rng = prng(seed);
    this.link = { delay: 5, jitter: 0, loss: 0, duplicate: 0, ...link };
    this.a = new TcpEngine({ send: (s) => this.#transmit(s, 'b'), random: seededBytes(seed + 1), limits });
    this.b = new TcpEngine({ send: (s) => this.#transmit(s, 'a'), random: seededBytes(seed + 2), limits: limitsB });
  }

  /** Puts a segment on the link toward `to` (also used by tests to inject crafted segments). */
  inject(seg: TcpSegmentOut, to: Side, delay = 0): void {
    this.#push({ at: this.now + delay, order: this.#order++, to, seg });
  }

  #transmit(seg: TcpSegmentOut, to: Side): void {
    if (this.record) this.sent.push({ to, seg, at: this.now });
    if (this.filter !== undefined && !this.filter(seg, to)) return;
    const l = this.link;
    if (l.loss > 0 && this.#rng() < l.loss) return;
    const copies = l.duplicate > 0 && this.#rng() < l.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.now + l.delay + (l.jitter > 0 ? this.#rng() * l.jitter : 0);
      this.#push({ at, order: this.#order++, to, seg });
    }
  }

  /** Advances the clock event by event until `done()` or `limit` ms of simulated time pass. */
  run(done: () => boolean = () => false, limit = 600_000): void {
    const end = this.now + limit;
    while (!done()) {
      const next = Math.min(this.#queue[0]?.at ?? Infinity, this.a.nextDeadline() ?? Infinity, this.b.nextDeadline() ?? Infinity);
      if (next === Infinity || next > end) {
        if (next > end) this.now = end;
        return;
      }
      if (next > this.now) this.now = next;
      while (this.#queue.length > 0 && this.#queue[0]!.at <= this.now) {
        const f = this.#pop();
        const engine = f.to === 'a' ? this.a : this.b;
        engine.input(f.seg.src, f.seg.dst, f.seg.bytes, this.now);
      }
      this.a.tick(this.now);
      this.b.tick(this.now);
    }
  }

  /** Runs for `ms` of simulated time. */
  advance(ms: number): void {
    this.run(() => false, ms);
  }

  get inFlight(): number {
    return this.#queue.length;
  }

  #push(f: InFlight): void {
    const q = this.#queue;
    q.push(f);
    let i = q.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(q[p]!, f)) break;
      q[i] = q[p]!;
      i = p;
    }
    q[i] = f;
  }

  #pop(): InFlight {
    const q = this.#queue;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= q.length) break;
        const r = l + 1;
        const c = r < q.length && before(q[r]!, q[l]!) ? r : l;
        if (before(last, q[c]!)) break;
        q[i] = q[c]!;
        i = c;
      }
      q[i] = last;
    }
    return top;
  }
}

function before(x: InFlight, y: InFlight): boolean {
  return x.at < y.at || (x.at === y.at && x.order < y.order);
}

/** Deterministic pseudo-random data of `size` bytes. */
export function randomData(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
    out[i + 1] = x >>> 8;
    out[i + 2] = x >>> 16;
    out[i + 3] = x >>> 24;
  }
  return out;
}

/** Streams `data` into `conn` with backpressure, then shuts down; counts and hashes what arrives. */
export class Endpoint {
  readonly hash = createHash('sha256');
  received = 0;
  ended = false;
  closed = false;
  closeError: Error | undefined;
  #sent = 0;

  readonly conn: TcpConnection;
  readonly data: Uint8Array;
  readonly sim: TcpSim;
  readonly chunk: number;

  constructor(conn: TcpConnection, data: Uint8Array, sim: TcpSim, chunk = 65536) {
    this.conn = conn;
    this.data = data;
    this.sim = sim;
    this.chunk = chunk;
    conn.onData = (d) => {
      this.received += d.length;
      this.hash.update(d);
      conn.consumed(d.length, sim.now);
    };
    conn.onEnd = () => {
      this.ended = true;
    };
    conn.onClose = (err) => {
      this.closed = true;
      this.closeError = err;
    };
    conn.onWritable = () => this.pump();
    if (conn.state === 'ESTABLISHED') this.pump();
    else conn.onConnected = () => this.pump();
  }

  pump(): void {
    while (this.#sent < this.data.length) {
      const n = this.conn.write(this.data.subarray(this.#sent, this.#sent + this.chunk), this.sim.now);
      this.#sent += n;
      if (n === 0) return;
    }
    if (this.conn.state === 'ESTABLISHED' || this.conn.state === 'CLOSE-WAIT') this.conn.shutdown(this.sim.now);
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const MSS = 1360;

/** A client on A and a server on B each stream `size` seeded bytes to the other, then close. */
export function transfer(seed: number, size: number, link: Partial<LinkOptions>, limits: Partial<TcpLimits> = {}) {
  const sim = new TcpSim(seed, link, limits);
  const dataA = randomData(seed * 7 + 1, size);
  const dataB = randomData(seed * 7 + 2, size);
  let server: Endpoint | undefined;
  sim.b.listen(80, { mss: MSS, backlog: 16 }, (c) => {
    server = new Endpoint(c, dataB, sim);
  });
  const conn = sim.a.connect({ ip: IP_A, port: 0 }, { ip: IP_B, port: 80 }, { mss: MSS }, sim.now);
  const client = new Endpoint(conn, dataA, sim);
  const t0 = performance.now();
  sim.run(() => client.closed && server !== undefined && server.closed, 36_000_000);
  const ms = performance.now() - t0;
  return { sim, client, server: server!, dataA, dataB, conn, ms };
}

