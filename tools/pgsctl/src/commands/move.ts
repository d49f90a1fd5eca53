/**
 * `pgsctl tenant move <id> --to <host> [--member <host>] [--wait]`: a live move. The coordinator
 * builds a copy on the target (a base backup of the primary), waits until it caught up, then
 * switches with a short pause in which the routers hold clients, and removes the old instance once
 * the new one serves. Without --wait it answers once the move started (follow it with tenant get).
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

async function move(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const raw = args[0];
  if (raw === undefined) throw new UsageError('a tenant id is required');
  const id = validateTenantId(raw, 'tenant id');
  if (options.to === undefined) throw new UsageError('--to <host> is required: the host to move to');
  const toHostId = validateHostId(options.to as string, '--to');
  const memberHostId = options.member === undefined ? '' : validateHostId(options.member as string, '--member');
  const wait = options.wait === true;
  const started = Date.now();
  // With --wait the move takes as long as the copy: the deadline is --timeout, not the request timeout.
  const res = await ctx.client.moveTenant({ id, toHostId, memberHostId, wait }, wait ? ctx.call({ timeoutMs: options.timeout as number }) : ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const view = tenantView(res.tenant);
  const steps = res.steps.map((s) => ({ name: s.name, durationMs: Number(s.durationMs), detail: s.detail }));
  emit(ctx, { tenant: view, steps }, () => {
    if (!wait) return `tenant ${id}: moving to ${toHostId} (${view.statusReason || view.status}); follow it with pgsctl tenant get ${id}\n`;
    const primary = view.placements.find((p) => p.role === 'PRIMARY');
    const lines = steps.map((s) => `  ${s.name.padEnd(10)} ${String(s.durationMs).padStart(7)} ms  ${s.detail}\n`).join('');
    return `tenant ${id}: moved to ${toHostId} in ${Date.now() - started} ms; primary on ${primary?.hostId ?? 'unknown'}\n${lines}`;
  });
}

/** Adds `move` under `tenant`. */
export function registerMove(tenant: Command, session: Session): void {
  examples(
    tenant
      .command('move')
      .argument('<id>')
      .description('move a tenant to another host without downtime: copy, catch up, switch with a short pause, remove the old instance')
      .option('--to <host>', 'the host to move to')
      .option('--member <host>', 'replicated tenants: the host of the member that moves (a switchover first when it is the primary)')
      .option('--wait', 'answer once the move finished, with the time of each step')
      .option('--timeout <duration>', 'how long --wait waits', durationArg, 6 * 3600_000)
      .action(session.action(move)),
    ['pgsctl tenant move acme --to h2 --wait', 'pgsctl tenant move acme --member h1 --to h3'],
  );
}
