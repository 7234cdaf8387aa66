import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/control-plane.js';
import { harnessEach, openStream, randomKey, runCli as cli } from './harness.js';

const h = harnessEach({}, { open: true });

describe('control-plane CLI against a running server', () => {
  it('token create --json makes a token that registers once', async () => {
    const r = await cli('token', 'create', '--db', h.dbFile, '--ttl', '10m', '--json');
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out);
    expect(t.project_id).toBe('default');
    expect(t.bootstrap_token).toMatch(/^pbt_/);
    await h.register({ bootstrap_token: t.bootstrap_token });
    await expect(h.register({ bootstrap_token: t.bootstrap_token })).rejects.toThrow(/token_consumed/);
    const revoke = await cli('token', 'revoke', t.token_id, '--db', h.dbFile);
    expect(revoke.code).toBe(0);
    // The token is stored only as a hash.
    expect(JSON.stringify(h.cp.store.db.prepare('SELECT * FROM tokens').all())).not.toContain(t.bootstrap_token);
  });

  it('nodes list and nodes remove; the removal reaches peers over SSE', async () => {
    const a = await h.register();
    const b = await h.register();
    const list = await cli('nodes', 'list', '--db', h.dbFile, '--json');
    expect(JSON.parse(list.out).map((n: { mesh_ip: string }) => n.mesh_ip)).toEqual([a.mesh_ip, b.mesh_ip]);
    expect((await cli('nodes', 'list', '--db', h.dbFile)).out).toMatch(/NODE_ID\s+RESOURCE\s+MESH_IP/);
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      const t0 = Date.now();
      expect((await cli('nodes', 'remove', b.node_id, '--db', h.dbFile)).code).toBe(0);
      await s.next((e) => e.envelope.type === 'peer_removed', 3000);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect((await cli('nodes', 'remove', b.node_id, '--db', h.dbFile)).code).toBe(1);
    } finally {
      s.close();
    }
  });

  it('a name with control characters is refused at registration, and nodes list never prints one raw', async () => {
    const refused = await h.call('POST', '/v1/register', { project_id: 'default', resource_handle: 'x\x1b]0;owned\x07\0', bootstrap_token: h.cp.store.createToken().token, nonce: randomUUID(), public_key: randomKey() });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ code: 'validation_failed', errors: [{ field: 'resource_handle' }] });
    // A row an older build accepted is still shown escaped.
    const a = await h.register();
    // (PostgreSQL text cannot hold NUL at all: there the row has the other characters.)
    const pg = h.cp.store.db.dialect === 'postgres';
    h.cp.store.db.prepare('UPDATE nodes SET resource_handle = ? WHERE node_id = ?').run(pg ? 'evil\x1b[2J\u202e' : 'evil\x1b[2J\u202e\0', a.node_id);
    const list = await cli('nodes', 'list', '--db', h.dbFile);
    expect(list.code).toBe(0);
    expect(list.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
    expect(list.out).toContain(pg ? 'evil\\x1b[2J\\u{202e}' : 'evil\\x1b[2J\\u{202e}\\x00');
  });

  it('policy set pushes policy_updated; bad files are refused with the field named', async () => {
    const a = await h.register();
    const s = await openStream(h.cp.url, a.node_id, a.auth);
    try {
      const file = join(h.dir, 'rules.json');
      writeFileSync(file, JSON.stringify([{ action: 'allow', protocol: 'udp', source_cidr: '10.100.0.0/16', destination_cidr: '10.100.0.0/16', ports: { from: 53, to: 53 } }]));
      const r = await cli('policy', 'set', '--db', h.dbFile, '--file', file);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/policy set: revision 2/); // the harness's allow-all is revision 1
      const e = await s.next((x) => x.envelope.type === 'policy_updated', 3000);
      expect(e.envelope.payload.revision_id).toBe('2');
      writeFileSync(file, JSON.stringify([{ action: 'maybe' }]));
      const bad = await cli('policy', 'set', '--db', h.dbFile, '--file', file);
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('rules[0].action');
    } finally {
      s.close();
    }
  });

  it('usage errors exit 2', async () => {
    expect((await cli('token', 'create')).code).toBe(2);
    expect((await cli('token', 'create', '--db', h.dbFile, '--ttl', 'forever')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    expect((await cli('nodes', 'list', '--db', h.dbFile, '--bogus')).code).toBe(2);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('0s')).toBeUndefined();
  });
});
