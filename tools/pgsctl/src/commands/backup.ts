/**
 * `pgsctl backup ...`: take, list, show and delete a tenant's pgBackRest backups. The coordinator
 * asks the primary's agent to run a backup and answers at once with it RUNNING; `--wait` follows
 * it until it SUCCEEDED or FAILED.
 */
import { Command, Option } from 'commander';
import { BackupType } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { validateTenantId } from '@pgs/tenancy';
import { backupProgress, backupSummary, renderBackup, windowLine } from '../backup-details.js';
import type { CommandContext } from '../context.js';
import { emit, formatResult } from '../emit.js';
import { CliError, ExitCode, OperationFailedError, WaitTimeoutError } from '../errors.js';
import { renderTable } from '../output.js';
import { backupIdArg, durationArg } from '../parse.js';
import { confirm } from '../prompt.js';
import { examples, type Options, type Session } from '../session.js';
import { backupColumns } from '../tables.js';
import { backupView, recoveryWindowView, type BackupListView, type BackupView } from '../views.js';
import { waitWithProgress } from '../wait.js';

const DEFAULT_WAIT = '1h';
const TYPES: Readonly<Record<string, BackupType>> = { full: BackupType.FULL, diff: BackupType.DIFF, incr: BackupType.INCR };

function tenantArg(text: string | undefined): string {
  return validateTenantId(text ?? '', 'tenant id');
}

function answered(backup: Parameters<typeof backupView>[0] | undefined): BackupView {
  if (backup === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the backup');
  return backupView(backup);
}

/** Follows a backup until it is no longer RUNNING. */
export async function waitForBackup(ctx: CommandContext, tenantId: string, backupId: string, timeoutMs: number): Promise<BackupView> {
  return waitWithProgress(ctx, {
    tenantId,
    start: `waiting for backup ${backupId} of tenant ${tenantId} to finish`,
    read: async () => answered((await ctx.client.getBackup({ tenantId, backupId }, ctx.call())).backup),
    describe: backupProgress,
    finished: (b) => (b.status === 'RUNNING' || b.status === 'UNSPECIFIED' ? undefined : `backup ${b.id} ${b.status}`),
    timeoutMs,
    timedOut: (elapsed, last) =>
      new WaitTimeoutError(
        `backup ${backupId} has not finished after ${elapsed}; last seen: ${last}`,
        `it keeps running: follow it with \`pgsctl backup get ${tenantId} ${backupId}\`, or wait longer with --timeout`,
      ),
  });
}

async function create(ctx: CommandContext, [tenant]: string[], options: Options): Promise<void> {
  const tenantId = tenantArg(tenant);
  const typeText = options.type as string | undefined;
  const type = typeText === undefined ? BackupType.UNSPECIFIED : (TYPES[typeText] ?? BackupType.UNSPECIFIED);
  const res = await ctx.client.createBackup({ tenantId, type, idempotencyKey: (options.idempotencyKey as string | undefined) ?? '' }, ctx.call());
  let view = answered(res.backup);
  if (!ctx.structured) ctx.print(`${view.type.toLowerCase()} backup ${view.id} of tenant ${tenantId} started${view.hostId ? ` on ${view.hostId}` : ''}\n`);
  if (options.wait === true) view = await waitForBackup(ctx, tenantId, view.id, options.timeout as number);
  const now = ctx.io.now();
  if (ctx.structured) emit(ctx, view, () => '');
  else if (options.wait === true) ctx.print(`${backupSummary(view, now)}\n`);
  else ctx.print(`follow it: pgsctl backup get ${tenantId} ${view.id}  (or add --wait)\n`);
  if (view.status === 'FAILED') {
    throw new OperationFailedError(
      `backup ${view.id} of tenant ${tenantId} FAILED: ${view.reason || 'no reason given'}`,
      `see \`pgsctl events --tenant ${tenantId}\`; once the cause is fixed, take another: pgsctl backup create ${tenantId} --wait`,
    );
  }
}

async function list(ctx: CommandContext, [tenant]: string[], options: Options): Promise<void> {
  const tenantId = tenantArg(tenant);
  const res = await ctx.client.listBackups({ tenantId, all: options.all === true }, ctx.call());
  const view: BackupListView = { window: recoveryWindowView(res.window), backups: res.backups.map(backupView) };
  const empty =
    options.all === true ? `No backups of tenant ${tenantId}.` : `No restorable or running backups of tenant ${tenantId} (--all adds failed and expired ones).`;
  ctx.print(
    formatResult(
      ctx,
      view,
      () => `${windowLine(view.window, tenantId)}\n\n${renderTable(backupColumns(ctx.io.now()), view.backups, { wide: ctx.output === 'wide', empty })}`,
    ),
  );
}

async function get(ctx: CommandContext, [tenant, id]: string[]): Promise<void> {
  const tenantId = tenantArg(tenant);
  const backupId = backupIdArg(id, tenantId, 'backup id');
  const view = answered((await ctx.client.getBackup({ tenantId, backupId }, ctx.call())).backup);
  emit(ctx, view, () => renderBackup(view, ctx.io.now()));
}

async function remove(ctx: CommandContext, [tenant, id]: string[], options: Options): Promise<void> {
  const tenantId = tenantArg(tenant);
  const backupId = backupIdArg(id, tenantId, 'backup id');
  const question = `Delete backup ${backupId} of tenant ${tenantId} from the repository? Restores that need it will no longer be possible.`;
  if (options.yes !== true && !(await confirm(ctx.io, question, '--yes'))) {
    ctx.note('not deleted');
    return;
  }
  const force = options.force === true;
  let res;
  try {
    res = await ctx.client.deleteBackup({ tenantId, backupId, force }, ctx.call());
  } catch (err) {
    // The coordinator refuses a delete that would shrink the recovery window below the retention policy.
    if (err instanceof RpcError && err.code === Code.FAILED_PRECONDITION && !force) {
      throw new CliError(ExitCode.CONFLICT, err.message, {
        hint: `add --force to delete it anyway (see what stays restorable with \`pgsctl backup list ${tenantId}\`)`,
        cause: err,
      });
    }
    throw err;
  }
  const view = res.backup === undefined ? null : backupView(res.backup);
  emit(ctx, view, () => `backup ${backupId} of tenant ${tenantId} deleted${view ? ` (status ${view.status})` : ''}\n`);
}

/** Adds `backup` and its subcommands. */
export function registerBackup(program: Command, session: Session): void {
  const backup = program.command('backup').alias('backups').description("a tenant's backups (pgBackRest, with WAL archiving for point-in-time restores)");
  examples(
    backup
      .command('create')
      .argument('<tenant>')
      .description('take a backup of a tenant now (from its primary)')
      .addOption(
        new Option(
          '--type <type>',
          'full, diff (changes since the last full) or incr (since the last backup); default: full when there is no full backup yet, else diff',
        ).choices(Object.keys(TYPES)),
      )
      .option('--wait', 'wait until the backup SUCCEEDED or FAILED, showing progress (exit 8 when it failed)')
      .addOption(
        new Option('--timeout <duration>', 'how long --wait waits, e.g. 30m, 2h').argParser(durationArg).default(durationArg(DEFAULT_WAIT), DEFAULT_WAIT),
      )
      .option('--idempotency-key <key>', 'retries with the same key return the first result')
      .action(session.action(create)),
    ['pgsctl backup create acme --wait', 'pgsctl backup create acme --type full --wait -o json'],
  );
  examples(
    backup
      .command('list')
      .alias('ls')
      .argument('<tenant>')
      .description("list a tenant's backups, newest first, and the times it can be restored to")
      .option('--all', 'include failed and expired backups')
      .action(session.action(list)),
    ['pgsctl backup list acme', 'pgsctl backup list acme --all -o wide', 'pgsctl backup list acme -o json | jq .window'],
  );
  examples(
    backup
      .command('get')
      .alias('describe')
      .argument('<tenant>')
      .argument('<backup-id>')
      .description('show one backup: status and reason, times, sizes, WAL range, label')
      .action(session.action(get)),
    ['pgsctl backup get acme b-20261206-101500-acme-3'],
  );
  examples(
    backup
      .command('delete')
      .alias('rm')
      .argument('<tenant>')
      .argument('<backup-id>')
      .description('delete a backup from the repository (asks for confirmation)')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--force', 'delete even when the recovery window would shrink below the retention policy')
      .action(session.action(remove)),
    ['pgsctl backup delete acme b-20261206-101500-acme-3', 'pgsctl backup delete acme b-20261206-101500-acme-3 --yes --force'],
  );
}
