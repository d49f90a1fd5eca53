/**
 * `--wait`: polls the coordinator until a tenant reaches what the command asked for (ACTIVE,
 * STOPPED, gone), showing a progress line with the elapsed time. Polling with a deadline keeps
 * it simple and correct across coordinator restarts; WatchEvents would only save a few calls.
 */
import { Code, RpcError } from '@pgs/rpc';
import type { CommandContext } from './context.js';
import { WaitTimeoutError } from './errors.js';
import { formatElapsed } from './output.js';
import { startProgress } from './progress.js';
import { tenantView, type TenantView } from './views.js';

const POLL_MS = 500;

/** What to wait for: the statuses that end the wait, or the tenant being gone. */
export type WaitTarget = { statuses: readonly string[] } | { gone: true };

function describe(view: TenantView): string {
  const placements = view.placements.map((p) => `${p.hostId}:${p.role.toLowerCase()}:${p.realization.toLowerCase()}`).join(' ');
  const reason = view.statusReason ? ` (${view.statusReason})` : '';
  return `tenant ${view.id}: ${view.status}${reason}${placements ? ` [${placements}]` : ''}`;
}

/** Waits for `target`; resolves with the last view (undefined when gone), throws WaitTimeoutError past timeoutMs. */
export async function waitForTenant(ctx: CommandContext, id: string, target: WaitTarget, timeoutMs: number): Promise<TenantView | undefined> {
  const progress = startProgress(ctx.io.stderr, ctx.io.now);
  const started = ctx.io.now();
  const goal = 'gone' in target ? 'deleted' : target.statuses.join(' or ');
  let last = `waiting for tenant ${id} to be ${goal}`;
  progress.update(last);
  try {
    for (;;) {
      let view: TenantView | undefined;
      try {
        const res = await ctx.client.getTenant({ id }, ctx.call());
        view = res.tenant === undefined ? undefined : tenantView(res.tenant);
      } catch (err) {
        if (!(err instanceof RpcError && err.code === Code.NOT_FOUND && 'gone' in target)) throw err;
      }
      if ('gone' in target && view === undefined) {
        progress.done(`tenant ${id} deleted`);
        return undefined;
      }
      if (view !== undefined) {
        last = describe(view);
        if ('statuses' in target && target.statuses.includes(view.status)) {
          progress.done(`tenant ${id} is ${view.status}`);
          return view;
        }
        progress.update(last);
      }
      const elapsed = ctx.io.now() - started;
      if (elapsed >= timeoutMs) {
        progress.done(`gave up waiting`);
        throw new WaitTimeoutError(
          `tenant ${id} is not ${goal} after ${formatElapsed(elapsed)}; last seen: ${last}`,
          `it may still get there: watch with \`pgsctl tenant get ${id}\` or \`pgsctl events --tenant ${id} --watch\`, or wait longer with --timeout`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, timeoutMs - elapsed)));
    }
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) progress.done('stopped waiting');
    throw err;
  }
}
