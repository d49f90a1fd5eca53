/**
 * Declarative tenants: `pgsctl apply|diff|delete -f <file|dir|->` and `pgsctl manifest schema`.
 * Reads the tenants the manifests name, plans with manifest/plan.ts (pure), shows the plan, and
 * applies it: a tenant update carries the revision it was planned from, so a concurrent change is
 * either re-planned (when it touched other fields) or refused naming the field and its value.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { Code, RpcError } from '@pgs/rpc';
import type { CommandContext } from '../context.js';
import { emit } from '../emit.js';
import { policyDropped } from '../backup-policy.js';
import { CliError, ExitCode, QuietExit, UsageError } from '../errors.js';
import type { TenantManifest } from '../manifest/model.js';
import { conflictingFields, planChanges, planTenant, tenantsToPrune, type CurrentTenant, type TenantPlan } from '../manifest/plan.js';
import { planDocument, renderPlans } from '../manifest/render.js';
import { loadManifests, readInitScripts, readPassword } from '../manifest/sources.js';
import { durationArg } from '../parse.js';
import { confirm } from '../prompt.js';
import { examples, type Options, type Session } from '../session.js';
import { applyPairs, collect, specToProto } from '../tenant-spec.js';
import { databaseView, tenantView, userView, type TenantView } from '../views.js';
import { waitForTenant } from '../wait.js';

const SCHEMA_FILE = new URL('../../manifest.schema.json', import.meta.url);
const DEFAULT_WAIT = '5m';
/** Re-plans after a stale revision when the concurrent change touched only other fields. */
const MAX_REPLANS = 3;

const EXAMPLE = `apiVersion: pgs.dev/v1
kind: Tenant
metadata:
  name: acme
spec:
  resources: { cpu: 1, memory: 2Gi, disk: 20Gi }
  labels: { env: prod }
  access: enabled
  backup: { schedule: { full: 7d, diff: 1d }, retention: 14d }
  ownerPassword: { fromEnv: ACME_OWNER_PASSWORD }
  users:
    - name: app
      password: { fromFile: secrets/acme-app.password }
  databases:
    - name: orders
      owner: app
  initSql:                        # run once when apply creates the tenant, in order
    - file: sql/001-schema.sql    # relative to the manifest
      database: orders
    - "grant select on all tables in schema public to app"`;

async function readCurrent(ctx: CommandContext, id: string): Promise<CurrentTenant | undefined> {
  let tenant: TenantView;
  try {
    const res = await ctx.client.getTenant({ id }, ctx.call());
    if (res.tenant === undefined) return undefined;
    tenant = tenantView(res.tenant);
  } catch (err) {
    if (err instanceof RpcError && err.code === Code.NOT_FOUND) return undefined;
    throw err;
  }
  const [users, databases] = await Promise.all([ctx.client.listUsers({ tenantId: id }, ctx.call()), ctx.client.listDatabases({ tenantId: id }, ctx.call())]);
  return { tenant, users: users.users.map(userView), databases: databases.databases.map(databaseView) };
}

async function listAllTenants(ctx: CommandContext): Promise<TenantView[]> {
  const out: TenantView[] = [];
  let pageToken = '';
  do {
    const res = await ctx.client.listTenants({ page: { pageSize: 1000, pageToken } }, ctx.call());
    out.push(...res.tenants.map(tenantView));
    pageToken = res.page?.nextPageToken ?? '';
  } while (pageToken !== '');
  return out;
}

interface Planned {
  manifests: TenantManifest[];
  plans: TenantPlan[];
  prune: string[];
}

async function plan(ctx: CommandContext, options: Options): Promise<Planned> {
  const manifests = await loadManifests(ctx.io, (options.filename as string[] | undefined) ?? []);
  const prune = options.prune === true;
  const selector = applyPairs({}, options.selector as string[] | undefined, '--selector');
  if (Object.keys(selector).length > 0 && !prune) throw new UsageError('--selector only chooses the tenants --prune deletes: add --prune');
  const currents = await Promise.all(manifests.map((m) => readCurrent(ctx, m.name)));
  const plans = manifests.map((m, i) => planTenant(m, currents[i], { prune }));
  const pruneTenants = prune && Object.keys(selector).length > 0 ? tenantsToPrune(manifests, await listAllTenants(ctx), selector) : [];
  return { manifests, plans, prune: pruneTenants };
}

function show(ctx: CommandContext, planned: Planned): void {
  emit(ctx, planDocument(planned.plans, planned.prune), () => renderPlans(planned.plans, planned.prune));
}

// A coordinator older than this pgsctl drops the spec's backup field without an error: say so,
// since every later diff will show the policy as still to apply.
function warnIfPolicyDropped(ctx: CommandContext, id: string, sent: TenantPlan, answered: Parameters<typeof tenantView>[0] | undefined): void {
  if (answered !== undefined && policyDropped(sent.backup, tenantView(answered).spec.backup)) {
    ctx.note(`warning: the coordinator at ${ctx.coordinator.address} did not keep the backup policy of tenant ${id} (it is older than this pgsctl)`);
  }
}

/** Sends a create or update; an update refused as stale is re-planned or reported as a conflict. */
async function applySpec(
  ctx: CommandContext,
  manifest: TenantManifest,
  first: TenantPlan,
  prune: boolean,
  generated: Record<string, string>,
): Promise<TenantPlan> {
  let current = first;
  for (let attempt = 0; ; attempt++) {
    if (current.action === 'create') {
      const ownerPassword =
        manifest.ownerPassword === undefined ? '' : readPassword(ctx.io, manifest.ownerPassword, manifest.source, manifest.name, 'spec.ownerPassword');
      const initSql = readInitScripts(ctx.io, manifest);
      // Held until the manifest's users and databases exist, so the scripts can use them.
      const holdInitSql = initSql.length > 0 && current.createUsers.length + current.createDatabases.length > 0;
      const res = await ctx.client.createTenant(
        { id: manifest.name, spec: specToProto(current.spec, current.backup), ownerPassword, initSql, holdInitSql },
        ctx.call(),
      );
      const revision = res.tenant?.revision ?? 1n;
      ctx.note(`tenant ${manifest.name}: created (revision ${revision})`);
      warnIfPolicyDropped(ctx, manifest.name, current, res.tenant);
      // Shown once: in the JSON/YAML document for scripts, else on stdout for people.
      if (res.generatedPassword && ctx.structured) generated[manifest.name] = res.generatedPassword;
      else if (res.generatedPassword) ctx.print(`owner password for user ${manifest.name} (shown once, store it now): ${res.generatedPassword}\n`);
      return current;
    }
    if (current.action === 'unchanged') return current;
    try {
      const res = await ctx.client.updateTenant(
        { id: manifest.name, revision: BigInt(current.revision), spec: specToProto(current.spec, current.backup) },
        ctx.call(),
      );
      ctx.note(
        `tenant ${manifest.name}: updated (revision ${current.revision} -> ${res.tenant?.revision ?? '?'}): ${current.changes.map((c) => c.path).join(', ')}`,
      );
      warnIfPolicyDropped(ctx, manifest.name, current, res.tenant);
      return current;
    } catch (err) {
      if (!(err instanceof RpcError && err.code === Code.ABORTED)) throw err;
      const fresh = await readCurrent(ctx, manifest.name);
      const next = planTenant(manifest, fresh, { prune });
      const conflicts = conflictingFields(current, next);
      if (conflicts.length > 0 || attempt + 1 >= MAX_REPLANS) {
        throw new CliError(
          ExitCode.CONFLICT,
          `tenant ${manifest.name} changed while applying (revision ${current.revision} -> ${next.revision}): ${conflicts.join('; ') || 'it keeps changing'}`,
          {
            hint: `see \`pgsctl tenant get ${manifest.name}\`, settle the manifest, and apply again`,
            cause: err,
          },
        );
      }
      current = next;
    }
  }
}

async function applyObjects(ctx: CommandContext, manifest: TenantManifest, p: TenantPlan): Promise<void> {
  const users = new Map(manifest.users?.map((u, i) => [u.name, i]) ?? []);
  for (const u of p.createUsers) {
    const password = readPassword(ctx.io, u.password, manifest.source, manifest.name, `spec.users[${users.get(u.name) ?? 0}].password`);
    await ctx.client.createUser({ tenantId: manifest.name, name: u.name, password, description: u.description }, ctx.call());
    ctx.note(`tenant ${manifest.name}: user ${u.name} created`);
  }
  for (const d of p.createDatabases) {
    await ctx.client.createDatabase({ tenantId: manifest.name, name: d.name, owner: d.owner, description: d.description }, ctx.call());
    ctx.note(`tenant ${manifest.name}: database ${d.name} created (owner ${d.owner})`);
  }
  for (const name of p.deleteDatabases) {
    await ctx.client.deleteDatabase({ tenantId: manifest.name, name }, ctx.call());
    ctx.note(`tenant ${manifest.name}: database ${name} dropped (--prune)`);
  }
  for (const name of p.deleteUsers) {
    await ctx.client.deleteUser({ tenantId: manifest.name, name }, ctx.call());
    ctx.note(`tenant ${manifest.name}: user ${name} dropped (--prune)`);
  }
}

async function apply(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const planned = await plan(ctx, options);
  const problems = planned.plans.flatMap((p) => p.problems.map((text) => `tenant ${p.name}: ${text}`));
  if (problems.length > 0) {
    show(ctx, planned);
    throw new CliError(ExitCode.CONFLICT, `nothing applied: ${problems.join('; ')}`, {
      hint: 'change the manifest (or the tenant) so pgs can make them match',
    });
  }
  const changing = planned.plans.filter(planChanges);
  if (options.dryRun === true || (changing.length === 0 && planned.prune.length === 0)) {
    show(ctx, planned);
    if (options.dryRun === true && !ctx.structured) ctx.note('dry run: nothing changed');
    return;
  }
  // Every password of what will be created is read before the first change, so a missing one stops nothing halfway.
  for (const p of changing) {
    const m = planned.manifests.find((x) => x.name === p.name);
    if (m === undefined) continue;
    if (p.action === 'create' && m.ownerPassword !== undefined) readPassword(ctx.io, m.ownerPassword, m.source, m.name, 'spec.ownerPassword');
    for (const u of p.createUsers) readPassword(ctx.io, u.password, m.source, m.name, `spec.users[${m.users?.indexOf(u) ?? 0}].password`);
    if (p.action === 'create') readInitScripts(ctx.io, m);
  }
  if (
    planned.prune.length > 0 &&
    options.yes !== true &&
    !(await confirm(ctx.io, `Delete tenants ${planned.prune.join(', ')} (not in the manifests) and ALL their data?`, '--yes'))
  ) {
    throw new UsageError('nothing applied: the tenants to prune were not confirmed');
  }
  const applied: TenantPlan[] = [];
  const generated: Record<string, string> = {};
  for (const p of changing) {
    const m = planned.manifests.find((x) => x.name === p.name);
    if (m === undefined) continue;
    const done = await applySpec(ctx, m, p, options.prune === true, generated);
    await applyObjects(ctx, m, done);
    if (done.action === 'create' && done.initScripts.length > 0) {
      if (done.createUsers.length + done.createDatabases.length > 0) await ctx.client.runInitSql({ tenantId: m.name }, ctx.call());
      ctx.note(`tenant ${m.name}: ${done.initScripts.length} init script(s) will run once its primary runs (see pgsctl tenant get ${m.name})`);
    }
    applied.push(done);
  }
  for (const id of planned.prune) {
    await ctx.client.deleteTenant({ id }, ctx.call());
    ctx.note(`tenant ${id}: deleting (not in the manifests; --prune)`);
  }
  if (options.wait === true) {
    for (const p of applied) await waitForTenant(ctx, p.name, { statuses: [p.spec.runState === 'STOPPED' ? 'STOPPED' : 'ACTIVE'] }, options.timeout as number);
    for (const id of planned.prune) await waitForTenant(ctx, id, { gone: true }, options.timeout as number);
  }
  const document =
    Object.keys(generated).length > 0
      ? { ...(planDocument(applied, planned.prune) as object), generatedPasswords: generated }
      : planDocument(applied, planned.prune);
  emit(ctx, document, () => `applied: ${applied.length + planned.prune.length} tenant(s) changed, ${planned.plans.length - applied.length} unchanged\n`);
}

async function diff(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const planned = await plan(ctx, options);
  show(ctx, planned);
  const changes = planned.plans.some(planChanges) || planned.prune.length > 0;
  if (changes) throw new QuietExit(ExitCode.UNEXPECTED, 'the manifests differ from the fleet');
}

async function remove(ctx: CommandContext, _args: string[], options: Options): Promise<void> {
  const manifests = await loadManifests(ctx.io, (options.filename as string[] | undefined) ?? []);
  const existing: string[] = [];
  for (const m of manifests) {
    if ((await readCurrent(ctx, m.name)) === undefined) ctx.note(`tenant ${m.name}: not found, nothing to delete`);
    else existing.push(m.name);
  }
  if (existing.length === 0) return;
  if (options.yes !== true && !(await confirm(ctx.io, `Delete tenants ${existing.join(', ')} and ALL their data?`, '--yes'))) {
    ctx.note('not deleted');
    return;
  }
  for (const id of existing) {
    await ctx.client.deleteTenant({ id }, ctx.call());
    ctx.note(`tenant ${id}: deleting`);
  }
  if (options.wait === true) for (const id of existing) await waitForTenant(ctx, id, { gone: true }, options.timeout as number);
  emit(ctx, { deleted: existing }, () => `deleted: ${existing.join(', ')}\n`);
}

function fileOption(command: Command): Command {
  return command.requiredOption('-f, --filename <file|dir|->', 'manifest file, directory of *.yaml/*.yml/*.json, or - for stdin (repeatable)', collect);
}

function waitOption(command: Command, what: string): Command {
  return command
    .option('--wait', `wait until the tenants are ${what}, showing progress`)
    .addOption(new Option('--timeout <duration>', 'how long --wait waits per tenant').argParser(durationArg).default(durationArg(DEFAULT_WAIT), DEFAULT_WAIT));
}

/** Adds `apply`, `diff`, `delete` and `manifest schema`. */
export function registerManifest(program: Command, session: Session): void {
  examples(
    waitOption(fileOption(program.command('apply')), 'ACTIVE (or STOPPED)')
      .description('make tenants, their users and databases what the manifests say (create or update; remove only with --prune)')
      .option('--dry-run', 'show what would change and change nothing')
      .option('--prune', 'also drop users and databases the manifests do not list (of tenants whose manifest lists them)')
      .option('-l, --selector <key=value>', 'with --prune: also delete tenants with these labels that no manifest names (repeatable)', collect)
      .option('-y, --yes', 'do not ask before deleting tenants with --prune')
      .addHelpText('after', `\nManifest (YAML or JSON; several documents with ---; schema: pgsctl manifest schema):\n${EXAMPLE.replace(/^/gm, '  ')}\n`)
      .action(session.action(apply)),
    [
      'pgsctl apply -f tenants/',
      'pgsctl apply -f acme.yaml --dry-run',
      'cat acme.yaml | pgsctl apply -f - --wait',
      'pgsctl apply -f tenants/ --prune -l managed-by=git --yes',
    ],
  );
  examples(
    fileOption(program.command('diff'))
      .description('show what apply would change; exit 0 when nothing, 1 when something would change')
      .option('--prune', 'as apply --prune')
      .option('-l, --selector <key=value>', 'as apply --selector', collect)
      .action(session.action(diff)),
    ['pgsctl diff -f tenants/', 'pgsctl diff -f acme.yaml -o json'],
  );
  examples(
    waitOption(fileOption(program.command('delete')), 'gone')
      .description('delete the tenants the manifests name (asks for confirmation)')
      .option('-y, --yes', 'do not ask for confirmation')
      .action(session.action(remove)),
    ['pgsctl delete -f acme.yaml', 'pgsctl delete -f tenants/ --yes --wait'],
  );
  const manifest = program.command('manifest').description('the manifest format of apply, diff and delete');
  examples(
    manifest
      .command('schema')
      .description('print the JSON Schema of a manifest document (for editors and CI checks)')
      .action(() => {
        session.io.stdout.write(fs.readFileSync(SCHEMA_FILE, 'utf8'));
      }),
    ['pgsctl manifest schema > pgs-manifest.schema.json', '# in a YAML file, for editors: # yaml-language-server: $schema=pgs-manifest.schema.json'],
  );
}
