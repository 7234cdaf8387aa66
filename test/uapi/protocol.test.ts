// UAPI request parser: framing, every key's value rules and errno, as observed on wireguard-go
// v0.0.20220316 (Debian) — see docs/uapi.md for the recorded facts.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { UAPI_ERRNO, UapiError } from '../../src/uapi/errors.js';
import { MAX_LINE_BYTES, parseSetBody, UapiRequestParser, type UapiRequest } from '../../src/uapi/protocol.js';
import { normalTx } from './naive-set.js';

const K1 = 'e53b41985234e339d15b61e1882d7be20cad3709abff0d4d283426e6edef271e';
const K2 = 'f4a8e4a37f467ab2c5dbcf62761bcadcd9b3cd7e6ac2f8404b8146959339f704';
const ZERO = '0'.repeat(64);

function feed(text: string | Uint8Array, chunkSize = Infinity, end = false): UapiRequest[] {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const p = new UapiRequestParser();
  const out: UapiRequest[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize === Infinity ? bytes.length : chunkSize) {
    out.push(...p.push(bytes.subarray(i, chunkSize === Infinity ? bytes.length : i + chunkSize)));
  }
  if (end) out.push(...p.end());
  return out;
}

/** errno of a single `set=1` request: 0 when it parsed, the error's errno otherwise. */
function setErrno(body: string): number {
  const results = [Infinity, 1, 7].map((size) => {
    const events = feed(`set=1\n${body}\n`, size);
    expect(events).toHaveLength(1);
    const e = events[0]!;
    if (e.kind === 'set') return 0;
    if (e.kind === 'error') return e.error.errno;
    throw new Error(`unexpected ${e.kind}`);
  });
  expect(new Set(results).size).toBe(1);
  let direct = 0;
  try {
    parseSetBody(body);
  } catch (err) {
    direct = (err as UapiError).errno;
  }
  expect(direct).toBe(results[0]);
  return results[0]!;
}

const EINVAL = UAPI_ERRNO.INVALID;
const EPROTO = UAPI_ERRNO.PROTOCOL;
const EIO = UAPI_ERRNO.IO;

// [request body lines (without the final blank line), expected errno]
const CASES: ReadonlyArray<readonly [string, number]> = [
  ['', 0],
  [`private_key=${K1}\nlisten_port=51820\nfwmark=7\nreplace_peers=true\n`, 0],
  [`private_key=${K1.toUpperCase()}\n`, 0],
  [`private_key=${ZERO}\n`, 0],
  [`private_key=${K1.slice(2)}\n`, EINVAL],
  [`private_key=${K1}00\n`, EINVAL],
  [`private_key=${K1.slice(1)}g\n`, EINVAL],
  ['private_key=\n', EINVAL],
  ['listen_port\n', EPROTO],
  ['listen_port=\n', EINVAL],
  ['listen_port=0\n', 0],
  ['listen_port=65535\n', 0],
  ['listen_port=65536\n', EINVAL],
  ['listen_port=+5\n', EINVAL],
  ['listen_port=-1\n', EINVAL],
  ['listen_port= 5\n', EINVAL],
  ['listen_port=051999\n', 0],
  [`listen_port=${'0'.repeat(1000)}1\n`, 0],
  ['listen_port=51999\r\n', 0],
  ['listen_port=5\u00001\n', EINVAL],
  ['listen_port=0x10\n', EINVAL],
  ['fwmark=4294967295\n', 0],
  ['fwmark=4294967296\n', EINVAL],
  ['fwmark=0x10\n', EINVAL],
  ['replace_peers=false\n', EINVAL],
  ['replace_peers=TRUE\n', EINVAL],
  ['bogus=1\n', EINVAL],
  ['=\n', EINVAL],
  ['=1\n', EINVAL],
  ['list\u00e9n_port=5\n', EINVAL],
  ['\u0000\u00ff\u0001\n', EPROTO],
  [' public_key=' + K1 + '\n', EINVAL],
  // a peer key before any public_key is an invalid device key
  ['endpoint=1.2.3.4:5\n', EINVAL],
  ['protocol_version=1\n', EINVAL],
  ['allowed_ip=10.0.0.0/8\n', EINVAL],
  // a device key after a public_key is an invalid peer key
  [`public_key=${K1}\nlisten_port=5\n`, EINVAL],
  [`public_key=${K1}\nprivate_key=${K2}\n`, EINVAL],
  [`public_key=${K1.slice(2)}\n`, EINVAL],
  [`public_key=${K1}00\n`, EINVAL],
  [`public_key=${ZERO}\n`, 0],
  [`public_key=${K1}\npreshared_key=${K2}\npreshared_key=${ZERO}\n`, 0],
  [`public_key=${K1}\npreshared_key=zz\n`, EINVAL],
  [`public_key=${K1}\nendpoint=1.2.3.4:51820\n`, 0],
  [`public_key=${K1}\nendpoint=[fd00::1]:51820\n`, 0],
  [`public_key=${K1}\nendpoint=[fe80::1%eth0]:51820\n`, 0],
  [`public_key=${K1}\nendpoint=[::ffff:1.2.3.4]:0\n`, 0],
  [`public_key=${K1}\nendpoint=1.2.3.4:01\n`, 0],
  [`public_key=${K1}\nendpoint=localhost:51820\n`, EINVAL],
  [`public_key=${K1}\nendpoint=1.2.3.4\n`, EINVAL],
  [`public_key=${K1}\nendpoint=fd00::1:51820\n`, EINVAL],
  [`public_key=${K1}\nendpoint=1.2.3.4:65536\n`, EINVAL],
  [`public_key=${K1}\nendpoint=1.2.3.4:\n`, EINVAL],
  [`public_key=${K1}\nendpoint=01.2.3.4:1\n`, EINVAL],
  [`public_key=${K1}\nendpoint=1.2.3.4:+1\n`, EINVAL],
  [`public_key=${K1}\nendpoint=[1.2.3.4]:1\n`, EINVAL],
  [`public_key=${K1}\nendpoint=[fe80::1%]:1\n`, EINVAL],
  [`public_key=${K1}\nendpoint=[fd00::1]\n`, EINVAL],
  [`public_key=${K1}\npersistent_keepalive_interval=65535\n`, 0],
  [`public_key=${K1}\npersistent_keepalive_interval=65536\n`, EINVAL],
  [`public_key=${K1}\nprotocol_version=1\n`, 0],
  [`public_key=${K1}\nprotocol_version=2\n`, EINVAL],
  [`public_key=${K1}\nupdate_only=true\n`, 0],
  [`public_key=${K1}\nupdate_only=false\n`, EINVAL],
  [`public_key=${K1}\nremove=true\n`, 0],
  [`public_key=${K1}\nremove=false\n`, EINVAL],
  [`public_key=${K1}\nremove=true\nallowed_ip=garbage\n`, EINVAL],
  [`public_key=${K1}\nreplace_allowed_ips=true\n`, 0],
  [`public_key=${K1}\nreplace_allowed_ips=false\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=10.0.0.1/24\nallowed_ip=fd00::1/64\nallowed_ip=::ffff:1.2.3.4/128\n`, 0],
  [`public_key=${K1}\nallowed_ip=-10.1.0.0/16\n`, 0],
  [`public_key=${K1}\nallowed_ip=10.9.0.0\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=10.9.0.0/33\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=fe80::1%eth0/64\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip= 10.9.0.0/16\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=10.9.0.0/16 \n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=--10.9.0.0/16\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip=\n`, EINVAL],
  [`public_key=${K1}\nbogus=1\n`, EINVAL],
  [`public_key=${K1}\nallowed_ip\n`, EPROTO],
  [`${'x'.repeat(MAX_LINE_BYTES)}\n`, EPROTO],
  [`${'x'.repeat(MAX_LINE_BYTES - 1)}\r\n`, EPROTO],
];

describe('set=1 value rules (errno as wireguard-go)', () => {
  it.each(CASES.map(([body, errno]) => [JSON.stringify(body).slice(0, 90), body, errno] as const))(
    '%s',
    (_name, body, errno) => {
      expect(setErrno(body)).toBe(errno);
    },
  );

  it('treats a line of 65536 bytes (or 65535 plus \\r) as too long: EIO, fatal', () => {
    for (const line of ['x'.repeat(MAX_LINE_BYTES + 1), `${'x'.repeat(MAX_LINE_BYTES)}\r`]) {
      for (const size of [Infinity, 4096, 65536]) {
        const events = feed(`set=1\n${line}\n\nget=1\n\n`, size);
        expect(events).toEqual([{ kind: 'error', error: expect.any(UapiError), fatal: true }]);
        expect((events[0] as { error: UapiError }).error.errno).toBe(EIO);
      }
    }
  });

  it('bounds a set request by maxRequestBytes: EIO, fatal', () => {
    const p = new UapiRequestParser({ maxRequestBytes: 1000 });
    const events = p.push(Buffer.from(`set=1\npublic_key=${K1}\n${'allowed_ip=10.0.0.0/8\n'.repeat(100)}\n`));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'error', fatal: true, error: { errno: EIO } });
    expect(p.closed).toBe(true);
    expect(() => new UapiRequestParser({ maxRequestBytes: 1 })).toThrow(RangeError);
  });
});

describe('set=1 transaction contents', () => {
  it('decodes every key', () => {
    const tx = parseSetBody(
      `private_key=${'ff'.repeat(32)}\nlisten_port=51820\nfwmark=7\nreplace_peers=true\n` +
        `public_key=${K1}\npreshared_key=${K2}\nendpoint=[fe80::1%eth0]:51820\npersistent_keepalive_interval=25\n` +
        `allowed_ip=10.0.0.1/24\nallowed_ip=-fd00::/64\nprotocol_version=1\n` +
        `public_key=${K2}\nupdate_only=true\npreshared_key=${ZERO}\nendpoint=1.2.3.4:5\n` +
        `public_key=${K1}\nremove=true\n\nignored-after-blank\n`,
    );
    // the private key is clamped on input, as wireguard-go does
    expect(Buffer.from(tx.privateKey!).toString('hex')).toBe(`f8${'ff'.repeat(30)}7f`);
    expect(tx.listenPort).toBe(51820);
    expect(tx.fwmark).toBe(7);
    expect(tx.replacePeers).toBe(true);
    expect(tx.peers).toHaveLength(3);
    const [a, b, c] = [...tx.peers];
    expect(Buffer.from(a!.publicKey).toString('hex')).toBe(K1);
    expect(Buffer.from(a!.presharedKey!).toString('hex')).toBe(K2);
    expect(a!.endpoint).toEqual({ address: 'fe80::1', port: 51820, zone: 'eth0' });
    expect(a!.persistentKeepaliveInterval).toBe(25);
    expect([...a!.allowedIps]).toEqual([
      { ip: new Uint8Array([10, 0, 0, 1]), cidr: 24, remove: false },
      { ip: new Uint8Array([0xfd, ...new Array<number>(15).fill(0)]), cidr: 64, remove: true },
    ]);
    expect(a!).toMatchObject({ remove: false, updateOnly: false, replaceAllowedIps: false });
    expect(b!).toMatchObject({ updateOnly: true, presharedKey: null, endpoint: { address: '1.2.3.4', port: 5 } });
    expect(b!.endpoint).not.toHaveProperty('zone');
    expect(b!.persistentKeepaliveInterval).toBeUndefined();
    expect(c!).toMatchObject({ remove: true });
  });

  it('leaves unmentioned fields undefined and maps zero keys to null', () => {
    const empty = parseSetBody('');
    expect({ ...empty, peers: [...empty.peers] }).toEqual({ privateKey: undefined, listenPort: undefined, fwmark: undefined, replacePeers: false, peers: [] });
    expect(parseSetBody(`private_key=${ZERO}\n`).privateKey).toBeNull();
  });

  it('replace_allowed_ips drops the allowed_ip lines before it in the same section', () => {
    const tx = parseSetBody(`public_key=${K1}\nallowed_ip=10.1.0.0/16\nreplace_allowed_ips=true\nallowed_ip=10.9.9.0/24\n`);
    expect(tx.peers.at(0)!.replaceAllowedIps).toBe(true);
    expect([...tx.peers.at(0)!.allowedIps].map((a) => a.cidr)).toEqual([24]);
  });

  it('canonicalizes endpoint addresses', () => {
    const ep = (v: string) => parseSetBody(`public_key=${K1}\nendpoint=${v}\n`).peers.at(0)!.endpoint;
    expect(ep('[FD00:0:0::1]:1')).toEqual({ address: 'fd00::1', port: 1 });
    expect(ep('[::ffff:1.2.3.4]:0')).toEqual({ address: '::ffff:1.2.3.4', port: 0 });
  });

  it('throws TypeError for a non-string body', () => {
    expect(() => parseSetBody(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('request framing', () => {
  it('frames get, set and pipelined requests identically for any chunking', () => {
    const text = `get=1\n\nset=1\nlisten_port=1\n\nset=1\r\n`;
    for (const size of [Infinity, 1, 2, 3, 5]) {
      const kinds = feed(text, size).map((e) => e.kind);
      expect(kinds).toEqual(['get', 'set', 'close']);
    }
  });

  it('closes without a reply on an unknown operation', () => {
    for (const op of ['get=2\n\n', 'GET=1\n\n', 'get=1\r\n\r\n', '\n', 'x'.repeat(100_000), '\u0000\u00ff garbage']) {
      for (const size of [Infinity, 1]) {
        const events = feed(op, size);
        expect(events).toHaveLength(1);
        expect(events[0]!.kind).toBe('close');
      }
    }
  });

  it('answers EINVAL for a byte other than \\n after get=1\\n, consuming it, and continues', () => {
    const events = feed('get=1\nxget=1\n\n');
    expect(events.map((e) => e.kind)).toEqual(['error', 'get']);
    expect(events[0]).toMatchObject({ fatal: false, error: { errno: EINVAL } });
  });

  it('after a non-fatal set error skips to the blank line, then serves the next request', () => {
    const events = feed(`set=1\nbogus=1\nlisten_port=5\n${'y'.repeat(100_000)}\n\nget=1\n\n`, 4096);
    expect(events.map((e) => e.kind)).toEqual(['error', 'get']);
  });

  it('after a set error, a line split across chunks is skipped as a whole, not taken for the blank line', () => {
    const text = 'set=1\nbogus=1\nfoo\n\nget=1\n\n';
    const cut = text.indexOf('foo') + 3;
    const p = new UapiRequestParser();
    const events = [...p.push(Buffer.from(text.slice(0, cut))), ...p.push(Buffer.from(text.slice(cut)))];
    expect(events.map((e) => e.kind)).toEqual(['error', 'get']);
    expect(feed(text, 1).map((e) => e.kind)).toEqual(['error', 'get']);
  });

  it('at end of input applies a set cut short (as wireguard-go does) but not a get', () => {
    expect(feed('set=1\nlisten_port=51998\n', Infinity, true)).toMatchObject([{ kind: 'set', tx: { listenPort: 51998 } }]);
    expect(feed('set=1\nlisten_port=51997', Infinity, true)).toMatchObject([{ kind: 'set', tx: { listenPort: 51997 } }]);
    expect(feed('set=1\n', Infinity, true)).toMatchObject([{ kind: 'set' }]);
    expect(feed('set=1\nlisten_port=5x', Infinity, true)).toMatchObject([{ kind: 'error', error: { errno: EINVAL } }]);
    expect(feed('get=1\n', Infinity, true)).toEqual([]);
    expect(feed('get=1', Infinity, true)).toEqual([]);
    expect(feed('set=1\nbogus=1\nlisten_port=5', Infinity, true).map((e) => e.kind)).toEqual(['error']);
  });

  it('ignores input after close and rejects a non-Uint8Array chunk', () => {
    const p = new UapiRequestParser();
    expect(p.push(Buffer.from('nope\n'))[0]!.kind).toBe('close');
    expect(p.push(Buffer.from('get=1\n\n'))).toEqual([]);
    expect(p.end()).toEqual([]);
    expect(() => p.push('get=1' as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('answers random garbage the same for any chunking, with known errnos, and stops after a close', () => {
    let seed = 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    const alphabet = Buffer.from(`set=1\nget=1\n\r=_-:/[]%.0123456789abcdef${K1}`);
    const errnos = new Set<number>(Object.values(UAPI_ERRNO));
    const summary = (events: UapiRequest[]) =>
      events.map((e) => (e.kind === 'error' ? `error ${e.error.errno} ${e.fatal}` : e.kind === 'set' ? `set ${JSON.stringify(normalTx(e.tx))}` : e.kind));
    const kinds = new Set<string>();
    for (let round = 0; round < 300; round++) {
      const bytes = new Uint8Array(200 + (rand() << 2));
      for (let i = 0; i < bytes.length; i++) bytes[i] = rand() < 200 ? alphabet[rand() % alphabet.length]! : rand();
      const prefix = ['set=1\n', 'get=1\n', 'get=1\n\n', 'set=1\nlisten_port=7\n\n'][round % 4]!;
      const all = Buffer.concat([Buffer.from(prefix), bytes]);
      const whole = [...new UapiRequestParser().push(all)];
      const p = new UapiRequestParser();
      const pieces: UapiRequest[] = [];
      for (let i = 0; i < all.length; ) {
        const n = 1 + (rand() & 31);
        pieces.push(...p.push(all.subarray(i, i + n)));
        i += n;
      }
      expect(summary(pieces)).toEqual(summary(whole));
      pieces.push(...p.end());
      for (const [i, e] of pieces.entries()) {
        kinds.add(e.kind);
        if (e.kind === 'error') expect(errnos.has(e.error.errno)).toBe(true);
        // Nothing comes after a close or a fatal error.
        if (e.kind === 'close' || (e.kind === 'error' && e.fatal)) expect(i).toBe(pieces.length - 1);
      }
    }
    expect([...kinds].sort()).toEqual(['close', 'error', 'get', 'set']);
  });
});
