// NATs for the MemoryNetwork (src/io/bind-memory.ts filters): private addresses behind one public
// address, endpoint-independent (port-preserving, like MASQUERADE) or symmetric (a new port per
// destination, like MASQUERADE --random-fully), both with port-restricted filtering like Linux
// conntrack: inbound only from remote endpoints the inside host has sent to.

import type { MemoryDatagram, MemoryFilter } from '../../src/io/bind-memory.js';
import type { Endpoint } from '../../src/io/bind.js';

/** How a NAT chooses the public port. */
export type NatMapping = 'endpoint-independent' | 'symmetric';

interface Mapping {
  readonly inside: Endpoint;
  readonly publicPort: number;
  readonly allowed: Set<string>;
}

const text = (e: Endpoint) => `${e.address}:${e.port}`;

/** One NAT box. */
export class MemoryNat {
  readonly publicAddress: string;
  readonly #inside: ReadonlySet<string>;
  readonly #mode: NatMapping;
  readonly #byKey = new Map<string, Mapping>();
  readonly #byPort = new Map<number, Mapping>();
  #nextPort = 40_000;
  /** Inbound datagrams the NAT refused (no mapping, or a remote the inside never sent to). */
  refused = 0;

  constructor(insideAddresses: readonly string[], publicAddress: string, mode: NatMapping) {
    this.#inside = new Set(insideAddresses);
    this.publicAddress = publicAddress;
    this.#mode = mode;
  }

  /** Source translation of datagrams leaving the inside. */
  outbound(d: MemoryDatagram): MemoryDatagram {
    if (!this.#inside.has(d.from.address) || this.#inside.has(d.to.address)) return d;
    const key = this.#mode === 'endpoint-independent' ? text(d.from) : `${text(d.from)}>${text(d.to)}`;
    let m = this.#byKey.get(key);
    if (m === undefined) {
      let port = this.#mode === 'endpoint-independent' && !this.#byPort.has(d.from.port) ? d.from.port : this.#nextPort++;
      while (this.#byPort.has(port)) port = this.#nextPort++;
      m = { inside: { ...d.from }, publicPort: port, allowed: new Set() };
      this.#byKey.set(key, m);
      this.#byPort.set(port, m);
    }
    m.allowed.add(text(d.to));
    return { from: { address: this.publicAddress, port: m.publicPort }, to: d.to, data: d.data };
  }

  /** Destination translation of datagrams arriving at the public address; null = refused. */
  inbound(d: MemoryDatagram): MemoryDatagram | null {
    if (d.to.address !== this.publicAddress) return d;
    const m = this.#byPort.get(d.to.port);
    if (m === undefined || !m.allowed.has(text(d.from))) {
      this.refused++;
      return null;
    }
    return { from: d.from, to: m.inside, data: d.data };
  }
}

/** A MemoryNetwork filter for several NATs: every source translation first, then destinations. */
export function natFilter(...nats: MemoryNat[]): MemoryFilter {
  return (d) => {
    let out: MemoryDatagram | null = d;
    for (const n of nats) out = n.outbound(out);
    for (const n of nats) {
      if (out === null) return null;
      out = n.inbound(out);
    }
    return out;
  };
}
