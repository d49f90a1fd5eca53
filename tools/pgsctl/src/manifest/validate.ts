/**
 * One parsed document -> a TenantManifest, or a ManifestError naming the file, the document, the
 * path inside it (`spec.users[1].password`) and what is allowed. Unknown keys are refused (a typo
 * must not silently leave a field unmanaged); units and bounds come from @pgs/tenancy, so a value
 * is refused with the very rule the coordinator applies. manifest.schema.json describes the same
 * format for editors; a test keeps the two in step.
 */
import { MAX_INIT_SCRIPTS, parseCpu, parseSize, PgsError, validateDatabaseName, validateTenantId, validateUserName } from '@pgs/tenancy';
import { FLEET_DEFAULT_POLICY } from '../backup-policy.js';
import { CliError, UsageError } from '../errors.js';
import { parseIdleSuspend, parseSpan } from '../spans.js';
import type { BackupPolicyView } from '../views.js';
import {
  describeSource,
  MANIFEST_API_VERSION,
  MANIFEST_KIND,
  type ManagedSpec,
  type ManifestDatabase,
  type ManifestInitScript,
  type ManifestSource,
  type ManifestUser,
  type PasswordRef,
  type TenantManifest,
} from './model.js';

/** A manifest that cannot be used: where, and why. Exit 2 like every usage error. */
export class ManifestError extends UsageError {
  constructor(source: ManifestSource, name: string | undefined, path: string, message: string) {
    super(`${describeSource(source, name)}: ${path ? `${path}: ` : ''}${message}`, {
      hint: 'the format is in `pgsctl manifest schema` and in the examples of `pgsctl apply --help`',
    });
    this.name = 'ManifestError';
  }
}

type Obj = Record<string, unknown>;

const TOP_KEYS = ['apiVersion', 'kind', 'metadata', 'spec'] as const;
const METADATA_KEYS = ['name'] as const;
const SPEC_KEYS = [
  'resources',
  'nodes',
  'syncReplicas',
  'version',
  'labels',
  'placement',
  'access',
  'connectionLimit',
  'poolMode',
  'idleSuspend',
  'description',
  'runState',
  'backup',
  'ownerPassword',
  'users',
  'databases',
  'initSql',
] as const;
const RESOURCE_KEYS = ['cpu', 'memory', 'disk'] as const;
const BACKUP_KEYS = ['enabled', 'schedule', 'retention', 'archiveTimeout'] as const;
const SCHEDULE_KEYS = ['full', 'diff', 'incr'] as const;
const USER_KEYS = ['name', 'description', 'password'] as const;
const DATABASE_KEYS = ['name', 'owner', 'description'] as const;
const PASSWORD_KEYS = ['fromEnv', 'fromFile'] as const;
const INIT_SCRIPT_KEYS = ['sql', 'file', 'database'] as const;

/** Every key the format knows, by object, for the schema test. */
export const MANIFEST_KEYS = {
  top: TOP_KEYS,
  metadata: METADATA_KEYS,
  spec: SPEC_KEYS,
  resources: RESOURCE_KEYS,
  backup: BACKUP_KEYS,
  schedule: SCHEDULE_KEYS,
  user: USER_KEYS,
  database: DATABASE_KEYS,
  password: PASSWORD_KEYS,
  initScript: INIT_SCRIPT_KEYS,
} as const;

// PostgreSQL's archive_timeout is an int of seconds capped at INT_MAX / 2 (its GUC definition).
const MAX_ARCHIVE_TIMEOUT_SECONDS = 1_073_741_823;

/** Validates documents of one source; `value` is what the YAML/JSON parser produced. */
class DocumentReader {
  name: string | undefined;

  constructor(readonly source: ManifestSource) {}

  fail(path: string, message: string): never {
    throw new ManifestError(this.source, this.name, path, message);
  }

  /** Runs a domain check, turning its error into one at `path`. */
  check<T>(path: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof PgsError || err instanceof CliError) this.fail(path, err.message);
      throw err;
    }
  }

  object(value: unknown, path: string, keys: readonly string[]): Obj {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(path, `expected a mapping (key: value), got ${kindOf(value)}`);
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.fail(join(path, key), `unknown field; allowed here: ${keys.join(', ')}`);
    }
    return value as Obj;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string') this.fail(path, `expected a string, got ${kindOf(value)}`);
    return value;
  }

  count(value: unknown, path: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.fail(path, `expected a whole number, 0 or more, got ${kindOf(value)}`);
    return value;
  }

  /** A number or a string (`cpu: 1.5`, `memory: 2Gi`), as text for the unit parsers. */
  quantity(value: unknown, path: string): string {
    if (typeof value === 'number') return String(value);
    return this.string(value, path);
  }

  stringMap(value: unknown, path: string): Record<string, string> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(path, `expected a mapping of strings, got ${kindOf(value)}`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else out[k] = this.string(v, join(path, k));
    }
    return out;
  }

  list(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, `expected a list, got ${kindOf(value)}`);
    return value;
  }

  password(value: unknown, path: string): PasswordRef {
    if (typeof value === 'string') {
      this.fail(path, 'a password never goes in a manifest: use {fromEnv: VARIABLE} or {fromFile: path} (relative to the manifest)');
    }
    const o = this.object(value, path, PASSWORD_KEYS);
    if (o.fromEnv !== undefined && o.fromFile !== undefined) this.fail(path, 'give either fromEnv or fromFile, not both');
    if (o.fromEnv !== undefined) {
      const name = this.string(o.fromEnv, join(path, 'fromEnv'));
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) this.fail(join(path, 'fromEnv'), `${JSON.stringify(name)} is not an environment variable name`);
      return { fromEnv: name };
    }
    if (o.fromFile !== undefined) {
      const file = this.string(o.fromFile, join(path, 'fromFile'));
      if (file.trim() === '') this.fail(join(path, 'fromFile'), 'expected a file path');
      return { fromFile: file };
    }
    return this.fail(path, 'expected fromEnv or fromFile');
  }

  backup(value: unknown, path: string): BackupPolicyView {
    const o = this.object(value, path, BACKUP_KEYS);
    const policy: BackupPolicyView = { ...FLEET_DEFAULT_POLICY };
    if (o.enabled !== undefined) {
      if (typeof o.enabled !== 'boolean') this.fail(join(path, 'enabled'), `expected true or false, got ${kindOf(o.enabled)}`);
      policy.disabled = !o.enabled;
    }
    const span = (v: unknown, p: string): number => (v === 'default' ? 0 : this.check(p, () => parseSpan(this.string(v, p), p)));
    if (o.schedule !== undefined) {
      const s = this.object(o.schedule, join(path, 'schedule'), SCHEDULE_KEYS);
      if (s.full !== undefined) policy.fullIntervalSeconds = span(s.full, join(path, 'schedule.full'));
      if (s.diff !== undefined) policy.diffIntervalSeconds = span(s.diff, join(path, 'schedule.diff'));
      if (s.incr !== undefined) policy.incrIntervalSeconds = span(s.incr, join(path, 'schedule.incr'));
    }
    if (o.retention !== undefined) policy.retentionSeconds = span(o.retention, join(path, 'retention'));
    if (o.archiveTimeout !== undefined) {
      policy.archiveTimeoutSeconds = span(o.archiveTimeout, join(path, 'archiveTimeout'));
      if (policy.archiveTimeoutSeconds > MAX_ARCHIVE_TIMEOUT_SECONDS)
        this.fail(join(path, 'archiveTimeout'), `PostgreSQL allows at most ${MAX_ARCHIVE_TIMEOUT_SECONDS}s`);
    }
    return policy;
  }

  users(value: unknown, path: string, tenant: string): ManifestUser[] {
    const seen = new Set<string>();
    return this.list(value, path).map((item, i) => {
      const p = `${path}[${i}]`;
      const o = this.object(item, p, USER_KEYS);
      const name = this.check(join(p, 'name'), () => validateUserName(this.string(o.name, join(p, 'name')), 'name'));
      if (name === tenant) this.fail(join(p, 'name'), `${name} is the tenant's owner user, which every tenant has: set its password with spec.ownerPassword`);
      if (seen.has(name)) this.fail(join(p, 'name'), `user ${name} is listed twice`);
      seen.add(name);
      if (o.password === undefined) this.fail(join(p, 'password'), 'required: {fromEnv: VARIABLE} or {fromFile: path}');
      return {
        name,
        description: o.description === undefined ? '' : this.string(o.description, join(p, 'description')),
        password: this.password(o.password, join(p, 'password')),
      };
    });
  }

  databases(value: unknown, path: string, tenant: string): ManifestDatabase[] {
    const seen = new Set<string>();
    return this.list(value, path).map((item, i) => {
      const p = `${path}[${i}]`;
      const o = this.object(item, p, DATABASE_KEYS);
      const name = this.check(join(p, 'name'), () => validateDatabaseName(this.string(o.name, join(p, 'name')), 'name'));
      if (seen.has(name)) this.fail(join(p, 'name'), `database ${name} is listed twice`);
      seen.add(name);
      // The tenant's owner user is named like the tenant, so it is the natural default owner (as in `db create`).
      const owner = o.owner === undefined ? tenant : this.check(join(p, 'owner'), () => validateUserName(this.string(o.owner, join(p, 'owner')), 'owner'));
      return { name, owner, description: o.description === undefined ? '' : this.string(o.description, join(p, 'description')) };
    });
  }

  /** `initSql`: each item inline SQL (a string, or {sql}) or {file} relative to the manifest, with an optional database. */
  initSql(value: unknown, path: string): ManifestInitScript[] {
    const items = this.list(value, path);
    if (items.length > MAX_INIT_SCRIPTS) this.fail(path, `at most ${MAX_INIT_SCRIPTS} scripts`);
    return items.map((item, i) => {
      const p = `${path}[${i}]`;
      if (typeof item === 'string') {
        if (item.trim() === '') this.fail(p, 'expected SQL (the script is empty)');
        return { sql: item, database: '' };
      }
      const o = this.object(item, p, INIT_SCRIPT_KEYS);
      if ((o.sql === undefined) === (o.file === undefined)) this.fail(p, 'give exactly one of sql (inline) and file (relative to the manifest)');
      const database =
        o.database === undefined ? '' : this.check(join(p, 'database'), () => validateDatabaseName(this.string(o.database, join(p, 'database')), 'database'));
      if (o.sql !== undefined) {
        const sql = this.string(o.sql, join(p, 'sql'));
        if (sql.trim() === '') this.fail(join(p, 'sql'), 'expected SQL (the script is empty)');
        return { sql, database };
      }
      const file = this.string(o.file, join(p, 'file'));
      if (file.trim() === '') this.fail(join(p, 'file'), 'expected a file path');
      return { file, database };
    });
  }

  spec(
    value: unknown,
    tenant: string,
  ): { spec: ManagedSpec; ownerPassword?: PasswordRef; users?: ManifestUser[]; databases?: ManifestDatabase[]; initSql?: ManifestInitScript[] } {
    const o = this.object(value, 'spec', SPEC_KEYS);
    const spec: ManagedSpec = {};
    if (o.resources !== undefined) {
      const r = this.object(o.resources, 'spec.resources', RESOURCE_KEYS);
      if (r.cpu !== undefined) spec.cpuMillis = this.check('spec.resources.cpu', () => parseCpu(this.quantity(r.cpu, 'spec.resources.cpu'), 'cpu'));
      if (r.memory !== undefined)
        spec.memoryMib = this.check('spec.resources.memory', () => parseSize(this.quantity(r.memory, 'spec.resources.memory'), 'memory'));
      if (r.disk !== undefined) spec.diskMib = this.check('spec.resources.disk', () => parseSize(this.quantity(r.disk, 'spec.resources.disk'), 'disk'));
    }
    if (o.nodes !== undefined) spec.nodes = this.count(o.nodes, 'spec.nodes');
    if (o.syncReplicas !== undefined) spec.syncReplicas = this.count(o.syncReplicas, 'spec.syncReplicas');
    if (o.version !== undefined) spec.version = this.quantity(o.version, 'spec.version');
    if (o.labels !== undefined) spec.labels = this.stringMap(o.labels, 'spec.labels');
    if (o.placement !== undefined) spec.placement = this.stringMap(o.placement, 'spec.placement');
    if (o.access !== undefined) {
      if (o.access !== 'enabled' && o.access !== 'disabled') this.fail('spec.access', `expected enabled or disabled, got ${kindOf(o.access)}`);
      spec.externalAccess = o.access === 'enabled';
    }
    if (o.connectionLimit !== undefined) spec.connectionLimit = this.count(o.connectionLimit, 'spec.connectionLimit');
    if (o.description !== undefined) spec.description = this.string(o.description, 'spec.description');
    if (o.runState !== undefined) {
      if (o.runState !== 'running' && o.runState !== 'stopped') this.fail('spec.runState', `expected running or stopped, got ${kindOf(o.runState)}`);
      spec.runState = o.runState === 'stopped' ? 'STOPPED' : 'RUNNING';
    }
    if (o.poolMode !== undefined) {
      if (o.poolMode !== 'none' && o.poolMode !== 'session' && o.poolMode !== 'transaction')
        this.fail('spec.poolMode', `expected none, session or transaction, got ${kindOf(o.poolMode)}`);
      spec.poolMode = o.poolMode === 'none' ? 'NONE' : o.poolMode === 'transaction' ? 'TRANSACTION' : 'SESSION';
    }
    if (o.idleSuspend !== undefined)
      spec.idleSuspendSeconds = this.check('spec.idleSuspend', () => parseIdleSuspend(this.string(o.idleSuspend, 'spec.idleSuspend'), 'spec.idleSuspend'));
    if (o.backup !== undefined) spec.backup = this.backup(o.backup, 'spec.backup');
    return {
      spec,
      ownerPassword: o.ownerPassword === undefined ? undefined : this.password(o.ownerPassword, 'spec.ownerPassword'),
      users: o.users === undefined ? undefined : this.users(o.users, 'spec.users', tenant),
      databases: o.databases === undefined ? undefined : this.databases(o.databases, 'spec.databases', tenant),
      initSql: o.initSql === undefined ? undefined : this.initSql(o.initSql, 'spec.initSql'),
    };
  }

  document(value: unknown): TenantManifest {
    const o = this.object(value, '', TOP_KEYS);
    if (o.apiVersion !== MANIFEST_API_VERSION) this.fail('apiVersion', `expected ${MANIFEST_API_VERSION}, got ${kindOf(o.apiVersion)}`);
    if (o.kind !== MANIFEST_KIND) this.fail('kind', `expected ${MANIFEST_KIND} (the only kind so far), got ${kindOf(o.kind)}`);
    const metadata = this.object(o.metadata, 'metadata', METADATA_KEYS);
    const name = this.check('metadata.name', () => validateTenantId(this.string(metadata.name, 'metadata.name'), 'name'));
    this.name = name;
    const parts = this.spec(o.spec ?? {}, name);
    const manifest: TenantManifest = { source: this.source, name, spec: parts.spec };
    if (parts.ownerPassword !== undefined) manifest.ownerPassword = parts.ownerPassword;
    if (parts.users !== undefined) manifest.users = parts.users;
    if (parts.databases !== undefined) manifest.databases = parts.databases;
    if (parts.initSql !== undefined) manifest.initSql = parts.initSql;
    for (const [i, script] of (manifest.initSql ?? []).entries()) {
      if (
        script.database !== '' &&
        script.database !== name &&
        manifest.databases !== undefined &&
        !manifest.databases.some((d) => d.name === script.database)
      ) {
        this.fail(`spec.initSql[${i}].database`, `database ${script.database} is not in spec.databases (nor the default database ${name})`);
      }
    }
    for (const db of manifest.databases ?? []) {
      if (db.owner !== name && manifest.users !== undefined && !manifest.users.some((u) => u.name === db.owner)) {
        const i = (manifest.databases ?? []).indexOf(db);
        this.fail(`spec.databases[${i}].owner`, `user ${db.owner} is not in spec.users (nor the owner user ${name})`);
      }
    }
    return manifest;
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

/** Validates one document (`value` as parsed) from `source`. */
export function validateDocument(value: unknown, source: ManifestSource): TenantManifest {
  return new DocumentReader(source).document(value);
}

/** Refuses two documents for the same tenant, naming both. */
export function checkUnique(manifests: readonly TenantManifest[]): void {
  const seen = new Map<string, TenantManifest>();
  for (const m of manifests) {
    const first = seen.get(m.name);
    if (first !== undefined) throw new ManifestError(m.source, m.name, 'metadata.name', `tenant ${m.name} is also in ${describeSource(first.source)}`);
    seen.set(m.name, m);
  }
}
