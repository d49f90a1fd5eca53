/**
 * `pgsctl tenant upgrade <id> --to <major> [--wait] | --rollback | --finalize`: a major upgrade by
 * logical replication. The coordinator builds an instance of the new major on another host, copies
 * the schema and the rows, keeps it in step, then switches with a short pause in which the routers
 * hold clients; the old instance stays stopped for a rollback until --finalize (or its retention).
 * A refusal lists every reason at once, one a line.
 */
import type { Command } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import { validateTenantId } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { CliError, ExitCode, UsageError } from '../errors.js';
import { durationArg } from '../parse.js';
import { examples, type Options, type Session } from '../session.js';
import { upgradeText } from '../tenant-details.js';
import { tenantView, upgradeView } from '../views.js';

/** "upgrade of acme refused: a [A]; b [B]" -> one reason a line. */
export function refusalLines(message: string): string {
  const at = message.indexOf(' refused: ');
  if (at < 0) return message;
  // Each reason ends with its code in brackets (a reason may itself hold a semicolon).
  const reasons = message.slice(at + ' refused: '.length).split(/(?<=\[[A-Z_]+\]); /);
  return `${message.slice(0, at)} refused:\n${reasons.map((r) => `  - ${r}`).join('\n')}`;
}

function action(options: Options): { case: 'toMajor'; value: number } | { case: 'rollback'; value: true } | { case: 'finalize'; value: true } {
  const given = [options.to !== undefined, options.rollback === true, options.finalize === true].filter(Boolean).length;
  if (given !== 1) throw new UsageError('give exactly one of --to <major>, --rollback or --finalize');
  if (options.rollback === true) return { case: 'rollback', value: true };
  if (options.finalize === true) return { case: 'finalize', value: true };
  const major = Number(options.to);
  if (!Number.isInteger(major) || major < 10 || major > 99) throw new UsageError(`--to must be a PostgreSQL major such as 18 (got ${String(options.to)})`);
  return { case: 'toMajor', value: major };
}

async function upgrade(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const raw = args[0];
  if (raw === undefined) throw new UsageError('a tenant id is required');
  const id = validateTenantId(raw, 'tenant id');
  const a = action(options);
  const wait = options.wait === true;
  const started = Date.now();
  let res;
  try {
    res = await ctx.client.upgradeTenant(
      { id, action: a, wait, replicaIdentityFull: options.replicaIdentityFull === true },
      wait ? ctx.call({ timeoutMs: options.timeout as number }) : ctx.call(),
    );
  } catch (err) {
    if (err instanceof RpcError && err.code === Code.FAILED_PRECONDITION) throw new CliError(ExitCode.CONFLICT, refusalLines(err.message), { cause: err });
    throw err;
  }
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const tenant = tenantView(res.tenant);
  const up = res.upgrade ? upgradeView(res.upgrade) : null;
  emit(ctx, { tenant, upgrade: up }, () => {
    const version = `now on PostgreSQL ${tenant.spec.version || 'default'}`;
    switch (a.case) {
      case 'rollback':
        return `tenant ${id}: rolled back, ${version} (writes made on the new major since the switch are gone)\n`;
      case 'finalize':
        return `tenant ${id}: finalized, ${version}; the old instance is deleted\n`;
      case 'toMajor':
        if (!up) return `tenant ${id}: ${version}\n`;
        if (!wait) return `tenant ${id}: upgrading ${upgradeText(up)}; follow it with pgsctl tenant get ${id}\n`;
        return (
          `tenant ${id}: upgraded to PostgreSQL ${up.toMajor} in ${Date.now() - started} ms\n` +
          `  copy    ${String(up.copyMs).padStart(8)} ms  build, schema and initial copy on ${up.toHostId}\n` +
          `  switch  ${String(up.switchMs).padStart(8)} ms  clients held while the new instance caught up\n` +
          `  old instance on ${up.fromHostId} kept for a rollback${up.keepUntil ? ` until ${up.keepUntil}` : ''} (pgsctl tenant upgrade ${id} --rollback | --finalize)\n`
        );
    }
  });
}

/** Adds `upgrade` under `tenant`. */
export function registerUpgrade(tenant: Command, session: Session): void {
  examples(
    tenant
      .command('upgrade')
      .argument('<id>')
      .description('upgrade a tenant to a newer PostgreSQL major with a short pause (logical replication), or roll back / finalize it')
      .option('--to <major>', 'the major to upgrade to, e.g. 18')
      .option('--rollback', 'after the switch: go back to the kept old instance (writes made since the switch are lost)')
      .option('--finalize', 'after the switch: delete the kept old instance (no rollback after this)')
      .option('--replica-identity-full', 'give tables without a primary key REPLICA IDENTITY FULL instead of refusing')
      .option('--wait', 'answer once switched (or abandoned), with the copy time and the pause')
      .option('--timeout <duration>', 'how long --wait waits', durationArg, 6 * 3600_000)
      .action(session.action(upgrade)),
    ['pgsctl tenant upgrade acme --to 18 --wait', 'pgsctl tenant upgrade acme --rollback', 'pgsctl tenant upgrade acme --finalize'],
  );
}
