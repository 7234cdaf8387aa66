// Root tier: confirms vectors/wireguard-handshake-kat.json against a real wireguard-go (the
// procedure in vectors/README.md). wireguard-go gets the KAT's responder private key and PSK; we
// send it the KAT's initiation bytes, rebuilt by our core from the KAT inputs, over UDP inside a
// namespace. Its response (own ephemeral and index, so other bytes than the KAT's) must pass MAC1
// and authenticate against the initiator state; the transport keys derived from it must carry
// inputs.initiator_first_packet byte for byte onto wireguard-go's TUN, and wireguard-go's reply
// traffic must open with our receive key.

import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieChecker, CookieGenerator } from '../../src/core/cookie.js';
import { nobleCrypto } from '../../src/core/crypto-noble.js';
import { Handshake, consumeResponseMessage, createInitiationMessage, deriveKeys, makeIdentity } from '../../src/core/handshake.js';
import { Keypair, openTransport, sealTransport } from '../../src/core/keypair.js';
import { tai64n } from '../../src/core/tai64n.js';
import { fromHex, toHex } from '../helpers/bytes.js';
import { sweepStale } from '../helpers/netns.js';
import { WgLab, capture, ping, waitFor, wgUnavailableReason } from '../helpers/wg-lab.js';
import type { KatInputs, KatOutputs } from '../helpers/wireguard-kat.js';

const skipReason = wgUnavailableReason('test/netns/kat-wireguard-go.test.ts', ['wg', 'wireguard-go', 'tcpdump', 'ping']);
const kat = JSON.parse(readFileSync(new URL('../../vectors/wireguard-handshake-kat.json', import.meta.url), 'utf8')) as { inputs: KatInputs; outputs: KatOutputs };

// A UDP socket inside the namespace: stdin lines "PORT HEX" are sent to 127.0.0.1:PORT; every
// datagram received is printed as "rx HEX". Prints "port N" once bound.
const UDP_SHELL = `
import dgram from 'node:dgram';
import readline from 'node:readline';
const s = dgram.createSocket('udp4');
s.on('message', (m) => console.log('rx ' + m.toString('hex')));
s.bind(0, '127.0.0.1', () => console.log('port ' + s.address().port));
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  const [port, hex] = l.split(' ');
  s.send(Buffer.from(hex, 'hex'), Number(port), '127.0.0.1');
}).on('close', () => s.close());
`;

const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const readU32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);

describe.skipIf(skipReason !== undefined)('WireGuard handshake KAT against wireguard-go', () => {
  const wl = new WgLab();

  afterAll(() => wl.cleanup());

  it('wireguard-go accepts the KAT initiation and its response yields working transport keys', async () => {
    sweepStale();
    const crypto = nobleCrypto;
    const inp = kat.inputs;
    const out = kat.outputs;

    // The initiator's state, rebuilt from the inputs; it must reproduce the KAT initiation exactly.
    const iId = makeIdentity(crypto, fromHex(inp.initiator_static_private));
    const rPublic = fromHex(out.responder_static_public);
    expect(toHex(iId.publicKey)).toBe(out.initiator_static_public);
    const hs = new Handshake(rPublic);
    hs.presharedKey.set(fromHex(inp.preshared_key));
    hs.precomputedStaticStatic.set(crypto.x25519(iId.privateKey, rPublic));
    const initiation = createInitiationMessage(iId, hs, fromHex(inp.initiator_ephemeral_private), tai64n(inp.initiator_wall_clock_ms), inp.initiator_sender_index);
    expect(initiation).toBeDefined();
    new CookieGenerator(crypto, rPublic).addMacs(initiation!, 0);
    expect(toHex(initiation!)).toBe(out.initiation);

    const ns = await wl.namespace();
    const wg = await wl.start(ns, 'wireguard-go', { bare: true });
    await wg.set('private-key', b64(inp.responder_static_private));
    await wg.set('peer', b64(out.initiator_static_public), 'preshared-key', b64(inp.preshared_key), 'allowed-ips', '10.0.0.1/32');
    await ns.ip('addr', 'add', '10.0.0.2/24', 'dev', wg.name);
    await ns.ip('link', 'set', wg.name, 'up');
    expect((await wg.dump()).publicKey).toBe(b64(out.responder_static_public));
    const port = await wg.listenPort();

    const shell = ns.spawn([process.execPath, '--input-type=module', '-e', UDP_SHELL], { stdin: 'pipe' });
    const lines: string[] = [];
    let partial = '';
    shell.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    const received = (type: number) => waitFor(() => lines.find((l) => l.startsWith(`rx 0${type}000000`))?.slice(3), 5000);
    expect(await waitFor(() => lines.some((l) => l.startsWith('port ')), 5000)).toBe(true);
    const send = (msg: Uint8Array) => shell.stdin!.write(`${port} ${toHex(msg)}\n`);

    send(initiation!);
    const responseHex = await received(2);
    expect(responseHex, wg.output).toBeDefined();
    const response = fromHex(responseHex!);
    expect(response.length).toBe(92);
    expect(readU32(response, 8)).toBe(inp.initiator_sender_index);
    expect(new CookieChecker(crypto, iId.publicKey).checkMac1(response)).toBe(true);
    expect(consumeResponseMessage(iId, hs, response)).toBe(true);
    const keys = deriveKeys(iId, hs)!;
    const keypair = new Keypair('wireguard-go', crypto.aead(keys.sendKey), crypto.aead(keys.receiveKey), true, 0, keys.localIndex, keys.remoteIndex);
    expect(keys.remoteIndex).toBe(readU32(response, 4));

    // The first packet must reach wireguard-go's TUN unchanged (tcpdump sees it before IP checks).
    const dump = await capture(ns, wg.name, ['-x', '-c', '1', 'src host 10.0.0.1']);
    try {
      send(sealTransport(keypair, fromHex(inp.initiator_first_packet)));
      const hex = await waitFor(() => {
        const h = [...dump.text().matchAll(/^\s+0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4} ?)+)/gm)].map((m) => m[1]!.replace(/\s/g, '')).join('');
        return h.length >= inp.initiator_first_packet.length ? h : undefined;
      }, 5000);
      expect(hex).toBe(inp.initiator_first_packet);
    } finally {
      dump.stop();
    }
    expect((await wg.peer(b64(out.initiator_static_public))).latestHandshake).toBeGreaterThan(0);

    // And back: wireguard-go's data to us opens with the KAT-derived receive key.
    await ping(ns, '10.0.0.1', { count: 1, waitS: 1 });
    const dataHex = await received(4);
    expect(dataHex).toBeDefined();
    const data = fromHex(dataHex!);
    expect(readU32(data, 4)).toBe(inp.initiator_sender_index);
    const counter = Number(new DataView(data.buffer).getBigUint64(8, true));
    const n = openTransport(keypair, data, counter);
    expect(n).toBeGreaterThanOrEqual(28);
    const inner = data.subarray(16, 16 + n);
    expect(inner[0]! >> 4).toBe(4);
    expect(inner[9]).toBe(1); // ICMP
    expect([...inner.subarray(12, 20)]).toEqual([10, 0, 0, 2, 10, 0, 0, 1]);
    shell.stdin!.end();
  });
});
