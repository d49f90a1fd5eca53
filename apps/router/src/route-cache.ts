// The router's local copy of the route table: a SQLite file, so a restarted router routes at once
// (even with the coordinator down) and resumes the feed from the revision it holds. It also holds
// the tenants' SCRAM verifiers (never passwords), so the file is made 0600 (SQLite gives its WAL
// and shared-memory files the database file's mode).
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { PoolModeName, RouteBatch, RouteEntry, RouteStateName, RouterPeerEntry } from './route.js';

const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS routes (
  tenant_id        TEXT PRIMARY KEY,
  host_id          TEXT NOT NULL,
  address          TEXT NOT NULL,
  port             INTEGER NOT NULL,
  state            TEXT NOT NULL,
  reason           TEXT NOT NULL,
  external_access  INTEGER NOT NULL,
  connection_limit INTEGER NOT NULL,
  revision         INTEGER NOT NULL,
  pool_mode        TEXT NOT NULL DEFAULT 'NONE'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS route_users (
  tenant_id      TEXT NOT NULL,
  user_name      TEXT NOT NULL,
  scram_verifier TEXT NOT NULL,
  PRIMARY KEY (tenant_id, user_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS router_peers (
  router_id      TEXT PRIMARY KEY,
  cancel_address TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface RouteRow {
  tenant_id: string;
  host_id: string;
  address: string;
  port: number;
  state: string;
  reason: string;
  external_access: number;
  connection_limit: number;
  revision: number;
  pool_mode: string;
}

/**
 * Version 1 had no pool mode and no users: add them, and forget the revision so the feed sends a
 * snapshot that carries them (the routes held are served meanwhile, as passthrough).
 */
const MIGRATE_1_TO_2 = `
ALTER TABLE routes ADD COLUMN pool_mode TEXT NOT NULL DEFAULT 'NONE';
UPDATE meta SET value = 0 WHERE key = 'revision';
`;

/** Creates the cache file (or tightens an existing one) so only the router's user can read it. */
function restrictFileMode(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (fs.existsSync(f) && (fs.statSync(f).mode & 0o077) !== 0) fs.chmodSync(f, 0o600);
  }
}

function rowToRoute(row: RouteRow): RouteEntry {
  return {
    tenantId: row.tenant_id,
    hostId: row.host_id,
    address: row.address,
    port: row.port,
    state: row.state as RouteStateName,
    reason: row.reason,
    externalAccess: row.external_access === 1,
    connectionLimit: row.connection_limit,
    revision: row.revision,
    poolMode: row.pool_mode as PoolModeName,
  };
}

/** What a batch did, for logs and metrics. */
export interface ApplyResult {
  applied: boolean;
  revision: number;
  upserts: number;
  deletes: number;
}

/**
 * Routes and the revision they are at, in one SQLite file (WAL). Lookups are prepared
 * statements; each feed batch is one transaction, so a crash never leaves half a batch.
 */
export class RouteCache {
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], RouteRow>;
  readonly #upsert: Database.Statement<RouteRow>;
  readonly #delete: Database.Statement<[string]>;
  readonly #clear: Database.Statement<[]>;
  readonly #setMeta: Database.Statement<[string, number]>;
  readonly #countRoutes: Database.Statement<[], { n: number }>;
  readonly #getUser: Database.Statement<[string, string], { scram_verifier: string }>;
  readonly #deleteUsers: Database.Statement<[string]>;
  readonly #insertUser: Database.Statement<[string, string, string]>;
  readonly #clearUsers: Database.Statement<[]>;
  readonly #applyTx: (batch: RouteBatch, syncedAt: number) => ApplyResult;
  readonly #replacePeersTx: (peers: readonly RouterPeerEntry[]) => void;
  /**
   * Routes already read, in front of the prepared SELECT: a lookup per connection (and, in
   * transaction mode, a few per transaction) is then a Map get (the SELECT plus row mapping
   * measured at 4% of the router's CPU per connection). The writer clears it at every apply; a
   * read-only cache (a --workers worker, whose primary writes the file) when refresh() finds the
   * file changed. Misses are not kept, so made-up tenant names cannot grow it.
   */
  readonly #memo = new Map<string, RouteEntry>();
  /** Verifiers read so far, by tenant and user (known users only), until the next batch. */
  readonly #verifierMemo = new Map<string, string>();
  /** The instance TLS setting as last read (undefined: read it from the file at the next ask). */
  #instanceTls: boolean | undefined;
  readonly #getInstanceTls: Database.Statement<[], { value: number }>;
  /** Read-only: SQLite's data_version, which changes when another connection commits. */
  readonly #dataVersion: Database.Statement<[], number> | undefined;
  #seenVersion = 0;
  /** Told after every batch is committed (a --workers primary tells its workers). */
  #onApplied: (() => void) | undefined;
  #revision: number;
  #syncedAt: number;
  #count: number;

  /**
   * Opens (or creates) the cache file at `file`; `:memory:` for a throwaway cache. `readOnly`: a
   * --workers worker's view of the file its primary writes (WAL lets it read while the primary
   * writes); what it read stays in memory until refresh() sees that the file changed.
   */
  constructor(file: string, options: { readOnly?: boolean } = {}) {
    if (options.readOnly) {
      this.#db = new Database(file, { readonly: true, fileMustExist: true });
    } else {
      if (file !== ':memory:') {
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
        restrictFileMode(file);
      }
      this.#db = new Database(file);
      this.#db.pragma('journal_mode = WAL');
      // A lost last batch is re-sent by the feed (we resume from the stored revision), so NORMAL is safe.
      this.#db.pragma('synchronous = NORMAL');
      const version = this.#db.pragma('user_version', { simple: true }) as number;
      if (version !== 0 && version !== 1 && version !== SCHEMA_VERSION) {
        throw new Error(
          `route cache ${file} has schema version ${version}, this router knows ${SCHEMA_VERSION}; delete the file to rebuild it from the coordinator`,
        );
      }
      if (version === 1) this.#db.exec(MIGRATE_1_TO_2);
      this.#db.exec(SCHEMA);
      this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }

    this.#get = this.#db.prepare('SELECT * FROM routes WHERE tenant_id = ?');
    this.#upsert = this.#db.prepare(
      `INSERT INTO routes (tenant_id, host_id, address, port, state, reason, external_access, connection_limit, revision, pool_mode)
       VALUES (@tenant_id, @host_id, @address, @port, @state, @reason, @external_access, @connection_limit, @revision, @pool_mode)
       ON CONFLICT (tenant_id) DO UPDATE SET host_id = excluded.host_id, address = excluded.address, port = excluded.port,
         state = excluded.state, reason = excluded.reason, external_access = excluded.external_access,
         connection_limit = excluded.connection_limit, revision = excluded.revision, pool_mode = excluded.pool_mode`,
    );
    this.#getUser = this.#db.prepare('SELECT scram_verifier FROM route_users WHERE tenant_id = ? AND user_name = ?');
    this.#deleteUsers = this.#db.prepare('DELETE FROM route_users WHERE tenant_id = ?');
    this.#clearUsers = this.#db.prepare('DELETE FROM route_users');
    this.#insertUser = this.#db.prepare('INSERT OR REPLACE INTO route_users (tenant_id, user_name, scram_verifier) VALUES (?, ?, ?)');
    this.#delete = this.#db.prepare('DELETE FROM routes WHERE tenant_id = ?');
    this.#clear = this.#db.prepare('DELETE FROM routes');
    this.#countRoutes = this.#db.prepare('SELECT count(*) AS n FROM routes');
    this.#setMeta = this.#db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    const clearPeers = this.#db.prepare('DELETE FROM router_peers');
    const insertPeer = this.#db.prepare<[string, string]>('INSERT OR REPLACE INTO router_peers (router_id, cancel_address) VALUES (?, ?)');
    this.#replacePeersTx = this.#db.transaction((peers: readonly RouterPeerEntry[]) => {
      clearPeers.run();
      for (const p of peers) insertPeer.run(p.routerId, p.cancelAddress);
    });
    this.#applyTx = this.#db.transaction((batch: RouteBatch, syncedAt: number) => this.#apply(batch, syncedAt));

    this.#getInstanceTls = this.#db.prepare("SELECT value FROM meta WHERE key = 'instance_tls'");
    const meta = new Map((this.#db.prepare('SELECT key, value FROM meta').all() as { key: string; value: number }[]).map((r) => [r.key, r.value]));
    this.#revision = meta.get('revision') ?? 0;
    this.#syncedAt = meta.get('synced_at') ?? 0;
    this.#count = this.#countRoutes.get()?.n ?? 0;
    this.#instanceTls = meta.get('instance_tls') === 1;
    if (options.readOnly) {
      this.#dataVersion = this.#db.prepare<[], number>('PRAGMA data_version').pluck();
      this.#seenVersion = this.#dataVersion.get() ?? 0;
    }
  }

  /**
   * A read-only cache: forgets what it read when the file changed since the last look (the
   * primary committed a batch), so its next lookups read the file again. True when it changed.
   * One pragma, no table read: the primary's note after each batch, and a periodic look in case
   * a note is lost, both call it.
   */
  refresh(): boolean {
    if (!this.#dataVersion || !this.#db.open) return false;
    const version = this.#dataVersion.get() ?? 0;
    if (version === this.#seenVersion) return false;
    this.#seenVersion = version;
    this.#forget();
    return true;
  }

  /** Runs `listener` after every batch is committed (one listener). */
  onApplied(listener: () => void): void {
    this.#onApplied = listener;
  }

  #forget(): void {
    this.#memo.clear();
    this.#verifierMemo.clear();
    this.#instanceTls = undefined;
  }

  /**
   * Whether connections to instances use TLS (verify-full against the fleet CA), as the route feed
   * last said. A cache written before the feed carried it says no: its coordinator's instances
   * serve no TLS.
   */
  get instanceTls(): boolean {
    return (this.#instanceTls ??= this.#getInstanceTls.get()?.value === 1);
  }

  /** The route-table revision the cache is at (0 = empty, never synced). */
  get revision(): number {
    return this.#revision;
  }

  /** Epoch ms when the cache was last known to match the coordinator (0 = never). */
  get syncedAt(): number {
    return this.#syncedAt;
  }

  /** Number of routes held. */
  get size(): number {
    return this.#count;
  }

  /** The route of a tenant, or undefined. */
  lookup(tenantId: string): RouteEntry | undefined {
    const known = this.#memo.get(tenantId);
    if (known) return known;
    const row = this.#get.get(tenantId);
    if (!row) return undefined;
    const route = Object.freeze(rowToRoute(row));
    this.#memo.set(tenantId, route);
    return route;
  }

  /**
   * The SCRAM verifier of a tenant's user, or undefined (unknown user). Kept in memory like the
   * routes (every login asks, and the SELECT was a tenth of a pooled login's work) until the next
   * batch, which may carry a new password; unknown names are not kept, so made-up user names
   * cannot grow it.
   */
  verifierOf(tenantId: string, user: string): string | undefined {
    const memo = this.#verifierMemo;
    const key = `${tenantId}\0${user}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const verifier = this.#getUser.get(tenantId, user)?.scram_verifier;
    if (verifier !== undefined) memo.set(key, verifier);
    return verifier;
  }

  /** Every route (for status pages and tests). */
  all(): RouteEntry[] {
    return (this.#db.prepare('SELECT * FROM routes ORDER BY tenant_id').all() as RouteRow[]).map(rowToRoute);
  }

  /** The other routers of the fleet, as last announced by the coordinator. */
  peers(): RouterPeerEntry[] {
    return (
      this.#db.prepare('SELECT router_id, cancel_address FROM router_peers ORDER BY router_id').all() as { router_id: string; cancel_address: string }[]
    ).map((r) => ({
      routerId: r.router_id,
      cancelAddress: r.cancel_address,
    }));
  }

  /**
   * Applies one feed batch in one transaction. A delta at or below the cached revision is a
   * replay (the feed resends after a reconnect) and is skipped; a snapshot always replaces.
   */
  apply(batch: RouteBatch, now: number): ApplyResult {
    const result = this.#applyTx(batch, now);
    this.#onApplied?.();
    return result;
  }

  /** Records that the cache was in sync with the coordinator at `now` (e.g. the feed is live). */
  markSynced(now: number): void {
    this.#setMeta.run('synced_at', now);
    this.#syncedAt = now;
  }

  /** Closes the file. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #apply(batch: RouteBatch, syncedAt: number): ApplyResult {
    this.#memo.clear();
    this.#verifierMemo.clear();
    if (batch.instanceTls !== undefined && batch.instanceTls !== this.instanceTls) {
      this.#setMeta.run('instance_tls', batch.instanceTls ? 1 : 0);
      this.#instanceTls = batch.instanceTls;
    }
    if (!batch.snapshot && batch.revision <= this.#revision && batch.upserts.length + batch.deletedTenantIds.length > 0) {
      return { applied: false, revision: this.#revision, upserts: 0, deletes: 0 };
    }
    if (batch.snapshot) {
      this.#clear.run();
      this.#clearUsers.run();
    }
    for (const r of batch.upserts) {
      // A route's users come whole with it: a password change is a new verifier on the next upsert.
      this.#deleteUsers.run(r.tenantId);
      for (const u of r.users ?? []) this.#insertUser.run(r.tenantId, u.name, u.scramVerifier);
      this.#upsert.run({
        tenant_id: r.tenantId,
        host_id: r.hostId,
        address: r.address,
        port: r.port,
        state: r.state,
        reason: r.reason,
        external_access: r.externalAccess ? 1 : 0,
        connection_limit: r.connectionLimit,
        revision: r.revision,
        pool_mode: r.poolMode,
      });
    }
    for (const id of batch.deletedTenantIds) {
      this.#delete.run(id);
      this.#deleteUsers.run(id);
    }
    if (batch.routers) this.#replacePeersTx(batch.routers);
    // An empty batch (e.g. the feed's "you are up to date") may carry the same revision; never go back.
    const revision = batch.snapshot ? batch.revision : Math.max(batch.revision, this.#revision);
    this.#setMeta.run('revision', revision);
    this.#setMeta.run('synced_at', syncedAt);
    this.#revision = revision;
    this.#syncedAt = syncedAt;
    this.#count = this.#countRoutes.get()?.n ?? 0;
    return { applied: true, revision, upserts: batch.upserts.length, deletes: batch.deletedTenantIds.length };
  }
}
