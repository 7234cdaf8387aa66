// The package version, for --version, logs and the agent's heartbeat; a unit test keeps it equal
// to package.json's.

/** The plexd-userspace version string (semver, no leading v). */
export const VERSION = '0.1.0';
