// Root tier, issue 3: the daemon's command-line and lifecycle contract, the one wireguard-go has
// (main.go): --version, usage errors, a daemonized parent that exits 0 only once the interface
// and UAPI socket exist, LOG_LEVEL, SIGTERM and interface deletion ending the daemon cleanly,
// transactional UAPI errors, the TUN moved to another namespace. Skipped with a reason when not root.

import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uapiRequest } from '../../src/uapi/server.js';
import { run, sweepStale, type Netns } from '../helpers/netns.js';
import { DAEMON, WgLab, daemonPids, ensureBuilt, genKeys, pingUntil, waitFor, wgUnavailableReason, type WgInterface } from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/daemon.test.ts', ['wg', 'wireguard-go', 'ping']);
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Runs our CLI (in `ns` when given) with `env` added; resolves with its status and output. */
function cli(args: readonly string[], opts: { ns?: Netns; env?: Record<string, string> } = {}) {
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const argv = ['env', ...env, process.execPath, DAEMON, ...args];
  return opts.ns === undefined ? run(argv, { timeoutMs: 40_000 }) : opts.ns.run(argv, { timeoutMs: 40_000 });
}

const linkExists = async (ns: Netns, name: string) => (await ns.run(['ip', 'link', 'show', 'dev', name])).code === 0;

describe.skipIf(skipReason !== undefined)('plexd-userspace daemon contract', () => {
  const wl = new WgLab();
  let ns: Netns;

  beforeAll(async () => {
    sweepStale();
    await ensureBuilt();
    ns = await wl.namespace();
  });

  afterAll(() => wl.cleanup());

  it('--version prints the package version and exits 0; --help exits 0', async () => {
    const v = await cli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^plexd-userspace v${PACKAGE_VERSION.replace(/\./g, '\\.')}\\n`));
    const h = await cli(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: plexd-userspace');
  });

  it('bad usage exits 2 with the usage text and creates nothing', async () => {
    const name = wl.lab.uniqueName('u');
    for (const args of [[], ['-f'], ['--foreground'], ['-f', name, 'extra'], [name, 'extra'], ['--bogus'], ['-f', '--bogus']]) {
      const r = await cli(args, { ns });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('Usage: plexd-userspace');
    }
    expect(await linkExists(ns, name)).toBe(false);
    expect(existsSync(`/var/run/wireguard/${name}.sock`)).toBe(false);
  });

  it('daemonizes: the parent exits 0 only once interface and socket exist; a taken or too long name exits 1 with the reason', async () => {
    const name = wl.lab.uniqueName('d');
    wl.adopt(name);
    const r = await cli([name], { ns });
    // Checked right at the parent's exit, before anything else could create them.
    const linked = await linkExists(ns, name);
    const socketed = existsSync(`/var/run/wireguard/${name}.sock`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(linked).toBe(true);
    expect(socketed).toBe(true);
    const [pid] = daemonPids(name);
    expect(pid).toBeDefined();
    expect((await uapiRequest(`/var/run/wireguard/${name}.sock`, 'get=1\n\n')).endsWith('errno=0\n\n')).toBe(true);

    // The same name again, in the same namespace (TUN busy) and in another one (socket served).
    const other = await wl.namespace();
    for (const where of [ns, other]) {
      const again = await cli([name], { ns: where });
      expect(again.code, again.stderr).toBe(1);
      expect(again.stderr).toMatch(/plexd-userspace: .+/);
      expect(again.stderr.toLowerCase()).toMatch(/in use|taken|busy|exists/);
      expect(await linkExists(other, name)).toBe(false);
    }
    // The first daemon is untouched.
    expect(daemonPids(name)).toEqual([pid]);
    expect((await uapiRequest(`/var/run/wireguard/${name}.sock`, 'get=1\n\n')).endsWith('errno=0\n\n')).toBe(true);

    const long = 'x'.repeat(16);
    for (const args of [[long], ['-f', long]]) {
      const bad = await cli(args, { ns });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('15');
      expect(existsSync(`/var/run/wireguard/${long}.sock`)).toBe(false);
    }
  });

  it('LOG_LEVEL: verbose logs wireguard-go style DEBUG lines, error and silent stay quiet', async () => {
    const outputs: Record<string, string> = {};
    for (const level of ['verbose', 'error', 'silent', '']) {
      const i = await wl.start(ns, 'ours', { env: level === '' ? {} : { LOG_LEVEL: level } });
      await i.set('peer', genKeys().publicKey, 'allowed-ips', '10.9.0.0/24');
      i.process.kill('SIGTERM');
      expect(await i.exited(5000)).toEqual({ code: 0, signal: null });
      outputs[level] = i.output;
    }
    expect(outputs['verbose']).toMatch(/^DEBUG: \(plxt[^)]+\) \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /m);
    expect(outputs['verbose']).toContain('UAPI listener started');
    expect(outputs['verbose']).toContain('Created');
    for (const level of ['error', 'silent', '']) expect(outputs[level], level).toBe('');
  });

  it('SIGTERM and SIGINT remove the interface and the socket and exit 0', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const i = await wl.start(ns, 'ours');
      expect(await linkExists(ns, i.name)).toBe(true);
      i.process.kill(sig);
      expect(await i.exited(5000), i.output).toEqual({ code: 0, signal: null });
      expect(existsSync(i.socket)).toBe(false);
      expect(await linkExists(ns, i.name)).toBe(false);
    }
  });

  it('deleting the interface ends the daemon: exit 0, socket removed', async () => {
    const i = await wl.start(ns, 'ours');
    await ns.ip('link', 'del', i.name);
    expect(await i.exited(5000), i.output).toEqual({ code: 0, signal: null });
    expect(existsSync(i.socket)).toBe(false);
  });

  it('has the MTU wireguard-go gives its TUN', async () => {
    const ours = await wl.start(ns, 'ours', { bare: true });
    const theirs = await wl.start(ns, 'wireguard-go', { bare: true });
    const mtu = async (i: WgInterface) => Number(/ mtu (\d+) /.exec(await ns.ip('link', 'show', 'dev', i.name))?.[1]);
    expect(await mtu(theirs)).toBe(1420);
    expect(await mtu(ours)).toBe(await mtu(theirs));
  });

  it('bad UAPI input gets a negative errno and changes nothing', async () => {
    const i = await wl.start(ns, 'ours');
    const peer = genKeys();
    await i.set('listen-port', '41234', 'peer', peer.publicKey, 'allowed-ips', '10.8.0.0/24');
    const before = await uapiRequest(i.socket, 'get=1\n\n');
    const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
    const other = hex(genKeys().publicKey);
    const bad: ReadonlyArray<readonly [string, number]> = [
      // Valid lines first: a transactional set must not apply them either.
      [`set=1\nlisten_port=5555\npublic_key=${other}\nallowed_ip=10.7.0.0/33\n\n`, -22],
      [`set=1\nreplace_peers=true\npublic_key=${other}\nendpoint=localhost:1\n\n`, -22],
      [`set=1\nlisten_port=5555\nbogus=1\n\n`, -22],
      [`set=1\nprivate_key=${hex(genKeys().privateKey)}\nlisten_port\n\n`, -71],
      [`set=1\npublic_key=${hex(peer.publicKey)}\nremove=true\nprotocol_version=2\n\n`, -22],
      [`set=1\npublic_key=${hex(peer.publicKey)}\nreplace_allowed_ips=true\npersistent_keepalive_interval=65536\n\n`, -22],
    ];
    for (const [text, errno] of bad) {
      const reply = await uapiRequest(i.socket, text);
      expect(reply, text).toBe(`errno=${errno}\n\n`);
      expect(await uapiRequest(i.socket, 'get=1\n\n'), text).toBe(before);
    }
    // Control: the same kind of request, valid, does change things.
    expect(await uapiRequest(i.socket, `set=1\nlisten_port=5555\npublic_key=${other}\nallowed_ip=10.7.0.0/24\n\n`)).toBe('errno=0\n\n');
    const after = await uapiRequest(i.socket, 'get=1\n\n');
    expect(after).toContain('listen_port=5555\n');
    expect(after).toContain('allowed_ip=10.7.0.0/24\n');
  });
});

describe.skipIf(skipReason !== undefined)('the interface moved to another namespace', () => {
  const wl = new WgLab();

  afterAll(() => wl.cleanup());

  it('keeps passing traffic, and deleting it there still ends the daemon', async () => {
    await ensureBuilt();
    const nsA = await wl.namespace();
    const nsB = await wl.namespace();
    const nsC = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: '10.79.0.1/24', b: '10.79.0.2/24' });
    const a = await wl.start(nsA, 'ours', { bare: true });
    await a.set('private-key', a.keys.privateKey);
    const b = await wl.start(nsB, 'wireguard-go', { addresses: ['10.201.0.2/24'] });
    // The UDP socket stays in A (where the daemon lives); only the TUN goes to C.
    await nsA.ip('link', 'set', a.name, 'netns', nsC.name);
    expect(await linkExists(nsA, a.name)).toBe(false);
    await nsC.ip('addr', 'add', '10.201.0.1/24', 'dev', a.name);
    await nsC.ip('link', 'set', a.name, 'up');
    await wl.connect(a, b, { allowedOfA: ['10.201.0.1/32'], allowedOfB: ['10.201.0.2/32'], endpointOfB: `10.79.0.2:${await b.listenPort()}` });
    const r = await pingUntil(nsC, '10.201.0.2');
    expect(r.ok, r.output + a.output).toBe(true);
    expect((await pingUntil(nsB, '10.201.0.1')).ok).toBe(true);
    expect(await a.exited(500)).toBeUndefined();
    expect((await a.peer(b)).latestHandshake).toBeGreaterThan(0);

    await nsC.ip('link', 'del', a.name);
    expect(await a.exited(5000), a.output).toEqual({ code: 0, signal: null });
    expect(existsSync(a.socket)).toBe(false);
    await waitFor(() => !existsSync(a.socket), 1000);
  });
});
