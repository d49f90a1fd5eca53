/** `pgsctl tenant ...`: create, list, get, update, delete, start, stop, suspend, resume, access enable|disable, switchover, move, restore, recreate. */
import { Command, Option } from 'commander';
import { TenantStatus } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { DEFAULT_TENANT_SPEC, validateHostId, validatePassword, validateTenantId, formatCpu, formatSize } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit, formatResult } from '../emit.js';
import { UsageError } from '../errors.js';
import { renderTable } from '../output.js';
import { durationArg } from '../parse.js';
import { applyBackupFlags, policyDropped, type BackupFlags } from '../backup-policy.js';
import { confirm, readSecretFromStdin } from '../prompt.js';
import { examples, type Options, type Session } from '../session.js';
import { tenantColumns } from '../tables.js';
import { renderTenantDetails, type TenantDetails } from '../tenant-details.js';
import { applyPairs, collect, specForCreate, specForUpdate, specFromView, specToProto, type SpecFlags } from '../tenant-spec.js';
import {
  backupOverviewView,
  databaseView,
  enumNames,
  enumValue,
  eventView,
  routeView,
  tenantView,
  userView,
  type BackupPolicyView,
  type TenantView,
} from '../views.js';
import { waitForTenant } from '../wait.js';
import { failIfInitSqlFailed, readInitSqlFiles, registerInitSql } from './init-sql.js';
import { registerRestore } from './restore.js';
import { registerMove } from './move.js';
import { registerUpgrade } from './upgrade.js';
import { registerSwitchover } from './switchover.js';
import { watchLoop } from '../watch.js';

const DEFAULT_WAIT = '5m';

function specOptions(command: Command, forCreate: boolean): Command {
  const d = DEFAULT_TENANT_SPEC;
  const dflt = (text: string): string => (forCreate ? ` (default: ${text})` : '');
  return (
    command
      .option('--cpu <cores>', `CPU cores: 2, 1.5 or 1500m${dflt(formatCpu(d.resources.cpuMillis))}`)
      .option('--memory <size>', `memory: 512Mi, 2Gi, ...${dflt(formatSize(d.resources.memoryMib))}`)
      .option('--disk <size>', `disk: 8Gi, 100Gi, ...; never shrinks${dflt(formatSize(d.resources.diskMib))}`)
      .option('--replicas <n>', `standby replicas besides the primary (nodes = replicas + 1)${dflt(String(d.nodes - 1))}`)
      .option('--sync-replicas <n>', `how many of the replicas are synchronous${dflt(String(d.syncReplicas))}`)
      .option('--version <id>', `PostgreSQL major version from the catalog (pgsctl version list), e.g. 18${dflt('the catalog default')}`)
      .option('--label <key=value>', 'a label (repeatable); key- removes one on update', collect)
      .option('--placement <key=value>', 'only hosts with this label (repeatable), e.g. zone=a', collect)
      .addOption(new Option('--access <state>', `external access through the routers${dflt('disabled')}`).choices(['enabled', 'disabled']))
      .option('--connection-limit <n>', 'max client connections through the routers, 0 = none')
      .option(
        '--idle-suspend <span|off>',
        `suspend the tenant (stop its server, keep its data) after this long without clients or work, e.g. 5m; it wakes on the next connection${dflt('off')}`,
      )
      .addOption(
        new Option(
          '--pool-mode <mode>',
          `how the routers pool server connections: session (reused after DISCARD ALL), transaction (shared between transactions) or none (a fresh connection, bytes piped)${dflt('session')}`,
        ).choices(['none', 'session', 'transaction']),
      )
      .option('--description <text>', 'a description (up to 1024 characters)')
      .option(
        '--backup-schedule <kind=interval,...>',
        `how often each backup kind runs, e.g. full=7d,diff=1d,incr=6h (s, m, h, d, w; kind=default for the fleet's)${dflt("the fleet's: full weekly, diff daily")}`,
      )
      .option('--backup-retention <span>', `how far back a restore must be possible, e.g. 14d${dflt("the fleet's, 7d")}`)
      .option('--archive-timeout <span>', `the longest a commit waits before its WAL is archived, e.g. 60s${dflt("the fleet's, 60s")}`)
      // --backups before --no-backups, so that neither flag given leaves the option unset (commander's rule).
      .option('--backups', 'backups and WAL archiving on again (after --no-backups)')
      .option('--no-backups', 'no scheduled backups and no WAL archiving (its data lives only in its instances)')
  );
}

function waitOptions(command: Command, what: string): Command {
  return command
    .option('--wait', `wait until the tenant is ${what}, showing progress`)
    .addOption(
      new Option('--timeout <duration>', 'how long --wait waits, e.g. 90s, 10m').argParser(durationArg).default(durationArg(DEFAULT_WAIT), DEFAULT_WAIT),
    );
}

function tenantId(text: string | undefined): string {
  if (text === undefined) throw new UsageError('missing tenant id');
  return validateTenantId(text);
}

async function readTenant(ctx: CommandContext, id: string): Promise<TenantView> {
  const res = await ctx.client.getTenant({ id }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.NOT_FOUND, `tenant ${id} not found`);
  return tenantView(res.tenant);
}

function printTenant(ctx: CommandContext, view: TenantView, line: string): void {
  emit(ctx, view, () => `${line}\n`);
}

// A coordinator older than this pgsctl drops the spec's backup field without an error: say so.
function warnIfPolicyDropped(ctx: CommandContext, sent: BackupPolicyView | null, view: TenantView): void {
  if (policyDropped(sent, view.spec.backup))
    ctx.note(
      `warning: the coordinator at ${ctx.coordinator.address} did not keep the backup policy (it is older than this pgsctl); tenant ${view.id} has the fleet defaults`,
    );
}

async function maybeWait(ctx: CommandContext, id: string, options: Options, statuses: readonly string[]): Promise<TenantView | undefined> {
  if (options.wait !== true) return undefined;
  return waitForTenant(ctx, id, { statuses }, options.timeout as number);
}

async function create(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const id = tenantId(args[0]);
  const spec = specForCreate(DEFAULT_TENANT_SPEC, options as SpecFlags);
  const backup = applyBackupFlags(null, options as BackupFlags);
  if (options.password !== undefined && options.passwordStdin === true) throw new UsageError('use either --password or --password-stdin, not both');
  const password = options.passwordStdin === true ? await readSecretFromStdin(ctx.io, '--password-stdin') : (options.password as string | undefined);
  if (password !== undefined) validatePassword(password, 'owner_password');
  const initSql = readInitSqlFiles(ctx.io.cwd, (options.initSql as string[] | undefined) ?? []);
  const res = await ctx.client.createTenant(
    { id, spec: specToProto(spec, backup), ownerPassword: password ?? '', idempotencyKey: (options.idempotencyKey as string | undefined) ?? '', initSql },
    ctx.call(),
  );
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  let view = tenantView(res.tenant);
  warnIfPolicyDropped(ctx, backup, view);
  const generated = res.generatedPassword;
  if (!ctx.structured) {
    ctx.print(`tenant ${id} created (status ${view.status}, revision ${view.revision})\n`);
    if (generated) ctx.print(`owner password for user ${id} (shown once, store it now): ${generated}\n`);
  }
  // With init scripts, --wait also waits for them (a tenant is ready for its users once they ran).
  if (options.wait === true) view = (await waitForTenant(ctx, id, { statuses: ['ACTIVE'], initSql: initSql.length > 0 }, options.timeout as number)) ?? view;
  if (ctx.structured) emit(ctx, { tenant: view, generatedPassword: generated || undefined }, () => '');
  else if (options.wait === true)
    ctx.print(`connect: pgsctl connect ${id}${view.spec.externalAccess ? '' : `  (enable external access first: pgsctl tenant access enable ${id})`}\n`);
  if (options.wait === true) failIfInitSqlFailed(view);
}

async function list(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const statusText = options.status as string | undefined;
  const status = statusText === undefined ? TenantStatus.UNSPECIFIED : enumValue(TenantStatus, statusText);
  if (status === undefined) throw new UsageError(`invalid --status ${JSON.stringify(statusText)}: use one of ${enumNames(TenantStatus).join(', ')}`);
  const hostId = options.host === undefined ? '' : validateHostId(options.host as string, '--host');
  const labels = applyPairs({}, options.label as string[] | undefined, '--label');
  const render = async (): Promise<string> => {
    const tenants: TenantView[] = [];
    let pageToken = '';
    // Follow pages so `list` shows everything, like kubectl does.
    do {
      const res = await ctx.client.listTenants({ status, hostId, labels, page: { pageSize: 1000, pageToken } }, ctx.call());
      tenants.push(...res.tenants.map(tenantView));
      pageToken = res.page?.nextPageToken ?? '';
    } while (pageToken !== '');
    return formatResult(ctx, tenants, () => renderTable(tenantColumns(ctx.io.now()), tenants, { wide: ctx.output === 'wide', empty: 'No tenants found.' }));
  };
  if (options.watch === true) await watchLoop(ctx, render);
  else ctx.print(await render());
}

async function get(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const id = tenantId(args[0]);
  const render = async (): Promise<string> => {
    const res = await ctx.client.getTenant({ id }, ctx.call());
    if (res.tenant === undefined) throw new RpcError(Code.NOT_FOUND, `tenant ${id} not found`);
    const details: TenantDetails = {
      tenant: tenantView(res.tenant),
      route: res.route === undefined ? null : routeView(res.route),
      users: res.users.map(userView),
      databases: res.databases.map(databaseView),
      recentEvents: res.recentEvents.map(eventView),
      backup: res.backup === undefined ? null : backupOverviewView(res.backup),
    };
    return formatResult(ctx, details, () => renderTenantDetails(details, ctx.io.now(), ctx.output === 'wide'));
  };
  if (options.watch === true) await watchLoop(ctx, render);
  else ctx.print(await render());
}

async function update(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const id = tenantId(args[0]);
  const current = await readTenant(ctx, id);
  const spec = specForUpdate(specFromView(current.spec), options as SpecFlags);
  // The spec is sent whole: the policy read is sent back with only the flags given changed.
  const backup = applyBackupFlags(current.spec.backup, options as BackupFlags);
  const revision = options.revision === undefined ? current.revision : Number(options.revision);
  const res = await ctx.client.updateTenant({ id, revision: BigInt(revision), spec: specToProto(spec, backup) }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  let view = tenantView(res.tenant);
  warnIfPolicyDropped(ctx, backup, view);
  view = (await maybeWait(ctx, id, options, ['ACTIVE', 'STOPPED'])) ?? view;
  printTenant(ctx, view, `tenant ${id} updated (revision ${view.revision}, status ${view.status})`);
}

async function remove(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const id = tenantId(args[0]);
  if (options.yes !== true && !(await confirm(ctx.io, `Delete tenant ${id} and ALL its data?`, '--yes'))) {
    ctx.note('not deleted');
    return;
  }
  const res = await ctx.client.deleteTenant({ id, revision: BigInt((options.revision as string | undefined) ?? 0) }, ctx.call());
  const view = res.tenant === undefined ? null : tenantView(res.tenant);
  if (options.wait === true) await waitForTenant(ctx, id, { gone: true }, options.timeout as number);
  emit(ctx, view, () => `tenant ${id} ${options.wait === true ? 'deleted' : `is being deleted (status ${view?.status ?? 'DELETING'})`}\n`);
}

async function runState(ctx: CommandContext, args: string[], options: Options, start: boolean): Promise<void> {
  const id = tenantId(args[0]);
  const res = start ? await ctx.client.startTenant({ id }, ctx.call()) : await ctx.client.stopTenant({ id }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const view = (await maybeWait(ctx, id, options, [start ? 'ACTIVE' : 'STOPPED'])) ?? tenantView(res.tenant);
  printTenant(ctx, view, `tenant ${id} ${start ? 'starting' : 'stopping'} (status ${view.status})`);
}

async function suspendOrResume(ctx: CommandContext, args: string[], options: Options, suspend: boolean): Promise<void> {
  const id = tenantId(args[0]);
  const res = suspend ? await ctx.client.suspendTenant({ id }, ctx.call()) : await ctx.client.resumeTenant({ id }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  const view = (await maybeWait(ctx, id, options, [suspend ? 'SUSPENDED' : 'ACTIVE'])) ?? tenantView(res.tenant);
  printTenant(ctx, view, `tenant ${id} ${suspend ? 'suspended' : view.status === 'ACTIVE' ? 'awake' : 'waking up'} (status ${view.status})`);
}

async function access(ctx: CommandContext, args: string[], enable: boolean): Promise<void> {
  const id = tenantId(args[0]);
  const res = await ctx.client.setTenantAccess({ id, externalAccess: enable }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  printTenant(ctx, tenantView(res.tenant), `external access for tenant ${id} ${enable ? 'enabled: connect with `pgsctl connect ' + id + '`' : 'disabled'}`);
}

/** Adds `tenant` and its subcommands. */
export function registerTenant(program: Command, session: Session): void {
  const tenant = program.command('tenant').alias('tenants').description('create, inspect and change tenants (one PostgreSQL server each)');

  const createCmd = waitOptions(
    specOptions(tenant.command('create').argument('<id>', 'tenant id: lowercase letters, digits and -, starting with a letter'), true),
    'ACTIVE',
  )
    .description('create a tenant: a PostgreSQL server with an owner user and a database named like the tenant')
    .option('--password <password>', "the owner's password (8..99 characters); default: generated and printed once")
    .option('--password-stdin', "read the owner's password from stdin")
    .option('--idempotency-key <key>', 'retries with the same key return the first result')
    .option('--init-sql <file>', 'a SQL file run once as the owner when the tenant first runs, in one transaction (repeatable: in order)', collect)
    .action(session.action(create));
  examples(createCmd, [
    'pgsctl tenant create acme --wait',
    'pgsctl tenant create acme --cpu 2 --memory 4Gi --disk 50Gi --access enabled --label env=prod',
    'pgsctl tenant create acme --backup-schedule full=7d,diff=1d,incr=6h --backup-retention 14d --archive-timeout 60s',
    'printf \'%s\' "$PW" | pgsctl tenant create acme --password-stdin --access enabled --wait',
    'pgsctl tenant create acme --init-sql schema.sql --init-sql seed.sql --wait',
  ]);

  examples(
    tenant
      .command('list')
      .alias('ls')
      .description('list tenants')
      .option('--status <status>', `only tenants in this status (${enumNames(TenantStatus).join(', ')})`)
      .option('--host <id>', 'only tenants with a placement on this host')
      .option('--label <key=value>', 'only tenants with this label (repeatable)', collect)
      .option('-w, --watch', 'keep watching and redraw on change')
      .action(session.action(list)),
    ['pgsctl tenant list', 'pgsctl tenant list --status ERROR', 'pgsctl tenant list --host h1 -o json', 'pgsctl tenant list --label env=prod -o wide'],
  );

  examples(
    tenant
      .command('get')
      .alias('describe')
      .argument('<id>')
      .description('show a tenant: spec, status with reason, placements, route, users, databases, backups, recent events')
      .option('-w, --watch', 'keep watching and redraw on change')
      .action(session.action(get)),
    ['pgsctl tenant get acme', 'pgsctl tenant get acme -o yaml', 'pgsctl tenant get acme --watch'],
  );

  examples(
    waitOptions(specOptions(tenant.command('update').argument('<id>'), false), 'ACTIVE again')
      .description("change a tenant's spec (only the flags given change)")
      .option('--revision <n>', 'fail unless the tenant is still at this revision (default: the one just read)')
      .action(session.action(update)),
    [
      'pgsctl tenant update acme --memory 2Gi --wait',
      'pgsctl tenant update acme --label tier=gold --label old-',
      'pgsctl tenant update acme --disk 20Gi --revision 4',
      'pgsctl tenant update acme --backup-schedule incr=6h --backup-retention 14d',
    ],
  );

  examples(
    waitOptions(tenant.command('delete').alias('rm').argument('<id>'), 'gone')
      .description('delete a tenant and all its data (asks for confirmation)')
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--revision <n>', 'only delete when the tenant is at this revision')
      .action(session.action(remove)),
    ['pgsctl tenant delete acme', 'pgsctl tenant delete acme --yes --wait'],
  );

  examples(
    waitOptions(tenant.command('start').argument('<id>'), 'ACTIVE')
      .description('start a stopped tenant')
      .action(session.action((ctx, args, options) => runState(ctx, args, options, true))),
    ['pgsctl tenant start acme --wait'],
  );
  examples(
    waitOptions(tenant.command('stop').argument('<id>'), 'STOPPED')
      .description('stop a tenant; its data is kept')
      .action(session.action((ctx, args, options) => runState(ctx, args, options, false))),
    ['pgsctl tenant stop acme --wait'],
  );

  examples(
    waitOptions(tenant.command('suspend').argument('<id>'), 'SUSPENDED')
      .description("scale to zero: stop the tenant's server with a checkpoint, keep its data, free its CPU and memory; the next client connection wakes it")
      .action(session.action((ctx, args, options) => suspendOrResume(ctx, args, options, true))),
    ['pgsctl tenant suspend acme --wait', 'pgsctl tenant update acme --idle-suspend 5m   # suspend by itself after 5 idle minutes'],
  );
  examples(
    waitOptions(tenant.command('resume').argument('<id>'), 'ACTIVE')
      .description('wake a suspended tenant now (refused with the reason when its host has no room left for it)')
      .action(session.action((ctx, args, options) => suspendOrResume(ctx, args, options, false))),
    ['pgsctl tenant resume acme --wait'],
  );

  registerSwitchover(tenant, session);
  registerInitSql(tenant, session);
  registerMove(tenant, session);
  registerUpgrade(tenant, session);
  registerRestore(tenant, session);

  const accessCmd = tenant.command('access').description('switch external access through the routers on or off');
  examples(
    accessCmd
      .command('enable')
      .argument('<id>')
      .description('let clients connect through the routers')
      .action(session.action((ctx, args) => access(ctx, args, true))),
    ['pgsctl tenant access enable acme'],
  );
  examples(
    accessCmd
      .command('disable')
      .argument('<id>')
      .description('refuse new client connections through the routers')
      .action(session.action((ctx, args) => access(ctx, args, false))),
    ['pgsctl tenant access disable acme'],
  );
}
