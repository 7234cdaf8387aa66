// The device's typed configuration contract (src/device/contract.ts): apply/snapshot/peer with raw
// keys and Endpoint objects, keys copied in and out; configure() and a UAPI set validate the same
// way and leave identical state; DeviceError codes and their UAPI errno. That device/ imports
// nothing from uapi/ is checked by test/architecture/layers.test.ts.

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { endpointKey, parseEndpoint, plainAddress, sameEndpoint } from '../../src/core/endpoint.js';
import { nodeCrypto } from '../../src/crypto/node.js';
import { configToTransaction, type DeviceConfig } from '../../src/device/config.js';
import { wipeTransaction } from '../../src/device/contract.js';
import type { Device } from '../../src/device/device.js';
import { DeviceError } from '../../src/device/errors.js';
import { MemoryNetwork } from '../../src/io/bind-memory.js';
import { BindError } from '../../src/io/errors.js';
import { toUapiError, UapiError } from '../../src/uapi/errors.js';
import { parseSetBody } from '../../src/uapi/protocol.js';
import { formatGetResponse } from '../../src/uapi/serialize.js';
import { memoryDevice } from '../helpers/memory-device.js';

const open: Device[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

async function device(port = 51820, net?: MemoryNetwork): Promise<Device> {
  const d = await memoryDevice(port, net);
  open.push(d);
  return d;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
/** get=1 text without the port (each device has its own). */
const state = (d: Device) => formatGetResponse(d.snapshot()).replace(/^listen_port=\d+\n/m, '');

describe('typed apply / snapshot / peer', () => {
  it('takes raw keys and Endpoint objects; keeps copies, so wiping the caller\'s buffers changes nothing', async () => {
    const d = await device();
    const sk = randomBytes(32);
    sk[0]! &= 248;
    sk[31] = (sk[31]! & 127) | 64;
    const pk = randomBytes(32);
    const psk = randomBytes(32);
    const ip = new Uint8Array([10, 9, 0, 1]);
    await d.apply({
      privateKey: sk,
      peers: [{ publicKey: pk, presharedKey: psk, endpoint: { address: 'fd00::7', port: 4000 }, persistentKeepaliveInterval: 25, allowedIps: [{ ip, cidr: 32 }] }],
    });
    const before = state(d);
    expect(before).toContain(`private_key=${hex(sk)}\n`);
    expect(before).toContain(`public_key=${hex(pk)}\npreshared_key=${hex(psk)}\n`);
    expect(before).toContain('endpoint=[fd00::7]:4000\n');
    expect(before).toContain('allowed_ip=10.9.0.1/32\n');
    for (const b of [sk, pk, psk, ip]) b.fill(0);
    expect(state(d)).toBe(before);

    expect(d.peer(pk)).toBeUndefined(); // pk was wiped: all zero now, no such peer
    const [only] = [...d.peers()];
    expect(only).toMatchObject({ endpoint: { address: 'fd00::7', port: 4000 }, persistentKeepaliveInterval: 25 });
    const same = d.peer(only!.publicKey)!;
    expect(hex(same.publicKey)).toBe(hex(only!.publicKey));
    // The view's keys are copies too.
    same.publicKey.fill(1);
    same.presharedKey!.fill(1);
    d.snapshot().privateKey!.fill(1);
    expect(state(d)).toBe(before);
  });

  it('clamps a private key (on a copy), and takes an all-zero key as "remove"', async () => {
    const d = await device();
    const sk = new Uint8Array(32).fill(0xff);
    await d.apply({ privateKey: sk });
    expect(sk.every((b) => b === 0xff)).toBe(true);
    expect(hex(d.snapshot().privateKey!)).toBe(hex(parseSetBody(`private_key=${'ff'.repeat(32)}\n`).privateKey!));
    await d.apply({ privateKey: new Uint8Array(32) });
    expect(d.snapshot().privateKey).toBeNull();
  });

  it('reads peers and allowed IPs given as one-shot generators once: checked, then applied', async () => {
    const d = await device();
    const pk = randomBytes(32);
    function* ips() {
      yield { ip: new Uint8Array([10, 1, 0, 0]), cidr: 16 };
    }
    function* peers() {
      yield { publicKey: pk, allowedIps: ips() };
    }
    await d.apply({ peers: peers() });
    expect([...d.peer(pk)!.allowedIps].map((a) => `${a.ip.join('.')}/${a.cidr}`)).toEqual(['10.1.0.0/16']);
  });

  it('refuses a malformed typed transaction with TypeError/RangeError before changing anything', async () => {
    const d = await device();
    const pk = randomBytes(32);
    await d.apply({ peers: [{ publicKey: pk }] });
    const before = state(d);
    const bad: unknown[] = [
      null,
      { privateKey: new Uint8Array(31) },
      { listenPort: 70000 },
      { fwmark: -1 },
      { listenPort: 1, peers: [{ publicKey: pk, remove: true }, { publicKey: new Uint8Array(16) }] },
      { peers: [{ publicKey: pk, remove: true }, { publicKey: pk, endpoint: { address: 'example.com', port: 1 } }] },
      { peers: [{ publicKey: pk, remove: true }, { publicKey: pk, endpoint: { address: '1.2.3.4', port: 65536 } }] },
      { peers: [{ publicKey: pk, remove: true }, { publicKey: pk, allowedIps: [{ ip: new Uint8Array(4), cidr: 33 }] }] },
      { peers: [{ publicKey: pk, remove: true }, { publicKey: pk, persistentKeepaliveInterval: 1.5 }] },
      { peers: 5 },
    ];
    for (const tx of bad) {
      const err = await d.apply(tx as never).catch((e: unknown) => e);
      expect(err instanceof TypeError || err instanceof RangeError, JSON.stringify(tx)).toBe(true);
      expect(state(d)).toBe(before);
      expect(d.listenPort).toBe(51820);
    }
  });
});

/** A DeviceConfig and the UAPI set body it means. */
const K1 = randomBytes(32);
const K2 = randomBytes(32);
const SK = randomBytes(32);
const CASES: ReadonlyArray<readonly [string, DeviceConfig, string]> = [
  ['empty', {}, ''],
  ['private key, fwmark', { privateKey: b64(SK), fwmark: 7 }, `private_key=${hex(SK)}\nfwmark=7\n`],
  ['zero private key removes', { privateKey: null }, `private_key=${'0'.repeat(64)}\n`],
  [
    'peers with every field',
    {
      replacePeers: true,
      peers: [
        { publicKey: b64(K1), presharedKey: b64(K2), endpoint: '[fe80::1%eth0]:51820', persistentKeepalive: 25, allowedIps: ['10.0.0.1/24', '-10.0.0.0/24', 'fd00::1/64'] },
        { publicKey: K2, updateOnly: true, endpoint: '1.2.3.4:01', replaceAllowedIps: true, allowedIps: ['0.0.0.0/0'] },
        { publicKey: b64(K1), presharedKey: null },
      ],
    },
    `replace_peers=true\npublic_key=${hex(K1)}\npreshared_key=${hex(K2)}\nendpoint=[fe80::1%eth0]:51820\npersistent_keepalive_interval=25\n` +
      `allowed_ip=10.0.0.1/24\nallowed_ip=-10.0.0.0/24\nallowed_ip=fd00::1/64\n` +
      `public_key=${hex(K2)}\nupdate_only=true\nendpoint=1.2.3.4:01\nreplace_allowed_ips=true\nallowed_ip=0.0.0.0/0\n` +
      `public_key=${hex(K1)}\npreshared_key=${'0'.repeat(64)}\n`,
  ],
  ['remove', { peers: [{ publicKey: b64(K1), remove: true }] }, `public_key=${hex(K1)}\nremove=true\n`],
  // Invalid: the same code class and the same message on both paths.
  ['port out of range', { listenPort: 65536 }, 'listen_port=65536\n'],
  ['fractional port', { listenPort: 1.5 }, 'listen_port=1.5\n'],
  ['fwmark out of range', { fwmark: 2 ** 32 }, `fwmark=${2 ** 32}\n`],
  ['host name endpoint', { peers: [{ publicKey: b64(K1), endpoint: 'localhost:51820' }] }, `public_key=${hex(K1)}\nendpoint=localhost:51820\n`],
  ['IPv6 without brackets', { peers: [{ publicKey: b64(K1), endpoint: 'fd00::1:51820' }] }, `public_key=${hex(K1)}\nendpoint=fd00::1:51820\n`],
  ['IPv4 in brackets', { peers: [{ publicKey: b64(K1), endpoint: '[1.2.3.4]:1' }] }, `public_key=${hex(K1)}\nendpoint=[1.2.3.4]:1\n`],
  ['endpoint port', { peers: [{ publicKey: b64(K1), endpoint: '1.2.3.4:65536' }] }, `public_key=${hex(K1)}\nendpoint=1.2.3.4:65536\n`],
  ['empty zone', { peers: [{ publicKey: b64(K1), endpoint: '[fe80::1%]:1' }] }, `public_key=${hex(K1)}\nendpoint=[fe80::1%]:1\n`],
  ['cidr too long', { peers: [{ publicKey: b64(K1), allowedIps: ['10.0.0.0/33'] }] }, `public_key=${hex(K1)}\nallowed_ip=10.0.0.0/33\n`],
  ['bare address', { peers: [{ publicKey: b64(K1), allowedIps: ['10.0.0.1'] }] }, `public_key=${hex(K1)}\nallowed_ip=10.0.0.1\n`],
  ['keepalive out of range', { peers: [{ publicKey: b64(K1), persistentKeepalive: 65536 }] }, `public_key=${hex(K1)}\npersistent_keepalive_interval=65536\n`],
  ['negative keepalive', { peers: [{ publicKey: b64(K1), persistentKeepalive: -1 }] }, `public_key=${hex(K1)}\npersistent_keepalive_interval=-1\n`],
];

describe('configure() and a UAPI set', () => {
  it.each(CASES)('%s: the same state, or the same error class and message', async (_name, config, body) => {
    const viaConfig = await device(51820);
    const viaUapi = await device(51821);
    // A peer to update or remove, on both.
    const seed = { peers: [{ publicKey: b64(K1), allowedIps: ['192.168.9.0/24'] }, { publicKey: b64(K2) }] };
    await viaConfig.configure(seed);
    await viaUapi.configure(seed);
    const configErr = await viaConfig.configure(config).then(() => undefined, (e: unknown) => e);
    let uapiErr: unknown;
    try {
      await viaUapi.apply(parseSetBody(body));
    } catch (err) {
      uapiErr = err;
    }
    expect(state(viaConfig)).toBe(state(viaUapi));
    if (configErr === undefined) {
      expect(uapiErr).toBeUndefined();
      return;
    }
    expect(configErr).toBeInstanceOf(DeviceError);
    expect((configErr as DeviceError).code).toBe('ERR_DEVICE_INVALID');
    expect(uapiErr).toBeInstanceOf(UapiError);
    expect((uapiErr as UapiError).code).toBe('ERR_UAPI_INVALID');
    expect((configErr as Error).message).toBe((uapiErr as Error).message);
  });

  it('a bad base64 key or a line break in a value is ERR_DEVICE_INVALID, a wrong type a TypeError', async () => {
    const d = await device();
    await expect(d.configure({ privateKey: 'AAAA' })).rejects.toMatchObject({ code: 'ERR_DEVICE_INVALID', message: expect.stringMatching(/^invalid privateKey: expected 32 bytes in base64/) });
    await expect(d.configure({ peers: [{ publicKey: b64(K1), endpoint: '1.2.3.4:1\nremove=true' }] })).rejects.toMatchObject({ code: 'ERR_DEVICE_INVALID', message: 'invalid endpoint: "1.2.3.4:1\\nremove=true"' });
    await expect(d.configure({ peers: [{ publicKey: 5 as never }] })).rejects.toBeInstanceOf(TypeError);
    expect([...d.peers()]).toHaveLength(0);
  });

  it('decodes a base64 key into bytes of its own (the caller\'s Uint8Array is not kept either)', async () => {
    const d = await device();
    const key = randomBytes(32);
    await d.configure({ peers: [{ publicKey: key }] });
    const kept = hex(key);
    key.fill(0);
    expect(hex([...d.peers()][0]!.publicKey)).toBe(kept);
  });
});

describe('DeviceError', () => {
  it('has a closed set of codes', () => {
    expect(DeviceError.codes).toEqual(['ERR_DEVICE_CLOSED', 'ERR_DEVICE_INVALID', 'ERR_DEVICE_PORT_IN_USE']);
    expect(() => new DeviceError('ERR_UAPI_INVALID' as never, 'x')).toThrow(TypeError);
  });

  it('maps to wireguard-go errno values on the UAPI: INVALID -22, PORT_IN_USE -98, anything else -55', () => {
    const cause = new DeviceError('ERR_DEVICE_PORT_IN_USE', 'port 1 in use', { cause: new Error('EADDRINUSE') });
    expect(toUapiError(new DeviceError('ERR_DEVICE_INVALID', 'bad'))).toMatchObject({ errno: -22, message: 'bad' });
    expect(toUapiError(cause)).toMatchObject({ errno: -98, cause });
    expect(toUapiError(new DeviceError('ERR_DEVICE_CLOSED', 'device is closed')).errno).toBe(-55);
    expect(toUapiError(new Error('boom')).errno).toBe(-55);
    const u = new UapiError('ERR_UAPI_IO', 'io');
    expect(toUapiError(u)).toBe(u);
  });

  it('ERR_DEVICE_CLOSED after close, ERR_DEVICE_PORT_IN_USE with the BindError as cause', async () => {
    const net = new MemoryNetwork();
    const a = await device(51820, net);
    const b = await device(51821, net);
    const err = await b.apply({ listenPort: 51820, privateKey: randomBytes(32) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DEVICE_PORT_IN_USE' });
    expect((err as DeviceError).cause).toBeInstanceOf(BindError);
    expect(b.snapshot().privateKey).toBeNull();
    await a.close();
    await expect(a.apply({})).rejects.toMatchObject({ name: 'DeviceError', code: 'ERR_DEVICE_CLOSED', message: 'device is closed' });
  });
});

describe('the one endpoint parser (core/endpoint.ts)', () => {
  it('reads wg\'s form: IP literals, brackets for IPv6 only, an optional zone, port 0..65535', () => {
    expect(parseEndpoint('1.2.3.4:51820')).toMatchObject({ address: '1.2.3.4', port: 51820, zone: undefined });
    expect(parseEndpoint('[FD00:0::1%eth0]:007')).toMatchObject({ address: 'fd00::1', host: 'FD00:0::1', port: 7, zone: 'eth0' });
    for (const bad of ['1.2.3.4', 'host:1', 'fd00::1:1', '[1.2.3.4]:1', '[fd00::1]', '1.2.3.4:65536', '1.2.3.4:+1', '1.2.3.4:', '[fe80::1%]:1', '01.2.3.4:1']) {
      expect(parseEndpoint(bad), bad).toBeUndefined();
    }
  });

  it('derives a public key the device reports (sanity of the typed private key path)', async () => {
    const d = await device();
    const sk = randomBytes(32);
    await d.apply({ privateKey: sk });
    expect(hex(d.publicKey!)).toBe(hex(nodeCrypto.x25519PublicKey(d.snapshot().privateKey!)));
  });
});

describe('IPv4-mapped addresses (core/endpoint.ts plainAddress)', () => {
  it('strips the mapped prefix in any case, and nothing else', () => {
    expect(plainAddress('::ffff:203.0.113.2')).toBe('203.0.113.2');
    expect(plainAddress('::FFFF:203.0.113.2')).toBe('203.0.113.2');
    expect(plainAddress('::ffff:cb00:7102')).toBe('::ffff:cb00:7102'); // hex spelling: left alone
    expect(plainAddress('2001:db8::1')).toBe('2001:db8::1');
    expect(plainAddress('::ffff:')).toBe('::ffff:');
    expect(sameEndpoint({ address: '::FFFF:10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 })).toBe(true);
    expect(endpointKey({ address: '::ffff:10.0.0.1', port: 1 })).toBe(endpointKey({ address: '10.0.0.1', port: 1 }));
  });
});

describe('decoded secrets are wiped after apply', () => {
  it('wipeTransaction zeroes the private key and every packed peer key; the device keeps its copies', async () => {
    const priv = new Uint8Array(32).fill(7);
    const psk = new Uint8Array(32).fill(9);
    const pub = new Uint8Array(32).fill(5);
    const tx = configToTransaction({ privateKey: priv, peers: [{ publicKey: pub, presharedKey: psk }] });
    const device = await memoryDevice(51900);
    try {
      await device.apply(tx);
      wipeTransaction(tx);
      expect(tx.privateKey!.every((b) => b === 0)).toBe(true);
      for (const p of tx.peers) {
        expect(p.publicKey.every((b) => b === 0)).toBe(true);
        expect(p.presharedKey ?? null).toBeNull(); // the record, flags included, is zero
      }
      const held = device.peer(pub)!;
      expect(held.presharedKey).toEqual(psk);
      expect(device.snapshot().privateKey!.some((b) => b !== 0)).toBe(true);
    } finally {
      await device.close();
    }
  });
});
