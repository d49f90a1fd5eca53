/**
 * Tenant init scripts from the command line: `tenant create --init-sql <file>` (repeatable, run in
 * order) reads them here, and `tenant init-sql run|retry <id>` releases HELD scripts or retries
 * FAILED ones from the script that failed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import { validateTenantId } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { OperationFailedError, UsageError } from '../errors.js';
import { durationArg } from '../parse.js';
import { examples, type Options, type Session } from '../session.js';
import { initSqlText } from '../tenant-details.js';
import { tenantView, type TenantView } from '../views.js';
import { waitForTenant } from '../wait.js';

/** The files of `--init-sql`, read relative to the working directory, named as given. */
export function readInitSqlFiles(cwd: string, files: readonly string[]): { name: string; sql: string; database: string }[] {
  return files.map((file) => {
    let sql: string;
    try {
      sql = fs.readFileSync(path.resolve(cwd, file), 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --init-sql ${file}: ${(err as Error).message}`);
    }
    if (sql.trim() === '') throw new UsageError(`--init-sql ${file} is empty`);
    return { name: file, sql, database: '' };
  });
}

/** After a `--wait`: init scripts that FAILED end the command with exit 8 and what to do. */
export function failIfInitSqlFailed(view: TenantView | undefined): void {
  if (view?.initSql?.state !== 'FAILED') return;
  throw new OperationFailedError(
    `tenant ${view.id} is ACTIVE, but its init script ${view.initSql.failedScript} failed: ${view.initSql.error}`,
    `the ${view.initSql.applied} script(s) before it are committed; fix the cause inside the tenant, then: pgsctl tenant init-sql retry ${view.id}`,
  );
}

async function run(ctx: CommandContext, args: string[], options: Options): Promise<void> {
  const id = validateTenantId(args[0] ?? '', 'id');
  const res = await ctx.client.runInitSql({ tenantId: id }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.INTERNAL, 'the coordinator answered without the tenant');
  let view = tenantView(res.tenant);
  if (options.wait === true) view = (await waitForTenant(ctx, id, { statuses: [view.status], initSql: true }, options.timeout as number)) ?? view;
  emit(ctx, view, () => `tenant ${id}: init scripts ${initSqlText(view)}\n`);
  if (options.wait === true) failIfInitSqlFailed(view);
}

/** Adds `tenant init-sql run|retry`. */
export function registerInitSql(tenant: Command, session: Session): void {
  const group = tenant.command('init-sql').description("a tenant's init scripts (given at creation): release held ones, retry failed ones");
  for (const name of ['run', 'retry']) {
    examples(
      group
        .command(name)
        .argument('<id>')
        .description(
          name === 'run'
            ? 'release init scripts held at creation (apply holds them until its users and databases exist)'
            : 'run FAILED init scripts again, from the one that failed',
        )
        .option('--wait', 'wait until they SUCCEEDED or FAILED')
        .addOption(new Option('--timeout <duration>', 'how long --wait waits, e.g. 90s, 10m').argParser(durationArg).default(durationArg('5m'), '5m'))
        .action(session.action(run)),
      [`pgsctl tenant init-sql ${name} acme --wait`],
    );
  }
}
