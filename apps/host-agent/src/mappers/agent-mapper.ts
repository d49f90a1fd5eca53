/**
 * Proto <-> domain for the agent stream (AgentControlService), the one place where uint64 bigints
 * become numbers and enum values become the domain's names.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import {
  BackupType,
  InstanceRole,
  InstanceState,
  Realization,
  RunState,
  UpgradeSource_Step,
  UpgradeTarget_Step,
  type ArchiveStatusSchema,
  type BackupRepository as ProtoBackupRepository,
  type BackupResultSchema,
  type Command,
  type CommandResultSchema,
  type DesiredInstances,
  type HelloSchema,
  type InstanceHealthSchema,
  type InstanceSpec,
  type InstanceStatusSchema,
  type RecoveryResultSchema,
  type RestoreSource as ProtoRestoreSource,
  type UsageSchema,
} from '@pgs/proto';
import type { HostMajor, Resources } from '@pgs/tenancy';
import type { ArchiveStatus, BackupKind, BackupRepository, BackupResult, RecoveryResult, RestoreSource } from '../backup/backup-types.js';
import type {
  AgentCommand,
  CommandAction,
  CommandOutcome,
  DesiredInstance,
  DesiredSet,
  InstanceHealth,
  InstanceStatus,
  UpgradeSourceAction,
  UpgradeTargetAction,
} from '../model.js';

/** uint64 from the wire -> number (values past 2^53 are not revisions or generations we issue). */
export function toNumber(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Welcome.backup_repository -> BackupRepository (undefined: the fleet has none). */
export function fromBackupRepository(r: ProtoBackupRepository | undefined): BackupRepository | undefined {
  if (!r) return undefined;
  const k = r.kind;
  if (k.case === 'posix') return { store: { kind: 'posix', path: k.value.path }, cipherPass: r.cipherPass, keyId: r.keyId };
  if (k.case === 's3') {
    const v = k.value;
    return {
      store: {
        kind: 's3',
        endpoint: v.endpoint,
        port: v.port,
        bucket: v.bucket,
        region: v.region,
        path: v.path,
        pathStyle: v.pathStyle,
        caPem: v.caPem,
        accessKey: v.accessKey,
        secretKey: v.secretKey,
      },
      cipherPass: r.cipherPass,
      keyId: r.keyId,
    };
  }
  // A repository of a kind this agent does not know is none it can use.
  return undefined;
}

/** RestoreSource -> domain; a source without a target means the end of the archive. */
export function fromRestoreSource(r: ProtoRestoreSource): RestoreSource {
  const t = r.target;
  const target: RestoreSource['target'] =
    t.case === 'time' ? { kind: 'time', time: timestampMs(t.value) } : t.case === 'backupLabel' ? { kind: 'backup', label: t.value } : { kind: 'latest' };
  return { restoreId: r.restoreId, stanza: r.stanza, target };
}

function fromBackupType(t: BackupType): BackupKind {
  return t === BackupType.DIFF ? 'DIFF' : t === BackupType.INCR ? 'INCR' : 'FULL';
}

/** InstanceSpec -> DesiredInstance; unspecified role and run state mean primary and running. */
export function fromInstanceSpec(s: InstanceSpec): DesiredInstance {
  const d: DesiredInstance = {
    tenantId: s.tenantId,
    specRevision: toNumber(s.specRevision),
    role: s.role === InstanceRole.REPLICA ? 'REPLICA' : 'PRIMARY',
    resources: { cpuMillis: s.resources?.cpuMillis ?? 0, memoryMib: s.resources?.memoryMib ?? 0, diskMib: s.resources?.diskMib ?? 0 },
    version: s.version,
    image: s.image,
    runState: s.runState === RunState.STOPPED ? 'STOPPED' : 'RUNNING',
    roles: s.roles.map((r) => ({ name: r.name, scramVerifier: r.scramVerifier, login: r.login })),
    databases: s.databases.map((d) => ({ name: d.name, owner: d.owner })),
    dropRoles: [...s.dropRoles],
    dropDatabases: [...s.dropDatabases],
    port: s.port,
    primaryAddress: s.primaryAddress,
    primaryPort: s.primaryPort,
    synchronousStandbyNames: s.synchronousStandbyNames,
    replicationSecret: s.replicationSecret,
    replicationUser: s.replicationUser,
    fenceOnLeaseExpiry: s.fenceOnLeaseExpiry,
    replicationSlots: [...s.replicationSlots],
    replicationSlot: s.replicationSlot,
    standbyName: s.standbyName,
  };
  if (s.backup && s.backup.stanza !== '')
    d.backup = { stanza: s.backup.stanza, archiveTimeoutSeconds: s.backup.archiveTimeoutSeconds, retentionDays: s.backup.retentionDays };
  if (s.restore) d.restore = fromRestoreSource(s.restore);
  if (s.upgradeSubscriber) d.upgradeSubscriber = true;
  return d;
}

/** DesiredInstances -> DesiredSet. */
export function fromDesiredInstances(m: DesiredInstances): DesiredSet {
  return { generation: toNumber(m.generation), full: m.full, instances: m.instances.map(fromInstanceSpec), removedTenantIds: [...m.removedTenantIds] };
}

/** Command -> AgentCommand (an action this agent does not know maps to undefined). */
export function fromCommand(c: Command): AgentCommand {
  const a = c.action;
  let action: CommandAction | undefined;
  switch (a.case) {
    case 'createRole':
      action = {
        kind: 'createRole',
        role: { name: a.value.role?.name ?? '', scramVerifier: a.value.role?.scramVerifier ?? '', login: a.value.role?.login ?? true },
      };
      break;
    case 'dropRole':
      action = { kind: 'dropRole', name: a.value.name };
      break;
    case 'setRolePassword':
      action = { kind: 'setRolePassword', name: a.value.name, scramVerifier: a.value.scramVerifier };
      break;
    case 'createDatabase':
      action = { kind: 'createDatabase', database: { name: a.value.database?.name ?? '', owner: a.value.database?.owner ?? '' } };
      break;
    case 'dropDatabase':
      action = { kind: 'dropDatabase', name: a.value.name };
      break;
    case 'promote':
      action = { kind: 'promote', minLsn: a.value.minLsn };
      break;
    case 'fence':
      action = { kind: 'fence', graceMs: a.value.graceMs };
      break;
    case 'runBackup':
      action = { kind: 'runBackup', backupId: a.value.backupId, type: fromBackupType(a.value.type), stanza: a.value.stanza };
      break;
    case 'expireBackup':
      action = { kind: 'expireBackup', stanza: a.value.stanza, label: a.value.label };
      break;
    case 'checkpoint':
      action = { kind: 'checkpoint' };
      break;
    case 'runInitSql':
      action = { kind: 'runInitSql', attempt: a.value.attempt, scripts: a.value.scripts.map((x) => ({ name: x.name, sql: x.sql, database: x.database })) };
      break;
    case 'upgradeSource': {
      const step = SOURCE_STEPS[a.value.step];
      action = step && {
        kind: 'upgradeSource',
        step,
        user: a.value.user,
        scramVerifier: a.value.scramVerifier,
        replicaIdentityFull: a.value.replicaIdentityFull,
        roles: [...a.value.roles],
        databases: [...a.value.databases],
      };
      break;
    }
    case 'upgradeTarget': {
      const step = TARGET_STEPS[a.value.step];
      const v = a.value;
      action = step && {
        kind: 'upgradeTarget',
        step,
        source: { address: v.sourceAddress, port: v.sourcePort, user: v.user, password: v.password },
        databases: [...v.databases],
        dumpMajor: v.dumpMajor,
        timeoutMs: v.timeoutMs,
      };
      break;
    }
    default:
      action = undefined;
  }
  return { commandId: c.commandId, tenantId: c.tenantId, action };
}

function u64(n: number): bigint {
  return BigInt(Math.max(0, Math.floor(n)));
}

function toArchive(a: ArchiveStatus): MessageInitShape<typeof ArchiveStatusSchema> {
  return {
    enabled: a.enabled,
    archivedCount: u64(a.archivedCount),
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedAt: a.lastArchivedAtMs > 0 ? timestampFromMs(a.lastArchivedAtMs) : undefined,
    failedCount: u64(a.failedCount),
    lastFailedWal: a.lastFailedWal,
    lastFailedAt: a.lastFailedAtMs > 0 ? timestampFromMs(a.lastFailedAtMs) : undefined,
    pendingSegments: a.pendingSegments,
    pendingBytes: u64(a.pendingBytes),
    lagSeconds: a.lagSeconds,
    archivedThrough: a.archivedThroughMs > 0 ? timestampFromMs(a.archivedThroughMs) : undefined,
  };
}

/** RecoveryResult -> proto. */
export function toRecovery(r: RecoveryResult): MessageInitShape<typeof RecoveryResultSchema> {
  return {
    restoreId: r.restoreId,
    ok: r.ok,
    errorCode: r.errorCode,
    message: r.message,
    lsn: r.lsn,
    commitTime: r.commitTimeMs > 0 ? timestampFromMs(r.commitTimeMs) : undefined,
    timeline: r.timeline,
    archiveMaxWal: r.archiveMaxWal,
  };
}

/** BackupResult -> proto. */
export function toBackupResult(b: BackupResult): MessageInitShape<typeof BackupResultSchema> {
  return {
    label: b.label,
    priorLabel: b.priorLabel,
    type: BackupType[b.type],
    startedAt: b.startedAtMs > 0 ? timestampFromMs(b.startedAtMs) : undefined,
    finishedAt: b.finishedAtMs > 0 ? timestampFromMs(b.finishedAtMs) : undefined,
    sizeBytes: u64(b.sizeBytes),
    repoSizeBytes: u64(b.repoSizeBytes),
    lsnStart: b.lsnStart,
    lsnStop: b.lsnStop,
    timeline: b.timeline,
    stanzaRepoSizeBytes: u64(b.stanzaRepoSizeBytes),
    archiveMinWal: b.archiveMinWal,
    archiveMaxWal: b.archiveMaxWal,
  };
}

/** Upgrade steps by their proto number (an unknown step is an unknown command). */
const SOURCE_STEPS: Partial<Record<UpgradeSource_Step, UpgradeSourceAction['step']>> = {
  [UpgradeSource_Step.INSPECT]: 'inspect',
  [UpgradeSource_Step.PREPARE]: 'prepare',
  [UpgradeSource_Step.BLOCK_WRITERS]: 'blockWriters',
  [UpgradeSource_Step.UNBLOCK_WRITERS]: 'unblockWriters',
  [UpgradeSource_Step.CLEAN]: 'clean',
};
const TARGET_STEPS: Partial<Record<UpgradeTarget_Step, UpgradeTargetAction['step']>> = {
  [UpgradeTarget_Step.SUBSCRIBE]: 'subscribe',
  [UpgradeTarget_Step.SYNC_STATE]: 'syncState',
  [UpgradeTarget_Step.CATCH_UP]: 'catchUp',
  [UpgradeTarget_Step.ABANDON]: 'abandon',
};

/** CommandOutcome -> proto CommandResult. */
export function toCommandResult(o: CommandOutcome): MessageInitShape<typeof CommandResultSchema> {
  return {
    commandId: o.commandId,
    ok: o.ok,
    errorCode: o.errorCode,
    message: o.message,
    lsn: o.lsn,
    timeline: o.timeline,
    backup: o.backup ? toBackupResult(o.backup) : undefined,
    initSql: o.initSql,
    upgradeSource: o.upgradeSource,
    upgradeTarget: o.upgradeTarget,
  };
}

function toHealth(h: InstanceHealth): MessageInitShape<typeof InstanceHealthSchema> {
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    busyBackends: h.busyBackends,
    databaseSizeBytes: BigInt(Math.max(0, Math.floor(h.databaseSizeBytes))),
    role: h.role === 'REPLICA' ? InstanceRole.REPLICA : InstanceRole.PRIMARY,
    lsn: h.lsn,
    lagBytes: BigInt(Math.max(0, Math.floor(h.lagBytes))),
    timeline: h.timeline,
    checkedAt: h.checkedAt > 0 ? timestampFromMs(h.checkedAt) : undefined,
    archive: h.archive ? toArchive(h.archive) : undefined,
    senderLostAt: h.senderLostAt ? timestampFromMs(h.senderLostAt) : undefined,
  };
}

/** InstanceStatus -> proto. */
export function toInstanceStatus(s: InstanceStatus): MessageInitShape<typeof InstanceStatusSchema> {
  return {
    tenantId: s.tenantId,
    realization: Realization[s.realization],
    state: InstanceState[s.state],
    reason: s.reason,
    address: s.address,
    port: s.port,
    runtimeId: s.runtimeId,
    pid: s.pid,
    specRevision: BigInt(s.specRevision),
    health: s.health ? toHealth(s.health) : undefined,
    recovery: s.recovery ? toRecovery(s.recovery) : undefined,
  };
}

/** What the agent says in its Hello. */
export interface HelloView {
  hostId: string;
  address: string;
  capacity: Resources;
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  instances: InstanceStatus[];
  appliedGeneration: number;
  /** The majors the host runs (undefined: the runtime cannot tell). */
  postgres?: { majors: HostMajor[]; pgbackrestVersion: string };
  /** The most instances the host can hold (the ports of its range); undefined = not said. */
  instanceSlots?: number;
}

/** HelloView -> proto Hello. */
export function toHello(h: HelloView): MessageInitShape<typeof HelloSchema> {
  return {
    hostId: h.hostId,
    address: h.address,
    capacity: h.capacity,
    labels: h.labels,
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    instances: h.instances.map(toInstanceStatus),
    appliedGeneration: BigInt(h.appliedGeneration),
    instanceSlots: h.instanceSlots ?? 0,
    postgresMajors: (h.postgres?.majors ?? []).map((m) => ({
      major: m.major,
      serverVersion: m.serverVersion,
      pgBasebackup: m.pgBasebackup,
      pgRewind: m.pgRewind,
      pgbackrest: m.pgbackrest,
      pgDump: m.pgDump ?? false,
      pgUpgrade: m.pgUpgrade ?? false,
    })),
    pgbackrestVersion: h.postgres?.pgbackrestVersion ?? '',
  };
}

/** Requested resources in use and the instance count -> proto Usage. */
export function toUsage(u: Resources & { instances: number }): MessageInitShape<typeof UsageSchema> {
  return { cpuMillis: u.cpuMillis, memoryMib: u.memoryMib, diskMib: u.diskMib, instances: u.instances };
}
