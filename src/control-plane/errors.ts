// The control plane's operational error: a plexd API error code (problem+json `code`) plus detail.
// Store methods throw it; the HTTP layer turns it into a problem response; the CLI prints it.

import type { ErrorCode } from '../api/index.js';

/** A request the control plane refuses, with its API error code. */
export class ControlPlaneError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'ControlPlaneError';
    this.code = code;
  }
}
