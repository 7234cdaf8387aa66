// The library entry point: `import { Device } from 'plexd-userspace'`.

export { Device, defaultCrypto } from './device/device.js';
export { formatEndpoint } from './core/endpoint.js';
export type { DeviceOptions, DeviceCounters } from './device/device.js';
export { DIAGNOSTICS_CHANNELS } from './device/diagnostics.js';
export type { CookieSentMessage, DropMessage, PeerEventMessage } from './device/diagnostics.js';
export type { DeviceConfig, PeerConfig, KeyInput } from './device/config.js';
export type {
  AllowedIp,
  AllowedIpChange,
  DeviceSnapshot,
  DeviceTransaction,
  PeerChange,
  PeerEndpoint,
  PeerSnapshot,
} from './device/contract.js';
export { DeviceError } from './device/errors.js';
export { OsError, PlexdError, hasCode } from './errors.js';
export { BindError, TunError } from './io/errors.js';
export type { DeviceErrorCode } from './device/errors.js';
export type { Endpoint } from './core/endpoint.js';
export { nodeCrypto } from './crypto/node.js';
export * as core from './core/index.js';
export type { Tun, TunOptions } from './io/tun.js';
export { openTun } from './io/tun-linux.js';
export { MemoryTun } from './io/tun-memory.js';
export type { Bind } from './io/bind.js';
export { UdpBind } from './io/bind-udp.js';
export { MemoryNetwork, MemoryBind } from './io/bind-memory.js';
export { systemClock, ManualClock } from './io/clock.js';
export type { Clock } from './io/clock.js';
export { createLogger } from './log/logger.js';
export type { Logger, LogLevel } from './log/logger.js';
export { startUapiServer, uapiRequest } from './uapi/server.js';
export { UapiError } from './uapi/errors.js';
