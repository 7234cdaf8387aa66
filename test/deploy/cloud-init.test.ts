// deploy/cloud-init/user-data.yaml (docs/deploy.md "VMs (cloud-init)"): a #cloud-config document
// that writes /etc/plexd/config.yaml (0600) with the metadata token source on, and installs from
// files the image ships through deploy/install.sh with no download and no manual step. The
// config it writes, with the template variable filled in, is a valid agent config; the runcmd
// script, run against a stand-in /opt/plexd, calls install.sh with this machine's binary, or the
// npm tarball when there is none.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../../src/agent/config.js';

const TEXT = readFileSync(new URL('../../deploy/cloud-init/user-data.yaml', import.meta.url), 'utf8');

interface WriteFile {
  path: string;
  owner?: string;
  permissions?: string;
  content: string;
}

describe('cloud-init user-data', () => {
  const doc = parseYaml(TEXT, { uniqueKeys: true }) as { write_files: WriteFile[]; runcmd: unknown[] };

  it('is a #cloud-config YAML mapping with write_files and runcmd only', () => {
    expect(TEXT.startsWith('#cloud-config\n')).toBe(true);
    expect(Object.keys(doc).sort()).toEqual(['runcmd', 'write_files']);
  });

  it('writes config.yaml 0600 as root, and it loads with use_metadata on', () => {
    const files = doc.write_files;
    expect(files.map((f) => f.path)).toEqual(['/etc/plexd/config.yaml']);
    const cfg = files[0]!;
    expect(cfg).toMatchObject({ owner: 'root:root', permissions: '0600' });
    const warnings: string[] = [];
    const c = resolveConfig({ fileText: cfg.content.replace('${PLEXD_API_URL}', 'https://plexd.example.com'), env: {}, warn: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    expect(c.api.baseUrl).toBe('https://plexd.example.com');
    expect(c.registration).toMatchObject({ useMetadata: true, metadataTokenPath: '/plexd/bootstrap-token', metadataTimeoutS: 2, tokenFile: '/etc/plexd/bootstrap-token' });
  });

  it('the commented token variant writes the token file 0600 where the agent reads it', () => {
    const variant = TEXT.replace(/^ {2}# (- path: \/etc\/plexd\/bootstrap-token)$/m, '  $1').replace(/^ {2}# {3}/gm, '    ');
    const files = (parseYaml(variant) as { write_files: WriteFile[] }).write_files;
    expect(files.find((f) => f.path === '/etc/plexd/bootstrap-token')).toMatchObject({ owner: 'root:root', permissions: '0600' });
  });

  it('installs through /opt/plexd/install.sh from files in the image: nothing fetched, no manual step', () => {
    const script = JSON.stringify(doc.runcmd);
    expect(script).toContain('sh /opt/plexd/install.sh \\"$program\\" --no-token');
    expect(script).toMatch(/plexd-userspace-linux-\$arch/);
    expect(script).not.toMatch(/curl|wget|https?:\/\/|apt-get|npm install/);
    // The only template variable is the API URL (so templatefile() needs nothing else).
    expect(new Set([...TEXT.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]))).toEqual(new Set(['PLEXD_API_URL']));
  });

  it('runcmd picks the binary for this machine, else the npm tarball, and hands it to install.sh', () => {
    const script = (doc.runcmd[0] as string[])[2]!;
    const dir = mkdtempSync(join(tmpdir(), 'plexd-cloud-init-'));
    try {
      writeFileSync(join(dir, 'install.sh'), `echo "$@" > ${dir}/called\n`);
      const run = () => {
        const r = spawnSync('sh', ['-c', script.replaceAll('/opt/plexd', dir)], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return readFileSync(join(dir, 'called'), 'utf8').trim();
      };
      expect(run()).toBe(`${dir}/plexd-userspace.tgz --no-token`);
      const bin = join(dir, `plexd-userspace-linux-${arch() === 'arm64' ? 'arm64' : 'x64'}`);
      writeFileSync(bin, '');
      chmodSync(bin, 0o755);
      expect(run()).toBe(`${bin} --no-token`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
