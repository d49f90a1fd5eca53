import { pino, type Logger as PinoLogger } from 'pino';

/** The small logging interface libs accept, so they never depend on pino itself. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  /** `redact` replaces the redacted paths (pino's child option); `[]` for lines of a fixed, secret-free shape. */
  child(bindings: Record<string, unknown>, options?: { redact?: string[] }): Logger;
}

/** Paths pino blanks out wherever they appear: secrets never reach a log line. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'ownerPassword',
  '*.ownerPassword',
  'generatedPassword',
  '*.generatedPassword',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'scramVerifier',
  '*.scramVerifier',
  'connectionString',
  '*.connectionString',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'key',
  '*.privateKey',
  'privateKey',
];

/** How long a buffered logger may hold lines before writing them. */
export const LOG_FLUSH_INTERVAL_MS = 100;

/**
 * The one root logger of an app: JSON lines on stdout (or stderr), `app` bound, secrets redacted.
 * `buffered` collects lines into writes of 4 KiB or every LOG_FLUSH_INTERVAL_MS, whichever comes
 * first (and at exit), instead of one write per line: for a process that logs a line per client
 * connection. A kill -9 loses at most that interval of lines.
 */
export function createLogger(options: { app: string; level?: string; destination?: 1 | 2; buffered?: boolean }): PinoLogger {
  const buffering = options.buffered ? { minLength: 4096, periodicFlush: LOG_FLUSH_INTERVAL_MS } : {};
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: options.app, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: options.destination ?? 1, sync: false, ...buffering }),
  );
}
