/**
 * JSON <-> domain for the REST API in its public, documented shape: instances with cpu in cores, ram in
 * MB and disk_size in GB, `nodes_number`, `sync_replica_number`, versions as
 * `/v1/types/postgres/versions/<id>`. The instance uuid is the tenant id.
 */
import { DEFAULT_POOL_MODE, parseCpu, parseSize, suspendedSince, ValidationError, type BackupPolicy, type TenantSpec } from '@pgs/tenancy';
import { policyFromJson, policyJson } from './rest-backup-mapper.js';
import type { DatabaseRecord, RouteRecord, UserRecord } from '../../domain/model.js';
import type { TenantView } from '../../services/tenant-service.js';
import type { PostgresVersion } from '../../services/versions.js';

/** Path prefix of version references. */
export const VERSION_PATH = '/v1/types/postgres/versions/';

type Json = Record<string, unknown>;

function str(body: Json, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ValidationError(field, v, 'a string');
  return v;
}

function num(body: Json, field: string): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValidationError(field, v, 'a number');
  return v;
}

function bool(body: Json, field: string): boolean | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ValidationError(field, v, 'true or false');
  return v;
}

function labels(body: Json, field: string): Record<string, string> | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string'))
    throw new ValidationError(field, v, 'an object of string values');
  return { ...(v as Record<string, string>) };
}

/** A JSON body must be an object. */
export function asObject(body: unknown): Json {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body', body, 'a JSON object');
  return body as Json;
}

/** A version reference (path or bare id) -> id. */
export function versionId(ref: string): string {
  return ref.startsWith(VERSION_PATH) ? ref.slice(VERSION_PATH.length) : ref;
}

/** An instance body -> spec over `base`; absent fields keep the base. */
export function specFromInstance(body: Json, base: TenantSpec): TenantSpec {
  const cpu = body.cpu;
  const ram = body.ram;
  const disk = body.disk_size;
  const runState = str(body, 'run_state');
  if (runState !== undefined && runState !== 'RUNNING' && runState !== 'STOPPED') throw new ValidationError('run_state', runState, 'RUNNING or STOPPED');
  const poolMode = str(body, 'pool_mode') ?? base.poolMode;
  const idleSuspend = num(body, 'idle_suspend_seconds') ?? base.idleSuspendSeconds ?? 0;
  return {
    resources: {
      cpuMillis: cpu === undefined ? base.resources.cpuMillis : parseCpu(String(cpu), 'cpu'),
      // ram: MB as a number (the public API's documented unit), or a size such as "2Gi".
      memoryMib: ram === undefined ? base.resources.memoryMib : typeof ram === 'string' ? parseSize(ram, 'ram') : (num(body, 'ram') as number),
      // disk_size: GB as a number (the public API's documented unit), or a size such as "100Gi".
      diskMib:
        disk === undefined
          ? base.resources.diskMib
          : typeof disk === 'string'
            ? parseSize(disk, 'disk_size')
            : Math.round((num(body, 'disk_size') as number) * 1024),
    },
    nodes: num(body, 'nodes_number') ?? base.nodes,
    syncReplicas: num(body, 'sync_replica_number') ?? base.syncReplicas,
    version: versionId(str(body, 'version') ?? base.version),
    labels: labels(body, 'labels') ?? { ...base.labels },
    placement: labels(body, 'placement') ?? { ...base.placement },
    externalAccess: bool(body, 'external_access') ?? base.externalAccess,
    connectionLimit: num(body, 'connection_limit') ?? base.connectionLimit,
    description: str(body, 'description') ?? base.description,
    runState: (runState as TenantSpec['runState'] | undefined) ?? base.runState,
    ...withPolicy(policyFromJson(body.backup_policy, base.backup)),
    // Checked with the rest of the spec (validateTenantSpec).
    ...(poolMode !== undefined ? { poolMode: poolMode as NonNullable<TenantSpec['poolMode']> } : {}),
    ...(idleSuspend !== 0 ? { idleSuspendSeconds: idleSuspend } : {}),
  };
}

function withPolicy(backup: BackupPolicy | undefined): { backup?: BackupPolicy } {
  return backup === undefined ? {} : { backup };
}

/** A tenant -> instance JSON. */
export function instanceJson(v: TenantView, route?: RouteRecord): Json {
  const t = v.tenant;
  return {
    uuid: t.id,
    name: t.id,
    description: t.spec.description,
    cpu: t.spec.resources.cpuMillis / 1000,
    ram: t.spec.resources.memoryMib,
    disk_size: t.spec.resources.diskMib / 1024,
    nodes_number: t.spec.nodes,
    sync_replica_number: t.spec.syncReplicas,
    version: VERSION_PATH + (t.spec.version || ''),
    status: t.status,
    status_reason: t.statusReason,
    revision: t.revision,
    run_state: t.spec.runState,
    external_access: t.spec.externalAccess,
    connection_limit: t.spec.connectionLimit,
    pool_mode: t.spec.poolMode ?? DEFAULT_POOL_MODE,
    idle_suspend_seconds: t.spec.idleSuspendSeconds ?? 0,
    suspended_at: suspendedIso(t.status, t.statusReason),
    labels: t.spec.labels,
    placement: t.spec.placement,
    backup_policy: policyJson(t.spec.backup),
    nodes: v.placements.map((p) => ({ host: p.hostId, role: p.role, status: p.realization, reason: p.reason, address: p.address, port: p.port })),
    route: route ? { state: route.state, reason: route.reason, address: route.address, port: route.port, revision: route.revision } : undefined,
    created_at: new Date(t.createdAt).toISOString(),
    updated_at: new Date(t.updatedAt).toISOString(),
  };
}

/** When a SUSPENDED tenant was suspended (ISO time), null otherwise. */
function suspendedIso(status: string, reason: string): string | null {
  const at = suspendedSince(status, reason);
  return at === undefined ? null : new Date(at).toISOString();
}

/** A user -> JSON (never the verifier). */
export function userJson(u: UserRecord): Json {
  return {
    uuid: u.name,
    name: u.name,
    description: u.description,
    status: u.status,
    status_reason: u.statusReason,
    owner: u.owner,
    created_at: new Date(u.createdAt).toISOString(),
  };
}

/** A database -> JSON; the owner as a user reference, as the public API documents it. */
export function databaseJson(d: DatabaseRecord): Json {
  return {
    uuid: d.name,
    name: d.name,
    description: d.description,
    owner: `/v1/postgres/instances/${d.tenantId}/users/${d.owner}`,
    status: d.status,
    status_reason: d.statusReason,
    created_at: new Date(d.createdAt).toISOString(),
  };
}

/** A user reference (`/v1/postgres/instances/<t>/users/<name>`) or a bare name -> name. */
export function ownerName(ref: string): string {
  const m = /^\/v1\/(?:types\/)?postgres\/instances\/[^/]+\/users\/([^/]+)$/.exec(ref);
  return m?.[1] ?? ref;
}

/** A catalog entry -> the public API's version JSON. */
export function versionJson(v: PostgresVersion, since: string): Json {
  return {
    uuid: v.id,
    name: v.displayName,
    description: `${v.displayName}${v.default ? ' (default)' : ''}${v.limitations ? `: ${v.limitations}` : ''}`,
    image: v.image,
    default: v.default,
    deprecated: v.deprecated,
    hosts: v.hostIds,
    server_versions: v.serverVersions,
    replicas_supported: v.replicas,
    backups_supported: v.backups,
    limitations: v.limitations,
    created_at: since,
    updated_at: since,
  };
}

/** Read helpers for bodies. */
export const read = { str, num, bool };
