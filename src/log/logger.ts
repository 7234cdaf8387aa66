// One logger for the whole process: levels as wireguard-go names them (LOG_LEVEL=verbose|debug|
// error|silent), lines in wireguard-go's shape ("DEBUG: (wg0) 2006/01/02 15:04:05 message").

import { printable } from './printable.js';

/** Log levels, quietest first. */
export const LOG_LEVELS = ['silent', 'error', 'info', 'verbose'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The logger every layer above core receives; core itself never logs (STYLE.md 12). */
export interface Logger {
  readonly level: LogLevel;
  error(message: string): void;
  info(message: string): void;
  verbose(message: string): void;
  /** A logger with the same sink and level and a different prefix. */
  child(prefix: string): Logger;
}

/**
 * Maps wireguard-go's LOG_LEVEL values onto ours: verbose and debug are verbose, error, silent;
 * unset or unknown means error, as in wireguard-go.
 */
export function logLevelFromEnv(value: string | undefined): LogLevel {
  switch (value) {
    case 'verbose':
    case 'debug':
      return 'verbose';
    case 'info':
      return 'info';
    case 'silent':
      return 'silent';
    default:
      return 'error';
  }
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A logger writing one line per message to `write` (default: process.stderr). */
export function createLogger(
  level: LogLevel,
  prefix = '',
  write: (line: string) => void = (line) => void process.stderr.write(line),
): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const emit = (tag: string, min: number, message: string) => {
    // Messages quote names and ids from the network: escape what a terminal would interpret.
    if (rank >= min) write(`${tag}: ${prefix}${stamp(new Date())} ${printable(message, true)}\n`);
  };
  return {
    level,
    error: (m) => emit('ERROR', 1, m),
    info: (m) => emit('INFO', 2, m),
    verbose: (m) => emit('DEBUG', 3, m),
    child: (p) => createLogger(level, p, write),
  };
}

/** A logger that drops everything (library default). */
export const silentLogger: Logger = createLogger('silent', '', () => {});
