/**
 * The SQLite store's tables: one prepared statement per query, synchronous (better-sqlite3 is).
 * Only SqliteStore calls these, always inside the transaction it holds open; the changes a write
 * makes (route changes, events, placement moves) go to the `changes` sink of that transaction.
 */
import type Database from 'better-sqlite3';
import { StoreNotFoundError } from '../domain/errors.js';
import type { InitSqlRecord, TenantSpec } from '@pgs/tenancy';
import type {
  BackupRecord,
  DatabaseRecord,
  DesiredSent,
  EventRecord,
  HostRecord,
  NewEvent,
  OperationRecord,
  PlacementRecord,
  RouteChange,
  RestoreRecord,
  RouteRecord,
  StanzaRecord,
  TenantRecord,
  UpgradeRecord,
  MoveRecord,
  UserRecord,
} from '../domain/model.js';
import type { EventFilter, HostAllocation, IdempotencyRecord, TenantFilter, TenantPage, TenantSecretRecord } from './contract.js';
import { CommittedHosts } from './committed-hosts.js';
import { StatementCache } from './statement-cache.js';

type Row = Record<string, unknown>;

/** The ids of a batch read: bound as one JSON array (any number of them, one statement). */
const IDS = 'SELECT value FROM json_each(?)';

const bool = (v: unknown): boolean => v === 1 || v === true;
const int = (b: boolean): number => (b ? 1 : 0);

function hostFromRow(r: Row): HostRecord {
  return {
    id: r.id as string,
    address: r.address as string,
    state: r.state as HostRecord['state'],
    cordoned: bool(r.cordoned),
    draining: bool(r.draining),
    capacity: { cpuMillis: r.cpu_millis as number, memoryMib: r.memory_mib as number, diskMib: r.disk_mib as number },
    labels: JSON.parse(r.labels as string) as Record<string, string>,
    runtime: r.runtime as string,
    agentVersion: r.agent_version as string,
    lastHeartbeatAt: r.last_heartbeat_at as number,
    registeredAt: r.registered_at as number,
    stateChangedAt: r.state_changed_at as number,
    generation: r.generation as number,
  };
}

function tenantFromRow(r: Row): TenantRecord {
  return {
    id: r.id as string,
    spec: JSON.parse(r.spec as string) as TenantSpec,
    revision: r.revision as number,
    instanceRevision: r.instance_revision as number,
    status: r.status as TenantRecord['status'],
    statusReason: r.status_reason as string,
    deleting: bool(r.deleting),
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

function placementFromRow(r: Row): PlacementRecord {
  return {
    tenantId: r.tenant_id as string,
    hostId: r.host_id as string,
    role: r.role as PlacementRecord['role'],
    realization: r.realization as PlacementRecord['realization'],
    reason: r.reason as string,
    instanceState: r.instance_state as string,
    address: r.address as string,
    port: r.port as number,
    realizedRevision: r.realized_revision as number,
    realizedOnce: bool(r.realized_once),
    failures: r.failures as number,
    nextRetryAt: r.next_retry_at as number,
    updatedAt: r.updated_at as number,
  };
}

function userFromRow(r: Row): UserRecord {
  return {
    tenantId: r.tenant_id as string,
    name: r.name as string,
    description: r.description as string,
    scramVerifier: r.scram_verifier as string,
    owner: bool(r.owner),
    status: r.status as UserRecord['status'],
    statusReason: r.status_reason as string,
    revision: r.revision as number,
    createdAt: r.created_at as number,
  };
}

function databaseFromRow(r: Row): DatabaseRecord {
  return {
    tenantId: r.tenant_id as string,
    name: r.name as string,
    owner: r.owner as string,
    description: r.description as string,
    status: r.status as DatabaseRecord['status'],
    statusReason: r.status_reason as string,
    revision: r.revision as number,
    createdAt: r.created_at as number,
  };
}

function routeFromRow(r: Row): RouteRecord {
  return {
    tenantId: r.tenant_id as string,
    hostId: r.host_id as string,
    address: r.address as string,
    port: r.port as number,
    state: r.state as RouteRecord['state'],
    reason: r.reason as string,
    externalAccess: bool(r.external_access),
    connectionLimit: r.connection_limit as number,
    revision: r.revision as number,
    poolMode: r.pool_mode as RouteRecord['poolMode'],
    users: JSON.parse(r.users as string) as RouteRecord['users'],
  };
}

function eventFromRow(r: Row): EventRecord {
  return {
    id: r.id as number,
    time: r.time as number,
    principal: r.principal as string,
    action: r.action as string,
    tenantId: r.tenant_id as string,
    hostId: r.host_id as string,
    outcome: r.outcome as EventRecord['outcome'],
    message: r.message as string,
    details: JSON.parse(r.details as string) as Record<string, string>,
  };
}

function initSqlFromRow(r: Row): InitSqlRecord {
  return {
    tenantId: r.tenant_id as string,
    scripts: JSON.parse(r.scripts as string) as InitSqlRecord['scripts'],
    state: r.state as InitSqlRecord['state'],
    applied: r.applied as number,
    failedScript: r.failed_script as string,
    error: r.error as string,
    attempt: r.attempt as number,
    afterRevision: r.after_revision as number,
    updatedAt: r.updated_at as number,
  };
}

function stanzaFromRow(r: Row): StanzaRecord {
  return {
    tenantId: r.tenant_id as string,
    stanza: r.stanza as string,
    // The column keeps its first name; it has held the archived-through time since that replaced it.
    archivedThrough: r.last_archived_at as number,
    lastArchivedWal: r.last_archived_wal as string,
    createdAt: r.created_at as number,
  };
}

function backupFromRow(r: Row): BackupRecord {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    type: r.type as BackupRecord['type'],
    status: r.status as BackupRecord['status'],
    reason: r.reason as string,
    hostId: r.host_id as string,
    label: r.label as string,
    priorLabel: r.prior_label as string,
    startedAt: r.started_at as number,
    finishedAt: r.finished_at as number,
    sizeBytes: r.size_bytes as number,
    repoSizeBytes: r.repo_size_bytes as number,
    stanzaRepoSizeBytes: r.stanza_repo_size_bytes as number,
    lsnStart: r.lsn_start as string,
    lsnStop: r.lsn_stop as string,
    timeline: r.timeline as number,
    trigger: r.trigger as string,
    stanza: r.stanza as string,
  };
}

function restoreFromRow(r: Row): RestoreRecord {
  return {
    id: r.id as string,
    kind: r.kind as RestoreRecord['kind'],
    sourceTenantId: r.source_tenant_id as string,
    targetTenantId: r.target_tenant_id as string,
    state: r.state as RestoreRecord['state'],
    phase: r.phase as RestoreRecord['phase'],
    reason: r.reason as string,
    sourceStanza: r.source_stanza as string,
    toTime: r.to_time as number,
    toBackupId: r.to_backup_id as string,
    backupLabel: r.backup_label as string,
    latest: bool(r.latest),
    hostId: r.host_id as string,
    oldHosts: JSON.parse(r.old_hosts as string) as string[],
    oldLsn: r.old_lsn as string,
    startedAt: r.started_at as number,
    finishedAt: r.finished_at as number,
    recoveredLsn: r.recovered_lsn as string,
    recoveredTime: r.recovered_time as number,
    missingWalBytes: r.missing_wal_bytes as number,
    timeline: r.timeline as number,
    createdBy: r.created_by as string,
  };
}

const BACKUP_COLUMNS =
  'id, tenant_id, type, status, reason, host_id, label, prior_label, started_at, finished_at, size_bytes, repo_size_bytes, stanza_repo_size_bytes, lsn_start, lsn_stop, timeline, trigger, stanza';
const BACKUP_VALUES =
  '@id, @tenantId, @type, @status, @reason, @hostId, @label, @priorLabel, @startedAt, @finishedAt, @sizeBytes, @repoSizeBytes, @stanzaRepoSizeBytes, @lsnStart, @lsnStop, @timeline, @trigger, @stanza';
const RESTORE_COLUMNS =
  'id, kind, source_tenant_id, target_tenant_id, state, phase, reason, source_stanza, to_time, to_backup_id, backup_label, latest, host_id, old_hosts, old_lsn, started_at, finished_at, recovered_lsn, recovered_time, missing_wal_bytes, timeline, created_by';
const RESTORE_VALUES =
  '@id, @kind, @sourceTenantId, @targetTenantId, @state, @phase, @reason, @sourceStanza, @toTime, @toBackupId, @backupLabel, @latest, @hostId, @oldHosts, @oldLsn, @startedAt, @finishedAt, @recoveredLsn, @recoveredTime, @missingWalBytes, @timeline, @createdBy';

const OPERATION_COLUMNS =
  'tenant_id, kind, cause, phase, failed_at, started_at, old_primary, to_host_id, fenced_at, fence_sent_at, fence_acked_at, gone_at, final_lsn, candidate, chosen_at, promote_sent_at, deadline, updated_at';
const OPERATION_VALUES =
  '@tenantId, @kind, @cause, @phase, @failedAt, @startedAt, @oldPrimary, @toHostId, @fencedAt, @fenceSentAt, @fenceAckedAt, @goneAt, @finalLsn, @candidate, @chosenAt, @promoteSentAt, @deadline, @updatedAt';

function operationFromRow(r: Row): OperationRecord {
  return {
    tenantId: r.tenant_id as string,
    kind: r.kind as OperationRecord['kind'],
    cause: r.cause as string,
    phase: r.phase as OperationRecord['phase'],
    failedAt: r.failed_at as number,
    startedAt: r.started_at as number,
    oldPrimary: r.old_primary as string,
    toHostId: r.to_host_id as string,
    fencedAt: r.fenced_at as number,
    fenceSentAt: r.fence_sent_at as number,
    fenceAckedAt: r.fence_acked_at as number,
    goneAt: r.gone_at as number,
    finalLsn: r.final_lsn as string,
    candidate: r.candidate as string,
    chosenAt: r.chosen_at as number,
    promoteSentAt: r.promote_sent_at as number,
    deadline: r.deadline as number,
    updatedAt: r.updated_at as number,
  };
}

function sameRoute(a: Omit<RouteRecord, 'revision'>, b: Omit<RouteRecord, 'revision'>): boolean {
  return (
    a.hostId === b.hostId &&
    a.address === b.address &&
    a.port === b.port &&
    a.state === b.state &&
    a.reason === b.reason &&
    a.externalAccess === b.externalAccess &&
    a.connectionLimit === b.connectionLimit &&
    a.poolMode === b.poolMode &&
    a.users.length === b.users.length &&
    a.users.every((u, i) => u.name === b.users[i]!.name && u.scramVerifier === b.users[i]!.scramVerifier)
  );
}

/** The conditions of a tenant filter, as SQL over the tenants table with positional parameters. */
/**
 * The tenants the failover watch and the idle-suspend check read on every tick. Each WHERE repeats
 * its partial index's (tenants_replicated, tenants_idle_suspend) word for word: SQLite uses such
 * an index only then, and without it each tick scans every tenant's spec.
 */
export const REPLICATED_TENANTS_SQL = `SELECT * FROM tenants WHERE json_extract(spec, '$.nodes') >= 2 ORDER BY id`;
// INDEXED BY: with the status term beside it the planner would take tenants_status (every ACTIVE tenant) instead.
/** Failed placements due for a retry, by the partial index placements_retry_due (never a scan of every placement). */
export const RETRIES_DUE_SQL = `SELECT * FROM placements WHERE realization = 'FAILED' AND next_retry_at > 0 AND next_retry_at <= ?`;
export const IDLE_SUSPEND_TENANTS_SQL = `SELECT * FROM tenants INDEXED BY tenants_idle_suspend WHERE json_extract(spec, '$.idleSuspendSeconds') > 0 AND status = 'ACTIVE' ORDER BY id`;

function tenantWhere(filter: TenantFilter): { clauses: string[]; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (filter.status !== undefined) {
    clauses.push('status = ?'); // the status index
    params.push(filter.status);
  }
  if (filter.hostId !== undefined) {
    clauses.push('id IN (SELECT tenant_id FROM placements WHERE host_id = ?)'); // the placements_host index
    params.push(filter.hostId);
  }
  if (filter.ids !== undefined) {
    clauses.push('id IN (SELECT value FROM json_each(?))');
    params.push(JSON.stringify(filter.ids));
  }
  if (filter.reasonPrefix !== undefined) {
    clauses.push('substr(status_reason, 1, ?) = ?');
    params.push(filter.reasonPrefix.length, filter.reasonPrefix);
  }
  // Label keys are checked by the caller (validateLabels): a key is safe inside a quoted JSON path.
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    clauses.push('json_extract(spec, ?) = ?');
    params.push(`$.labels."${key}"`, value);
  }
  return { clauses, params };
}

function whereSql(where: { clauses: string[] }): string {
  return where.clauses.length === 0 ? '' : ` WHERE ${where.clauses.join(' AND ')}`;
}

/** Where the tables report what a write changed (the open transaction's collector). */
export interface ChangeSink {
  route(change: RouteChange): void;
  event(event: EventRecord): void;
  /** A placement on the host was inserted or deleted; `freed` when room may have been freed. */
  placement(hostId: string | undefined, freed: boolean): void;
}

const NO_SINK: ChangeSink = { route: () => undefined, event: () => undefined, placement: () => undefined };

/** The statements of the SQLite store. */
export class SqliteTables {
  /** The open transaction's collector; SqliteStore sets it for each transaction. */
  changes: ChangeSink = NO_SINK;
  private readonly db: Database.Database;
  private readonly routeHistory: number;
  private readonly stmt: Record<string, Database.Statement>;
  /** Statements for SQL built from a filter's shape (a handful of shapes, each prepared once). */
  private readonly dynamic: StatementCache;
  /** The hosts' committed rows, in memory (the only writer of a SQLite store is this process). */
  private readonly committedHosts = new CommittedHosts();

  constructor(db: Database.Database, routeHistory: number) {
    this.db = db;
    this.routeHistory = routeHistory;
    this.dynamic = new StatementCache(db);
    const p = (sql: string): Database.Statement => db.prepare(sql);
    this.stmt = {
      getTenant: p('SELECT * FROM tenants WHERE id = ?'),
      // Batch reads: the ids travel as one JSON array, each found by its key's index (one statement
      // for a batch instead of one per id: a statement's round into the driver costs more than its lookup).
      tenantsOfIds: p(`SELECT * FROM tenants WHERE id IN (${IDS}) ORDER BY id`),
      placementsOfTenants: p(`SELECT * FROM placements WHERE tenant_id IN (${IDS}) ORDER BY tenant_id, role, host_id`),
      usersOfTenants: p(`SELECT * FROM users WHERE tenant_id IN (${IDS}) ORDER BY tenant_id, owner DESC, name`),
      databasesOfTenants: p(`SELECT * FROM databases WHERE tenant_id IN (${IDS}) ORDER BY tenant_id, name`),
      hostsOfIds: p(`SELECT * FROM hosts WHERE id IN (${IDS}) ORDER BY id`),
      routesOfTenants: p(`SELECT * FROM routes WHERE tenant_id IN (${IDS}) ORDER BY tenant_id`),
      upgradesOfTenants: p(`SELECT record FROM upgrades WHERE tenant_id IN (${IDS}) ORDER BY tenant_id`),
      stanzasOfTenants: p(`SELECT * FROM tenant_stanzas WHERE tenant_id IN (${IDS}) ORDER BY tenant_id`),
      restoresOfTargets: p(`SELECT * FROM restores WHERE target_tenant_id IN (${IDS}) ORDER BY target_tenant_id, started_at, id`),
      getTenantSecret: p('SELECT * FROM tenant_secrets WHERE tenant_id = ? AND name = ?'),
      insertTenantSecret: p('INSERT OR IGNORE INTO tenant_secrets (tenant_id, name, sealed, verifier, created_at) VALUES (?, ?, ?, ?, ?)'),
      // Counted on the status index alone, no row read or parsed.
      tenantsByStatus: p('SELECT status, COUNT(*) AS n FROM tenants GROUP BY status'),
      // The backlog one page at a time, so a scheduler slice never reads the whole tenant table.
      waitingTenants: p(
        `SELECT * FROM tenants t WHERE t.status = 'NEW' AND t.deleting = 0 AND (t.created_at, t.id) > (@createdAt, @id)
           AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.tenant_id = t.id) ORDER BY t.created_at, t.id LIMIT @limit`,
      ),
      retriesDue: p(RETRIES_DUE_SQL),
      // Filtered in SQL: failover looks at these every tick, and parsing every spec in JavaScript is slow.
      replicatedTenants: p(REPLICATED_TENANTS_SQL),
      idleSuspendTenants: p(IDLE_SUSPEND_TENANTS_SQL),
      // Summed in SQL: parsing every tenant's spec in JavaScript costs seconds at 100,000 tenants.
      // A suspended tenant keeps its disk but gives its CPU and memory back for over-commit. A major
      // upgrade's other instance counts on its host too while both instances exist.
      hostAllocations: p(
        `SELECT p.host_id AS host_id, COUNT(*) AS instances,
           SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE json_extract(t.spec, '$.resources.cpuMillis') END) AS cpu,
           SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE json_extract(t.spec, '$.resources.memoryMib') END) AS memory, SUM(json_extract(t.spec, '$.resources.diskMib')) AS disk
         FROM (SELECT tenant_id, host_id FROM placements UNION ALL SELECT tenant_id, other_host_id FROM upgrades) p JOIN tenants t ON t.id = p.tenant_id GROUP BY p.host_id`,
      ),
      // By the index placements_host: only that host's placements are read.
      hostAllocation: p(
        `SELECT COUNT(*) AS instances,
           SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE json_extract(t.spec, '$.resources.cpuMillis') END) AS cpu,
           SUM(CASE WHEN t.status = 'SUSPENDED' THEN 0 ELSE json_extract(t.spec, '$.resources.memoryMib') END) AS memory, SUM(json_extract(t.spec, '$.resources.diskMib')) AS disk
         FROM (SELECT tenant_id FROM placements WHERE host_id = @hostId UNION ALL SELECT tenant_id FROM upgrades WHERE other_host_id = @hostId) p
         JOIN tenants t ON t.id = p.tenant_id`,
      ),
      // By the partial index placements_creating: only placements never realized are read.
      hostsCreating: p('SELECT host_id, COUNT(*) AS creating FROM placements WHERE realized_once = 0 GROUP BY host_id'),
      insertTenant: p(
        'INSERT INTO tenants (id, spec, revision, instance_revision, status, status_reason, deleting, created_at, updated_at) VALUES (@id, @spec, @revision, @instanceRevision, @status, @statusReason, @deleting, @createdAt, @updatedAt)',
      ),
      updateTenant: p(
        'UPDATE tenants SET spec = @spec, revision = @revision, instance_revision = @instanceRevision, status = @status, status_reason = @statusReason, deleting = @deleting, updated_at = @updatedAt WHERE id = @id',
      ),
      deleteTenant: p('DELETE FROM tenants WHERE id = ?'),
      placementsAll: p('SELECT * FROM placements ORDER BY tenant_id, role, host_id'),
      placementsOfTenant: p('SELECT * FROM placements WHERE tenant_id = ? ORDER BY role, host_id'),
      placementsOfHost: p('SELECT * FROM placements WHERE host_id = ? ORDER BY tenant_id'),
      insertPlacement: p(
        `INSERT INTO placements (tenant_id, host_id, role, realization, reason, instance_state, address, port, realized_revision, realized_once, failures, next_retry_at, updated_at)
         VALUES (@tenantId, @hostId, @role, @realization, @reason, @instanceState, @address, @port, @realizedRevision, @realizedOnce, @failures, @nextRetryAt, @updatedAt)`,
      ),
      updatePlacement: p(
        `UPDATE placements SET role = @role, realization = @realization, reason = @reason, instance_state = @instanceState, address = @address, port = @port,
         realized_revision = @realizedRevision, realized_once = @realizedOnce, failures = @failures, next_retry_at = @nextRetryAt, updated_at = @updatedAt
         WHERE tenant_id = @tenantId AND host_id = @hostId`,
      ),
      deletePlacement: p('DELETE FROM placements WHERE tenant_id = ? AND host_id = ?'),
      getUser: p('SELECT * FROM users WHERE tenant_id = ? AND name = ?'),
      listUsers: p('SELECT * FROM users WHERE tenant_id = ? ORDER BY owner DESC, name'),
      insertUser: p(
        'INSERT INTO users (tenant_id, name, description, scram_verifier, owner, status, status_reason, revision, created_at) VALUES (@tenantId, @name, @description, @scramVerifier, @owner, @status, @statusReason, @revision, @createdAt)',
      ),
      updateUser: p(
        'UPDATE users SET description = @description, scram_verifier = @scramVerifier, owner = @owner, status = @status, status_reason = @statusReason, revision = @revision WHERE tenant_id = @tenantId AND name = @name',
      ),
      deleteUser: p('DELETE FROM users WHERE tenant_id = ? AND name = ?'),
      getDatabase: p('SELECT * FROM databases WHERE tenant_id = ? AND name = ?'),
      listDatabases: p('SELECT * FROM databases WHERE tenant_id = ? ORDER BY name'),
      insertDatabase: p(
        'INSERT INTO databases (tenant_id, name, owner, description, status, status_reason, revision, created_at) VALUES (@tenantId, @name, @owner, @description, @status, @statusReason, @revision, @createdAt)',
      ),
      updateDatabase: p(
        'UPDATE databases SET owner = @owner, description = @description, status = @status, status_reason = @statusReason, revision = @revision WHERE tenant_id = @tenantId AND name = @name',
      ),
      deleteDatabase: p('DELETE FROM databases WHERE tenant_id = ? AND name = ?'),
      getHost: p('SELECT * FROM hosts WHERE id = ?'),
      listHosts: p('SELECT * FROM hosts ORDER BY id'),
      putHost: p(
        `INSERT INTO hosts (id, address, state, cordoned, draining, cpu_millis, memory_mib, disk_mib, labels, runtime, agent_version, last_heartbeat_at, registered_at, state_changed_at, generation)
         VALUES (@id, @address, @state, @cordoned, @draining, @cpuMillis, @memoryMib, @diskMib, @labels, @runtime, @agentVersion, @lastHeartbeatAt, @registeredAt, @stateChangedAt, @generation)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, state = excluded.state, cordoned = excluded.cordoned, draining = excluded.draining,
           cpu_millis = excluded.cpu_millis, memory_mib = excluded.memory_mib, disk_mib = excluded.disk_mib, labels = excluded.labels, runtime = excluded.runtime,
           agent_version = excluded.agent_version, last_heartbeat_at = excluded.last_heartbeat_at, registered_at = excluded.registered_at,
           state_changed_at = excluded.state_changed_at, generation = MAX(hosts.generation, excluded.generation)`,
      ),
      bumpGeneration: p('UPDATE hosts SET generation = generation + 1 WHERE id = ? RETURNING generation'),
      getDesiredSent: p('SELECT generation, digest FROM host_desired_sent WHERE host_id = ?'),
      putDesiredSent: p(
        'INSERT INTO host_desired_sent (host_id, generation, digest) VALUES (@hostId, @generation, @digest) ON CONFLICT (host_id) DO UPDATE SET generation = excluded.generation, digest = excluded.digest',
      ),
      getRoute: p('SELECT * FROM routes WHERE tenant_id = ?'),
      listRoutes: p('SELECT * FROM routes ORDER BY tenant_id'),
      listRoutesAfter: p('SELECT * FROM routes WHERE tenant_id > ? ORDER BY tenant_id LIMIT ?'),
      routeRevision: p("SELECT CAST(value AS INTEGER) AS v FROM meta WHERE key = 'route_revision'"),
      setRouteRevision: p("UPDATE meta SET value = CAST(? AS TEXT) WHERE key = 'route_revision'"),
      putRoute: p(
        `INSERT INTO routes (tenant_id, host_id, address, port, state, reason, external_access, connection_limit, revision, pool_mode, users)
         VALUES (@tenantId, @hostId, @address, @port, @state, @reason, @externalAccess, @connectionLimit, @revision, @poolMode, @users)
         ON CONFLICT (tenant_id) DO UPDATE SET host_id = excluded.host_id, address = excluded.address, port = excluded.port, state = excluded.state,
           reason = excluded.reason, external_access = excluded.external_access, connection_limit = excluded.connection_limit, revision = excluded.revision,
           pool_mode = excluded.pool_mode, users = excluded.users`,
      ),
      deleteRoute: p('DELETE FROM routes WHERE tenant_id = ?'),
      insertRouteChange: p('INSERT INTO route_changes (revision, tenant_id, route) VALUES (?, ?, ?)'),
      oldestRouteChange: p('SELECT MIN(revision) AS v FROM route_changes'),
      routeChangesSince: p('SELECT * FROM route_changes WHERE revision > ? ORDER BY revision LIMIT ?'),
      pruneRouteChanges: p('DELETE FROM route_changes WHERE revision <= ?'),
      appendEvent: p(
        'INSERT INTO events (time, principal, action, tenant_id, host_id, outcome, message, details) VALUES (@time, @principal, @action, @tenantId, @hostId, @outcome, @message, @details) RETURNING id',
      ),
      getUpgrade: p('SELECT record FROM upgrades WHERE tenant_id = ?'),
      listUpgrades: p('SELECT record FROM upgrades ORDER BY tenant_id'),
      upgradesOnHost: p('SELECT record FROM upgrades WHERE other_host_id = ? ORDER BY tenant_id'),
      putUpgrade: p('INSERT OR REPLACE INTO upgrades (tenant_id, phase, other_host_id, record, updated_at) VALUES (?, ?, ?, ?, ?)'),
      deleteUpgrade: p('DELETE FROM upgrades WHERE tenant_id = ?'),
      getMove: p('SELECT record FROM moves WHERE tenant_id = ?'),
      listMoves: p('SELECT record FROM moves ORDER BY tenant_id'),
      putMove: p('INSERT OR REPLACE INTO moves (tenant_id, record, updated_at) VALUES (?, ?, ?)'),
      deleteMove: p('DELETE FROM moves WHERE tenant_id = ?'),
      getInitSql: p('SELECT * FROM tenant_init_sql WHERE tenant_id = ?'),
      putInitSql: p(
        `INSERT OR REPLACE INTO tenant_init_sql (tenant_id, scripts, state, applied, failed_script, error, attempt, after_revision, updated_at)
         VALUES (@tenantId, @scripts, @state, @applied, @failedScript, @error, @attempt, @afterRevision, @updatedAt)`,
      ),
      openInitSql: p(`SELECT * FROM tenant_init_sql WHERE state IN ('PENDING', 'RUNNING') ORDER BY tenant_id`),
      getStanza: p('SELECT * FROM tenant_stanzas WHERE tenant_id = ?'),
      putStanza: p(
        'INSERT OR REPLACE INTO tenant_stanzas (tenant_id, stanza, last_archived_at, last_archived_wal, created_at) VALUES (@tenantId, @stanza, @archivedThrough, @lastArchivedWal, @createdAt)',
      ),
      getBackup: p('SELECT * FROM backups WHERE tenant_id = ? AND id = ?'),
      listBackups: p('SELECT * FROM backups WHERE tenant_id = ? ORDER BY started_at, id'),
      runningBackups: p(`SELECT * FROM backups WHERE status = 'RUNNING' ORDER BY started_at`),
      backupsByStatus: p('SELECT status, COUNT(*) AS n FROM backups GROUP BY status'),
      insertBackup: p(`INSERT INTO backups (${BACKUP_COLUMNS}) VALUES (${BACKUP_VALUES})`),
      updateBackup: p(
        `UPDATE backups SET type = @type, status = @status, reason = @reason, host_id = @hostId, label = @label, prior_label = @priorLabel, started_at = @startedAt,
         finished_at = @finishedAt, size_bytes = @sizeBytes, repo_size_bytes = @repoSizeBytes, stanza_repo_size_bytes = @stanzaRepoSizeBytes, lsn_start = @lsnStart,
         lsn_stop = @lsnStop, timeline = @timeline, trigger = @trigger, stanza = @stanza WHERE id = @id`,
      ),
      getRestore: p('SELECT * FROM restores WHERE id = ?'),
      listRestores: p('SELECT * FROM restores WHERE target_tenant_id = ? ORDER BY started_at, id'),
      runningRestores: p(`SELECT * FROM restores WHERE state = 'RUNNING' ORDER BY started_at`),
      activeRestores: p(`SELECT * FROM restores WHERE phase != 'done' ORDER BY started_at`),
      insertRestore: p(`INSERT INTO restores (${RESTORE_COLUMNS}) VALUES (${RESTORE_VALUES})`),
      updateRestore: p(`UPDATE restores SET (${RESTORE_COLUMNS}) = (${RESTORE_VALUES}) WHERE id = @id`),
      getOperation: p('SELECT * FROM operations WHERE tenant_id = ?'),
      listOperations: p('SELECT * FROM operations ORDER BY tenant_id'),
      putOperation: p(`INSERT OR REPLACE INTO operations (${OPERATION_COLUMNS}) VALUES (${OPERATION_VALUES})`),
      deleteOperation: p('DELETE FROM operations WHERE tenant_id = ?'),
      getIdempotency: p('SELECT * FROM idempotency WHERE scope = ? AND key = ?'),
      putIdempotency: p('INSERT OR REPLACE INTO idempotency (scope, key, request_hash, response, created_at) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  /**
   * Runs the writes of `f` as one batch, all or nothing: in a savepoint, with what they change held
   * back from the transaction's collector until every write of the batch succeeded (a batch that
   * fails half-way leaves neither rows nor published changes).
   */
  batch<T>(f: () => T, size: number): T {
    // One record goes exactly as its single write does: a savepoint would only add statements.
    if (size <= 1) return f();
    const sink = this.changes;
    const held: Array<(to: ChangeSink) => void> = [];
    this.changes = {
      route: (change) => held.push((to) => to.route(change)),
      event: (event) => held.push((to) => to.event(event)),
      placement: (hostId, freed) => held.push((to) => to.placement(hostId, freed)),
    };
    try {
      // Inside the open transaction better-sqlite3 runs this as a savepoint.
      const result = this.db.transaction(f)();
      for (const replay of held) replay(sink);
      return result;
    } finally {
      this.changes = sink;
    }
  }

  /** The stored tenants of `ids`, in id order. */
  getTenants(ids: readonly string[]): TenantRecord[] {
    return (this.stmt.tenantsOfIds!.all(JSON.stringify(ids)) as Row[]).map(tenantFromRow);
  }

  /** The placements of every tenant of `tenantIds`, by tenant (role, host order). */
  listPlacementsOfTenants(tenantIds: readonly string[]): PlacementRecord[] {
    return (this.stmt.placementsOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map(placementFromRow);
  }

  /** The users of every tenant of `tenantIds`, by tenant, each tenant's owner first, then by name. */
  listUsersOfTenants(tenantIds: readonly string[]): UserRecord[] {
    return (this.stmt.usersOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map(userFromRow);
  }

  /** The databases of every tenant of `tenantIds`, by tenant, then by name. */
  listDatabasesOfTenants(tenantIds: readonly string[]): DatabaseRecord[] {
    return (this.stmt.databasesOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map(databaseFromRow);
  }

  /** The registered hosts of `ids`, in id order. */
  getHosts(ids: readonly string[]): HostRecord[] {
    return this.committedHosts.getMany(ids, () => this.readHosts(ids));
  }

  private readHosts(ids: readonly string[]): HostRecord[] {
    return (this.stmt.hostsOfIds!.all(JSON.stringify(ids)) as Row[]).map(hostFromRow);
  }

  /** A transaction began (the store calls it after BEGIN). */
  transactionBegan(): void {
    this.committedHosts.began();
  }

  /** The open transaction committed (the store calls it after COMMIT): what it wrote of the hosts is read again. */
  transactionCommitted(): void {
    this.committedHosts.committed((ids) => this.readHosts(ids));
  }

  /** The stored routes of `tenantIds`, by tenant id. */
  getRoutes(tenantIds: readonly string[]): RouteRecord[] {
    return (this.stmt.routesOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map(routeFromRow);
  }

  /** The upgrades of `tenantIds`, by tenant id. */
  getUpgrades(tenantIds: readonly string[]): UpgradeRecord[] {
    return (this.stmt.upgradesOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map((r) => JSON.parse(r.record as string) as UpgradeRecord);
  }

  /** The stanzas of `tenantIds`, by tenant id. */
  getStanzas(tenantIds: readonly string[]): StanzaRecord[] {
    return (this.stmt.stanzasOfTenants!.all(JSON.stringify(tenantIds)) as Row[]).map(stanzaFromRow);
  }

  /** Restores into any tenant of `targetTenantIds`, by target, each target's oldest first. */
  listRestoresOfTargets(targetTenantIds: readonly string[]): RestoreRecord[] {
    return (this.stmt.restoresOfTargets!.all(JSON.stringify(targetTenantIds)) as Row[]).map(restoreFromRow);
  }

  getTenant(id: string): TenantRecord | undefined {
    const r = this.stmt.getTenant!.get(id) as Row | undefined;
    return r ? tenantFromRow(r) : undefined;
  }

  listTenants(filter: TenantFilter = {}, page: TenantPage = {}): TenantRecord[] {
    const where = tenantWhere(filter);
    if (page.after !== undefined) {
      where.clauses.push('id > ?');
      where.params.push(page.after);
    }
    // A parameter, not part of the SQL: the statement cache holds one statement per filter shape,
    // whatever the page sizes (SQLite reads LIMIT -1 as no limit).
    const limit = page.limit === undefined ? -1 : Math.max(0, Math.floor(page.limit));
    return (this.dynamic.get(`SELECT * FROM tenants${whereSql(where)} ORDER BY id LIMIT ?`).all(...where.params, limit) as Row[]).map(tenantFromRow);
  }

  countTenants(filter: TenantFilter = {}): number {
    const where = tenantWhere(filter);
    return (this.dynamic.get(`SELECT COUNT(*) AS n FROM tenants${whereSql(where)}`).get(...where.params) as { n: number }).n;
  }

  countTenantsByStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmt.tenantsByStatus!.all() as Array<{ status: string; n: number }>) out[r.status] = r.n;
    return out;
  }

  private tenantParams(t: TenantRecord): Row {
    return { ...t, spec: JSON.stringify(t.spec), deleting: int(t.deleting) };
  }

  insertTenant(tenant: TenantRecord): void {
    this.stmt.insertTenant!.run(this.tenantParams(tenant));
  }

  getTenantSecret(tenantId: string, name: string): TenantSecretRecord | undefined {
    const r = this.stmt.getTenantSecret!.get(tenantId, name) as Row | undefined;
    if (!r) return undefined;
    return { tenantId: String(r.tenant_id), name: String(r.name), sealed: String(r.sealed), verifier: String(r.verifier), createdAt: Number(r.created_at) };
  }

  insertTenantSecret(secret: TenantSecretRecord): void {
    this.stmt.insertTenantSecret!.run(secret.tenantId, secret.name, secret.sealed, secret.verifier, secret.createdAt);
  }

  updateTenant(tenant: TenantRecord): void {
    this.stmt.updateTenant!.run(this.tenantParams(tenant));
  }

  deleteTenant(id: string): void {
    const hosts = this.listPlacements({ tenantId: id }).map((p) => p.hostId);
    // Databases reference users; drop them first so the deferred key never sees an orphan.
    this.db.prepare('DELETE FROM databases WHERE tenant_id = ?').run(id);
    this.stmt.deleteTenant!.run(id);
    // Its placements go with it (ON DELETE CASCADE).
    for (const hostId of hosts) this.changes.placement(hostId, true);
  }

  listPlacements(filter: { tenantId?: string; hostId?: string } = {}): PlacementRecord[] {
    const rows =
      filter.tenantId !== undefined
        ? (this.stmt.placementsOfTenant!.all(filter.tenantId) as Row[])
        : filter.hostId !== undefined
          ? (this.stmt.placementsOfHost!.all(filter.hostId) as Row[])
          : (this.stmt.placementsAll!.all() as Row[]);
    const placements = rows.map(placementFromRow);
    return filter.tenantId !== undefined && filter.hostId !== undefined ? placements.filter((p) => p.hostId === filter.hostId) : placements;
  }

  private placementParams(p: PlacementRecord): Row {
    return { ...p, realizedOnce: int(p.realizedOnce) };
  }

  listWaitingTenants(limit: number, after: { createdAt: number; id: string } = { createdAt: -1, id: '' }): TenantRecord[] {
    return (this.stmt.waitingTenants!.all({ limit, createdAt: after.createdAt, id: after.id }) as Row[]).map(tenantFromRow);
  }

  hostAllocations(): Map<string, HostAllocation> {
    const rows = this.stmt.hostAllocations!.all() as Row[];
    return new Map(
      rows.map((r) => [
        String(r.host_id),
        { cpuMillis: Number(r.cpu ?? 0), memoryMib: Number(r.memory ?? 0), diskMib: Number(r.disk ?? 0), instances: Number(r.instances) },
      ]),
    );
  }

  hostAllocation(hostId: string): HostAllocation {
    const r = this.stmt.hostAllocation!.get({ hostId }) as Row;
    return { cpuMillis: Number(r.cpu ?? 0), memoryMib: Number(r.memory ?? 0), diskMib: Number(r.disk ?? 0), instances: Number(r.instances ?? 0) };
  }

  hostsCreating(): Map<string, number> {
    const rows = this.stmt.hostsCreating!.all() as Row[];
    return new Map(rows.map((r) => [String(r.host_id), Number(r.creating)]));
  }

  listRetriesDue(now: number): PlacementRecord[] {
    return (this.stmt.retriesDue!.all(now) as Row[]).map(placementFromRow);
  }

  listReplicatedTenants(): TenantRecord[] {
    return (this.stmt.replicatedTenants!.all() as Row[]).map(tenantFromRow);
  }

  listIdleSuspendTenants(): TenantRecord[] {
    return (this.stmt.idleSuspendTenants!.all() as Row[]).map(tenantFromRow);
  }

  insertPlacement(placement: PlacementRecord): void {
    this.stmt.insertPlacement!.run(this.placementParams(placement));
    this.changes.placement(placement.hostId, false);
  }

  updatePlacement(placement: PlacementRecord): void {
    this.stmt.updatePlacement!.run(this.placementParams(placement));
  }

  deletePlacement(tenantId: string, hostId: string): void {
    if (this.stmt.deletePlacement!.run(tenantId, hostId).changes > 0) this.changes.placement(hostId, true);
  }

  getUser(tenantId: string, name: string): UserRecord | undefined {
    const r = this.stmt.getUser!.get(tenantId, name) as Row | undefined;
    return r ? userFromRow(r) : undefined;
  }

  listUsers(tenantId: string): UserRecord[] {
    return (this.stmt.listUsers!.all(tenantId) as Row[]).map(userFromRow);
  }

  insertUser(user: UserRecord): void {
    this.stmt.insertUser!.run({ ...user, owner: int(user.owner) });
  }

  updateUser(user: UserRecord): void {
    this.stmt.updateUser!.run({ ...user, owner: int(user.owner) });
  }

  deleteUser(tenantId: string, name: string): void {
    this.stmt.deleteUser!.run(tenantId, name);
  }

  getDatabase(tenantId: string, name: string): DatabaseRecord | undefined {
    const r = this.stmt.getDatabase!.get(tenantId, name) as Row | undefined;
    return r ? databaseFromRow(r) : undefined;
  }

  listDatabases(tenantId: string): DatabaseRecord[] {
    return (this.stmt.listDatabases!.all(tenantId) as Row[]).map(databaseFromRow);
  }

  insertDatabase(database: DatabaseRecord): void {
    this.stmt.insertDatabase!.run({ ...database });
  }

  updateDatabase(database: DatabaseRecord): void {
    this.stmt.updateDatabase!.run({ ...database });
  }

  deleteDatabase(tenantId: string, name: string): void {
    this.stmt.deleteDatabase!.run(tenantId, name);
  }

  getHost(id: string): HostRecord | undefined {
    return this.committedHosts.get(id, () => {
      const r = this.stmt.getHost!.get(id) as Row | undefined;
      return r ? hostFromRow(r) : undefined;
    });
  }

  listHosts(): HostRecord[] {
    return this.committedHosts.list(() => (this.stmt.listHosts!.all() as Row[]).map(hostFromRow));
  }

  putHost(host: HostRecord): void {
    const { capacity, labels, cordoned, draining, ...rest } = host;
    this.committedHosts.wrote(host.id);
    this.stmt.putHost!.run({ ...rest, ...capacity, cordoned: int(cordoned), draining: int(draining), labels: JSON.stringify(labels) });
  }

  nextHostGeneration(hostId: string): number {
    this.committedHosts.wrote(hostId);
    const r = this.stmt.bumpGeneration!.get(hostId) as { generation: number } | undefined;
    if (!r) throw new StoreNotFoundError(`host "${hostId}" is not in the store; register it first`);
    return r.generation;
  }

  desiredSent(hostId: string): DesiredSent | undefined {
    const r = this.stmt.getDesiredSent!.get(hostId) as { generation: number; digest: string } | undefined;
    return r ? { generation: r.generation, digest: r.digest } : undefined;
  }

  noteDesiredSent(hostId: string, sent: DesiredSent): void {
    if (!this.getHost(hostId)) throw new StoreNotFoundError(`host "${hostId}" is not in the store; register it first`);
    this.stmt.putDesiredSent!.run({ hostId, generation: sent.generation, digest: sent.digest });
  }

  getRoute(tenantId: string): RouteRecord | undefined {
    const r = this.stmt.getRoute!.get(tenantId) as Row | undefined;
    return r ? routeFromRow(r) : undefined;
  }

  listRoutes(): RouteRecord[] {
    return (this.stmt.listRoutes!.all() as Row[]).map(routeFromRow);
  }

  listRoutesAfter(tenantId: string, limit: number): RouteRecord[] {
    return (this.stmt.listRoutesAfter!.all(tenantId, limit) as Row[]).map(routeFromRow);
  }

  routeRevision(): number {
    return (this.stmt.routeRevision!.get() as { v: number }).v;
  }

  putRoute(route: Omit<RouteRecord, 'revision'>): RouteRecord {
    const existing = this.getRoute(route.tenantId);
    if (existing && sameRoute(existing, route)) return existing;
    const revision = this.bumpRouteRevision();
    const stored: RouteRecord = { ...route, revision };
    this.stmt.putRoute!.run({ ...stored, externalAccess: int(stored.externalAccess), users: JSON.stringify(stored.users) });
    this.stmt.insertRouteChange!.run(revision, route.tenantId, JSON.stringify(stored));
    this.changes.route({ revision, tenantId: route.tenantId, route: stored });
    return stored;
  }

  deleteRoute(tenantId: string): void {
    if (!this.getRoute(tenantId)) return;
    const revision = this.bumpRouteRevision();
    this.stmt.deleteRoute!.run(tenantId);
    this.stmt.insertRouteChange!.run(revision, tenantId, null);
    this.changes.route({ revision, tenantId, route: undefined });
  }

  private bumpRouteRevision(): number {
    const revision = this.routeRevision() + 1;
    this.stmt.setRouteRevision!.run(revision);
    // Prune in steps of a tenth of the window so pruning is rare and cheap.
    if (revision % Math.max(1, Math.floor(this.routeHistory / 10)) === 0) this.stmt.pruneRouteChanges!.run(revision - this.routeHistory);
    return revision;
  }

  routeChangesSince(revision: number, limit = -1): RouteChange[] | undefined {
    const current = this.routeRevision();
    if (revision > current) return undefined;
    if (revision === current) return [];
    const oldest = (this.stmt.oldestRouteChange!.get() as { v: number | null }).v;
    // The history must hold revision + 1 onwards; otherwise the gap forces a snapshot.
    if (oldest === null || oldest > revision + 1) return undefined;
    // LIMIT -1: no limit, in SQLite.
    return (this.stmt.routeChangesSince!.all(revision, limit) as Row[]).map((r) => ({
      revision: r.revision as number,
      tenantId: r.tenant_id as string,
      route: r.route === null ? undefined : (JSON.parse(r.route as string) as RouteRecord),
    }));
  }

  appendEvent(event: NewEvent): EventRecord {
    const record: Omit<EventRecord, 'id'> = {
      tenantId: '',
      hostId: '',
      outcome: 'SUCCESS',
      ...event,
      details: event.details ?? {},
    };
    const { id } = this.stmt.appendEvent!.get({ ...record, details: JSON.stringify(record.details) }) as { id: number };
    const stored = { id, ...record };
    this.changes.event(stored);
    return stored;
  }

  listEvents(filter: EventFilter): EventRecord[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.tenantId) {
      where.push('tenant_id = ?');
      params.push(filter.tenantId);
    }
    if (filter.hostId) {
      where.push('host_id = ?');
      params.push(filter.hostId);
    }
    if (filter.outcome) {
      where.push('outcome = ?');
      params.push(filter.outcome);
    }
    const after = filter.afterId ?? 0;
    if (after > 0) where.push(`id > ${Math.floor(after)}`);
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // After an id: the next `limit` in order. Without one: the newest `limit`, returned oldest first.
    const sql =
      after > 0
        ? `SELECT * FROM events ${clause} ORDER BY id ASC LIMIT ${Math.floor(filter.limit)}`
        : `SELECT * FROM (SELECT * FROM events ${clause} ORDER BY id DESC LIMIT ${Math.floor(filter.limit)}) ORDER BY id ASC`;
    return (this.db.prepare(sql).all(...params) as Row[]).map(eventFromRow);
  }

  getIdempotency(scope: string, key: string): IdempotencyRecord | undefined {
    const r = this.stmt.getIdempotency!.get(scope, key) as Row | undefined;
    return r ? { requestHash: r.request_hash as string, response: r.response as string, createdAt: r.created_at as number } : undefined;
  }

  putIdempotency(scope: string, key: string, record: IdempotencyRecord): void {
    this.stmt.putIdempotency!.run(scope, key, record.requestHash, record.response, record.createdAt);
  }

  getUpgrade(tenantId: string): UpgradeRecord | undefined {
    const r = this.stmt.getUpgrade!.get(tenantId) as Row | undefined;
    return r ? (JSON.parse(r.record as string) as UpgradeRecord) : undefined;
  }

  listUpgrades(hostId?: string): UpgradeRecord[] {
    const rows = (hostId === undefined ? this.stmt.listUpgrades!.all() : this.stmt.upgradesOnHost!.all(hostId)) as Row[];
    return rows.map((r) => JSON.parse(r.record as string) as UpgradeRecord);
  }

  putUpgrade(u: UpgradeRecord): void {
    this.stmt.putUpgrade!.run(u.tenantId, u.phase, u.other.hostId, JSON.stringify(u), u.updatedAt);
  }

  deleteUpgrade(tenantId: string): void {
    this.stmt.deleteUpgrade!.run(tenantId);
  }

  getMove(tenantId: string): MoveRecord | undefined {
    const r = this.stmt.getMove!.get(tenantId) as Row | undefined;
    return r ? (JSON.parse(r.record as string) as MoveRecord) : undefined;
  }

  listMoves(): MoveRecord[] {
    return (this.stmt.listMoves!.all() as Row[]).map((r) => JSON.parse(r.record as string) as MoveRecord);
  }

  putMove(m: MoveRecord): void {
    this.stmt.putMove!.run(m.tenantId, JSON.stringify(m), m.updatedAt);
  }

  deleteMove(tenantId: string): void {
    this.stmt.deleteMove!.run(tenantId);
  }

  getInitSql(tenantId: string): InitSqlRecord | undefined {
    const r = this.stmt.getInitSql!.get(tenantId) as Row | undefined;
    return r ? initSqlFromRow(r) : undefined;
  }

  putInitSql(record: InitSqlRecord): void {
    this.stmt.putInitSql!.run({ ...record, scripts: JSON.stringify(record.scripts) });
  }

  listOpenInitSql(): InitSqlRecord[] {
    return (this.stmt.openInitSql!.all() as Row[]).map(initSqlFromRow);
  }

  getStanza(tenantId: string): StanzaRecord | undefined {
    const r = this.stmt.getStanza!.get(tenantId) as Row | undefined;
    return r ? stanzaFromRow(r) : undefined;
  }

  putStanza(stanza: StanzaRecord): void {
    this.stmt.putStanza!.run({ ...stanza });
  }

  getBackup(tenantId: string, id: string): BackupRecord | undefined {
    const r = this.stmt.getBackup!.get(tenantId, id) as Row | undefined;
    return r ? backupFromRow(r) : undefined;
  }

  listBackups(tenantId: string): BackupRecord[] {
    return (this.stmt.listBackups!.all(tenantId) as Row[]).map(backupFromRow);
  }

  listRunningBackups(): BackupRecord[] {
    return (this.stmt.runningBackups!.all() as Row[]).map(backupFromRow);
  }

  countBackupsByStatus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmt.backupsByStatus!.all() as Array<{ status: string; n: number }>) out[r.status] = r.n;
    return out;
  }

  insertBackup(backup: BackupRecord): void {
    this.stmt.insertBackup!.run({ ...backup });
  }

  updateBackup(backup: BackupRecord): void {
    this.stmt.updateBackup!.run({ ...backup });
  }

  getRestore(id: string): RestoreRecord | undefined {
    const r = this.stmt.getRestore!.get(id) as Row | undefined;
    return r ? restoreFromRow(r) : undefined;
  }

  listRestores(targetTenantId: string): RestoreRecord[] {
    return (this.stmt.listRestores!.all(targetTenantId) as Row[]).map(restoreFromRow);
  }

  listRunningRestores(): RestoreRecord[] {
    return (this.stmt.runningRestores!.all() as Row[]).map(restoreFromRow);
  }

  listActiveRestores(): RestoreRecord[] {
    return (this.stmt.activeRestores!.all() as Row[]).map(restoreFromRow);
  }

  private restoreParams(r: RestoreRecord): Row {
    return { ...r, latest: int(r.latest), oldHosts: JSON.stringify(r.oldHosts) };
  }

  insertRestore(restore: RestoreRecord): void {
    this.stmt.insertRestore!.run(this.restoreParams(restore));
  }

  updateRestore(restore: RestoreRecord): void {
    this.stmt.updateRestore!.run(this.restoreParams(restore));
  }

  getOperation(tenantId: string): OperationRecord | undefined {
    const r = this.stmt.getOperation!.get(tenantId) as Row | undefined;
    return r ? operationFromRow(r) : undefined;
  }

  listOperations(): OperationRecord[] {
    return (this.stmt.listOperations!.all() as Row[]).map(operationFromRow);
  }

  putOperation(operation: OperationRecord): void {
    this.stmt.putOperation!.run({ ...operation });
  }

  deleteOperation(tenantId: string): void {
    this.stmt.deleteOperation!.run(tenantId);
  }
}
