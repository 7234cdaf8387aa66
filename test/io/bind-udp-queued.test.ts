// The 'queued' branch of UdpBind.send: when libuv cannot hand a datagram to the kernel at once,
// it queues it and keeps a reference to the caller's bytes. Loopback never congests, so this runs
// the bind in a child node with --test-udp-no-try-send (every send goes through libuv's queue).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'plexd-bind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('UdpBind under a congested socket', () => {
  it("returns 'queued' while libuv holds the datagram, and delivers it intact", () => {
    mkdirSync(join(dir, 'io'));
    for (const name of ['io/bind-udp', 'io/bind', 'io/errors', 'io/native', 'io/sea', 'io/atomic-file', 'errors']) {
      const source = readFileSync(new URL(`../../src/${name}.ts`, import.meta.url), 'utf8');
      const out = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      });
      writeFileSync(join(dir, `${name}.js`), out.outputText);
    }
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'main.js'), `
      import { UdpBind } from './io/bind-udp.js';
      const a = new UdpBind({ ipv4Address: '127.0.0.1', ipv6Address: null, maxQueued: 3 });
      const b = new UdpBind({ ipv4Address: '127.0.0.1', ipv6Address: null });
      await a.open(0);
      await b.open(0);
      const got = [];
      b.onReceive((d) => got.push(d[0]));
      const results = [];
      for (let i = 0; i < 5; i++) results.push(a.send(new Uint8Array([i]), { address: '127.0.0.1', port: b.port }));
      await new Promise((r) => setTimeout(r, 200));
      console.log(JSON.stringify({ results, got, stats: a.stats }));
      a.close();
      b.close();
    `);
    const r = spawnSync(process.execPath, ['--test-udp-no-try-send', join(dir, 'main.js')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { results: string[]; got: number[]; stats: Record<string, number> };
    expect(out.results).toEqual(['queued', 'queued', 'queued', 'dropped', 'dropped']);
    expect(out.got).toEqual([0, 1, 2]);
    expect(out.stats).toMatchObject({ txQueued: 3, txDropped: 2, txPackets: 3 });
  });
});
