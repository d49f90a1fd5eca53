/** `pgsctl user ...`: PostgreSQL roles inside a tenant. */
import type { Command } from 'commander';
import { validatePassword, validateTenantId, validateUserName } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { UsageError } from '../errors.js';
import { renderTable } from '../output.js';
import { confirm, readSecretFromStdin } from '../prompt.js';
import { examples, type Options, type Session } from '../session.js';
import { userColumns } from '../tables.js';
import { userView } from '../views.js';

async function password(ctx: CommandContext, options: Options): Promise<string> {
  if (options.password !== undefined && options.passwordStdin === true) throw new UsageError('use either --password or --password-stdin, not both');
  const text = options.passwordStdin === true ? await readSecretFromStdin(ctx.io, '--password-stdin') : (options.password as string | undefined);
  if (text === undefined) throw new UsageError('a password is required', { hint: 'pass --password <pw> or pipe it with --password-stdin' });
  return validatePassword(text);
}

async function create(ctx: CommandContext, [tenant, name]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const userName = validateUserName(name ?? '');
  const pw = await password(ctx, options);
  const res = await ctx.client.createUser(
    {
      tenantId,
      name: userName,
      password: pw,
      description: (options.description as string | undefined) ?? '',
      idempotencyKey: (options.idempotencyKey as string | undefined) ?? '',
    },
    ctx.call(),
  );
  const view = res.user === undefined ? null : userView(res.user);
  emit(
    ctx,
    view,
    () => `user ${userName} created in tenant ${tenantId} (status ${view?.status ?? 'NEW'}); connect as ${userName}.${tenantId} through a router\n`,
  );
}

async function list(ctx: CommandContext, [tenant]: string[]): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const res = await ctx.client.listUsers({ tenantId }, ctx.call());
  const users = res.users.map(userView);
  emit(ctx, users, () => renderTable(userColumns(ctx.io.now()), users, { wide: ctx.output === 'wide', empty: `No users in tenant ${tenantId}.` }));
}

async function setPassword(ctx: CommandContext, [tenant, name]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const userName = validateUserName(name ?? '');
  const res = await ctx.client.updateUserPassword({ tenantId, name: userName, password: await password(ctx, options) }, ctx.call());
  emit(ctx, res.user === undefined ? null : userView(res.user), () => `password of user ${userName} in tenant ${tenantId} changed\n`);
}

async function remove(ctx: CommandContext, [tenant, name]: string[], options: Options): Promise<void> {
  const tenantId = validateTenantId(tenant ?? '', 'tenant_id');
  const userName = validateUserName(name ?? '');
  if (options.yes !== true && !(await confirm(ctx.io, `Delete user ${userName} of tenant ${tenantId}?`, '--yes'))) {
    ctx.note('not deleted');
    return;
  }
  await ctx.client.deleteUser({ tenantId, name: userName }, ctx.call());
  emit(ctx, { tenantId, name: userName, deleted: true }, () => `user ${userName} deleted from tenant ${tenantId}\n`);
}

/** Adds `user` and its subcommands. */
export function registerUser(program: Command, session: Session): void {
  const user = program.command('user').alias('users').description('PostgreSQL users (roles) inside a tenant');
  examples(
    user
      .command('create')
      .argument('<tenant>')
      .argument('<name>')
      .description('create a login user in a tenant')
      .option('--password <password>', 'its password (8..99 characters)')
      .option('--password-stdin', 'read the password from stdin')
      .option('--description <text>', 'a description')
      .option('--idempotency-key <key>', 'retries with the same key return the first result')
      .action(session.action(create)),
    ['pgsctl user create acme app --password-stdin < pw.txt', 'pgsctl user create acme reporting --password "s3cret-pass"'],
  );
  examples(user.command('list').alias('ls').argument('<tenant>').description('list the users of a tenant').action(session.action(list)), [
    'pgsctl user list acme',
  ]);
  examples(
    user
      .command('set-password')
      .argument('<tenant>')
      .argument('<name>')
      .description("change a user's password")
      .option('--password <password>', 'the new password')
      .option('--password-stdin', 'read the new password from stdin')
      .action(session.action(setPassword)),
    ['pgsctl user set-password acme app --password-stdin < pw.txt'],
  );
  examples(
    user
      .command('delete')
      .alias('rm')
      .argument('<tenant>')
      .argument('<name>')
      .description('drop a user from a tenant (asks for confirmation)')
      .option('-y, --yes', 'do not ask for confirmation')
      .action(session.action(remove)),
    ['pgsctl user delete acme app --yes'],
  );
}
