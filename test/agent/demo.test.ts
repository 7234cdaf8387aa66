// `plexd-userspace demo` in-process: control plane + three packet-callback agents over loopback;
// every ordered pair of mesh IPs answers a ping, and the command exits 0.

import { describe, expect, it, vi } from 'vitest';
import { runDemo, runDemoMesh } from '../../src/cli/demo.js';

describe('demo', () => {
  it('brings up three agents and pings every pair', async () => {
    const lines: string[] = [];
    const t0 = performance.now();
    const rows = await runDemoMesh({ print: (l) => lines.push(l) });
    expect(rows.length).toBe(6);
    for (const r of rows) {
      expect(r.rttMs, `${r.node} -> ${r.peer}`).toBeTypeOf('number');
      expect(r.lastHandshake).not.toBe('never');
    }
    expect(new Set(rows.map((r) => r.meshIp)).size).toBe(3);
    expect(lines.filter((l) => l.startsWith('registered ')).length).toBe(3);
    expect(lines.find((l) => l.startsWith('http '))).toMatch(/: 200 "hello from demo-node-2 \(\/demo\)" \(userspace TCP, no root\)$/);
    // A hang guard only (a handshake retry costs 5 s); speed is not what this test checks.
    expect(performance.now() - t0).toBeLessThan(60_000);
  });

  it('runDemo prints the table and exits 0; --tun without root exits 1, junk is refused (2)', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (out.push(String(c)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runDemo([])).toBe(0);
      expect(await runDemo(['--tun'], { uid: () => 1000 })).toBe(1);
      expect(await runDemo(['--bogus'])).toBe(2);
    } finally {
      spy.mockRestore();
      err.mockRestore();
    }
    const text = out.join('');
    expect(text).toMatch(/NODE\s+MESH IP\s+PEER\s+PATH\s+LAST HANDSHAKE\s+RTT/);
    expect(text).toContain('all 6 pairs answered');
  });
});
