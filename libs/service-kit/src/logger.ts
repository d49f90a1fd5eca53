import { pino, type Logger as PinoLogger } from 'pino';

/** The small logging interface libs accept, so they never depend on pino itself. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** Paths pino blanks out wherever they appear: secrets never reach a log line. */
export const REDACT_PATHS = [
  'password', '*.password', 'ownerPassword', '*.ownerPassword', 'generatedPassword', '*.generatedPassword',
  'token', '*.token', 'secret', '*.secret', 'scramVerifier', '*.scramVerifier', 'connectionString', '*.connectionString',
  'authorization', '*.authorization', 'headers.authorization', 'key', '*.privateKey', 'privateKey',
];

/** The one root logger of an app: JSON lines on stdout (or stderr), `app` bound, secrets redacted. */
export function createLogger(options: { app: string; level?: string; destination?: 1 | 2 }): PinoLogger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: options.app, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: options.destination ?? 1, sync: false }),
  );
}
