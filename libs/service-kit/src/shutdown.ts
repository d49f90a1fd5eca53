import type { Logger } from './logger.js';

/**
 * Graceful stop on SIGINT/SIGTERM: runs `stop` once with a deadline; a second signal or the
 * deadline forces exit. Returns a function that triggers the same stop from code.
 */
export function handleShutdown(log: Logger, stop: (reason: string) => Promise<void>, options: { timeoutMs?: number } = {}): (reason: string) => Promise<void> {
  let stopping: Promise<void> | undefined;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const run = (reason: string): Promise<void> => {
    if (stopping) return stopping;
    log.info({ reason, timeoutMs }, 'stopping');
    const timer = setTimeout(() => {
      log.error({ reason, timeoutMs }, 'graceful stop timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stopping = stop(reason).then(
      () => {
        clearTimeout(timer);
        log.info({ reason }, 'stopped');
      },
      (err: unknown) => {
        clearTimeout(timer);
        log.error({ err, reason }, 'error while stopping');
        process.exitCode = 1;
      },
    );
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) {
        log.warn({ signal }, 'second signal; exiting now');
        process.exit(1);
      }
      void run(signal);
    });
  }
  return run;
}
