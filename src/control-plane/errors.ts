// The control plane's operational errors: a plexd API error code (problem+json `code`) plus detail,
// and the files the server will not start with. Store methods throw ControlPlaneError; the HTTP
// layer turns it into a problem response; the CLI prints it.

import { ERROR_CODES, type ErrorCode, type FieldError } from '../api/index.js';
import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** Options of a {@link ControlPlaneError}: the cause, and the field problems of a validation_failed. */
export interface ControlPlaneErrorOptions extends PlexdErrorOptions {
  readonly errors?: readonly FieldError[] | undefined;
}

/** A request the control plane refuses, with its API error code (a key of ERROR_CODES). */
export class ControlPlaneError extends PlexdError<ErrorCode> {
  static readonly codes = Object.keys(ERROR_CODES) as readonly ErrorCode[];
  /** Field problems of a validation_failed. */
  readonly errors: readonly FieldError[] | undefined;

  constructor(code: ErrorCode, message: string, options?: ControlPlaneErrorOptions) {
    super(code, message, options);
    this.errors = options?.errors;
  }
}

/** Stable codes of ControlPlaneFileError (docs/errors.md). */
const CONTROL_PLANE_FILE_CODES = ['ERR_CP_INSECURE_PERMISSIONS', 'ERR_CP_NOT_A_FILE', 'ERR_CP_SECRETS_KEY'] as const;
export type ControlPlaneFileCode = (typeof CONTROL_PLANE_FILE_CODES)[number];

/** A control-plane file the server will not start with: a database or key readable by others, a
 *  missing or wrong secrets key. The CLI prints the message and exits 1. */
export class ControlPlaneFileError extends PlexdError<ControlPlaneFileCode> {
  static readonly codes = CONTROL_PLANE_FILE_CODES;
}
