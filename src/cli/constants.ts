// Exit codes and the version string shared by every subcommand.

export { VERSION } from '../version.js';

/** Process exit codes: 0 success, 1 setup/runtime failure (as wireguard-go), 2 bad usage. */
export const EXIT = { ok: 0, setupFailed: 1, usage: 2 } as const;
