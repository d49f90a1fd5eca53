/**
 * The coordinator's store contract: narrow async repositories, one per aggregate, and one explicit
 * transaction type that covers every table. SQLite (the embedded default) and PostgreSQL implement
 * it; `contract/` holds the tests every backend must pass.
 *
 * What a backend must guarantee:
 * - Isolation: a transaction is serializable against every other transaction on the same store
 *   (SQLite: one writer at a time; PostgreSQL: SERIALIZABLE or an equivalent lock). It sees the
 *   committed state plus its own writes, and commits all or nothing. A standalone read
 *   (`store.read`) sees committed data only, never a transaction in flight.
 * - Durability: `transaction()` resolves only once the commit is durable (fsynced, or confirmed
 *   by the synchronous standby). A rejected transaction left nothing behind.
 * - Revision ordering: the route revision is one counter for the fleet that grows by exactly one
 *   per route change, in commit order, and `routes.changesSince(r)` returns every later change
 *   (or undefined once the kept history no longer reaches back). Event ids grow in commit order.
 *   A host's generation only grows, across re-registration too.
 * - Coverage: one transaction covers every table, the security ones (fleet CA, tokens, sealed
 *   secrets) included; nothing commits beside it, and a transaction never nests.
 * - Publication: after a commit, subscribers get its `Commit` once, in commit order; a rolled
 *   back transaction publishes nothing. Route changes, events and placement changes are recorded
 *   by the store itself; what only the caller knows (desired sets to send, room freed, tenants to
 *   place) it records with `tx.record()`.
 * - Errors: besides what the caller's own function throws (passed through unchanged, after the
 *   rollback), only StoreConflictError, StoreNotFoundError and StoreUnavailableError (errors.ts)
 *   leave a backend; no driver error code reaches a caller.
 * A transaction function only reads and writes through its `tx`: no agent calls, timers, hashing
 * or other I/O inside it (do those before, or after the commit through a subscriber).
 */
import type { InitSqlRecord, TenantStatus } from '@pgs/tenancy';
import type { TokenRecord } from '@pgs/security';
import type {
  BackupRecord,
  DatabaseRecord,
  EventOutcome,
  EventRecord,
  DesiredSent,
  HostRecord,
  NewEvent,
  OperationRecord,
  PlacementRecord,
  RestoreRecord,
  RouteChange,
  RouteRecord,
  StanzaRecord,
  TenantRecord,
  UpgradeRecord,
  MoveRecord,
  UserRecord,
} from '../domain/model.js';

/** Filters of tenants.list; every given one must match. */
export interface TenantFilter {
  status?: TenantStatus;
  hostId?: string;
  labels?: Record<string, string>;
  /** Only these tenants (a tenant-scoped caller's). */
  ids?: readonly string[];
  /** Only tenants whose status reason starts with this. */
  reasonPrefix?: string;
}

/** A page of tenants.list, in id order. */
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

/** Filters of events.list. */
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

/** The stored fleet CA. */
export interface StoredCa {
  certPem: string;
  /** The CA private key, sealed with the KeyRing (context 'pgs:fleet-ca-key'). */
  keySealed: string;
  createdAt: number;
}

/** A secret of the fleet itself, sealed with the KeyRing (context 'pgs:fleet-secret:<name>'). */
export interface StoredFleetSecret {
  name: string;
  /** Names the secret's value (the backup key's id), not the KeyRing key. */
  keyId: string;
  sealed: string;
  createdAt: number;
}

/** A token record plus who created it (for `token list`). */
export interface StoredToken extends TokenRecord {
  createdBy: string;
}

/** Where a sealed value lives, so the reseal function can bind it to its context. */
export type SealedAt =
  | { table: 'fleet_ca' }
  | { table: 'tenant_secrets'; tenantId: string; name: string }
  | { table: 'fleet_secrets'; name: string }
  /** The subscription role's password in a major upgrade's row. */
  | { table: 'upgrades'; tenantId: string };

// ---- Reads (available outside a transaction through store.read, and inside one through tx) ----

export interface TenantReads {
  get(id: string): Promise<TenantRecord | undefined>;
  /** The stored ones of `ids`, in id order, in one read (a batch reads its tenants once, not one by one). */
  getMany(ids: readonly string[]): Promise<TenantRecord[]>;
  /** Matching tenants in id order; the filter and the page are applied by the database. */
  list(filter?: TenantFilter, page?: TenantPage): Promise<TenantRecord[]>;
  count(filter?: TenantFilter): Promise<number>;
  /** Tenants by status (one indexed count, for metrics and the fleet summary). */
  countByStatus(): Promise<Record<string, number>>;
  /** NEW tenants, not being deleted, with no placement, oldest first, after `after` (exclusive); at most `limit`. */
  listWaiting(limit: number, after?: { createdAt: number; id: string }): Promise<TenantRecord[]>;
  /** Tenants with two or more nodes (the ones failover watches), by id. */
  listReplicated(): Promise<TenantRecord[]>;
  /** ACTIVE tenants with an idle-suspend policy (the ones the idle check watches), by id. */
  listIdleSuspend(): Promise<TenantRecord[]>;
}

export interface PlacementReads {
  /** By tenant (role, host order), by host (tenant order), both, or all. */
  list(filter?: { tenantId?: string; hostId?: string }): Promise<PlacementRecord[]>;
  /** The placements of every tenant of `tenantIds`, by tenant (role, host order), in one read. */
  listOfTenants(tenantIds: readonly string[]): Promise<PlacementRecord[]>;
  /** FAILED placements whose retry is due at `now` (a cleared retry time, 0, is never due). */
  listRetriesDue(now: number): Promise<PlacementRecord[]>;
  /**
   * Per host, the summed resource requests of the placements on it (hosts without any are absent);
   * suspended tenants count disk only (their CPU and memory are given back while they sleep).
   */
  allocations(): Promise<Map<string, HostAllocation>>;
  /** What `allocations()` says of one host (zero when it holds nothing), summed over that host's placements only. */
  allocationOf(hostId: string): Promise<HostAllocation>;
  /** Per host, how many of its placements were never realized yet (hosts with none are absent). */
  creating(): Promise<Map<string, number>>;
}

export interface HostReads {
  get(id: string): Promise<HostRecord | undefined>;
  /** The registered ones of `ids`, in id order, in one read. */
  getMany(ids: readonly string[]): Promise<HostRecord[]>;
  list(): Promise<HostRecord[]>;
  /** The last full desired set recorded as sent to the host; undefined = none (or the host is unknown). */
  desiredSent(hostId: string): Promise<DesiredSent | undefined>;
}

export interface UserReads {
  get(tenantId: string, name: string): Promise<UserRecord | undefined>;
  /** The owner first, then by name. */
  list(tenantId: string): Promise<UserRecord[]>;
  /** The users of every tenant of `tenantIds`, by tenant, each tenant's owner first, then by name, in one read. */
  listOfTenants(tenantIds: readonly string[]): Promise<UserRecord[]>;
}

export interface DatabaseReads {
  get(tenantId: string, name: string): Promise<DatabaseRecord | undefined>;
  list(tenantId: string): Promise<DatabaseRecord[]>;
  /** The databases of every tenant of `tenantIds`, by tenant, then by name, in one read. */
  listOfTenants(tenantIds: readonly string[]): Promise<DatabaseRecord[]>;
}

export interface RouteReads {
  get(tenantId: string): Promise<RouteRecord | undefined>;
  /** The stored routes of `tenantIds`, by tenant id, in one read. */
  getMany(tenantIds: readonly string[]): Promise<RouteRecord[]>;
  list(): Promise<RouteRecord[]>;
  /**
   * At most `limit` routes after `tenantId` ('' = from the first), by tenant id: the table a page
   * at a time (a snapshot for a router holds one part, not the whole table, while it is sent).
   */
  listAfter(tenantId: string, limit: number): Promise<RouteRecord[]>;
  /** The current global route revision (0 = no route ever written). */
  revision(): Promise<number>;
  /**
   * Changes after `revision` in order (with `limit`, the first `limit` of them: a long catch-up is
   * read a part at a time), or undefined when the history no longer reaches back that far.
   */
  changesSince(revision: number, limit?: number): Promise<RouteChange[] | undefined>;
}

export interface EventReads {
  list(filter: EventFilter): Promise<EventRecord[]>;
}

export interface IdempotencyReads {
  get(scope: string, key: string): Promise<IdempotencyRecord | undefined>;
  /** The stored answers of `keys` in `scope`, by key, in one read (keys never seen are absent). */
  getMany(scope: string, keys: readonly string[]): Promise<Map<string, IdempotencyRecord>>;
}

export interface SecretReads {
  getTenantSecret(tenantId: string, name: string): Promise<TenantSecretRecord | undefined>;
  getFleetSecret(name: string): Promise<StoredFleetSecret | undefined>;
  getCa(): Promise<StoredCa | undefined>;
}

export interface TokenReads {
  find(hash: string): Promise<StoredToken | undefined>;
  /** The live (not revoked) operator token of a name. */
  findOperator(name: string): Promise<StoredToken | undefined>;
  /** Operator tokens, newest first; revoked ones only when asked. */
  listOperators(includeRevoked: boolean): Promise<StoredToken[]>;
}

export interface BackupReads {
  getStanza(tenantId: string): Promise<StanzaRecord | undefined>;
  /** The stanzas of `tenantIds`, by tenant id, in one read (tenants without one are absent). */
  getStanzaMany(tenantIds: readonly string[]): Promise<StanzaRecord[]>;
  get(tenantId: string, id: string): Promise<BackupRecord | undefined>;
  /** A tenant's backups, oldest first. */
  list(tenantId: string): Promise<BackupRecord[]>;
  /** Every RUNNING backup of the fleet (at most one per tenant). */
  listRunning(): Promise<BackupRecord[]>;
  countByStatus(): Promise<Record<string, number>>;
}

export interface RestoreReads {
  get(id: string): Promise<RestoreRecord | undefined>;
  /** Restores into a tenant, oldest first. */
  list(targetTenantId: string): Promise<RestoreRecord[]>;
  /** Restores into any tenant of `targetTenantIds`, by target, each target's oldest first, in one read. */
  listOfTargets(targetTenantIds: readonly string[]): Promise<RestoreRecord[]>;
  listRunning(): Promise<RestoreRecord[]>;
  /** Restores not done yet: running ones and finished ones still cleaning up (phase other than 'done'). */
  listActive(): Promise<RestoreRecord[]>;
}

/** Failover and switchover operations in flight, one row per tenant at most. */
export interface OperationReads {
  get(tenantId: string): Promise<OperationRecord | undefined>;
  list(): Promise<OperationRecord[]>;
}

/** Major upgrades in flight or kept for a rollback, one row per tenant at most. */
export interface UpgradeReads {
  get(tenantId: string): Promise<UpgradeRecord | undefined>;
  /** The upgrades of `tenantIds`, by tenant id, in one read. */
  getMany(tenantIds: readonly string[]): Promise<UpgradeRecord[]>;
  /** Every upgrade, by tenant id. */
  list(): Promise<UpgradeRecord[]>;
  /** The upgrades whose other instance (see UpgradeRecord) is on `hostId`. */
  listOnHost(hostId: string): Promise<UpgradeRecord[]>;
}

/** Live moves in flight, one row per tenant at most. */
export interface MoveReads {
  get(tenantId: string): Promise<MoveRecord | undefined>;
  /** Every move, by tenant id. */
  list(): Promise<MoveRecord[]>;
}

/** Tenant init scripts and how far their run got, one row per tenant created with any. */
export interface InitSqlReads {
  /** The tenant's init scripts and their run; undefined when it was created without any. */
  get(tenantId: string): Promise<InitSqlRecord | undefined>;
  /** Runs still to do (PENDING or RUNNING), by tenant id. */
  listOpen(): Promise<InitSqlRecord[]>;
}

/** Every read of the store. */
export interface StoreReads {
  readonly tenants: TenantReads;
  readonly placements: PlacementReads;
  readonly hosts: HostReads;
  readonly users: UserReads;
  readonly databases: DatabaseReads;
  readonly routes: RouteReads;
  readonly events: EventReads;
  readonly idempotency: IdempotencyReads;
  readonly secrets: SecretReads;
  readonly tokens: TokenReads;
  readonly backups: BackupReads;
  readonly restores: RestoreReads;
  readonly operations: OperationReads;
  readonly initSql: InitSqlReads;
  readonly upgrades: UpgradeReads;
  readonly moves: MoveReads;
}

// ---- Writes (only inside a transaction) ----

export interface TenantRepository extends TenantReads {
  /** StoreConflictError when the id exists. */
  insert(tenant: TenantRecord): Promise<void>;
  /**
   * Inserts every tenant in one write, all or nothing: a taken id (stored, or twice in the batch)
   * rejects the batch with StoreConflictError and leaves none of it.
   */
  insertMany(tenants: readonly TenantRecord[]): Promise<void>;
  update(tenant: TenantRecord): Promise<void>;
  /** Updates every tenant of `tenants` (each once) in one write; one missing tenant is skipped, as update does. */
  updateMany(tenants: readonly TenantRecord[]): Promise<void>;
  /** Removes the tenant with its users, databases, placements, operation and init scripts. */
  delete(id: string): Promise<void>;
}

export interface PlacementRepository extends PlacementReads {
  /** StoreConflictError on a second placement on the same host or a second PRIMARY. */
  insert(placement: PlacementRecord): Promise<void>;
  /**
   * Inserts every placement in one write, all or nothing: one that would conflict (as insert says,
   * or with another of the batch) rejects the batch with StoreConflictError and leaves none of it.
   */
  insertMany(placements: readonly PlacementRecord[]): Promise<void>;
  update(placement: PlacementRecord): Promise<void>;
  /** Updates every placement of `placements` (each tenant and host once) in one write; a missing one is skipped, as update does. */
  updateMany(placements: readonly PlacementRecord[]): Promise<void>;
  delete(tenantId: string, hostId: string): Promise<void>;
}

export interface HostRepository extends HostReads {
  /** Inserts or replaces the host row (registration is idempotent by id); the generation never goes down. */
  put(host: HostRecord): Promise<void>;
  /** Bumps and returns the host's desired-set generation; StoreNotFoundError for an unknown host. */
  nextGeneration(hostId: string): Promise<number>;
  /** Records the full desired set sent to the host (replacing the one before); StoreNotFoundError for an unknown host. */
  noteDesiredSent(hostId: string, sent: DesiredSent): Promise<void>;
}

export interface UserRepository extends UserReads {
  insert(user: UserRecord): Promise<void>;
  /** Inserts every user in one write, all or nothing: a taken name (stored, or twice in the batch) rejects the batch with StoreConflictError. */
  insertMany(users: readonly UserRecord[]): Promise<void>;
  update(user: UserRecord): Promise<void>;
  delete(tenantId: string, name: string): Promise<void>;
}

export interface DatabaseRepository extends DatabaseReads {
  insert(database: DatabaseRecord): Promise<void>;
  /** Inserts every database in one write, all or nothing: a taken name (stored, or twice in the batch) rejects the batch with StoreConflictError. */
  insertMany(databases: readonly DatabaseRecord[]): Promise<void>;
  update(database: DatabaseRecord): Promise<void>;
  delete(tenantId: string, name: string): Promise<void>;
}

export interface RouteRepository extends RouteReads {
  /**
   * Writes a route if it differs from the stored one: the global revision goes up by one and the
   * change is kept in the history (and published). Returns the stored route (unchanged ones keep
   * their revision).
   */
  put(route: Omit<RouteRecord, 'revision'>): Promise<RouteRecord>;
  /**
   * `put` of each route, in order, in a few statements whatever their number: the changed ones
   * take consecutive revisions in that order. Returns the stored routes in the order given. A tenant
   * may appear once (an Error otherwise: the batch would not say which of its routes wins).
   */
  putMany(routes: ReadonlyArray<Omit<RouteRecord, 'revision'>>): Promise<RouteRecord[]>;
  /** Deletes a route (a new revision) if there is one. */
  delete(tenantId: string): Promise<void>;
}

export interface EventRepository extends EventReads {
  /** Appends to the log (append-only: nothing updates or deletes an event). */
  append(event: NewEvent): Promise<EventRecord>;
  /** Appends each event, in order, in one write: their ids grow in that order. Returns the stored events in that order. */
  appendMany(events: readonly NewEvent[]): Promise<EventRecord[]>;
}

export interface IdempotencyRepository extends IdempotencyReads {
  put(scope: string, key: string, record: IdempotencyRecord): Promise<void>;
  /** `put` of each answer in `scope`, in one write; a key may appear once (an Error otherwise). */
  putMany(scope: string, answers: ReadonlyArray<{ key: string; record: IdempotencyRecord }>): Promise<void>;
}

export interface SecretRepository extends SecretReads {
  /** Inserts a tenant secret; an existing one is kept (secrets are created once, rotated explicitly). */
  insertTenantSecret(secret: TenantSecretRecord): Promise<void>;
  /** Stores a fleet secret once; returns the stored one (an existing secret is never replaced). */
  putFleetSecretOnce(secret: StoredFleetSecret): Promise<StoredFleetSecret>;
  /** Stores or replaces a fleet secret (credentials given again at a start). */
  putFleetSecret(secret: StoredFleetSecret): Promise<void>;
  /** Stores the fleet CA once; returns the stored one (an existing CA is never replaced). */
  putCaOnce(ca: StoredCa): Promise<StoredCa>;
  /** Re-seals every sealed value (CA key, tenant secrets, fleet secrets, upgrades' passwords) with `reseal`; returns how many changed. */
  resealAll(reseal: (sealed: string, where: SealedAt) => string): Promise<number>;
}

export interface TokenRepository extends TokenReads {
  /** StoreConflictError when a live operator token has the name. */
  insert(record: TokenRecord, createdBy: string): Promise<void>;
  /** Marks a single-use token used, only if nobody did first; false = already used, revoked or gone. */
  markUsed(hash: string, at: number): Promise<boolean>;
  /** Revokes the live operator token of a name; false when there is none. */
  revokeOperator(name: string, at: number): Promise<boolean>;
}

export interface BackupRepository extends BackupReads {
  /** Inserts or replaces the tenant's stanza row. */
  putStanza(stanza: StanzaRecord): Promise<void>;
  /** `putStanza` of each stanza, in one write; a tenant may appear once (an Error otherwise). */
  putStanzaMany(stanzas: readonly StanzaRecord[]): Promise<void>;
  /** StoreConflictError for a second RUNNING backup of a tenant. */
  insert(backup: BackupRecord): Promise<void>;
  update(backup: BackupRecord): Promise<void>;
}

export interface RestoreRepository extends RestoreReads {
  /** StoreConflictError for a second RUNNING restore into a tenant. */
  insert(restore: RestoreRecord): Promise<void>;
  update(restore: RestoreRecord): Promise<void>;
}

export interface OperationRepository extends OperationReads {
  /** Inserts or replaces the tenant's operation row. */
  put(operation: OperationRecord): Promise<void>;
  delete(tenantId: string): Promise<void>;
}

export interface UpgradeRepository extends UpgradeReads {
  /** Inserts or replaces the tenant's upgrade row. */
  put(upgrade: UpgradeRecord): Promise<void>;
  delete(tenantId: string): Promise<void>;
}

export interface MoveRepository extends MoveReads {
  /** Inserts or replaces the tenant's move row. */
  put(move: MoveRecord): Promise<void>;
  delete(tenantId: string): Promise<void>;
}

export interface InitSqlRepository extends InitSqlReads {
  /** Inserts or replaces the tenant's init SQL row. */
  put(record: InitSqlRecord): Promise<void>;
}

/** What a caller records in a transaction because only it knows (the store records the rest). */
export type RecordedChange =
  /** The desired set of the tenant's hosts changed (or only of `hostId`): agents get a delta. */
  | { kind: 'desired'; tenantId: string; hostId?: string }
  /** Room may have been freed (uncordon, host back, resize): the parked backlog is walked again. */
  | { kind: 'room' }
  /** A tenant waits for placement now (created, recreated): the scheduler runs without waiting for its tick. */
  | { kind: 'place'; tenantId: string };

/** One transaction: every repository, writable, plus the changes the caller records. */
export interface StoreTx extends StoreReads {
  readonly tenants: TenantRepository;
  readonly placements: PlacementRepository;
  readonly hosts: HostRepository;
  readonly users: UserRepository;
  readonly databases: DatabaseRepository;
  readonly routes: RouteRepository;
  readonly events: EventRepository;
  readonly idempotency: IdempotencyRepository;
  readonly secrets: SecretRepository;
  readonly tokens: TokenRepository;
  readonly backups: BackupRepository;
  readonly restores: RestoreRepository;
  readonly operations: OperationRepository;
  readonly initSql: InitSqlRepository;
  readonly upgrades: UpgradeRepository;
  readonly moves: MoveRepository;
  /** Publishes `change` with this transaction's commit (and never if it rolls back). */
  record(change: RecordedChange): void;
}

/** What one committed transaction changed, in the order it happened. */
export interface Commit {
  routeChanges: readonly RouteChange[];
  events: readonly EventRecord[];
  /** Desired sets to send: per tenant, all its hosts (hostId undefined) or the ones named. */
  desired: ReadonlyArray<{ tenantId: string; hostId?: string }>;
  /** Hosts whose placements were inserted or deleted (cached allocations are stale). */
  placementHosts: readonly string[];
  /** A placement or tenant went, or the caller recorded room: capacity may have been freed. */
  roomFreed: boolean;
  /** Tenants that wait for placement since this commit. */
  toPlace: readonly string[];
}

/** Options of one transaction. */
export interface TransactionOptions {
  /**
   * Group commit: transactions started in the same turn of the event loop share one durable
   * commit (one fsync), each in its own savepoint, so a throw rolls back only its own writes.
   * For the hot creates (tenants, users, passwords).
   */
  grouped?: boolean;
}

/** The store. */
export interface Store {
  /** Reads outside a transaction: each call sees committed data. */
  readonly read: StoreReads;
  /**
   * Runs `fn` as one transaction; resolves with its result once the commit is durable. A throw
   * rolls everything back and rejects with that error.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Calls `listener` after each commit (one that changed nothing is not published). */
  subscribe(listener: (commit: Commit) => void): () => void;
  /** Where the store lives, for logs and /healthz (never a password). */
  readonly location: string;
  /** Schema version after migrations. */
  readonly schemaVersion: number;
  /**
   * Statements sent to a store across the network so far, on the writer connection and on the read
   * connections: each is a round trip, what bounds such a store. Absent where the store answers
   * in-process (SQLite).
   */
  readonly statements?: () => { writer: number; read: number };
  /**
   * Commits that wrote something so far (each a durable write: an fsync of SQLite's log, on the
   * event loop). A transaction that changed no row commits nothing durable and is not counted.
   * Absent where the store does not count them (PostgreSQL: its statements are counted instead).
   */
  readonly durableCommits?: () => number;
  close(): Promise<void>;
}
