/**
 * Creates written in groups, on both stores: each create of a group keeps the outcome it would have
 * had alone (a taken id, an idempotency key answered again or reused for another request, a create
 * the store refuses fails alone), and on PostgreSQL a burst of creates costs a few statements per
 * group instead of some fifteen per create.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { DEFAULT_TENANT_SPEC, PgsError } from '@pgs/tenancy';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HealthCache } from '../live/health-cache.js';
import type { Commit, Store } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { openPostgresStore } from '../store/postgres/pg-store.js';
import type { CoordinatorContext } from './context.js';
import { TenantCreates, writeCreates, type CreateDeps, type PreparedCreate } from './tenant-creates.js';
import { TenantService } from './tenant-service.js';
import { VersionCatalog } from './versions.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'creates-secret-1';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
const VERIFIER = 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy';
let server: TestPostgres;
let databases = 0;
const opened: Store[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  server = await startTestPostgres({ host: `127.${NET}.45.2`, users: [{ name: 'coord', password: PW }] });
});
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
afterAll(async () => server?.stop());

async function sqlite(): Promise<Store> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-creates-'));
  dirs.push(dir);
  const { store } = openStore({ dataDir: dir, allowInit: true, routeHistory: 1000, now: 1 });
  opened.push(store);
  return store;
}

async function postgres(): Promise<Store> {
  const name = `creates_${++databases}`;
  const admin = await server.adminClient();
  await admin.query(`CREATE DATABASE ${name} OWNER coord`);
  await admin.end();
  const store = await openPostgresStore({ url: server.url('coord', PW, name), routeHistory: 1000, log });
  opened.push(store);
  return store;
}

const create = (id: string, over: Partial<PreparedCreate> = {}): PreparedCreate => ({
  id,
  spec: { ...DEFAULT_TENANT_SPEC, version: '15' },
  scripts: [],
  holdInitSql: false,
  verifier: VERIFIER,
  generated: false,
  idempotencyKey: '',
  principal: 'operator:test',
  ...over,
});

const deps = (now: number): CreateDeps => ({ now, health: new HealthCache(), backups: true });

const codeOf = (e: unknown): string => (e instanceof PgsError ? e.code : String(e));

describe.each([
  ['SQLite', sqlite],
  ['PostgreSQL', postgres],
])('creates in groups (%s)', (_name, open) => {
  it('gives each create of a group the outcome it would have had alone, in arrival order', async () => {
    const store = await open();
    const commits: Commit[] = [];
    store.subscribe((c) => commits.push(c));
    const before = await store.transaction((tx) => writeCreates(tx, [create('stored'), create('keyed', { idempotencyKey: 'k1' })], deps(1000)), {
      grouped: true,
    });
    expect(before.map((r) => r.ok)).toEqual([true, true]);
    const scripts = [{ name: 'setup', sql: 'SELECT 1', database: '' }];
    const group = [
      create('a'),
      create('stored'),
      create('b'),
      create('b'),
      create('keyed', { idempotencyKey: 'k1' }),
      create('other', { idempotencyKey: 'k1' }),
      create('c', { idempotencyKey: 'k2', generated: true }),
      create('c', { idempotencyKey: 'k2', generated: true }),
      create('d', { idempotencyKey: 'k2' }),
      create('e', { scripts, principal: 'operator:other' }),
    ];
    const out = await store.transaction((tx) => writeCreates(tx, group, deps(2000)), { grouped: true });
    expect(
      out.map((r) => (r.ok ? (r.outcome.replayed ? `replay:${r.outcome.answer.tenant.id}` : `new:${r.outcome.answer.tenant.id}`) : codeOf(r.error))),
    ).toEqual([
      'new:a',
      'TENANT_EXISTS',
      'new:b',
      'TENANT_EXISTS',
      'replay:keyed',
      'IDEMPOTENCY_KEY_REUSED',
      'new:c',
      'replay:c',
      'IDEMPOTENCY_KEY_REUSED',
      'new:e',
    ]);
    const ok = out.flatMap((r) => (r.ok ? [r.outcome] : []));
    // The stored answer is the first one's: its time, not this group's.
    expect(ok[2]?.answer.tenant.createdAt).toBe(1000);
    // A retry within the group gets what a later one would read back.
    expect(ok[4]).toEqual({ ...ok[3], replayed: true });
    expect(ok[4]?.answer.generated).toBe(true);
    expect(ok[5]?.initSql).toMatchObject({ tenantId: 'e', scripts });
    expect(ok[0]?.answer.tenant).toMatchObject({ id: 'a', status: 'NEW', revision: 1, createdAt: 2000 });

    // What the group wrote: each created tenant whole (owner, database, stanza, event, route), nothing of the refused ones.
    const r = store.read;
    expect((await r.tenants.list()).map((t) => t.id)).toEqual(['a', 'b', 'c', 'e', 'keyed', 'stored']);
    expect((await r.users.listOfTenants(['a', 'b', 'c', 'e'])).map((u) => `${u.tenantId}:${u.name}:${u.owner}`)).toEqual([
      'a:a:true',
      'b:b:true',
      'c:c:true',
      'e:e:true',
    ]);
    expect((await r.databases.listOfTenants(['a', 'b', 'c', 'e'])).map((d) => `${d.tenantId}:${d.name}:${d.owner}`)).toEqual([
      'a:a:a',
      'b:b:b',
      'c:c:c',
      'e:e:e',
    ]);
    expect((await r.routes.getMany(['a', 'b', 'c', 'e'])).map((x) => x.tenantId)).toEqual(['a', 'b', 'c', 'e']);
    expect((await r.backups.getStanza('c'))?.stanza).toBe('c-2000');
    expect((await r.initSql.get('e'))?.scripts).toEqual(scripts);
    expect(await r.initSql.get('a')).toBeUndefined();
    const created = (await r.events.list({ limit: 100 })).filter((e) => e.action === 'tenant.create');
    expect(created.map((e) => `${e.tenantId}:${e.principal}`)).toEqual([
      'stored:operator:test',
      'keyed:operator:test',
      'a:operator:test',
      'b:operator:test',
      'c:operator:test',
      'e:operator:other',
    ]);
    expect(JSON.parse((await r.idempotency.get('CreateTenant', 'k2'))?.response ?? '{}')).toEqual(ok[3]?.answer);
    expect(await r.idempotency.get('CreateTenant', 'k1')).toMatchObject({ createdAt: 1000 });
    expect(commits.at(-1)?.toPlace).toEqual(['a', 'b', 'c', 'e']);
  });

  it('a create that breaks the group write fails alone: the others of its group are created', async () => {
    const store = await open();
    const creates = new TenantCreates(store, () => deps(3000));
    // Submitted in one turn: one group. The store refuses the bad verifier (a CHECK), which no read foresaw.
    const settled = await Promise.allSettled([
      creates.submit(create('good-1')),
      creates.submit(create('bad', { verifier: 'plain-text' })),
      creates.submit(create('good-2', { idempotencyKey: 'k' })),
      creates.submit(create('good-1')),
    ]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value.answer.tenant.id : codeOf(s.reason)))).toEqual([
      'good-1',
      'STORE_CONFLICT',
      'good-2',
      'TENANT_EXISTS',
    ]);
    expect((await store.read.tenants.list()).map((t) => t.id)).toEqual(['good-1', 'good-2']);
    expect(await store.read.users.list('bad')).toEqual([]);
    expect(await store.read.idempotency.get('CreateTenant', 'k')).toBeDefined();
  });
});

describe('creates on PostgreSQL', () => {
  it('a burst of creates through the service costs a few statements per group, not some fifteen per create', async () => {
    const store = await postgres();
    const ctx = {
      store,
      clock: () => Date.now(),
      health: new HealthCache(),
      versions: new VersionCatalog([{ id: '15', image: '', deprecated: false }]),
      backup: undefined,
    } as unknown as CoordinatorContext;
    const service = new TenantService(ctx);
    const N = 60;
    const sent = (): number => store.statements?.().writer ?? 0;
    const before = sent();
    const views = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        service.create(
          { id: `burst-${i}`, spec: { ...DEFAULT_TENANT_SPEC }, ownerPassword: 'a-long-owner-secret', idempotencyKey: `key-${i}` },
          'operator:test',
        ),
      ),
    );
    const perCreate = (sent() - before) / N;
    expect(views.map((v) => v.view.tenant.id).sort()).toEqual(Array.from({ length: N }, (_, i) => `burst-${i}`).sort());
    expect(await store.read.tenants.count()).toBe(N);
    // One at a time, a create cost ~15 statements on the writer (tenant, owner, database, event,
    // its key, its sync). Grouped, a group of any size costs about as many: the SCRAM hashing
    // spreads the burst over a few groups.
    expect(perCreate).toBeLessThan(4);
  });
});
