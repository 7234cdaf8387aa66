// The package's public surface (issue 12 item 6): every name src/index.ts exports, and every
// public member of the classes among them (static, prototype, and instance fields of a live
// Device, Peer and Engine), compared with the list in docs/api.md. A new export or member fails
// here until it is added to the list on purpose; one that disappears fails too.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as api from '../../src/index.js';

const DOC = new URL('../../docs/api.md', import.meta.url);

/** The list in docs/api.md: the lines of its ```surface fenced block. */
function documented(): string[] {
  const text = readFileSync(DOC, 'utf8');
  const m = /```surface\n([\s\S]*?)```/.exec(text);
  if (m === null) throw new Error('docs/api.md has no ```surface block');
  return m[1]!.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

const isClass = (v: unknown): v is abstract new (...args: never[]) => unknown =>
  typeof v === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(v));

/** String-keyed members of a class: statics as `Name.x`; prototype chain (up to Object/Error) and instance fields as `Name#x`. */
function members(name: string, cls: abstract new (...args: never[]) => unknown, instance?: object): string[] {
  const out = new Set<string>();
  for (const k of Object.getOwnPropertyNames(cls)) if (!['length', 'name', 'prototype'].includes(k)) out.add(`${name}.${k}`);
  for (let p = cls.prototype as object | null; p !== null && p !== Object.prototype && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) if (k !== 'constructor') out.add(`${name}#${k}`);
  }
  if (instance !== undefined) for (const k of Object.keys(instance)) out.add(`${name}#${k}`);
  return [...out];
}

async function surface(): Promise<string[]> {
  const net = new api.MemoryNetwork();
  const device = await api.Device.create({ onPacket: () => {}, bind: net.createBind(['10.0.0.1']) });
  const engine = new api.core.Engine({ crypto: api.nodeCrypto, fillRandom: () => {}, wallClockMs: () => 0 });
  const peer = engine.addPeer(new Uint8Array(32).fill(7));
  const instances: Record<string, object> = { Device: device, 'core.Engine': engine, 'core.Peer': peer };
  const out: string[] = [];
  const walk = (prefix: string, mod: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(mod)) {
      const name = prefix + k;
      if (k === 'core' && prefix === '') {
        out.push(`${name} (namespace)`);
        walk('core.', v as Record<string, unknown>);
      } else if (isClass(v)) {
        out.push(`${name} (class)`);
        out.push(...members(name, v, instances[name]));
      } else {
        out.push(`${name} (${typeof v})`);
      }
    }
  };
  walk('', api as unknown as Record<string, unknown>);
  await device.close();
  return out.sort();
}

describe('exported API', () => {
  it('is exactly the list in docs/api.md', async () => {
    const actual = await surface();
    const listed = documented();
    const leaked = actual.filter((x) => !listed.includes(x));
    const gone = listed.filter((x) => !actual.includes(x));
    if (process.env['PRINT_SURFACE'] === '1') console.log(actual.join('\n'));
    expect({ leaked, gone }).toEqual({ leaked: [], gone: [] });
  });

  it('shows none of the internals issue 12 hid', async () => {
    const actual = await surface();
    for (const hidden of ['Device#engine', 'Device#receive', 'Device#tun', 'Device#network', 'Device#drop', 'Device#event', 'core.Peer#heapIndex', 'core.Peer#heapKey', 'core.Peer#owner', 'core.runHandshakes (function)', 'core.DeadlineHeap (class)', 'core.Peer#handshake', 'core.Peer#keypairs', 'core.Peer#timers', 'core.Peer#staged', 'core.Peer#cookieGenerator', 'core.Handshake (class)', 'MemoryNetwork#claim', 'MemoryNetwork#release', 'MemoryNetwork#transmit', 'core.AllowedIps#debugCheck']) {
      expect(actual, hidden).not.toContain(hidden);
    }
    // A peer carries no string-keyed key material: its keys sit behind symbols core does not export.
    const engine = new api.core.Engine({ crypto: api.nodeCrypto, fillRandom: () => {}, wallClockMs: () => 0 });
    const peer = engine.addPeer(new Uint8Array(32).fill(7));
    for (const key of Object.getOwnPropertySymbols(peer)) expect(Object.values(api.core), String(key)).not.toContain(key);
    // endpoint and persistentKeepalive are readable, not writable past Engine's validation.
    for (const key of ['endpoint', 'persistentKeepalive'] as const) {
      expect(Object.getOwnPropertyDescriptor(api.core.Peer.prototype, key)?.set, key).toBeUndefined();
    }
  });
});
