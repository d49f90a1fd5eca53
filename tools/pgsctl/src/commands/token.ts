/** `pgsctl token create|list|revoke` and `pgsctl admin rotate-key` (fleet-admin only). */
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { UsageError } from '../errors.js';
import { renderFields, renderTable } from '../output.js';
import { durationArg } from '../parse.js';
import { examples, type Options, type Session } from '../session.js';

const KINDS = ['host', 'router', 'operator'] as const;
const ROLES = ['fleet-admin', 'operator', 'reader', 'tenant-writer', 'tenant-reader'] as const;

/** A token's lifetime in whole seconds (the API's unit); 0 = the coordinator's default. */
function ttlSeconds(ms: number | undefined): number {
  if (ms === undefined) return 0;
  if (ms < 1000) throw new UsageError('--ttl must be at least 1s');
  return Math.round(ms / 1000);
}

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

async function create(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const kind = options.kind as (typeof KINDS)[number];
  const ttl = ttlSeconds(options.ttl as number | undefined);
  if (kind === 'operator') {
    const name = options.name as string | undefined;
    const role = options.role as string | undefined;
    if (!name) throw new UsageError('an operator token needs --name');
    if (!role) throw new UsageError(`an operator token needs --role (${ROLES.join(', ')})`);
    const tenantIds = (options.tenant as string[] | undefined) ?? [];
    const res = await ctx.client.createOperatorToken({ name, role, tenantIds, ttlSeconds: ttl }, ctx.call());
    emit(ctx, { kind, name, role, tenantIds, token: res.token }, () => `${res.token}\n`);
    if (!ctx.structured) ctx.note(`operator token "${name}" (${role}${tenantIds.length ? ` for ${tenantIds.join(', ')}` : ''}) created; it is shown only now`);
    return;
  }
  if (options.role !== undefined || options.tenant !== undefined) throw new UsageError('--role and --tenant are for --kind operator');
  const componentId = (options.id as string | undefined) ?? '';
  const res = await ctx.client.createJoinToken({ kind, componentId, ttlSeconds: ttl }, ctx.call());
  emit(ctx, { kind, id: componentId, token: res.token, expiresAt: res.expiresAt }, () => `${res.token}\n`);
  if (!ctx.structured) {
    ctx.note(
      `join token for ${kind}${componentId ? ` "${componentId}"` : ' (any id)'}, single use, expires ${res.expiresAt}; pass it as PGS_JOIN_TOKEN at the ${kind}'s first start`,
    );
  }
}

async function list(ctx: CommandContext): Promise<void> {
  const res = await ctx.client.listOperatorTokens({}, ctx.call());
  const rows = res.tokens.map((t) => ({ name: t.name, role: t.role, tenants: [...t.tenantIds], expiresAt: t.expiresAt }));
  emit(ctx, rows, () =>
    renderTable(
      [
        { header: 'NAME', value: (r: (typeof rows)[number]) => r.name },
        { header: 'ROLE', value: (r) => r.role },
        { header: 'TENANTS', value: (r) => (r.tenants.length ? r.tenants.join(',') : '*') },
        { header: 'EXPIRES', value: (r) => r.expiresAt },
      ],
      rows,
      { empty: 'No operator tokens.' },
    ),
  );
}

async function revoke(ctx: CommandContext, [name]: string[]): Promise<void> {
  await ctx.client.revokeOperatorToken({ name: name ?? '' }, ctx.call());
  emit(ctx, { name, revoked: true }, () => `operator token "${name}" revoked: it is refused from now on\n`);
}

async function rotateKey(ctx: CommandContext): Promise<void> {
  const res = await ctx.client.rotateEncryptionKey({}, ctx.call());
  emit(
    ctx,
    { keyId: res.keyId, secretsReencrypted: res.secretsReencrypted },
    () =>
      renderFields([
        ['Active key', res.keyId],
        ['Secrets re-sealed', String(res.secretsReencrypted)],
      ]) + 'Every stored secret is now sealed under the active key; older keys can be removed from the key source.\n',
  );
}

/** Adds `token create|list|revoke`. */
export function registerToken(program: Command, session: Session): void {
  const token = program.command('token').description('join tokens for hosts and routers, operator tokens (fleet-admin only)');
  examples(
    token
      .command('create')
      .description('create a token and print it once: a single-use join token (host, router) or an operator bearer token')
      .addOption(new Option('--kind <kind>', 'who the token is for').choices([...KINDS]).makeOptionMandatory())
      .option('--id <id>', 'join tokens: the host id or router id that may join with it (default: any)')
      .option('--name <name>', "operator tokens: the operator's name (revoke by it)")
      .addOption(new Option('--role <role>', 'operator tokens: the role').choices([...ROLES]))
      .option('--tenant <id>', 'tenant-writer / tenant-reader: a tenant it may touch (repeat or comma-separate)', collect)
      .option('--ttl <duration>', 'lifetime (join: default 1h, at most 24h; operator: default 90 days)', durationArg)
      .action(session.action(create)),
    [
      'pgsctl token create --kind host --id h4 --ttl 1h',
      'pgsctl token create --kind router --ttl 30m',
      'pgsctl token create --kind operator --name ci --role tenant-writer --tenant acme --ttl 720h',
    ],
  );
  examples(token.command('list').description('list live operator tokens (names, roles, tenants, expiry; never the tokens)').action(session.action(list)), [
    'pgsctl token list -o json',
  ]);
  examples(token.command('revoke').argument('<name>', 'operator token name').description('revoke an operator token at once').action(session.action(revoke)), [
    'pgsctl token revoke ci',
  ]);
}

/** Adds `admin rotate-key`. */
export function registerAdmin(program: Command, session: Session): void {
  const admin = program.command('admin').description('fleet administration (fleet-admin only)');
  examples(
    admin
      .command('rotate-key')
      .description("re-seal every stored secret under the coordinator's active key (after putting a new key first in PGS_SECRET_KEYS or the key file)")
      .action(session.action(rotateKey)),
    ['PGS_SECRET_KEYS=k2:<new>,k1:<old> (restart the coordinator), then: pgsctl admin rotate-key'],
  );
}
