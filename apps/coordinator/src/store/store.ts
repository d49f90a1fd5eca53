/**
 * The coordinator's store, behind one interface so a PostgreSQL backend (coordinator replicas)
 * can sit beside the SQLite default. Calls are synchronous: better-sqlite3 is, and a single
 * coordinator process serialises every write through `write()`, which is one transaction that is
 * durable (fsynced) before it returns. Listeners registered with `onCommit` see the route changes
 * and events of a transaction only after it committed, so nothing is published that could still
 * roll back.
 */
import type {
  BackupRecord,
  DatabaseRecord,
  EventOutcome,
  EventRecord,
  HostRecord,
  NewEvent,
  PlacementRecord,
  RouteChange,
  RestoreRecord,
  RouteRecord,
  StanzaRecord,
  TenantRecord,
  UserRecord,
} from '../model.js';
import type { InitSqlRecord, TenantStatus } from '@pgs/tenancy';

/** Filters of listTenants; every given one must match. */
export interface TenantFilter {
  status?: TenantStatus;
  hostId?: string;
  labels?: Record<string, string>;
  /** Only these tenants (a tenant-scoped caller's). */
  ids?: readonly string[];
  /** Only tenants whose status reason starts with this. */
  reasonPrefix?: string;
}

/** A page of listTenants, in id order. */
export interface TenantPage {
  /** Only ids after this one (exclusive). */
  after?: string;
  limit?: number;
}

/** What the placements on one host ask for in total. */
export interface HostAllocation {
  cpuMillis: number;
  memoryMib: number;
  diskMib: number;
  instances: number;
}

/** Filters of listEvents. */
export interface EventFilter {
  tenantId?: string;
  hostId?: string;
  /** Only events with a greater id; 0/undefined = the most recent `limit`. */
  afterId?: number;
  limit: number;
  outcome?: EventOutcome;
}

/** A stored answer to a request that carried an idempotency key. */
export interface IdempotencyRecord {
  requestHash: string;
  response: string;
  createdAt: number;
}

/** A secret of a tenant the platform keeps: sealed (AES-256-GCM) plus the SCRAM verifier of it. */
export interface TenantSecretRecord {
  tenantId: string;
  name: string;
  sealed: string;
  verifier: string;
  createdAt: number;
}

/** What one committed transaction changed, for the route feed and event watchers. */
export interface CommitSummary {
  routeChanges: readonly RouteChange[];
  events: readonly EventRecord[];
}

/** Reads and writes; inside `write()` they form one transaction. */
export interface StoreTx {
  getTenant(id: string): TenantRecord | undefined;
  /** Matching tenants in id order; the filter and the page are applied by the database. */
  listTenants(filter?: TenantFilter, page?: TenantPage): TenantRecord[];
  countTenants(filter?: TenantFilter): number;
  /** Tenants by status (one indexed count, for metrics and the fleet summary). */
  countTenantsByStatus(): Record<string, number>;
  insertTenant(tenant: TenantRecord): void;
  updateTenant(tenant: TenantRecord): void;
  /** Removes the tenant with its users, databases and placements. */
  deleteTenant(id: string): void;

  listPlacements(filter?: { tenantId?: string; hostId?: string }): PlacementRecord[];
  /** NEW tenants, not being deleted, with no placement, oldest first, after `after` (exclusive); at most `limit`. */
  listWaitingTenants(limit: number, after?: { createdAt: number; id: string }): TenantRecord[];
  /** FAILED placements whose retry is due at `now` (a set, cleared retry time 0 is never due). */
  listRetriesDue(now: number): PlacementRecord[];
  /** Tenants with two or more nodes (the ones failover watches), by id. */
  listReplicatedTenants(): TenantRecord[];
  /** Per host, the summed resource requests of the placements on it (hosts without any are absent); suspended tenants count disk only. */
  hostAllocations(): Map<string, HostAllocation>;
  /** Per host, how many of its placements were never realized yet: instances it is still creating (hosts with none are absent). */
  hostsCreating(): Map<string, number>;
  insertPlacement(placement: PlacementRecord): void;
  updatePlacement(placement: PlacementRecord): void;
  deletePlacement(tenantId: string, hostId: string): void;

  getUser(tenantId: string, name: string): UserRecord | undefined;
  listUsers(tenantId: string): UserRecord[];
  insertUser(user: UserRecord): void;
  updateUser(user: UserRecord): void;
  deleteUser(tenantId: string, name: string): void;

  getDatabase(tenantId: string, name: string): DatabaseRecord | undefined;
  listDatabases(tenantId: string): DatabaseRecord[];
  insertDatabase(database: DatabaseRecord): void;
  updateDatabase(database: DatabaseRecord): void;
  deleteDatabase(tenantId: string, name: string): void;

  getHost(id: string): HostRecord | undefined;
  listHosts(): HostRecord[];
  /** Inserts or replaces the host row (registration is idempotent by id). */
  putHost(host: HostRecord): void;
  /** Bumps and returns the host's desired-set generation. */
  nextHostGeneration(hostId: string): number;

  getRoute(tenantId: string): RouteRecord | undefined;
  listRoutes(): RouteRecord[];
  /** The current global route revision (0 = no route ever written). */
  routeRevision(): number;
  /**
   * Writes a route if it differs from the stored one: the global revision goes up by one and
   * the change is kept in the history. Returns the stored route (unchanged ones keep their revision).
   */
  putRoute(route: Omit<RouteRecord, 'revision'>): RouteRecord;
  /** Deletes a route (a new revision) if there is one. */
  deleteRoute(tenantId: string): void;
  /** Changes after `revision` in order, or undefined when the history no longer reaches back that far. */
  routeChangesSince(revision: number): RouteChange[] | undefined;

  appendEvent(event: NewEvent): EventRecord;
  listEvents(filter: EventFilter): EventRecord[];

  getTenantSecret(tenantId: string, name: string): TenantSecretRecord | undefined;
  /** Inserts a secret; an existing one is kept (secrets are created once, rotated explicitly). */
  insertTenantSecret(secret: TenantSecretRecord): void;

  getIdempotency(scope: string, key: string): IdempotencyRecord | undefined;
  putIdempotency(scope: string, key: string, record: IdempotencyRecord): void;

  getStanza(tenantId: string): StanzaRecord | undefined;
  /** Inserts or replaces the tenant's stanza row. */
  putStanza(stanza: StanzaRecord): void;

  getBackup(tenantId: string, id: string): BackupRecord | undefined;
  /** A tenant's backups, oldest first. */
  listBackups(tenantId: string): BackupRecord[];
  /** Every RUNNING backup of the fleet (a handful: at most one per tenant). */
  listRunningBackups(): BackupRecord[];
  /** Backups by status over the fleet. */
  countBackupsByStatus(): Record<string, number>;
  insertBackup(backup: BackupRecord): void;
  updateBackup(backup: BackupRecord): void;

  getRestore(id: string): RestoreRecord | undefined;
  /** Restores into a tenant, oldest first. */
  listRestores(targetTenantId: string): RestoreRecord[];
  /** Every RUNNING restore of the fleet. */
  listRunningRestores(): RestoreRecord[];
  /** Restores not done yet: running ones and finished ones still cleaning up (phase other than 'done'). */
  listActiveRestores(): RestoreRecord[];
  insertRestore(restore: RestoreRecord): void;
  updateRestore(restore: RestoreRecord): void;

  /** The tenant's init scripts and their run; undefined when it was created without any. */
  getInitSql(tenantId: string): InitSqlRecord | undefined;
  /** Inserts or replaces the tenant's init SQL row. */
  putInitSql(record: InitSqlRecord): void;
  /** Runs still to do (PENDING or RUNNING), by tenant id. */
  listOpenInitSql(): InitSqlRecord[];
}

/** The store: a StoreTx whose single calls are their own transactions, plus write() and hooks. */
export interface Store extends StoreTx {
  /** Runs `fn` as one durable transaction; a throw rolls everything back. */
  write<T>(fn: (tx: StoreTx) => T): T;
  /**
   * Runs `fn` as its own transaction inside a group commit: writes queued in the same turn of the
   * event loop share one durable commit (one fsync), each in its own savepoint, so a throw rolls
   * back only its own writes. Resolves after the commit is on disk.
   */
  writeGrouped<T>(fn: (tx: StoreTx) => T): Promise<T>;
  /** Calls `listener` after each commit that changed routes or appended events. */
  onCommit(listener: (summary: CommitSummary) => void): () => void;
  /** Counts placement inserts and deletes since open, so a cached allocation can tell it went stale. */
  placementChanges(): number;
  /** Where the store lives, for logs and /healthz. */
  readonly location: string;
  /** Schema version after migrations. */
  readonly schemaVersion: number;
  close(): void;
}
