// Reconcile: turn the control plane's authoritative peer list into the smallest DeviceConfig that
// makes the device match it. Peers that did not change are not touched at all (their sessions and
// handshakes survive); changed ones get only the changed fields; vanished ones are removed one by
// one. Never replace_peers, which would drop every session.
//
// Endpoints: the control plane's `endpoint`, else the peer's first candidate, else its relay.
// WireGuard learns a peer's endpoint from authenticated packets (roaming), so an
// endpoint is (re)applied only when the control plane's value differs from the one we last applied,
// not whenever the device currently uses another one.

import type { PeerInfo } from '../api/types.js';
import { decodeBase64 } from '../api/fields.js';
import type { DeviceConfig, PeerConfig } from '../device/config.js';
import type { DeviceSnapshot } from '../device/contract.js';
import { formatPrefix, parsePrefix } from '../core/ip.js';

/** The outcome of planning: the config to apply (undefined when nothing changes or the state is
 *  refused) and a summary. */
export interface ReconcilePlan {
  readonly config: DeviceConfig | undefined;
  /** Why the desired state was refused as a whole (the device is left as it is), if it was. */
  readonly refused?: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  /** Peers skipped as unusable (bad key, our own key), with the reason. */
  readonly skipped: readonly string[];
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function canonical(text: string): string {
  const prefix = parsePrefix(text);
  return prefix === undefined ? text : formatPrefix(prefix.ip, prefix.cidr);
}

/** The peer's allowed IPs: its mesh IP as a host prefix, then its extra `allowed_ips` (a bridge's
 *  site subnets and access range, docs/bridge.md), canonical and without repeats. */
export function allowedFor(p: PeerInfo): string[] {
  const all = new Set<string>([canonical(p.mesh_ip.includes(':') ? `${p.mesh_ip}/128` : `${p.mesh_ip}/32`)]);
  for (const a of p.allowed_ips ?? []) all.add(canonical(a));
  return [...all];
}

/**
 * Why a peer list cannot be applied, or undefined when it can: two nodes listing one public key
 * (WireGuard keys peers by public key, so one would silently take the other's place, its mesh IP
 * and PSK). Which one is genuine cannot be told from here: the whole state is refused.
 */
export function refusePeerList(desired: readonly PeerInfo[]): string | undefined {
  const holder = new Map<string, string>();
  for (const d of desired) {
    const other = holder.get(d.public_key);
    if (other !== undefined) return `nodes ${other} and ${d.node_id} list the same public key ${d.public_key}`;
    holder.set(d.public_key, d.node_id);
  }
  return undefined;
}

/** Remembers what reconcile applied, to tell control-plane changes from roaming. */
export class Reconciler {
  /** public key (base64) -> endpoint we last applied from the control plane. */
  readonly #appliedEndpoint = new Map<string, string | undefined>();

  /**
   * Plans the change from `current` (the device's typed peers: Device.snapshot() or
   * `{ peers: device.peers() }`) to `desired`. `ownPublicKey` (base64) is
   * skipped if listed. A list with a public key twice is refused (refusePeerList): nothing changes.
   * Pure apart from remembering applied endpoints when `commit` is called.
   */
  plan(current: Pick<DeviceSnapshot, 'peers'>, desired: readonly PeerInfo[], ownPublicKey?: string): ReconcilePlan {
    const refused = refusePeerList(desired);
    if (refused !== undefined) return { config: undefined, added: [], removed: [], changed: [], skipped: [], refused };
    const have = new Map<string, { psk: string | undefined; allowed: Set<string> }>();
    for (const p of current.peers) {
      const allowed = new Set<string>();
      for (const a of p.allowedIps) allowed.add(formatPrefix(a.ip, a.cidr));
      have.set(b64(p.publicKey), { psk: p.presharedKey === null ? undefined : b64(p.presharedKey), allowed });
    }
    const peers: PeerConfig[] = [];
    const added: string[] = [];
    const changed: string[] = [];
    const skipped: string[] = [];
    const wanted = new Set<string>();
    for (const d of desired) {
      const key = d.public_key;
      if (decodeBase64(key, 32) === undefined) {
        skipped.push(`${d.node_id}: bad public key`);
        continue;
      }
      if (key === ownPublicKey) {
        skipped.push(`${d.node_id}: our own key`);
        continue;
      }
      wanted.add(key);
      const allowed = allowedFor(d);
      // The first candidate stands in for a missing endpoint until the path prober
      // (agent/path-prober.ts) chooses among them: a LAN mesh of agents that report only
      // candidates still forms.
      const endpoint = d.endpoint ?? d.candidates?.[0] ?? d.fallback_endpoint;
      const cur = have.get(key);
      if (cur === undefined) {
        peers.push({
          publicKey: key,
          ...(d.psk !== undefined ? { presharedKey: d.psk } : {}),
          ...(endpoint !== undefined ? { endpoint } : {}),
          replaceAllowedIps: true,
          allowedIps: allowed,
        });
        added.push(d.node_id);
        continue;
      }
      const change: { -readonly [K in keyof PeerConfig]: PeerConfig[K] } = { publicKey: key, updateOnly: true };
      let dirty = false;
      if (cur.psk !== d.psk) {
        change.presharedKey = d.psk ?? null;
        dirty = true;
      }
      if (cur.allowed.size !== allowed.length || !allowed.every((a) => cur.allowed.has(a))) {
        change.replaceAllowedIps = true;
        change.allowedIps = allowed;
        dirty = true;
      }
      if (endpoint !== undefined && this.#appliedEndpoint.get(key) !== endpoint) {
        change.endpoint = endpoint;
        dirty = true;
      }
      if (dirty) {
        peers.push(change);
        changed.push(d.node_id);
      }
    }
    const removed: string[] = [];
    for (const key of have.keys()) {
      if (!wanted.has(key)) {
        peers.push({ publicKey: key, remove: true });
        removed.push(key);
      }
    }
    return { config: peers.length === 0 ? undefined : { peers }, added, removed, changed, skipped };
  }

  /** Records the endpoints of a plan that was applied successfully. */
  commit(plan: ReconcilePlan): void {
    for (const p of plan.config?.peers ?? []) {
      if (p.remove === true) this.#appliedEndpoint.delete(String(p.publicKey));
      else if (p.endpoint !== undefined) this.#appliedEndpoint.set(String(p.publicKey), p.endpoint);
    }
  }
}
