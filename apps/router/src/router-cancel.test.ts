// Cancel through the router: the client holds a router-issued key; a CancelRequest at the router
// that issued it, or at another router of the fleet, cancels the running query.
import net from 'node:net';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { encodeCancelRequest } from '@pgs/wire-protocol';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PASSWORD = 'alice-secret-pw';
let pgServer: TestPostgres;
let feed: FakeRouteFeed;
let a: TestRouter;
let b: TestRouter;

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
  feed = await startFakeRouteFeed({ routes: [routableRoute('acme', pgServer.host, pgServer.port)] });
  const shared = ['--cancel-secret', 'test-fleet-secret'];
  a = await startTestRouter({ coordinator: feed.address, routerId: 'router-a', args: shared });
  b = await startTestRouter({ coordinator: feed.address, routerId: 'router-b', args: shared });
  // The coordinator announces both routers (as it learns them from WatchRoutesRequest).
  await eventually(() => feed.watches.length >= 2);
  feed.setPeers(feed.watches.map((w) => ({ routerId: w.routerId, cancelAddress: w.cancelAddress })));
  await eventually(() => a.cache.peers().length === 2 && b.cache.peers().length === 2, 10_000, 'peers known');
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await feed?.stop();
  await pgServer?.stop();
});

/** The key node-postgres got in BackendKeyData. */
function keyOf(client: pg.Client): { processId: number; secretKey: number } {
  const c = client as unknown as { processID: number; secretKey: number };
  return { processId: c.processID, secretKey: c.secretKey };
}

function sendCancel(router: TestRouter, processId: number, secretKey: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: router.host, port: router.port }, () => s.write(encodeCancelRequest(processId, secretKey)));
    s.on('data', () => undefined);
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}

function secretBytes(secret: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(secret);
  return b;
}

async function cancelledThrough(via: () => TestRouter, connectTo: TestRouter): Promise<string | undefined> {
  const client = await pgConnect({ host: connectTo.host, port: connectTo.port, user: 'alice.acme', database: 'acme', password: PASSWORD });
  const realPid = (await client.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  const key = keyOf(client);
  expect(key.processId).not.toBe(realPid);
  const running = client.query('select pg_sleep(30)').then(
    () => undefined,
    (err: { code?: string }) => err.code,
  );
  const admin = await pgServer.adminClient();
  try {
    await eventually(
      async () =>
        (await admin.query("select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%' and state = 'active'", [realPid])).rowCount === 1,
    );
  } finally {
    await admin.end();
  }
  await sendCancel(via(), key.processId, secretBytes(key.secretKey));
  const code = await running;
  await client.end();
  return code;
}

describe('cancel routing', () => {
  it('a CancelRequest at the router that issued the key reaches the backend', async () => {
    expect(await cancelledThrough(() => a, a)).toBe('57014');
    // Counted once PostgreSQL closes the cancel connection, which may come after the client's error.
    await eventually(
      async () => /pgs_router_cancel_requests_total\{outcome="sent_to_backend",app="router"\} [1-9]/.test((await a.get('/metrics')).body),
      5000,
      'cancel counted as sent to the backend',
    );
  });

  it('a CancelRequest at router A for a connection through router B is forwarded to B', async () => {
    expect(await cancelledThrough(() => a, b)).toBe('57014');
    await eventually(
      async () => /pgs_router_cancel_requests_total\{outcome="forwarded",app="router"\} [1-9]/.test((await a.get('/metrics')).body),
      5000,
      'cancel counted as forwarded at A',
    );
    await eventually(
      async () => /pgs_router_cancel_requests_total\{outcome="sent_to_backend",app="router"\} [1-9]/.test((await b.get('/metrics')).body),
      5000,
      'cancel counted as sent to the backend at B',
    );
  });

  it('unknown and forged keys are dropped silently and the router keeps serving', async () => {
    await sendCancel(a, 12345, Buffer.from([1, 2, 3, 4]));
    await sendCancel(a, 0x7fffffff, Buffer.alloc(32, 9));
    await eventually(async () => /outcome="forged_key",app="router"\} 2/.test((await a.get('/metrics')).body), 5000, 'forged keys counted');
    const c = await pgConnect({ host: a.host, port: a.port, user: 'alice.acme', database: 'acme', password: PASSWORD });
    expect((await c.query('select 1 as v')).rows[0].v).toBe(1);
    await c.end();
  });
});
