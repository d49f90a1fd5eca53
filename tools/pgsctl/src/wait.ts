/**
 * `--wait`: follows what a command started until it gets where it asked (a tenant ACTIVE, STOPPED
 * or gone; a backup or a restore finished), with a progress line and the elapsed time. The state
 * is read again on every event of the tenant (change-signal.ts: WatchEvents, replayed across
 * coordinator restarts), so a wait ends within a round trip of the change; a slow periodic re-read
 * covers what changes without an event (progress details) and coordinators without the stream.
 * While the coordinator is unreachable (a restart) the wait keeps going until its deadline.
 */
import { Code, RpcError } from '@pgs/rpc';
import { Wakeup, watchChanges } from './change-signal.js';
import type { CommandContext } from './context.js';
import { WaitTimeoutError } from './errors.js';
import { formatElapsed } from './output.js';
import { startProgress } from './progress.js';
import { tenantView, type TenantView } from './views.js';

/** The periodic re-read between events. */
export const REFRESH_MS = 1000;

/** One wait: how to read the state, how to show it, when it is over, and what to say past the deadline. */
export interface WaitSpec<T> {
  /** The progress line before the first reading. */
  start: string;
  /** The tenant whose events may change what `read` returns. */
  tenantId: string;
  read: () => Promise<T>;
  /** The progress line for a reading. */
  describe: (value: T) => string;
  /** The final line once `value` ends the wait; undefined to keep waiting. */
  finished: (value: T) => string | undefined;
  timeoutMs: number;
  /** The error past the deadline, given the elapsed time and the last progress line. */
  timedOut: (elapsed: string, last: string) => WaitTimeoutError;
  /** The re-read period between events (REFRESH_MS; tests make it long to prove events drive the wait). */
  refreshMs?: number;
}

/** The coordinator is restarting or unreachable for a moment: keep waiting rather than fail. */
function transient(err: unknown): boolean {
  return err instanceof RpcError && (err.code === Code.UNAVAILABLE || err.code === Code.DEADLINE_EXCEEDED);
}

/** Waits until `spec.finished` says so; resolves with the last reading, throws spec.timedOut past the deadline. */
export async function waitWithProgress<T>(ctx: CommandContext, spec: WaitSpec<T>): Promise<T> {
  const progress = startProgress(ctx.io.stderr, ctx.io.now);
  const started = ctx.io.now();
  const wakeup = new Wakeup();
  const watch = watchChanges(ctx, spec.tenantId, wakeup);
  let last = spec.start;
  progress.update(last);
  try {
    // The cursor is taken before the first read, so a change between the two is replayed.
    await watch.started;
    for (;;) {
      let shown = last;
      try {
        const value = await spec.read();
        const final = spec.finished(value);
        if (final !== undefined) {
          progress.done(final);
          return value;
        }
        last = spec.describe(value);
        shown = last;
      } catch (err) {
        if (!transient(err)) throw err;
        shown = `${last} (coordinator unreachable, retrying)`;
      }
      progress.update(shown);
      const elapsed = ctx.io.now() - started;
      if (elapsed >= spec.timeoutMs) {
        progress.done('gave up waiting');
        throw spec.timedOut(formatElapsed(elapsed), last);
      }
      await wakeup.sleep(Math.min(spec.refreshMs ?? REFRESH_MS, spec.timeoutMs - elapsed));
    }
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) progress.done('stopped waiting');
    throw err;
  } finally {
    watch.stop();
  }
}

/**
 * What to wait for: the statuses that end the wait (with `initSql`, also until the tenant's init
 * scripts, if it has any, SUCCEEDED or FAILED), or the tenant being gone.
 */
export type WaitTarget = { statuses: readonly string[]; initSql?: boolean } | { gone: true };

const INIT_SQL_OVER = new Set(['SUCCEEDED', 'FAILED', 'HELD']);

/** A tenant on one progress line: status, reason, and each placement's host, role and realization. */
export function describeTenant(view: TenantView): string {
  const placements = view.placements.map((p) => `${p.hostId}:${p.role.toLowerCase()}:${p.realization.toLowerCase()}`).join(' ');
  const reason = view.statusReason ? ` (${view.statusReason})` : '';
  const init =
    view.initSql !== null && view.status === 'ACTIVE'
      ? `, init scripts ${view.initSql.state.toLowerCase()} (${view.initSql.applied}/${view.initSql.scripts.length})`
      : '';
  return `tenant ${view.id}: ${view.status}${reason}${init}${placements ? ` [${placements}]` : ''}`;
}

/** Waits for `target`; resolves with the last view (undefined when gone), throws WaitTimeoutError past timeoutMs. */
export async function waitForTenant(
  ctx: CommandContext,
  id: string,
  target: WaitTarget,
  timeoutMs: number,
  options: { refreshMs?: number } = {},
): Promise<TenantView | undefined> {
  const goal = 'gone' in target ? 'deleted' : target.statuses.join(' or ');
  let last = `waiting for tenant ${id} to be ${goal}`;
  return waitWithProgress<TenantView | undefined>(ctx, {
    start: last,
    tenantId: id,
    refreshMs: options.refreshMs,
    read: async () => {
      try {
        const res = await ctx.client.getTenant({ id }, ctx.call());
        return res.tenant === undefined ? undefined : tenantView(res.tenant);
      } catch (err) {
        if (err instanceof RpcError && err.code === Code.NOT_FOUND && 'gone' in target) return undefined;
        throw err;
      }
    },
    describe: (view) => (last = view === undefined ? last : describeTenant(view)),
    finished: (view) => {
      if ('gone' in target) return view === undefined ? `tenant ${id} deleted` : undefined;
      if (view === undefined || !target.statuses.includes(view.status)) return undefined;
      if (target.initSql === true && view.initSql !== null && !INIT_SQL_OVER.has(view.initSql.state)) return undefined;
      return `tenant ${id} is ${view.status}${target.initSql === true && view.initSql !== null ? `, init scripts ${view.initSql.state}` : ''}`;
    },
    timeoutMs,
    timedOut: (elapsed, lastLine) =>
      new WaitTimeoutError(
        `tenant ${id} is not ${goal} after ${elapsed}; last seen: ${lastLine}`,
        `it may still get there: watch with \`pgsctl tenant get ${id}\` or \`pgsctl events --tenant ${id} --watch\`, or wait longer with --timeout`,
      ),
  });
}
