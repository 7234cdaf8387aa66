// Differential UAPI test: the same request texts go to a real wireguard-go (Debian's) and to our
// parser; the errno must agree, except for the deviations listed (and explained) below. Then the
// same configuration is applied to both and get=1 must print the same text.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UapiRequestParser } from '../../src/uapi/protocol.js';
import { formatGetResponse } from '../../src/uapi/serialize.js';
import { uapiRequest } from '../../src/uapi/server.js';
import { memoryDevice } from '../helpers/memory-device.js';
import { NetnsLab, sweepStale } from '../helpers/netns.js';

// A name of this process's own (`plxt<pid base36>-…`): `pxuapi<pid % 1000>` could be another
// run's interface, which the cleanup below would delete.
const IFNAME = new NetnsLab().uniqueName('u');
const SOCKET = `/var/run/wireguard/${IFNAME}.sock`;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (wireguard-go needs CAP_NET_ADMIN for its TUN)';
  if (spawnSync('wireguard-go', ['--version']).status !== 0) return 'wireguard-go is not installed';
  return undefined;
}
const reason = skipReason();
if (reason !== undefined) console.warn(`[skip] UAPI differential test against wireguard-go: ${reason}`);

const K1 = 'e53b41985234e339d15b61e1882d7be20cad3709abff0d4d283426e6edef271e';
const K2 = 'f4a8e4a37f467ab2c5dbcf62761bcadcd9b3cd7e6ac2f8404b8146959339f704';
const ZERO = '0'.repeat(64);

// Set bodies (without "set=1\n" and the final blank line) whose errno must match.
const SAME: readonly string[] = [
  '',
  `private_key=${K1}\nlisten_port=0\nfwmark=7\nreplace_peers=true\n`,
  `private_key=${K1.toUpperCase()}\n`,
  `private_key=${K1.slice(2)}\n`,
  'listen_port\n',
  'listen_port=\n',
  'listen_port=65536\n',
  'listen_port=+5\n',
  'listen_port=0000\n',
  'listen_port=0\r\n',
  'listen_port=5\u00001\n',
  'fwmark=4294967296\n',
  'fwmark=0x10\n',
  'fwmark=0\n',
  'replace_peers=false\n',
  'bogus=1\n',
  '=\n',
  'list\u00e9n_port=5\n',
  'endpoint=1.2.3.4:5\n',
  `public_key=${K1}\nlisten_port=5\n`,
  `public_key=${K1}00\n`,
  `public_key=${ZERO}\nremove=true\n`,
  `public_key=${K1}\npreshared_key=${K2}\npreshared_key=${ZERO}\n`,
  `public_key=${K1}\npreshared_key=zz\n`,
  `public_key=${K1}\nendpoint=[fd00::1]:51820\n`,
  `public_key=${K1}\nendpoint=[::ffff:1.2.3.4]:0\n`,
  `public_key=${K1}\nendpoint=1.2.3.4:01\n`,
  `public_key=${K1}\nendpoint=localhost:51820\n`,
  `public_key=${K1}\nendpoint=fd00::1:51820\n`,
  `public_key=${K1}\nendpoint=[1.2.3.4]:1\n`,
  `public_key=${K1}\nendpoint=1.2.3.4:+1\n`,
  `public_key=${K1}\npersistent_keepalive_interval=65536\n`,
  `public_key=${K1}\nprotocol_version=2\n`,
  `public_key=${K1}\nupdate_only=false\n`,
  `public_key=${K1}\nremove=false\n`,
  `public_key=${K1}\nreplace_allowed_ips=false\n`,
  `public_key=${K1}\nallowed_ip=10.9.0.0\n`,
  `public_key=${K1}\nallowed_ip=10.9.0.0/33\n`,
  `public_key=${K1}\nallowed_ip=fe80::1%eth0/64\n`,
  `public_key=${K1}\nallowed_ip=10.9.0.0/16 \n`,
  `public_key=${K1}\nallowed_ip\n`,
  `${'x'.repeat(65535)}\n`,
  `${'x'.repeat(65536)}\n`,
  `${'x'.repeat(65535)}\r\n`,
  `public_key=${K1}\nremove=true\n`,
];

// Deliberate differences from wireguard-go v0.0.20220316: [body, its errno, ours, why].
const DIFFERENT: ReadonlyArray<readonly [string, number, number, string]> = [
  [`public_key=${K1}\nallowed_ip=-10.1.0.0/16\nremove=true\n`, -22, 0, 'removal syntax added in later wireguard-go'],
  [`public_key=${K1}\nallowed_ip=10.2.0.0/+8\nremove=true\n`, 0, -22, 'Go 1.18 netip took a signed cidr; later Go refuses'],
  [`public_key=${K1}\nallowed_ip=10.3.0.0/08\nremove=true\n`, 0, -22, 'Go 1.18 netip took leading zeros; later Go refuses'],
];

function ourErrno(body: string): number {
  const events = new UapiRequestParser().push(Buffer.from(`set=1\n${body}\n`, 'latin1'));
  const e = events[0];
  if (e?.kind === 'set') return 0;
  if (e?.kind === 'error') return e.error.errno;
  throw new Error(`no result for ${JSON.stringify(body.slice(0, 60))}`);
}

async function theirErrno(body: string): Promise<number> {
  const reply = await uapiRequest(SOCKET, `set=1\n${body}\n`);
  const m = /errno=(-?\d+)\n\n$/.exec(reply);
  if (m === null) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

describe.skipIf(reason !== undefined)('UAPI against wireguard-go', () => {
  let daemon: ChildProcess | undefined;

  const cleanup = () => {
    daemon?.kill('SIGTERM');
    spawnSync('ip', ['link', 'del', IFNAME], { stdio: 'ignore' });
  };

  beforeAll(async () => {
    sweepStale();
    process.once('exit', cleanup);
    daemon = spawn('wireguard-go', [IFNAME], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' }, stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(SOCKET); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(SOCKET)).toBe(true);
  });

  afterAll(async () => {
    cleanup();
    process.off('exit', cleanup);
    for (let i = 0; i < 40 && existsSync(SOCKET); i++) await new Promise((r) => setTimeout(r, 50));
  });

  it.each(SAME.map((body) => [JSON.stringify(body).slice(0, 80), body] as const))('same errno for %s', async (_n, body) => {
    expect(ourErrno(body)).toBe(await theirErrno(body));
  });

  it.each(DIFFERENT.map(([body, theirs, ours, why]) => [why, body, theirs, ours] as const))(
    'known deviation: %s',
    async (_why, body, theirs, ours) => {
      expect(await theirErrno(body)).toBe(theirs);
      expect(ourErrno(body)).toBe(ours);
    },
  );

  it('prints the same get=1 text for the same configuration', async () => {
    // One peer (wireguard-go lists peers in map order), no endpoint (so no handshake traffic).
    const body =
      `private_key=${'ff'.repeat(32)}\nfwmark=9\nreplace_peers=true\n` +
      `public_key=${K2}\npreshared_key=${K1}\npersistent_keepalive_interval=0\n` +
      'allowed_ip=10.0.0.1/24\nallowed_ip=fd00::1/64\nallowed_ip=::ffff:1.2.3.4/128\nallowed_ip=0.0.0.0/0\n' +
      `allowed_ip=10.0.0.0/24\n`;
    expect(await theirErrno(body)).toBe(0);
    const theirs = await uapiRequest(SOCKET, 'get=1\n\n');
    // The port wireguard-go bound is its own business; bind ours (a memory twin) to the same.
    const ours = await memoryDevice(Number(/listen_port=(\d+)/.exec(theirs)?.[1] ?? 0));
    try {
      const events = new UapiRequestParser().push(Buffer.from(`set=1\n${body}\n`));
      if (events[0]?.kind !== 'set') throw new Error('did not parse');
      await ours.apply(events[0].tx);
      expect(formatGetResponse(ours.snapshot())).toBe(theirs);
    } finally {
      await ours.close();
    }
  });
});
