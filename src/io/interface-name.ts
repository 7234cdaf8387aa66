// Linux network interface names as the kernel accepts them (net/core/dev.c dev_valid_name):
// the one rule for the TUN (io/tun-linux.ts) and the UAPI socket named after it (uapi/server.ts).

/** IFNAMSIZ - 1: the longest interface name in bytes (UTF-8). */
export const MAX_INTERFACE_NAME_BYTES = 15;

/**
 * Why `name` is not a valid interface name, or undefined when it is: 'empty' (''), 'too-long'
 * (over 15 UTF-8 bytes), 'invalid' ('.', '..', or containing '/', ':', whitespace or NUL).
 * Throws TypeError when `name` is not a string.
 */
export function interfaceNameProblem(name: string): 'empty' | 'too-long' | 'invalid' | undefined {
  if (typeof name !== 'string') throw new TypeError(`expected an interface name string, got ${typeof name}`);
  if (name.length === 0) return 'empty';
  if (Buffer.byteLength(name) > MAX_INTERFACE_NAME_BYTES) return 'too-long';
  if (name === '.' || name === '..' || /[/:\s\0]/.test(name)) return 'invalid';
  return undefined;
}

/** Throws RangeError unless `name` is a valid, non-empty interface name (TypeError: not a string). */
export function expectInterfaceName(name: string): void {
  if (interfaceNameProblem(name) !== undefined) {
    throw new RangeError(`expected an interface name of 1-15 bytes without '/', ':' or spaces, got ${JSON.stringify(name)}`);
  }
}
