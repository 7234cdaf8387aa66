// The device's configuration contract: a typed transaction in (Device.apply), typed snapshots out
// (Device.snapshot, peer, peers). Raw 32-byte keys, Endpoint objects, parsed prefixes; no text.
// The semantics are wireguard-go's UAPI `set=1` / `get=1` (device/uapi.go): src/uapi/ parses text
// into a DeviceTransaction and prints a DeviceSnapshot, Device.configure converts a DeviceConfig.

import type { Endpoint } from '../core/endpoint.js';
import type { PeerChangeList } from './peer-changes.js';

/** A peer endpoint, plus an IPv6 scope zone if one was given ("[fe80::1%eth0]:51820"). */
export interface PeerEndpoint extends Endpoint {
  /** An interface name or index; not printed back (as wireguard-go). */
  readonly zone?: string | undefined;
}

/** Add `ip/cidr` to the peer, or with `remove` take it away (only if the peer owns it). */
export interface AllowedIpChange {
  /** 4 or 16 bytes, host bits as written (the allowed-IPs table masks them). */
  readonly ip: Uint8Array;
  /** 0..32 for IPv4, 0..128 for IPv6. */
  readonly cidr: number;
  readonly remove?: boolean;
}

/**
 * One peer's change. Absent or undefined fields are left unchanged. Changes apply in order; a
 * public key may appear in several. Keys are copied: the caller may wipe its buffers afterwards.
 */
export interface PeerChange {
  /** 32 bytes; may be all zero (wireguard-go creates such a peer). */
  readonly publicKey: Uint8Array;
  /** Delete the peer (creating nothing); the other fields are ignored. */
  readonly remove?: boolean;
  /** If the peer does not exist when this change applies, skip it. */
  readonly updateOnly?: boolean;
  /** 32 bytes; null (or all zero) = no pre-shared key. */
  readonly presharedKey?: Uint8Array | null | undefined;
  readonly endpoint?: PeerEndpoint | undefined;
  /** Seconds, 0..65535; 0 turns persistent keepalive off. */
  readonly persistentKeepaliveInterval?: number | undefined;
  /** Remove every allowed IP of the peer before applying {@link allowedIps}. */
  readonly replaceAllowedIps?: boolean;
  readonly allowedIps?: Iterable<AllowedIpChange>;
}

/**
 * A configuration change, applied as one step (Device.apply) in this order: private key (a peer
 * with the new public key is removed, changes for that key are ignored), listen port, fwmark,
 * replacePeers, then the peer changes in order. Absent or undefined fields are left unchanged.
 */
export interface DeviceTransaction {
  /** 32 bytes (clamped per RFC 7748 when applied); null (or all zero) removes the key. */
  readonly privateKey?: Uint8Array | null | undefined;
  /** 0..65535; 0 means "pick any free port". */
  readonly listenPort?: number | undefined;
  /** 0..2^32-1; 0 clears the mark. */
  readonly fwmark?: number | undefined;
  /** Remove every existing peer before applying {@link peers}. */
  readonly replacePeers?: boolean;
  readonly peers?: Iterable<PeerChange>;
}

/**
 * A transaction the device's own writers made (Device.configure, the UAPI parser): every field
 * present, the peer changes packed (peer-changes.ts) and valid by construction.
 */
export interface PackedTransaction extends DeviceTransaction {
  readonly privateKey: Uint8Array | null | undefined;
  readonly listenPort: number | undefined;
  readonly fwmark: number | undefined;
  readonly replacePeers: boolean;
  readonly peers: PeerChangeList;
}

/** Zeroes the secrets a packed transaction holds (its private key, its peers' keys) after apply:
 *  the device keeps its own copies. */
export function wipeTransaction(tx: PackedTransaction): void {
  tx.privateKey?.fill(0);
  tx.peers.wipe();
}

/** One allowed-IPs entry as stored: `ip` is 4 or 16 bytes with host bits masked. */
export interface AllowedIp {
  readonly ip: Uint8Array;
  readonly cidr: number;
}

/** One peer as of the snapshot; keys are copies. */
export interface PeerSnapshot {
  /** 32 bytes. */
  readonly publicKey: Uint8Array;
  /** 32 bytes, or null when the peer has none. */
  readonly presharedKey: Uint8Array | null;
  /** null while no endpoint is known. */
  readonly endpoint: PeerEndpoint | null;
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
   * The peer's prefixes in insertion order (wireguard-go's get=1 order). Iterated lazily: a
   * change applied meanwhile shows (the UAPI server holds its lock while it drains a reply).
   */
  readonly allowedIps: Iterable<AllowedIp>;
}

/** The device's configuration and counters. */
export interface DeviceSnapshot {
  /** 32 bytes (a copy), or null when no private key is set. */
  readonly privateKey: Uint8Array | null;
  /** The bound UDP port; 0 when not bound. */
  readonly listenPort: number;
  /** 0 when unset. */
  readonly fwmark: number;
  /** Iterated lazily, like {@link PeerSnapshot.allowedIps}. */
  readonly peers: Iterable<PeerSnapshot>;
}
