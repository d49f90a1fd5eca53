/** Polling with deadlines: the only way the end-to-end tests wait for anything (never a bare sleep). */

/** Options of waitFor. */
export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
}

/** Thrown when a condition is not met before its deadline; says what was awaited and what was last seen. */
export class WaitTimeoutError extends Error {
  constructor(what: string, timeoutMs: number, last: unknown) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${describe(last)}`, { cause: last instanceof Error ? last : undefined });
    this.name = 'WaitTimeoutError';
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (value === undefined) return 'nothing yet';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

/** Resolves after ms; used only between polls, never as a wait for something to happen. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `probe` until it returns a value other than undefined (a thrown error counts as "not yet"
 * and is remembered for the timeout message); throws WaitTimeoutError after timeoutMs.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  const interval = options.intervalMs ?? 100;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) throw new WaitTimeoutError(what, options.timeoutMs, last);
    await pause(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
}

/** Like waitFor, but `probe` also reports what it saw, so a timeout names the last observed state. */
export async function waitUntil<S>(what: string, probe: () => Promise<S> | S, done: (state: S) => boolean, options: WaitOptions): Promise<S> {
  let seen: S | undefined;
  try {
    return await waitFor(
      what,
      async () => {
        seen = await probe();
        return done(seen) ? seen : undefined;
      },
      options,
    );
  } catch (err) {
    if (err instanceof WaitTimeoutError && seen !== undefined) throw new WaitTimeoutError(what, options.timeoutMs, seen);
    throw err;
  }
}
