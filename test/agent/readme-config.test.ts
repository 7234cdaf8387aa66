// README's "A three-node mesh by hand" stays the minimal upstream-style config (issue 13): its
// YAML block, with a fingerprint and a token filled in, loads without a warning, sets no
// bind_address, advertised endpoint or STUN server, and leaves discovery on. The whole section
// was followed verbatim in network namespaces once (README says how); this keeps the text honest
// about the keys when the configuration changes.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/agent/config.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'plexd-readme-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("README's by-hand mesh", () => {
  const section = README.split('## A three-node mesh by hand')[1]?.split('\n## ')[0] ?? '';
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];

  it('has one node config block, without bind_address or stun_servers', () => {
    expect(yaml).toBeDefined();
    expect(yaml).not.toMatch(/bind_address|stun_servers|advertise_endpoint/);
  });

  it('loads as written (placeholders filled in), with discovery on and nothing pinned', () => {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, yaml!.replace('FINGERPRINT', 'ab'.repeat(32)).replace('TOKEN', 'pbt_x').replace('nodeN', 'node1'));
    const warnings: string[] = [];
    const c = loadConfig(file, new Map(), {}, (w) => warnings.push(w));
    expect(warnings).toEqual([]);
    expect(c.api.baseUrl).toMatch(/^https:\/\//);
    expect(c.registration.token).toBe('pbt_x');
    expect(c.wireguard).toMatchObject({ interfaceName: 'plexd0', listenPort: 51820, bindAddress: undefined, advertiseEndpoint: undefined });
    expect(c.nat).toMatchObject({ enabled: true, stunServers: [] });
  });
});
