import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreConflictError, StoreNotFoundError, StoreUnavailableError } from '../../domain/errors.js';
import { aHost, aPlacement, aTenant, aUser } from '../../testing/records.js';
import type { Commit } from '../contract.js';
import { LeaseLostError, leaseStep } from './leader-lease-sql.js';
import { connectTo } from './pg-connection.js';
import { PG_LATEST_SCHEMA_VERSION, PgSchemaTooNewError } from './pg-schema.js';
import { openPostgresStore, type PostgresStore, type WriteFence } from './pg-store.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
let server: TestPostgres;
let dbCount = 0;
const stores: PostgresStore[] = [];

/** A fresh database for one test. */
async function freshUrl(): Promise<string> {
  const name = `store_${++dbCount}`;
  const admin = await server.adminClient();
  await admin.query(`CREATE DATABASE ${name} OWNER coord`);
  await admin.end();
  return server.url('coord', PW, name);
}

async function open(url: string, fence?: WriteFence, routeHistory = 100): Promise<PostgresStore> {
  const s = await openPostgresStore({ url, routeHistory, log, fence, now: () => 1000 });
  stores.push(s);
  return s;
}

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

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.37.22`, users: [{ name: 'coord', password: PW }], settings: { max_connections: '200' } });
  const admin = await server.adminClient();
  await admin.query('ALTER ROLE coord CREATEDB');
  await admin.end();
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});
afterAll(async () => server?.stop());

describe('PostgreSQL store', () => {
  it('migrates once, reopens with the data kept, and refuses a schema newer than the build', async () => {
    const url = await freshUrl();
    const first = await open(url);
    expect(first.schemaVersion).toBe(PG_LATEST_SCHEMA_VERSION);
    expect(first.location).not.toContain(PW);
    await first.transaction(async (tx) => tx.tenants.insert(aTenant('acme')));
    await first.close();
    const second = await open(url);
    expect((await second.read.tenants.get('acme'))?.spec).toEqual(aTenant('acme').spec);
    const c = await connectTo(url);
    await c.query('INSERT INTO schema_migrations VALUES (999, $1, 0)', ['from the future']);
    await c.end();
    await expect(openPostgresStore({ url, routeHistory: 10, log })).rejects.toBeInstanceOf(PgSchemaTooNewError);
  });

  it('keeps records, filters and pages tenants in SQL, and sums allocations', async () => {
    const s = await open(await freshUrl());
    await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.hosts.put(aHost('h2'));
      for (const id of ['a', 'b', 'c', 'd']) await tx.tenants.insert(aTenant(id, { spec: { ...aTenant(id).spec, labels: { team: id < 'c' ? 'x' : 'y' } } }));
      await tx.tenants.update({ ...aTenant('d'), status: 'ERROR', statusReason: 'disk: full' });
      await tx.tenants.insert(aTenant('e', { createdAt: 500 }));
      await tx.placements.insert(aPlacement('a', 'h1'));
      await tx.placements.insert(aPlacement('b', 'h1', { realizedOnce: true }));
      await tx.placements.insert(aPlacement('c', 'h2'));
      await tx.users.insert(aUser('a', 'alice', { owner: true }));
      await tx.users.insert(aUser('a', 'bob'));
    });
    expect((await s.read.tenants.list({}, { after: 'a', limit: 2 })).map((t) => t.id)).toEqual(['b', 'c']);
    expect((await s.read.tenants.list({ labels: { team: 'x' } })).map((t) => t.id)).toEqual(['a', 'b']);
    expect((await s.read.tenants.list({ hostId: 'h1', ids: ['b', 'c'] })).map((t) => t.id)).toEqual(['b']);
    expect(await s.read.tenants.count({ reasonPrefix: 'disk:' })).toBe(1);
    expect(await s.read.tenants.countByStatus()).toEqual({ NEW: 4, ERROR: 1 });
    expect((await s.read.tenants.listWaiting(10)).map((t) => t.id)).toEqual(['e']);
    expect(await s.read.tenants.listWaiting(10, { createdAt: 500, id: 'e' })).toEqual([]);
    const spec = aTenant('a').spec.resources;
    expect((await s.read.placements.allocations()).get('h1')).toEqual({
      cpuMillis: 2 * spec.cpuMillis,
      memoryMib: 2 * spec.memoryMib,
      diskMib: 2 * spec.diskMib,
      instances: 2,
    });
    expect(Object.fromEntries(await s.read.placements.creating())).toEqual({ h1: 1, h2: 1 });
    expect((await s.read.users.list('a')).map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(await s.read.hosts.get('h1')).toEqual(aHost('h1'));
  });

  it('refuses a second primary with a conflict the transaction can go on after, and bumps generations', async () => {
    const s = await open(await freshUrl());
    const outcome = await s.transaction(async (tx) => {
      await tx.hosts.put(aHost('h1'));
      await tx.hosts.put(aHost('h2'));
      await tx.tenants.insert(aTenant('acme'));
      await tx.placements.insert(aPlacement('acme', 'h1'));
      const err = await tx.placements.insert(aPlacement('acme', 'h2')).catch((e: unknown) => e);
      await tx.placements.insert(aPlacement('acme', 'h2', { role: 'REPLICA' }));
      return { err, gen: [await tx.hosts.nextGeneration('h1'), await tx.hosts.nextGeneration('h1')] };
    });
    expect(outcome.err).toBeInstanceOf(StoreConflictError);
    expect(outcome.gen).toEqual([1, 2]);
    expect((await s.read.placements.list({ tenantId: 'acme' })).map((p) => `${p.role}@${p.hostId}`)).toEqual(['PRIMARY@h1', 'REPLICA@h2']);
    await expect(s.transaction((tx) => tx.hosts.nextGeneration('nope'))).rejects.toBeInstanceOf(StoreNotFoundError);
    // Re-registration never lowers the generation.
    await s.transaction((tx) => tx.hosts.put(aHost('h1', { generation: 0 })));
    expect((await s.read.hosts.get('h1'))?.generation).toBe(2);
  });

  it('numbers route changes, keeps their history, and publishes a commit once, never a rollback', async () => {
    const s = await open(await freshUrl(), undefined, 20);
    const commits: Commit[] = [];
    s.subscribe((c) => commits.push(c));
    await s.transaction(async (tx) => {
      await tx.routes.put(route('a', 1));
      await tx.routes.put(route('a', 1)); // unchanged: no revision
      await tx.routes.put(route('b', 2));
      await tx.routes.delete('a');
      await tx.events.append({ time: 1, principal: 'test', action: 'x.y', message: 'm' });
      tx.record({ kind: 'desired', tenantId: 'b' });
      tx.record({ kind: 'place', tenantId: 'b' });
    });
    await expect(
      s.transaction(async (tx) => {
        await tx.routes.put(route('c', 3));
        throw new Error('caller gave up');
      }),
    ).rejects.toThrow('caller gave up');
    expect(await s.read.routes.revision()).toBe(3);
    expect(commits).toHaveLength(1);
    expect(commits[0]?.routeChanges.map((c) => [c.revision, c.tenantId, c.route?.port])).toEqual([
      [1, 'a', 1],
      [2, 'b', 2],
      [3, 'a', undefined],
    ]);
    expect(commits[0]?.desired).toEqual([{ tenantId: 'b' }]);
    expect(commits[0]?.toPlace).toEqual(['b']);
    expect(commits[0]?.events.map((e) => e.action)).toEqual(['x.y']);
    expect((await s.read.routes.changesSince(1))?.map((c) => c.revision)).toEqual([2, 3]);
    expect(await s.read.routes.changesSince(3)).toEqual([]);
    expect(await s.read.routes.changesSince(4)).toBeUndefined();
    for (let i = 0; i < 30; i++) await s.transaction((tx) => tx.routes.put(route('b', 100 + i)));
    expect(await s.read.routes.changesSince(0)).toBeUndefined(); // pruned: a snapshot is needed
    expect((await s.read.routes.changesSince(30))?.length).toBe(3);
  });

  it('keeps events append-only and lists them by id', async () => {
    const s = await open(await freshUrl());
    const ids = await s.transaction(async (tx) => {
      const out: number[] = [];
      for (let i = 0; i < 5; i++)
        out.push((await tx.events.append({ time: i, principal: 'p', action: 'a', tenantId: i % 2 ? 't1' : 't2', message: `${i}` })).id);
      return out;
    });
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect((await s.read.events.list({ limit: 2 })).map((e) => e.message)).toEqual(['3', '4']);
    expect((await s.read.events.list({ limit: 10, afterId: ids[1], tenantId: 't2' })).map((e) => e.message)).toEqual(['2', '4']);
    const c = await connectTo(s.location.replace(':***@', `:${PW}@`));
    await expect(c.query('UPDATE events SET message = $1', ['edited'])).rejects.toThrow(/append-only/);
    await expect(c.query('DELETE FROM events')).rejects.toThrow(/append-only/);
    await c.end();
  });

  it('commits grouped transactions together, each refused one undoing only itself', async () => {
    const s = await open(await freshUrl());
    const commits: Commit[] = [];
    s.subscribe((c) => commits.push(c));
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        s.transaction(
          async (tx) => {
            await tx.tenants.insert(aTenant(i === 7 ? 't3' : `t${i}`)); // t3 twice: the second is refused
            await tx.events.append({ time: i, principal: 'p', action: 'tenant.create', tenantId: `t${i}`, message: '' });
            return i;
          },
          { grouped: true },
        ),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[7]).toMatchObject({ status: 'rejected', reason: expect.any(StoreConflictError) });
    expect(await s.read.tenants.count()).toBe(49);
    expect(commits.length).toBeLessThan(5); // shared commits, not one per transaction
    expect(commits.flatMap((c) => c.events).length).toBe(49);
  });

  it('with a fence, commits only while this coordinator holds the lease at its epoch', async () => {
    const url = await freshUrl();
    const held: { fence?: { holder: string; epoch: number } } = {};
    const s = await open(url, () => held.fence);
    await expect(s.transaction((tx) => tx.tenants.insert(aTenant('early')))).rejects.toBeInstanceOf(LeaseLostError);
    const c = await connectTo(url);
    const t = { ttlMs: 60_000, renewIntervalMs: 1000, safetyMarginMs: 100 };
    const won = await leaseStep(c, { holder: 'me', address: 'a', heldEpoch: 0 }, t);
    expect(won.kind).toBe('acquire');
    held.fence = { holder: 'me', epoch: 1 };
    await s.transaction((tx) => tx.tenants.insert(aTenant('mine')));
    // Someone else takes over (the lease is made to run out first).
    await c.query('UPDATE coordinator_lease SET expires_at = 0');
    await leaseStep(c, { holder: 'other', address: 'b', heldEpoch: 0 }, t);
    await c.end();
    const err = await s.transaction((tx) => tx.tenants.insert(aTenant('late'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((await s.read.tenants.list()).map((x) => x.id)).toEqual(['mine']);
  });

  it('lets a read wait for a busy read connection longer than a connect may take', async () => {
    const url = await freshUrl();
    const s = await openPostgresStore({ url, routeHistory: 100, log, now: () => 1000, readConnections: 1 });
    stores.push(s);
    await s.transaction(async (tx) => tx.tenants.insert(aTenant('a')));
    // A plain connection: the store's own end a transaction left idle for 2 s.
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE');
      // The one read connection waits on the lock; the second read waits for that connection,
      // longer than the 5 s a connect may take.
      const first = s.read.tenants.get('a');
      const second = s.read.tenants.get('a');
      second.catch(() => undefined); // awaited below; a rejection must not go unhandled meanwhile
      await new Promise((r) => setTimeout(r, 6000));
      await locker.query('COMMIT');
      expect((await first)?.id).toBe('a');
      expect((await second)?.id).toBe('a');
    } finally {
      await locker.end();
    }
  });

  it('answers unavailable, not a driver error, when its server is gone', async () => {
    const other = await startTestPostgres({ host: `127.${NET}.37.23`, users: [{ name: 'coord', password: PW }] });
    try {
      const s = await open(other.url('coord', PW));
      await other.kill();
      await expect(s.transaction((tx) => tx.tenants.insert(aTenant('x')))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(s.read.tenants.get('x')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await other.stop();
    }
  });
});
