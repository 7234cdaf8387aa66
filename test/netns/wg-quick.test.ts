// Root tier, issue 3: `WG_QUICK_USERSPACE_IMPLEMENTATION=plexd-userspace wg-quick up ./IF.conf`
// starts our daemon (there is no wireguard kernel module here, so wg-quick falls back to the
// userspace implementation), configures addresses, routes and the peer so traffic flows to a
// wireguard-go peer; `wg-quick down` then ends the daemon. Runs inside namespaces; no DNS= line,
// so resolvconf is never touched.

import { existsSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sweepStale } from '../helpers/netns.js';
import { DAEMON, WgLab, alive, daemonPids, ensureBuilt, genKeys, pingUntil, socketPath, waitFor, wgUnavailableReason } from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/wg-quick.test.ts', ['wg', 'wg-quick', 'wireguard-go', 'ping']);

describe.skipIf(skipReason !== undefined)('wg-quick with plexd-userspace', () => {
  const wl = new WgLab();

  afterAll(() => wl.cleanup());

  it('up starts our daemon and the tunnel passes traffic; down ends it', async () => {
    sweepStale();
    await ensureBuilt();
    const nsA = await wl.namespace();
    const nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: '10.80.0.1/24', b: '10.80.0.2/24' });
    const b = await wl.start(nsB, 'wireguard-go', { addresses: ['10.202.0.2/24', 'fd22::2/64'] });

    const name = wl.lab.uniqueName('q');
    wl.adopt(name);
    const keys = genKeys();
    const conf = wl.file(
      [
        '[Interface]',
        `PrivateKey = ${keys.privateKey}`,
        'Address = 10.202.0.1/24, fd22::1/64',
        'ListenPort = 51820',
        '',
        '[Peer]',
        `PublicKey = ${b.keys.publicKey}`,
        'AllowedIPs = 10.202.0.2/32, fd22::2/128',
        `Endpoint = 10.80.0.2:${await b.listenPort()}`,
        '',
      ].join('\n'),
      `${name}.conf`,
    );
    await b.set('peer', keys.publicKey, 'allowed-ips', '10.202.0.1/32,fd22::1/128');

    // wg-quick runs `plexd-userspace IFNAME`: a shim directory puts our bin under that name on PATH.
    const shim = join(wl.dir, 'bin');
    await nsA.runOk(['mkdir', shim]);
    symlinkSync(DAEMON, join(shim, 'plexd-userspace'));
    const env = ['env', `PATH=${shim}:${dirname(process.execPath)}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, 'WG_QUICK_USERSPACE_IMPLEMENTATION=plexd-userspace'];

    const up = await nsA.run([...env, 'wg-quick', 'up', conf], { timeoutMs: 60_000 });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`[#] plexd-userspace ${name}`);
    const pids = daemonPids(name);
    expect(pids).toHaveLength(1);
    expect(existsSync(socketPath(name))).toBe(true);
    expect(await nsA.ip('link', 'show', 'dev', name)).toMatch(/ mtu \d+ .*state UNKNOWN|UP/);

    expect((await pingUntil(nsA, '10.202.0.2')).ok).toBe(true);
    expect((await pingUntil(nsA, 'fd22::2')).ok).toBe(true);
    const show = await nsA.runOk(['wg', 'show', name, 'listen-port']);
    expect(show.trim()).toBe('51820');
    expect((await b.peer(keys.publicKey)).endpoint).toBe('10.80.0.1:51820');

    const down = await nsA.run([...env, 'wg-quick', 'down', conf], { timeoutMs: 30_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(await waitFor(() => pids.every((pid) => !alive(pid)), 5000)).toBe(true);
    expect(existsSync(socketPath(name))).toBe(false);
    expect((await nsA.run(['ip', 'link', 'show', 'dev', name])).code).not.toBe(0);
  });
});
