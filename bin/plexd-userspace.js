#!/usr/bin/env node
// Entry point of the `plexd-userspace` command; the code lives in dist/ (built by `npm ci`).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The foreground daemon resolves only once the device is down; nothing else keeps us alive.
  },
  (err) => {
    process.stderr.write(`plexd-userspace: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
