import { defineConfig } from 'vitest/config';

// Two tiers (docs/DESIGN.md): `unit` runs anywhere in seconds; `netns` needs root, real TUN
// devices and Debian's wireguard-go / wireguard-tools, and skips itself with a reason elsewhere.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/netns/**'],
          testTimeout: 60_000,
        },
      },
      {
        // The control plane's tests once more on PostgreSQL (issue 20): the same files, their
        // harness (test/control-plane/harness.ts) on a fresh PostgreSQL database per test.
        test: {
          name: 'unit-pg',
          include: ['test/control-plane/**/*.test.ts', 'test/cli/control-plane*.test.ts'],
          exclude: ['test/control-plane/file-modes.test.ts', 'test/control-plane/ui-browser.test.ts'],
          globalSetup: ['test/setup/postgres.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'netns',
          include: ['test/netns/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // Namespaces, TUN devices and daemons are machine-global: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
