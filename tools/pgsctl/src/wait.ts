/**
 * `--wait`: polls the coordinator until what a command started gets where it asked (a tenant
 * ACTIVE, STOPPED or gone; a backup or a restore finished), showing a progress line with the
 * elapsed time. Polling with a deadline keeps it simple and correct across coordinator restarts;
 * WatchEvents would only save a few calls.
 */
import { Code, RpcError } from '@pgs/rpc';
import type { CommandContext } from './context.js';
import { WaitTimeoutError } from './errors.js';
import { formatElapsed } from './output.js';
import { startProgress } from './progress.js';
import { tenantView, type TenantView } from './views.js';

const POLL_MS = 500;

/** One wait: how to read the state, how to show it, when it is over, and what to say past the deadline. */
export interface PollSpec<T> {
  /** The progress line before the first reading. */
  start: string;
  read: () => Promise<T>;
  /** The progress line for a reading. */
  describe: (value: T) => string;
  /** The final line once `value` ends the wait; undefined to keep waiting. */
  finished: (value: T) => string | undefined;
  timeoutMs: number;
  /** The error past the deadline, given the elapsed time and the last progress line. */
  timedOut: (elapsed: string, last: string) => WaitTimeoutError;
}

/** Polls until `spec.finished` says so; resolves with the last reading, throws spec.timedOut past the deadline. */
export async function pollWithProgress<T>(ctx: CommandContext, spec: PollSpec<T>): Promise<T> {
  const progress = startProgress(ctx.io.stderr, ctx.io.now);
  const started = ctx.io.now();
  let last = spec.start;
  progress.update(last);
  try {
    for (;;) {
      const value = await spec.read();
      const final = spec.finished(value);
      if (final !== undefined) {
        progress.done(final);
        return value;
      }
      last = spec.describe(value);
      progress.update(last);
      const elapsed = ctx.io.now() - started;
      if (elapsed >= spec.timeoutMs) {
        progress.done('gave up waiting');
        throw spec.timedOut(formatElapsed(elapsed), last);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, spec.timeoutMs - elapsed)));
    }
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) progress.done('stopped waiting');
    throw err;
  }
}

/** What to wait for: the statuses that end the wait, or the tenant being gone. */
export type WaitTarget = { statuses: readonly string[] } | { gone: true };

/** A tenant on one progress line: status, reason, and each placement's host, role and realization. */
export function describeTenant(view: TenantView): string {
  const placements = view.placements.map((p) => `${p.hostId}:${p.role.toLowerCase()}:${p.realization.toLowerCase()}`).join(' ');
  const reason = view.statusReason ? ` (${view.statusReason})` : '';
  return `tenant ${view.id}: ${view.status}${reason}${placements ? ` [${placements}]` : ''}`;
}

/** Waits for `target`; resolves with the last view (undefined when gone), throws WaitTimeoutError past timeoutMs. */
export async function waitForTenant(ctx: CommandContext, id: string, target: WaitTarget, timeoutMs: number): Promise<TenantView | undefined> {
  const goal = 'gone' in target ? 'deleted' : target.statuses.join(' or ');
  let last = `waiting for tenant ${id} to be ${goal}`;
  return pollWithProgress<TenantView | undefined>(ctx, {
    start: last,
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
      return view !== undefined && target.statuses.includes(view.status) ? `tenant ${id} is ${view.status}` : undefined;
    },
    timeoutMs,
    timedOut: (elapsed, lastLine) =>
      new WaitTimeoutError(
        `tenant ${id} is not ${goal} after ${elapsed}; last seen: ${lastLine}`,
        `it may still get there: watch with \`pgsctl tenant get ${id}\` or \`pgsctl events --tenant ${id} --watch\`, or wait longer with --timeout`,
      ),
  });
}
