// `plexd-userspace install | uninstall` (issue 17, docs/deploy.md "Bare metal"): into a --root
// that looks like a small Debian system. The written unit passes `systemd-analyze verify --root`
// (and a broken one does not); uninstall --purge leaves the tree as it was; every bad input exits
// with a clear message (2 usage, 1 failure) and leaves the tree byte for byte as it was, also when
// the failure comes half-way; the token never shows in what the command prints. systemctl is a
// recording fake where its calls are checked; nothing here touches the live system.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { resolveConfig } from '../../src/agent/config.js';
import { openStore } from '../../src/agent/store.js';
import { INSTALL_PATHS, InstallError, install, uninstall, unitFile, type InstallOptions, type Systemd } from '../../src/cli/install.js';
import { main } from '../../src/cli/main.js';

const TOKEN = 'tok-Secret-4711-install-test';
const API = 'https://cp.example:8443';
const top = mkdtempSync(join(tmpdir(), 'plexd-install-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

let n = 0;
/** A fresh root laid out like a Debian system: the directories install writes into exist. */
function skeleton(opts: { units?: boolean } = {}): string {
  const r = join(top, `root${n++}`);
  for (const d of ['etc/systemd/system', 'usr/local/bin', 'var/lib', 'usr/lib/systemd']) mkdirSync(join(r, d), { recursive: true, mode: 0o755 });
  // systemd-analyze verify --root resolves the unit's dependencies (sysinit.target ...) in the root.
  if (opts.units === true) cpSync('/usr/lib/systemd/system', join(r, 'usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  return r;
}

/** Every entry under `dir`: type, mode and content hash (or link target). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const e of readdirSync(p)) walk(join(p, e), `${rel}/${e}`);
    } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  };
  walk(dir, '.');
  return out;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    const code = await main(argv);
    expect(out + err, 'the token never shows').not.toContain(TOKEN);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

function tokenFile(text = TOKEN + '\n'): string {
  const f = join(top, `token${n++}`);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

const mode = (p: string) => lstatSync(p).mode & 0o7777;

/** `systemd-analyze verify --root ROOT` on the installed unit: exit code and everything it printed. */
function verify(root: string): { code: number; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, INSTALL_PATHS.unitFile], { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze: ${r.error.message} (Debian's systemd package has it)`);
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}`.trim() };
}

describe('install --root', () => {
  it('writes the program, config, token, data_dir and unit with upstream\'s modes; the launcher runs', async () => {
    const r = skeleton();
    const res = await run('install', '--root', r, '--api-url', API, '--token-file', tokenFile(), '--mode', 'bridge');
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    expect(res.out).toContain('on the target run: systemctl daemon-reload && systemctl enable --now plexd');
    const at = (p: string) => join(r, p);
    expect(mode(at(INSTALL_PATHS.configDir))).toBe(0o755);
    expect(mode(at(INSTALL_PATHS.dataDir))).toBe(0o700);
    expect(mode(at(INSTALL_PATHS.tokenFile))).toBe(0o600);
    expect(readFileSync(at(INSTALL_PATHS.tokenFile), 'utf8')).toBe(TOKEN + '\n');
    expect(mode(at(INSTALL_PATHS.configFile))).toBe(0o644);
    expect(mode(at(INSTALL_PATHS.unitFile))).toBe(0o644);
    expect(readFileSync(at(INSTALL_PATHS.unitFile), 'utf8')).toBe(unitFile());
    expect(mode(at(INSTALL_PATHS.binary))).toBe(0o755);
    // The config is one the agent takes as it is: the URL and mode given, no warnings.
    const warnings: string[] = [];
    const c = resolveConfig({ fileText: readFileSync(at(INSTALL_PATHS.configFile), 'utf8'), env: {}, warn: (w) => warnings.push(w) });
    expect([c.api.baseUrl, c.mode, c.dataDir, c.registration.tokenFile]).toEqual([API, 'bridge', '/var/lib/plexd', '/etc/plexd/bootstrap-token']);
    expect(warnings).toEqual([]);
    // The launcher is the npm package run by this Node.js.
    const v = execFileSync(at(INSTALL_PATHS.binary), ['--version'], { encoding: 'utf8' });
    expect(v).toMatch(/^plexd-userspace v/);
  });

  it('the unit passes systemd-analyze verify --root, and a broken unit or a missing program does not', async () => {
    const r = skeleton({ units: true });
    expect((await run('install', '--root', r, '--api-url', API, '--token-file', tokenFile())).code).toBe(0);
    expect(verify(r)).toEqual({ code: 0, output: '' });
    // The check can fail: a directive systemd does not take, and an ExecStart that is not there.
    const unit = join(r, INSTALL_PATHS.unitFile);
    writeFileSync(unit, unitFile().replace('Restart=always', 'Restart=sometimes'));
    expect(verify(r).output).toMatch(/Failed to parse service restart specifier, ignoring: sometimes/);
    writeFileSync(unit, unitFile());
    rmSync(join(r, INSTALL_PATHS.binary));
    const missing = verify(r);
    expect(missing.code).not.toBe(0);
    expect(missing.output).toContain('/usr/local/bin/plexd-userspace');
  });

  it('deploy/systemd/plexd.service is the unit install writes', () => {
    expect(readFileSync(join(import.meta.dirname, '../../deploy/systemd/plexd.service'), 'utf8')).toBe(unitFile());
  });

  it('uninstall keeps config and data; install again needs neither --api-url nor a token; uninstall --purge leaves the tree as before', async () => {
    const r = skeleton();
    const before = tree(r);
    expect((await run('install', '--root', r, '--api-url', API, '--token', TOKEN)).code).toBe(0);
    const u = await run('uninstall', '--root', r);
    expect(u.code).toBe(0);
    expect(existsSync(join(r, INSTALL_PATHS.unitFile))).toBe(false);
    expect(existsSync(join(r, INSTALL_PATHS.binary))).toBe(false);
    expect(readFileSync(join(r, INSTALL_PATHS.tokenFile), 'utf8')).toBe(TOKEN + '\n');
    const again = await run('install', '--root', r);
    expect(again.err).toBe('');
    expect(again.out).toContain('config.yaml (kept as it was)');
    expect(again.out).toContain('bootstrap-token (kept as it was)');
    const purge = await run('uninstall', '--purge', '--root', r);
    expect(purge.code).toBe(0);
    expect(tree(r)).toEqual(before);
    expect((await run('uninstall', '--purge', '--root', r)).out).toBe('nothing to uninstall\n');
  });

  it('a root enabled with systemctl --root enable: uninstall --purge removes the wants link too', async () => {
    const r = skeleton();
    mkdirSync(join(r, 'etc/systemd/system/multi-user.target.wants'));
    const before = tree(r);
    expect((await run('install', '--root', r, '--api-url', API, '--no-token')).code).toBe(0);
    execFileSync('systemctl', ['--root', r, 'enable', 'plexd.service'], { stdio: 'ignore' });
    expect(lstatSync(join(r, 'etc/systemd/system/multi-user.target.wants/plexd.service')).isSymbolicLink()).toBe(true);
    expect((await run('uninstall', '--purge', '--root', r)).code).toBe(0);
    expect(tree(r)).toEqual(before);
  });

  it('an existing config.yaml is kept as it is; one that disagrees with --api-url or --mode is an error', async () => {
    const r = skeleton();
    mkdirSync(join(r, 'etc/plexd'));
    const mine = `# mine\napi: {base_url: "${API}/"}\nlog_level: debug\n`;
    writeFileSync(join(r, INSTALL_PATHS.configFile), mine, { mode: 0o600 });
    const before = tree(r);
    const other = await run('install', '--root', r, '--api-url', 'https://other.example', '--no-token');
    expect(other.code).toBe(1);
    expect(other.err).toContain(`exists with api.base_url "${API}", not "https://other.example"; install never rewrites it`);
    const bridge = await run('install', '--root', r, '--mode', 'bridge', '--no-token');
    expect(bridge.code).toBe(1);
    expect(bridge.err).toContain('exists with mode "node", not "bridge"');
    expect(tree(r)).toEqual(before);
    expect((await run('install', '--root', r, '--api-url', API, '--no-token')).code).toBe(0);
    expect(readFileSync(join(r, INSTALL_PATHS.configFile), 'utf8')).toBe(mine);
    expect(mode(join(r, INSTALL_PATHS.configFile))).toBe(0o600);
  });

  it('an existing unit is refused without --force; --force replaces unit and program, never config.yaml', async () => {
    const r = skeleton();
    expect((await run('install', '--root', r, '--api-url', API, '--token', TOKEN)).code).toBe(0);
    writeFileSync(join(r, INSTALL_PATHS.unitFile), '# edited\n');
    writeFileSync(join(r, INSTALL_PATHS.binary), '#!/bin/sh\n');
    const config = readFileSync(join(r, INSTALL_PATHS.configFile), 'utf8');
    const before = tree(r);
    const res = await run('install', '--root', r, '--token', TOKEN);
    expect(res.code).toBe(1);
    expect(res.err).toBe(`plexd-userspace: ${join(r, INSTALL_PATHS.unitFile)} exists (already installed?); use --force to replace the unit and the program (config.yaml is never replaced), or uninstall first\n`);
    expect(tree(r)).toEqual(before);
    expect((await run('install', '--root', r, '--force')).code).toBe(0);
    expect(readFileSync(join(r, INSTALL_PATHS.unitFile), 'utf8')).toBe(unitFile());
    expect(readFileSync(join(r, INSTALL_PATHS.binary), 'utf8')).toContain('exec ');
    expect(readFileSync(join(r, INSTALL_PATHS.configFile), 'utf8')).toBe(config);
  });

  it('a different program at /usr/local/bin/plexd-userspace is refused without --force', async () => {
    const r = skeleton();
    writeFileSync(join(r, INSTALL_PATHS.binary), '#!/bin/sh\necho someone else\n', { mode: 0o755 });
    const before = tree(r);
    const res = await run('install', '--root', r, '--api-url', API, '--token', TOKEN);
    expect(res.code).toBe(1);
    expect(res.err).toContain('/usr/local/bin/plexd-userspace exists; use --force to replace it');
    expect(tree(r)).toEqual(before);
  });
});

describe('install: bad input changes nothing', () => {
  const cases: Array<[string, number, string[], RegExp]> = [
    ['no token', 2, ['--api-url', API], /no bootstrap token: give --token-file FILE \(or --token TOKEN\)/],
    ['--token and --token-file', 2, ['--api-url', API, '--token', TOKEN, '--token-file', '/x'], /--token and --token-file: give one/],
    ['--token and --no-token', 2, ['--api-url', API, '--token', TOKEN, '--no-token'], /--token and --no-token: give one/],
    ['a token of spaces and tabs', 2, ['--api-url', API, '--token', 'a b'], /bootstrap token from --token is not 1\.\.512 bytes of printable ASCII/],
    ['a missing token file', 1, ['--api-url', API, '--token-file', '/nonexistent/token'], /cannot read --token-file \/nonexistent\/token: ENOENT/],
    ['a token file that is a directory', 1, ['--api-url', API, '--token-file', '/'], /cannot read --token-file \/: EISDIR/],
    ['no --api-url and no config.yaml', 2, ['--token', TOKEN], /--api-url URL is required: there is no \/etc\/plexd\/config\.yaml yet/],
    ['a bad --api-url', 2, ['--api-url', 'ftp://x', '--token', TOKEN], /--api-url: expected an http\(s\) URL, got "ftp:\/\/x"/],
    ['a bad --mode', 2, ['--api-url', API, '--token', TOKEN, '--mode', 'router'], /--mode: expected node or bridge, got "router"/],
    ['an unknown flag', 2, ['--api-url', API, '--token', TOKEN, '--start'], /unknown argument "--start"/],
    ['a flag without its value', 2, ['--api-url', API, '--token'], /--token: expected a value/],
    ['a flag given twice', 2, ['--api-url', API, '--api-url', API, '--token', TOKEN], /--api-url given twice/],
  ];
  it.each(cases)('%s: exit %i', async (_name, code, args, message) => {
    const r = skeleton();
    const before = tree(r);
    const res = await run('install', '--root', r, ...args);
    expect(res.err).toMatch(message);
    expect(res.code).toBe(code);
    if (code === 2) expect(res.err).toContain('Usage: plexd-userspace install');
    expect(res.out).toBe('');
    expect(tree(r)).toEqual(before);
  });

  it('a token file with more than a token (binary, or over 4 KiB) is refused without echoing it', async () => {
    const r = skeleton();
    const before = tree(r);
    const bad = await run('install', '--root', r, '--api-url', API, '--token-file', tokenFile(`${TOKEN} \u00e9\n`));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/bootstrap token from --token-file \S+ is not 1\.\.512 bytes of printable ASCII\n$/);
    const big = await run('install', '--root', r, '--api-url', API, '--token-file', tokenFile(TOKEN + 'x'.repeat(5000)));
    expect(big.code).toBe(1);
    expect(big.err).toMatch(/is larger than 4 KiB; expected one token\n$/);
    expect(tree(r)).toEqual(before);
  });

  it('the live system (no --root) needs root: exit 1 before anything else', async () => {
    // --mode router: should the uid check ever not come first, install stops on it (exit 2)
    // before it could touch this machine's /etc.
    const uid = vi.spyOn(process, 'geteuid').mockReturnValue(1000);
    try {
      const res = await run('install', '--api-url', API, '--token', TOKEN, '--mode', 'router');
      expect(res.err).toBe('plexd-userspace: must run as root (or with --root DIR to write under DIR)\n');
      expect(res.code).toBe(1);
    } finally {
      uid.mockRestore();
    }
  });

  it('a --root that does not exist, or is a file: exit 1', async () => {
    const file = tokenFile();
    for (const root of [join(top, 'no-such-root'), file]) {
      const res = await run('install', '--root', root, '--api-url', API, '--token', TOKEN);
      expect(res.code).toBe(1);
      expect(res.err).toBe(`plexd-userspace: --root ${root}: not a directory\n`);
    }
    expect(existsSync(join(top, 'no-such-root'))).toBe(false);
  });

  it('a failure half-way (the unit directory is a file) rolls back everything written before it', async () => {
    const r = skeleton();
    rmSync(join(r, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(r, 'etc/systemd/system'), 'not a directory\n');
    const before = tree(r);
    const res = await run('install', '--root', r, '--api-url', API, '--token', TOKEN);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/^plexd-userspace: install failed: \S+\/etc\/systemd\/system exists and is not a directory; nothing was changed\n$/);
    expect(tree(r)).toEqual(before);
  });

  it('an empty --root: the parents created on the way are removed again by a rollback', async () => {
    const r = join(top, `empty${n++}`);
    mkdirSync(r);
    mkdirSync(join(r, 'etc/systemd'), { recursive: true });
    writeFileSync(join(r, 'etc/systemd/system'), 'x');
    const before = tree(r);
    expect((await run('install', '--root', r, '--api-url', API, '--token', TOKEN)).code).toBe(1);
    expect(tree(r)).toEqual(before);
  });

  it.skipIf(!isRoot)('a read-only --root (a read-only bind mount): exit 1, nothing changed', async () => {
    const r = skeleton();
    const before = tree(r);
    execFileSync('mount', ['--bind', r, r]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', r]);
      const res = await run('install', '--root', r, '--api-url', API, '--token', TOKEN);
      expect(res.code).toBe(1);
      expect(res.err).toMatch(/^plexd-userspace: install failed: EROFS: read-only file system, \S+ '\S+\/etc\/plexd'; nothing was changed\n$/);
    } finally {
      execFileSync('umount', [r]);
    }
    expect(tree(r)).toEqual(before);
  });

  it('a launcher the service could not see (under /root or /home, hidden by ProtectHome) is refused', () => {
    const r = skeleton();
    const before = tree(r);
    const opts: InstallOptions = { root: r, apiUrl: API, noToken: true, program: { kind: 'launcher', node: '/root/.nvm/versions/node/v20/bin/node', script: join(import.meta.dirname, '../../bin/plexd-userspace.js') }, systemd: undefined, out: () => {} };
    expect(() => install(opts)).toThrow(/\/root\/\.nvm\/versions\/node\/v20\/bin\/node lies under \/home\/, \/root\/, \/run\/user\/, which the unit's ProtectHome=yes hides/);
    expect(tree(r)).toEqual(before);
  });
});

/** A recording systemctl; `fail` names a command (its first argument) that exits 1. */
function fakeSystemd(root: string, fail?: string): Systemd & { calls: string[] } {
  const calls: string[] = [];
  return {
    booted: true,
    calls,
    run(args) {
      // What the unit file looks like when each call happens: reloads must see the final state.
      calls.push(`${args.join(' ')}${existsSync(join(root, INSTALL_PATHS.unitFile)) ? '' : ' (no unit)'}`);
      return args[0] === fail ? { code: 1, output: `Failed to ${args[0]}` } : { code: 0, output: '' };
    },
  };
}

const binaryProgram = () => {
  const f = join(top, `sea${n++}`);
  writeFileSync(f, '#!/bin/sh\necho standalone\n', { mode: 0o755 });
  return f;
};

describe('install and uninstall with systemd running (a recording systemctl)', () => {
  it('install reloads, then enables and starts; uninstall stops, disables, removes and reloads', async () => {
    const r = skeleton();
    const before = tree(r);
    const sd = fakeSystemd(r);
    const out: string[] = [];
    install({ root: r, apiUrl: API, token: { value: TOKEN }, program: { kind: 'binary', path: binaryProgram() }, systemd: sd, out: (l) => out.push(l) });
    expect(sd.calls).toEqual(['daemon-reload', 'enable --now plexd.service']);
    expect(out.at(-1)).toBe('plexd.service enabled and started; follow it with: journalctl -u plexd -f');
    sd.calls.length = 0;
    await uninstall({ root: r, purge: true, systemd: sd, out: () => {}, deregister: () => Promise.reject(new Error('not registered: never called')) });
    expect(sd.calls).toEqual(['is-active --quiet plexd.service', 'stop plexd.service', 'disable plexd.service', 'daemon-reload (no unit)']);
    expect(tree(r)).toEqual(before);
  });

  it('a failing enable rolls back: disable, remove everything, reload without the unit', () => {
    const r = skeleton();
    const before = tree(r);
    const sd = fakeSystemd(r, 'enable');
    expect(() => install({ root: r, apiUrl: API, token: { value: TOKEN }, program: { kind: 'binary', path: binaryProgram() }, systemd: sd, out: () => {} })).toThrow(
      new InstallError('ERR_INSTALL_SYSTEMCTL', 'install failed: systemctl enable --now plexd.service failed (exit 1): Failed to enable; nothing was changed'),
    );
    expect(sd.calls).toEqual(['daemon-reload', 'enable --now plexd.service', 'disable --now plexd.service', 'daemon-reload (no unit)']);
    expect(tree(r)).toEqual(before);
  });

  it('not booted with systemd: no systemctl call, the commands are printed', () => {
    const r = skeleton();
    const sd = { ...fakeSystemd(r), booted: false };
    const out: string[] = [];
    install({ root: r, apiUrl: API, noToken: true, program: { kind: 'binary', path: binaryProgram() }, systemd: sd, out: (l) => out.push(l) });
    expect(sd.calls).toEqual([]);
    expect(out.at(-1)).toBe('systemd is not running here; when it is, run: systemctl daemon-reload && systemctl enable --now plexd');
  });
});

describe('install of a standalone binary (the single-executable path)', () => {
  it('copies the running binary (0755, same bytes); run from there, it keeps it', () => {
    const r = skeleton();
    const sea = binaryProgram();
    install({ root: r, apiUrl: API, noToken: true, program: { kind: 'binary', path: sea }, systemd: undefined, out: () => {} });
    const bin = join(r, INSTALL_PATHS.binary);
    expect(readFileSync(bin)).toEqual(readFileSync(sea));
    expect(mode(bin)).toBe(0o755);
    const out: string[] = [];
    install({ root: r, force: true, noToken: true, program: { kind: 'binary', path: bin }, systemd: undefined, out: (l) => out.push(l) });
    expect(out[0]).toBe('program   /usr/local/bin/plexd-userspace (kept: the running binary is already there)');
  });

  it('a launcher for a package under --root names it as the target sees it (/opt/plexd/...)', () => {
    const r = skeleton();
    const script = join(r, 'opt/plexd/node_modules/plexd-userspace/bin/plexd-userspace.js');
    mkdirSync(join(script, '..'), { recursive: true });
    writeFileSync(script, '');
    const out: string[] = [];
    install({ root: r, apiUrl: API, noToken: true, program: { kind: 'launcher', node: '/usr/bin/node', script }, systemd: undefined, out: (l) => out.push(l) });
    expect(out[0]).toBe('program   /usr/local/bin/plexd-userspace (launcher for /opt/plexd/node_modules/plexd-userspace/bin/plexd-userspace.js)');
    expect(readFileSync(join(r, INSTALL_PATHS.binary), 'utf8')).toContain(`exec '/usr/bin/node' '/opt/plexd/node_modules/plexd-userspace/bin/plexd-userspace.js' "$@"\n`);
  });

  it("npm's own link to this package at /usr/local/bin is kept, and uninstall leaves it to npm", async () => {
    const r = skeleton();
    const script = join(import.meta.dirname, '../../bin/plexd-userspace.js');
    symlinkSync(script, join(r, INSTALL_PATHS.binary));
    const out: string[] = [];
    install({ root: r, apiUrl: API, noToken: true, program: { kind: 'launcher', node: process.execPath, script }, systemd: undefined, out: (l) => out.push(l) });
    expect(out[0]).toBe("program   /usr/local/bin/plexd-userspace (kept: npm's link to this package is already there)");
    const u = await run('uninstall', '--root', r);
    expect(u.out).toContain("a symlink (npm's link; npm uninstall -g plexd-userspace removes it)");
    expect(lstatSync(join(r, INSTALL_PATHS.binary)).isSymbolicLink()).toBe(true);
  });
});

describe('uninstall --purge of a registered node', () => {
  /** A control plane that answers POST /v1/nodes/{id}/deregister with 204 and records it. */
  async function fakeControlPlane(): Promise<{ server: Server; url: string; seen: string[] }> {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${String(req.headers.authorization).slice(0, 7)}`);
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    return { server, url: `http://127.0.0.1:${port}`, seen };
  }

  async function registered(url: string): Promise<{ r: string; before: Record<string, string>; nodeId: string }> {
    const r = skeleton();
    const before = tree(r);
    expect((await run('install', '--root', r, '--api-url', url, '--token', TOKEN)).code).toBe(0);
    const nodeId = '0b5a1d2e-3f40-4c5d-8e6f-7a8b9c0d1e2f';
    const key = Buffer.alloc(32, 7).toString('base64');
    openStore(join(r, INSTALL_PATHS.dataDir)).saveIdentity({
      node_id: nodeId, mesh_ip: '10.100.0.9', domain_mesh_cidr: '10.100.0.0/16', signing_key_id: 'k1', api_base_url: url,
      registered_at: new Date().toISOString(), private_key: key, nsk: key, signing_public_key: key,
    });
    return { r, before, nodeId };
  }

  it('deregisters through the agent\'s deregister path, then removes everything', async () => {
    const cp = await fakeControlPlane();
    try {
      const { r, before, nodeId } = await registered(cp.url);
      const res = await run('uninstall', '--purge', '--root', r);
      expect(res.err).toBe('');
      expect(res.code).toBe(0);
      expect(cp.seen).toEqual([`POST /v1/nodes/${nodeId}/deregister Bearer `]);
      expect(res.out).toContain(`deregistered node ${nodeId}`);
      expect(tree(r)).toEqual(before);
    } finally {
      cp.server.close();
    }
  });

  it('a control plane that cannot be reached: exit 1, nothing removed; --no-deregister purges anyway', async () => {
    const cp = await fakeControlPlane();
    await new Promise((ok) => cp.server.close(ok));
    const { r, before } = await registered(cp.url);
    const installed = tree(r);
    const res = await run('uninstall', '--purge', '--root', r);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/could not deregister node \S+ from http:\/\/127\.0\.0\.1:\d+; nothing removed \(--no-deregister purges without telling the control plane\)\n$/);
    expect(tree(r)).toEqual(installed);
    expect((await run('uninstall', '--no-deregister', '--root', r)).code).toBe(2);
    expect((await run('uninstall', '--purge', '--no-deregister', '--root', r)).code).toBe(0);
    expect(tree(r)).toEqual(before);
  });
});
