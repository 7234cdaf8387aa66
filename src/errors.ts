// The one error family (docs/errors.md): every operational error of plexd-userspace is a
// PlexdError with a stable `code` from a closed set per area, an optional `cause`, and a brand so
// `instanceof` still answers correctly when two copies of this module are loaded (a library
// bundled twice, an app and a plugin each with their own node_modules). API misuse is not in this
// family: it throws TypeError/RangeError ("expected X, got Y").
//
// A leaf: imports nothing, so every layer may use it.

const BRAND = Symbol.for('plexd-userspace.error-kinds');

/** Options every PlexdError takes: the underlying error. */
export interface PlexdErrorOptions {
  readonly cause?: unknown;
}

/** Options of an {@link OsError}: also the OS errno name (`EADDRINUSE`, `EPERM`, ...). */
export interface OsErrorOptions extends PlexdErrorOptions {
  readonly errno?: string | undefined;
}

/**
 * The base of every operational error. Subclasses fix `code` to their own closed union and list
 * its values in a static `codes` array (docs/errors.md is checked against those lists).
 */
export class PlexdError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: PlexdErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target;
    this.name = ctor.name;
    this.code = code;
    const codes = (ctor as unknown as { codes?: readonly string[] }).codes;
    if (codes !== undefined && !codes.includes(code)) {
      throw new TypeError(`expected a ${ctor.name} code (${codes.join(', ')}), got ${JSON.stringify(code)}`);
    }
    // The brand: the names of the classes this error is an instance of, most derived first.
    const kinds: string[] = [];
    for (let p: unknown = ctor; typeof p === 'function' && p !== Error && p !== Function.prototype; p = Object.getPrototypeOf(p)) {
      kinds.push((p as { name: string }).name);
    }
    Object.defineProperty(this, BRAND, { value: Object.freeze(kinds), enumerable: false });
  }

  /**
   * `err instanceof TunError` is true for a TunError made by another copy of this module too: the
   * prototype chain is checked first, then the brand (class names recorded at construction).
   */
  static override [Symbol.hasInstance](this: abstract new (...args: never[]) => unknown, value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = (value as { [BRAND]?: unknown })[BRAND];
    return Array.isArray(kinds) && kinds.includes(this.name);
  }
}

/**
 * The base of errors from an operating-system call (TUN device, UDP socket, UAPI unix socket):
 * a PlexdError that also carries the OS `errno` name when the failure came with one.
 */
export abstract class OsError<Code extends string = string> extends PlexdError<Code> {
  /** The OS error name (`EBUSY`, ...), or undefined when the failure was not a system call's. */
  readonly errno: string | undefined;

  constructor(code: Code, message: string, options?: OsErrorOptions) {
    super(code, message, options);
    this.errno = options?.errno;
  }
}

/** True when `err` is a PlexdError (of any copy of this module) with the given code. */
export function hasCode(err: unknown, code: string): boolean {
  return err instanceof PlexdError && err.code === code;
}
