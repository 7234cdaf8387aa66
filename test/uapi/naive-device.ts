// The slow twin of the device's configuration semantics (STYLE.md 10): applies parsed `set=1`
// transactions with wireguard-go's rules (device/uapi.go, device/allowedips.go) to plain maps,
// written the obvious way. Only the UAPI fuzz test uses it, as the reference a real (memory-backed)
// Device is compared with; tests that need a handler use a Device (helpers/memory-device.ts).

import type { AllowedIp as UapiAllowedIp, DeviceSnapshot as UapiDeviceSnapshot, PeerEndpoint as UapiEndpoint, PeerSnapshot as UapiPeerSnapshot } from '../../src/device/contract.js';
import type { UapiHandler } from '../../src/uapi/handler.js';
import type { SetTransaction } from '../../src/uapi/protocol.js';

/** One peer of a {@link NaiveDevice}; counters are writable so tests can set them. */
export interface MemoryPeer {
  readonly publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: UapiEndpoint | null;
  persistentKeepaliveInterval: number;
  lastHandshakeTimeSec: number;
  lastHandshakeTimeNsec: number;
  txBytes: number | bigint;
  rxBytes: number | bigint;
  /** Masked prefixes in insertion order, keyed by {@link prefixId}. */
  readonly allowedIps: Map<string, UapiAllowedIp>;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

/** A compact Map key for a masked prefix: one char per address byte, then the cidr. */
function prefixId(entry: UapiAllowedIp): string {
  const b = entry.ip;
  let s = String.fromCharCode(entry.cidr);
  for (let i = 0; i < b.length; i += 2) s += String.fromCharCode((b[i]! << 8) | b[i + 1]!);
  return s;
}

function masked(ip: Uint8Array, cidr: number): UapiAllowedIp {
  const out = new Uint8Array(ip);
  const whole = cidr >> 3;
  if (whole < out.length) {
    out[whole] = out[whole]! & (0xff00 >> (cidr & 7));
    out.fill(0, whole + 1);
  }
  return { ip: out, cidr };
}

/**
 * A UapiHandler over plain maps. `publicKeyOf` derives a public key from a private key (pass the
 * crypto provider's X25519); when given, peers with the device's own public key are ignored and
 * removed as wireguard-go does. `bindPort` stands in for binding: it maps a requested port
 * (0 = any) to the bound one, or throws UapiError('ERR_UAPI_PORT_IN_USE', ...).
 */
export class NaiveDevice implements UapiHandler {
  privateKey: Uint8Array | null = null;
  listenPort = 0;
  fwmark = 0;
  /** Peers by hex public key, in creation order. */
  readonly peers = new Map<string, MemoryPeer>();
  /** Owner (hex public key) of each allowed-IPs entry, keyed by {@link prefixId}. */
  private readonly owners = new Map<string, string>();
  private readonly publicKeyOf: ((privateKey: Uint8Array) => Uint8Array) | undefined;
  private readonly bindPort: (port: number) => number;

  constructor(options: { publicKeyOf?: (privateKey: Uint8Array) => Uint8Array; bindPort?: (port: number) => number } = {}) {
    this.publicKeyOf = options.publicKeyOf;
    this.bindPort = options.bindPort ?? ((port) => port);
  }

  snapshot(): UapiDeviceSnapshot {
    const peers: UapiPeerSnapshot[] = [];
    for (const p of this.peers.values()) {
      peers.push({ ...p, allowedIps: p.allowedIps.values() });
    }
    return { privateKey: this.privateKey, listenPort: this.listenPort, fwmark: this.fwmark, peers };
  }

  apply(tx: SetTransaction): void {
    if (tx.listenPort !== undefined) this.listenPort = this.bindPort(tx.listenPort);
    let ownKey: string | undefined;
    if (tx.privateKey !== undefined) {
      this.privateKey = tx.privateKey;
      if (tx.privateKey !== null && this.publicKeyOf !== undefined) {
        ownKey = hex(this.publicKeyOf(tx.privateKey));
        this.removePeer(ownKey);
      }
    } else if (this.privateKey !== null && this.publicKeyOf !== undefined) {
      ownKey = hex(this.publicKeyOf(this.privateKey));
    }
    if (tx.fwmark !== undefined) this.fwmark = tx.fwmark;
    if (tx.replacePeers) for (const key of [...this.peers.keys()]) this.removePeer(key);

    for (const op of tx.peers) {
      const key = hex(op.publicKey);
      if (key === ownKey) continue;
      let peer = this.peers.get(key);
      if (op.remove) {
        this.removePeer(key);
        continue;
      }
      if (peer === undefined) {
        if (op.updateOnly) continue;
        peer = {
          publicKey: new Uint8Array(op.publicKey),
          presharedKey: null,
          endpoint: null,
          persistentKeepaliveInterval: 0,
          lastHandshakeTimeSec: 0,
          lastHandshakeTimeNsec: 0,
          txBytes: 0,
          rxBytes: 0,
          allowedIps: new Map(),
        };
        this.peers.set(key, peer);
      }
      if (op.presharedKey !== undefined) peer.presharedKey = op.presharedKey;
      if (op.endpoint !== undefined) peer.endpoint = op.endpoint;
      if (op.persistentKeepaliveInterval !== undefined) peer.persistentKeepaliveInterval = op.persistentKeepaliveInterval;
      if (op.replaceAllowedIps) this.clearAllowedIps(peer);
      for (const a of op.allowedIps) {
        const entry = masked(a.ip, a.cidr);
        const id = prefixId(entry);
        const owner = this.owners.get(id);
        if (a.remove) {
          if (owner === key) {
            this.owners.delete(id);
            peer.allowedIps.delete(id);
          }
          continue;
        }
        // Re-inserting moves the entry to the end of its new owner's list (allowedips.go insert).
        if (owner !== undefined) this.peers.get(owner)?.allowedIps.delete(id);
        this.owners.set(id, key);
        peer.allowedIps.set(id, entry);
      }
    }
  }

  private clearAllowedIps(peer: MemoryPeer): void {
    for (const id of peer.allowedIps.keys()) this.owners.delete(id);
    peer.allowedIps.clear();
  }

  private removePeer(key: string): void {
    const peer = this.peers.get(key);
    if (peer === undefined) return;
    this.clearAllowedIps(peer);
    this.peers.delete(key);
  }
}
