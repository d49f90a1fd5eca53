/** Proto <-> domain for the agent stream (AgentControlService). */
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  InstanceRole,
  InstanceState,
  Realization,
  RunState,
  type Hello,
  type InstanceHealth,
  type InstanceSpecSchema,
  type InstanceStatus,
  BackupType,
  type ArchiveStatus,
  type BackupRepositorySchema,
  type CommandResult,
  type ConnectResponseSchema,
  type RestoreSourceSchema,
} from '@pgs/proto';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { BackupType as DomainBackupType, HostMajor, InitSqlRecord, Realization as DomainRealization, Resources, RestoreSource } from '@pgs/tenancy';
import type { BackupSettings } from '../../services/backup-repository.js';
import type { DesiredInstance } from '../../services/desired-set.js';
import type { ArchiveHealth, InstanceHealthView } from '../../live/health-cache.js';
import type { BackupRecord } from '../../domain/model.js';
import { enumName, enumValue, fromProtoResources, fromTimestamp, toNumber, toProtoResources } from './common-mapper.js';

/** A desired instance -> InstanceSpec. */
export function toInstanceSpec(d: DesiredInstance): MessageInitShape<typeof InstanceSpecSchema> {
  return {
    tenantId: d.tenantId,
    specRevision: BigInt(d.specRevision),
    role: enumValue(InstanceRole, d.role),
    resources: toProtoResources(d.resources),
    version: d.version,
    runState: enumValue(RunState, d.runState),
    roles: d.roles,
    databases: d.databases,
    dropRoles: d.dropRoles,
    dropDatabases: d.dropDatabases,
    port: d.port,
    primaryAddress: d.primaryAddress,
    primaryPort: d.primaryPort,
    synchronousStandbyNames: d.synchronousStandbyNames,
    replicationSecret: d.replicationSecret,
    replicationUser: d.replicationUser,
    fenceOnLeaseExpiry: d.fenceOnLeaseExpiry,
    replicationSlots: d.replicationSlots,
    replicationSlot: d.replicationSlot,
    standbyName: d.standbyName,
    image: d.image,
    backup: d.backup,
    restore: d.restore ? toRestoreSource(d.restore) : undefined,
    upgradeSubscriber: d.upgradeSubscriber === true,
  };
}

function toRestoreSource(r: RestoreSource): MessageInitShape<typeof RestoreSourceSchema> {
  const t = r.target;
  const target =
    t.kind === 'time'
      ? { case: 'time' as const, value: timestampFromMs(t.time) }
      : t.kind === 'backup'
        ? { case: 'backupLabel' as const, value: t.label }
        : { case: 'latest' as const, value: true };
  return { restoreId: r.restoreId, stanza: r.stanza, target };
}

/** The fleet repository as agents get it in Welcome. */
export function toBackupRepository(s: BackupSettings): MessageInitShape<typeof BackupRepositorySchema> {
  const l = s.location;
  const kind =
    l.kind === 'posix'
      ? { case: 'posix' as const, value: { path: l.path } }
      : {
          case: 's3' as const,
          value: {
            endpoint: l.endpoint,
            port: l.port,
            bucket: l.bucket,
            region: l.region,
            path: l.path,
            pathStyle: l.pathStyle,
            caPem: l.caPem,
            accessKey: l.accessKey,
            secretKey: l.secretKey,
          },
        };
  return { kind, cipherPass: s.cipherPass, keyId: s.keyId };
}

/** What the coordinator keeps of one InstanceStatus. */
export interface InstanceReportView {
  tenantId: string;
  realization: DomainRealization;
  state: string;
  reason: string;
  address: string;
  port: number;
  specRevision: number;
  health: InstanceHealthView | undefined;
  /** After a restore: where recovery ended. */
  recovery: RecoveryView | undefined;
}

/** Where the recovery of a restored instance ended (InstanceStatus.recovery). */
export interface RecoveryView {
  restoreId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  lsn: string;
  commitTime: number;
  timeline: number;
}

function archiveView(a: ArchiveStatus | undefined): ArchiveHealth | undefined {
  if (!a) return undefined;
  return {
    enabled: a.enabled,
    archivedCount: toNumber(a.archivedCount),
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedAt: fromTimestamp(a.lastArchivedAt),
    failedCount: toNumber(a.failedCount),
    lastFailedWal: a.lastFailedWal,
    lastFailedAt: fromTimestamp(a.lastFailedAt),
    pendingSegments: a.pendingSegments,
    pendingBytes: toNumber(a.pendingBytes),
    lagSeconds: a.lagSeconds,
    archivedThrough: fromTimestamp(a.archivedThrough),
  };
}

function healthView(h: InstanceHealth | undefined): InstanceHealthView | undefined {
  if (!h) return undefined;
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    busyBackends: h.busyBackends,
    databaseSizeBytes: toNumber(h.databaseSizeBytes),
    role: enumName(InstanceRole, h.role),
    lsn: h.lsn,
    lagBytes: toNumber(h.lagBytes),
    timeline: h.timeline,
    checkedAt: fromTimestamp(h.checkedAt),
    archive: archiveView(h.archive),
    senderLostAt: fromTimestamp(h.senderLostAt),
  };
}

/** InstanceStatus -> domain view; an unspecified realization counts as PENDING. */
export function fromInstanceStatus(s: InstanceStatus): InstanceReportView {
  return {
    tenantId: s.tenantId,
    realization: enumName<DomainRealization>(Realization, s.realization) ?? 'PENDING',
    state: enumName<string>(InstanceState, s.state) ?? '',
    reason: s.reason,
    address: s.address,
    port: s.port,
    specRevision: toNumber(s.specRevision),
    health: healthView(s.health),
    recovery: s.recovery
      ? {
          restoreId: s.recovery.restoreId,
          ok: s.recovery.ok,
          errorCode: s.recovery.errorCode,
          message: s.recovery.message,
          lsn: s.recovery.lsn,
          commitTime: fromTimestamp(s.recovery.commitTime),
          timeline: s.recovery.timeline,
        }
      : undefined,
  };
}

/** What registration keeps of a Hello. */
export interface HelloView {
  hostId: string;
  address: string;
  capacity: Resources;
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  instances: InstanceReportView[];
  appliedGeneration: number;
  /** The PostgreSQL majors the host runs (empty: not reported). */
  postgresMajors: HostMajor[];
  pgbackrestVersion: string;
  /** The most instances the host can hold (its ports); 0 = not said. */
  instanceSlots: number;
}

/** Hello -> domain view. */
export function fromHello(h: Hello): HelloView {
  return {
    hostId: h.hostId,
    address: h.address,
    capacity: fromProtoResources(h.capacity),
    labels: { ...h.labels },
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    instances: h.instances.map(fromInstanceStatus),
    appliedGeneration: toNumber(h.appliedGeneration),
    postgresMajors: h.postgresMajors.map((m) => ({
      major: m.major,
      serverVersion: m.serverVersion,
      pgBasebackup: m.pgBasebackup,
      pgRewind: m.pgRewind,
      pgbackrest: m.pgbackrest,
      pgDump: m.pgDump,
      pgUpgrade: m.pgUpgrade,
    })),
    pgbackrestVersion: h.pgbackrestVersion,
    instanceSlots: h.instanceSlots,
  };
}

/** What the coordinator keeps of a CommandResult to RunBackup. */
export interface BackupResultView {
  commandId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  /** What pgBackRest made; undefined when the agent sent none. */
  made:
    | {
        label: string;
        priorLabel: string;
        type: DomainBackupType | undefined;
        startedAt: number;
        finishedAt: number;
        sizeBytes: number;
        repoSizeBytes: number;
        stanzaRepoSizeBytes: number;
        lsnStart: string;
        lsnStop: string;
        timeline: number;
      }
    | undefined;
}

/** CommandResult (of RunBackup) -> domain view. */
export function fromBackupResult(c: CommandResult): BackupResultView {
  const r = c.backup;
  return {
    commandId: c.commandId,
    ok: c.ok,
    errorCode: c.errorCode,
    message: c.message,
    made: r
      ? {
          label: r.label,
          priorLabel: r.priorLabel,
          type: enumName<DomainBackupType>(BackupType, r.type),
          startedAt: fromTimestamp(r.startedAt),
          finishedAt: fromTimestamp(r.finishedAt),
          sizeBytes: toNumber(r.sizeBytes),
          repoSizeBytes: toNumber(r.repoSizeBytes),
          stanzaRepoSizeBytes: toNumber(r.stanzaRepoSizeBytes),
          lsnStart: r.lsnStart,
          lsnStop: r.lsnStop,
          timeline: r.timeline,
        }
      : undefined,
  };
}

/** The RunBackup command of a just-recorded backup. */
export function toRunBackupCommand(
  commandId: string,
  b: Pick<BackupRecord, 'id' | 'tenantId' | 'type' | 'stanza'>,
): MessageInitShape<typeof ConnectResponseSchema> {
  return {
    message: {
      case: 'command',
      value: {
        commandId,
        tenantId: b.tenantId,
        action: { case: 'runBackup', value: { backupId: b.id, type: enumValue(BackupType, b.type), stanza: b.stanza } },
      },
    },
  };
}

/** The ExpireBackup command removing `label` from the tenant's stanza. */
export function toExpireBackupCommand(commandId: string, tenantId: string, stanza: string, label: string): MessageInitShape<typeof ConnectResponseSchema> {
  return { message: { case: 'command', value: { commandId, tenantId, action: { case: 'expireBackup', value: { stanza, label } } } } };
}

/** What an agent answered, from its CommandResult. */
export interface InitSqlResultView {
  commandId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  applied: number;
  failedScript: string;
  error: string;
}

/** The RunInitSql command of a run: the scripts not committed yet are skipped by the agent itself. */
export function toRunInitSqlCommand(
  commandId: string,
  tenantId: string,
  r: Pick<InitSqlRecord, 'attempt' | 'scripts'>,
): MessageInitShape<typeof ConnectResponseSchema> {
  return {
    message: {
      case: 'command',
      value: { commandId, tenantId, action: { case: 'runInitSql', value: { attempt: r.attempt, owner: tenantId, scripts: r.scripts.map((s) => ({ ...s })) } } },
    },
  };
}

/** CommandResult of RunInitSql -> view. */
export function fromInitSqlResult(c: CommandResult): InitSqlResultView {
  return {
    commandId: c.commandId,
    ok: c.ok,
    errorCode: c.errorCode,
    message: c.message,
    applied: c.initSql?.applied ?? 0,
    failedScript: c.initSql?.failedScript ?? '',
    error: c.initSql?.error ?? '',
  };
}
