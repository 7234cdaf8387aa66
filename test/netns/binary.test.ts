// Root tier, issue 17: the standalone binary (dist/bin/plexd-userspace-linux-ARCH, built first when
// missing or stale, copied out of the checkout as `plexd-userspace` so it can use only what it
// carries) is a wireguard-go drop-in as bin/plexd-userspace.js is: in a namespace it
// prints its version, runs the demo, runs `-f IFNAME` against Debian's wireguard-go in a second
// namespace with kernel ping through the tunnel, and daemonizes without -f; `demo --tun` runs the
// control plane and agents as child processes of the binary. Its addons are
// unpacked under this test's XDG_CACHE_HOME (0700/0600), never in ~/.cache or /var/lib/plexd.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uapiRequest } from '../../src/uapi/server.js';
import { BUILD_TIMEOUT_MS, installedBinary } from '../helpers/binary.js';
import { run, sweepStale, type Netns } from '../helpers/netns.js';
import { WgLab, daemonPids, pingUntil, socketPath, wgUnavailableReason } from '../helpers/wg-lab.js';

const skipReason = wgUnavailableReason('test/netns/binary.test.ts', ['wg', 'wireguard-go', 'ping']);

const OUTER_A = '10.78.0.1';
const OUTER_B = '10.78.0.2';
const IN_A = '10.201.0.1';
const IN_B = '10.201.0.2';

describe.skipIf(skipReason !== undefined)('the standalone binary in network namespaces', () => {
  const wl = new WgLab();
  let binary: string;
  let cache: string;
  let nsA: Netns;
  let nsB: Netns;
  const env = () => ({ XDG_CACHE_HOME: cache });
  const inNs = (ns: Netns, args: readonly string[], timeoutMs = 40_000) => ns.run(['env', `XDG_CACHE_HOME=${cache}`, binary, ...args], { timeoutMs });

  beforeAll(async () => {
    sweepStale();
    binary = await installedBinary(wl.dir);
    cache = join(wl.dir, 'cache');
    nsA = await wl.namespace();
    nsB = await wl.namespace();
    await wl.lab.veth(nsA, nsB, { a: [`${OUTER_A}/24`], b: [`${OUTER_B}/24`] });
  }, BUILD_TIMEOUT_MS + 30_000);

  afterAll(() => wl.cleanup());

  it('--version and demo, exit 0', async () => {
    const v = await inNs(nsA, ['--version']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^plexd-userspace v\d+\.\d+\.\d+/);
    const d = await inNs(nsA, ['demo'], 90_000);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('all 6 pairs answered');
  }, 120_000);

  it('demo --tun: the binary starts itself as `control-plane serve` and `up` in namespaces of its own', async () => {
    const r = await run(['env', `XDG_CACHE_HOME=${cache}`, binary, 'demo', '--tun', '--nodes', '2'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('all 2 pairs answered');
  }, 150_000);

  it('-f IFNAME against Debian wireguard-go: handshake and kernel ping both ways; addons unpacked privately', async () => {
    const a = await wl.start(nsA, 'ours', { command: [binary], env: env(), addresses: [`${IN_A}/24`] });
    const b = await wl.start(nsB, 'wireguard-go', { addresses: [`${IN_B}/24`] });
    await wl.connect(a, b, { endpointOfB: `${OUTER_B}:${await b.listenPort()}`, endpointOfA: `${OUTER_A}:${await a.listenPort()}` });
    expect((await pingUntil(nsA, IN_B)).received, a.output).toBeGreaterThan(0);
    expect((await pingUntil(nsB, IN_A)).received, a.output).toBeGreaterThan(0);

    const dir = join(cache, 'plexd-userspace');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files.some((f) => /^plexd_native-[0-9a-f]{16}\.node$/.test(f)), files.join(' ')).toBe(true);
    for (const f of files) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
  }, 90_000);

  it('without -f it daemonizes: the parent exits 0 once the interface and socket exist', async () => {
    const name = wl.lab.uniqueName('s');
    wl.adopt(name);
    const r = await inNs(nsB, [name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(daemonPids(name)).toHaveLength(1);
    expect((await uapiRequest(socketPath(name), 'get=1\n\n')).endsWith('errno=0\n\n')).toBe(true);
  }, 60_000);
});
