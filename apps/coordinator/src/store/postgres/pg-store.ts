/**
 * The PostgreSQL store: the contract of contract.ts on a PostgreSQL server (or a primary with a
 * synchronous standby, named together in the URL), for several coordinators over one store.
 *
 * Writes run one transaction at a time on one writer connection, as on SQLite: that makes every
 * transaction serializable against the others without retries, and makes route revisions and event
 * ids grow in commit order (a follower reading by revision never sees a later one before an
 * earlier one). Group commit: grouped transactions waiting together share one COMMIT (one WAL
 * flush, one round trip to the synchronous standby), each in its own savepoint. With a fence
 * (several coordinators), every commit ends with the leader-lease check, so a coordinator that is
 * not the leader, or stopped being it, commits nothing. Reads outside a transaction go through a
 * small pool and see committed data only.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Logger } from '@pgs/service-kit';
import pg from 'pg';
import { StoreUnavailableError } from '../../domain/errors.js';
import type { Commit, Store, StoreReads, StoreTx, TransactionOptions } from '../contract.js';
import { LeaseLostError, fenceAndCommit } from './leader-lease-sql.js';
import { clientConfig, connectPrimary, connectTo, findPrimary, redactStoreUrl, splitStoreUrl } from './pg-connection.js';
import { isConnectionLost, toStoreError } from './pg-errors.js';
import { startFollowerFeed, type FollowedChanges, type FollowerFeed } from './follower-feed.js';
import { emptyChanges, makeReads, makeTx, snapshotChanges, type Changes, type Db } from './pg-repositories.js';
import { PgSchemaTooNewError, migratePostgres } from './pg-schema.js';

/** Set while a transaction's function runs: a nested transaction or a store.read there is a bug. */
const insideTransaction = new AsyncLocalStorage<true>();

/** Grouped transactions per commit: bounds how long one commit keeps the others waiting. */
const MAX_GROUP = 256;

/** How long a read may wait for a free read connection before it fails as unavailable. */
const READ_QUEUE_WAIT_MS = 60_000;

/** Who may write: the lease holder and epoch to fence every commit with; undefined = not the leader now. */
export type WriteFence = () => { holder: string; epoch: number } | undefined;

/** Options of openPostgresStore. */
export interface PostgresStoreOptions {
  /** postgres://user:password@host:port[,host:port]/database */
  url: string;
  /** Route changes kept for WatchRoutes deltas. */
  routeHistory: number;
  log: Logger;
  /** Several coordinators: fence every commit with the leader lease. Absent: one coordinator, no fence. */
  fence?: WriteFence;
  /** Read connections (default 4). */
  readConnections?: number;
  /** Epoch ms for schema_migrations. */
  now?: () => number;
}

interface Pending {
  fn: (tx: StoreTx) => Promise<unknown>;
  grouped: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Every statement runs as a named prepared statement (named by its text): PostgreSQL parses and
 * plans it once per connection, which takes a good part off each round trip. The store's SQL has a
 * bounded number of shapes (filters vary in which clauses they have, never in inlined values).
 */
const statementNames = new Map<string, string>();
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (!name) {
    name = `pgs_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`;
    statementNames.set(sql, name);
  }
  return name;
}

function asDb(run: (q: pg.QueryConfig) => Promise<pg.QueryResult>): Db {
  return {
    query: async (sql: string, params?: readonly unknown[]) => {
      try {
        const r = await run({ name: statementName(sql), text: sql, values: params as unknown[] | undefined });
        return { rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 };
      } catch (err) {
        throw toStoreError(err, 'store query failed');
      }
    },
  };
}

/** Opens (and migrates) the store at `url`; resolves once the primary answered. */
export async function openPostgresStore(o: PostgresStoreOptions): Promise<PostgresStore> {
  const urls = splitStoreUrl(o.url);
  const { url: primary, client } = await connectPrimary(urls);
  try {
    const { version } = await migratePostgres(client, (o.now ?? Date.now)());
    return new PostgresStore(o, urls, primary, client, version);
  } catch (err) {
    await client.end().catch(() => undefined);
    if (err instanceof PgSchemaTooNewError) throw err;
    throw toStoreError(err, 'cannot open the PostgreSQL store');
  }
}

/** The PostgreSQL implementation of Store. */
export class PostgresStore implements Store {
  readonly location: string;
  readonly schemaVersion: number;
  readonly read: StoreReads;
  private readonly listeners = new Set<(commit: Commit) => void>();
  private readonly queue: Pending[] = [];
  private draining = false;
  /** Transactions handed to transaction() so far, and how many of them have settled (in that order). */
  private started = 0;
  private settled = 0;
  private readonly settleWaiters: Array<{ target: number; resume: () => void }> = [];
  private closed = false;
  private writer: pg.Client | undefined;
  private pool: pg.Pool;
  private primaryUrl: string;
  private readonly sent = { writer: 0, read: 0 };
  readonly statements = (): { writer: number; read: number } => ({ ...this.sent });

  constructor(
    private readonly o: PostgresStoreOptions,
    private readonly urls: readonly string[],
    primary: string,
    writer: pg.Client,
    schemaVersion: number,
  ) {
    this.location = redactStoreUrl(o.url);
    this.schemaVersion = schemaVersion;
    this.primaryUrl = primary;
    this.writer = writer;
    this.pool = this.makePool(primary);
    this.read = makeReads(
      asDb((q) => {
        this.sent.read++;
        return this.readQuery(q);
      }),
      o.routeHistory,
    );
  }

  private makePool(url: string): pg.Pool {
    const config = clientConfig(url);
    // The pool bounds the wait for a free connection with its connect timeout: a burst of reads on
    // a loaded machine (every agent's hello at start-up) then failed as "timeout exceeded when
    // trying to connect", the store looking unreachable while it answered. Each new connection
    // keeps its own connect timeout; a read waits its turn for as long as READ_QUEUE_WAIT_MS.
    class ReadClient extends pg.Client {
      constructor(c?: pg.ClientConfig) {
        super({ ...c, connectionTimeoutMillis: config.connectionTimeoutMillis });
      }
    }
    const pool = new pg.Pool({
      ...config,
      connectionTimeoutMillis: READ_QUEUE_WAIT_MS,
      Client: ReadClient,
      max: this.o.readConnections ?? 4,
      idleTimeoutMillis: 30_000,
    });
    pool.on('error', (err) => this.o.log.warn({ err }, 'idle store connection failed'));
    return pool;
  }

  /**
   * A read waits for the transactions started before it to settle, as on SQLite (one connection
   * serves both): a caller that wrote and then reads sees its write, never the state before it.
   * With no write in flight it does not wait at all.
   */
  private writesBefore(): Promise<void> {
    const target = this.started;
    if (this.settled >= target) return Promise.resolve();
    return new Promise((resume) => this.settleWaiters.push({ target, resume }));
  }

  /**
   * Waiters arrive in order of their targets (`started` only grows), so the ones due are a prefix:
   * taken in one splice. Removing each from the middle cost a move of every later one, quadratic
   * in the waiters, when thousands of agents' reads wait behind a group of writes.
   */
  private settle(n: number): void {
    this.settled += n;
    let due = 0;
    while (due < this.settleWaiters.length && (this.settleWaiters[due]?.target ?? Infinity) <= this.settled) due++;
    if (due === 0) return;
    for (const w of this.settleWaiters.splice(0, due)) w.resume();
  }

  private async readQuery(q: pg.QueryConfig): Promise<pg.QueryResult> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    if (insideTransaction.getStore()) throw new Error('store.read used inside a transaction: read through the transaction (tx) instead');
    await this.writesBefore();
    try {
      return await this.pool.query(q);
    } catch (err) {
      if (isConnectionLost(err)) void this.relocate();
      throw err;
    }
  }

  /** After a lost connection: find the primary again (the standby may have been promoted) and move the pool there. */
  private relocating: Promise<void> | undefined;
  private relocate(): Promise<void> {
    return (this.relocating ??= (async () => {
      try {
        const url = await findPrimary(this.urls);
        if (url !== this.primaryUrl) {
          this.o.log.warn({ store: redactStoreUrl(url) }, 'store primary moved');
          const old = this.pool;
          this.primaryUrl = url;
          this.pool = this.makePool(url);
          void old.end().catch(() => undefined);
        }
      } catch (err) {
        this.o.log.warn({ err }, 'store primary not found');
      }
    })().finally(() => (this.relocating = undefined)));
  }

  private async writerClient(): Promise<pg.Client> {
    if (this.writer) return this.writer;
    await this.relocate();
    const c = await connectTo(this.primaryUrl);
    this.writer = c;
    return c;
  }

  private dropWriter(): void {
    const w = this.writer;
    this.writer = undefined;
    void w?.end().catch(() => undefined);
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is closed'));
    if (insideTransaction.getStore())
      return Promise.reject(new Error('a transaction never nests: use the tx the outer transaction was given (called inside a transaction)'));
    this.started++;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, grouped: options.grouped === true, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = true;
        // Grouped transactions started in this turn of the event loop join the first commit.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      let n = 1;
      if (head?.grouped) while (n < this.queue.length && n < MAX_GROUP && this.queue[n]?.grouped) n++;
      await this.runBatch(this.queue.splice(0, n));
      this.settle(n);
    }
    this.draining = false;
  }

  private async runBatch(items: Pending[]): Promise<void> {
    const fail = (error: unknown): void => items.forEach((i) => i.reject(error));
    const fence = this.o.fence?.();
    if (this.o.fence && !fence) return fail(new LeaseLostError('this coordinator is not the leader; writes go to the leader'));
    let client: pg.Client;
    try {
      client = await this.writerClient();
    } catch (err) {
      return fail(toStoreError(err, 'cannot reach the store'));
    }
    const db = asDb((q) => {
      this.sent.writer++;
      return client.query(q);
    });
    const raw = (sql: string): Promise<unknown> =>
      (this.sent.writer++, client.query(sql)).catch((err: unknown) => {
        throw toStoreError(err, `store ${sql.split(' ')[0]} failed`);
      });
    const changes = emptyChanges();
    const outcomes: Outcome[] = [];
    try {
      await raw('BEGIN');
      const grouped = items.length > 1 || items[0]?.grouped === true;
      // Each grouped transaction in a savepoint; releasing one and opening the next is one round trip.
      let open = false;
      for (const item of items) {
        const tx = makeTx(db, changes, this.o.routeHistory);
        if (!grouped) {
          outcomes.push({ ok: true, value: await insideTransaction.run(true, () => item.fn(tx)) });
          continue;
        }
        const before = snapshotChanges(changes);
        await raw(open ? 'RELEASE SAVEPOINT pgs_grouped; SAVEPOINT pgs_grouped' : 'SAVEPOINT pgs_grouped');
        open = true;
        try {
          outcomes.push({ ok: true, value: await insideTransaction.run(true, () => item.fn(tx)) });
        } catch (error) {
          if (error instanceof StoreUnavailableError) throw error; // the connection or the lease is gone: the whole group is lost
          await raw('ROLLBACK TO SAVEPOINT pgs_grouped');
          Object.assign(changes, before);
          outcomes.push({ ok: false, error });
        }
      }
      if (fence) {
        this.sent.writer++;
        await fenceAndCommit(client, fence.holder, fence.epoch).catch((err: unknown) => {
          throw err instanceof LeaseLostError ? err : toStoreError(err, 'store COMMIT failed');
        });
      } else await raw('COMMIT');
    } catch (error) {
      // The caller's own error, a typed store error, or the fence: roll back and pass it on. A
      // connection that failed is not trusted again (a COMMIT lost in flight may or may not have landed).
      if (error instanceof StoreUnavailableError && !(error instanceof LeaseLostError)) this.dropWriter();
      else await raw('ROLLBACK').catch(() => this.dropWriter());
      return fail(error);
    }
    this.publish(changes);
    items.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) item.resolve(outcome.value);
      else item.reject(outcome?.error);
    });
  }

  private publish(c: Changes): void {
    const commit: Commit = {
      routeChanges: c.routeChanges,
      events: c.events,
      desired: c.desired,
      placementHosts: [...c.placementHosts],
      roomFreed: c.roomFreed,
      toPlace: c.toPlace,
    };
    const empty =
      commit.routeChanges.length === 0 &&
      commit.events.length === 0 &&
      commit.desired.length === 0 &&
      commit.placementHosts.length === 0 &&
      !commit.roomFreed &&
      commit.toPlace.length === 0;
    if (empty) return;
    for (const l of this.listeners) {
      try {
        l(commit);
      } catch (err) {
        // A subscriber's bug must not stop the writer: the commit is durable whatever it does.
        this.o.log.error({ err }, 'a commit subscriber failed');
      }
    }
  }

  subscribe(listener: (commit: Commit) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Follows what another coordinator commits (a follower's feed): `deliver` gets every route change
   * and event committed after the newest ones now in the store, in commit order, each once. Reads
   * go through the read pool to the primary; LISTEN runs on a connection of its own.
   */
  async follow(deliver: (changes: FollowedChanges) => void, safetyPollMs = 1000): Promise<FollowerFeed> {
    const now = await this.readQuery({
      text: 'SELECT (SELECT coalesce(max(revision), 0) FROM route_changes) AS revision, (SELECT coalesce(max(id), 0) FROM events) AS event_id',
    });
    const row = now.rows[0] as { revision: string | number; event_id: string | number };
    return startFollowerFeed({
      connect: () => connectTo(this.primaryUrl),
      query: (text, values) => this.readQuery({ text, values: [...values] }),
      afterRevision: Number(row.revision),
      afterEventId: Number(row.event_id),
      deliver,
      log: this.o.log.child({ component: 'follower-feed' }),
      safetyPollMs,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.draining) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    const w = this.writer;
    this.writer = undefined;
    await w?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
