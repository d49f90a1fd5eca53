/**
 * `pgsctl tenant switchover <id> [--to host]`: a planned change of primary (maintenance, drain).
 * The coordinator fences the primary with a clean shutdown, waits until the target replica has its
 * last WAL position, promotes it and moves the route; it answers once the route points at the new
 * primary, or rolls back (FAILED_PRECONDITION) when the target does not catch up in time.
 */
import type { Command } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import { validateHostId, validateTenantId } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { UsageError } from '../errors.js';
import { durationArg } from '../parse.js';
import { examples, type Options, type Session } from '../session.js';
import { tenantView } from '../views.js';

async function switchover(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const raw = args[0];
  if (raw === undefined) throw new UsageError('a tenant id is required');
  const id = validateTenantId(raw, 'tenant id');
  const toHostId = options.to === undefined ? '' : validateHostId(options.to as string, '--to');
  const started = Date.now();
  // The switchover takes as long as the target needs to catch up: the deadline is --timeout, not the request timeout.
  const res = await ctx.client.switchoverTenant({ id, toHostId }, ctx.call({ timeoutMs: options.timeout as number }));
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const view = tenantView(res.tenant);
  const primary = view.placements.find((p) => p.role === 'PRIMARY');
  emit(ctx, view, () => `tenant ${id}: primary is now ${primary?.hostId ?? 'unknown'} (switchover took ${Date.now() - started} ms)\n`);
}

/** Adds `switchover` under `tenant`. */
export function registerSwitchover(tenant: Command, session: Session): void {
  examples(
    tenant
      .command('switchover')
      .argument('<id>')
      .description('make a replica the primary without losing data (planned maintenance): waits for it to catch up, then switches with a short pause')
      .option('--to <host>', "the replica's host to promote (default: the most advanced healthy replica)")
      .option('--timeout <duration>', 'how long to wait for the switchover', durationArg, 120_000)
      .action(session.action(switchover)),
    ['pgsctl tenant switchover acme', 'pgsctl tenant switchover acme --to h2'],
  );
}
