import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackupRecord, RestoreRecord } from '../model.js';
import type { CommitSummary } from './store.js';
import { aHost, aPlacement, aTenant, aUser } from '../testing/records.js';
import { DB_FILE, openStore, StoreOpenError } from './open-store.js';
import { MIGRATIONS } from './migrations.js';
import type { SqliteStore } from './sqlite-store.js';

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
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const route = (tenantId: string, port: number) => ({
  tenantId,
  hostId: 'h1',
  address: '127.0.0.11',
  port,
  state: 'ROUTABLE' as const,
  reason: '',
  externalAccess: true,
  connectionLimit: 0,
  poolMode: 'SESSION' as const,
  users: [{ name: 'alice', scramVerifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b' }],
});

describe('opening the store', () => {
  it('creates and migrates a new data dir, then reopens it with the data kept', () => {
    const dir = tempDir();
    const first = openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 });
    expect(first.created).toBe(true);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
    first.store.insertTenant(aTenant('acme'));
    first.store.close();
    const second = openStore({ dataDir: dir, allowInit: false, routeHistory: 10, now: 2 });
    stores.push(second.store);
    expect(second.created).toBe(false);
    expect(second.applied).toEqual([]);
    expect(second.store.getTenant('acme')?.id).toBe('acme');
  });

  it('refuses a data dir whose database went missing', () => {
    const dir = tempDir();
    openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 }).store.close();
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

  it('refuses a schema newer than this build', () => {
    const dir = tempDir();
    const s = openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 }).store;
    s.close();
    // Simulate a store written by a newer coordinator.
    const db = new Database(path.join(dir, DB_FILE));
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 1)').run('future');
    db.close();
    expect(() => openStore({ dataDir: dir, allowInit: true, routeHistory: 10, now: 1 })).toThrow(/schema is version 99/);
  });
});

describe('records', () => {
  it('round-trips tenants, hosts, placements, users and databases, and cascades a tenant delete', () => {
    const s = open();
    s.putHost(aHost('h1', { labels: { zone: 'a' } }));
    s.insertTenant(aTenant('acme', { spec: { ...aTenant('x').spec, labels: { team: 'red' } } }));
    s.insertPlacement(aPlacement('acme', 'h1'));
    s.insertUser(aUser('acme', 'acme', { owner: true }));
    s.insertDatabase({ tenantId: 'acme', name: 'acme', owner: 'acme', description: '', status: 'NEW', statusReason: '', revision: 1, createdAt: 1 });
    expect(s.getHost('h1')?.labels).toEqual({ zone: 'a' });
    expect(s.listTenants({ labels: { team: 'red' } }).map((t) => t.id)).toEqual(['acme']);
    expect(s.listTenants({ labels: { team: 'blue' } })).toEqual([]);
    expect(s.listTenants({ hostId: 'h1' }).map((t) => t.id)).toEqual(['acme']);
    expect(s.listPlacements({ hostId: 'h1' })[0]?.role).toBe('PRIMARY');
    expect(s.getUser('acme', 'acme')?.owner).toBe(true);
    s.deleteTenant('acme');
    expect(s.listPlacements()).toEqual([]);
    expect(s.listUsers('acme')).toEqual([]);
    expect(s.listDatabases('acme')).toEqual([]);
  });

  it('filters, pages and counts tenants in the database', () => {
    const s = open();
    s.putHost(aHost('h1'));
    const ids = Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    for (const [i, id] of ids.entries()) {
      const labels: Record<string, string> = i % 2 === 0 ? { team: 'red', 'app.kubernetes.io/part-of': 'shop' } : { team: 'blue' };
      const spec = { ...aTenant('x').spec, labels };
      s.insertTenant(aTenant(id, { spec, status: i < 5 ? 'ERROR' : 'ACTIVE', statusReason: i < 3 ? 'waiting for a host: none fits' : 'ok' }));
      if (i % 5 === 0) s.insertPlacement(aPlacement(id, 'h1'));
    }
    // Pages by id: every tenant exactly once, in order.
    const seen: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = s.listTenants({}, { after, limit: 10 });
      seen.push(...page.map((t) => t.id));
      if (page.length < 10) break;
      after = page[page.length - 1]!.id;
    }
    expect(seen).toEqual(ids);
    expect(s.listTenants({ status: 'ERROR' }, { after: 't01', limit: 2 }).map((t) => t.id)).toEqual(['t02', 't03']);
    expect(s.countTenants()).toBe(25);
    expect(s.countTenants({ status: 'ERROR' })).toBe(5);
    expect(s.countTenants({ labels: { team: 'red' } })).toBe(13);
    expect(s.countTenants({ labels: { team: 'red', 'app.kubernetes.io/part-of': 'shop' }, status: 'ACTIVE' })).toBe(10);
    expect(s.listTenants({ hostId: 'h1' }).map((t) => t.id)).toEqual(['t00', 't05', 't10', 't15', 't20']);
    expect(s.listTenants({ ids: ['t03', 't07', 'nope'] }).map((t) => t.id)).toEqual(['t03', 't07']);
    expect(s.countTenants({ ids: [] })).toBe(0);
    expect(s.listTenants({ reasonPrefix: 'waiting for a host' }).map((t) => t.id)).toEqual(['t00', 't01', 't02']);
    expect(s.countTenantsByStatus()).toEqual({ ERROR: 5, ACTIVE: 20 });
  });

  it('never lets a tenant have two primaries', () => {
    const s = open();
    s.putHost(aHost('h1'));
    s.putHost(aHost('h2'));
    s.insertTenant(aTenant('acme'));
    s.insertPlacement(aPlacement('acme', 'h1'));
    expect(() => s.insertPlacement(aPlacement('acme', 'h2'))).toThrow(/UNIQUE/);
    s.insertPlacement(aPlacement('acme', 'h2', { role: 'REPLICA' }));
    expect(s.listPlacements({ tenantId: 'acme' })).toHaveLength(2);
  });

  it('host generations only go up, also across re-registration', () => {
    const s = open();
    s.putHost(aHost('h1'));
    expect(s.nextHostGeneration('h1')).toBe(1);
    expect(s.nextHostGeneration('h1')).toBe(2);
    s.putHost(aHost('h1', { generation: 0 }));
    expect(s.nextHostGeneration('h1')).toBe(3);
  });

  it('a rolled-back write leaves nothing behind and publishes nothing', () => {
    const s = open();
    const seen: CommitSummary[] = [];
    s.onCommit((c) => seen.push(c));
    expect(() =>
      s.write((tx) => {
        tx.insertTenant(aTenant('acme'));
        tx.putRoute(route('acme', 1));
        tx.appendEvent({ time: 1, principal: 'test', action: 'tenant.create', message: '' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(s.getTenant('acme')).toBeUndefined();
    expect(s.routeRevision()).toBe(0);
    expect(s.listEvents({ limit: 10 })).toEqual([]);
    expect(seen).toEqual([]);
  });

  it('group commit: writes of one turn share a commit; a throw undoes only its own item', async () => {
    const dir = tempDir();
    const s = open(dir);
    const seen: CommitSummary[] = [];
    s.onCommit((c) => seen.push(c));
    const create = (id: string, fail = false): Promise<string> =>
      s.writeGrouped((tx) => {
        tx.insertTenant(aTenant(id));
        tx.putRoute(route(id, 5432));
        tx.appendEvent({ time: 1, principal: 'test', action: 'tenant.create', tenantId: id, message: '' });
        if (fail || tx.listTenants().length > 100) throw new Error(`refused ${id}`);
        return id;
      });
    const results = await Promise.allSettled([create('a'), create('b', true), create('c'), create('a')]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : String((r.reason as Error).message)))).toEqual(['a', 'refused b', 'c', expect.stringMatching(/UNIQUE/)]);
    expect(s.listTenants().map((t) => t.id)).toEqual(['a', 'c']);
    expect(s.listRoutes().map((r) => [r.tenantId, r.revision])).toEqual([['a', 1], ['c', 2]]);
    // One commit, carrying exactly the kept items' routes and events.
    expect(seen).toHaveLength(1);
    expect(seen[0]!.routeChanges.map((c) => c.tenantId)).toEqual(['a', 'c']);
    expect(seen[0]!.events.map((e) => e.tenantId)).toEqual(['a', 'c']);
    // Durable: a store opened afresh on the same file sees the same.
    s.close();
    expect(open(dir).listTenants().map((t) => t.id)).toEqual(['a', 'c']);
  });
});

describe('route table', () => {
  it('bumps the global revision only on a real change and publishes after commit', () => {
    const s = open();
    const seen: CommitSummary[] = [];
    s.onCommit((c) => seen.push(c));
    const r1 = s.putRoute(route('a', 1));
    const same = s.putRoute(route('a', 1));
    const r2 = s.putRoute(route('a', 2));
    s.write((tx) => {
      tx.putRoute(route('b', 3));
      tx.deleteRoute('a');
      expect(seen).toHaveLength(2);
    });
    expect([r1.revision, same.revision, r2.revision]).toEqual([1, 1, 2]);
    expect(s.routeRevision()).toBe(4);
    expect(seen.map((c) => c.routeChanges.map((x) => `${x.revision}:${x.tenantId}:${x.route ? 'up' : 'del'}`))).toEqual([['1:a:up'], ['2:a:up'], ['3:b:up', '4:a:del']]);
    expect(s.listRoutes().map((r) => r.tenantId)).toEqual(['b']);
  });

  it('gives deltas since a revision, and undefined once the history no longer reaches back', () => {
    const s = open(tempDir(), 20);
    for (let i = 1; i <= 50; i++) s.putRoute(route('t', i));
    expect(s.routeChangesSince(50)).toEqual([]);
    expect(s.routeChangesSince(45)?.map((c) => c.revision)).toEqual([46, 47, 48, 49, 50]);
    expect(s.routeChangesSince(60)).toBeUndefined();
    expect(s.routeChangesSince(0)).toBeUndefined();
    expect(s.routeChangesSince(5)).toBeUndefined();
  });
});

describe('event log', () => {
  it('is append-only and lists the newest or the ones after an id', () => {
    const s = open();
    for (let i = 1; i <= 5; i++) s.appendEvent({ time: i, principal: 'operator', action: 'tenant.create', tenantId: i % 2 ? 'odd' : 'even', message: `m${i}` });
    expect(s.listEvents({ limit: 2 }).map((e) => e.message)).toEqual(['m4', 'm5']);
    expect(s.listEvents({ limit: 10, afterId: 3 }).map((e) => e.message)).toEqual(['m4', 'm5']);
    expect(s.listEvents({ limit: 10, tenantId: 'odd' }).map((e) => e.message)).toEqual(['m1', 'm3', 'm5']);
    const db = new Database(s.location);
    expect(() => db.prepare('DELETE FROM events').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE events SET message = 'x'").run()).toThrow(/append-only/);
    db.close();
  });
});

describe('scheduler reads', () => {
  it('lists the waiting backlog oldest first, a page at a time, without placed, deleting or non-NEW tenants', () => {
    const store = open();
    store.putHost(aHost('h1'));
    store.write((tx) => {
      for (let i = 0; i < 6; i++) tx.insertTenant(aTenant(`t${i}`, { createdAt: 2000 - i }));
      tx.insertTenant(aTenant('gone', { deleting: true }));
      tx.insertTenant(aTenant('live', { status: 'ACTIVE' }));
      tx.insertPlacement(aPlacement('t2', 'h1'));
    });
    const first = store.listWaitingTenants(3);
    expect(first.map((t) => t.id)).toEqual(['t5', 't4', 't3']);
    const last = first[2]!;
    expect(store.listWaitingTenants(3, { createdAt: last.createdAt, id: last.id }).map((t) => t.id)).toEqual(['t1', 't0']);
  });

  it('lists only due retries and only replicated tenants', () => {
    const store = open();
    store.putHost(aHost('h1'));
    store.write((tx) => {
      tx.insertTenant(aTenant('solo'));
      tx.insertTenant(aTenant('ha', { spec: { ...aTenant('ha').spec, nodes: 2 } }));
      tx.insertPlacement(aPlacement('solo', 'h1', { realization: 'FAILED', nextRetryAt: 5000 }));
      tx.insertPlacement(aPlacement('ha', 'h1', { realization: 'FAILED', nextRetryAt: 0 }));
    });
    expect(store.listRetriesDue(4999)).toEqual([]);
    expect(store.listRetriesDue(5000).map((p) => p.tenantId)).toEqual(['solo']);
    expect(store.listReplicatedTenants().map((t) => t.id)).toEqual(['ha']);
  });

  it('sums allocations per host and counts placement changes', () => {
    const store = open();
    store.putHost(aHost('h1'));
    store.putHost(aHost('h2'));
    const before = store.placementChanges();
    store.write((tx) => {
      tx.insertTenant(aTenant('a'));
      tx.insertTenant(aTenant('b', { spec: { ...aTenant('b').spec, resources: { cpuMillis: 2000, memoryMib: 1024, diskMib: 4096 } } }));
      tx.insertPlacement(aPlacement('a', 'h1'));
      tx.insertPlacement(aPlacement('b', 'h1'));
    });
    const a = aTenant('a').spec.resources;
    expect(store.hostAllocations().get('h1')).toEqual({ cpuMillis: a.cpuMillis + 2000, memoryMib: a.memoryMib + 1024, diskMib: a.diskMib + 4096, instances: 2 });
    expect(store.hostAllocations().has('h2')).toBe(false);
    expect(store.placementChanges()).toBe(before + 2);
    store.deleteTenant('b');
    expect(store.hostAllocations().get('h1')?.instances).toBe(1);
    expect(store.placementChanges()).toBe(before + 3);
  });

  it('counts per host the placements still being created, from the partial index', () => {
    const store = open();
    store.putHost(aHost('h1'));
    store.putHost(aHost('h2'));
    store.write((tx) => {
      for (const t of ['a', 'b', 'c']) tx.insertTenant(aTenant(t));
      tx.insertPlacement(aPlacement('a', 'h1'));
      tx.insertPlacement(aPlacement('b', 'h1', { realization: 'FAILED' }));
      tx.insertPlacement(aPlacement('c', 'h2', { realization: 'REALIZED', realizedOnce: true }));
    });
    expect(store.hostsCreating()).toEqual(new Map([['h1', 2]]));
    // Realized once: created, whatever it reports later.
    store.write((tx) => tx.updatePlacement(aPlacement('a', 'h1', { realization: 'PENDING', realizedOnce: true })));
    expect(store.hostsCreating()).toEqual(new Map([['h1', 1]]));
    const db = new Database(store.location, { readonly: true });
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT host_id, COUNT(*) AS creating FROM placements WHERE realized_once = 0 GROUP BY host_id').all() as { detail: string }[];
    db.close();
    expect(plan.map((r) => r.detail).join(' ')).toContain('placements_creating');
  });
});

describe('backups, restores and stanzas', () => {
  const backup = (id: string, over: Partial<BackupRecord> = {}): BackupRecord => ({
    id,
    tenantId: 'acme',
    type: 'FULL',
    status: 'RUNNING',
    reason: '',
    hostId: 'h1',
    label: '',
    priorLabel: '',
    startedAt: 2000,
    finishedAt: 0,
    timeline: 1,
    sizeBytes: 0,
    repoSizeBytes: 0,
    stanzaRepoSizeBytes: 0,
    lsnStart: '',
    lsnStop: '',
    trigger: 'schedule',
    stanza: 'acme-1000',
    ...over,
  });

  it('round-trips rows, allows one running backup and one running restore per tenant, and goes with the tenant', () => {
    const store = open();
    store.insertTenant(aTenant('acme'));
    store.putStanza({ tenantId: 'acme', stanza: 'acme-1000', lastArchivedAt: 0, lastArchivedWal: '', createdAt: 1000 });
    store.insertBackup(backup('b1'));
    expect(() => store.insertBackup(backup('b2'))).toThrow(/UNIQUE/);
    store.updateBackup({ ...backup('b1'), status: 'SUCCEEDED', label: '20261206-101500F', finishedAt: 3000, sizeBytes: 23_000_000 });
    store.insertBackup(backup('b2', { startedAt: 4000, type: 'DIFF', priorLabel: '20261206-101500F' }));
    expect(store.listBackups('acme').map((b) => [b.id, b.status, b.label])).toEqual([
      ['b1', 'SUCCEEDED', '20261206-101500F'],
      ['b2', 'RUNNING', ''],
    ]);
    expect(store.listRunningBackups().map((b) => b.id)).toEqual(['b2']);
    expect(store.countBackupsByStatus()).toEqual({ SUCCEEDED: 1, RUNNING: 1 });
    const restore: RestoreRecord = {
      id: 'r1', kind: 'in_place', sourceTenantId: 'acme', targetTenantId: 'acme', state: 'RUNNING', phase: 'recovering', reason: '', sourceStanza: 'acme-1000',
      toTime: 2500, toBackupId: '', backupLabel: '', latest: false, hostId: 'h2', oldHosts: ['h1'], oldLsn: '0/3000000', startedAt: 5000, finishedAt: 0,
      recoveredLsn: '', recoveredTime: 0, missingWalBytes: 0, timeline: 0, createdBy: 'operator:admin',
    };
    store.insertRestore(restore);
    expect(() => store.insertRestore({ ...restore, id: 'r2' })).toThrow(/UNIQUE/);
    store.updateRestore({ ...restore, state: 'SUCCEEDED', phase: 'removing_old', recoveredLsn: '0/5000028', missingWalBytes: 7 });
    expect(store.getRestore('r1')).toMatchObject({ state: 'SUCCEEDED', phase: 'removing_old', oldHosts: ['h1'], latest: false, missingWalBytes: 7 });
    expect(store.listRunningRestores()).toEqual([]);
    expect(store.listActiveRestores().map((r) => r.id)).toEqual(['r1']);
    store.deleteTenant('acme');
    expect([store.getStanza('acme'), store.listBackups('acme'), store.listRestores('acme')]).toEqual([undefined, [], []]);
  });
});
