/** Proto <-> domain for backups and restores (CoordinatorService and REST share the domain side). */
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  BackupStatus,
  BackupType,
  RestoreState,
  type ArchiveStatusSchema,
  type BackupOverviewSchema,
  type BackupPolicy as ProtoBackupPolicy,
  type BackupPolicySchema,
  type BackupSchema,
  type RecoveryWindowSchema,
  type RestoreSchema,
} from '@pgs/proto';
import type { BackupPolicy, BackupType as DomainBackupType, RecoveryWindow } from '@pgs/tenancy';
import type { BackupOverviewView } from '../../services/backup-service.js';
import type { ArchiveHealth } from '../../live/health-cache.js';
import type { BackupRecord, RestoreRecord } from '../../domain/model.js';
import { enumName, enumValue, toNumber, toTimestamp } from './common-mapper.js';

/** Proto policy -> domain (uint64 seconds as numbers). */
export function fromProtoPolicy(p: ProtoBackupPolicy): BackupPolicy {
  return {
    disabled: p.disabled,
    fullIntervalSeconds: toNumber(p.fullIntervalSeconds),
    diffIntervalSeconds: toNumber(p.diffIntervalSeconds),
    incrIntervalSeconds: toNumber(p.incrIntervalSeconds),
    retentionSeconds: toNumber(p.retentionSeconds),
    archiveTimeoutSeconds: p.archiveTimeoutSeconds,
  };
}

/** Domain policy -> proto. */
export function toProtoPolicy(p: BackupPolicy): MessageInitShape<typeof BackupPolicySchema> {
  return {
    disabled: p.disabled,
    fullIntervalSeconds: BigInt(p.fullIntervalSeconds),
    diffIntervalSeconds: BigInt(p.diffIntervalSeconds),
    incrIntervalSeconds: BigInt(p.incrIntervalSeconds),
    retentionSeconds: BigInt(p.retentionSeconds),
    archiveTimeoutSeconds: p.archiveTimeoutSeconds,
  };
}

/** A backup type from the wire; UNSPECIFIED = undefined (the service picks). */
export function fromProtoBackupType(t: BackupType): DomainBackupType | undefined {
  return enumName<DomainBackupType>(BackupType, t);
}

/** A backup row -> proto. */
export function toProtoBackup(b: BackupRecord): MessageInitShape<typeof BackupSchema> {
  return {
    id: b.id,
    tenantId: b.tenantId,
    type: enumValue(BackupType, b.type),
    status: enumValue(BackupStatus, b.status),
    reason: b.reason,
    hostId: b.hostId,
    label: b.label,
    startedAt: toTimestamp(b.startedAt),
    finishedAt: toTimestamp(b.finishedAt),
    sizeBytes: BigInt(b.sizeBytes),
    repoSizeBytes: BigInt(b.repoSizeBytes),
    lsnStart: b.lsnStart,
    lsnStop: b.lsnStop,
    timeline: b.timeline,
    trigger: b.trigger,
    stanza: b.stanza,
    priorLabel: b.priorLabel,
  };
}

/** A window -> proto (undefined stays unset). */
export function toProtoWindow(w: RecoveryWindow | undefined): MessageInitShape<typeof RecoveryWindowSchema> | undefined {
  return w ? { earliest: toTimestamp(w.earliest), latest: toTimestamp(w.latest) } : undefined;
}

/** A restore row -> proto. */
export function toProtoRestore(r: RestoreRecord): MessageInitShape<typeof RestoreSchema> {
  return {
    id: r.id,
    sourceTenantId: r.sourceTenantId,
    targetTenantId: r.targetTenantId,
    state: enumValue(RestoreState, r.state),
    reason: r.reason,
    toTime: toTimestamp(r.toTime),
    toBackupId: r.toBackupId,
    latest: r.latest,
    inPlace: r.kind === 'in_place',
    hostId: r.hostId,
    startedAt: toTimestamp(r.startedAt),
    finishedAt: toTimestamp(r.finishedAt),
    recoveredLsn: r.recoveredLsn,
    recoveredTime: toTimestamp(r.recoveredTime),
    missingWalBytes: BigInt(r.missingWalBytes),
    timeline: r.timeline,
  };
}

/** An archive status -> proto. */
export function toProtoArchive(a: ArchiveHealth): MessageInitShape<typeof ArchiveStatusSchema> {
  return {
    enabled: a.enabled,
    archivedCount: BigInt(a.archivedCount),
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedAt: toTimestamp(a.lastArchivedAt),
    failedCount: BigInt(a.failedCount),
    lastFailedWal: a.lastFailedWal,
    lastFailedAt: toTimestamp(a.lastFailedAt),
    pendingSegments: a.pendingSegments,
    pendingBytes: BigInt(a.pendingBytes),
    lagSeconds: a.lagSeconds,
    archivedThrough: toTimestamp(a.archivedThrough),
  };
}

/** The overview of GetTenant -> proto. */
export function toProtoOverview(o: BackupOverviewView): MessageInitShape<typeof BackupOverviewSchema> {
  return {
    policy: toProtoPolicy(o.policy),
    window: toProtoWindow(o.window),
    lastGood: o.lastGood ? toProtoBackup(o.lastGood) : undefined,
    running: o.running ? toProtoBackup(o.running) : undefined,
    archive: o.archive ? toProtoArchive(o.archive) : undefined,
    problems: o.problems,
  };
}
