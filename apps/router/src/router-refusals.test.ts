// Every refusal reason gives its SQLSTATE and a clear message, and is counted by reason.
import net from 'node:net';
import { freePort, startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import { BackendFailureKind } from '@pgs/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, pgConnectError } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PASSWORD = 'alice-secret-pw';
let pg: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;
let deadPort: number;

beforeAll(async () => {
  pg = await startTestPostgres({ users: [{ name: 'alice', password: PASSWORD, database: 'acme' }] });
  deadPort = await freePort();
  feed = await startFakeRouteFeed({
    routes: [
      routableRoute('acme', pg.host, pg.port),
      routableRoute('stopped', pg.host, pg.port, { state: 'STOPPED', reason: 'stopped by an operator' }),
      routableRoute('moving', pg.host, pg.port, { state: 'FAILOVER', reason: 'promoting the replica on h2' }),
      routableRoute('private', pg.host, pg.port, { externalAccess: false }),
      routableRoute('tiny', pg.host, pg.port, { connectionLimit: 1 }),
      routableRoute('gone', '127.0.0.1', deadPort),
      routableRoute('failover', '127.0.0.1', deadPort),
    ],
  });
  router = await startTestRouter({ coordinator: feed.address, args: ['--route-change-wait', '300ms', '--backend-connect-timeout', '2s'] });
  await eventually(() => router.cache.size === 7, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pg?.stop();
});

const base = () => ({ host: router.host, port: router.port, password: PASSWORD, database: 'acme' });

async function refusedCount(reason: string): Promise<number> {
  const text = (await router.get('/metrics')).body;
  const m = new RegExp(`pgs_router_connections_refused_total\\{reason="${reason}",app="router"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('refusals', () => {
  it('unknown tenant named in options: 3D000', async () => {
    const e = await pgConnectError({ ...base(), user: 'alice', options: '-c pgs.tenant=nosuch' });
    expect(e.code).toBe('3D000');
    expect(e.message).toBe('tenant "nosuch" does not exist');
  });

  it('unknown tenant named by the user name: 28000 with a hint', async () => {
    const e = await pgConnectError({ ...base(), user: 'alice.nosuch' });
    expect(e.code).toBe('28000');
    expect(e.message).toBe('tenant "nosuch" does not exist');
    expect(e.hint).toContain('user=<user>.<tenant>');
  });

  it('tenant not routable: 57P03 saying its state and reason', async () => {
    const stopped = await pgConnectError({ ...base(), user: 'alice.stopped' });
    expect(stopped.code).toBe('57P03');
    expect(stopped.message).toBe('tenant "stopped" is stopped');
    expect(stopped.detail).toBe('STOPPED: stopped by an operator');
    const moving = await pgConnectError({ ...base(), user: 'alice.moving' });
    expect(moving.code).toBe('57P03');
    expect(moving.message).toContain('failing over');
    expect(moving.hint).toBe('Retry in a few seconds.');
  });

  it('external access disabled: 28000', async () => {
    const e = await pgConnectError({ ...base(), user: 'alice.private' });
    expect(e.code).toBe('28000');
    expect(e.message).toBe('external access to tenant "private" is disabled');
  });

  it('no tenant named: 28000 with a hint on how to name it', async () => {
    const e = await pgConnectError({ ...base(), user: 'Alice' });
    expect(e.code).toBe('28000');
    expect(e.message).toBe('no tenant named in the connection');
    expect(e.hint).toContain('options=-c pgs.tenant=<tenant>');
  });

  it('sources that disagree: 28000', async () => {
    const e = await pgConnectError({ ...base(), user: 'alice.acme', options: '-c pgs.tenant=stopped' });
    expect(e.code).toBe('28000');
    expect(e.message).toBe('the connection names more than one tenant');
  });

  it('per-tenant connection limit: 53300, and the slot frees when the holder leaves', async () => {
    const holder = await pgConnect({ ...base(), user: 'alice.tiny' });
    const e = await pgConnectError({ ...base(), user: 'alice.tiny' });
    expect(e.code).toBe('53300');
    expect(e.message).toContain('too many connections for tenant "tiny"');
    await holder.end();
    await eventually(
      async () => {
        const c = await pgConnect({ ...base(), user: 'alice.tiny' });
        await c.end();
        return true;
      },
      5000,
      'slot freed',
    );
  });

  it('backend unreachable: 08006 after waiting for a route change that does not come', async () => {
    const e = await pgConnectError({ ...base(), user: 'alice.gone' });
    expect(e.code).toBe('08006');
    expect(e.message).toBe('could not connect to the server of tenant "gone"');
    // The refused connect was told to the coordinator (a lost-host signal).
    const reported = await eventually(() => feed.backendFailures.find((f) => f.tenantId === 'gone'), 5000, 'refusal reported');
    expect(reported).toEqual({ tenantId: 'gone', address: '127.0.0.1', port: deadPort, kind: BackendFailureKind.REFUSED });
  });

  it('a route that changes while connecting is retried and succeeds', async () => {
    const slow = await startTestRouter({ coordinator: feed.address, args: ['--route-change-wait', '5s'] });
    try {
      await eventually(() => slow.cache.size === 7);
      const pending = pgConnect({ host: slow.host, port: slow.port, password: PASSWORD, database: 'acme', user: 'alice.failover' });
      await eventually(() => slow.logs.some((l) => l.msg === 'router listening'));
      // The failover publishes the new address while the router waits after its failed connect.
      setTimeout(() => feed.set(routableRoute('failover', pg.host, pg.port)), 300);
      const c = await pending;
      expect((await c.query('select 1 as v')).rows[0].v).toBe(1);
      await c.end();
    } finally {
      await slow.stop();
      feed.set(routableRoute('failover', '127.0.0.1', deadPort));
    }
  });

  it('garbage and an oversized startup packet: closed without a word; protocol 2.0: 0A000 in its own format (as PostgreSQL 15)', async () => {
    const reply = async (bytes: Buffer): Promise<string> => {
      const s = net.connect({ host: router.host, port: router.port });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', () => undefined);
      s.write(bytes);
      await new Promise((resolve) => s.once('close', resolve));
      return Buffer.concat(chunks).toString('latin1');
    };
    const oversized = Buffer.alloc(8);
    oversized.writeUInt32BE(1_000_000, 0);
    oversized.writeUInt32BE(196608, 4);
    expect(await reply(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe('');
    expect(await reply(oversized)).toBe('');
    expect(await reply(Buffer.from([0, 0, 0, 8, 0, 2, 0, 0]))).toBe('EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\0');
  });

  it('counts each refusal by reason', async () => {
    for (const reason of [
      'unknown_tenant',
      'tenant_not_routable',
      'external_access_disabled',
      'no_tenant',
      'conflicting_tenant',
      'connection_limit',
      'backend_unreachable',
      'protocol_violation',
    ]) {
      expect(await refusedCount(reason), reason).toBeGreaterThan(0);
    }
    const closed = router.logs.filter((l) => l.msg === 'connection closed' && l.outcome === 'refused');
    expect(closed.some((l) => l.reason === 'unknown_tenant' && l.sqlstate === '3D000')).toBe(true);
  });

  it('times its own routing work for every startup packet, refused ones included', async () => {
    let decided = 0;
    for (const reason of ['unknown_tenant', 'tenant_not_routable', 'external_access_disabled', 'no_tenant', 'conflicting_tenant'])
      decided += await refusedCount(reason);
    const text = (await router.get('/metrics')).body;
    const count = Number(/pgs_router_routing_seconds_count\{app="router"\} (\d+)/.exec(text)?.[1] ?? 0);
    expect(count).toBeGreaterThanOrEqual(decided);
    expect(text).toMatch(/pgs_router_routing_seconds_bucket\{le="0.00001",app="router"\} \d+/);
  });
});

describe('startup limits', () => {
  it('cuts off a silent client after the startup timeout without a word (as PostgreSQL), and bounds unauthenticated connections', async () => {
    const strict = await startTestRouter({ coordinator: feed.address, args: ['--startup-timeout', '300ms', '--max-startups', '2'] });
    try {
      const open = (): Promise<{ socket: net.Socket; reply: Promise<string> }> =>
        new Promise((resolve) => {
          const socket = net.connect({ host: strict.host, port: strict.port });
          socket.on('error', () => undefined);
          const chunks: Buffer[] = [];
          socket.on('data', (d: Buffer) => chunks.push(d));
          const reply = new Promise<string>((r) => socket.once('close', () => r(Buffer.concat(chunks).toString('latin1'))));
          socket.once('connect', () => resolve({ socket, reply }));
        });
      const a = await open();
      const b = await open();
      await eventually(() => strict.server?.open === 2);
      const c = await open();
      expect(await c.reply).toContain('C53300');
      // PostgreSQL's authentication_timeout closes a client that never sent its startup packet silently.
      expect(await a.reply).toBe('');
      expect(await b.reply).toBe('');
      const timedOut = await eventually(() => {
        const lines = strict.logs.filter((l) => l.msg === 'connection closed' && l.reason === 'startup_timeout');
        return lines.length === 2 ? lines : undefined;
      });
      expect(timedOut[0]).toMatchObject({ sqlstate: '08P01', error: 'startup not completed within 300 ms' });
    } finally {
      await strict.stop();
    }
  });
});
