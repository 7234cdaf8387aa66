// Public ingress rules on the control plane (issue 16): `control-plane ingress add/list/remove`
// against a running server's database, the bridge's `bridge.ingress` state block, the events that
// announce a change, the visibility a rule implies between the bridge and its target, and every
// refusal (nothing stored, no event).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FirewallRule } from '../../src/api/index.js';
import { createSelfSignedCertificate } from '../../src/control-plane/certificate.js';
import { MAX_INGRESS_RULES } from '../../src/control-plane/ingress.js';
import { harnessEach, openStream, runCli as cli, type Registered } from './harness.js';

const h = harnessEach();

async function stateOf(n: Registered): Promise<any> {
  const r = await h.call('GET', `/v1/nodes/${n.node_id}/state`, undefined, n.auth);
  expect(r.status).toBe(200);
  return r.body;
}
const peerIds = (st: { peers: Array<{ node_id: string }> }): string[] => st.peers.map((p) => p.node_id).sort();

/** A bridge and two ordinary nodes (no policy: nobody sees anybody). */
async function mesh(): Promise<{ bridge: Registered; a: Registered; b: Registered }> {
  const a = await h.register();
  const b = await h.register();
  const bridge = await h.register({ mode: 'bridge' });
  return { bridge, a, b };
}

/** What a refusal must leave as it was: the rules, the events, the sealed values. */
function snapshot(): string {
  const db = h.cp.store.db;
  return JSON.stringify([db.prepare('SELECT * FROM ingress_rules').all(), db.prepare('SELECT seq FROM events').all(), db.prepare('SELECT membership_gen FROM projects').all()]);
}

function pemFiles(hosts: string[], name = 'tls', nowMs = Date.now()): { cert: string; key: string; certPem: string; keyPem: string } {
  const id = createSelfSignedCertificate(hosts, nowMs);
  const cert = join(h.dir, `${name}.crt`);
  const key = join(h.dir, `${name}.key`);
  writeFileSync(cert, id.certPem);
  writeFileSync(key, id.keyPem, { mode: 0o600 });
  return { cert, key, certPem: id.certPem, keyPem: id.keyPem };
}

describe('control-plane ingress', () => {
  it('add reaches the bridge in its state block and over bridge_config_updated; list and remove', async () => {
    const { bridge, a, b } = await mesh();
    const sb = await openStream(h.cp.url, bridge.node_id, bridge.auth);
    try {
      const add = await cli('ingress', 'add', 'App.Test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:8080`, '--mode', 'acme', '--json');
      expect(add.err).toBe('');
      expect(add.code).toBe(0);
      const rule = JSON.parse(add.out);
      expect(rule).toEqual({
        rule_id: expect.stringMatching(/^[0-9a-f-]{36}$/), project_id: 'default', hostname: 'app.test', bridge_id: bridge.node_id, listen_port: 443,
        target_addr: `${a.mesh_ip}:8080`, target_node: a.node_id, mode: 'acme', cert_expires: null, created_at: expect.any(String), warnings: [],
      });
      const ev = await sb.next((e) => e.envelope.type === 'bridge_config_updated', 3000);
      expect(ev.envelope.payload).toEqual({ ingress_rule_id: rule.rule_id, change: 'added' });
      const st = await stateOf(bridge);
      expect(st.bridge.ingress).toEqual({ enabled: true, rules: [{ rule_id: rule.rule_id, hostname: 'app.test', listen_port: 443, target_addr: `${a.mesh_ip}:8080`, mode: 'acme' }] });
      expect(st.bridge.relay).toEqual({ sessions: [] }); // the relay view is kept alongside
      // Only the bridge gets the block.
      for (const n of [a, b]) expect((await stateOf(n)).bridge).toBeNull();

      const list = await cli('ingress', 'list', '--db', h.dbFile, '--json');
      expect(list.code).toBe(0);
      const { warnings: _, ...stored } = rule;
      expect(JSON.parse(list.out)).toEqual([stored]);
      expect((await cli('ingress', 'list', '--db', h.dbFile)).out).toMatch(/HOSTNAME\s+PORT\s+MODE\s+TARGET\s+BRIDGE\s+CERT_EXPIRES\n.*app\.test\s+443\s+acme/);

      const rm = await cli('ingress', 'remove', 'app.TEST', '--db', h.dbFile);
      expect(rm).toMatchObject({ code: 0, out: `removed app.test (bridge ${bridge.node_id})\n` });
      await sb.next((e) => e.envelope.type === 'bridge_config_updated' && e.envelope.payload.change === 'removed', 3000);
      expect((await stateOf(bridge)).bridge.ingress).toBeNull();
      expect((await cli('ingress', 'list', '--db', h.dbFile)).out).toBe('no ingress rules\n');
      const again = await cli('ingress', 'remove', 'app.test', '--db', h.dbFile);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/no ingress rule for "app.test"/);
    } finally {
      sb.close();
    }
  });

  it('a rule makes the bridge and the target peers (no policy needed) with TCP to the target port allowed; removal undoes it', async () => {
    const { bridge, a, b } = await mesh();
    expect(peerIds(await stateOf(bridge))).toEqual([]);
    const sa = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      expect((await cli('ingress', 'add', 'app.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:8080`, '--mode', 'passthrough')).code).toBe(0);
      const added = await sa.next((e) => e.envelope.type === 'peer_added', 3000);
      expect((added.envelope.payload.peer as { node_id: string }).node_id).toBe(bridge.node_id);
      expect(peerIds(await stateOf(bridge))).toEqual([a.node_id]);
      expect(peerIds(await stateOf(a))).toEqual([bridge.node_id]);
      expect(peerIds(await stateOf(b))).toEqual([]);
      // Both ends' filters let the bridge open TCP to the target port, and nothing else.
      const implied: FirewallRule = { action: 'allow', protocol: 'tcp', source_cidr: `${bridge.mesh_ip}/32`, destination_cidr: `${a.mesh_ip}/32`, ports: { from: 8080, to: 8080 } };
      for (const n of [bridge, a]) expect((await stateOf(n)).policy).toMatchObject({ revision_id: 'ingress', rules: [implied] });
      expect((await stateOf(b)).policy).toBeNull();
      // Under a policy the implied rule comes first (a broader deny does not undo it).
      const deny: FirewallRule = { action: 'deny', protocol: 'any', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: null };
      h.cp.store.setPolicy('default', [deny]);
      const pa = (await stateOf(a)).policy;
      expect(pa.rules).toEqual([implied, deny]);
      expect(pa.fingerprint).not.toBe(h.cp.store.policy('default')!.fingerprint);
      expect((await stateOf(b)).policy.rules).toEqual([deny]);
      expect(peerIds(await stateOf(a))).toEqual([bridge.node_id]);

      // policy explain and policy show --for say what the agents enforce.
      const explain = await cli('policy', 'explain', bridge.mesh_ip, a.mesh_ip, 'tcp/8080', '--db', h.dbFile);
      expect(explain.out).toMatch(/^allowed: tcp\/8080 from .* matches rules\[0\] allow tcp port 8080 /);
      expect((await cli('policy', 'explain', bridge.mesh_ip, a.mesh_ip, 'tcp/22', '--db', h.dbFile)).out).toMatch(/^denied: tcp\/22 /);
      expect((await cli('policy', 'show', '--db', h.dbFile, '--for', a.node_id)).out).toMatch(/2 compiled rules[\s\S]*visible peers: 1/);

      expect((await cli('ingress', 'remove', 'app.test', '--db', h.dbFile)).code).toBe(0);
      const removed = await sa.next((e) => e.envelope.type === 'peer_removed', 3000);
      expect(removed.envelope.payload).toEqual({ node_id: bridge.node_id, reason: 'policy' });
      expect(peerIds(await stateOf(a))).toEqual([]);
      expect((await stateOf(a)).policy.rules).toEqual([deny]);
    } finally {
      sa.close();
    }
  });

  it('terminate: the certificate and key reach the bridge only; the key is sealed at rest', async () => {
    const { bridge, a } = await mesh();
    const tls = pemFiles(['app.test']);
    const add = await cli('ingress', 'add', 'app.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:80`, '--mode', 'terminate', '--cert', tls.cert, '--key', tls.key, '--listen-port', '8443', '--json');
    expect(add.code).toBe(0);
    expect(JSON.parse(add.out)).toMatchObject({ mode: 'terminate', listen_port: 8443, cert_expires: expect.stringMatching(/^20\d\d-/) });
    const rule = (await stateOf(bridge)).bridge.ingress.rules[0];
    expect(rule).toMatchObject({ mode: 'terminate', listen_port: 8443, cert_pem: tls.certPem, key_pem: tls.keyPem });
    expect(JSON.stringify(await stateOf(a))).not.toContain('PRIVATE KEY');
    const keyBody = tls.keyPem.split('\n')[1]!;
    const raw = h.cp.store.db.prepare('SELECT key_pem FROM ingress_rules').pluck().get() as Buffer;
    expect(raw.toString('latin1')).not.toContain(keyBody);
    expect(raw.subarray(0, 4).toString()).toBe('pxs1');
    expect((await cli('ingress', 'list', '--db', h.dbFile, '--json')).out).not.toContain('PRIVATE KEY');
  });

  it(`refuses a ${MAX_INGRESS_RULES + 1}st rule on one bridge, not on another`, async () => {
    const { bridge, a } = await mesh();
    const other = await h.register({ mode: 'bridge' });
    for (let i = 0; i < MAX_INGRESS_RULES; i++) {
      expect((await cli('ingress', 'add', `s${i}.test`, '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:${8000 + i}`, '--mode', 'passthrough')).code).toBe(0);
    }
    const before = snapshot();
    const r = await cli('ingress', 'add', 'one-more.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:9000`, '--mode', 'passthrough');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/already has 20 ingress rules \(at most 20\)/);
    expect(snapshot()).toBe(before);
    expect((await stateOf(bridge)).bridge.ingress.rules).toHaveLength(MAX_INGRESS_RULES);
    expect((await cli('ingress', 'add', 'one-more.test', '--db', h.dbFile, '--bridge', other.node_id, '--target', `${a.mesh_ip}:9000`, '--mode', 'passthrough')).code).toBe(0);
  });

  it('a rule goes with its bridge or its target node', async () => {
    const { bridge, a, b } = await mesh();
    for (const [host, n] of [['a.test', a], ['b.test', b]] as const) {
      expect((await cli('ingress', 'add', host, '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${n.mesh_ip}:80`, '--mode', 'acme')).code).toBe(0);
    }
    const sb = await openStream(h.cp.url, bridge.node_id, bridge.auth);
    try {
      expect((await cli('nodes', 'remove', a.node_id, '--db', h.dbFile)).code).toBe(0);
      // (The adds' events may still be on their way to the new stream: wait for the removal.)
      await sb.next((e) => e.envelope.type === 'bridge_config_updated' && e.envelope.payload.change === 'removed', 3000);
    } finally {
      sb.close();
    }
    expect((await stateOf(bridge)).bridge.ingress.rules.map((r: { hostname: string }) => r.hostname)).toEqual(['b.test']);
    // A new node given a's address does not inherit its ingress.
    const c = await h.register();
    expect(c.mesh_ip).toBe(a.mesh_ip);
    expect(peerIds(await stateOf(c))).toEqual([]);
    expect((await cli('nodes', 'remove', bridge.node_id, '--db', h.dbFile)).code).toBe(0);
    expect(JSON.parse((await cli('ingress', 'list', '--db', h.dbFile, '--json')).out)).toEqual([]);
  });

  describe('refusals change nothing', () => {
    const cases: Array<[string, (m: { bridge: Registered; a: Registered; b: Registered }) => string[], RegExp, number?]> = [
      ['a label with an underscore', (m) => ['bad_name.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected labels/],
      ['a wildcard', (m) => ['*.app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /wildcards are not supported/],
      ['a single label', (m) => ['localhost', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /fully qualified/],
      ['an IP address as name', (m) => ['10.0.0.1', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /not an address/],
      ['a trailing dot', (m) => ['app.test.', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected labels/],
      ['a 64-character label', (m) => [`${'a'.repeat(64)}.test`, '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected labels/],
      ['a 254-character name', (m) => [`${'a.'.repeat(125)}test`, '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected 1\.\.253 characters, got 254/],
      ['a 1 MB name', (m) => [`${'a'.repeat(1 << 20)}.test`, '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected 1\.\.253 characters/],
      ['control characters in the name', (m) => ['app\x1b[2J.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /hostname: expected labels.*\\u001b/],
      ['a target outside the mesh', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', '192.168.1.5:80', '--mode', 'acme'], /no node of project default has mesh IP 192\.168\.1\.5 \(mesh 10\.100\.0\.0\/16/],
      ['a mesh address no node has', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', '10.100.0.200:80', '--mode', 'acme'], /no node of project default has mesh IP 10\.100\.0\.200/],
      ['the bridge as target', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.bridge.mesh_ip}:80`, '--mode', 'acme'], /is the bridge itself/],
      ['a malformed target', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}`, '--mode', 'acme'], /--target: expected MESH_IP:PORT/],
      ['target port 0', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:0`, '--mode', 'acme'], /--target: expected MESH_IP:PORT/],
      ['target port 65536', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:65536`, '--mode', 'acme'], /--target: expected MESH_IP:PORT/],
      ['an unknown bridge', (m) => ['app.test', '--bridge', '00000000-0000-4000-8000-000000000000', '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /--bridge: no node 00000000/],
      ['an ordinary node as bridge', (m) => ['app.test', '--bridge', m.b.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /is not a bridge \(registered with mode node\)/],
      ['listen port 0', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme', '--listen-port', '0'], /--listen-port: expected 1\.\.65535, got 0/],
      ['listen port 65536', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme', '--listen-port', '65536'], /--listen-port: expected 1\.\.65535, got 65536/],
      ['listen port 80 (ACME HTTP-01)', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme', '--listen-port', '80'], /80 is the bridge's ACME HTTP-01/],
      ['terminate without --cert/--key', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'terminate'], /--mode terminate needs --cert FILE and --key FILE/],
      // Usage errors: exit 2.
      ['an unknown mode', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'tunnel'], /--mode: expected passthrough, terminate, acme/, 2],
      ['no --target', (m) => ['app.test', '--bridge', m.bridge.node_id, '--mode', 'acme'], /ingress add needs --target/, 2],
      ['a non-numeric listen port', (m) => ['app.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme', '--listen-port', 'https'], /--listen-port: expected a port number/, 2],
      ['two hostnames', (m) => ['app.test', 'b.test', '--bridge', m.bridge.node_id, '--target', `${m.a.mesh_ip}:80`, '--mode', 'acme'], /takes one HOSTNAME/, 2],
    ];
    for (const [what, args, message, code = 1] of cases) {
      it(what, async () => {
        const m = await mesh();
        const before = snapshot();
        const r = await cli('ingress', 'add', ...args(m), '--db', h.dbFile);
        expect(r.err).toMatch(message);
        expect(r.code).toBe(code);
        expect(r.out).toBe('');
        // A huge argument is not echoed back whole (the message before the usage text, which
        // grows with every command).
        expect(r.err.split('\n\nUsage:')[0]!.length).toBeLessThan(1024);
        expect(snapshot()).toBe(before);
      });
    }

    it('a duplicate hostname (any case, any bridge)', async () => {
      const { bridge, a, b } = await mesh();
      const other = await h.register({ mode: 'bridge' });
      expect((await cli('ingress', 'add', 'app.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:80`, '--mode', 'acme')).code).toBe(0);
      const before = snapshot();
      const r = await cli('ingress', 'add', 'APP.test', '--db', h.dbFile, '--bridge', other.node_id, '--target', `${b.mesh_ip}:80`, '--mode', 'passthrough');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(`hostname app.test is already published (bridge ${bridge.node_id})`);
      expect(snapshot()).toBe(before);
    });

    it('certificates: refused when given for another mode, garbage, mismatched, not covering the name, oversized or not a file', async () => {
      const { bridge, a } = await mesh();
      const good = pemFiles(['app.test'], 'good');
      const other = pemFiles(['app.test'], 'other');
      const wrongName = pemFiles(['other.test'], 'wrong');
      const garbage = join(h.dir, 'garbage.pem');
      writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
      const notPem = join(h.dir, 'random.bin');
      writeFileSync(notPem, Buffer.from(crypto.getRandomValues(new Uint8Array(4096))));
      const huge = join(h.dir, 'huge.pem');
      writeFileSync(huge, `-----BEGIN CERTIFICATE-----\n${'A'.repeat(70_000)}\n-----END CERTIFICATE-----\n`);
      const base = ['ingress', 'add', 'app.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:80`];
      const refusals: Array<[string[], RegExp]> = [
        [['--mode', 'acme', '--cert', good.cert, '--key', good.key], /--cert\/--key are for --mode terminate only \(acme: the bridge obtains/],
        [['--mode', 'passthrough', '--cert', good.cert], /--cert\/--key are for --mode terminate only \(passthrough/],
        [['--mode', 'terminate', '--cert', good.cert], /--mode terminate needs --cert FILE and --key FILE/],
        [['--mode', 'terminate', '--cert', garbage, '--key', good.key], /--cert: not a PEM certificate/],
        [['--mode', 'terminate', '--cert', notPem, '--key', good.key], /--cert: not a PEM certificate/],
        [['--mode', 'terminate', '--cert', good.cert, '--key', notPem], /--key: not an unencrypted PEM private key/],
        [['--mode', 'terminate', '--cert', good.cert, '--key', good.cert], /--key: not an unencrypted PEM private key/],
        [['--mode', 'terminate', '--cert', good.cert, '--key', other.key], /--key: does not match the certificate/],
        [['--mode', 'terminate', '--cert', wrongName.cert, '--key', wrongName.key], /--cert: does not cover app\.test \(subject alternative names: DNS:other\.test/],
        [['--mode', 'terminate', '--cert', huge, '--key', good.key], /--cert .*huge\.pem: 700\d\d bytes, expected at most 65536/],
        [['--mode', 'terminate', '--cert', '/dev/zero', '--key', good.key], /--cert \/dev\/zero: not a regular file/],
        [['--mode', 'terminate', '--cert', join(h.dir, 'missing.pem'), '--key', good.key], /--cert .*missing\.pem: ENOENT/],
      ];
      const before = snapshot();
      for (const [extra, message] of refusals) {
        const r = await cli(...base, ...extra);
        expect(r.err, extra.join(' ')).toMatch(message);
        expect(r.code).toBe(1);
        expect(snapshot()).toBe(before);
      }
    });

    it('an expired certificate is stored with a warning', async () => {
      const { bridge, a } = await mesh();
      const old = pemFiles(['app.test'], 'old', Date.now() - 11 * 365 * 24 * 3600_000);
      const r = await cli('ingress', 'add', 'app.test', '--db', h.dbFile, '--bridge', bridge.node_id, '--target', `${a.mesh_ip}:80`, '--mode', 'terminate', '--cert', old.cert, '--key', old.key, '--json');
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/warning: the certificate for app\.test expired/);
      expect(JSON.parse(r.out).warnings).toEqual([expect.stringMatching(/expired/)]);
    });
  });

  it('remove of a name never published, and usage errors, exit as the rest of the CLI', async () => {
    expect((await cli('ingress', 'remove', 'nope.test', '--db', h.dbFile)).code).toBe(1);
    expect((await cli('ingress', 'remove', '--db', h.dbFile)).code).toBe(2);
    expect((await cli('ingress', 'frobnicate', '--db', h.dbFile)).code).toBe(2);
    expect((await cli('ingress', 'list')).code).toBe(2);
    const long = await cli('ingress', 'remove', 'x'.repeat(100_000), '--db', h.dbFile);
    expect(long.code).toBe(1);
    expect(long.err.length).toBeLessThan(1000);
  });
});
