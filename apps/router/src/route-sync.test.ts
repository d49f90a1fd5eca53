import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RouteFeedService } from '@pgs/proto';
import { createClient } from '@pgs/rpc';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { credentials } from '@grpc/grpc-js';
import { RouteCache } from './route-cache.js';
import { RouteSync } from './route-sync.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { eventually, routableRoute } from './testing/routes.js';

const log = pino({ level: 'silent' });
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmpCache(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-router-cache-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'routes.db');
}

function follow(feed: FakeRouteFeed, cache: RouteCache): RouteSync {
  const client = createClient(RouteFeedService, feed.address, credentials.createInsecure());
  const sync = new RouteSync({ client, cache, routerId: 'r1', cancelAddress: () => '127.0.0.1:6000', log, backoffMinMs: 20, backoffMaxMs: 200 });
  sync.start();
  cleanups.push(async () => {
    await sync.stop();
    client.close();
  });
  return sync;
}

describe('route cache + sync against a real gRPC route feed', () => {
  it('takes a snapshot sent in parts and applies it whole', async () => {
    const routes = Array.from({ length: 5 }, (_, i) => routableRoute(`t${i}`, '127.0.0.11', 20001 + i));
    const feed = await startFakeRouteFeed({ routes, snapshotPart: 2 });
    cleanups.push(() => feed.stop());
    const cache = new RouteCache(tmpCache());
    cleanups.push(() => cache.close());
    follow(feed, cache);
    await eventually(() => cache.revision === 5, 10_000, 'the snapshot applied');
    expect(cache.size).toBe(5);
    expect(feed.watches[0]?.sinceRevision).toBe(0);
    for (let i = 0; i < 5; i++) expect(cache.lookup(`t${i}`)?.port).toBe(20001 + i);
  });

  it('takes a snapshot, then deltas, each batch in the cache file', async () => {
    const feed = await startFakeRouteFeed({
      routes: [routableRoute('acme', '127.0.0.11', 20001), routableRoute('beta', '127.0.0.12', 20002)],
      peers: [{ routerId: 'r2', cancelAddress: '127.0.0.1:6001' }],
    });
    cleanups.push(() => feed.stop());
    const file = tmpCache();
    const cache = new RouteCache(file);
    cleanups.push(() => cache.close());
    const sync = follow(feed, cache);

    await eventually(() => cache.revision === 2, 5000, 'snapshot applied');
    expect(cache.lookup('acme')).toMatchObject({ address: '127.0.0.11', port: 20001, state: 'ROUTABLE', revision: 1 });
    expect(cache.peers()).toEqual([{ routerId: 'r2', cancelAddress: '127.0.0.1:6001' }]);
    expect(feed.watches[0]).toEqual({ sinceRevision: 0, routerId: 'r1', cancelAddress: '127.0.0.1:6000' });
    expect(sync.status()).toMatchObject({ connected: true, staleSeconds: 0, revision: 2 });

    feed.set(routableRoute('acme', '127.0.0.13', 20003, { state: 'FAILOVER', reason: 'promoting a replica' }));
    feed.remove('beta');
    await eventually(() => cache.revision === 4, 5000, 'deltas applied');
    expect(cache.lookup('acme')).toMatchObject({ address: '127.0.0.13', state: 'FAILOVER', reason: 'promoting a replica', revision: 3 });
    expect(cache.lookup('beta')).toBeUndefined();

    // Another process opening the same file sees the committed batches.
    const reader = new RouteCache(file);
    expect(reader.revision).toBe(4);
    expect(reader.all().map((r) => r.tenantId)).toEqual(['acme']);
    reader.close();
  });

  it('keeps serving from the cache when the feed is lost, and resumes from its revision', async () => {
    const feed = await startFakeRouteFeed({ routes: [routableRoute('acme', '127.0.0.11', 20001)] });
    const port = Number(feed.address.split(':')[1]);
    const file = tmpCache();
    const cache = new RouteCache(file);
    cleanups.push(() => cache.close());
    const sync = follow(feed, cache);
    await eventually(() => cache.revision === 1, 5000, 'snapshot');

    await feed.stop();
    await eventually(() => !sync.status().connected, 5000, 'disconnect noticed');
    expect(cache.lookup('acme')?.port).toBe(20001);
    expect(sync.status().staleSeconds).toBeGreaterThanOrEqual(0);
    expect(sync.status().lastError).toBeDefined();

    // The coordinator comes back (same address) with one more change: the router resumes from revision 1.
    const again = await startFakeRouteFeed({ port, routes: [routableRoute('acme', '127.0.0.11', 20001), routableRoute('gamma', '127.0.0.14', 20004)] });
    cleanups.push(() => again.stop());
    await eventually(() => cache.lookup('gamma'), 10_000, 'resumed feed');
    expect(again.watches.at(-1)?.sinceRevision).toBe(1);
    expect(sync.status().connected).toBe(true);
  });

  it('a restarted router starts from the cached revision', async () => {
    const feed = await startFakeRouteFeed({ routes: [routableRoute('acme', '127.0.0.11', 20001)] });
    cleanups.push(() => feed.stop());
    const file = tmpCache();
    const first = new RouteCache(file);
    const sync = follow(feed, first);
    await eventually(() => first.revision === 1, 5000, 'snapshot');
    await sync.stop();
    first.close();

    const second = new RouteCache(file);
    cleanups.push(() => second.close());
    expect(second.lookup('acme')?.address).toBe('127.0.0.11');
    follow(feed, second);
    await eventually(() => feed.watches.length === 2, 5000, 'second watch');
    expect(feed.watches[1]?.sinceRevision).toBe(1);
  });

  it('skips a replayed delta and never moves the revision back', () => {
    const cache = new RouteCache(':memory:');
    cache.apply({ snapshot: true, revision: 5, upserts: [{ ...routableRoute('acme', '127.0.0.1', 1), revision: 5 }], deletedTenantIds: [], routers: [] }, 1);
    const replay = cache.apply(
      { snapshot: false, revision: 4, upserts: [{ ...routableRoute('acme', '127.0.0.1', 2), revision: 4 }], deletedTenantIds: [], routers: undefined },
      2,
    );
    expect(replay.applied).toBe(false);
    expect(cache.lookup('acme')?.port).toBe(1);
    cache.apply({ snapshot: false, revision: 3, upserts: [], deletedTenantIds: [], routers: undefined }, 3);
    expect(cache.revision).toBe(5);
    cache.close();
  });
});
