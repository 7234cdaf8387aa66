// globalSetup of the unit-pg project (vitest.config.ts): one PostgreSQL server for the run,
// provided to the tests as `pgUrl` (test/control-plane/harness.ts makes a database per test).
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.PLEXD_TEST_PG_ADMIN_URL;
  if (given !== undefined) {
    project.provide('pgUrl' as never, given as never);
    return async () => {};
  }
  throw new Error('no PostgreSQL (set PLEXD_TEST_PG_ADMIN_URL)');
}
