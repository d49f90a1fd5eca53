// Scenarios "coordinator outage" and "router restart with the coordinator down": the data
// path (router -> instance) does not depend on the coordinator being up, a router restarted while
// it is down serves from its SQLite cache, and nothing the coordinator acknowledged is lost to kill -9.
import { describe, expect, it } from 'vitest';
import { connect, queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

describe('coordinator outage', () => {
  const fleet = useFleet({ name: 'outage', block: 23, agents: 2, routers: 2 });

  it('kill -9 the coordinator: clients keep working, routers (even a restarted one) serve from cache; after restart nothing acknowledged is lost and routers catch up', async () => {
    const f = fleet();
    const known = tenantName('known');
    const password = 'outage-secret-1';
    await f.createTenant(known, { password });
    const [r1, r2] = f.routers;
    if (!r1 || !r2) throw new Error('two routers expected');
    const existing = await connect(r1.endpoint, ownerLogin(known, password));
    await existing.query('create table ledger (id serial primary key, at timestamptz not null default now())');

    // Acknowledged just before the crash: created (exit 0), not waited for.
    const late = tenantName('late');
    const ack = await f.pgsctl(['tenant', 'create', late, '--password-stdin', '--access', 'enabled'], password);
    expect(ack.code, ack.stderr).toBe(0);
    const revisionBefore = (await f.routeTable()).revision;

    await f.killCoordinator('SIGKILL');
    expect(f.coordinator.running).toBe(false);
    const down = await f.pgsctl(['tenant', 'get', known]);
    expect(down.code).toBe(5); // UNAVAILABLE: pgsctl really cannot reach it

    // The open session carries on.
    for (let i = 0; i < 20; i++) await existing.query('insert into ledger default values');
    // New connections through every router.
    for (const r of f.routers) {
      expect(await queryOnce<{ n: string }>(r.endpoint, ownerLogin(known, password), 'select count(*) as n from ledger')).toEqual([{ n: '20' }]);
    }
    // A router restarted while the coordinator is down serves from its cache at once.
    await f.killRouter(1, 'SIGKILL');
    await f.restartRouter(1);
    const health = await f.routerHealth(1);
    expect(health.cache.connected).toBe(false);
    expect(health.cache.revision).toBeGreaterThan(0);
    expect(await queryOnce<{ n: string }>(r2.endpoint, ownerLogin(known, password, 'user.tenant'), 'select count(*) as n from ledger')).toEqual([{ n: '20' }]);

    await f.restartCoordinator();
    // Both tenants are still known, and the one acknowledged before the crash gets realized.
    expect((await f.tenant(known)).tenant.status).toBe('ACTIVE');
    await waitUntil(
      `tenant ${late} ACTIVE after the restart`,
      async () => (await f.tenant(late)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    await f.waitServing(ownerLogin(late, password));
    const table = await f.routeTable();
    expect(table.revision).toBeGreaterThanOrEqual(revisionBefore);
    expect(table.routes.map((r) => r.tenantId)).toEqual(expect.arrayContaining([known, late]));

    // Routers catch up: a change made after the restart reaches both (the restarted one included).
    const access = await f.pgsctl(['tenant', 'access', 'disable', known]);
    expect(access.code, access.stderr).toBe(0);
    const after = (await f.routeTable()).revision;
    await f.waitRoutersAt(after, 10_000);
    for (const r of f.routers) expect((await f.routerHealth(f.routers.indexOf(r))).cache.connected).toBe(true);

    // The session opened before the crash is still the same, healthy session.
    expect((await existing.query<{ n: string }>('select count(*) as n from ledger')).rows).toEqual([{ n: '20' }]);
    await existing.end();
  });
});
