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
