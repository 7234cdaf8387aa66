// STUN both ways on the WireGuard port: one StunClient (NAT discovery, relay bindings, direct-path
// probes to peers) and one StunResponder, so a peer's probe sent to our WireGuard endpoint gets a
// Binding success back from the same socket. A probe that is answered proves the direct path works
// in both directions through both NATs, and the probes both sides send at once are what punches the
// holes (docs/nat.md "Direct-path probes"). Demultiplexing from WireGuard is the device's
// (setForeignHandler: RFC 8489 section 7 cookie and length test).

import type { Endpoint } from '../io/bind.js';
import type { RawDatagramSocket } from './device-stun.js';
import { StunClient, type StunClientOptions } from './stun-client.js';
import { decodeStun } from './stun-message.js';
import { StunResponder } from './stun-server.js';

/** STUN client and server sharing a device's WireGuard socket. */
export interface PortStun {
  /** Requests leave from the WireGuard port; answers come back through the device. */
  readonly client: StunClient;
  /** Answers Binding requests arriving at the WireGuard port (peers' probes). */
  readonly responder: StunResponder;
  /** Closes the client (pending requests end 'closed') and detaches from the device. Idempotent. */
  close(): void;
}

/**
 * Attaches a STUN client and responder to `device` (replacing any foreign handler). `now` gives
 * monotonic ms for the responder's rate limit (default performance.now).
 */
export function attachPortStun(device: RawDatagramSocket, options: Omit<StunClientOptions, 'send'> = {}, now: () => number = () => performance.now()): PortStun {
  const client = new StunClient({ ...options, send: (data, to) => device.sendRaw(data, to) });
  const responder = new StunResponder({ software: null });
  let closed = false;
  device.setForeignHandler((data: Uint8Array, from: Endpoint) => {
    // Requests go to the responder; everything else to the client, which checks transaction
    // and source and counts what it drops.
    const decoded = decodeStun(data);
    if (decoded.ok && decoded.message.cls === 'request') {
      const action = responder.handleMessage(decoded.message, from, now());
      if (action.kind === 'reply') device.sendRaw(action.data, from);
      return;
    }
    client.receive(data, from);
  });
  return {
    client,
    responder,
    close() {
      if (closed) return;
      closed = true;
      client.close();
      device.setForeignHandler(undefined);
    },
  };
}
