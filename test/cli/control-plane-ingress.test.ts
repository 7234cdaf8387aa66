// `plexd-userspace control-plane ingress` through main(), on a database no server holds open:
// help and usage (exit 0 / 2), a rule added and removed by the CLI as the store then reads it
// (the bridge's state block), and the files it leaves private. Nothing here binds a socket.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const key = (): string => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');

let dir: string;
let db: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plexd-cli-ingress-'));
  db = join(dir, 'cp.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Registers a node through the store (as POST /v1/register would), then closes it. */
function register(mode: 'node' | 'bridge'): { node_id: string; mesh_ip: string } {
  const s = ControlPlaneStore.open(db);
  try {
    const r = s.register({ project_id: 'default', resource_handle: `h-${mode}`, bootstrap_token: s.createToken().token, nonce: randomUUID(), public_key: key(), mode });
    return { node_id: r.node_id, mesh_ip: r.mesh_ip };
  } finally {
    s.close();
  }
}

describe('control-plane ingress on the command line', () => {
  it('--help lists the ingress commands; a bad verb is usage (exit 2, usage on stderr)', async () => {
    const help = await run('control-plane', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/ingress add HOSTNAME --db FILE --bridge NODE_ID --target MESH_IP:PORT\n\s+--mode acme\|terminate\|passthrough/);
    expect(help.stdout).toContain('ingress list --db FILE [--json]');
    expect(help.stdout).toContain('ingress remove HOSTNAME --db FILE');
    const bad = await run('control-plane', 'ingress', 'publish', 'x.test', '--db', db);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected ingress add, ingress list or ingress remove, got "publish"[\s\S]*Usage:/);
    const flag = await run('control-plane', 'ingress', 'list', '--db', db, '--bridge', 'x');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--bridge/);
  });

  it('add then remove: the bridge state the store builds follows, and the database stays 0600', async () => {
    const node = register('node');
    const bridge = register('bridge');
    const add = await run('control-plane', 'ingress', 'add', 'web.example.com', '--db', db, '--bridge', bridge.node_id.toUpperCase(), '--target', `${node.mesh_ip}:3000`, '--mode', 'passthrough', '--listen-port', '8443');
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(new RegExp(`^added web\\.example\\.com: port 8443 \\(passthrough\\) on bridge ${bridge.node_id} -> ${node.mesh_ip.replace(/\./g, '\\.')}:3000; rule [0-9a-f-]{36}\\n$`));
    const s = ControlPlaneStore.open(db);
    try {
      const st = s.stateOf(s.node(bridge.node_id)!);
      expect(st.bridge?.ingress?.rules).toEqual([{ rule_id: expect.any(String), hostname: 'web.example.com', listen_port: 8443, target_addr: `${node.mesh_ip}:3000`, mode: 'passthrough' }]);
      expect(st.peers.map((p) => p.node_id)).toEqual([node.node_id]);
      expect(s.stateOf(s.node(node.node_id)!).bridge).toBeNull();
    } finally {
      s.close();
    }
    expect(statSync(db).mode & 0o777).toBe(0o600);
    const rm = await run('control-plane', 'ingress', 'remove', 'WEB.example.com', '--db', db, '--json');
    expect(rm.code).toBe(0);
    expect(JSON.parse(rm.stdout)).toMatchObject({ hostname: 'web.example.com', bridge_id: bridge.node_id });
    const s2 = ControlPlaneStore.open(db);
    try {
      expect(s2.stateOf(s2.node(bridge.node_id)!).bridge).toMatchObject({ relay: null, ingress: null });
    } finally {
      s2.close();
    }
  });
});
