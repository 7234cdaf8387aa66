// globalSetup of the unit-pg project (vitest.config.ts): one PostgreSQL server for the run,
// provided to the tests as `pgUrl` (test/control-plane/harness.ts makes a database per test):
// PLEXD_TEST_PG_ADMIN_URL when set (a server of your own), else a throwaway cluster
// (bench/lib/pg-cluster.mjs) started here and removed when the run ends.
import type { TestProject } from 'vitest/node';
import { postgresUnavailableReason, startPostgres } from '../../bench/lib/pg-cluster.mjs';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.PLEXD_TEST_PG_ADMIN_URL;
  if (given !== undefined && given !== '') {
    project.provide('pgUrl' as never, given as never);
    return async () => {};
  }
  const unavailable = postgresUnavailableReason();
  if (unavailable !== undefined) throw new Error(`unit-pg needs PostgreSQL: ${unavailable} (or set PLEXD_TEST_PG_ADMIN_URL)`);
  const pg = await startPostgres({ log: (tail) => process.stderr.write(`postgres log:\n${tail}\n`) });
  project.provide('pgUrl' as never, pg.url as never);
  return () => pg.stop();
}
