/**
 * Resource requests and the tenant spec, with the public API's documented bounds: cpu 1..128 cores, memory
 * 512 MiB..1 TiB, disk 8 GiB..1 TiB, 1..16 nodes, 0..15 synchronous replicas (fewer than nodes),
 * and a disk that never shrinks. Field names in errors are the API's (snake_case) paths.
 */
import { validateBackupPolicy, type BackupPolicy } from './backup-policy.js';
import { ValidationError } from './errors.js';
import { validateLabels } from './names.js';
import type { RunState } from './statuses.js';
import { formatCpu, formatSize } from './units.js';

/** Resources an instance asks for or a host offers: cpu in millicores, memory and disk in MiB. */
export interface Resources {
  cpuMillis: number;
  memoryMib: number;
  diskMib: number;
}

/**
 * How routers serve a tenant's clients: NONE passes bytes through (the instance authenticates);
 * SESSION and TRANSACTION authenticate at the router and pool server connections.
 */
export type PoolMode = 'NONE' | 'SESSION' | 'TRANSACTION';

/** The pool mode of a spec that names none. */
export const DEFAULT_POOL_MODE: PoolMode = 'SESSION';

const POOL_MODES: readonly PoolMode[] = ['NONE', 'SESSION', 'TRANSACTION'];

/** The desired shape of a tenant (the intent); every change bumps the tenant's revision. */
export interface TenantSpec {
  resources: Resources;
  /** PostgreSQL nodes: 1 primary + (nodes - 1) replicas. */
  nodes: number;
  /** Synchronous replicas, fewer than nodes. */
  syncReplicas: number;
  /** Major version id from the versions catalog, e.g. '15'; '' = the catalog default. */
  version: string;
  labels: Record<string, string>;
  /** A host must carry every one of these labels, e.g. { region: 'eu' }. */
  placement: Record<string, string>;
  /** Routable through the routers (off unless asked for). */
  externalAccess: boolean;
  /** Router-side connection limit; 0 = none. */
  connectionLimit: number;
  description: string;
  runState: RunState;
  /** Backups and WAL archiving; absent = the fleet defaults. */
  backup?: BackupPolicy;
  /** Unset = DEFAULT_POOL_MODE (specs stored before pool modes existed have none). */
  poolMode?: PoolMode;
  /** Suspend after this many idle seconds (scale to zero); unset or 0 = never. */
  idleSuspendSeconds?: number;
}

/** Inclusive bounds of one integer field. */
export interface Bound {
  min: number;
  max: number;
}

/** Every bound a tenant spec must respect (the public API's documented bounds), in the units of Resources. */
export const RESOURCE_BOUNDS = Object.freeze({
  cpuMillis: Object.freeze({ min: 1_000, max: 128_000 }),
  memoryMib: Object.freeze({ min: 512, max: 1_048_576 }),
  diskMib: Object.freeze({ min: 8_192, max: 1_048_576 }),
  nodes: Object.freeze({ min: 1, max: 16 }),
  syncReplicas: Object.freeze({ min: 0, max: 15 }),
  // PostgreSQL's own ceiling for max_connections (MAX_BACKENDS).
  connectionLimit: Object.freeze({ min: 0, max: 262_143 }),
  descriptionLength: Object.freeze({ min: 0, max: 1_024 }),
  versionLength: Object.freeze({ min: 0, max: 32 }),
  // 0 = off; otherwise from one second (tests, demos) to 30 days.
  idleSuspendSeconds: Object.freeze({ min: 0, max: 2_592_000 }),
});

/** The spec a tenant gets when nothing is asked: 1 cpu, 1 GiB, 8 GiB disk, 1 node, access off, running. */
export const DEFAULT_TENANT_SPEC: TenantSpec = Object.freeze({
  resources: Object.freeze({ cpuMillis: 1_000, memoryMib: 1_024, diskMib: 8_192 }),
  nodes: 1,
  syncReplicas: 0,
  version: '',
  labels: Object.freeze({}) as Record<string, string>,
  placement: Object.freeze({}) as Record<string, string>,
  externalAccess: false,
  connectionLimit: 0,
  description: '',
  runState: 'RUNNING',
}) as TenantSpec;

const VERSION = /^[0-9A-Za-z](?:[0-9A-Za-z._-]*)$/;

/** Throws ValidationError unless `value` is an integer within `bound`; `show` prints bounds in human units. */
function checkInteger(field: string, value: unknown, bound: Bound, show: (n: number) => string = String): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < bound.min || value > bound.max) {
    throw new ValidationError(field, value, `a whole number from ${show(bound.min)} to ${show(bound.max)}`, { code: 'INVALID_ARGUMENT' });
  }
  return value;
}

/** Validates requested resources against RESOURCE_BOUNDS; `field` prefixes the error paths. */
export function validateResources(resources: Resources, field = 'spec.resources'): Resources {
  if (typeof resources !== 'object' || resources === null) {
    throw new ValidationError(field, resources, 'an object with cpu_millis, memory_mib and disk_mib');
  }
  const b = RESOURCE_BOUNDS;
  return {
    cpuMillis: checkInteger(`${field}.cpu_millis`, resources.cpuMillis, b.cpuMillis, (n) => `${n} (${formatCpu(n)} cpu)`),
    memoryMib: checkInteger(`${field}.memory_mib`, resources.memoryMib, b.memoryMib, (n) => `${n} (${formatSize(n)})`),
    diskMib: checkInteger(`${field}.disk_mib`, resources.diskMib, b.diskMib, (n) => `${n} (${formatSize(n)})`),
  };
}

/** Validates every field of a spec; returns a normalized copy (labels sorted) or throws ValidationError. */
export function validateTenantSpec(spec: TenantSpec): TenantSpec {
  if (typeof spec !== 'object' || spec === null) throw new ValidationError('spec', spec, 'a tenant spec object');
  const b = RESOURCE_BOUNDS;
  const resources = validateResources(spec.resources);
  const nodes = checkInteger('spec.nodes', spec.nodes, b.nodes);
  const syncReplicas = checkInteger('spec.sync_replicas', spec.syncReplicas, b.syncReplicas);
  // A synchronous replica is one of the replicas: a 1-node tenant has none to wait for.
  if (syncReplicas >= nodes) {
    throw new ValidationError('spec.sync_replicas', syncReplicas, `fewer than spec.nodes (${nodes}), so from 0 to ${nodes - 1}`);
  }
  if (typeof spec.version !== 'string' || spec.version.length > b.versionLength.max || (spec.version !== '' && !VERSION.test(spec.version))) {
    throw new ValidationError(
      'spec.version',
      spec.version,
      `'' (catalog default) or a version id of up to ${b.versionLength.max} letters, digits, '.', '_' or '-'`,
    );
  }
  const labels = validateLabels(spec.labels ?? {}, 'spec.labels');
  const placement = validateLabels(spec.placement ?? {}, 'spec.placement');
  if (typeof spec.externalAccess !== 'boolean') throw new ValidationError('spec.external_access', spec.externalAccess, 'true or false');
  const connectionLimit = checkInteger('spec.connection_limit', spec.connectionLimit, b.connectionLimit);
  if (typeof spec.description !== 'string' || spec.description.length > b.descriptionLength.max) {
    throw new ValidationError('spec.description', spec.description, `a string of at most ${b.descriptionLength.max} characters`);
  }
  if (spec.runState !== 'RUNNING' && spec.runState !== 'STOPPED') {
    throw new ValidationError('spec.run_state', spec.runState, "'RUNNING' or 'STOPPED'");
  }
  if (spec.poolMode !== undefined && !POOL_MODES.includes(spec.poolMode)) {
    throw new ValidationError('spec.pool_mode', spec.poolMode, "'NONE', 'SESSION' or 'TRANSACTION'");
  }
  return {
    resources,
    nodes,
    syncReplicas,
    version: spec.version,
    labels,
    placement,
    externalAccess: spec.externalAccess,
    connectionLimit,
    description: spec.description,
    runState: spec.runState,
    ...(spec.backup === undefined ? {} : { backup: validateBackupPolicy(spec.backup) }),
    ...(spec.poolMode !== undefined ? { poolMode: spec.poolMode } : {}),
    ...(spec.idleSuspendSeconds ? { idleSuspendSeconds: checkInteger('spec.idle_suspend_seconds', spec.idleSuspendSeconds, b.idleSuspendSeconds) } : {}),
  };
}

/**
 * Validates `next` as an update of `previous`: every bound, plus a disk never shrinks (data may live there)
 * and the major version never changes in place (no upgrade path exists yet; '' may be pinned).
 */
export function validateSpecChange(previous: TenantSpec, next: TenantSpec): TenantSpec {
  const spec = validateTenantSpec(next);
  if (spec.resources.diskMib < previous.resources.diskMib) {
    throw new ValidationError(
      'spec.resources.disk_mib',
      spec.resources.diskMib,
      `${previous.resources.diskMib} (${formatSize(previous.resources.diskMib)}) or more: a disk never shrinks`,
      { code: 'DISK_SHRINK' },
    );
  }
  if (previous.version !== '' && spec.version !== previous.version) {
    throw new ValidationError('spec.version', spec.version, `'${previous.version}': major version upgrades in place are not supported`, {
      code: 'VERSION_CHANGE',
    });
  }
  return spec;
}
