// Errors of the UAPI layer: the errno values wireguard-go's ipc package sends as `errno=N`
// (ipc/uapi_unix.go), a protocol error class carrying one of them, the mapping of the device's
// errors onto them, and the socket error class.

import { DeviceError } from '../device/errors.js';
import { OsError, PlexdError, type PlexdErrorOptions } from '../errors.js';

/**
 * The values wireguard-go writes as `errno=N` (negative Linux errno numbers, ipc/uapi_unix.go).
 * `UNKNOWN` is ENOANO, what wireguard-go sends for a failure that is not an IPC error.
 */
export const UAPI_ERRNO = {
  IO: -5, // EIO: a line longer than 65535 bytes, or the request is too large to read
  INVALID: -22, // EINVAL: a bad key or value
  PROTOCOL: -71, // EPROTO: a line without '='
  PORT_IN_USE: -98, // EADDRINUSE: listen_port cannot be bound, or fwmark cannot be set
  UNKNOWN: -55, // ENOANO: any other failure
} as const;

/** Stable codes of {@link UapiError}, one per {@link UAPI_ERRNO} value. */
const UAPI_ERROR_CODES = ['ERR_UAPI_IO', 'ERR_UAPI_INVALID', 'ERR_UAPI_PROTOCOL', 'ERR_UAPI_PORT_IN_USE', 'ERR_UAPI_UNKNOWN'] as const;
export type UapiErrorCode = (typeof UAPI_ERROR_CODES)[number];

const ERRNO_OF_CODE: Readonly<Record<UapiErrorCode, number>> = {
  ERR_UAPI_IO: UAPI_ERRNO.IO,
  ERR_UAPI_INVALID: UAPI_ERRNO.INVALID,
  ERR_UAPI_PROTOCOL: UAPI_ERRNO.PROTOCOL,
  ERR_UAPI_PORT_IN_USE: UAPI_ERRNO.PORT_IN_USE,
  ERR_UAPI_UNKNOWN: UAPI_ERRNO.UNKNOWN,
};

/**
 * A UAPI request failed; the reply is `errno=${errno}`. Thrown by the parser for malformed input
 * and for a failed apply() (see {@link toUapiError}).
 */
export class UapiError extends PlexdError<UapiErrorCode> {
  static readonly codes = UAPI_ERROR_CODES;
  /** The negative value sent as `errno=N`. */
  readonly errno: number;
  constructor(code: UapiErrorCode, message: string, options?: PlexdErrorOptions) {
    super(code, message, options); // throws TypeError for a code outside UAPI_ERROR_CODES
    this.errno = ERRNO_OF_CODE[code];
  }
}

/** Stable codes of {@link UapiSocketError}. */
const UAPI_SOCKET_ERROR_CODES = [
  'ERR_UAPI_SOCKET_IN_USE', // a live daemon answers on the socket path
  'ERR_UAPI_SOCKET_NOT_SOCKET', // something other than a socket occupies the path
  'ERR_UAPI_SOCKET_FAILED', // creating the directory or listening failed otherwise
  'ERR_UAPI_NO_RESPONSE', // uapiRequest: the connection ended before a complete reply
] as const;
export type UapiSocketErrorCode = (typeof UAPI_SOCKET_ERROR_CODES)[number];

/** The UAPI unix socket could not be served or used; `errno` is the OS error name if any. */
export class UapiSocketError extends OsError<UapiSocketErrorCode> {
  static readonly codes = UAPI_SOCKET_ERROR_CODES;
}

/**
 * The UapiError a failure of the device's apply() (or of its validators) is reported as, with
 * wireguard-go's errno: ERR_DEVICE_INVALID -> -22, ERR_DEVICE_PORT_IN_USE -> -98 (EADDRINUSE),
 * anything else -> -55. A UapiError stays itself; the original is the cause.
 */
export function toUapiError(err: unknown): UapiError {
  if (err instanceof UapiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof DeviceError ? err.code : undefined;
  if (code === 'ERR_DEVICE_INVALID') return new UapiError('ERR_UAPI_INVALID', message, { cause: err });
  if (code === 'ERR_DEVICE_PORT_IN_USE') return new UapiError('ERR_UAPI_PORT_IN_USE', message, { cause: err });
  return new UapiError('ERR_UAPI_UNKNOWN', message, { cause: err });
}
