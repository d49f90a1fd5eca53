// Clients of a suspended tenant: held while the router asks the coordinator (here a fake feed) to
// wake it, once for many clients, then served; told 57P03 when the wake is refused or too slow.
// Pooled tenants wake only after the router authenticated the client.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pgConnect, pgConnectError } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PASSWORD = 'alice-wake-pw';
let pg0: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

async function verifierOf(server: TestPostgres, user: string): Promise<string> {
  const admin = await server.adminClient();
  try {
    return (await admin.query<{ v: string }>('select rolpassword as v from pg_authid where rolname = $1', [user])).rows[0]?.v ?? '';
  } finally {
    await admin.end();
  }
}

const suspended = (id: string, over = {}) => routableRoute(id, pg0.host, pg0.port, { state: 'SUSPENDED', reason: 'the tenant is suspended', ...over });
const conn = (tenant: string) => ({ host: router.host, port: router.port, password: PASSWORD, database: 'acme', user: `alice.${tenant}` });

beforeAll(async () => {
  pg0 = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
  feed = await startFakeRouteFeed({ routes: [] });
  router = await startTestRouter({ coordinator: feed.address, args: ['--wake-timeout', '5s', '--client-report-interval', '100ms'] });
});

beforeEach(() => {
  feed.onWake = () => ({ outcome: 'STARTED' });
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pg0?.stop();
});

async function metric(name: string, label: string): Promise<number> {
  const text = (await router.get('/metrics')).body;
  const m = new RegExp(`${name}\\{outcome="${label}",app="router"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('wake on connect', () => {
  it('holds ten clients, asks for one wake, and serves them all once the route is routable', async () => {
    feed.set(suspended('nap'));
    await eventually(() => router.cache.lookup('nap')?.state === 'SUSPENDED', 10_000, 'nap synced');
    feed.onWake = (w) => {
      // The coordinator's answer comes at once; the instance is up once all ten clients are held (the
      // router's client reports count held clients), or after 2.5 s at most: a client that came
      // after the route turned routable was never held, and a slow machine must not make it look so.
      const startedAt = Date.now();
      const up = setInterval(() => {
        const held = feed.reports.at(-1)?.clients.get(w.tenantId) ?? 0;
        if (held < 10 && Date.now() - startedAt < 2500) return;
        clearInterval(up);
        feed.set(routableRoute(w.tenantId, pg0.host, pg0.port));
      }, 20);
      return { outcome: 'STARTED' };
    };
    const served = await metric('pgs_router_wake_waits_total', 'served');
    const clients = await Promise.all(Array.from({ length: 10 }, () => pgConnect(conn('nap'))));
    try {
      const rows = await Promise.all(clients.map((c: pg.Client) => c.query<{ one: number }>('select 1 as one')));
      expect(rows.map((r) => r.rows[0]?.one)).toEqual(Array(10).fill(1));
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    expect(feed.wakes.filter((w) => w.tenantId === 'nap')).toHaveLength(1);
    expect(feed.wakes.find((w) => w.tenantId === 'nap')?.routerId).toBe('r1');
    expect(await metric('pgs_router_wake_waits_total', 'served')).toBe(served + 10);
  });

  it('tells a held client 57P03 "waking up, try again" at the deadline', async () => {
    feed.set(suspended('slow'));
    await eventually(() => router.cache.lookup('slow')?.state === 'SUSPENDED', 10_000, 'slow synced');
    const e = await pgConnectError(conn('slow'));
    expect(e.code).toBe('57P03');
    expect(e.message).toBe('tenant "slow" is waking up, try again');
    expect(e.hint).toBe('Retry in a few seconds.');
    expect(await metric('pgs_router_wake_waits_total', 'gave_up')).toBeGreaterThan(0);
  });

  it("tells held clients the coordinator's reason at once when it refuses the wake", async () => {
    feed.set(suspended('full'));
    await eventually(() => router.cache.lookup('full')?.state === 'SUSPENDED', 10_000, 'full synced');
    feed.onWake = () => ({ outcome: 'REFUSED', message: 'tenant "full" cannot be woken: its host h1 has no room left for it' });
    const started = Date.now();
    const e = await pgConnectError(conn('full'));
    expect(Date.now() - started).toBeLessThan(4000); // well before the 5 s deadline
    expect(e.code).toBe('57P03');
    expect(e.message).toBe('tenant "full" is suspended and cannot be woken now');
    expect(e.detail).toBe('tenant "full" cannot be woken: its host h1 has no room left for it');
  });

  it('holds through the switch of a wake that moves the tenant to another host, and serves it there', async () => {
    feed.set(suspended('moved'));
    await eventually(() => router.cache.lookup('moved')?.state === 'SUSPENDED', 10_000, 'moved synced');
    feed.onWake = (w) => {
      // The copy is built while the route stays SUSPENDED; then the switch holds; then it serves.
      setTimeout(() => feed.set(routableRoute(w.tenantId, pg0.host, pg0.port, { state: 'SWITCHING', reason: 'switching' })), 200);
      setTimeout(() => feed.set(routableRoute(w.tenantId, pg0.host, pg0.port)), 700);
      return { outcome: 'STARTED', message: 'waking tenant "moved" on h2: its host h1 has no room left for it' };
    };
    const client = await pgConnect(conn('moved'));
    try {
      expect((await client.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('stops holding when the waking tenant fails instead', async () => {
    feed.set(suspended('broken'));
    await eventually(() => router.cache.lookup('broken')?.state === 'SUSPENDED', 10_000, 'broken synced');
    feed.onWake = (w) => {
      setTimeout(() => feed.set(routableRoute(w.tenantId, pg0.host, pg0.port, { state: 'ERROR', reason: 'the tenant is in error: start failed' })), 100);
      return { outcome: 'STARTED' };
    };
    const e = await pgConnectError(conn('broken'));
    expect(e.code).toBe('57P03');
    expect(e.message).toBe('tenant "broken" is in error');
  });

  it('wakes a pooled tenant only for a client that authenticated', async () => {
    const users = [{ name: 'alice', scramVerifier: await verifierOf(pg0, 'alice') }];
    feed.set(suspended('pooled', { poolMode: 'SESSION', users }));
    await eventually(() => router.cache.lookup('pooled')?.state === 'SUSPENDED', 10_000, 'pooled synced');
    feed.onWake = (w) => {
      setTimeout(() => feed.set(routableRoute(w.tenantId, pg0.host, pg0.port, { poolMode: 'SESSION', users })), 200);
      return { outcome: 'STARTED' };
    };
    const wrong = await pgConnectError({ ...conn('pooled'), password: 'not-the-password' });
    expect(wrong.code).toBe('28P01');
    expect(feed.wakes.filter((w) => w.tenantId === 'pooled')).toHaveLength(0);
    const c = await pgConnect(conn('pooled'));
    try {
      expect((await c.query<{ one: number }>('select 1 as one')).rows[0]?.one).toBe(1);
    } finally {
      await c.end();
    }
    expect(feed.wakes.filter((w) => w.tenantId === 'pooled')).toHaveLength(1);
  });
});

describe('client reports', () => {
  it('reports the open clients per tenant, and none once they left', async () => {
    feed.set(routableRoute('open', pg0.host, pg0.port));
    await eventually(() => router.cache.lookup('open')?.state === 'ROUTABLE', 10_000, 'open synced');
    const c = await pgConnect(conn('open'));
    try {
      await eventually(() => feed.reports.some((r) => r.routerId === 'r1' && r.complete && r.clients.get('open') === 1), 5000, 'a report with the client');
    } finally {
      await c.end();
    }
    const after = feed.reports.length;
    await eventually(() => feed.reports.slice(after).some((r) => !r.clients.has('open')), 5000, 'a report without it');
  });
});
