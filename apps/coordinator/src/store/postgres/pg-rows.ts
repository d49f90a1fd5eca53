/**
 * PostgreSQL rows ⇄ the store's records. bigint columns arrive as numbers (the store's connections
 * parse int8 as a JavaScript number: every value it holds, epoch ms, sizes, revisions, stays far
 * below 2^53), booleans as booleans, the tenant spec as parsed jsonb.
 */
import { isRole, type TokenKind } from '@pgs/security';
import type { InitSqlRecord, TenantSpec } from '@pgs/tenancy';
import pg from 'pg';
import type {
  BackupRecord,
  DatabaseRecord,
  EventRecord,
  HostRecord,
  OperationRecord,
  PlacementRecord,
  RestoreRecord,
  RouteRecord,
  StanzaRecord,
  TenantRecord,
  UserRecord,
} from '../../domain/model.js';
import type { StoredToken } from '../contract.js';

/** A row as the driver returns it. */
export type Row = Record<string, unknown>;

const INT8_OID = 20;

/** Type parsers for the store's connections: int8 as a number, everything else as pg does. */
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

export function hostFromRow(r: Row): HostRecord {
  return {
    id: str(r.id),
    address: str(r.address),
    state: r.state as HostRecord['state'],
    cordoned: r.cordoned === true,
    draining: r.draining === true,
    capacity: { cpuMillis: num(r.cpu_millis), memoryMib: num(r.memory_mib), diskMib: num(r.disk_mib) },
    labels: JSON.parse(str(r.labels)) as Record<string, string>,
    runtime: str(r.runtime),
    agentVersion: str(r.agent_version),
    lastHeartbeatAt: num(r.last_heartbeat_at),
    registeredAt: num(r.registered_at),
    stateChangedAt: num(r.state_changed_at),
    generation: num(r.generation),
  };
}

export function tenantFromRow(r: Row): TenantRecord {
  return {
    id: str(r.id),
    spec: r.spec as TenantSpec,
    revision: num(r.revision),
    instanceRevision: num(r.instance_revision),
    status: r.status as TenantRecord['status'],
    statusReason: str(r.status_reason),
    deleting: r.deleting === true,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function placementFromRow(r: Row): PlacementRecord {
  return {
    tenantId: str(r.tenant_id),
    hostId: str(r.host_id),
    role: r.role as PlacementRecord['role'],
    realization: r.realization as PlacementRecord['realization'],
    reason: str(r.reason),
    instanceState: str(r.instance_state),
    address: str(r.address),
    port: num(r.port),
    realizedRevision: num(r.realized_revision),
    realizedOnce: r.realized_once === true,
    failures: num(r.failures),
    nextRetryAt: num(r.next_retry_at),
    updatedAt: num(r.updated_at),
  };
}

export function userFromRow(r: Row): UserRecord {
  return {
    tenantId: str(r.tenant_id),
    name: str(r.name),
    description: str(r.description),
    scramVerifier: str(r.scram_verifier),
    owner: r.owner === true,
    status: r.status as UserRecord['status'],
    statusReason: str(r.status_reason),
    revision: num(r.revision),
    createdAt: num(r.created_at),
  };
}

export function databaseFromRow(r: Row): DatabaseRecord {
  return {
    tenantId: str(r.tenant_id),
    name: str(r.name),
    owner: str(r.owner),
    description: str(r.description),
    status: r.status as DatabaseRecord['status'],
    statusReason: str(r.status_reason),
    revision: num(r.revision),
    createdAt: num(r.created_at),
  };
}

export function routeFromRow(r: Row): RouteRecord {
  return {
    tenantId: str(r.tenant_id),
    hostId: str(r.host_id),
    address: str(r.address),
    port: num(r.port),
    state: r.state as RouteRecord['state'],
    reason: str(r.reason),
    externalAccess: r.external_access === true,
    connectionLimit: num(r.connection_limit),
    revision: num(r.revision),
    poolMode: r.pool_mode as RouteRecord['poolMode'],
    users: JSON.parse(str(r.users)) as RouteRecord['users'],
  };
}

export function eventFromRow(r: Row): EventRecord {
  return {
    id: num(r.id),
    time: num(r.time),
    principal: str(r.principal),
    action: str(r.action),
    tenantId: str(r.tenant_id),
    hostId: str(r.host_id),
    outcome: r.outcome as EventRecord['outcome'],
    message: str(r.message),
    details: JSON.parse(str(r.details)) as Record<string, string>,
  };
}

export function stanzaFromRow(r: Row): StanzaRecord {
  return {
    tenantId: str(r.tenant_id),
    stanza: str(r.stanza),
    // The column keeps its first name; it has held the archived-through time since that replaced it.
    archivedThrough: num(r.last_archived_at),
    lastArchivedWal: str(r.last_archived_wal),
    createdAt: num(r.created_at),
  };
}

/** Backup columns in the order backupValues gives them. */
export const BACKUP_COLUMNS = [
  'id',
  'tenant_id',
  'type',
  'status',
  'reason',
  'host_id',
  'label',
  'prior_label',
  'started_at',
  'finished_at',
  'size_bytes',
  'repo_size_bytes',
  'stanza_repo_size_bytes',
  'lsn_start',
  'lsn_stop',
  'timeline',
  'trigger',
  'stanza',
] as const;

export function backupValues(b: BackupRecord): unknown[] {
  return [
    b.id,
    b.tenantId,
    b.type,
    b.status,
    b.reason,
    b.hostId,
    b.label,
    b.priorLabel,
    b.startedAt,
    b.finishedAt,
    b.sizeBytes,
    b.repoSizeBytes,
    b.stanzaRepoSizeBytes,
    b.lsnStart,
    b.lsnStop,
    b.timeline,
    b.trigger,
    b.stanza,
  ];
}

export function backupFromRow(r: Row): BackupRecord {
  return {
    id: str(r.id),
    tenantId: str(r.tenant_id),
    type: r.type as BackupRecord['type'],
    status: r.status as BackupRecord['status'],
    reason: str(r.reason),
    hostId: str(r.host_id),
    label: str(r.label),
    priorLabel: str(r.prior_label),
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    sizeBytes: num(r.size_bytes),
    repoSizeBytes: num(r.repo_size_bytes),
    stanzaRepoSizeBytes: num(r.stanza_repo_size_bytes),
    lsnStart: str(r.lsn_start),
    lsnStop: str(r.lsn_stop),
    timeline: num(r.timeline),
    trigger: str(r.trigger),
    stanza: str(r.stanza),
  };
}

/** Restore columns in the order restoreValues gives them. */
export const RESTORE_COLUMNS = [
  'id',
  'kind',
  'source_tenant_id',
  'target_tenant_id',
  'state',
  'phase',
  'reason',
  'source_stanza',
  'to_time',
  'to_backup_id',
  'backup_label',
  'latest',
  'host_id',
  'old_hosts',
  'old_lsn',
  'started_at',
  'finished_at',
  'recovered_lsn',
  'recovered_time',
  'missing_wal_bytes',
  'timeline',
  'created_by',
] as const;

export function restoreValues(r: RestoreRecord): unknown[] {
  return [
    r.id,
    r.kind,
    r.sourceTenantId,
    r.targetTenantId,
    r.state,
    r.phase,
    r.reason,
    r.sourceStanza,
    r.toTime,
    r.toBackupId,
    r.backupLabel,
    r.latest,
    r.hostId,
    JSON.stringify(r.oldHosts),
    r.oldLsn,
    r.startedAt,
    r.finishedAt,
    r.recoveredLsn,
    r.recoveredTime,
    r.missingWalBytes,
    r.timeline,
    r.createdBy,
  ];
}

export function restoreFromRow(r: Row): RestoreRecord {
  return {
    id: str(r.id),
    kind: r.kind as RestoreRecord['kind'],
    sourceTenantId: str(r.source_tenant_id),
    targetTenantId: str(r.target_tenant_id),
    state: r.state as RestoreRecord['state'],
    phase: r.phase as RestoreRecord['phase'],
    reason: str(r.reason),
    sourceStanza: str(r.source_stanza),
    toTime: num(r.to_time),
    toBackupId: str(r.to_backup_id),
    backupLabel: str(r.backup_label),
    latest: r.latest === true,
    hostId: str(r.host_id),
    oldHosts: JSON.parse(str(r.old_hosts)) as string[],
    oldLsn: str(r.old_lsn),
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    recoveredLsn: str(r.recovered_lsn),
    recoveredTime: num(r.recovered_time),
    missingWalBytes: num(r.missing_wal_bytes),
    timeline: num(r.timeline),
    createdBy: str(r.created_by),
  };
}

/** Operation columns in the order operationValues gives them. */
export const OPERATION_COLUMNS = [
  'tenant_id',
  'kind',
  'cause',
  'phase',
  'failed_at',
  'started_at',
  'old_primary',
  'to_host_id',
  'fenced_at',
  'fence_sent_at',
  'fence_acked_at',
  'gone_at',
  'final_lsn',
  'candidate',
  'chosen_at',
  'promote_sent_at',
  'deadline',
  'updated_at',
] as const;

export function operationValues(o: OperationRecord): unknown[] {
  return [
    o.tenantId,
    o.kind,
    o.cause,
    o.phase,
    o.failedAt,
    o.startedAt,
    o.oldPrimary,
    o.toHostId,
    o.fencedAt,
    o.fenceSentAt,
    o.fenceAckedAt,
    o.goneAt,
    o.finalLsn,
    o.candidate,
    o.chosenAt,
    o.promoteSentAt,
    o.deadline,
    o.updatedAt,
  ];
}

export function operationFromRow(r: Row): OperationRecord {
  return {
    tenantId: str(r.tenant_id),
    kind: r.kind as OperationRecord['kind'],
    cause: str(r.cause),
    phase: r.phase as OperationRecord['phase'],
    failedAt: num(r.failed_at),
    startedAt: num(r.started_at),
    oldPrimary: str(r.old_primary),
    toHostId: str(r.to_host_id),
    fencedAt: num(r.fenced_at),
    fenceSentAt: num(r.fence_sent_at),
    fenceAckedAt: num(r.fence_acked_at),
    goneAt: num(r.gone_at),
    finalLsn: str(r.final_lsn),
    candidate: str(r.candidate),
    chosenAt: num(r.chosen_at),
    promoteSentAt: num(r.promote_sent_at),
    deadline: num(r.deadline),
    updatedAt: num(r.updated_at),
  };
}

export function initSqlFromRow(r: Row): InitSqlRecord {
  return {
    tenantId: str(r.tenant_id),
    scripts: JSON.parse(str(r.scripts)) as InitSqlRecord['scripts'],
    state: r.state as InitSqlRecord['state'],
    applied: num(r.applied),
    failedScript: str(r.failed_script),
    error: str(r.error),
    attempt: num(r.attempt),
    afterRevision: num(r.after_revision),
    updatedAt: num(r.updated_at),
  };
}

export function tokenFromRow(r: Row): StoredToken {
  const role = r.role === null ? undefined : str(r.role);
  return {
    hash: str(r.hash),
    kind: str(r.kind) as TokenKind,
    name: str(r.name),
    role: role !== undefined && isRole(role) ? role : undefined,
    tenantIds: JSON.parse(str(r.tenant_ids)) as string[],
    createdAtMs: num(r.created_at),
    expiresAtMs: num(r.expires_at),
    singleUse: r.single_use === true,
    usedAtMs: optNum(r.used_at),
    revokedAtMs: optNum(r.revoked_at),
    createdBy: str(r.created_by),
  };
}

/** `$1, $2, ...` for n values starting at `from`. */
export function placeholders(n: number, from = 1): string {
  return Array.from({ length: n }, (_, i) => `$${from + i}`).join(', ');
}
