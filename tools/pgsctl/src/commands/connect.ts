/** `pgsctl connect <tenant>`: the exact psql command and URI to reach a tenant through a router. */
import type { Command } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import { validateDatabaseName, validateTenantId, validateUserName } from '@pgs/tenancy';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { resolveRouter } from '../settings.js';
import { examples, type Options, type Session } from '../session.js';
import { tenantView } from '../views.js';

/** How to reach one tenant through one router. */
export interface ConnectInfo {
  tenant: string;
  status: string;
  externalAccess: boolean;
  router: string;
  user: string;
  database: string;
  /** Names the tenant through the user (user.tenant, or the owner named like the tenant). */
  uri: string;
  /** The same with the router's certificate verified, when a CA file is known. */
  uriVerifyFull: string | null;
  /** libpq keywords naming the tenant by TLS SNI (<tenant>.<domain>), when a SNI domain is known. */
  sniConninfo: string | null;
  psql: string;
}

function splitHostPort(address: string): { host: string; port: string } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: address.slice(i + 1) };
}

/** Builds the connection strings. The owner (named like the tenant) needs no suffix; other users get `user.tenant`. */
export function connectInfo(input: {
  tenant: string;
  status: string;
  externalAccess: boolean;
  router: string;
  user: string;
  database: string;
  caPath?: string;
  sniDomain?: string;
}): ConnectInfo {
  const { host, port } = splitHostPort(input.router);
  const routedUser = input.user === input.tenant ? input.user : `${input.user}.${input.tenant}`;
  const base = `postgresql://${encodeURIComponent(routedUser)}@${input.router}/${encodeURIComponent(input.database)}`;
  const uri = `${base}?sslmode=require`;
  const uriVerifyFull = input.caPath ? `${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(input.caPath).replaceAll('%2F', '/')}` : null;
  // hostaddr lets psql send the SNI name without needing DNS for *.<domain>.
  const sniConninfo = input.sniDomain
    ? `host=${input.tenant}.${input.sniDomain} hostaddr=${host} port=${port} user=${input.user} dbname=${input.database} ` +
      (input.caPath ? `sslmode=verify-full sslrootcert=${input.caPath}` : 'sslmode=require')
    : null;
  return { ...input, uri, uriVerifyFull, sniConninfo, psql: `psql "${uri}"` };
}

async function connect(ctx: CommandContext, [tenant]: string[], options: Options): Promise<void> {
  const id = validateTenantId(tenant ?? '');
  const user = validateUserName((options.user as string | undefined) ?? id, '--user');
  const database = validateDatabaseName((options.database as string | undefined) ?? id, '--database');
  const router = resolveRouter(options.router as string | undefined, ctx.io);
  const res = await ctx.client.getTenant({ id }, ctx.call());
  if (res.tenant === undefined) throw new RpcError(Code.NOT_FOUND, `tenant ${id} not found`);
  const view = tenantView(res.tenant);
  const info = connectInfo({
    tenant: id,
    status: view.status,
    externalAccess: view.spec.externalAccess,
    router: router.address,
    user,
    database,
    caPath: (options.ca as string | undefined) ?? router.fleet?.caPath,
    sniDomain: (options.sniDomain as string | undefined) ?? router.fleet?.sniDomain,
  });
  if (!view.spec.externalAccess) ctx.note(`warning: external access is disabled for ${id}; the router will refuse it until: pgsctl tenant access enable ${id}`);
  if (view.status !== 'ACTIVE')
    ctx.note(`warning: tenant ${id} is ${view.status}${view.statusReason ? ` (${view.statusReason})` : ''}; the router accepts connections once it is ACTIVE`);
  if (options.uri === true && !ctx.structured) {
    ctx.print(`${info.uri}\n`);
    return;
  }
  emit(ctx, info, () =>
    [
      `# tenant ${id} through the router at ${info.router} (${router.source}); psql asks for ${user}'s password`,
      info.psql,
      ...(info.uriVerifyFull ? ['# verifying the router certificate against the fleet CA:', `psql "${info.uriVerifyFull}"`] : []),
      ...(info.sniConninfo ? ['# naming the tenant by TLS SNI instead of the user name:', `psql "${info.sniConninfo}"`] : []),
      ...(user === id ? [`# other users of the tenant connect as <user>.${id}, e.g. postgresql://app.${id}@${info.router}/${database}`] : []),
      '',
    ].join('\n'),
  );
}

/** Adds `connect`. */
export function registerConnect(program: Command, session: Session): void {
  examples(
    program
      .command('connect')
      .argument('<tenant>')
      .description('print a ready psql command and connection URI for a tenant through the router edge')
      .option('--user <name>', 'the tenant user to connect as (default: the owner, named like the tenant)')
      .option('--database <name>', 'the database (default: the one named like the tenant)')
      .option('--router <host:port>', 'the router to connect through (default: PGS_ROUTER, config file, local fleet, 127.0.0.1:5432)')
      .option('--ca <file>', "root certificate to verify the router with (default: the local fleet's CA)")
      .option('--sni-domain <domain>', "the routers' SNI domain, to also print the <tenant>.<domain> form")
      .option('--uri', 'print only the URI (for scripts: psql "$(pgsctl connect acme --uri)")')
      .action(session.action(connect)),
    ['pgsctl connect acme', 'pgsctl connect acme --user app --database reports', 'psql "$(pgsctl connect acme --uri)"'],
  );
}
