// The device-facing side of the UAPI server: plain data in (a parsed SetTransaction), plain data
// out (a snapshot for get=1). The device implements UapiHandler; the server never touches peers.

import type { SetTransaction, UapiEndpoint } from './protocol.js';

/** One allowed-IPs entry as stored: `ip` is 4 or 16 bytes with host bits already masked. */
export interface UapiAllowedIp {
  readonly ip: Uint8Array;
  readonly cidr: number;
}

/** One peer as get=1 reports it. */
export interface UapiPeerSnapshot {
  /** 32 bytes. */
  readonly publicKey: Uint8Array;
  /** 32 bytes, or null when the peer has none (printed as 64 zeros, like wireguard-go). */
  readonly presharedKey: Uint8Array | null;
  /** null when no endpoint is known yet (the line is then omitted). */
  readonly endpoint: UapiEndpoint | null;
  /** Wall-clock time of the last completed handshake since the Unix epoch; 0 and 0 for never. */
  readonly lastHandshakeTimeSec: number;
  /** Nanoseconds part, 0..999,999,999. */
  readonly lastHandshakeTimeNsec: number;
  /** Bytes sent / received including WireGuard overhead, as wireguard-go counts them. */
  readonly txBytes: number | bigint;
  readonly rxBytes: number | bigint;
  /** Seconds; 0 when off. */
  readonly persistentKeepaliveInterval: number;
  /**
   * The peer's prefixes in the order get=1 should list them (wireguard-go: insertion order).
   * Iterated lazily, possibly across event-loop turns while the reply drains; the server holds
   * its UAPI lock meanwhile so no set applies, but anything else that mutates them must not.
   */
  readonly allowedIps: Iterable<UapiAllowedIp>;
}

/** The device as get=1 reports it. */
export interface UapiDeviceSnapshot {
  /** 32 bytes, or null when no private key is set (the line is then omitted). */
  readonly privateKey: Uint8Array | null;
  /** The bound UDP port; 0 when not bound (the line is then omitted). */
  readonly listenPort: number;
  /** 0 when unset (the line is then omitted). */
  readonly fwmark: number;
  /** Iterated lazily, like {@link UapiPeerSnapshot.allowedIps}. */
  readonly peers: Iterable<UapiPeerSnapshot>;
}

/**
 * What the UAPI server needs from a device. Calls never overlap: the server runs one set at a
 * time and no get while a set is applying (wireguard-go's ipcMutex).
 */
export interface UapiHandler {
  /** The current configuration and statistics for get=1. */
  snapshot(): UapiDeviceSnapshot;
  /**
   * Applies a transaction that parsed completely, with the effect of this order: private key
   * (a peer whose public key equals the device's new public key is removed, and sections for
   * that key are ignored), listen port, fwmark, replace_peers, then the peer sections in order.
   * Throw UapiError for a semantic failure, e.g. ERR_UAPI_PORT_IN_USE when the port cannot be
   * bound or the fwmark cannot be set (wireguard-go reports both as EADDRINUSE); any other
   * exception is reported as ERR_UAPI_UNKNOWN (-55). Validate before mutating where possible.
   */
  apply(tx: SetTransaction): Promise<void> | void;
}
