// Issue 16: public ingress through a bridge, end to end. An "internet" namespace runs Debian's
// pebble (ACME CA) with pebble-challtestsrv as its DNS (every A query answers the bridge), a
// control plane and three agents: the bridge (mode bridge, ingress and ACME on, pebble as the
// directory), node A (plain HTTP on its mesh IP:8080) and node B (its own TLS server on 8443). A
// client namespace speaks HTTPS to the bridge's public address. Rules come from the control plane's
// `ingress add/remove` CLI and reach the bridge through its state pull and bridge_config_updated.
//
// Network rule: traffic stays inside the namespaces this file creates (and their loopbacks).

import { execFile } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/control-plane/certificate.js';
import { requireRoot, type Netns } from '../helpers/netns.js';
import { MeshLab, until, type AgentProc } from '../helpers/mesh-lab.js';
import { DAEMON } from '../helpers/wg-lab.js';

const reason = requireRoot('bridge-ingress netns tests');
const execFileP = promisify(execFile);

const NET = '10.86.0';
const BRIDGE_IP = `${NET}.11`;
const PEBBLE_IP = `${NET}.5`;
const CLIENT_IP = `${NET}.6`;
const CLIENT = new URL('./ingress-client.mjs', import.meta.url).pathname;

interface Reply {
  readonly status?: number;
  readonly body?: string;
  readonly fingerprint?: string;
  readonly issuer?: string | null;
  readonly error?: string;
}

describe.skipIf(reason !== undefined)('bridge public ingress: ACME from pebble, passthrough, terminate, refusals, restart, removal', () => {
  const mesh = new MeshLab({ net: NET });
  const agents = mesh.agents;
  let internet: Netns;
  let client: Netns;
  let pebbleLog: string[] = [];
  let meshIps: string[] = [];
  let bridgeId = '';
  let pebbleRoot = '';
  const bCert = createSelfSignedCertificate(['b.test']);
  const cCert = createSelfSignedCertificate(['c.test']);

  const cli = async (...args: string[]): Promise<string> => (await execFileP(process.execPath, [DAEMON, 'control-plane', 'ingress', ...args, '--db', mesh.db])).stdout;
  const get = async (hostname: string, ca: string): Promise<Reply> => JSON.parse(await client.runOk([process.execPath, CLIENT, BRIDGE_IP, '443', hostname, ca], { timeoutMs: 15_000 })) as Reply;
  const ingressStatus = async (): Promise<Record<string, unknown>> => ((((await mesh.status(agents[0]!))['nat'] as Record<string, unknown>)['bridge'] as Record<string, unknown>)['ingress'] as Record<string, unknown>);
  const pebbleOrders = (): number => pebbleLog.join('').split('\n').filter((l) => /POST \/order-plz/.test(l)).length;

  beforeAll(async () => {
    await mesh.setup(3, 'plexd-ingress-');
    const dir = mesh.dir;
    // The "internet": pebble's API on :14000 (its own certificate), management on :15000,
    // validations to the bridge's ports 80 and 443, DNS from challtestsrv (A -> the bridge).
    internet = await mesh.lab.namespace();
    await mesh.plug(internet, PEBBLE_IP);
    client = await mesh.lab.namespace();
    await mesh.plug(client, CLIENT_IP);
    const api = createSelfSignedCertificate([PEBBLE_IP]);
    writeFileSync(join(dir, 'pebble.crt'), api.certPem);
    writeFileSync(join(dir, 'pebble.key'), api.keyPem);
    writeFileSync(
      join(dir, 'pebble.json'),
      JSON.stringify({ pebble: { listenAddress: `${PEBBLE_IP}:14000`, managementListenAddress: `${PEBBLE_IP}:15000`, certificate: join(dir, 'pebble.crt'), privateKey: join(dir, 'pebble.key'), httpPort: 80, tlsPort: 443, ocspResponderURL: '', externalAccountBindingRequired: false } }),
    );
    const dns = internet.spawn(['pebble-challtestsrv', '-defaultIPv4', BRIDGE_IP, '-defaultIPv6', '', '-dns01', `${PEBBLE_IP}:8053`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `${PEBBLE_IP}:8055`]);
    dns.stdout?.resume();
    dns.stderr?.resume();
    const pebble = internet.spawn(['pebble', '-config', join(dir, 'pebble.json'), '-dnsserver', `${PEBBLE_IP}:8053`], { env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' } });
    pebbleLog = [];
    pebble.stdout!.on('data', (d: Buffer) => pebbleLog.push(d.toString()));
    pebble.stderr!.on('data', (d: Buffer) => pebbleLog.push(d.toString()));
    await until('pebble listens', 15_000, async () => (pebbleLog.join('').includes('Listening on') ? true : undefined));
    pebbleRoot = join(dir, 'pebble-root.pem');
    await until('pebble root', 10_000, async () => {
      const r = await internet.run(['curl', '-sfk', `https://${PEBBLE_IP}:15000/roots/0`, '-o', pebbleRoot], { timeoutMs: 5000 });
      return r.code === 0 ? true : undefined;
    });
    writeFileSync(join(dir, 'c.crt'), cCert.certPem);
    writeFileSync(join(dir, 'c.key'), cCert.keyPem);
    writeFileSync(join(dir, 'b.crt'), bCert.certPem);
    writeFileSync(join(dir, 'b-ca.pem'), bCert.certPem);
    writeFileSync(join(dir, 'c-ca.pem'), cCert.certPem);
    agents[0]!.extra = [
      'mode: bridge',
      `bridge: {relay_listen_port: 51821, ingress_enabled: true, ingress_dial_timeout: 3s, acme_enabled: true, acme_directory_url: "https://${PEBBLE_IP}:14000/dir", acme_ca_file: ${join(dir, 'pebble.crt')}, acme_cache_dir: ${join(dir, 'acme')}, acme_email: ops@example.test, acme_allowed_hosts: [app.test, alpn.test]}`,
    ];
    meshIps = await mesh.upAll();
    bridgeId = (await mesh.status(agents[0]!))['node_id'] as string;
    // Node A: plain HTTP on 8080; node B: its own TLS server on 8443 (b.test's certificate).
    const [, a, b] = agents as [AgentProc, AgentProc, AgentProc];
    a.ns.spawn([process.execPath, '-e', `require('http').createServer((q, s) => s.end('node A')).listen(8080)`]);
    b.ns.spawn([process.execPath, '-e', `require('https').createServer({ cert: ${JSON.stringify(bCert.certPem)}, key: ${JSON.stringify(bCert.keyPem)} }, (q, s) => s.end('node B')).listen(8443)`]);
  }, 120_000);
  afterAll(() => mesh.cleanup());

  it('(1) acme: pebble issues app.test, the client gets node A over verified HTTPS', async () => {
    await cli('add', 'app.test', '--bridge', bridgeId, '--target', `${meshIps[1]}:8080`, '--mode', 'acme');
    let last: Reply = {};
    try {
      last = await until('verified HTTPS to app.test', 60_000, async () => {
        const r = await get('app.test', pebbleRoot);
        last = r;
        return r.status === 200 ? r : undefined;
      });
    } catch (err) {
      await mesh.dump();
      console.error(pebbleLog.join('').slice(-4000), JSON.stringify(await ingressStatus().catch(() => null)), JSON.stringify(last));
      throw err;
    }
    expect(last.body).toBe('node A');
    expect(pebbleOrders()).toBe(1);
    const st = await ingressStatus();
    const acme = st['acme'] as { issued: number; hosts: Record<string, { state: string; not_after: string; challenge: string }> };
    expect(acme.issued).toBe(1);
    expect(acme.hosts['app.test']!.state).toBe('valid');
    expect(acme.hosts['app.test']!.challenge).toBe('http-01');
    expect(Date.parse(acme.hosts['app.test']!.not_after)).toBeGreaterThan(Date.now());
    // Cache: dir 0700, account key and certificate 0600.
    const cache = join(mesh.dir, 'acme');
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(cache)) expect(statSync(join(cache, f)).mode & 0o777, f).toBe(0o600);
    expect(readdirSync(cache).sort()).toEqual(['account.key', 'app.test.crt', 'app.test.key']);
    // Plain HTTP to a hostname with a rule: redirected to HTTPS.
    const loc = await client.runOk(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'Host: app.test', `http://${BRIDGE_IP}/x`], { timeoutMs: 10_000 });
    expect(loc).toBe('301 https://app.test/x');
  }, 90_000);

  it('(2) passthrough: b.test reaches node B\'s own TLS server, the client sees node B\'s certificate', async () => {
    await cli('add', 'b.test', '--bridge', bridgeId, '--target', `${meshIps[2]}:8443`, '--mode', 'passthrough');
    const r = await until('b.test through the bridge', 20_000, async () => {
      const x = await get('b.test', join(mesh.dir, 'b-ca.pem'));
      return x.status === 200 ? x : undefined;
    });
    expect(r).toMatchObject({ body: 'node B', fingerprint: bCert.fingerprint });
  }, 30_000);

  it('(3) terminate: c.test is served with the given certificate, node A behind it', async () => {
    await cli('add', 'c.test', '--bridge', bridgeId, '--target', `${meshIps[1]}:8080`, '--mode', 'terminate', '--cert', join(mesh.dir, 'c.crt'), '--key', join(mesh.dir, 'c.key'));
    const r = await until('c.test through the bridge', 20_000, async () => {
      const x = await get('c.test', join(mesh.dir, 'c-ca.pem'));
      return x.status === 200 ? x : undefined;
    });
    expect(r).toMatchObject({ body: 'node A', fingerprint: cCert.fingerprint });
    const rules = (await ingressStatus())['rules'] as Array<Record<string, unknown>>;
    const c = rules.find((x) => x['hostname'] === 'c.test')!;
    expect(c['connections']).toBeGreaterThanOrEqual(1);
    expect(c['bytes_out']).toBeGreaterThan(0);
  }, 30_000);

  it('(4) unknown SNI is refused and counted; the other rules keep working', async () => {
    const before = ((await ingressStatus())['refused'] as Record<string, number>)['unknown_sni']!;
    expect((await get('nobody.test', 'none')).error).toBeDefined();
    expect(((await ingressStatus())['refused'] as Record<string, number>)['unknown_sni']).toBe(before + 1);
    expect((await get('app.test', pebbleRoot)).body).toBe('node A');
  }, 30_000);

  it('(5) a restarted bridge serves app.test from its cache: no new ACME order', async () => {
    const ordersBefore = pebbleOrders();
    const bridge = agents[0]!;
    const exited = new Promise((r) => bridge.proc.once('exit', r));
    bridge.proc.kill('SIGTERM');
    await exited;
    const s = mesh.spawnUp(bridge.ns, join(mesh.dir, 'n1.yaml'));
    bridge.proc = s.proc;
    bridge.log = s.log;
    const r = await until('app.test after restart', 30_000, async () => {
      const x = await get('app.test', pebbleRoot);
      return x.status === 200 ? x : undefined;
    });
    expect(r.body).toBe('node A');
    const acme = (await ingressStatus())['acme'] as { orders: number; loadedFromCache: number; hosts: Record<string, { from: string }> };
    expect(acme).toMatchObject({ orders: 0, loadedFromCache: 1 });
    expect(acme.hosts['app.test']!.from).toBe('cache');
    expect(pebbleOrders()).toBe(ordersBefore);
  }, 60_000);

  it('(6) a removed rule is refused within 5 s', async () => {
    await until('c.test served', 20_000, async () => ((await get('c.test', join(mesh.dir, 'c-ca.pem'))).status === 200 ? true : undefined));
    const t0 = Date.now();
    await cli('remove', 'c.test');
    await until('c.test refused', 5_000, async () => ((await get('c.test', join(mesh.dir, 'c-ca.pem'))).error !== undefined ? true : undefined));
    console.log(`[bridge-ingress] rule removed -> refused after ${Date.now() - t0} ms`);
    expect((await get('b.test', join(mesh.dir, 'b-ca.pem'))).body).toBe('node B');
  }, 30_000);

  it('(7) without port 80 the bridge is validated over TLS-ALPN-01 on 443', async () => {
    // Port 80 taken in the bridge's namespace, then a restart: the ingress cannot open it.
    const bridge = agents[0]!;
    const exited = new Promise((r) => bridge.proc.once('exit', r));
    bridge.proc.kill('SIGTERM');
    await exited;
    const blocker = bridge.ns.spawn([process.execPath, '-e', `require('net').createServer().listen(80, () => console.log('BOUND'))`]);
    await until('port 80 taken', 5000, () => new Promise<true | undefined>((r) => blocker.stdout!.once('data', () => r(true))));
    const s = mesh.spawnUp(bridge.ns, join(mesh.dir, 'n1.yaml'));
    bridge.proc = s.proc;
    bridge.log = s.log;
    await until('bridge back', 20_000, async () => ((await ingressStatus())['listeners'] as number[]).includes(443) || undefined);
    const ordersBefore = pebbleOrders();
    await cli('add', 'alpn.test', '--bridge', bridgeId, '--target', `${meshIps[1]}:8080`, '--mode', 'acme');
    const r = await until('verified HTTPS to alpn.test', 60_000, async () => {
      const x = await get('alpn.test', pebbleRoot);
      return x.status === 200 ? x : undefined;
    });
    expect(r.body).toBe('node A');
    const st = await ingressStatus();
    expect(st['http_port']).toBeNull();
    expect(String(st['http_error'])).toMatch(/EADDRINUSE/);
    const acme = st['acme'] as { hosts: Record<string, { state: string; challenge: string; from: string }> };
    expect(acme.hosts['alpn.test']).toMatchObject({ state: 'valid', challenge: 'tls-alpn-01', from: 'issued' });
    expect(pebbleOrders()).toBe(ordersBefore + 1);
    blocker.kill();
  }, 90_000);

  it('(8) a target that does not answer fails after bridge.ingress_dial_timeout (3 s here), counted', async () => {
    const a = agents[1]!;
    await a.ns.runOk(['iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', '9999', '-j', 'DROP']);
    await cli('add', 'slow.test', '--bridge', bridgeId, '--target', `${meshIps[1]}:9999`, '--mode', 'passthrough');
    await until('slow.test rule in force', 10_000, async () => ((await ingressStatus())['rules'] as Array<Record<string, unknown>>).some((r) => r['hostname'] === 'slow.test' && r['state'] === 'active') || undefined);
    const t0 = Date.now();
    expect((await get('slow.test', 'none')).error).toBeDefined();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThan(2500);
    expect(took).toBeLessThan(7000);
    const rule = ((await ingressStatus())['rules'] as Array<Record<string, unknown>>).find((r) => r['hostname'] === 'slow.test')!;
    expect(rule).toMatchObject({ dial_timeouts: 1, active: 0 });
  }, 30_000);
});
