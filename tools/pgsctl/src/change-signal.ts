/**
 * What makes `--wait` fast: a WatchEvents stream for one tenant that wakes the waiter on every
 * event, so it re-reads the state within a round trip of the change instead of on the next poll.
 *
 * No change is missed, even across a coordinator restart: before the first subscription it takes
 * the newest event id as a cursor (the waiter's first read comes after it, so anything older is in
 * that read), and every subscription asks the coordinator to replay the events after the last id
 * it saw. When the stream breaks it re-subscribes with a growing pause and wakes the waiter once
 * more, so the state is re-read after every gap. A coordinator without the stream (UNIMPLEMENTED)
 * or a token not allowed to watch leaves only the waiter's periodic re-read.
 */
import { Code, RpcError } from '@pgs/rpc';
import type { CommandContext } from './context.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 1000;

/** Codes after which watching again cannot help. */
const PERMANENT = new Set<number>([Code.UNIMPLEMENTED, Code.PERMISSION_DENIED, Code.UNAUTHENTICATED, Code.INVALID_ARGUMENT]);

/** A wake-up the waiter sleeps on: resolves on the next signal or after `ms`, whichever is first. */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;

  /** Wakes the current sleeper, or makes the next sleep return at once. */
  signal(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }

  /** Sleeps until signal() or `ms`; true when signalled. */
  sleep(ms: number): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((done) => {
      const timer = setTimeout(
        () => {
          this.resolve = undefined;
          done(false);
        },
        Math.max(0, ms),
      );
      this.resolve = () => {
        clearTimeout(timer);
        this.resolve = undefined;
        done(true);
      };
    });
  }
}

/** A running watch; stop() ends it. */
export interface ChangeWatch {
  /** Resolves once the cursor is taken and the first subscription is under way (or watching gave up). */
  readonly started: Promise<void>;
  stop(): void;
}

/**
 * The cursor: the newest event of the tenant (visible even to a token scoped to it), or of the
 * fleet when the tenant has none yet (a restore's target before it exists).
 */
async function newestEventId(ctx: CommandContext, tenantId: string): Promise<bigint> {
  const newest = async (filter: { tenantId?: string }): Promise<bigint> => {
    const res = await ctx.client.listEvents({ ...filter, limit: 1 }, ctx.call());
    return res.events.reduce((max, e) => (e.id > max ? e.id : max), 0n);
  };
  const own = await newest({ tenantId });
  return own > 0n ? own : newest({});
}

/** Watches the events of `tenantId` and calls wakeup.signal() on each, and after each re-subscription. */
export function watchChanges(ctx: CommandContext, tenantId: string, wakeup: Wakeup): ChangeWatch {
  const abort = new AbortController();
  let cursor = 0n;
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (abort.signal.aborted) {
        resolve();
        return;
      }
      // The listener goes when the timer fires too: a long outage retries many times on one signal.
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      abort.signal.addEventListener('abort', onAbort, { once: true });
    });

  const run = async (): Promise<void> => {
    let retryMs = RETRY_MIN_MS;
    let first = true;
    while (!abort.signal.aborted) {
      try {
        if (first) cursor = await newestEventId(ctx, tenantId);
        const stream = ctx.client.watchEvents({ tenantId, afterId: cursor }, { signal: abort.signal });
        if (first) markStarted();
        // After a gap the state may have changed without an event this stream will replay (the
        // coordinator was down, or the change predates the cursor): have the waiter read again.
        else wakeup.signal();
        first = false;
        for await (const msg of stream) {
          if (msg.event === undefined) continue;
          if (msg.event.id > cursor) cursor = msg.event.id;
          retryMs = RETRY_MIN_MS;
          wakeup.signal();
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err instanceof RpcError && PERMANENT.has(err.code)) break;
      }
      if (first) markStarted();
      // Stopped (the stream then ends quietly): no pause, so nothing keeps the process alive.
      if (abort.signal.aborted) break;
      await pause(retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
    markStarted();
  };
  void run();
  return { started, stop: () => abort.abort() };
}
