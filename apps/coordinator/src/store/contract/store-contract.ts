/**
 * The tests every store backend must pass (see ../contract.ts for what a backend guarantees).
 * A backend's own test file calls `describeStoreContract` with a factory that opens a fresh,
 * empty, migrated store; the tests use only the contract, never the backend's insides.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StoreConflictError, StoreNotFoundError } from '../../domain/errors.js';
import type { BackupRecord, MoveRecord, OperationRecord, RestoreRecord, TenantRecord } from '../../domain/model.js';
import { aHost, aPlacement, aTenant, anUpgrade, aUser } from '../../testing/records.js';
import type { TokenRecord } from '@pgs/security';
import type { InitSqlRecord } from '@pgs/tenancy';
import type { Commit, SealedAt, Store } from '../contract.js';

/** Opens a fresh store; `routeHistory` is how many route changes it keeps for deltas. */
export type StoreFactory = (options: { routeHistory: number }) => Promise<Store>;

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

/** Registers the contract tests for one backend. */
export function describeStoreContract(backend: string, factory: StoreFactory): void {
  const opened: Store[] = [];
  const open = async (routeHistory = 100): Promise<Store> => {
    const s = await factory({ routeHistory });
    opened.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  describe(`store contract (${backend}): records`, () => {
    it('round-trips tenants, hosts, placements, users and databases, and cascades a tenant delete', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1', { labels: { zone: 'a' } }));
        await tx.tenants.insert(aTenant('acme', { spec: { ...aTenant('x').spec, labels: { team: 'red' } } }));
        await tx.placements.insert(aPlacement('acme', 'h1'));
        await tx.users.insert(aUser('acme', 'acme', { owner: true }));
        await tx.databases.insert({
          tenantId: 'acme',
          name: 'acme',
          owner: 'acme',
          description: '',
          status: 'NEW',
          statusReason: '',
          revision: 1,
          createdAt: 1,
        });
      });
      expect((await s.read.hosts.get('h1'))?.labels).toEqual({ zone: 'a' });
      expect((await s.read.tenants.list({ labels: { team: 'red' } })).map((t) => t.id)).toEqual(['acme']);
      expect(await s.read.tenants.list({ labels: { team: 'blue' } })).toEqual([]);
      expect((await s.read.tenants.list({ hostId: 'h1' })).map((t) => t.id)).toEqual(['acme']);
      expect((await s.read.placements.list({ hostId: 'h1' }))[0]?.role).toBe('PRIMARY');
      expect((await s.read.users.get('acme', 'acme'))?.owner).toBe(true);
      await s.transaction((tx) => tx.tenants.delete('acme'));
      expect(await s.read.placements.list()).toEqual([]);
      expect(await s.read.users.list('acme')).toEqual([]);
      expect(await s.read.databases.list('acme')).toEqual([]);
    });

    it('filters, pages and counts tenants in the database', async () => {
      const s = await open();
      const ids = Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, '0')}`);
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        for (const [i, id] of ids.entries()) {
          const labels: Record<string, string> = i % 2 === 0 ? { team: 'red', 'app.kubernetes.io/part-of': 'shop' } : { team: 'blue' };
          const spec = { ...aTenant('x').spec, labels };
          await tx.tenants.insert(aTenant(id, { spec, status: i < 5 ? 'ERROR' : 'ACTIVE', statusReason: i < 3 ? 'waiting for a host: none fits' : 'ok' }));
          if (i % 5 === 0) await tx.placements.insert(aPlacement(id, 'h1'));
        }
      });
      // Pages by id: every tenant exactly once, in order.
      const seen: string[] = [];
      for (let after: string | undefined; ;) {
        const page = await s.read.tenants.list({}, { after, limit: 10 });
        seen.push(...page.map((t) => t.id));
        if (page.length < 10) break;
        after = page[page.length - 1]!.id;
      }
      expect(seen).toEqual(ids);
      expect((await s.read.tenants.list({ status: 'ERROR' }, { after: 't01', limit: 2 })).map((t) => t.id)).toEqual(['t02', 't03']);
      expect(await s.read.tenants.count()).toBe(25);
      expect(await s.read.tenants.count({ status: 'ERROR' })).toBe(5);
      expect(await s.read.tenants.count({ labels: { team: 'red' } })).toBe(13);
      expect(await s.read.tenants.count({ labels: { team: 'red', 'app.kubernetes.io/part-of': 'shop' }, status: 'ACTIVE' })).toBe(10);
      expect((await s.read.tenants.list({ hostId: 'h1' })).map((t) => t.id)).toEqual(['t00', 't05', 't10', 't15', 't20']);
      expect((await s.read.tenants.list({ ids: ['t03', 't07', 'nope'] })).map((t) => t.id)).toEqual(['t03', 't07']);
      expect(await s.read.tenants.count({ ids: [] })).toBe(0);
      expect((await s.read.tenants.list({ reasonPrefix: 'waiting for a host' })).map((t) => t.id)).toEqual(['t00', 't01', 't02']);
      expect(await s.read.tenants.countByStatus()).toEqual({ ERROR: 5, ACTIVE: 20 });
    });

    it('never lets a tenant have two primaries (a typed conflict), and a failed write rolls back alone', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.hosts.put(aHost('h2'));
        await tx.tenants.insert(aTenant('acme'));
        await tx.placements.insert(aPlacement('acme', 'h1'));
      });
      await expect(s.transaction((tx) => tx.placements.insert(aPlacement('acme', 'h2')))).rejects.toBeInstanceOf(StoreConflictError);
      await expect(s.transaction((tx) => tx.tenants.insert(aTenant('acme')))).rejects.toBeInstanceOf(StoreConflictError);
      await s.transaction((tx) => tx.placements.insert(aPlacement('acme', 'h2', { role: 'REPLICA' })));
      expect(await s.read.placements.list({ tenantId: 'acme' })).toHaveLength(2);
    });

    it('host generations only go up, also across re-registration; an unknown host is a typed not-found', async () => {
      const s = await open();
      await s.transaction((tx) => tx.hosts.put(aHost('h1')));
      expect(await s.transaction((tx) => tx.hosts.nextGeneration('h1'))).toBe(1);
      expect(await s.transaction((tx) => tx.hosts.nextGeneration('h1'))).toBe(2);
      await s.transaction((tx) => tx.hosts.put(aHost('h1', { generation: 0 })));
      expect(await s.transaction((tx) => tx.hosts.nextGeneration('h1'))).toBe(3);
      await expect(s.transaction((tx) => tx.hosts.nextGeneration('nope'))).rejects.toBeInstanceOf(StoreNotFoundError);
    });

    it('keeps the last full desired set sent to a host (its generation and digest), replaced by the next; an unknown host is a typed not-found', async () => {
      const s = await open();
      await s.transaction((tx) => tx.hosts.put(aHost('h1')));
      expect(await s.read.hosts.desiredSent('h1')).toBeUndefined();
      await s.transaction(async (tx) => tx.hosts.noteDesiredSent('h1', { generation: await tx.hosts.nextGeneration('h1'), digest: 'd1' }));
      expect(await s.read.hosts.desiredSent('h1')).toEqual({ generation: 1, digest: 'd1' });
      await s.transaction((tx) => tx.hosts.noteDesiredSent('h1', { generation: 4, digest: 'd2' }));
      expect(await s.read.hosts.desiredSent('h1')).toEqual({ generation: 4, digest: 'd2' });
      // A rolled-back transaction records nothing.
      await expect(
        s.transaction(async (tx) => {
          await tx.hosts.noteDesiredSent('h1', { generation: 5, digest: 'd3' });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await s.transaction((tx) => tx.hosts.desiredSent('h1'))).toEqual({ generation: 4, digest: 'd2' });
      await expect(s.transaction((tx) => tx.hosts.noteDesiredSent('nope', { generation: 1, digest: 'd' }))).rejects.toBeInstanceOf(StoreNotFoundError);
      expect(await s.read.hosts.desiredSent('nope')).toBeUndefined();
    });
  });

  describe(`store contract (${backend}): transactions and the commit pipeline`, () => {
    it('a rolled-back transaction leaves nothing behind and publishes nothing', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      await expect(
        s.transaction(async (tx) => {
          await tx.tenants.insert(aTenant('acme'));
          await tx.routes.put(route('acme', 1));
          await tx.events.append({ time: 1, principal: 'test', action: 'tenant.create', message: '' });
          tx.record({ kind: 'desired', tenantId: 'acme' });
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await s.read.tenants.get('acme')).toBeUndefined();
      expect(await s.read.routes.revision()).toBe(0);
      expect(await s.read.events.list({ limit: 10 })).toEqual([]);
      expect(seen).toEqual([]);
    });

    it('publishes after the commit what the transaction changed and recorded', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.tenants.insert(aTenant('acme'));
        await tx.placements.insert(aPlacement('acme', 'h1'));
        const event = await tx.events.append({ time: 1, principal: 'test', action: 'tenant.create', tenantId: 'acme', message: '' });
        expect(event.id).toBeGreaterThan(0);
        tx.record({ kind: 'desired', tenantId: 'acme', hostId: 'h1' });
        tx.record({ kind: 'place', tenantId: 'acme' });
        expect(seen).toEqual([]);
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ desired: [{ tenantId: 'acme', hostId: 'h1' }], placementHosts: ['h1'], roomFreed: false, toPlace: ['acme'] });
      expect(seen[0]!.events.map((e) => e.action)).toEqual(['tenant.create']);
      await s.transaction((tx) => tx.placements.delete('acme', 'h1'));
      expect(seen[1]).toMatchObject({ placementHosts: ['h1'], roomFreed: true });
      // A transaction that changed nothing is not published.
      await s.transaction((tx) => tx.tenants.get('acme'));
      expect(seen).toHaveLength(2);
    });

    it('a standalone read never sees a transaction in flight, and a transaction does not nest', async () => {
      const s = await open();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const writing = s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('acme'));
        await gate;
        await expect(s.transaction((inner) => inner.tenants.get('acme'))).rejects.toThrow(/never nests|inside a transaction/);
        await expect(s.read.tenants.get('acme')).rejects.toThrow(/inside a transaction/);
      });
      const reading = s.read.tenants.get('acme');
      release();
      await writing;
      // Queued behind the transaction: it reads the committed row, never a half-done one.
      expect((await reading)?.id).toBe('acme');
    });

    it('group commit: transactions of one turn share a commit; a throw undoes only its own', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      const create = (id: string, fail = false): Promise<string> =>
        s.transaction(
          async (tx) => {
            await tx.tenants.insert(aTenant(id));
            await tx.routes.put(route(id, 5432));
            await tx.events.append({ time: 1, principal: 'test', action: 'tenant.create', tenantId: id, message: '' });
            if (fail) throw new Error(`refused ${id}`);
            return id;
          },
          { grouped: true },
        );
      const results = await Promise.allSettled([create('a'), create('b', true), create('c'), create('a')]);
      expect(
        results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason instanceof StoreConflictError ? 'conflict' : String((r.reason as Error).message))),
      ).toEqual(['a', 'refused b', 'c', 'conflict']);
      expect((await s.read.tenants.list()).map((t) => t.id)).toEqual(['a', 'c']);
      expect((await s.read.routes.list()).map((r) => [r.tenantId, r.revision])).toEqual([
        ['a', 1],
        ['c', 2],
      ]);
      // One commit, carrying exactly the kept transactions' routes and events.
      expect(seen).toHaveLength(1);
      expect(seen[0]!.routeChanges.map((c) => c.tenantId)).toEqual(['a', 'c']);
      expect(seen[0]!.events.map((e) => e.tenantId)).toEqual(['a', 'c']);
    });
  });

  describe(`store contract (${backend}): route table and event log`, () => {
    it('bumps the global revision only on a real change and publishes after commit', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      const r1 = await s.transaction((tx) => tx.routes.put(route('a', 1)));
      const same = await s.transaction((tx) => tx.routes.put(route('a', 1)));
      const r2 = await s.transaction((tx) => tx.routes.put(route('a', 2)));
      await s.transaction(async (tx) => {
        await tx.routes.put(route('b', 3));
        await tx.routes.delete('a');
        expect(seen).toHaveLength(2);
      });
      expect([r1.revision, same.revision, r2.revision]).toEqual([1, 1, 2]);
      expect(await s.read.routes.revision()).toBe(4);
      expect(seen.map((c) => c.routeChanges.map((x) => `${x.revision}:${x.tenantId}:${x.route ? 'up' : 'del'}`))).toEqual([
        ['1:a:up'],
        ['2:a:up'],
        ['3:b:up', '4:a:del'],
      ]);
      expect((await s.read.routes.list()).map((r) => r.tenantId)).toEqual(['b']);
    });

    it('lists the route table a page at a time, by tenant id', async () => {
      const s = await open();
      for (const id of ['c', 'a', 'e', 'b', 'd']) await s.transaction((tx) => tx.routes.put(route(id, 1)));
      const pages: string[][] = [];
      for (let after = '', page = await s.read.routes.listAfter('', 2); page.length > 0; page = await s.read.routes.listAfter(after, 2)) {
        pages.push(page.map((r) => r.tenantId));
        after = page.at(-1)!.tenantId;
      }
      expect(pages).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
      expect((await s.read.routes.listAfter('b', 10)).map((r) => r.tenantId)).toEqual(['c', 'd', 'e']);
    });

    it('gives deltas since a revision, and undefined once the history no longer reaches back', async () => {
      const s = await open(20);
      for (let i = 1; i <= 50; i++) await s.transaction((tx) => tx.routes.put(route('t', i)));
      expect(await s.read.routes.changesSince(50)).toEqual([]);
      expect((await s.read.routes.changesSince(45))?.map((c) => c.revision)).toEqual([46, 47, 48, 49, 50]);
      // A part at a time: the oldest `limit` changes after the revision.
      expect((await s.read.routes.changesSince(45, 2))?.map((c) => c.revision)).toEqual([46, 47]);
      expect((await s.read.routes.changesSince(47, 2))?.map((c) => c.revision)).toEqual([48, 49]);
      expect(await s.read.routes.changesSince(5, 2)).toBeUndefined();
      expect(await s.read.routes.changesSince(60)).toBeUndefined();
      expect(await s.read.routes.changesSince(0)).toBeUndefined();
      expect(await s.read.routes.changesSince(5)).toBeUndefined();
    });

    it('lists the newest events or the ones after an id, in id order', async () => {
      const s = await open();
      for (let i = 1; i <= 5; i++)
        await s.transaction((tx) =>
          tx.events.append({ time: i, principal: 'operator', action: 'tenant.create', tenantId: i % 2 ? 'odd' : 'even', message: `m${i}` }),
        );
      expect((await s.read.events.list({ limit: 2 })).map((e) => e.message)).toEqual(['m4', 'm5']);
      const [third] = (await s.read.events.list({ limit: 10 })).slice(2);
      expect((await s.read.events.list({ limit: 10, afterId: third!.id })).map((e) => e.message)).toEqual(['m4', 'm5']);
      expect((await s.read.events.list({ limit: 10, tenantId: 'odd' })).map((e) => e.message)).toEqual(['m1', 'm3', 'm5']);
    });
  });

  describe(`store contract (${backend}): batches`, () => {
    const aRestore = (id: string, target: string, startedAt: number): RestoreRecord => ({
      id,
      kind: 'new',
      sourceTenantId: 'src',
      targetTenantId: target,
      state: 'FAILED',
      phase: 'done',
      reason: '',
      sourceStanza: 'src-1',
      toTime: 0,
      toBackupId: '',
      backupLabel: '',
      latest: true,
      hostId: 'h1',
      oldHosts: [],
      oldLsn: '',
      startedAt,
      finishedAt: 0,
      recoveredLsn: '',
      recoveredTime: 0,
      missingWalBytes: 0,
      timeline: 0,
      createdBy: 'operator:admin',
    });

    it("reads many tenants' records in one call each: only the ones asked for and stored, in order", async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        for (const h of ['h1', 'h2', 'h3']) await tx.hosts.put(aHost(h));
        for (const t of ['c', 'a', 'b']) await tx.tenants.insert(aTenant(t));
        await tx.placements.insert(aPlacement('a', 'h2', { role: 'REPLICA' }));
        await tx.placements.insert(aPlacement('a', 'h1'));
        await tx.placements.insert(aPlacement('c', 'h3'));
        await tx.users.insert(aUser('a', 'zed'));
        await tx.users.insert(aUser('a', 'a', { owner: true }));
        await tx.users.insert(aUser('b', 'b', { owner: true }));
        await tx.routes.put(route('a', 1));
        await tx.routes.put(route('c', 3));
        await tx.upgrades.put(anUpgrade('b'));
        await tx.restores.insert(aRestore('r2', 'a', 20));
        await tx.restores.insert(aRestore('r1', 'a', 10));
        await tx.restores.insert(aRestore('r3', 'c', 5));
        for (const [tenantId, name] of [
          ['b', 'zz'],
          ['a', 'm'],
          ['b', 'b'],
        ] as const)
          await tx.databases.insert({ tenantId, name, owner: tenantId, description: '', status: 'NEW', statusReason: '', revision: 1, createdAt: 1 });
      });
      const r = s.read;
      expect((await r.tenants.getMany(['b', 'nope', 'a', 'b'])).map((t) => t.id)).toEqual(['a', 'b']);
      expect(await r.tenants.getMany([])).toEqual([]);
      expect((await r.hosts.getMany(['h3', 'h1', 'hx'])).map((h) => h.id)).toEqual(['h1', 'h3']);
      expect((await r.placements.listOfTenants(['c', 'a', 'b'])).map((p) => `${p.tenantId}:${p.hostId}:${p.role}`)).toEqual([
        'a:h1:PRIMARY',
        'a:h2:REPLICA',
        'c:h3:PRIMARY',
      ]);
      expect((await r.users.listOfTenants(['b', 'a', 'b'])).map((u) => `${u.tenantId}:${u.name}`)).toEqual(['a:a', 'a:zed', 'b:b']);
      expect(await r.placements.listOfTenants([])).toEqual([]);
      expect((await r.routes.getMany(['c', 'b', 'a'])).map((x) => `${x.tenantId}:${x.port}`)).toEqual(['a:1', 'c:3']);
      expect((await r.upgrades.getMany(['a', 'b'])).map((u) => u.tenantId)).toEqual(['b']);
      expect((await r.restores.listOfTargets(['c', 'a'])).map((x) => x.id)).toEqual(['r1', 'r2', 'r3']);
      expect((await r.databases.listOfTenants(['b', 'a', 'c'])).map((d) => `${d.tenantId}:${d.name}`)).toEqual(['a:m', 'b:b', 'b:zz']);
    });

    it('updates a batch of placements in one call; a missing one is skipped, a repeated one refused', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        for (const h of ['h1', 'h2']) await tx.hosts.put(aHost(h));
        for (const t of ['a', 'b']) await tx.tenants.insert(aTenant(t));
        await tx.placements.insert(aPlacement('a', 'h1'));
        await tx.placements.insert(aPlacement('a', 'h2', { role: 'REPLICA' }));
        await tx.placements.insert(aPlacement('b', 'h2'));
      });
      await s.transaction(async (tx) => {
        await tx.placements.updateMany([
          aPlacement('b', 'h2', { realization: 'REALIZED', instanceState: 'RUNNING', port: 5433, realizedOnce: true, realizedRevision: 3 }),
          aPlacement('a', 'h2', { role: 'REPLICA', realization: 'FAILED', reason: 'disk full', failures: 2, nextRetryAt: 99 }),
          aPlacement('b', 'h1', { realization: 'REALIZED' }),
        ]);
        await expect(tx.placements.updateMany([aPlacement('a', 'h1'), aPlacement('a', 'h1')])).rejects.toThrow('twice');
      });
      expect(
        (await s.read.placements.list()).map((p) => [
          p.tenantId,
          p.hostId,
          p.role,
          p.realization,
          p.instanceState,
          p.port,
          p.realizedOnce,
          p.failures,
          p.reason,
        ]),
      ).toEqual([
        ['a', 'h1', 'PRIMARY', aPlacement('a', 'h1').realization, aPlacement('a', 'h1').instanceState, aPlacement('a', 'h1').port, false, 0, ''],
        ['a', 'h2', 'REPLICA', 'FAILED', aPlacement('a', 'h2').instanceState, aPlacement('a', 'h2').port, false, 2, 'disk full'],
        ['b', 'h2', 'PRIMARY', 'REALIZED', 'RUNNING', 5433, true, 0, ''],
      ]);
      expect(await s.read.placements.listRetriesDue(100)).toMatchObject([{ tenantId: 'a', hostId: 'h2' }]);
    });

    it('inserts a batch of placements all or nothing: one conflict leaves none of it and publishes none of it', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      await s.transaction(async (tx) => {
        for (const h of ['h1', 'h2', 'h3']) await tx.hosts.put(aHost(h));
        for (const t of ['a', 'b', 'c']) await tx.tenants.insert(aTenant(t));
        await tx.placements.insert(aPlacement('c', 'h1'));
      });
      // A second primary of c, after two rows that would go in: the whole batch is refused, and the
      // transaction goes on (its other writes commit) with none of the batch's rows or changes.
      await s.transaction(async (tx) => {
        await expect(tx.placements.insertMany([aPlacement('a', 'h1'), aPlacement('b', 'h2'), aPlacement('c', 'h3')])).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await tx.placements.listOfTenants(['a', 'b', 'c'])).toHaveLength(1);
        // Two rows of one batch that clash with each other: refused too.
        await expect(tx.placements.insertMany([aPlacement('a', 'h1'), aPlacement('a', 'h1', { role: 'REPLICA' })])).rejects.toBeInstanceOf(StoreConflictError);
        await tx.events.append({ time: 1, principal: 'test', action: 'kept', message: '' });
      });
      expect((await s.read.placements.list()).map((p) => `${p.tenantId}:${p.hostId}`)).toEqual(['c:h1']);
      expect(seen.at(-1)?.placementHosts).toEqual([]);
      expect(seen.at(-1)?.events.map((e) => e.action)).toEqual(['kept']);
      // A good batch goes in whole and names its hosts in the commit.
      await s.transaction((tx) => tx.placements.insertMany([aPlacement('a', 'h1'), aPlacement('b', 'h2'), aPlacement('a', 'h3', { role: 'REPLICA' })]));
      expect((await s.read.placements.list()).map((p) => `${p.tenantId}:${p.hostId}:${p.role}`)).toEqual([
        'a:h1:PRIMARY',
        'a:h3:REPLICA',
        'b:h2:PRIMARY',
        'c:h1:PRIMARY',
      ]);
      expect([...(seen.at(-1)?.placementHosts ?? [])].sort()).toEqual(['h1', 'h2', 'h3']);
      // A failed batch that the caller lets through rolls the transaction back as any write does.
      await expect(s.transaction((tx) => tx.placements.insertMany([aPlacement('b', 'h3', { role: 'REPLICA' }), aPlacement('c', 'h2')]))).rejects.toBeInstanceOf(
        StoreConflictError,
      );
      expect(await s.read.placements.list({ tenantId: 'b' })).toHaveLength(1);
    });

    it('appends events and updates tenants in batches: ids grow in the order given, published in that order', async () => {
      const s = await open();
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      await s.transaction(async (tx) => {
        for (const t of ['a', 'b', 'c']) await tx.tenants.insert(aTenant(t));
      });
      const stored = await s.transaction(async (tx) => {
        expect(await tx.events.appendMany([])).toEqual([]);
        await tx.events.append({ time: 1, principal: 'test', action: 'first', message: '' });
        const many = await tx.events.appendMany(
          ['z', 'y', 'x'].map((m, i) => ({
            time: 2 + i,
            principal: 'test',
            action: 'batch',
            tenantId: m === 'y' ? 'a' : '',
            message: m,
            details: { i: String(i) },
          })),
        );
        await tx.tenants.updateMany([
          { ...aTenant('c'), status: 'ACTIVE', statusReason: 'up', updatedAt: 9 },
          { ...aTenant('a'), status: 'ERROR', statusReason: 'down', updatedAt: 9 },
          { ...aTenant('gone'), status: 'ACTIVE' },
        ]);
        await expect(tx.tenants.updateMany([aTenant('a'), aTenant('a')])).rejects.toThrow('twice');
        return many;
      });
      expect(stored.map((e) => e.message)).toEqual(['z', 'y', 'x']);
      expect(stored[0]!.id).toBeLessThan(stored[1]!.id);
      expect(stored[1]!.id).toBeLessThan(stored[2]!.id);
      expect((await s.read.events.list({ limit: 10 })).map((e) => [e.id, e.action, e.message, e.tenantId, e.details])).toEqual([
        [stored[0]!.id - 1, 'first', '', '', {}],
        ...stored.map((e) => [e.id, 'batch', e.message, e.tenantId, e.details]),
      ]);
      expect(seen.at(-1)?.events.map((e) => e.message)).toEqual(['', 'z', 'y', 'x']);
      expect((await s.read.tenants.getMany(['a', 'b', 'c', 'gone'])).map((t) => `${t.id}:${t.status}:${t.statusReason}:${t.updatedAt}`)).toEqual([
        'a:ERROR:down:9',
        `b:${aTenant('b').status}:${aTenant('b').statusReason}:${aTenant('b').updatedAt}`,
        'c:ACTIVE:up:9',
      ]);
    });

    it('inserts batches of tenants, users and databases all or nothing: a taken key, stored or twice in the batch, leaves none of it', async () => {
      const s = await open();
      const database = (tenantId: string, name: string) => ({
        tenantId,
        name,
        owner: tenantId,
        description: `db ${name}`,
        status: 'NEW' as const,
        statusReason: '',
        revision: 1,
        createdAt: 7,
      });
      await s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('taken'));
        await tx.users.insert(aUser('taken', 'taken', { owner: true }));
        await tx.databases.insert(database('taken', 'taken'));
      });
      // Each refused batch leaves the transaction usable and none of its rows behind; the good ones commit.
      await s.transaction(async (tx) => {
        await expect(tx.tenants.insertMany([aTenant('a'), aTenant('taken'), aTenant('b')])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(tx.tenants.insertMany([aTenant('a'), aTenant('b'), aTenant('a')])).rejects.toBeInstanceOf(StoreConflictError);
        expect(await tx.tenants.getMany(['a', 'b'])).toEqual([]);
        await tx.tenants.insertMany([aTenant('b', { status: 'ACTIVE', statusReason: 'up', createdAt: 5 }), aTenant('a')]);
        await tx.tenants.insertMany([]);
        await expect(tx.users.insertMany([aUser('a', 'a', { owner: true }), aUser('taken', 'taken')])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(tx.users.insertMany([aUser('b', 'x'), aUser('a', 'a'), aUser('b', 'x')])).rejects.toBeInstanceOf(StoreConflictError);
        expect((await tx.users.listOfTenants(['a', 'b', 'taken'])).map((u) => `${u.tenantId}:${u.name}`)).toEqual(['taken:taken']);
        await tx.users.insertMany([aUser('a', 'a', { owner: true, description: 'owner a' }), aUser('b', 'b', { owner: true }), aUser('b', 'x')]);
        await expect(tx.databases.insertMany([database('a', 'x'), database('taken', 'taken')])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(tx.databases.insertMany([database('b', 'y'), database('b', 'y')])).rejects.toBeInstanceOf(StoreConflictError);
        expect(await tx.databases.listOfTenants(['a', 'b'])).toEqual([]);
        await tx.databases.insertMany([database('a', 'a'), database('b', 'b')]);
      });
      expect(await s.read.tenants.getMany(['a', 'b', 'taken'])).toEqual([
        aTenant('a'),
        aTenant('b', { status: 'ACTIVE', statusReason: 'up', createdAt: 5 }),
        aTenant('taken'),
      ]);
      expect(await s.read.users.listOfTenants(['a', 'b'])).toEqual([
        aUser('a', 'a', { owner: true, description: 'owner a' }),
        aUser('b', 'b', { owner: true }),
        aUser('b', 'x'),
      ]);
      expect(await s.read.databases.listOfTenants(['a', 'b', 'taken'])).toEqual([database('a', 'a'), database('b', 'b'), database('taken', 'taken')]);
      // A refused batch the caller lets through rolls its transaction back as any write does.
      await expect(s.transaction((tx) => tx.tenants.insertMany([aTenant('c'), aTenant('a')]))).rejects.toBeInstanceOf(StoreConflictError);
      expect(await s.read.tenants.get('c')).toBeUndefined();
    });

    it('reads and writes idempotency answers and stanzas in batches', async () => {
      const s = await open();
      const answer = (n: number) => ({ requestHash: `h${n}`, response: `{"n":${n}}`, createdAt: n });
      const stanza = (tenantId: string, archivedThrough: number) => ({ tenantId, stanza: `${tenantId}-1`, archivedThrough, lastArchivedWal: '', createdAt: 3 });
      await s.transaction(async (tx) => {
        await tx.idempotency.put('Create', 'k1', answer(1));
        await tx.idempotency.put('Other', 'k2', answer(9));
        await tx.tenants.insertMany([aTenant('a'), aTenant('b')]);
        await tx.backups.putStanza(stanza('a', 1));
      });
      await s.transaction(async (tx) => {
        await tx.idempotency.putMany('Create', [
          { key: 'k2', record: answer(2) },
          { key: 'k1', record: answer(3) },
        ]);
        await tx.idempotency.putMany('Create', []);
        await expect(
          tx.idempotency.putMany('Create', [
            { key: 'k4', record: answer(4) },
            { key: 'k4', record: answer(5) },
          ]),
        ).rejects.toThrow('twice');
        await tx.backups.putStanzaMany([stanza('b', 2), stanza('a', 5)]);
        await tx.backups.putStanzaMany([]);
        await expect(tx.backups.putStanzaMany([stanza('b', 6), stanza('b', 7)])).rejects.toThrow('twice');
      });
      const found = await s.read.idempotency.getMany('Create', ['k1', 'k2', 'k4', 'nope', 'k1']);
      expect([...found.entries()].sort(([a], [b]) => a.localeCompare(b))).toEqual([
        ['k1', answer(3)],
        ['k2', answer(2)],
      ]);
      expect((await s.read.idempotency.getMany('Create', [])).size).toBe(0);
      expect(await s.read.idempotency.get('Other', 'k2')).toEqual(answer(9));
      expect(await s.read.backups.getStanza('a')).toEqual(stanza('a', 5));
      expect(await s.read.backups.getStanza('b')).toEqual(stanza('b', 2));
      expect(await s.read.backups.getStanzaMany(['b', 'nope', 'a', 'b'])).toEqual([stanza('a', 5), stanza('b', 2)]);
      expect(await s.read.backups.getStanzaMany([])).toEqual([]);
    });

    it('writes a batch of routes as puts in order: unchanged ones keep their revision, changed ones take the next ones', async () => {
      const s = await open(20);
      const seen: Commit[] = [];
      s.subscribe((c) => seen.push(c));
      await s.transaction(async (tx) => {
        await tx.routes.put(route('a', 1));
        await tx.routes.put(route('b', 2));
      });
      const out = await s.transaction((tx) => tx.routes.putMany([route('c', 3), route('a', 1), route('b', 20)]));
      expect(out.map((r) => `${r.tenantId}:${r.port}:${r.revision}`)).toEqual(['c:3:3', 'a:1:1', 'b:20:4']);
      expect(await s.read.routes.revision()).toBe(4);
      expect(seen.at(-1)?.routeChanges.map((c) => `${c.revision}:${c.tenantId}:${c.route?.port}`)).toEqual(['3:c:3', '4:b:20']);
      expect((await s.read.routes.changesSince(2))?.map((c) => `${c.revision}:${c.tenantId}`)).toEqual(['3:c', '4:b']);
      expect((await s.read.routes.getMany(['a', 'b', 'c'])).map((r) => `${r.tenantId}:${r.port}:${r.revision}`)).toEqual(['a:1:1', 'b:20:4', 'c:3:3']);
      // Unchanged: nothing written, nothing published.
      const commits = seen.length;
      await s.transaction((tx) => tx.routes.putMany([route('a', 1), route('b', 20)]));
      expect(seen).toHaveLength(commits);
      await expect(s.transaction((tx) => tx.routes.putMany([route('a', 5), route('a', 6)]))).rejects.toThrow('twice');
      // The history window holds across batches as across single puts (20 kept).
      for (let i = 0; i < 5; i++) await s.transaction((tx) => tx.routes.putMany(Array.from({ length: 10 }, (_, k) => route(`t${k}`, 100 + i))));
      expect(await s.read.routes.revision()).toBe(54);
      expect((await s.read.routes.changesSince(44))?.map((c) => c.revision)).toEqual([45, 46, 47, 48, 49, 50, 51, 52, 53, 54]);
      expect(await s.read.routes.changesSince(4)).toBeUndefined();
    });
  });

  describe(`store contract (${backend}): scheduler reads`, () => {
    it('lists the waiting backlog oldest first, a page at a time, without placed, deleting or non-NEW tenants', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        for (let i = 0; i < 6; i++) await tx.tenants.insert(aTenant(`t${i}`, { createdAt: 2000 - i }));
        await tx.tenants.insert(aTenant('gone', { deleting: true }));
        await tx.tenants.insert(aTenant('live', { status: 'ACTIVE' }));
        await tx.placements.insert(aPlacement('t2', 'h1'));
      });
      const first = await s.read.tenants.listWaiting(3);
      expect(first.map((t) => t.id)).toEqual(['t5', 't4', 't3']);
      const last = first[2]!;
      expect((await s.read.tenants.listWaiting(3, { createdAt: last.createdAt, id: last.id })).map((t) => t.id)).toEqual(['t1', 't0']);
    });

    it('lists only due retries and only replicated tenants', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.tenants.insert(aTenant('solo'));
        await tx.tenants.insert(aTenant('ha', { spec: { ...aTenant('ha').spec, nodes: 2 } }));
        await tx.placements.insert(aPlacement('solo', 'h1', { realization: 'FAILED', nextRetryAt: 5000 }));
        await tx.placements.insert(aPlacement('ha', 'h1', { realization: 'FAILED', nextRetryAt: 0 }));
      });
      expect(await s.read.placements.listRetriesDue(4999)).toEqual([]);
      expect((await s.read.placements.listRetriesDue(5000)).map((p) => p.tenantId)).toEqual(['solo']);
      expect((await s.read.tenants.listReplicated()).map((t) => t.id)).toEqual(['ha']);
    });

    it('lists the ACTIVE tenants with an idle-suspend policy, by id', async () => {
      const s = await open();
      const idle = (id: string, status: TenantRecord['status'], seconds: number | undefined): TenantRecord => {
        const t = aTenant(id, { status });
        return { ...t, spec: { ...t.spec, idleSuspendSeconds: seconds } };
      };
      await s.transaction(async (tx) => {
        await tx.tenants.insert(idle('b-idle', 'ACTIVE', 300));
        await tx.tenants.insert(idle('a-idle', 'ACTIVE', 60));
        await tx.tenants.insert(idle('never', 'ACTIVE', 0));
        await tx.tenants.insert(idle('unset', 'ACTIVE', undefined));
        await tx.tenants.insert(idle('asleep', 'SUSPENDED', 60));
      });
      expect((await s.read.tenants.listIdleSuspend()).map((t) => t.id)).toEqual(['a-idle', 'b-idle']);
      // A policy turned off leaves the watch.
      await s.transaction(async (tx) => {
        const t = await tx.tenants.get('a-idle');
        if (t) await tx.tenants.update({ ...t, spec: { ...t.spec, idleSuspendSeconds: 0 } });
      });
      expect((await s.read.tenants.listIdleSuspend()).map((t) => t.id)).toEqual(['b-idle']);
    });

    it('sums allocations per host and counts the placements still being created', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.hosts.put(aHost('h2'));
        await tx.tenants.insert(aTenant('a'));
        await tx.tenants.insert(aTenant('b', { spec: { ...aTenant('b').spec, resources: { cpuMillis: 2000, memoryMib: 1024, diskMib: 4096 } } }));
        await tx.tenants.insert(aTenant('c'));
        await tx.placements.insert(aPlacement('a', 'h1'));
        await tx.placements.insert(aPlacement('b', 'h1', { realization: 'FAILED' }));
        await tx.placements.insert(aPlacement('c', 'h2', { realization: 'REALIZED', realizedOnce: true }));
      });
      const a = aTenant('a').spec.resources;
      expect((await s.read.placements.allocations()).get('h1')).toEqual({
        cpuMillis: a.cpuMillis + 2000,
        memoryMib: a.memoryMib + 1024,
        diskMib: a.diskMib + 4096,
        instances: 2,
      });
      expect(await s.read.placements.creating()).toEqual(new Map([['h1', 2]]));
      // Realized once: created, whatever it reports later.
      await s.transaction((tx) => tx.placements.update(aPlacement('a', 'h1', { realization: 'PENDING', realizedOnce: true })));
      expect(await s.read.placements.creating()).toEqual(new Map([['h1', 1]]));
      await s.transaction((tx) => tx.tenants.delete('b'));
      expect((await s.read.placements.allocations()).get('h1')?.instances).toBe(1);
    });

    it("counts a major upgrade's other instance on its host while both instances exist", async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.hosts.put(aHost('h2'));
        await tx.tenants.insert(aTenant('acme'));
        await tx.placements.insert(aPlacement('acme', 'h1'));
        await tx.upgrades.put(anUpgrade('acme'));
      });
      const r = aTenant('acme').spec.resources;
      const one = { cpuMillis: r.cpuMillis, memoryMib: r.memoryMib, diskMib: r.diskMib, instances: 1 };
      // The new instance on h2 beside the tenant's placement on h1.
      expect(await s.read.placements.allocations()).toEqual(
        new Map([
          ['h1', one],
          ['h2', one],
        ]),
      );
      await s.transaction((tx) => tx.upgrades.delete('acme'));
      expect(await s.read.placements.allocations()).toEqual(new Map([['h1', one]]));
    });

    it('counts a suspended tenant by its disk only (its CPU and memory are given back)', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.hosts.put(aHost('h1'));
        await tx.tenants.insert(aTenant('awake'));
        await tx.tenants.insert(aTenant('asleep', { status: 'SUSPENDED' }));
        await tx.placements.insert(aPlacement('awake', 'h1'));
        await tx.placements.insert(aPlacement('asleep', 'h1'));
      });
      const r = aTenant('awake').spec.resources;
      expect((await s.read.placements.allocations()).get('h1')).toEqual({
        cpuMillis: r.cpuMillis,
        memoryMib: r.memoryMib,
        diskMib: 2 * r.diskMib,
        instances: 2,
      });
    });

    it("reads one host's allocation alone, the same as the fleet's sums say of it", async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        for (const h of ['h1', 'h2', 'h3', 'empty']) await tx.hosts.put(aHost(h));
        await tx.tenants.insert(aTenant('big', { spec: { ...aTenant('big').spec, resources: { cpuMillis: 2000, memoryMib: 1024, diskMib: 4096 } } }));
        await tx.tenants.insert(aTenant('asleep', { status: 'SUSPENDED' }));
        await tx.tenants.insert(aTenant('acme'));
        await tx.placements.insert(aPlacement('big', 'h1'));
        await tx.placements.insert(aPlacement('asleep', 'h1'));
        await tx.placements.insert(aPlacement('acme', 'h3'));
        // The upgrade's new instance on h2.
        await tx.upgrades.put(anUpgrade('acme'));
      });
      const all = await s.read.placements.allocations();
      const zero = { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
      for (const h of ['h1', 'h2', 'h3', 'empty', 'unknown']) expect(await s.read.placements.allocationOf(h)).toEqual(all.get(h) ?? zero);
      expect((await s.read.placements.allocationOf('h1')).instances).toBe(2);
      expect((await s.read.placements.allocationOf('h2')).instances).toBe(1);
    });
  });

  describe(`store contract (${backend}): backups, restores, operations, secrets and tokens`, () => {
    it('round-trips rows, allows one running backup and one running restore per tenant, and goes with the tenant', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('acme'));
        await tx.backups.putStanza({ tenantId: 'acme', stanza: 'acme-1000', archivedThrough: 0, lastArchivedWal: '', createdAt: 1000 });
        await tx.backups.insert(backup('b1'));
      });
      await expect(s.transaction((tx) => tx.backups.insert(backup('b2')))).rejects.toBeInstanceOf(StoreConflictError);
      await s.transaction(async (tx) => {
        await tx.backups.update({ ...backup('b1'), status: 'SUCCEEDED', label: '20261206-101500F', finishedAt: 3000, sizeBytes: 23_000_000 });
        await tx.backups.insert(backup('b2', { startedAt: 4000, type: 'DIFF', priorLabel: '20261206-101500F' }));
      });
      expect((await s.read.backups.list('acme')).map((b) => [b.id, b.status, b.label])).toEqual([
        ['b1', 'SUCCEEDED', '20261206-101500F'],
        ['b2', 'RUNNING', ''],
      ]);
      expect((await s.read.backups.listRunning()).map((b) => b.id)).toEqual(['b2']);
      expect(await s.read.backups.countByStatus()).toEqual({ SUCCEEDED: 1, RUNNING: 1 });
      const restore: RestoreRecord = {
        id: 'r1',
        kind: 'in_place',
        sourceTenantId: 'acme',
        targetTenantId: 'acme',
        state: 'RUNNING',
        phase: 'recovering',
        reason: '',
        sourceStanza: 'acme-1000',
        toTime: 2500,
        toBackupId: '',
        backupLabel: '',
        latest: false,
        hostId: 'h2',
        oldHosts: ['h1'],
        oldLsn: '0/3000000',
        startedAt: 5000,
        finishedAt: 0,
        recoveredLsn: '',
        recoveredTime: 0,
        missingWalBytes: 0,
        timeline: 0,
        createdBy: 'operator:admin',
      };
      await s.transaction((tx) => tx.restores.insert(restore));
      await expect(s.transaction((tx) => tx.restores.insert({ ...restore, id: 'r2' }))).rejects.toBeInstanceOf(StoreConflictError);
      await s.transaction((tx) => tx.restores.update({ ...restore, state: 'SUCCEEDED', phase: 'removing_old', recoveredLsn: '0/5000028', missingWalBytes: 7 }));
      expect(await s.read.restores.get('r1')).toMatchObject({ state: 'SUCCEEDED', phase: 'removing_old', oldHosts: ['h1'], latest: false, missingWalBytes: 7 });
      expect(await s.read.restores.listRunning()).toEqual([]);
      expect((await s.read.restores.listActive()).map((r) => r.id)).toEqual(['r1']);
      await s.transaction((tx) => tx.tenants.delete('acme'));
      expect([await s.read.backups.getStanza('acme'), await s.read.backups.list('acme'), await s.read.restores.list('acme')]).toEqual([undefined, [], []]);
    });

    it('keeps one failover or switchover operation per tenant, with its phase and fencing point', async () => {
      const s = await open();
      const op: OperationRecord = {
        tenantId: 'acme',
        kind: 'failover',
        cause: 'host_down',
        phase: 'fencing',
        failedAt: 900,
        startedAt: 1000,
        oldPrimary: 'h1',
        toHostId: '',
        fencedAt: 0,
        fenceSentAt: 1000,
        fenceAckedAt: 0,
        goneAt: 0,
        finalLsn: '',
        candidate: '',
        chosenAt: 0,
        promoteSentAt: 0,
        deadline: 0,
        updatedAt: 1000,
      };
      await s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('acme'));
        await tx.operations.put(op);
      });
      expect(await s.read.operations.get('acme')).toEqual(op);
      await s.transaction((tx) =>
        tx.operations.put({ ...op, phase: 'promoting', fencedAt: 1500, goneAt: 1450, candidate: 'h2', chosenAt: 1600, updatedAt: 1600 }),
      );
      expect(await s.read.operations.get('acme')).toMatchObject({ phase: 'promoting', fencedAt: 1500, goneAt: 1450, candidate: 'h2' });
      expect((await s.read.operations.list()).map((o) => o.tenantId)).toEqual(['acme']);
      await s.transaction((tx) => tx.operations.delete('acme'));
      expect(await s.read.operations.get('acme')).toBeUndefined();
      await s.transaction((tx) => tx.operations.put(op));
      await s.transaction((tx) => tx.tenants.delete('acme'));
      expect(await s.read.operations.list()).toEqual([]);
    });

    it('keeps one move per tenant, replaced as it goes, and drops it with the tenant', async () => {
      const s = await open();
      const move = (tenantId: string, over: Partial<MoveRecord> = {}): MoveRecord => ({
        tenantId,
        progress: { phase: 'copying', fromHostId: 'h1', toHostId: 'h2', primary: true, startedAt: 1000, phaseStartedAt: 1000, copyDeadline: 61_000 },
        principal: 'router:r1',
        wake: "its host h1 has no room left for it: short of memory (needs 1Gi, 0Mi free), 'quoted'",
        steps: [],
        updatedAt: 1000,
        ...over,
      });
      await s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('acme'));
        await tx.tenants.insert(aTenant('beta'));
        await tx.moves.put(move('beta', { wake: '' }));
        await tx.moves.put(move('acme'));
      });
      expect(await s.read.moves.get('acme')).toEqual(move('acme'));
      expect((await s.read.moves.list()).map((m) => m.tenantId)).toEqual(['acme', 'beta']);
      // The switch: the same row, further on.
      const switching = move('acme', {
        progress: { ...move('acme').progress, phase: 'switching', phaseStartedAt: 5000 },
        steps: [{ name: 'copy', durationMs: 4000, detail: 'copy on h2 caught up' }],
        updatedAt: 5000,
      });
      await s.transaction((tx) => tx.moves.put(switching));
      expect(await s.read.moves.get('acme')).toEqual(switching);
      // A transaction that fails writes nothing.
      await expect(
        s.transaction(async (tx) => {
          await tx.moves.delete('acme');
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await s.read.moves.get('acme')).toEqual(switching);
      await s.transaction((tx) => tx.moves.delete('beta'));
      expect(await s.read.moves.get('beta')).toBeUndefined();
      await s.transaction((tx) => tx.tenants.delete('acme'));
      expect(await s.read.moves.list()).toEqual([]);
    });

    it('keeps one upgrade per tenant, found by the host of its other instance, and drops it with the tenant', async () => {
      const s = await open();
      await s.transaction(async (tx) => {
        await tx.tenants.insert(aTenant('acme'));
        await tx.tenants.insert(aTenant('beta'));
        await tx.upgrades.put(anUpgrade('acme', { databases: ['app', 'o\'dd "db"'] }));
        await tx.upgrades.put(anUpgrade('beta', { other: { ...anUpgrade('beta').other, hostId: 'h3' } }));
      });
      expect(await s.read.upgrades.get('acme')).toEqual(anUpgrade('acme', { databases: ['app', 'o\'dd "db"'] }));
      expect((await s.read.upgrades.listOnHost('h2')).map((u) => u.tenantId)).toEqual(['acme']);
      expect((await s.read.upgrades.listOnHost('h1')).map((u) => u.tenantId)).toEqual([]);
      // The switch: the old instance becomes the other one, on the source's host.
      const kept = anUpgrade('acme', { phase: 'kept', other: { ...anUpgrade('acme').other, hostId: 'h1', major: 15 }, updatedAt: 2000 });
      await s.transaction((tx) => tx.upgrades.put(kept));
      expect((await s.read.upgrades.listOnHost('h1')).map((u) => u.tenantId)).toEqual(['acme']);
      expect((await s.read.upgrades.get('acme'))?.phase).toBe('kept');
      expect((await s.read.upgrades.list()).map((u) => u.tenantId)).toEqual(['acme', 'beta']);
      await s.transaction((tx) => tx.upgrades.delete('beta'));
      expect(await s.read.upgrades.get('beta')).toBeUndefined();
      await s.transaction((tx) => tx.tenants.delete('acme'));
      expect(await s.read.upgrades.list()).toEqual([]);
    });

    it("keeps a tenant's init scripts and their run, lists the open runs, and drops them with the tenant", async () => {
      const s = await open();
      const scripts = [
        { name: '001-schema.sql', sql: 'create table items (id int)', database: '' },
        { name: '002-seed.sql', sql: "insert into items values (1) -- it's seeded", database: 'app' },
      ];
      const held: InitSqlRecord = {
        tenantId: 'held',
        scripts,
        state: 'HELD',
        applied: 0,
        failedScript: '',
        error: '',
        attempt: 0,
        afterRevision: 1,
        updatedAt: 1000,
      };
      await s.transaction(async (tx) => {
        for (const id of ['held', 'open', 'done']) await tx.tenants.insert(aTenant(id));
        await tx.initSql.put(held);
        await tx.initSql.put({ ...held, tenantId: 'open', state: 'PENDING' });
        await tx.initSql.put({ ...held, tenantId: 'done', state: 'SUCCEEDED', applied: 2, attempt: 1 });
      });
      expect(await s.read.initSql.get('held')).toEqual(held);
      expect(await s.read.initSql.get('acme')).toBeUndefined();
      expect((await s.read.initSql.listOpen()).map((r) => r.tenantId)).toEqual(['open']);
      await s.transaction((tx) => tx.initSql.put({ ...held, state: 'RUNNING', attempt: 1, updatedAt: 2000 }));
      await s.transaction((tx) =>
        tx.initSql.put({
          ...held,
          tenantId: 'open',
          state: 'FAILED',
          applied: 1,
          failedScript: '002-seed.sql',
          error: 'relation "items" does not exist',
          attempt: 1,
        }),
      );
      expect((await s.read.initSql.listOpen()).map((r) => [r.tenantId, r.state])).toEqual([['held', 'RUNNING']]);
      expect(await s.read.initSql.get('open')).toMatchObject({
        state: 'FAILED',
        applied: 1,
        failedScript: '002-seed.sql',
        error: 'relation "items" does not exist',
      });
      await s.transaction((tx) => tx.tenants.delete('held'));
      expect(await s.read.initSql.get('held')).toBeUndefined();
      expect(await s.read.initSql.listOpen()).toEqual([]);
    });

    it('keeps secrets once, replaces on purpose, and re-seals everything in one transaction', async () => {
      const s = await open();
      await s.transaction((tx) => tx.tenants.insert(aTenant('acme')));
      const ca = await s.transaction((tx) => tx.secrets.putCaOnce({ certPem: 'cert', keySealed: 'v1.k1.ca', createdAt: 1 }));
      expect(await s.transaction((tx) => tx.secrets.putCaOnce({ certPem: 'other', keySealed: 'v1.k1.x', createdAt: 2 }))).toEqual(ca);
      await s.transaction(async (tx) => {
        await tx.secrets.insertTenantSecret({
          tenantId: 'acme',
          name: 'replication',
          sealed: 'v1.k1.r',
          verifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b',
          createdAt: 1,
        });
        await tx.secrets.insertTenantSecret({
          tenantId: 'acme',
          name: 'replication',
          sealed: 'v1.k1.other',
          verifier: 'SCRAM-SHA-256$4096:c2FsdA==$a:b',
          createdAt: 2,
        });
        await tx.secrets.putFleetSecretOnce({ name: 'backup', keyId: 'bk-1', sealed: 'v1.k1.b', createdAt: 1 });
        await tx.secrets.putFleetSecret({ name: 's3', keyId: '', sealed: 'v1.k1.s', createdAt: 1 });
        await tx.secrets.putFleetSecret({ name: 's3', keyId: '', sealed: 'v1.k1.s2', createdAt: 2 });
      });
      expect((await s.read.secrets.getTenantSecret('acme', 'replication'))?.sealed).toBe('v1.k1.r');
      expect((await s.read.secrets.getFleetSecret('s3'))?.sealed).toBe('v1.k1.s2');
      // A major upgrade's row holds the subscription role's password sealed; the rest of the row stays as it was.
      await s.transaction((tx) => tx.upgrades.put(anUpgrade('acme', { sealedPassword: 'v1.k1.u' })));
      const where: SealedAt[] = [];
      const changed = await s.transaction((tx) =>
        tx.secrets.resealAll((sealed, at) => {
          where.push(at);
          return sealed.replace('v1.k1.', 'v1.k2.');
        }),
      );
      expect(changed).toBe(5);
      expect(where).toContainEqual({ table: 'upgrades', tenantId: 'acme' });
      expect([
        (await s.read.secrets.getCa())?.keySealed,
        (await s.read.secrets.getTenantSecret('acme', 'replication'))?.sealed,
        (await s.read.secrets.getFleetSecret('backup'))?.sealed,
      ]).toEqual(['v1.k2.ca', 'v1.k2.r', 'v1.k2.b']);
      expect(await s.read.upgrades.get('acme')).toEqual(anUpgrade('acme', { sealedPassword: 'v1.k2.u' }));
    });

    it('tokens: a live operator name is unique, a single-use token is used once, revoking frees the name', async () => {
      const s = await open();
      const token = (hash: string, name: string, kind: 'operator' | 'host' = 'operator'): TokenRecord => ({
        hash: hash.padEnd(64, '0'),
        kind,
        name,
        role: kind === 'operator' ? ('fleet-admin' as const) : undefined,
        tenantIds: [],
        createdAtMs: 1,
        expiresAtMs: 10_000,
        singleUse: kind === 'host',
      });
      await s.transaction(async (tx) => {
        await tx.tokens.insert(token('h1', 'ci'), 'operator:admin');
        await tx.tokens.insert(token('j1', 'host-7', 'host'), 'operator:admin');
      });
      await expect(s.transaction((tx) => tx.tokens.insert(token('h2', 'ci'), 'operator:admin'))).rejects.toBeInstanceOf(StoreConflictError);
      expect((await s.read.tokens.findOperator('ci'))?.hash).toBe('h1'.padEnd(64, '0'));
      const j1 = 'j1'.padEnd(64, '0');
      expect(await s.transaction((tx) => tx.tokens.markUsed(j1, 5))).toBe(true);
      expect(await s.transaction((tx) => tx.tokens.markUsed(j1, 6))).toBe(false);
      expect(await s.transaction((tx) => tx.tokens.revokeOperator('ci', 7))).toBe(true);
      await s.transaction((tx) => tx.tokens.insert(token('h2', 'ci'), 'operator:admin'));
      const all = (await s.read.tokens.listOperators(true)).map((t) => `${t.hash.slice(0, 2)}:${t.revokedAtMs ?? 0}`);
      expect(all.sort()).toEqual(['h1:7', 'h2:0']);
      expect((await s.read.tokens.listOperators(false)).map((t) => t.hash.slice(0, 2))).toEqual(['h2']);
      expect((await s.read.tokens.find(j1))?.usedAtMs).toBe(5);
    });
  });
}
