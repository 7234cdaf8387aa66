// The command line as a new user meets it: --help, no arguments, unknown flags and bad values.
// Pins exit codes (0 help, 2 bad usage, 1 runtime failure), that usage goes to stderr on a usage
// error and stdout on --help, and the one-line messages that name the problem. In-process through
// main(); nothing here needs root, binds only 127.0.0.1 or nothing.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'plexd-cli-usage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const notJson = join(dir, 'bad.json');
writeFileSync(notJson, 'not json\n');

describe('plexd-userspace --help', () => {
  it('lists every subcommand on a line of its own, on stdout, exit 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const c of ['demo', 'up', 'join', 'status', 'peers', 'policies', 'deregister', 'install', 'uninstall', 'control-plane', 'conformance', 'stun-server', 'relay']) {
      expect(r.stdout, c).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
    }
  });

  it('no arguments: usage on stderr, exit 2', async () => {
    const r = await run();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: plexd-userspace');
  });
});

describe('agent commands', () => {
  it('an unknown flag names it and shows the usage on stderr, exit 2', async () => {
    const r = await run('up', '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^plexd-userspace: config --bogus: unknown flag\n\nUsage: plexd-userspace up/);
  });

  it('a bad value names the key without the usage, exit 2', async () => {
    const r = await run('up', '--api', 'http://127.0.0.1:1', '--wireguard-listen-port', 'banana');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('plexd-userspace: config wireguard.listen_port: expected an integer in 0..65535, got "banana"\n');
  });
});

describe('status, peers, policies (local commands)', () => {
  // README's by-hand mesh pins the control plane's certificate; the local commands read the same
  // file and must not trip over the pin (they never talk to the control plane).
  it('read a config with an https base_url and a tls_fingerprint: the only error is the missing agent socket', async () => {
    const file = join(dir, 'pinned.yaml');
    const socket = join(dir, 'no-agent.sock');
    writeFileSync(file, `api:\n  base_url: https://192.0.2.1:8443\n  tls_fingerprint: ${'ab'.repeat(32)}\nnode_api:\n  socket_path: ${socket}\n`);
    for (const c of ['status', 'peers', 'policies']) {
      const r = await run(c, '--config', file);
      expect(r.code, c).toBe(1);
      expect(r.stderr, c).not.toContain('config');
      expect(r.stderr, c).toContain(socket);
    }
  });
});

describe('demo', () => {
  it('--nodes with a bad value names --nodes and the range, exit 2', async () => {
    for (const argv of [['demo', '--nodes', '1'], ['demo', '--nodes', 'banana'], ['demo', '--nodes']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^plexd-userspace demo: --nodes: expected a number from 2 to 9, got "/);
    }
  });
});

describe('control-plane', () => {
  it('no command: usage on stderr, exit 2', async () => {
    const r = await run('control-plane');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^control-plane: expected a command\n\nUsage: plexd-userspace control-plane/);
  });

  it('--help after a command prints the usage on stdout, exit 0', async () => {
    for (const argv of [['control-plane', 'serve', '--help'], ['control-plane', 'token', 'create', '--help'], ['control-plane', 'policy', 'set', '-h']]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: plexd-userspace control-plane');
      expect(r.stderr).toBe('');
    }
  });

  it('a missing or unknown verb is named before --db is asked for, exit 2', async () => {
    const r = await run('control-plane', 'token');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^control-plane: expected token create or token revoke, got ""\n/);
    expect((await run('control-plane', 'nodes', 'lsit')).stderr).toMatch(/^control-plane: expected nodes list, nodes label, nodes remove or nodes rotate-keys, got "lsit"\n/);
    expect((await run('control-plane', 'policy')).stderr).toMatch(/^control-plane: expected policy set, policy show or policy explain, got ""\n/);
  });

  it('serve --listen nonsense is bad usage, exit 2, before anything opens', async () => {
    const r = await run('control-plane', 'serve', '--db', join(dir, 'never.db'), '--listen', 'nonsense', '--insecure-http');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^control-plane: expected --listen HOST:PORT, got "nonsense"\n\nUsage:/);
  });

  it('--ttl banana is bad usage, exit 2', async () => {
    const r = await run('control-plane', 'token', 'create', '--db', join(dir, 'cp.db'), '--ttl', 'banana');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^control-plane: --ttl: expected a duration such as 15m or 24h, got "banana"\n/);
  });

  it('a database that cannot be opened is named, exit 1', async () => {
    const db = join(notJson, 'x.db'); // under a regular file: ENOTDIR
    const r = await run('control-plane', 'nodes', 'list', '--db', db);
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith(`control-plane: --db ${db}: `)).toBe(true);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('policy set with a file that is not JSON: one line naming the file, exit 1', async () => {
    const r = await run('control-plane', 'policy', 'set', '--db', join(dir, 'cp.db'), '--file', notJson);
    expect(r.code).toBe(1);
    expect(r.stderr.startsWith(`control-plane: ${notJson}: `)).toBe(true);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('relay', () => {
  it('names the bad flag, exit 2', async () => {
    expect((await run('relay', '--ttl', 'banana')).stderr).toMatch(/^plexd-userspace relay: expected --ttl a positive number of seconds, got "banana"\n\nUsage:/);
    expect((await run('relay', '--max-sessions', '0')).stderr).toMatch(/^plexd-userspace relay: expected --max-sessions a positive integer, got "0"\n/);
    const r = await run('relay', '--listen', 'nonsense');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^plexd-userspace relay: expected --listen HOST:PORT, got "nonsense"\n/);
  });

  it('an unreadable --sessions file fails with exit 1 and returns (it used to hang on the bound socket)', async () => {
    for (const file of [join(dir, 'nope.json'), notJson]) {
      const r = await run('relay', '--listen', '127.0.0.1:0', '--sessions', file);
      expect(r.code, file).toBe(1);
      expect(r.stderr.startsWith(`plexd-userspace relay: --sessions ${file}: `)).toBe(true);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
  });
});
