// The throwaway PostgreSQL cluster of bench/lib/pg-cluster.mjs (issue 20): it starts, answers,
// survives a restart and a crash, and stop() leaves neither a process nor its directory behind.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { postgresUnavailableReason, startPostgres } from '../../bench/lib/pg-cluster.mjs';

const unavailable = postgresUnavailableReason();
if (unavailable !== undefined) console.log(`pg-cluster tests skipped: ${unavailable}`);

/** True when `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe.skipIf(unavailable !== undefined)('throwaway PostgreSQL cluster', () => {
  it('starts, answers, restarts, recovers from a kill, and stop() removes the process and the directory', async () => {
    const pg = await startPostgres();
    try {
      expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
      expect(await pg.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      const settings = await pg.query("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'listen_addresses') ORDER BY name");
      expect(settings).toEqual([
        { name: 'fsync', setting: 'off' },
        { name: 'listen_addresses', setting: '127.0.0.1' },
      ]);

      await expect(pg.createDatabase('x; DROP DATABASE postgres')).rejects.toThrow(RangeError);
      const url = await pg.createDatabase('t_cluster');
      expect(url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/t_cluster`);
      await pg.query('CREATE TABLE kept (v int)', [], 't_cluster');
      await pg.query('INSERT INTO kept VALUES (7)', [], 't_cluster');

      await expect(pg.createDatabase('t_copy', { template: 'x y' })).rejects.toThrow(RangeError);
      const copy = await pg.createDatabase('t_copy', { template: 't_cluster' });
      expect(copy).toBe(`postgres://postgres@127.0.0.1:${pg.port}/t_copy`);
      expect(await pg.query('SELECT v FROM kept', [], 't_copy')).toEqual([{ v: 7 }]);

      const pidBefore = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      await pg.restart();
      const pidAfter = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      expect(pidAfter).not.toBe(pidBefore);
      expect(alive(pidBefore)).toBe(false);
      expect(await pg.query('SELECT v FROM kept', [], 't_cluster')).toEqual([{ v: 7 }]);

      await pg.down();
      await expect(pg.query('SELECT 1')).rejects.toThrow();
      await pg.up();

      const crashed = Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      await pg.kill();
      expect(alive(crashed)).toBe(false);
      await pg.up();
      expect(await pg.query('SELECT v FROM kept', [], 't_cluster')).toEqual([{ v: 7 }]);
    } finally {
      const pid = existsSync(join(pg.dataDir, 'postmaster.pid')) ? Number(readFileSync(join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) : undefined;
      await pg.stop();
      expect(existsSync(pg.dir)).toBe(false);
      if (pid !== undefined) expect(alive(pid)).toBe(false);
    }
    await expect(pg.query('SELECT 1')).rejects.toThrow();
    await pg.stop(); // idempotent
  });

});
