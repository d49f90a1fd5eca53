/**
 * The default store: one SQLite file through better-sqlite3, WAL journal with synchronous=FULL so
 * a transaction is on disk (WAL fsynced) before `transaction()` resolves and the API answers.
 *
 * better-sqlite3 is synchronous; the contract is async. One connection serves everything, so
 * transactions run one at a time from a queue: a transaction holds BEGIN IMMEDIATE .. COMMIT
 * across the awaits of its function (which only await this store, so no timer or I/O callback runs
 * inside it), and a standalone read that arrives meanwhile waits for the commit, so it never sees
 * a transaction in flight. Calling `store.read` or `store.transaction` from inside a transaction
 * would wait for itself: it is refused with an error naming the mistake instead.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import Database from 'better-sqlite3';
import { StoreConflictError, StoreUnavailableError } from '../domain/errors.js';
import type { Commit, IdempotencyRecord, RecordedChange, Store, StoreReads, StoreTx, TransactionOptions } from './contract.js';
import type { SecurityStore } from './security-store.js';
import type { ChangeSink, SqliteTables } from './sqlite-tables.js';
import type { EventRecord, RouteChange } from '../domain/model.js';

/** Grouped transactions per commit at most. */
const MAX_GROUP = 256;

/**
 * How long one group commit may take in further grouped transactions: a group runs on the event
 * loop from its first statement to its commit, and a count alone does not bound that (the first
 * reports of a fleet's first start are hundreds of instances each). Past it, the group commits and
 * the rest go in the next turn, after sockets were read.
 */
const GROUP_TURN_MS = 20;

/** SQLite result codes that mean "cannot use the file now", not a bug in a statement. */
const UNAVAILABLE = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN|CORRUPT|NOTADB|NOMEM|PROTOCOL)/;

/** Turns a better-sqlite3 error into the contract's typed errors; any other error passes unchanged. */
export function storeError(err: unknown): unknown {
  if (!(err instanceof Database.SqliteError)) return err;
  if (err.code.startsWith('SQLITE_CONSTRAINT')) return new StoreConflictError(`the store refused the write: ${err.message}`, { cause: err });
  if (UNAVAILABLE.test(err.code)) return new StoreUnavailableError('the store cannot be written right now; retry', { cause: err });
  // A statement the schema does not accept: a bug, reported without the driver's code.
  return new Error(`store statement failed: ${err.message}`, { cause: err });
}

/** What one transaction changed so far; a rolled-back savepoint cuts it back to a mark. */
class Collector implements ChangeSink {
  readonly routeChanges: RouteChange[] = [];
  readonly events: EventRecord[] = [];
  readonly desired: Array<{ tenantId: string; hostId?: string }> = [];
  readonly placementHosts: string[] = [];
  roomFreed = false;
  readonly toPlace: string[] = [];

  route(change: RouteChange): void {
    this.routeChanges.push(change);
  }
  event(event: EventRecord): void {
    this.events.push(event);
  }
  placement(hostId: string | undefined, freed: boolean): void {
    if (hostId !== undefined) this.placementHosts.push(hostId);
    if (freed) this.roomFreed = true;
  }
  record(change: RecordedChange): void {
    if (change.kind === 'desired')
      this.desired.push(change.hostId === undefined ? { tenantId: change.tenantId } : { tenantId: change.tenantId, hostId: change.hostId });
    else if (change.kind === 'room') this.roomFreed = true;
    else this.toPlace.push(change.tenantId);
  }
  mark(): number[] {
    return [this.routeChanges.length, this.events.length, this.desired.length, this.placementHosts.length, this.toPlace.length, this.roomFreed ? 1 : 0];
  }
  reset(mark: number[]): void {
    const [routes, events, desired, hosts, toPlace, room] = mark as [number, number, number, number, number, number];
    this.routeChanges.length = routes;
    this.events.length = events;
    this.desired.length = desired;
    this.placementHosts.length = hosts;
    this.toPlace.length = toPlace;
    this.roomFreed = room === 1;
  }
  empty(): boolean {
    return this.routeChanges.length + this.events.length + this.desired.length + this.placementHosts.length + this.toPlace.length === 0 && !this.roomFreed;
  }
  commit(): Commit {
    return {
      routeChanges: this.routeChanges,
      events: this.events,
      desired: this.desired,
      placementHosts: [...new Set(this.placementHosts)],
      roomFreed: this.roomFreed,
      toPlace: this.toPlace,
    };
  }
}

type Call = <T>(f: () => T) => Promise<T>;

/** An Error when a batch names one key twice (the batch would not say which of its records wins). */
function once<T>(list: readonly T[], key: (x: T) => string, what: string): readonly T[] {
  if (new Set(list.map(key)).size !== list.length) throw new Error(`${what} was given a tenant twice`);
  return list;
}
type Repositories = Omit<StoreTx, 'record'>;

/** The repositories over the tables; `read` runs a read, `write` a write. */
function repositories(t: SqliteTables, s: SecurityStore, read: Call, write: Call): Repositories {
  return {
    tenants: {
      get: (id) => read(() => t.getTenant(id)),
      getMany: (ids) => read(() => t.getTenants(ids)),
      list: (filter, page) => read(() => t.listTenants(filter, page)),
      count: (filter) => read(() => t.countTenants(filter)),
      countByStatus: () => read(() => t.countTenantsByStatus()),
      listWaiting: (limit, after) => read(() => t.listWaitingTenants(limit, after)),
      listReplicated: () => read(() => t.listReplicatedTenants()),
      listIdleSuspend: () => read(() => t.listIdleSuspendTenants()),
      insert: (tenant) => write(() => t.insertTenant(tenant)),
      insertMany: (list) => write(() => t.batch(() => list.forEach((x) => t.insertTenant(x)), list.length)),
      update: (tenant) => write(() => t.updateTenant(tenant)),
      updateMany: (list) => write(() => t.batch(() => once(list, (x) => x.id, 'tenants.updateMany').forEach((x) => t.updateTenant(x)), list.length)),
      delete: (id) => write(() => t.deleteTenant(id)),
    },
    placements: {
      list: (filter) => read(() => t.listPlacements(filter)),
      listOfTenants: (ids) => read(() => t.listPlacementsOfTenants(ids)),
      listRetriesDue: (now) => read(() => t.listRetriesDue(now)),
      allocations: () => read(() => t.hostAllocations()),
      allocationOf: (hostId) => read(() => t.hostAllocation(hostId)),
      creating: () => read(() => t.hostsCreating()),
      insert: (p) => write(() => t.insertPlacement(p)),
      insertMany: (list) => write(() => t.batch(() => list.forEach((p) => t.insertPlacement(p)), list.length)),
      update: (p) => write(() => t.updatePlacement(p)),
      updateMany: (list) =>
        write(() => t.batch(() => once(list, (p) => `${p.tenantId}\0${p.hostId}`, 'placements.updateMany').forEach((p) => t.updatePlacement(p)), list.length)),
      delete: (tenantId, hostId) => write(() => t.deletePlacement(tenantId, hostId)),
    },
    hosts: {
      get: (id) => read(() => t.getHost(id)),
      getMany: (ids) => read(() => t.getHosts(ids)),
      list: () => read(() => t.listHosts()),
      put: (host) => write(() => t.putHost(host)),
      nextGeneration: (hostId) => write(() => t.nextHostGeneration(hostId)),
      desiredSent: (hostId) => read(() => t.desiredSent(hostId)),
      noteDesiredSent: (hostId, sent) => write(() => t.noteDesiredSent(hostId, sent)),
    },
    users: {
      get: (tenantId, name) => read(() => t.getUser(tenantId, name)),
      list: (tenantId) => read(() => t.listUsers(tenantId)),
      listOfTenants: (ids) => read(() => t.listUsersOfTenants(ids)),
      insert: (user) => write(() => t.insertUser(user)),
      insertMany: (list) => write(() => t.batch(() => list.forEach((u) => t.insertUser(u)), list.length)),
      update: (user) => write(() => t.updateUser(user)),
      delete: (tenantId, name) => write(() => t.deleteUser(tenantId, name)),
    },
    databases: {
      get: (tenantId, name) => read(() => t.getDatabase(tenantId, name)),
      list: (tenantId) => read(() => t.listDatabases(tenantId)),
      listOfTenants: (ids) => read(() => t.listDatabasesOfTenants(ids)),
      insert: (db) => write(() => t.insertDatabase(db)),
      insertMany: (list) => write(() => t.batch(() => list.forEach((d) => t.insertDatabase(d)), list.length)),
      update: (db) => write(() => t.updateDatabase(db)),
      delete: (tenantId, name) => write(() => t.deleteDatabase(tenantId, name)),
    },
    routes: {
      get: (tenantId) => read(() => t.getRoute(tenantId)),
      getMany: (ids) => read(() => t.getRoutes(ids)),
      list: () => read(() => t.listRoutes()),
      listAfter: (tenantId, limit) => read(() => t.listRoutesAfter(tenantId, limit)),
      revision: () => read(() => t.routeRevision()),
      changesSince: (revision, limit) => read(() => t.routeChangesSince(revision, limit)),
      put: (route) => write(() => t.putRoute(route)),
      putMany: (list) => write(() => t.batch(() => once(list, (r) => r.tenantId, 'routes.putMany').map((r) => t.putRoute(r)), list.length)),
      delete: (tenantId) => write(() => t.deleteRoute(tenantId)),
    },
    events: {
      list: (filter) => read(() => t.listEvents(filter)),
      append: (event) => write(() => t.appendEvent(event)),
      appendMany: (list) => write(() => t.batch(() => list.map((e) => t.appendEvent(e)), list.length)),
    },
    idempotency: {
      get: (scope, key) => read(() => t.getIdempotency(scope, key)),
      getMany: (scope, keys) =>
        read(() => {
          const found = new Map<string, IdempotencyRecord>();
          for (const key of new Set(keys)) {
            const record = t.getIdempotency(scope, key);
            if (record) found.set(key, record);
          }
          return found;
        }),
      put: (scope, key, record) => write(() => t.putIdempotency(scope, key, record)),
      putMany: (scope, answers) =>
        write(() => t.batch(() => once(answers, (a) => a.key, 'idempotency.putMany').forEach((a) => t.putIdempotency(scope, a.key, a.record)), answers.length)),
    },
    secrets: {
      getTenantSecret: (tenantId, name) => read(() => t.getTenantSecret(tenantId, name)),
      getFleetSecret: (name) => read(() => s.getFleetSecret(name)),
      getCa: () => read(() => s.getCa()),
      insertTenantSecret: (secret) => write(() => t.insertTenantSecret(secret)),
      putFleetSecretOnce: (secret) => write(() => s.putFleetSecretOnce(secret)),
      putFleetSecret: (secret) => write(() => s.putFleetSecret(secret)),
      putCaOnce: (ca) => write(() => s.putCaOnce(ca)),
      resealAll: (reseal) => write(() => s.resealAll(reseal)),
    },
    tokens: {
      find: (hash) => read(() => s.findToken(hash)),
      findOperator: (name) => read(() => s.findOperatorToken(name)),
      listOperators: (includeRevoked) => read(() => s.listOperatorTokens(includeRevoked)),
      insert: (record, createdBy) => write(() => s.insertToken(record, createdBy)),
      markUsed: (hash, at) => write(() => s.markTokenUsed(hash, at)),
      revokeOperator: (name, at) => write(() => s.revokeOperatorToken(name, at)),
    },
    backups: {
      getStanza: (tenantId) => read(() => t.getStanza(tenantId)),
      getStanzaMany: (tenantIds) => read(() => t.getStanzas(tenantIds)),
      get: (tenantId, id) => read(() => t.getBackup(tenantId, id)),
      list: (tenantId) => read(() => t.listBackups(tenantId)),
      listRunning: () => read(() => t.listRunningBackups()),
      countByStatus: () => read(() => t.countBackupsByStatus()),
      putStanza: (stanza) => write(() => t.putStanza(stanza)),
      putStanzaMany: (list) => write(() => t.batch(() => once(list, (x) => x.tenantId, 'backups.putStanzaMany').forEach((x) => t.putStanza(x)), list.length)),
      insert: (backup) => write(() => t.insertBackup(backup)),
      update: (backup) => write(() => t.updateBackup(backup)),
    },
    restores: {
      get: (id) => read(() => t.getRestore(id)),
      list: (targetTenantId) => read(() => t.listRestores(targetTenantId)),
      listOfTargets: (ids) => read(() => t.listRestoresOfTargets(ids)),
      listRunning: () => read(() => t.listRunningRestores()),
      listActive: () => read(() => t.listActiveRestores()),
      insert: (restore) => write(() => t.insertRestore(restore)),
      update: (restore) => write(() => t.updateRestore(restore)),
    },
    operations: {
      get: (tenantId) => read(() => t.getOperation(tenantId)),
      list: () => read(() => t.listOperations()),
      put: (op) => write(() => t.putOperation(op)),
      delete: (tenantId) => write(() => t.deleteOperation(tenantId)),
    },
    upgrades: {
      get: (tenantId) => read(() => t.getUpgrade(tenantId)),
      getMany: (ids) => read(() => t.getUpgrades(ids)),
      list: () => read(() => t.listUpgrades()),
      listOnHost: (hostId) => read(() => t.listUpgrades(hostId)),
      put: (u) => write(() => t.putUpgrade(u)),
      delete: (tenantId) => write(() => t.deleteUpgrade(tenantId)),
    },
    moves: {
      get: (tenantId) => read(() => t.getMove(tenantId)),
      list: () => read(() => t.listMoves()),
      put: (m) => write(() => t.putMove(m)),
      delete: (tenantId) => write(() => t.deleteMove(tenantId)),
    },
    initSql: {
      get: (tenantId) => read(() => t.getInitSql(tenantId)),
      listOpen: () => read(() => t.listOpenInitSql()),
      put: (record) => write(() => t.putInitSql(record)),
    },
  };
}

/** Runs `f` now, as a promise of its result (or of its error, typed). */
function attempt<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (err) {
    return Promise.reject(storeError(err));
  }
}

/**
 * How long queued transactions may run back to back before the event loop gets a turn. One settles
 * and the next starts in a microtask, so a backlog (the Hellos and full desired sets of a fleet
 * reconnecting after a restart) would hold the loop until all of it drained, seconds in which no
 * socket is read: agents' heartbeats wait unread and live hosts look silent.
 */
const QUEUE_TURN_MS = 20;

/** A job of the queue: a read (runs at once) or a transaction (holds the queue until it settles). */
type Job = () => Promise<unknown> | undefined;

/** A grouped transaction waiting for its shared commit. */
interface GroupItem {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** The better-sqlite3 implementation of the store contract. The database must be migrated already. */
export class SqliteStore implements Store {
  readonly read: StoreReads;
  private readonly repos: Repositories;
  private readonly inside = new AsyncLocalStorage<true>();
  private readonly queue: Job[] = [];
  private busy = false;
  /** When the queue's current run of jobs began (performance clock), to give the event loop a turn (QUEUE_TURN_MS). */
  private runStartedAt = 0;
  private readonly grouped: GroupItem[] = [];
  private readonly listeners = new Set<(commit: Commit) => void>();
  /** Rows changed by the connection when the open transaction began (SQLite's total_changes()). */
  private changesAtBegin = 0;
  private readonly totalChanges: Database.Statement;
  private commitsThatWrote = 0;
  readonly durableCommits = (): number => this.commitsThatWrote;

  constructor(
    private readonly db: Database.Database,
    private readonly tables: SqliteTables,
    security: SecurityStore,
    readonly location: string,
    readonly schemaVersion: number,
    private readonly onListenerError: (err: unknown) => void = (err) => process.emitWarning(`a store commit listener failed: ${String(err)}`),
  ) {
    this.totalChanges = db.prepare('SELECT total_changes()').pluck();
    const misuse = (): Promise<never> => Promise.reject(new Error('store.read cannot write; write inside store.transaction()'));
    this.read = repositories(tables, security, (f) => this.readCall(f), misuse);
    this.repos = repositories(tables, security, attempt, (f) => {
      if (!this.db.inTransaction) return Promise.reject(new Error('a write after its transaction ended: await every write inside the transaction function'));
      return attempt(f);
    });
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.inside.getStore())
      return Promise.reject(new Error('store.transaction() inside a transaction: use the tx you were given (a transaction never nests)'));
    return new Promise<T>((resolve, reject) => {
      if (options.grouped) {
        if (this.grouped.length === 0) setImmediate(() => this.enqueue(() => this.commitGroup()));
        this.grouped.push({ fn, resolve: resolve as (value: unknown) => void, reject });
        return;
      }
      this.enqueue(() => this.runOne(fn).then(resolve, reject));
    });
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    // After every queued transaction settled.
    await new Promise<void>((resolve) => this.enqueue(() => void resolve()));
    if (this.db.open) this.db.close();
  }

  private readCall<T>(f: () => T): Promise<T> {
    if (this.inside.getStore()) return Promise.reject(new Error('store.read inside a transaction would wait for itself: read through the tx'));
    if (!this.busy && this.queue.length === 0) return attempt(f);
    return new Promise<T>((resolve, reject) => this.enqueue(() => void attempt(f).then(resolve, reject)));
  }

  private enqueue(job: Job): void {
    if (!this.busy && this.queue.length === 0) this.runStartedAt = performance.now();
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    while (!this.busy && this.queue.length > 0) {
      const running = this.queue.shift()!();
      if (running) {
        this.busy = true;
        void running.finally(() => {
          this.busy = false;
          if (this.queue.length > 0 && performance.now() - this.runStartedAt > QUEUE_TURN_MS) {
            // The next job waits one turn of the event loop (I/O is read first); a job queued
            // meanwhile starts it sooner, in order.
            setImmediate(() => {
              this.runStartedAt = performance.now();
              this.pump();
            });
          } else this.pump();
        });
      }
    }
  }

  private txView(collector: Collector): StoreTx {
    return { ...this.repos, record: (change) => collector.record(change) };
  }

  private begin(collector: Collector): void {
    this.tables.changes = collector;
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      throw storeError(err);
    }
    this.changesAtBegin = this.totalChanges.get() as number;
    this.tables.transactionBegan();
  }

  private finishCommit(collector: Collector): void {
    const wrote = (this.totalChanges.get() as number) !== this.changesAtBegin;
    try {
      this.db.exec('COMMIT');
      if (wrote) this.commitsThatWrote += 1;
    } catch (err) {
      // The commit itself failed (disk full, I/O error): nothing of it was written.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw storeError(err);
    } finally {
      this.tables.changes = collector; // replaced by the next begin
    }
    this.tables.transactionCommitted();
  }

  private async runOne<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const collector = new Collector();
    this.begin(collector);
    let result: T;
    try {
      result = await this.inside.run(true, () => fn(this.txView(collector)));
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw storeError(err);
    }
    this.finishCommit(collector);
    this.publish(collector);
    return result;
  }

  /**
   * Commits queued grouped transactions, taken one at a time until MAX_GROUP or GROUP_TURN_MS;
   * the rest go in the next turn.
   */
  private async commitGroup(): Promise<void> {
    if (this.grouped.length === 0) return; // taken by the group before this one
    const items: GroupItem[] = [];
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    const collector = new Collector();
    const started = performance.now();
    try {
      this.begin(collector);
    } catch (error) {
      // Nothing began (the store closed under it, a disk error): what this group would take fails, never spins.
      for (const item of this.grouped.splice(0, MAX_GROUP)) item.reject(error);
      if (this.grouped.length > 0) setImmediate(() => this.enqueue(() => this.commitGroup()));
      return;
    }
    try {
      while (this.grouped.length > 0 && items.length < MAX_GROUP && (items.length === 0 || performance.now() - started < GROUP_TURN_MS)) {
        const item = this.grouped.shift()!;
        items.push(item);
        const mark = collector.mark();
        this.db.exec('SAVEPOINT grouped');
        try {
          outcomes.push({ ok: true, value: await this.inside.run(true, () => item.fn(this.txView(collector))) });
          this.db.exec('RELEASE grouped');
        } catch (error) {
          // SQLite itself rolled the whole group back (disk full, I/O error): every item fails.
          if (!this.db.inTransaction) throw error;
          this.db.exec('ROLLBACK TO grouped');
          this.db.exec('RELEASE grouped');
          collector.reset(mark);
          outcomes.push({ ok: false, error: storeError(error) });
        }
      }
      this.finishCommit(collector);
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const item of items) item.reject(storeError(error));
      return;
    } finally {
      if (this.grouped.length > 0) setImmediate(() => this.enqueue(() => this.commitGroup()));
    }
    this.publish(collector);
    items.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }

  private publish(collector: Collector): void {
    if (collector.empty()) return;
    const commit = collector.commit();
    for (const listener of this.listeners) {
      try {
        listener(commit);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
