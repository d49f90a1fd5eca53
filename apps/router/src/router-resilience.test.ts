// The router keeps routing without its coordinator, restarts from its cache, survives hostile
// startup traffic while serving good clients, and stops gracefully.
import net from 'node:net';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { encodeStartupMessage } from '@pgs/wire-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PASSWORD = 'alice-secret-pw';
let pg: TestPostgres;

beforeAll(async () => {
  pg = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
});

afterAll(async () => {
  await pg?.stop();
});

const login = (r: { host: string; port: number }) => ({ host: r.host, port: r.port, user: 'alice.acme', database: 'acme', password: PASSWORD });

async function selectOne(r: { host: string; port: number }): Promise<number> {
  const c = await pgConnect(login(r));
  try {
    return (await c.query('select 1 as v')).rows[0].v as number;
  } finally {
    await c.end();
  }
}

describe('without the coordinator', () => {
  let feed: FakeRouteFeed | undefined;
  afterAll(async () => feed?.stop());

  it('coordinator stopped: open and new connections to known tenants keep working; a restarted router routes from its cache', async () => {
    feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
    const router = await startTestRouter({ coordinator: feed.address });
    let restarted: Awaited<ReturnType<typeof startTestRouter>> | undefined;
    try {
      await eventually(() => router.cache.revision === 1);
      const open = await pgConnect(login(router));
      await feed.stop();
      feed = undefined;
      await eventually(() => !router.sync.status().connected, 5000, 'feed loss noticed');
      expect((await open.query('select 2 as v')).rows[0].v).toBe(2);
      expect(await selectOne(router)).toBe(1);
      const health = JSON.parse((await router.get('/healthz')).body) as { ok: boolean; cache: { connected: boolean; staleSeconds: number; revision: number } };
      expect(health.ok).toBe(true);
      expect(health.cache).toMatchObject({ connected: false, revision: 1 });
      expect(health.cache.staleSeconds).toBeGreaterThanOrEqual(0);
      await open.end();
      await router.stop();

      // Same cache file, coordinator still down (its address refuses connections).
      restarted = await startTestRouter({ coordinator: '127.0.0.1:1', cachePath: router.cachePath });
      expect(restarted.sync.status().connected).toBe(false);
      expect(await selectOne(restarted)).toBe(1);
      expect((await restarted.get('/metrics')).body).toMatch(/pgs_router_route_cache_revision\{app="router"\} 1/);
    } finally {
      await restarted?.stop();
    }
  });
});

describe('hostile startup traffic (soak)', () => {
  it('garbage, truncated, oversized and slow startups never crash it or leak, while good clients are served', async () => {
    const feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
    const router = await startTestRouter({ coordinator: feed.address, args: ['--startup-timeout', '500ms', '--max-startups', '2000'] });
    try {
      await eventually(() => router.cache.revision === 1);
      const good = await pgConnect(login(router));
      const bad = (i: number): Promise<void> =>
        new Promise((resolve) => {
          const s = net.connect({ host: router.host, port: router.port });
          s.on('error', () => undefined);
          s.on('data', () => undefined);
          s.once('close', () => resolve());
          s.once('connect', () => {
            const startup = encodeStartupMessage({ parameters: { user: `u${i}.acme`, database: 'acme' } });
            switch (i % 6) {
              case 0: // random garbage
                s.end(Buffer.from(Array.from({ length: 64 + (i % 200) }, (_, k) => (k * 31 + i * 17) % 256)));
                break;
              case 1: // truncated: half a startup packet, then silence
                s.write(startup.subarray(0, startup.length >> 1));
                break;
              case 2: {
                // oversized declared length
                const h = Buffer.alloc(8);
                h.writeUInt32BE(0x7fffffff, 0);
                h.writeUInt32BE(196608, 4);
                s.write(h);
                break;
              }
              case 3: {
                // slow: one byte every 100 ms, cut by the startup timeout
                let k = 0;
                const t = setInterval(() => (k < startup.length && !s.destroyed ? s.write(startup.subarray(k, ++k)) : clearInterval(t)), 100);
                s.once('close', () => clearInterval(t));
                break;
              }
              case 4: // valid length, no terminator, and a body of junk
                s.write(Buffer.concat([Buffer.from([0, 0, 0, 40, 0, 3, 0, 0]), Buffer.alloc(32, 0x41)]));
                break;
              default: // connect and close at once
                s.destroy();
            }
          });
        });
      const heapBefore = process.memoryUsage().heapUsed;
      let served = 0;
      for (let round = 0; round < 5; round++) {
        const storm = Promise.all(Array.from({ length: 120 }, (_, i) => bad(round * 120 + i)));
        // Good clients, new and already open, keep working during the storm.
        served += await selectOne(router);
        expect((await good.query('select 3 as v')).rows[0].v).toBe(3);
        await storm;
      }
      expect(served).toBe(5);
      await eventually(() => router.server?.open === 1, 10_000, 'only the good connection left');
      const health = JSON.parse((await router.get('/healthz')).body) as { connections: number };
      expect(health.connections).toBe(1);
      const refused = (await router.get('/metrics')).body;
      expect(refused).toMatch(/reason="protocol_violation",app="router"\} [1-9]\d{1,}/);
      expect(refused).toMatch(/reason="startup_timeout",app="router"\} [1-9]\d{1,}/);
      // Bounded memory: 600 hostile connections must not leave megabytes behind.
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(40 * 1024 * 1024);
      await good.end();
    } finally {
      await router.stop();
      await feed.stop();
    }
  });
});

describe('graceful stop', () => {
  it('stops accepting, lets an open connection finish, and cuts it at the deadline', async () => {
    const feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pg.host, pg.port)] });
    const router = await startTestRouter({ coordinator: feed.address, args: ['--shutdown-timeout', '1500ms'] });
    try {
      await eventually(() => router.cache.revision === 1);
      const open = await pgConnect(login(router));
      const stopping = router.stop();
      await eventually(
        async () => {
          const refused = await new Promise<boolean>((resolve) => {
            const s = net.connect({ host: router.host, port: router.port });
            s.once('error', () => resolve(true));
            s.once('connect', () => {
              s.destroy();
              resolve(false);
            });
          });
          return refused;
        },
        5000,
        'listener closed',
      );
      // Still working while draining.
      expect((await open.query('select 5 as v')).rows[0].v).toBe(5);
      const ended = new Promise((resolve) => open.once('end', resolve));
      await stopping;
      await ended;
      const line = router.logs.find((l) => l.msg === 'connection closed' && l.tenantId === 'acme');
      expect(line).toMatchObject({ tenantId: 'acme' });
      expect(router.logs.some((l) => l.msg === 'shutdown deadline reached; closing the remaining connections')).toBe(true);
    } finally {
      await feed.stop();
    }
  });
});
