import type { Logger } from './logger.js';

/**
 * How long a stopped service may take to exit by itself. Its stop closed everything it knows of;
 * a handle still open after that (a socket a peer keeps, a timer of a loop that did not stop)
 * must not keep it running until its supervisor's stop timeout kills it, which counts as a failed
 * stop (systemd's TimeoutStopSec, then SIGKILL).
 */
export const EXIT_AFTER_STOP_MS = 3000;

/**
 * Wires SIGINT/SIGTERM to a graceful stop with a hard deadline (exit 1 past it). A second signal
 * exits at once. Once the stop is done the process exits by itself; if something still holds it
 * after EXIT_AFTER_STOP_MS, the kinds of handle left are logged (to find the leak) and it exits.
 * Returns the stop function: the same stop from code (the process exits after it, as after a signal).
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
    void stopping.then(() => exitSoonAfterStop(log));
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

/** The timer does not hold the process itself: it fires only when something else still does. */
function exitSoonAfterStop(log: Logger): void {
  setTimeout(() => {
    log.warn({ afterMs: EXIT_AFTER_STOP_MS, handles: process.getActiveResourcesInfo() }, 'still running after a graceful stop (a handle left open); exiting');
    process.exit();
  }, EXIT_AFTER_STOP_MS).unref();
}
