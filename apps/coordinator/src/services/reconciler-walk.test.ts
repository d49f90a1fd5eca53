/**
 * The reconciler's walk of a backlog that cannot be placed, on each store, while tenants keep
 * being created: creates ask for placement between the walk's slices, and a slice that waits on
 * the store must not let them restart the walk (its cursor back to the oldest tenant), or it never
 * finishes, never parks, and every create pays for the whole backlog again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reconciler } from './reconciler.js';
import type { CoordinatorContext } from './context.js';
import { aHost, aTenant } from '../testing/records.js';
import { eventually, startHarness, type Harness } from '../testing/harness.js';
import type { Store } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { openPostgresStore } from '../store/postgres/pg-store.js';

const NET = process.env['PGS_TEST_NET'] ?? '2';
const PW = 'coord-secret-3';
const log = pino({ level: process.env['PGS_TEST_LOG'] ?? 'silent' });
const BACKLOG = 40;
const CREATES = 60;
const PAGE = 5;

let h: Harness;
let server: TestPostgres;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-walk-'));
beforeAll(async () => {
  // The harness lends its context (policy, keys, caches); each test brings its own store.
  h = await startHarness(['--reconcile-interval', '1h']);
  server = await startTestPostgres({ host: `127.${NET}.37.29`, users: [{ name: 'coord', password: PW }] });
});
afterAll(async () => {
  await h?.stop();
  await server?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const stores: Array<[string, () => Promise<Store>]> = [
  ['SQLite', async () => openStore({ dataDir: path.join(root, 'sqlite'), allowInit: true, routeHistory: 1000, now: Date.now() }).store],
  ['PostgreSQL', async () => openPostgresStore({ url: server.url('coord', PW), routeHistory: 1000, log })],
];

describe.each(stores)('the backlog walk on the %s store', (_name, open) => {
  it('finishes once and parks while creates keep asking for placement between its slices; every create is still considered', async () => {
    const store = await open();
    const ctx: CoordinatorContext = { ...h.coordinator.ctx, store, metrics: undefined };
    await store.transaction((tx) => tx.hosts.put(aHost('walk-h1', { cordoned: true })));
    await store.transaction(async (tx) => {
      for (let i = 0; i < BACKLOG; i++) await tx.tenants.insert(aTenant(`old-${String(i).padStart(3, '0')}`, { createdAt: 1000 + i }));
    });
    // Pages of the backlog read by walks (a page per slice step).
    let pages = 0;
    const listWaiting = store.read.tenants.listWaiting.bind(store.read.tenants);
    store.read.tenants.listWaiting = (limit, after) => {
      pages++;
      return listWaiting(limit, after);
    };
    // Small slices: the walk of the backlog takes many of them, each reading the store.
    const reconciler = new Reconciler(ctx, 3_600_000, undefined, { maxItems: PAGE, maxMs: 1000 });
    await reconciler.start();
    try {
      // Creates as the API commits them, four at a time, grouped, each asking for placement.
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < CREATES) {
            const id = `new-${String(next++).padStart(3, '0')}`;
            await store.transaction(
              async (tx) => {
                await tx.tenants.insert(aTenant(id, { createdAt: Date.now() }));
                tx.record({ kind: 'place', tenantId: id });
              },
              { grouped: true },
            );
          }
        }),
      );
      // Every tenant, old and new, was considered: it says why it waits.
      await eventually(
        async () => (await listWaiting(1000)).every((t) => t.statusReason.startsWith('waiting for a host')) || undefined,
        10_000,
        'every waiting tenant considered',
      );
      // One walk reads each page once (the new tenants too, when they came during it) plus the
      // empty page that ends it; a second walk is allowed for a slow machine (the parked re-walk).
      const oneWalk = Math.ceil((BACKLOG + CREATES) / PAGE) + 1;
      expect(pages).toBeLessThanOrEqual(2 * oneWalk);
    } finally {
      reconciler.close();
      await store.close();
    }
  });
});
