// The slow twin of the streaming `set=1` parser (STYLE.md item 10): whole text in, plain objects
// out, written the obvious way (split on '\n', arrays, last line wins). It trusts its input's
// values (the generator below only writes valid ones); what it pins down is the structure:
// sections, device vs peer keys, replace_allowed_ips, CRLF, the blank line. Also the random
// valid-request generator and the normal form both sides are compared in.

import { formatIp, parseIp, parsePrefix } from '../../src/core/ip.js';
import type { SetTransaction } from '../../src/uapi/protocol.js';
import { toHex } from '../helpers/bytes.js';

/** A set transaction as plain, comparable data: keys as lowercase hex. */
export interface NormalTx {
  privateKey: string | null | undefined;
  listenPort: number | undefined;
  fwmark: number | undefined;
  replacePeers: boolean;
  peers: NormalPeer[];
}

/** One peer section as plain data. */
export interface NormalPeer {
  publicKey: string;
  remove: boolean;
  updateOnly: boolean;
  presharedKey: string | null | undefined;
  endpoint: { address: string; port: number; zone?: string } | undefined;
  keepalive: number | undefined;
  replaceAllowedIps: boolean;
  allowedIps: Array<{ ip: string; cidr: number; remove: boolean }>;
}

const ZERO_KEY = '0'.repeat(64);

function clamp(hex: string): string {
  const b = Buffer.from(hex, 'hex');
  b[0]! &= 248;
  b[31] = (b[31]! & 127) | 64;
  return b.toString('hex');
}

function endpoint(v: string): NormalPeer['endpoint'] {
  const colon = v.lastIndexOf(':');
  const port = Number(v.slice(colon + 1));
  let host = v.slice(0, colon);
  let zone: string | undefined;
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    const pct = host.indexOf('%');
    if (pct >= 0) {
      zone = host.slice(pct + 1);
      host = host.slice(0, pct);
    }
  }
  const address = formatIp(parseIp(host)!);
  return zone === undefined ? { address, port } : { address, port, zone };
}

/** The naive parse of a valid `set=1` body (the text after "set=1\n"). */
export function naiveSet(body: string): NormalTx {
  const tx: NormalTx = { privateKey: undefined, listenPort: undefined, fwmark: undefined, replacePeers: false, peers: [] };
  let peer: NormalPeer | undefined;
  for (const raw of body.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') break;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (key === 'public_key') {
      peer = { publicKey: v.toLowerCase(), remove: false, updateOnly: false, presharedKey: undefined, endpoint: undefined, keepalive: undefined, replaceAllowedIps: false, allowedIps: [] };
      tx.peers.push(peer);
    } else if (peer === undefined) {
      if (key === 'private_key') tx.privateKey = v === ZERO_KEY ? null : clamp(v.toLowerCase());
      else if (key === 'listen_port') tx.listenPort = Number(v);
      else if (key === 'fwmark') tx.fwmark = Number(v);
      else if (key === 'replace_peers') tx.replacePeers = true;
    } else if (key === 'update_only') peer.updateOnly = true;
    else if (key === 'remove') peer.remove = true;
    else if (key === 'preshared_key') peer.presharedKey = v === ZERO_KEY ? null : v.toLowerCase();
    else if (key === 'endpoint') peer.endpoint = endpoint(v);
    else if (key === 'persistent_keepalive_interval') peer.keepalive = Number(v);
    else if (key === 'replace_allowed_ips') {
      peer.replaceAllowedIps = true;
      peer.allowedIps = [];
    } else if (key === 'allowed_ip') {
      const remove = v.startsWith('-');
      const p = parsePrefix(remove ? v.slice(1) : v)!;
      peer.allowedIps.push({ ip: toHex(p.ip), cidr: p.cidr, remove });
    }
  }
  return tx;
}

/** The parser's transaction in the twin's normal form. */
export function normalTx(tx: SetTransaction): NormalTx {
  const key = (k: Uint8Array | null | undefined) => (k === undefined ? undefined : k === null ? null : toHex(k));
  return {
    privateKey: key(tx.privateKey),
    listenPort: tx.listenPort,
    fwmark: tx.fwmark,
    replacePeers: tx.replacePeers,
    peers: [...tx.peers].map((p) => ({
      publicKey: toHex(p.publicKey),
      remove: p.remove,
      updateOnly: p.updateOnly,
      presharedKey: key(p.presharedKey),
      endpoint: p.endpoint === undefined ? undefined : { ...p.endpoint },
      keepalive: p.persistentKeepaliveInterval,
      replaceAllowedIps: p.replaceAllowedIps,
      allowedIps: [...p.allowedIps].map((a) => ({ ip: toHex(a.ip), cidr: a.cidr, remove: a.remove })),
    })),
  };
}

/** A random valid `set=1` body (ending in the blank line) from `int(n)` (uniform in [0, n)). */
export function randomSetBody(int: (n: number) => number, maxLines = 40): string {
  const hex = (n: number) => Array.from({ length: n }, () => '0123456789abcdefABCDEF'[int(22)]).join('');
  const key = () => (int(8) === 0 ? ZERO_KEY : hex(64));
  const v4 = () => `${int(256)}.${int(256)}.${int(256)}.${int(256)}`;
  const v6 = () => [`fd00::${int(0x10000).toString(16)}`, '::', `2001:db8:${int(99)}::${int(9)}`, '::ffff:1.2.3.4'][int(4)]!;
  const lines: string[] = [];
  const device = ['private_key', 'listen_port', 'fwmark', 'replace_peers'];
  for (let i = int(4); i > 0; i--) {
    const k = device[int(device.length)]!;
    lines.push(k === 'private_key' ? `${k}=${key()}` : k === 'replace_peers' ? `${k}=true` : `${k}=${int(65536)}`);
  }
  const peerKeys = ['update_only', 'remove', 'preshared_key', 'endpoint', 'persistent_keepalive_interval', 'replace_allowed_ips', 'allowed_ip', 'allowed_ip', 'allowed_ip', 'protocol_version'];
  for (let n = int(maxLines); n > 0; n--) {
    if (lines.length === 0 || int(5) === 0) {
      lines.push(`public_key=${key()}`);
      continue;
    }
    if (!lines.some((l) => l.startsWith('public_key='))) continue;
    const k = peerKeys[int(peerKeys.length)]!;
    if (k === 'preshared_key') lines.push(`${k}=${key()}`);
    else if (k === 'endpoint') lines.push(`${k}=${int(2) === 0 ? `${v4()}:${int(65536)}` : `[${v6()}${int(4) === 0 ? '%eth0' : ''}]:${int(65536)}`}`);
    else if (k === 'persistent_keepalive_interval') lines.push(`${k}=${int(65536)}`);
    else if (k === 'allowed_ip') lines.push(`${k}=${int(4) === 0 ? '-' : ''}${int(2) === 0 ? `${v4()}/${int(33)}` : `${v6()}/${int(129)}`}`);
    else if (k === 'protocol_version') lines.push(`${k}=1`);
    else lines.push(`${k}=true`);
  }
  const eol = int(3) === 0 ? '\r\n' : '\n';
  return lines.map((l) => l + eol).join('') + eol;
}
