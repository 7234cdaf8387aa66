// STUN from the WireGuard port: a StunClient whose requests leave through the device's own UDP
// socket (Device.sendRaw) and whose answers come back through the device's STUN demultiplexer
// (Device.setForeignHandler), so the mapping it learns is the one peers must use (plexd-api.md:
// "STUN is sent from the WireGuard port itself").

import type { Endpoint, SendResult } from '../io/bind.js';
import { StunClient, type StunClientOptions } from './stun-client.js';

/** What the client needs of a device (structurally, src/device/device.ts's Device). */
export interface RawDatagramSocket {
  setForeignHandler(handler: ((data: Uint8Array, from: Endpoint) => void) | undefined): void;
  sendRaw(data: Uint8Array, to: Endpoint): SendResult;
}

/**
 * A StunClient on `device`'s WireGuard socket. Replaces any foreign handler; close() the client
 * and call `device.setForeignHandler(undefined)` to detach.
 */
export function stunOverDevice(device: RawDatagramSocket, options: Omit<StunClientOptions, 'send'> = {}): StunClient {
  const client = new StunClient({ ...options, send: (data, to) => device.sendRaw(data, to) });
  device.setForeignHandler((data, from) => void client.receive(data, from));
  return client;
}
