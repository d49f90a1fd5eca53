import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

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

/** Lines a buffered destination collects before it writes them without waiting for the interval. */
const LOG_BUFFER_BYTES = 4096;

/**
 * The one root logger of an app: JSON lines on stdout (or stderr), `app` bound, secrets redacted.
 * `buffered` collects lines into writes of 4 KiB or every LOG_FLUSH_INTERVAL_MS, whichever comes
 * first (and at exit), instead of one write per line: for a process that logs a line per client
 * connection. A kill -9 loses at most that interval of lines.
 */
export function createLogger(options: { app: string; level?: string; destination?: number; buffered?: boolean }): PinoLogger {
  const fd = options.destination ?? 1;
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: options.app, pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.buffered ? bufferedDestination(fd) : pino.destination({ fd, sync: false }),
  );
}

/**
 * A destination that collects lines and writes them once LOG_BUFFER_BYTES are collected or
 * LOG_FLUSH_INTERVAL_MS after the first line of a batch. sonic-boom's own periodic flush writes
 * every interval even when nothing was logged (an empty write through the thread pool ten times a
 * second in an idle process), so the timer here is armed by a write and not otherwise. The batch
 * is written synchronously, one write(2) of a few KiB: an asynchronous write goes through the
 * thread pool (a request object, a worker thread woken and the loop woken back), which cost the
 * router more than the write itself; a reader that stops reading stdout blocks the process, as it
 * does pino's default destination and Node's own stdout.
 */
export function bufferedDestination(fd: number, intervalMs = LOG_FLUSH_INTERVAL_MS): DestinationStream {
  const dest = pino.destination({ fd, sync: true, minLength: LOG_BUFFER_BYTES });
  let timer: NodeJS.Timeout | undefined;
  const flushBatch = (): void => {
    timer = undefined;
    // At exit pino flushes synchronously and the stream may be gone before this timer runs.
    if (!(dest as { destroyed?: boolean }).destroyed) dest.flush();
  };
  const write = dest.write.bind(dest);
  dest.write = (line: string): boolean => {
    const more = write(line);
    if (timer === undefined) {
      timer = setTimeout(flushBatch, intervalMs);
      timer.unref();
    }
    return more;
  };
  return dest;
}
