// Operational errors of the userspace network API (net/mesh.ts) other than a TCP connection's
// own end (TcpError): name resolution and port binding. Codes are Node's errno names.

import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** Why a mesh network call failed. */
export type NetErrorCode = 'ENOTFOUND' | 'EADDRINUSE';

/**
 * `ENOTFOUND`: a host is neither an IP literal nor a known mesh node name. `EADDRINUSE`: a
 * listen() or UDP bind() asked for a port the userspace stack already has bound.
 */
export class NetError extends PlexdError<NetErrorCode> {
  static readonly codes: readonly NetErrorCode[] = ['ENOTFOUND', 'EADDRINUSE'];

  constructor(code: NetErrorCode, message: string, options?: PlexdErrorOptions) {
    super(code, message, options);
  }
}
