/**
 * What applying a manifest would change, decided from the manifest and the tenant as read: pure,
 * so `diff`, `apply --dry-run` and `apply` show and do the same thing. Only the fields a manifest
 * sets are compared (the rest are kept); users and databases are created when missing, and removed
 * only under --prune. What pgs cannot change (a database's owner) is a problem that stops apply
 * before it changes anything.
 */
import { DEFAULT_TENANT_SPEC, formatCpu, formatSize, PgsError, validateSpecChange, validateTenantSpec, type TenantSpec } from '@pgs/tenancy';
import { FLEET_DEFAULT_POLICY } from '../backup-policy.js';
import { formatSpan } from '../spans.js';
import { idleSuspendOf, specFromView } from '../tenant-spec.js';
import type { BackupPolicyView, DatabaseView, TenantView, UserView } from '../views.js';
import type { ManifestDatabase, ManifestInitScript, ManifestSource, ManifestUser, TenantManifest } from './model.js';
import { ManifestError } from './validate.js';

/** A tenant as read from the coordinator. */
export interface CurrentTenant {
  tenant: TenantView;
  users: readonly UserView[];
  databases: readonly DatabaseView[];
}

/** One field that would change: manifest path, current and wanted value as shown. */
export interface FieldChange {
  path: string;
  from: string;
  to: string;
}

/** What apply would do to one tenant. */
export interface TenantPlan {
  name: string;
  source: ManifestSource;
  action: 'create' | 'update' | 'unchanged';
  /** The revision read (0 when creating): the update is sent with it. */
  revision: number;
  changes: FieldChange[];
  /** The whole spec and backup policy to send (create or update). */
  spec: TenantSpec;
  backup: BackupPolicyView | null;
  createUsers: ManifestUser[];
  deleteUsers: string[];
  createDatabases: ManifestDatabase[];
  deleteDatabases: string[];
  /** Init scripts sent with a create, as the manifest names them (file, or "inline #n"); empty otherwise. */
  initScripts: string[];
  /** What pgs cannot change: apply refuses to start while any plan has one. */
  problems: string[];
  /** What differs but is left alone (shown, not applied). */
  notes: string[];
}

/** True when the plan changes anything. */
export function planChanges(plan: TenantPlan): boolean {
  return plan.action !== 'unchanged' || plan.createUsers.length + plan.deleteUsers.length + plan.createDatabases.length + plan.deleteDatabases.length > 0;
}

/** The manifest's fields over `base`. */
function desiredSpec(m: TenantManifest, base: TenantSpec): TenantSpec {
  const s = m.spec;
  return {
    resources: {
      cpuMillis: s.cpuMillis ?? base.resources.cpuMillis,
      memoryMib: s.memoryMib ?? base.resources.memoryMib,
      diskMib: s.diskMib ?? base.resources.diskMib,
    },
    nodes: s.nodes ?? base.nodes,
    syncReplicas: s.syncReplicas ?? base.syncReplicas,
    version: s.version ?? base.version,
    labels: { ...(s.labels ?? base.labels) },
    placement: { ...(s.placement ?? base.placement) },
    externalAccess: s.externalAccess ?? base.externalAccess,
    connectionLimit: s.connectionLimit ?? base.connectionLimit,
    description: s.description ?? base.description,
    runState: s.runState ?? base.runState,
    ...(s.poolMode !== undefined ? { poolMode: s.poolMode } : base.poolMode !== undefined ? { poolMode: base.poolMode } : {}),
    ...idleSuspendOf(s.idleSuspendSeconds ?? base.idleSuspendSeconds ?? 0),
  };
}

const span = (seconds: number): string => (seconds === 0 ? 'default' : formatSpan(seconds));

/** The fields of a spec as (path, shown value) pairs, in the manifest's spelling. */
function shownFields(spec: TenantSpec, backup: BackupPolicyView | null): Map<string, string> {
  const out = new Map<string, string>([
    ['spec.resources.cpu', formatCpu(spec.resources.cpuMillis)],
    ['spec.resources.memory', formatSize(spec.resources.memoryMib)],
    ['spec.resources.disk', formatSize(spec.resources.diskMib)],
    ['spec.nodes', String(spec.nodes)],
    ['spec.syncReplicas', String(spec.syncReplicas)],
    ['spec.version', spec.version === '' ? 'default' : spec.version],
    ['spec.access', spec.externalAccess ? 'enabled' : 'disabled'],
    ['spec.connectionLimit', String(spec.connectionLimit)],
    ['spec.description', JSON.stringify(spec.description)],
    ['spec.runState', spec.runState.toLowerCase()],
    ['spec.poolMode', (spec.poolMode ?? 'SESSION').toLowerCase()],
    ['spec.idleSuspend', spec.idleSuspendSeconds ? formatSpan(spec.idleSuspendSeconds) : 'off'],
  ]);
  for (const [k, v] of Object.entries(spec.labels)) out.set(`spec.labels.${k}`, v);
  for (const [k, v] of Object.entries(spec.placement)) out.set(`spec.placement.${k}`, v);
  const p = backup ?? FLEET_DEFAULT_POLICY;
  out.set('spec.backup.enabled', String(!p.disabled));
  out.set('spec.backup.schedule.full', span(p.fullIntervalSeconds));
  out.set('spec.backup.schedule.diff', span(p.diffIntervalSeconds));
  out.set('spec.backup.schedule.incr', span(p.incrIntervalSeconds));
  out.set('spec.backup.retention', span(p.retentionSeconds));
  out.set('spec.backup.archiveTimeout', span(p.archiveTimeoutSeconds));
  return out;
}

/** The fields that differ between two specs ('-' for a label or placement key on one side only). */
export function specChanges(from: TenantSpec, fromBackup: BackupPolicyView | null, to: TenantSpec, toBackup: BackupPolicyView | null): FieldChange[] {
  const a = shownFields(from, fromBackup);
  const b = shownFields(to, toBackup);
  const paths = [...new Set([...a.keys(), ...b.keys()])];
  return paths.filter((p) => a.get(p) !== b.get(p)).map((p) => ({ path: p, from: a.get(p) ?? '-', to: b.get(p) ?? '-' }));
}

/** A domain rule refusing the wanted spec, as an error naming the manifest. */
function validated(m: TenantManifest, fn: () => TenantSpec): TenantSpec {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PgsError) throw new ManifestError(m.source, m.name, 'spec', err.message);
    throw err;
  }
}

/** Plans one tenant: `current` undefined when it does not exist. */
export function planTenant(m: TenantManifest, current: CurrentTenant | undefined, options: { prune: boolean }): TenantPlan {
  const problems: string[] = [];
  const notes: string[] = [];
  let plan: Pick<TenantPlan, 'action' | 'revision' | 'changes' | 'spec' | 'backup'>;
  if (current === undefined) {
    const spec = validated(m, () => validateTenantSpec(desiredSpec(m, DEFAULT_TENANT_SPEC)));
    const backup = m.spec.backup ?? null;
    const changes = specChanges(DEFAULT_TENANT_SPEC, null, spec, backup).map((c) => ({ ...c, from: '-' }));
    plan = { action: 'create', revision: 0, changes, spec, backup };
  } else {
    const base = specFromView(current.tenant.spec);
    const spec = validated(m, () => validateSpecChange(base, desiredSpec(m, base)));
    const backup = m.spec.backup ?? current.tenant.spec.backup;
    const changes = specChanges(base, current.tenant.spec.backup, spec, backup);
    plan = { action: changes.length > 0 ? 'update' : 'unchanged', revision: current.tenant.revision, changes, spec, backup };
    if (current.tenant.status === 'DELETING' || current.tenant.status === 'DELETED') {
      problems.push(`tenant ${m.name} is being deleted: apply again once it is gone`);
    }
  }

  const liveUsers = (current?.users ?? []).filter((u) => !u.owner && u.status !== 'DELETING');
  const liveDatabases = (current?.databases ?? []).filter((d) => d.status !== 'DELETING');
  const createUsers = (m.users ?? []).filter((u) => !liveUsers.some((l) => l.name === u.name));
  const deleteUsers = m.users !== undefined && options.prune ? liveUsers.filter((l) => !m.users?.some((u) => u.name === l.name)).map((l) => l.name) : [];
  const createDatabases = (m.databases ?? []).filter((d) => !liveDatabases.some((l) => l.name === d.name));
  const deleteDatabases =
    m.databases !== undefined && options.prune ? liveDatabases.filter((l) => !m.databases?.some((d) => d.name === l.name)).map((l) => l.name) : [];
  for (const d of m.databases ?? []) {
    const live = liveDatabases.find((l) => l.name === d.name);
    if (live !== undefined && live.owner !== d.owner) {
      problems.push(
        `database ${d.name} is owned by ${live.owner}, the manifest says ${d.owner}: pgs cannot change a database's owner (drop it with \`pgsctl db delete ${m.name} ${d.name}\` to recreate it)`,
      );
    }
    if (live !== undefined && live.description !== d.description) notes.push(`database ${d.name}: description differs; pgs keeps the one it was created with`);
  }
  for (const u of m.users ?? []) {
    const live = liveUsers.find((l) => l.name === u.name);
    if (live !== undefined && live.description !== u.description) notes.push(`user ${u.name}: description differs; pgs keeps the one it was created with`);
  }
  for (const name of deleteUsers) {
    if ((m.databases ?? []).some((d) => d.owner === name)) problems.push(`user ${name} would be pruned but owns database(s) the manifest keeps`);
  }
  if (m.users === undefined && (current?.users ?? []).some((u) => !u.owner) && options.prune) {
    notes.push('users are not managed (no spec.users), so --prune leaves them');
  }
  const initScripts = plan.action === 'create' ? (m.initSql ?? []).map(initScriptLabel) : [];
  return { name: m.name, source: m.source, ...plan, createUsers, deleteUsers, createDatabases, deleteDatabases, initScripts, problems, notes };
}

/** How a plan names an init script: its file, or its position when inline. */
export function initScriptLabel(script: ManifestInitScript, i: number): string {
  const where = script.database === '' ? '' : ` in database ${script.database}`;
  return `${script.file ?? `inline #${i + 1}`}${where}`;
}

/**
 * After a stale-revision refusal: the fields the manifest changes whose current value moved since
 * the first read, as "path is now X (was Y when read)". Empty = the concurrent change touched only
 * fields the manifest leaves alone, so planning again from the new read is safe.
 */
export function conflictingFields(before: TenantPlan, after: TenantPlan): string[] {
  const out: string[] = [];
  for (const c of before.changes) {
    const now = after.changes.find((a) => a.path === c.path);
    // Gone from the new plan: someone already set what the manifest asks.
    if (now !== undefined && now.from !== c.from) out.push(`${c.path} is now ${now.from} (was ${c.from} when read; the manifest asks ${c.to})`);
  }
  for (const a of after.changes) {
    if (!before.changes.some((c) => c.path === a.path)) out.push(`${a.path} is now ${a.from} (was ${a.to} when read, as the manifest asks)`);
  }
  return out;
}

/** Tenants matching `selector` that no manifest names: what `apply --prune --selector` deletes. */
export function tenantsToPrune(manifests: readonly TenantManifest[], tenants: readonly TenantView[], selector: Record<string, string>): string[] {
  const named = new Set(manifests.map((m) => m.name));
  return tenants
    .filter((t) => !named.has(t.id) && t.status !== 'DELETING' && Object.entries(selector).every(([k, v]) => t.spec.labels[k] === v))
    .map((t) => t.id)
    .sort();
}
