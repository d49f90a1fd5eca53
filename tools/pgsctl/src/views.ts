/**
 * The one mapper from the CoordinatorService's proto messages to plain views: bigint -> number,
 * enums -> their short names ('ACTIVE'), timestamps -> ISO strings. Tables, JSON and YAML all
 * print these views, so scripts see the same field names a person reads.
 */
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import {
  BackupStatus,
  BackupType,
  EventOutcome,
  HostState,
  InitSqlState,
  InstanceRole,
  ObjectStatus,
  PoolMode,
  Realization,
  RestoreState,
  RouteState,
  RunState,
  TenantStatus,
  type ArchiveStatus,
  type Backup,
  type BackupOverview,
  type BackupPolicy,
  type Event,
  type GetFleetStatusResponse,
  type Host,
  type InitSqlStatus,
  type TenantUpgrade,
  type InstanceHealth,
  type Placement,
  type RecoveryWindow,
  type Restore,
  type Route,
  type RouterPeer,
  type Tenant,
  type TenantDatabase,
  type TenantSpec,
  type TenantUser,
} from '@pgs/proto';

/** Resources in the API's units. */
export interface ResourcesView {
  cpuMillis: number;
  memoryMib: number;
  diskMib: number;
}

/** A tenant's desired shape. */
export interface SpecView {
  resources: ResourcesView;
  nodes: number;
  syncReplicas: number;
  version: string;
  labels: Record<string, string>;
  placement: Record<string, string>;
  externalAccess: boolean;
  connectionLimit: number;
  description: string;
  runState: string;
  /** How the routers pool its connections: NONE, SESSION or TRANSACTION (unset on the coordinator = SESSION). */
  poolMode: string;
  /** Seconds idle before the tenant is suspended; 0 = never. */
  idleSuspendSeconds: number;
  /** The tenant's own backup policy; null = the fleet defaults. */
  backup: BackupPolicyView | null;
}

/** How a tenant is backed up; 0 = the fleet default (intervals and retention in seconds). */
export interface BackupPolicyView {
  disabled: boolean;
  fullIntervalSeconds: number;
  diffIntervalSeconds: number;
  incrIntervalSeconds: number;
  retentionSeconds: number;
  archiveTimeoutSeconds: number;
}

/** WAL archiving of one primary. */
export interface ArchiveStatusView {
  enabled: boolean;
  archivedCount: number;
  lastArchivedWal: string;
  lastArchivedAt: string | null;
  /** Every commit before this time is archived (the recovery window ends here); null until known. */
  archivedThrough: string | null;
  failedCount: number;
  lastFailedWal: string;
  lastFailedAt: string | null;
  pendingSegments: number;
  pendingBytes: number;
  lagSeconds: number;
}

/** Last reported health of one instance. */
export interface HealthView {
  up: boolean;
  acceptingConnections: boolean;
  connections: number;
  databaseSizeBytes: number;
  role: string;
  lsn: string;
  lagBytes: number;
  timeline: number;
  checkedAt: string | null;
  archive: ArchiveStatusView | null;
}

/** One placement of a tenant on a host. */
export interface PlacementView {
  hostId: string;
  role: string;
  realization: string;
  reason: string;
  address: string;
  port: number;
  health: HealthView | null;
  updatedAt: string | null;
}

/** A tenant: intent and realization. */
export interface TenantView {
  id: string;
  status: string;
  statusReason: string;
  revision: number;
  spec: SpecView;
  placements: PlacementView[];
  createdAt: string | null;
  updatedAt: string | null;
  /** Its init scripts and how far they ran; null when created without any. */
  initSql: InitSqlView | null;
  /** When a SUSPENDED tenant was suspended (ISO time); null for any other status. */
  suspendedAt: string | null;
  /** Its major upgrade in flight or kept for a rollback; null when none. */
  upgrade: UpgradeView | null;
}

/** A major upgrade: phase creating, copying, switching (clients held) or kept (old instance kept for a rollback). */
export interface UpgradeView {
  phase: string;
  fromMajor: number;
  toMajor: number;
  fromHostId: string;
  toHostId: string;
  reason: string;
  copyMs: number;
  switchMs: number;
  keepUntil: string | null;
  startedAt: string | null;
}

/** A tenant's init scripts: HELD, PENDING, RUNNING, SUCCEEDED or FAILED. */
export interface InitSqlView {
  state: string;
  scripts: string[];
  applied: number;
  failedScript: string;
  error: string;
  attempt: number;
  updatedAt: string | null;
}

/** A host and its load. */
export interface HostView {
  id: string;
  address: string;
  state: string;
  cordoned: boolean;
  draining: boolean;
  capacity: ResourcesView;
  allocated: ResourcesView & { instances: number };
  labels: Record<string, string>;
  runtime: string;
  agentVersion: string;
  /** Ready spare data directories (fast creates); null when the agent reports none. */
  readySpares: number | null;
  /** PostgreSQL majors the host runs, newest first; `+r` = it can clone replicas of it (pg_basebackup). */
  postgres: string[];
  /** A drain's progress (instances in all, moved off, moving, blocked); null when not draining. */
  drain: { total: number; moved: number; moving: number; blocked: number; blockedTenants: { tenantId: string; reason: string }[] } | null;
  lastHeartbeatAt: string | null;
  registeredAt: string | null;
}

/** Where a tenant's primary is, as the routers see it. */
export interface RouteView {
  tenantId: string;
  hostId: string;
  address: string;
  port: number;
  state: string;
  reason: string;
  externalAccess: boolean;
  connectionLimit: number;
  revision: number;
}

/** A router known to the coordinator. */
export interface RouterView {
  routerId: string;
  cancelAddress: string;
}

/** One audit/event log entry. */
export interface EventView {
  id: number;
  time: string | null;
  principal: string;
  action: string;
  tenantId: string;
  hostId: string;
  outcome: string;
  message: string;
  details: Record<string, string>;
}

/** A role inside a tenant. */
export interface UserView {
  tenantId: string;
  name: string;
  owner: boolean;
  status: string;
  statusReason: string;
  description: string;
  createdAt: string | null;
}

/** A database inside a tenant. */
export interface DatabaseView {
  tenantId: string;
  name: string;
  owner: string;
  status: string;
  statusReason: string;
  description: string;
  createdAt: string | null;
}

/** The fleet summary. */
export interface FleetStatusView {
  hostsByState: Record<string, number>;
  tenantsByStatus: Record<string, number>;
  routersConnected: number;
  agentsConnected: number;
  routeRevision: number;
  problems: string[];
  allocated: ResourcesView & { instances: number };
  capacity: ResourcesView;
}

/** One base backup of a tenant. */
export interface BackupView {
  id: string;
  tenantId: string;
  type: string;
  status: string;
  reason: string;
  hostId: string;
  label: string;
  startedAt: string | null;
  finishedAt: string | null;
  sizeBytes: number;
  repoSizeBytes: number;
  lsnStart: string;
  lsnStop: string;
  timeline: number;
  trigger: string;
  stanza: string;
  priorLabel: string;
}

/** The times a tenant can be restored to (the views hold null instead when it has no restorable backup). */
export interface RecoveryWindowView {
  earliest: string | null;
  latest: string | null;
}

/** `backup list`: the backups, newest first, and the recovery window. */
export interface BackupListView {
  window: RecoveryWindowView | null;
  backups: BackupView[];
}

/** A tenant's backups at a glance (`tenant get`). */
export interface BackupOverviewView {
  policy: BackupPolicyView | null;
  window: RecoveryWindowView | null;
  lastGood: BackupView | null;
  running: BackupView | null;
  archive: ArchiveStatusView | null;
  problems: string[];
}

/** A restore of a tenant's backup into a tenant. */
export interface RestoreView {
  id: string;
  sourceTenantId: string;
  targetTenantId: string;
  state: string;
  reason: string;
  toTime: string | null;
  toBackupId: string;
  latest: boolean;
  inPlace: boolean;
  hostId: string;
  startedAt: string | null;
  finishedAt: string | null;
  recoveredLsn: string;
  recoveredTime: string | null;
  missingWalBytes: number;
  timeline: number;
}

/** The short name of an enum value: TenantStatus.ACTIVE -> 'ACTIVE', 0 -> 'UNSPECIFIED'. */
function name(enumObject: Record<number, string>, value: number): string {
  return enumObject[value] ?? `UNKNOWN_${value}`;
}

/** Parses a short enum name given on the command line; undefined when it is not one. */
export function enumValue<E extends Record<string, string | number>>(enumObject: E, text: string): number | undefined {
  const value = enumObject[text.toUpperCase().replaceAll('-', '_') as keyof E];
  return typeof value === 'number' && value !== 0 ? value : undefined;
}

/** The names an enum accepts on the command line (without UNSPECIFIED). */
export function enumNames(enumObject: Record<string, string | number>): string[] {
  return Object.keys(enumObject).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');
}

function time(ts: Timestamp | undefined): string | null {
  return ts === undefined ? null : timestampDate(ts).toISOString();
}

function resources(r: { cpuMillis: number; memoryMib: number; diskMib: number } | undefined): ResourcesView {
  return { cpuMillis: r?.cpuMillis ?? 0, memoryMib: r?.memoryMib ?? 0, diskMib: r?.diskMib ?? 0 };
}

function usage(u: { cpuMillis: number; memoryMib: number; diskMib: number; instances: number } | undefined): ResourcesView & { instances: number } {
  return { ...resources(u), instances: u?.instances ?? 0 };
}

/** TenantSpec -> SpecView. */
export function specView(spec: TenantSpec | undefined): SpecView {
  return {
    resources: resources(spec?.resources),
    nodes: spec?.nodes ?? 0,
    syncReplicas: spec?.syncReplicas ?? 0,
    version: spec?.version ?? '',
    labels: { ...(spec?.labels ?? {}) },
    placement: { ...(spec?.placement ?? {}) },
    externalAccess: spec?.externalAccess ?? false,
    connectionLimit: spec?.connectionLimit ?? 0,
    description: spec?.description ?? '',
    runState: name(RunState, spec?.runState ?? RunState.UNSPECIFIED),
    poolMode: spec === undefined || spec.poolMode === PoolMode.UNSPECIFIED ? 'SESSION' : name(PoolMode, spec.poolMode),
    idleSuspendSeconds: spec?.idleSuspendSeconds ?? 0,
    backup: spec?.backup === undefined ? null : backupPolicyView(spec.backup),
  };
}

/** BackupPolicy -> BackupPolicyView. */
export function backupPolicyView(p: BackupPolicy): BackupPolicyView {
  return {
    disabled: p.disabled,
    fullIntervalSeconds: Number(p.fullIntervalSeconds),
    diffIntervalSeconds: Number(p.diffIntervalSeconds),
    incrIntervalSeconds: Number(p.incrIntervalSeconds),
    retentionSeconds: Number(p.retentionSeconds),
    archiveTimeoutSeconds: p.archiveTimeoutSeconds,
  };
}

/** ArchiveStatus -> ArchiveStatusView. */
export function archiveStatusView(a: ArchiveStatus): ArchiveStatusView {
  return {
    enabled: a.enabled,
    archivedCount: Number(a.archivedCount),
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedAt: time(a.lastArchivedAt),
    archivedThrough: time(a.archivedThrough),
    failedCount: Number(a.failedCount),
    lastFailedWal: a.lastFailedWal,
    lastFailedAt: time(a.lastFailedAt),
    pendingSegments: a.pendingSegments,
    pendingBytes: Number(a.pendingBytes),
    lagSeconds: a.lagSeconds,
  };
}

/** Backup -> BackupView. */
export function backupView(b: Backup): BackupView {
  return {
    id: b.id,
    tenantId: b.tenantId,
    type: name(BackupType, b.type),
    status: name(BackupStatus, b.status),
    reason: b.reason,
    hostId: b.hostId,
    label: b.label,
    startedAt: time(b.startedAt),
    finishedAt: time(b.finishedAt),
    sizeBytes: Number(b.sizeBytes),
    repoSizeBytes: Number(b.repoSizeBytes),
    lsnStart: b.lsnStart,
    lsnStop: b.lsnStop,
    timeline: b.timeline,
    trigger: b.trigger,
    stanza: b.stanza,
    priorLabel: b.priorLabel,
  };
}

/** RecoveryWindow -> RecoveryWindowView; null when unset or empty (no restorable backup). */
export function recoveryWindowView(w: RecoveryWindow | undefined): RecoveryWindowView | null {
  if (w === undefined || (w.earliest === undefined && w.latest === undefined)) return null;
  return { earliest: time(w.earliest), latest: time(w.latest) };
}

/** BackupOverview -> BackupOverviewView. */
export function backupOverviewView(o: BackupOverview): BackupOverviewView {
  return {
    policy: o.policy === undefined ? null : backupPolicyView(o.policy),
    window: recoveryWindowView(o.window),
    lastGood: o.lastGood === undefined ? null : backupView(o.lastGood),
    running: o.running === undefined ? null : backupView(o.running),
    archive: o.archive === undefined ? null : archiveStatusView(o.archive),
    problems: [...o.problems],
  };
}

/** Restore -> RestoreView. */
export function restoreView(r: Restore): RestoreView {
  return {
    id: r.id,
    sourceTenantId: r.sourceTenantId,
    targetTenantId: r.targetTenantId,
    state: name(RestoreState, r.state),
    reason: r.reason,
    toTime: time(r.toTime),
    toBackupId: r.toBackupId,
    latest: r.latest,
    inPlace: r.inPlace,
    hostId: r.hostId,
    startedAt: time(r.startedAt),
    finishedAt: time(r.finishedAt),
    recoveredLsn: r.recoveredLsn,
    recoveredTime: time(r.recoveredTime),
    missingWalBytes: Number(r.missingWalBytes),
    timeline: r.timeline,
  };
}

function healthView(h: InstanceHealth | undefined): HealthView | null {
  if (h === undefined) return null;
  return {
    up: h.up,
    acceptingConnections: h.acceptingConnections,
    connections: h.connections,
    databaseSizeBytes: Number(h.databaseSizeBytes),
    role: name(InstanceRole, h.role),
    lsn: h.lsn,
    lagBytes: Number(h.lagBytes),
    timeline: h.timeline,
    checkedAt: time(h.checkedAt),
    archive: h.archive === undefined ? null : archiveStatusView(h.archive),
  };
}

/** Placement -> PlacementView. */
export function placementView(p: Placement): PlacementView {
  return {
    hostId: p.hostId,
    role: name(InstanceRole, p.role),
    realization: name(Realization, p.realization),
    reason: p.reason,
    address: p.address,
    port: p.port,
    health: healthView(p.health),
    updatedAt: time(p.updatedAt),
  };
}

/** Tenant -> TenantView. */
export function tenantView(t: Tenant): TenantView {
  return {
    id: t.id,
    status: name(TenantStatus, t.status),
    statusReason: t.statusReason,
    revision: Number(t.revision),
    spec: specView(t.spec),
    placements: t.placements.map(placementView),
    createdAt: time(t.createdAt),
    updatedAt: time(t.updatedAt),
    initSql: t.initSql ? initSqlView(t.initSql) : null,
    suspendedAt: time(t.suspendedAt),
    upgrade: t.upgrade ? upgradeView(t.upgrade) : null,
  };
}

/** TenantUpgrade -> UpgradeView. */
export function upgradeView(u: TenantUpgrade): UpgradeView {
  return {
    phase: u.phase,
    fromMajor: u.fromMajor,
    toMajor: u.toMajor,
    fromHostId: u.fromHostId,
    toHostId: u.toHostId,
    reason: u.reason,
    copyMs: Number(u.copyMs),
    switchMs: Number(u.switchMs),
    keepUntil: time(u.keepUntil),
    startedAt: time(u.startedAt),
  };
}

/** InitSqlStatus -> InitSqlView. */
export function initSqlView(s: InitSqlStatus): InitSqlView {
  return {
    state: name(InitSqlState, s.state),
    scripts: [...s.scripts],
    applied: s.applied,
    failedScript: s.failedScript,
    error: s.error,
    attempt: s.attempt,
    updatedAt: time(s.updatedAt),
  };
}

/** Host -> HostView. */
export function hostView(h: Host): HostView {
  return {
    id: h.id,
    address: h.address,
    state: name(HostState, h.state),
    cordoned: h.cordoned,
    draining: h.draining,
    capacity: resources(h.capacity),
    allocated: usage(h.allocated),
    labels: { ...h.labels },
    runtime: h.runtime,
    agentVersion: h.agentVersion,
    readySpares: h.readySpares ?? null,
    postgres: h.postgresMajors.map((m) => `${m.major}${m.pgBasebackup ? '+r' : ''}`),
    drain:
      h.draining && h.drainTotal > 0
        ? {
            total: h.drainTotal,
            moved: h.drainMoved,
            moving: h.drainMoving,
            blocked: h.drainBlocked,
            blockedTenants: h.drainBlockedTenants.map((b) => ({ tenantId: b.tenantId, reason: b.reason })),
          }
        : null,
    lastHeartbeatAt: time(h.lastHeartbeatAt),
    registeredAt: time(h.registeredAt),
  };
}

/** Route -> RouteView. */
export function routeView(r: Route): RouteView {
  return {
    tenantId: r.tenantId,
    hostId: r.hostId,
    address: r.address,
    port: r.port,
    state: name(RouteState, r.state),
    reason: r.reason,
    externalAccess: r.externalAccess,
    connectionLimit: r.connectionLimit,
    revision: Number(r.revision),
  };
}

/** RouterPeer -> RouterView. */
export function routerView(r: RouterPeer): RouterView {
  return { routerId: r.routerId, cancelAddress: r.cancelAddress };
}

/** Event -> EventView. */
export function eventView(e: Event): EventView {
  return {
    id: Number(e.id),
    time: time(e.time),
    principal: e.principal,
    action: e.action,
    tenantId: e.tenantId,
    hostId: e.hostId,
    outcome: name(EventOutcome, e.outcome),
    message: e.message,
    details: { ...e.details },
  };
}

/** TenantUser -> UserView. */
export function userView(u: TenantUser): UserView {
  return {
    tenantId: u.tenantId,
    name: u.name,
    owner: u.owner,
    status: name(ObjectStatus, u.status),
    statusReason: u.statusReason,
    description: u.description,
    createdAt: time(u.createdAt),
  };
}

/** TenantDatabase -> DatabaseView. */
export function databaseView(d: TenantDatabase): DatabaseView {
  return {
    tenantId: d.tenantId,
    name: d.name,
    owner: d.owner,
    status: name(ObjectStatus, d.status),
    statusReason: d.statusReason,
    description: d.description,
    createdAt: time(d.createdAt),
  };
}

/** GetFleetStatusResponse -> FleetStatusView. */
export function fleetStatusView(s: GetFleetStatusResponse): FleetStatusView {
  return {
    hostsByState: { ...s.hostsByState },
    tenantsByStatus: { ...s.tenantsByStatus },
    routersConnected: s.routersConnected,
    agentsConnected: s.agentsConnected,
    routeRevision: Number(s.routeRevision),
    problems: [...s.problems],
    allocated: usage(s.allocated),
    capacity: resources(s.capacity),
  };
}

/** When a SUSPENDED tenant was suspended (the coordinator's suspended_at), undefined otherwise. */
export function suspendedSince(t: { status: string; suspendedAt: string | null }): string | undefined {
  return t.status === 'SUSPENDED' && t.suspendedAt !== null ? t.suspendedAt : undefined;
}
