import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../domain/errors.js';
import { aHost, aPlacement, aTenant } from '../testing/records.js';
import { describeStoreContract } from './contract/store-contract.js';
import { DB_FILE, openStore, StoreOpenError } from './open-store.js';
import { MIGRATIONS } from './migrations.js';
import type { SqliteStore } from './sqlite-store.js';
import { IDLE_SUSPEND_TENANTS_SQL, REPLICATED_TENANTS_SQL, RETRIES_DUE_SQL } from './sqlite-tables.js';

const dirs: string[] = [];
const stores: SqliteStore[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-coord-store-'));
  dirs.push(dir);
  return dir;
}
function open(dataDir = tempDir(), routeHistory = 100): SqliteStore {
  const { store } = openStore({ dataDir, allowInit: true, routeHistory, now: 1000 });
  stores.push(store);
  return store;
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('opening the store', () => {
  it('creates and migrates a new data dir, then reopens it with the data kept', async () => {
    const dir = tempDir();
    const first = openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 });
    expect(first.created).toBe(true);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
    await first.store.transaction((tx) => tx.tenants.insert(aTenant('acme')));
    await first.store.close();
    const second = openStore({ dataDir: dir, allowInit: false, routeHistory: 10, now: 2 });
    stores.push(second.store);
    expect(second.created).toBe(false);
    expect(second.applied).toEqual([]);
    expect((await second.store.read.tenants.get('acme'))?.id).toBe('acme');
  });

  it('refuses a data dir whose database went missing', async () => {
    const dir = tempDir();
    await openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 }).store.close();
    for (const f of fs.readdirSync(dir)) if (f.startsWith(DB_FILE)) fs.rmSync(path.join(dir, f));
    expect(() => openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 2 })).toThrow(/missing.*refusing to start with an empty fleet/);
  });

  it('refuses to create a store when initialisation is not allowed', () => {
    expect(() => openStore({ dataDir: path.join(tempDir(), 'new'), allowInit: false, routeHistory: 10, now: 1 })).toThrow(StoreOpenError);
  });

  it('refuses a corrupt file with a clear error', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, DB_FILE), Buffer.alloc(8192, 0x41));
    expect(() => openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 })).toThrow(/cannot be used: file is not a database/);
  });

  it('refuses a schema newer than this build', async () => {
    const dir = tempDir();
    const s = openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 }).store;
    await s.close();
    // Simulate a store written by a newer coordinator.
    const db = new Database(path.join(dir, DB_FILE));
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 1)').run('future');
    db.close();
    expect(() => openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 })).toThrow(/schema is version 99/);
  });
});

describeStoreContract('sqlite', async ({ routeHistory }) => openStore({ dataDir: tempDir(), allowInit: true, routeHistory, now: 1000 }).store);

describe('sqlite specifics', () => {
  it('gives the event loop a turn while a backlog of transactions drains (sockets are read meanwhile)', async () => {
    const s = open();
    let turnAt = -1;
    let done = 0;
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    const all = Array.from({ length: 40 }, (_, i) =>
      s
        .transaction(async (tx) => {
          busy(2);
          await tx.hosts.put(aHost(`turn-${i}`));
        })
        .then(() => done++),
    );
    // Queued behind the whole backlog: without a turn it ran only after all 40 (80 ms of work).
    setImmediate(() => (turnAt = done));
    await Promise.all(all);
    expect(turnAt).toBeGreaterThan(0);
    expect(turnAt).toBeLessThan(40);
    expect((await s.read.hosts.list()).filter((h) => h.id.startsWith('turn-'))).toHaveLength(40);
  });

  it('commits a backlog of grouped transactions in several groups, with turns of the event loop between them', async () => {
    const s = open();
    let turnAt = -1;
    let done = 0;
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };
    // Fewer than a group's count bound, more work than its time bound: one group held the loop for all of it.
    const all = Array.from({ length: 40 }, (_, i) =>
      s
        .transaction(
          async (tx) => {
            busy(2);
            await tx.hosts.put(aHost(`group-${i}`));
          },
          { grouped: true },
        )
        .then(() => done++),
    );
    setImmediate(() => (turnAt = done));
    await Promise.all(all);
    expect(turnAt).toBeGreaterThan(0);
    expect(turnAt).toBeLessThan(40);
    expect((await s.read.hosts.list()).filter((h) => h.id.startsWith('group-'))).toHaveLength(40);
  });

  it('fails grouped transactions queued when the store closed, instead of retrying them', async () => {
    const s = open();
    const closed = s.close();
    const late = Array.from({ length: 3 }, (_, i) => s.transaction((tx) => tx.hosts.put(aHost(`late-${i}`)), { grouped: true }));
    await closed;
    for (const t of late) await expect(t).rejects.toThrow();
  });

  it('keeps a group commit durable: a store opened afresh on the same file sees it', async () => {
    const dir = tempDir();
    const s = open(dir);
    await Promise.all(['a', 'b'].map((id) => s.transaction((tx) => tx.tenants.insert(aTenant(id)), { grouped: true })));
    await s.close();
    expect((await open(dir).read.tenants.list()).map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('keeps the hosts in memory, written through at commit, never showing a write that rolled back', async () => {
    const dir = tempDir();
    const s = open(dir);
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.hosts.put(aHost('h3'));
    });
    expect((await s.read.hosts.list()).map((h) => h.id)).toEqual(['h1', 'h3']);
    // Served from memory: a row changed behind the store's back (no other writer exists in use) is not seen.
    const other = new Database(path.join(dir, DB_FILE));
    other.prepare("UPDATE hosts SET address = 'behind' WHERE id = 'h1'").run();
    other.close();
    expect((await s.read.hosts.list())[0]?.address).toBe('127.0.0.11');
    expect((await s.read.hosts.get('h1'))?.address).toBe('127.0.0.11');
    // What a caller gets is shared and frozen: changing it throws and changes nothing kept.
    const got = (await s.read.hosts.list())[0]!;
    expect(() => (got.labels.zone = 'mutated')).toThrow(TypeError);
    expect(() => (got.state = 'DOWN')).toThrow(TypeError);
    expect((await s.read.hosts.get('h1'))?.labels.zone).not.toBe('mutated');
    // Written through: a commit's host writes (a put, a new host, a generation) are seen at once, in id order.
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1', { state: 'DOWN' }));
      await tx.hosts.put(aHost('h2'));
      // The transaction sees its own writes.
      expect((await tx.hosts.list()).map((h) => `${h.id}:${h.state}`)).toEqual(['h1:DOWN', 'h2:READY', 'h3:READY']);
      await tx.hosts.nextGeneration('h3');
    });
    const after = await s.read.hosts.list();
    expect(after.map((h) => `${h.id}:${h.state}`)).toEqual(['h1:DOWN', 'h2:READY', 'h3:READY']);
    expect(after[2]?.generation).toBe(aHost('h3').generation + 1);
    expect((await s.read.hosts.getMany(['h3', 'h2'])).map((h) => h.id)).toEqual(['h2', 'h3']);
    // A transaction that throws, and a grouped one whose savepoint rolls back, leave memory as committed.
    await expect(
      s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h2', { state: 'DOWN' }));
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    const grouped = await Promise.allSettled([
      s.transaction(async (tx) => tx.hosts.put(aHost('h4')), { grouped: true }),
      s.transaction(
        async (tx) => {
          await tx.hosts.put(aHost('h3', { state: 'UNREACHABLE' }));
          throw new Error('undone');
        },
        { grouped: true },
      ),
    ]);
    expect(grouped.map((o) => o.status)).toEqual(['fulfilled', 'rejected']);
    expect((await s.read.hosts.list()).map((h) => `${h.id}:${h.state}`)).toEqual(['h1:DOWN', 'h2:READY', 'h3:READY', 'h4:READY']);
    expect((await s.read.hosts.get('h2'))?.state).toBe('READY');
    await s.close();
    // What memory held is what the file holds.
    expect((await open(dir).read.hosts.list()).map((h) => `${h.id}:${h.state}`)).toEqual(['h1:DOWN', 'h2:READY', 'h3:READY', 'h4:READY']);
  });

  it('counts the commits that wrote: not a transaction that read or changed no row; a group once', async () => {
    const s = open();
    const before = s.durableCommits();
    await s.transaction(async (tx) => tx.hosts.get('h1'));
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.tenants.insert(aTenant('a'));
    });
    expect(s.durableCommits() - before).toBe(1);
    // An update of a row that is not there changes nothing.
    await s.transaction(async (tx) => tx.placements.updateMany([aPlacement('a', 'h1')]));
    expect(s.durableCommits() - before).toBe(1);
    await Promise.all(['b', 'c', 'd'].map((id) => s.transaction(async (tx) => tx.tenants.insert(aTenant(id)), { grouped: true })));
    expect(s.durableCommits() - before).toBe(2);
  });

  it('refuses to change or delete an event (append-only triggers)', async () => {
    const s = open();
    await s.transaction((tx) => tx.events.append({ time: 1, principal: 'operator', action: 'tenant.create', message: 'm1' }));
    const db = new Database(s.location);
    expect(() => db.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE events SET message = 'x'").run()).toThrow(/append-only/);
    db.close();
  });

  it('counts the placements being created from the partial index', async () => {
    const s = open();
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.tenants.insert(aTenant('a'));
      await tx.placements.insert(aPlacement('a', 'h1'));
    });
    const db = new Database(s.location, { readonly: true });
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT host_id, COUNT(*) AS creating FROM placements WHERE realized_once = 0 GROUP BY host_id').all() as {
      detail: string;
    }[];
    db.close();
    expect(plan.map((r) => r.detail).join(' ')).toContain('placements_creating');
  });

  it('reads the tenants the failover and idle-suspend loops watch from their partial indexes', async () => {
    const s = open();
    await s.transaction((tx) => tx.tenants.insert(aTenant('a')));
    const db = new Database(s.location, { readonly: true });
    const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' ');
    const replicated = plan(REPLICATED_TENANTS_SQL);
    const idle = plan(IDLE_SUSPEND_TENANTS_SQL);
    db.close();
    expect(replicated).toContain('tenants_replicated');
    expect(idle).toContain('tenants_idle_suspend');
  });

  it("reads the reconciler's failed placements due for a retry from their partial index, not every placement", async () => {
    const s = open();
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.tenants.insert(aTenant('a'));
      await tx.placements.insert(aPlacement('a', 'h1', { realization: 'FAILED', nextRetryAt: 500 }));
    });
    expect((await s.read.placements.listRetriesDue(1000)).map((p) => p.tenantId)).toEqual(['a']);
    const db = new Database(s.location, { readonly: true });
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${RETRIES_DUE_SQL}`).all(1000) as { detail: string }[]).map((r) => r.detail).join(' ');
    db.close();
    expect(plan).toContain('placements_retry_due');
  });

  it('turns a store it cannot write into StoreUnavailableError, never a driver code', async () => {
    const dir = tempDir();
    const s = open(dir);
    // Another connection holds the write lock past the busy timeout of a read-only open.
    const other = new Database(path.join(dir, DB_FILE));
    other.pragma('busy_timeout = 0');
    other.exec('BEGIN IMMEDIATE');
    const blocked = new Database(path.join(dir, DB_FILE));
    blocked.pragma('busy_timeout = 0');
    let code: unknown;
    try {
      blocked.exec('BEGIN IMMEDIATE');
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    expect(code).toBe('SQLITE_BUSY');
    other.exec('ROLLBACK');
    other.close();
    blocked.close();
    const { storeError } = await import('./sqlite-store.js');
    const busy = Object.assign(new Database.SqliteError('database is locked', 'SQLITE_BUSY'), {});
    const mapped = storeError(busy);
    expect(mapped).toBeInstanceOf(StoreUnavailableError);
    expect((mapped as { code: string }).code).toBe('STORE_UNAVAILABLE');
    expect(s.location).toContain(DB_FILE);
  });
});
