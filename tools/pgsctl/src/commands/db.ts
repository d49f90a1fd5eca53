/** `pgsctl db ...`: databases inside a tenant. */
import type { Command } from 'commander';
import { validateDatabaseName, validateTenantId, validateUserName } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { renderTable } from '../output.js';
import { confirm } from '../prompt.js';
import { examples, type Options, type Session } from '../session.js';
import { databaseColumns } from '../tables.js';
import { databaseView } from '../views.js';

async function create(ctx: CommandContext, [tenant, name]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const dbName = validateDatabaseName(name ?? '');
  // The tenant's owner user is named like the tenant, so it is the natural default owner.
  const owner = validateUserName((options.owner as string | undefined) ?? tenantId, 'owner');
  const res = await ctx.client.createDatabase(
    {
      tenantId,
      name: dbName,
      owner,
      description: (options.description as string | undefined) ?? '',
      idempotencyKey: (options.idempotencyKey as string | undefined) ?? '',
    },
    ctx.call(),
  );
  const view = res.database === undefined ? null : databaseView(res.database);
  emit(ctx, view, () => `database ${dbName} created in tenant ${tenantId}, owned by ${owner} (status ${view?.status ?? 'NEW'})\n`);
}

async function list(ctx: CommandContext, [tenant]: string[]): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const res = await ctx.client.listDatabases({ tenantId }, ctx.call());
  const dbs = res.databases.map(databaseView);
  emit(ctx, dbs, () => renderTable(databaseColumns(ctx.io.now()), dbs, { wide: ctx.output === 'wide', empty: `No databases in tenant ${tenantId}.` }));
}

async function remove(ctx: CommandContext, [tenant, name]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const dbName = validateDatabaseName(name ?? '');
  if (options.yes !== true && !(await confirm(ctx.io, `Drop database ${dbName} of tenant ${tenantId} and all its data?`, '--yes'))) {
    ctx.note('not deleted');
    return;
  }
  await ctx.client.deleteDatabase({ tenantId, name: dbName }, ctx.call());
  emit(ctx, { tenantId, name: dbName, deleted: true }, () => `database ${dbName} dropped from tenant ${tenantId}\n`);
}

/** Adds `db` and its subcommands. */
export function registerDb(program: Command, session: Session): void {
  const db = program.command('db').alias('database').description('databases inside a tenant');
  examples(
    db
      .command('create')
      .argument('<tenant>')
      .argument('<name>')
      .description('create a database in a tenant')
      .option('--owner <user>', "an existing user of the tenant (default: the tenant's owner user)")
      .option('--description <text>', 'a description')
      .option('--idempotency-key <key>', 'retries with the same key return the first result')
      .action(session.action(create)),
    ['pgsctl db create acme reports', 'pgsctl db create acme analytics --owner app'],
  );
  examples(db.command('list').alias('ls').argument('<tenant>').description('list the databases of a tenant').action(session.action(list)), [
    'pgsctl db list acme -o json',
  ]);
  examples(
    db
      .command('delete')
      .alias('rm')
      .argument('<tenant>')
      .argument('<name>')
      .description('drop a database (asks for confirmation)')
      .option('-y, --yes', 'do not ask for confirmation')
      .action(session.action(remove)),
    ['pgsctl db delete acme reports --yes'],
  );
}
