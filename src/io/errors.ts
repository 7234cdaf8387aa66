// Operational errors of the I/O layer (TUN device, UDP bind). Each carries a stable `code`
// (listed below and in docs/errors.md), the OS `errno` name when there is one, and the
// underlying error as `cause` (OsError of src/errors.ts). API misuse throws TypeError/RangeError
// instead (checkFunction).

import { OsError } from '../errors.js';

/** Stable codes of {@link TunError}. */
const TUN_ERROR_CODES = [
  'ERR_TUN_UNSUPPORTED', // not Linux, or the native addon is not built
  'ERR_TUN_NO_DEVICE', // /dev/net/tun does not exist (ENOENT): tun module missing
  'ERR_TUN_PERMISSION', // EPERM/EACCES: CAP_NET_ADMIN is needed
  'ERR_TUN_NAME_TOO_LONG', // more than 15 bytes
  'ERR_TUN_NAME_INVALID', // characters the kernel rejects
  'ERR_TUN_NAME_TAKEN', // EBUSY (TUN in use) or EINVAL (a non-TUN device has the name)
  'ERR_TUN_OPEN', // any other failure creating the device
  'ERR_TUN_MTU', // SIOCGIFMTU/SIOCSIFMTU failed
  'ERR_TUN_CLOSED', // the device was deleted or closed
] as const;
export type TunErrorCode = (typeof TUN_ERROR_CODES)[number];

/** Stable codes of {@link BindError}. */
const BIND_ERROR_CODES = [
  'ERR_BIND_IN_USE', // EADDRINUSE: the port is taken
  'ERR_BIND_PERMISSION', // EACCES: privileged port
  'ERR_BIND_FAILED', // no address family could be bound, or another bind failure
  'ERR_BIND_FWMARK', // SO_MARK could not be applied
] as const;
export type BindErrorCode = (typeof BIND_ERROR_CODES)[number];

/** Something went wrong with the TUN device; `code` is stable, `errno` is the OS name if any. */
export class TunError extends OsError<TunErrorCode> {
  static readonly codes = TUN_ERROR_CODES;
}

/** A UDP socket could not be opened or configured; `code` is stable, `errno` is the OS name. */
export class BindError extends OsError<BindErrorCode> {
  static readonly codes = BIND_ERROR_CODES;
}

/** A BindError for a failed socket bind, its code chosen from the errno (EADDRINUSE, EACCES). */
export function bindErrorFrom(err: unknown, what: string): BindError {
  const errno = errnoOf(err);
  const code = errno === 'EADDRINUSE' ? 'ERR_BIND_IN_USE' : errno === 'EACCES' ? 'ERR_BIND_PERMISSION' : 'ERR_BIND_FAILED';
  return new BindError(code, `cannot bind ${what}: ${(err as Error).message}`, { cause: err, errno });
}

/** The `code` property of an unknown thrown value, if it is a string (Node system errors). */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Throws TypeError unless `value` is a function (handler arguments). */
export function checkFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') throw new TypeError(`expected ${name} to be a function, got ${typeof value}`);
}
