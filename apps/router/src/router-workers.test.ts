// --workers: a primary with the route feed and worker processes serving clients from the cache
// file it writes. Routing, route changes, the per-router connection limit, cancel, aggregated
// metrics and health, a crashed worker replaced, and a graceful stop.
import net from 'node:net';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { encodeCancelRequest } from '@pgs/wire-protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkerStatus } from './router-worker.js';
import { pgConnect, pgConnectError } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PASSWORD = 'alice-secret-pw';
let pgServer: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

async function health(): Promise<{ connections: number; workers: WorkerStatus[]; cache: { revision: number } }> {
  return JSON.parse((await router.get('/healthz')).body) as { connections: number; workers: WorkerStatus[]; cache: { revision: number } };
}

function connect(tenant: string): Promise<pg.Client> {
  return pgConnect({ host: router.host, port: router.port, user: `alice.${tenant}`, database: 'acme', password: PASSWORD });
}

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
  const admin = await pgServer.adminClient();
  const verifier = (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'")).rows[0]!.rolpassword;
  await admin.end();
  feed = await startFakeRouteFeed({
    routes: [
      routableRoute('acme', pgServer.host, pgServer.port),
      routableRoute('capped', pgServer.host, pgServer.port, { connectionLimit: 2 }),
      routableRoute('pooled', pgServer.host, pgServer.port, { poolMode: 'SESSION', users: [{ name: 'alice', scramVerifier: verifier }] }),
    ],
  });
  // Workers log to their own stdout; warnings are enough here.
  router = await startTestRouter({ coordinator: feed.address, args: ['--workers', '2', '--log-level', 'warn'] });
  await eventually(() => router.cache.revision === 3, 10_000, 'routes synced');
}, 60_000);

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pgServer?.stop();
});

describe('router --workers', () => {
  it("authenticates and pools in each worker (pool mode session), reading verifiers from the primary's cache file", async () => {
    const reuses = async (): Promise<number> =>
      Number(/pgs_router_pool_leases_total\{kind="reuse",app="router"\} (\d+)/.exec((await router.get('/metrics')).body)?.[1] ?? 0);
    const before = await reuses();
    for (let i = 0; i < 8; i++) {
      const c = await connect('pooled');
      try {
        expect((await c.query('select current_user as u, current_database() as db')).rows[0]).toEqual({ u: 'alice', db: 'acme' });
      } finally {
        await c.end();
      }
      // A departed client's reset runs in the background: wait for it, so the next one can reuse.
      await eventually(
        async () => /pgs_router_pool_backends\{state="active",app="router"\} 0/.test((await router.get('/metrics')).body),
        5000,
        'connection back in the pool',
      );
    }
    // At most one new server connection per worker; every other client got a pooled one.
    expect((await reuses()) - before).toBeGreaterThanOrEqual(6);
    expect((await pgConnectError({ host: router.host, port: router.port, user: 'alice.pooled', database: 'acme', password: 'wrong' })).code).toBe('28P01');
  });

  it('serves clients from worker processes and sums their metrics', async () => {
    const status = (await health()).workers;
    expect(status.map((w) => w.index).sort()).toEqual([0, 1]);
    expect(new Set(status.map((w) => w.pid)).size).toBe(2);
    expect(status.every((w) => w.pid !== process.pid)).toBe(true);
    const before = /pgs_router_connections_accepted_total\{app="router"\} (\d+)/.exec((await router.get('/metrics')).body);
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect('acme')));
    try {
      for (const c of clients) expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
      expect((await health()).connections).toBe(6);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const metrics = (await router.get('/metrics')).body;
    const after = /pgs_router_connections_accepted_total\{app="router"\} (\d+)/.exec(metrics);
    expect(Number(after?.[1]) - Number(before?.[1] ?? 0)).toBe(6);
    // The cache gauges come from the primary only (not summed over workers).
    expect(metrics).toMatch(/pgs_router_route_cache_revision\{app="router"\} 3\b/);
  });

  it('sees route changes the primary writes to the cache', async () => {
    feed.set(routableRoute('later', pgServer.host, pgServer.port));
    await eventually(
      async () => {
        const c = await connect('later');
        await c.end();
        return true;
      },
      10_000,
      'new route served by the workers',
    );
    feed.remove('later');
    await eventually(
      async () => (await pgConnectError({ host: router.host, port: router.port, user: 'alice.later', database: 'acme', password: PASSWORD })).code === '28000',
      10_000,
      'removed route refused',
    );
  });

  it('counts the connection limit over all workers', async () => {
    const held: pg.Client[] = [];
    try {
      // More attempts than the limit, so both workers (whichever the kernel picks) are asked.
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => connect('capped')));
      for (const r of results) if (r.status === 'fulfilled') held.push(r.value);
      expect(held).toHaveLength(2);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r.reason as { code?: string }).code);
      expect(refused).toEqual(['53300', '53300', '53300']);
      await held.pop()!.end();
      held.push(await eventually(() => connect('capped'), 5000, 'slot given back'));
    } finally {
      await Promise.all(held.map((c) => c.end()));
    }
  });

  it('cancels a query whichever worker the CancelRequest reaches', async () => {
    for (let i = 0; i < 4; i++) {
      const client = await connect('acme');
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const running = client.query('select pg_sleep(30)').then(
        () => undefined,
        (err: { code?: string }) => err.code,
      );
      const admin = await pgServer.adminClient();
      try {
        await eventually(
          async () => (await admin.query("select 1 from pg_stat_activity where query like 'select pg_sleep%' and state = 'active'")).rowCount === 1,
        );
      } finally {
        await admin.end();
      }
      const secret = Buffer.alloc(4);
      secret.writeInt32BE(secretKey);
      await new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: router.host, port: router.port }, () => s.write(encodeCancelRequest(processID, secret)));
        s.on('data', () => undefined);
        s.once('error', reject);
        s.once('close', () => resolve());
      });
      expect(await running).toBe('57014');
      await client.end();
    }
  });

  it('replaces a worker that dies', async () => {
    const [victim] = (await health()).workers;
    process.kill(victim!.pid, 'SIGKILL');
    await eventually(
      async () => {
        const w = (await health()).workers;
        return w.length === 2 && !w.some((x) => x.pid === victim!.pid);
      },
      15_000,
      'worker replaced',
    );
    const c = await connect('acme');
    await c.end();
  }, 20_000);

  it('stops gracefully: no new clients, open ones finish, workers exit', async () => {
    const pids = (await health()).workers.map((w) => w.pid);
    const client = await connect('acme');
    const stopped = router.stop();
    await eventually(
      () =>
        new Promise<boolean>((resolve) => {
          const s = net.connect({ host: router.host, port: router.port });
          s.once('connect', () => {
            s.destroy();
            resolve(false);
          });
          s.once('error', () => resolve(true));
        }),
      10_000,
      'listener closed',
    );
    expect((await client.query('select 2 as two')).rows[0].two).toBe(2);
    await client.end();
    await stopped;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 20_000);
});
