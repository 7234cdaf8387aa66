// The error of a command line that cannot run as written (an unknown command, a missing flag):
// the CLI prints it with the usage text and exits 2 (EXIT.usage).

import { PlexdError, type PlexdErrorOptions } from '../errors.js';

/** A bad command line: the message names what is wrong; the caller adds the usage text. */
export class UsageError extends PlexdError<'ERR_USAGE'> {
  static readonly codes = ['ERR_USAGE'] as const;
  constructor(message: string, options?: PlexdErrorOptions) {
    super('ERR_USAGE', message, options);
  }
}
