// Pieces of the access side with no server: the relay session port range, the access range
// setting, the ranges a bridge stands for (against a naive twin) and the QR code's content.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accessRange } from '../../src/control-plane/access.js';
import { parseRelayPorts, RelayAssigner } from '../../src/control-plane/relay-assigner.js';
import { ControlPlaneStore } from '../../src/control-plane/store.js';
import { mergeRanges, ownsAny } from '../../src/control-plane/visibility.js';
import { runCli as cli } from './harness.js';

describe('relay session ports', () => {
  it('default to 51900-51999 and must stay clear of 51821-51832', () => {
    expect(parseRelayPorts('51900-51999')).toEqual({ firstSessionPort: 51900, maxSessionsPerBridge: 100 });
    expect(parseRelayPorts('40000-40009')).toEqual({ firstSessionPort: 40000, maxSessionsPerBridge: 10 });
    for (const bad of ['51822-51921', '51800-51821', '51832-51900', '51900', '51999-51900', '0-10', '65000-65536', 'a-b', '1-2-3']) {
      expect(() => parseRelayPorts(bad), bad).toThrow(RangeError);
    }
    const dir = mkdtempSync(join(tmpdir(), 'cp-ports-'));
    const store = ControlPlaneStore.open(join(dir, 'cp.db'));
    try {
      expect(() => new RelayAssigner(store, { firstSessionPort: 51800, maxSessionsPerBridge: 100 })).toThrow(/leave the relay port 51821 free/);
      expect(() => new RelayAssigner(store, { firstSessionPort: 65500, maxSessionsPerBridge: 100 })).toThrow(RangeError);
      expect(() => new RelayAssigner(store)).not.toThrow();
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serve --relay-ports refuses an overlapping range as bad usage', async () => {
    const r = await cli('serve', '--listen', '127.0.0.1:0', '--db', '/nonexistent/cp.db', '--relay-ports', '51822-51921');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--relay-ports: expected a port range clear of 51821-51832/);
  });
});

describe('the access range', () => {
  it('defaults to 10.101.0.0/16; another range is taken while no user holds an address, never overlapping the mesh', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-access-'));
    const file = join(dir, 'cp.db');
    try {
      let s = ControlPlaneStore.open(file);
      expect(accessRange(s.db).cidr).toBe('10.101.0.0/16');
      s.close();
      s = ControlPlaneStore.open(file, { accessCidr: '172.30.0.0/16' });
      expect(accessRange(s.db).cidr).toBe('172.30.0.0/16');
      s.close();
      expect(() => ControlPlaneStore.open(file, { accessCidr: '10.100.128.0/17' })).toThrow(/overlaps the mesh 10\.100\.0\.0\/16/);
      expect(() => ControlPlaneStore.open(file, { accessCidr: '172.30.0.1/16' })).toThrow(/host bits/);
      expect(() => ControlPlaneStore.open(file, { accessCidr: 'garbage' })).toThrow(/--access-cidr/);
      s = ControlPlaneStore.open(file);
      s.db.prepare("INSERT INTO access_users (project_id, name, bridge_id, public_key, address_num, psk_salt, created_at) VALUES ('default', 'u', 'b', 'k', 1, x'00', 0)").run();
      s.close();
      expect(() => ControlPlaneStore.open(file, { accessCidr: '172.31.0.0/16' })).toThrow(/remove them before changing/);
      s = ControlPlaneStore.open(file, { accessCidr: '172.30.0.0/16' }); // the same range: fine
      expect(accessRange(s.db).cidr).toBe('172.30.0.0/16');
      s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ranges a bridge stands for', () => {
  it('ownsAny over merged ranges agrees with a naive scan (random ranges and queries)', () => {
    let seed = 99;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 300; round++) {
      const raw: Array<[number, number]> = Array.from({ length: rnd(8) }, () => {
        const lo = rnd(1000);
        return [lo, lo + rnd(50)];
      });
      const merged = mergeRanges(raw);
      for (let i = 1; i < merged.length; i++) expect(merged[i]![0]).toBeGreaterThan(merged[i - 1]![1] + 1);
      for (let q = 0; q < 20; q++) {
        const lo = rnd(1100);
        const hi = lo + rnd(30);
        expect(ownsAny(merged, lo, hi)).toBe(raw.some(([a, b]) => a <= hi && lo <= b));
      }
    }
  });
});
