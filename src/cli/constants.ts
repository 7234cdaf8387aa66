// Exit codes and the version string shared by every subcommand.

/** Process exit codes: 0 success, 1 setup/runtime failure (as wireguard-go), 2 bad usage. */
export const EXIT = { ok: 0, setupFailed: 1, usage: 2 } as const;

/** The package version, kept in step with package.json by a unit test. */
export const VERSION = '0.1.0';
