/** Proto <-> domain for the operator API (CoordinatorService). */
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  EventOutcome,
  HostState,
  InitSqlState,
  InstanceRole,
  ObjectStatus,
  PoolMode,
  Realization,
  RunState,
  TenantStatus,
  type EventSchema,
  type HostSchema,
  type InitSqlStatusSchema,
  type PlacementSchema,
  type TenantDatabaseSchema,
  type TenantSchema,
  type TenantUpgradeSchema,
  type TenantSpec as ProtoTenantSpec,
  type TenantUserSchema,
  type PostgresVersionSchema,
} from '@pgs/proto';
import {
  DEFAULT_POOL_MODE,
  type InitScript,
  type InitSqlRecord,
  type PoolMode as DomainPoolMode,
  type RunState as DomainRunState,
  type TenantSpec,
  suspendedSince,
} from '@pgs/tenancy';
import type { HostView } from '../../services/host-service.js';
import type { DatabaseRecord, EventRecord, UserRecord } from '../../domain/model.js';
import type { PlacementView, TenantView } from '../../services/tenant-service.js';
import type { PostgresVersion } from '../../services/versions.js';
import { viewOfUpgrade, type UpgradeView } from '../../services/upgrade-manager.js';
import { fromProtoPolicy, toProtoArchive, toProtoPolicy } from './backup-mapper.js';
import { enumName, enumValue, toProtoResources, toTimestamp } from './common-mapper.js';

/**
 * A proto spec -> domain spec over `base` (the defaults on create, the current spec on update):
 * fields that cannot be zero (cpu, memory, disk, nodes, run state) keep the base when absent;
 * the others are taken as given.
 */
export function fromProtoSpec(s: ProtoTenantSpec | undefined, base: TenantSpec): TenantSpec {
  if (!s) return { ...base, resources: { ...base.resources }, labels: { ...base.labels }, placement: { ...base.placement } };
  return {
    resources: {
      cpuMillis: s.resources?.cpuMillis || base.resources.cpuMillis,
      memoryMib: s.resources?.memoryMib || base.resources.memoryMib,
      diskMib: s.resources?.diskMib || base.resources.diskMib,
    },
    nodes: s.nodes || base.nodes,
    syncReplicas: s.syncReplicas,
    version: s.version || base.version,
    labels: { ...s.labels },
    placement: { ...s.placement },
    externalAccess: s.externalAccess,
    connectionLimit: s.connectionLimit,
    description: s.description,
    runState: enumName<DomainRunState>(RunState, s.runState) ?? base.runState,
    ...(s.backup ? { backup: fromProtoPolicy(s.backup) } : base.backup ? { backup: { ...base.backup } } : {}),
    ...poolModeOf(enumName<DomainPoolMode>(PoolMode, s.poolMode) ?? base.poolMode),
    ...(s.idleSuspendSeconds > 0 ? { idleSuspendSeconds: s.idleSuspendSeconds } : {}),
  };
}

/** The spec's pool_mode field: absent when neither the request nor the base names one (the default applies). */
function poolModeOf(mode: DomainPoolMode | undefined): { poolMode?: DomainPoolMode } {
  return mode === undefined ? {} : { poolMode: mode };
}

/** Domain spec -> proto. */
export function toProtoSpec(s: TenantSpec): MessageInitShape<typeof TenantSchema>['spec'] {
  return {
    resources: toProtoResources(s.resources),
    nodes: s.nodes,
    syncReplicas: s.syncReplicas,
    version: s.version,
    labels: s.labels,
    placement: s.placement,
    externalAccess: s.externalAccess,
    connectionLimit: s.connectionLimit,
    description: s.description,
    runState: enumValue(RunState, s.runState),
    backup: s.backup ? toProtoPolicy(s.backup) : undefined,
    poolMode: enumValue(PoolMode, s.poolMode ?? DEFAULT_POOL_MODE),
    idleSuspendSeconds: s.idleSuspendSeconds ?? 0,
  };
}

function toProtoPlacement(p: PlacementView): MessageInitShape<typeof PlacementSchema> {
  const h = p.health;
  return {
    hostId: p.hostId,
    role: enumValue(InstanceRole, p.role),
    realization: enumValue(Realization, p.realization),
    reason: p.reason,
    address: p.address,
    port: p.port,
    health: h
      ? {
          up: h.up,
          acceptingConnections: h.acceptingConnections,
          connections: h.connections,
          busyBackends: h.busyBackends,
          databaseSizeBytes: BigInt(h.databaseSizeBytes),
          role: enumValue(InstanceRole, h.role),
          lsn: h.lsn,
          lagBytes: BigInt(h.lagBytes),
          timeline: h.timeline,
          checkedAt: toTimestamp(h.checkedAt),
          archive: h.archive ? toProtoArchive(h.archive) : undefined,
          senderLostAt: h.senderLostAt ? toTimestamp(h.senderLostAt) : undefined,
        }
      : undefined,
    updatedAt: toTimestamp(p.updatedAt),
  };
}

/** A tenant view -> proto Tenant. */
export function toProtoTenant(v: TenantView): MessageInitShape<typeof TenantSchema> {
  const t = v.tenant;
  return {
    id: t.id,
    spec: toProtoSpec(t.spec),
    revision: BigInt(t.revision),
    status: enumValue(TenantStatus, t.status),
    statusReason: t.statusReason,
    placements: v.placements.map(toProtoPlacement),
    createdAt: toTimestamp(t.createdAt),
    updatedAt: toTimestamp(t.updatedAt),
    initSql: v.initSql ? toProtoInitSql(v.initSql) : undefined,
    suspendedAt: suspendedAtOf(t),
    upgrade: v.upgrade ? toProtoUpgrade(viewOfUpgrade(v.upgrade)) : undefined,
  };
}

/** A tenant's major upgrade -> proto (what the operator needs: phase, majors, hosts, timings; never its secret). */
export function toProtoUpgrade(u: UpgradeView): MessageInitShape<typeof TenantUpgradeSchema> {
  return {
    phase: u.phase,
    fromMajor: u.fromMajor,
    toMajor: u.toMajor,
    fromHostId: u.fromHostId,
    toHostId: u.toHostId,
    reason: u.reason,
    copyMs: BigInt(Math.max(0, u.copyMs)),
    switchMs: BigInt(Math.max(0, u.switchMs)),
    keepUntil: u.keepUntil > 0 ? toTimestamp(u.keepUntil) : undefined,
    startedAt: toTimestamp(u.startedAt),
  };
}

/** When a SUSPENDED tenant was suspended, as a timestamp; undefined for any other status. */
function suspendedAtOf(t: TenantView['tenant']): ReturnType<typeof toTimestamp> | undefined {
  const at = suspendedSince(t.status, t.statusReason);
  return at === undefined ? undefined : toTimestamp(at);
}

/** A tenant's init scripts -> proto status (names only: the SQL was the creator's and stays in the store). */
export function toProtoInitSql(r: InitSqlRecord): MessageInitShape<typeof InitSqlStatusSchema> {
  return {
    state: enumValue(InitSqlState, r.state),
    scripts: r.scripts.map((s) => s.name),
    applied: r.applied,
    failedScript: r.failedScript,
    error: r.error,
    attempt: r.attempt,
    updatedAt: toTimestamp(r.updatedAt),
  };
}

/** Proto init scripts of a create request -> domain (validated by the service). */
export function fromProtoInitScripts(scripts: readonly { name: string; sql: string; database: string }[]): InitScript[] {
  return scripts.map((s) => ({ name: s.name, sql: s.sql, database: s.database }));
}

/** A user -> proto (never the verifier). */
export function toProtoUser(u: UserRecord): MessageInitShape<typeof TenantUserSchema> {
  return {
    tenantId: u.tenantId,
    name: u.name,
    description: u.description,
    status: enumValue(ObjectStatus, u.status),
    statusReason: u.statusReason,
    owner: u.owner,
    createdAt: toTimestamp(u.createdAt),
  };
}

/** A database -> proto. */
export function toProtoDatabase(d: DatabaseRecord): MessageInitShape<typeof TenantDatabaseSchema> {
  return {
    tenantId: d.tenantId,
    name: d.name,
    owner: d.owner,
    description: d.description,
    status: enumValue(ObjectStatus, d.status),
    statusReason: d.statusReason,
    createdAt: toTimestamp(d.createdAt),
  };
}

/** A host view -> proto Host. */
export function toProtoHost(v: HostView): MessageInitShape<typeof HostSchema> {
  const h = v.host;
  return {
    id: h.id,
    address: h.address,
    state: enumValue(HostState, h.state),
    cordoned: h.cordoned,
    draining: h.draining,
    capacity: toProtoResources(h.capacity),
    allocated: v.allocated,
    labels: h.labels,
    lastHeartbeatAt: toTimestamp(h.lastHeartbeatAt),
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    registeredAt: toTimestamp(h.registeredAt),
    ...(v.readySpares === undefined ? {} : { readySpares: v.readySpares }),
    postgresMajors: (v.postgresMajors ?? []).map((m) => ({
      major: m.major,
      serverVersion: m.serverVersion,
      pgBasebackup: m.pgBasebackup,
      pgRewind: m.pgRewind,
      pgbackrest: m.pgbackrest,
    })),
    ...(v.drain === undefined
      ? {}
      : {
          drainTotal: v.drain.total,
          drainMoved: v.drain.moved,
          drainBlocked: v.drain.blocked,
          drainMoving: v.drain.moving,
          drainBlockedTenants: v.drain.blockedTenants.map((b) => ({ tenantId: b.tenantId, reason: b.reason })),
        }),
  };
}

/** An event -> proto. */
export function toProtoEvent(e: EventRecord): MessageInitShape<typeof EventSchema> {
  return {
    id: BigInt(e.id),
    time: toTimestamp(e.time),
    principal: e.principal,
    action: e.action,
    tenantId: e.tenantId,
    hostId: e.hostId,
    outcome: enumValue(EventOutcome, e.outcome),
    message: e.message,
    details: e.details,
  };
}

/** A catalog entry -> proto. */
export function toProtoVersion(v: PostgresVersion): MessageInitShape<typeof PostgresVersionSchema> {
  return {
    id: v.id,
    major: v.major,
    displayName: v.displayName,
    image: v.image,
    default: v.default,
    deprecated: v.deprecated,
    hostIds: v.hostIds,
    replicasSupported: v.replicas,
    backupsSupported: v.backups,
    limitations: v.limitations,
    serverVersions: v.serverVersions,
  };
}
