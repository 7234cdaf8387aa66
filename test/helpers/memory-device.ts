// A Device on the memory twins (MemoryBind on a private MemoryNetwork, packet-callback mode, a
// manual clock): the real configuration semantics without sockets, for tests that need a UAPI
// handler or a device to compare with.

import { Device } from '../../src/device/device.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { ManualClock } from '../../src/io/clock.js';

/** A memory-backed Device bound to `listenPort` (default 51820) on `net` (default its own). Close it when done. */
export function memoryDevice(listenPort = 51820, net = new MemoryNetwork()): Promise<Device> {
  return Device.create({ bind: net.createBind(['10.0.0.1']), onPacket: () => {}, clock: new ManualClock(), listenPort });
}
