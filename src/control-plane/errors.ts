// The control plane's operational error: a plexd API error code (problem+json `code`) plus detail.
// Store methods throw it; the HTTP layer turns it into a problem response; the CLI prints it.

import type { ErrorCode, FieldError } from '../api/index.js';

/** A request the control plane refuses, with its API error code. */
export class ControlPlaneError extends Error {
  readonly code: ErrorCode;
  /** Field problems of a validation_failed. */
  readonly errors: readonly FieldError[] | undefined;

  constructor(code: ErrorCode, message: string, errors?: readonly FieldError[]) {
    super(message);
    this.name = 'ControlPlaneError';
    this.code = code;
    this.errors = errors;
  }
}

/** Stable codes of ControlPlaneFileError (docs/errors.md). */
export type ControlPlaneFileCode = 'ERR_CP_INSECURE_PERMISSIONS' | 'ERR_CP_NOT_A_FILE' | 'ERR_CP_SECRETS_KEY';

/** A control-plane file the server will not start with: a database or key readable by others, a
 *  missing or wrong secrets key. The CLI prints the message and exits 1. */
export class ControlPlaneFileError extends Error {
  readonly code: ControlPlaneFileCode;

  constructor(code: ControlPlaneFileCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ControlPlaneFileError';
    this.code = code;
  }
}
