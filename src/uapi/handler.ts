// The device-facing side of the UAPI server: the device's typed contract (device/contract.ts) in
// and out. A Device implements UapiHandler; the server never touches peers.

import type { DeviceSnapshot, DeviceTransaction } from '../device/contract.js';

/**
 * What the UAPI server needs from a device (a Device is one). Calls never overlap: the server
 * runs one set at a time and no get while a set is applying (wireguard-go's ipcMutex).
 */
export interface UapiHandler {
  /** The current configuration and statistics for get=1. */
  snapshot(): DeviceSnapshot;
  /**
   * Applies a transaction that parsed completely (see DeviceTransaction for the order). A
   * failure is answered with toUapiError's errno: DeviceError ERR_DEVICE_INVALID -22,
   * ERR_DEVICE_PORT_IN_USE -98 (wireguard-go's EADDRINUSE), anything else -55.
   */
  apply(tx: DeviceTransaction): Promise<void> | void;
}
