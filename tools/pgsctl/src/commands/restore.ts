/**
 * `pgsctl tenant restore` (a backup to a time, a backup or the latest WAL: into a new tenant, or
 * in place) and `pgsctl tenant recreate` (an UNAVAILABLE tenant back on another host, from its
 * backup or empty). The coordinator answers at once with the restore RUNNING; `--wait` follows
 * the restore and its tenant until the restore SUCCEEDED or FAILED.
 */
import { Command, Option } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import { validateTenantId } from '@pgs/tenancy';
import { restoreOutcome, restoreProgress, restoreTarget } from '../backup-details.js';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { OperationFailedError, UsageError, WaitTimeoutError } from '../errors.js';
import { durationArg } from '../parse.js';
import { recreateRequest, restoreRequest, type RecreateFlags, type RestoreFlags } from '../restore-request.js';
import { examples, type Options, type Session } from '../session.js';
import { restoreView, tenantView, type RestoreView, type TenantView } from '../views.js';
import { waitWithProgress, waitForTenant } from '../wait.js';

const DEFAULT_WAIT = '1h';

/** A restore and the tenant it restores into, as last read. */
interface RestoreProgress {
  restore: RestoreView;
  tenant: TenantView | undefined;
}

async function readTarget(ctx: CommandContext, id: string): Promise<TenantView | undefined> {
  try {
    const res = await ctx.client.getTenant({ id }, ctx.call());
    return res.tenant === undefined ? undefined : tenantView(res.tenant);
  } catch (err) {
    // A new target tenant may not be readable for a moment; the restore itself tells the outcome.
    if (err instanceof RpcError && err.code === Code.NOT_FOUND) return undefined;
    throw err;
  }
}

/** Follows a restore (GetRestore) and its target tenant until the restore is no longer RUNNING. */
export async function waitForRestore(ctx: CommandContext, started: RestoreView, timeoutMs: number): Promise<RestoreProgress> {
  const { id, targetTenantId } = started;
  return waitWithProgress<RestoreProgress>(ctx, {
    tenantId: targetTenantId,
    start: `waiting for restore ${id} into tenant ${targetTenantId} to finish`,
    read: async () => {
      const res = await ctx.client.getRestore({ tenantId: targetTenantId, id }, ctx.call());
      if (res.restore === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the restore');
      return { restore: restoreView(res.restore), tenant: await readTarget(ctx, targetTenantId) };
    },
    describe: (p) => restoreProgress(p.restore, p.tenant),
    finished: (p) => (p.restore.state === 'RUNNING' || p.restore.state === 'UNSPECIFIED' ? undefined : `restore ${id} ${p.restore.state}`),
    timeoutMs,
    timedOut: (elapsed, last) =>
      new WaitTimeoutError(
        `restore ${id} has not finished after ${elapsed}; last seen: ${last}`,
        `it keeps running: watch tenant ${targetTenantId} with \`pgsctl tenant get ${targetTenantId} --watch\`, or wait longer with --timeout`,
      ),
  });
}

function answeredRestore(restore: Parameters<typeof restoreView>[0] | undefined): RestoreView {
  if (restore === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the restore');
  return restoreView(restore);
}

/** Prints where a started restore ends up: followed with --wait, or how to follow it; exit 8 when it FAILED. */
async function finish(ctx: CommandContext, started: RestoreProgress, options: Options, recreate: boolean): Promise<void> {
  const final = options.wait === true ? await waitForRestore(ctx, started.restore, options.timeout as number) : started;
  const r = final.restore;
  if (ctx.structured) emit(ctx, { restore: r, tenant: final.tenant ?? null }, () => '');
  else if (r.state === 'SUCCEEDED') ctx.print(restoreOutcome(r, final.tenant, { recreate }));
  else if (options.wait !== true) ctx.print(`follow it: pgsctl tenant restore-status ${r.targetTenantId} ${r.id} --wait\n`);
  if (r.state === 'FAILED') {
    throw new OperationFailedError(
      `restore ${r.id} into tenant ${r.targetTenantId} FAILED: ${r.reason || 'no reason given'}`,
      `see \`pgsctl tenant get ${r.targetTenantId}\` and \`pgsctl events --tenant ${r.targetTenantId}\`; the restorable times are in \`pgsctl backup list ${r.sourceTenantId}\``,
    );
  }
}

async function restore(ctx: CommandContext, [tenant]: string[], options: Options): Promise<void> {
  const id = validateTenantId(tenant ?? '', 'tenant id');
  const req = restoreRequest(id, options as RestoreFlags, ctx.io.now());
  // Answered once the restore is recorded; the restore itself runs on, followed by --wait.
  const res = await ctx.client.restoreTenant(req, ctx.call());
  const r = answeredRestore(res.restore);
  if (!ctx.structured) {
    const into = r.inPlace ? `tenant ${id} in place (its old data is kept until the restored one serves)` : `new tenant ${r.targetTenantId}`;
    ctx.print(`restore ${r.id} started: tenant ${id} as of ${restoreTarget(r)} into ${into}\n`);
  }
  await finish(ctx, { restore: r, tenant: res.tenant === undefined ? undefined : tenantView(res.tenant) }, options, false);
}

async function recreate(ctx: CommandContext, [tenant]: string[], options: Options): Promise<void> {
  const id = validateTenantId(tenant ?? '', 'tenant id');
  const req = recreateRequest(id, options as RecreateFlags, ctx.io.now());
  const res = await ctx.client.recreateTenant(req, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const view = tenantView(res.tenant);
  if (req.fromBackup === true) {
    const r = answeredRestore(res.restore);
    if (!ctx.structured) ctx.print(`tenant ${id} is being re-created on another host from its backup, as of ${restoreTarget(r)} (restore ${r.id})\n`);
    await finish(ctx, { restore: r, tenant: view }, options, true);
    return;
  }
  if (!ctx.structured) ctx.print(`tenant ${id} is being re-created EMPTY on another host (status ${view.status})\n`);
  const final = options.wait === true ? ((await waitForTenant(ctx, id, { statuses: ['ACTIVE'] }, options.timeout as number)) ?? view) : view;
  emit(ctx, { tenant: final, restore: null }, () =>
    options.wait === true ? `tenant ${id} is ${final.status}, with no data: its users and databases are re-created empty\n` : '',
  );
}

async function restoreStatus(ctx: CommandContext, [tenant, restoreId]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant id');
  const id = (restoreId ?? '').trim();
  if (id === '') throw new UsageError('missing restore id', { hint: '`pgsctl tenant restore` prints it, e.g. restore r-7 started' });
  const r = answeredRestore((await ctx.client.getRestore({ tenantId, id }, ctx.call())).restore);
  const current = { restore: r, tenant: await readTarget(ctx, tenantId) };
  if (r.state === 'RUNNING' && options.wait !== true) {
    emit(ctx, { restore: r, tenant: current.tenant ?? null }, () => `${restoreProgress(r, current.tenant)}\n`);
    return;
  }
  await finish(ctx, current, options, false);
}

function waitOptions(command: Command, what: string): Command {
  return command
    .option('--wait', `wait until ${what}, showing progress (exit 8 when the restore failed)`)
    .addOption(
      new Option('--timeout <duration>', 'how long --wait waits, e.g. 30m, 2h').argParser(durationArg).default(durationArg(DEFAULT_WAIT), DEFAULT_WAIT),
    );
}

/** Adds `restore` and `recreate` under `tenant`. */
export function registerRestore(tenant: Command, session: Session): void {
  examples(
    waitOptions(
      tenant
        .command('restore')
        .argument('<id>', 'the tenant whose backups are restored')
        .description("restore a tenant's backup to a point in time, a backup or its latest WAL: into a new tenant (default) or in place")
        .option('--to-time <time>', 'the RFC 3339 time to recover to, e.g. 2026-12-06T10:15:00Z or 2026-12-06T11:15:00+01:00')
        .option('--to-backup <backup-id>', 'the end of this backup (see `pgsctl backup list <id>`)')
        .option('--latest', 'everything archived so far')
        .option('--as <new-id>', 'the new tenant to restore into (default: <id>-restore-<n>); it gets the users and databases, external access off')
        .option('--in-place', "replace the tenant's own data instead (needs --yes)")
        .option('-y, --yes', 'confirm --in-place')
        .option('--idempotency-key <key>', 'retries with the same key return the first result'),
      'the restore SUCCEEDED or FAILED',
    ).action(session.action(restore)),
    [
      'pgsctl tenant restore acme --to-time 2026-12-06T10:15:00Z --as acme-before --wait',
      'pgsctl tenant restore acme --to-backup b-20261206-101500-acme-3 --wait',
      'pgsctl tenant restore acme --latest --in-place --yes --wait',
    ],
  );
  examples(
    waitOptions(
      tenant
        .command('restore-status')
        .argument('<tenant>', 'the tenant restored into')
        .argument('<restore-id>')
        .description('show a restore: its state and progress, or the recovery point it reached'),
      'the restore SUCCEEDED or FAILED',
    ).action(session.action(restoreStatus)),
    ['pgsctl tenant restore-status acme-before r-7', 'pgsctl tenant restore-status acme-before r-7 --wait -o json'],
  );
  examples(
    waitOptions(
      tenant
        .command('recreate')
        .argument('<id>')
        .description('bring an UNAVAILABLE tenant back on another host: from its backup and archived WAL, or EMPTY')
        .option('--from-backup', 'from its backup and archived WAL (prints the recovery point reached and any WAL that was lost)')
        .option('--to-time <time>', 'with --from-backup: recover to this RFC 3339 time instead of all archived WAL')
        .option('--accept-data-loss', 'come back EMPTY: every row of the tenant is lost'),
      'the tenant serves again (--from-backup: the restore SUCCEEDED or FAILED)',
    ).action(session.action(recreate)),
    [
      'pgsctl tenant recreate acme --from-backup --wait',
      'pgsctl tenant recreate acme --from-backup --to-time 2026-12-06T10:15:00Z --wait',
      'pgsctl tenant recreate acme --accept-data-loss --wait',
    ],
  );
}
