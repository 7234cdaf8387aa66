// The operational errors of a TCP connection (RFC 9293 section 3.10 "user calls" error
// reports): why a connection ended other than by an orderly close. Codes are the Node/POSIX
// errno names so a socket wrapper can surface them unchanged.

import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** Why a TCP connection was torn down. */
export type TcpErrorCode = 'ECONNRESET' | 'ETIMEDOUT' | 'ECONNREFUSED' | 'ECONNABORTED';

/**
 * A TCP connection ended abnormally: `ECONNRESET` (the peer sent a valid RST in a synchronized
 * state), `ECONNREFUSED` (RST in answer to our SYN), `ETIMEDOUT` (retransmissions, SYN retries or
 * keepalive probes exhausted), `ECONNABORTED` (the local side aborted, or the engine was closed).
 */
export class TcpError extends PlexdError<TcpErrorCode> {
  static readonly codes: readonly TcpErrorCode[] = ['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNABORTED'];

  constructor(code: TcpErrorCode, message: string, options?: PlexdErrorOptions) {
    super(code, message, options);
  }
}
