// Pool mode `transaction` with real PostgreSQL and real clients: more clients than server
// connections, each holding one only for a transaction.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, psql, run } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { cancelSleepThroughRouter } from './testing/cancel-probe.js';
import { eventually, routableRoute } from './testing/routes.js';

const PW = 'txn-alice-pw';
let pgServer: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PW, database: 'acme' }] });
  const admin = await pgServer.adminClient();
  const verifier = (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'")).rows[0]!.rolpassword;
  await admin.end();
  feed = await startFakeRouteFeed({
    routes: [routableRoute('txn', pgServer.host, pgServer.port, { poolMode: 'TRANSACTION', users: [{ name: 'alice', scramVerifier: verifier }] })],
  });
  router = await startTestRouter({ coordinator: feed.address, args: ['--pool-size', '1', '--pool-wait-timeout', '5s'] });
  await eventually(() => router.cache.revision === 1, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await pgServer?.stop();
});

function connect(): Promise<pg.Client> {
  return pgConnect({ host: router.host, port: router.port, user: 'alice.txn', database: 'acme', password: PW });
}

async function metric(name: string): Promise<number> {
  const { body } = await router.get('/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${name.replace(/\}$/, ',app="router"}')} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function pidOf(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
}

describe('pool mode transaction', () => {
  it('serves several open clients with one server connection, one transaction at a time', async () => {
    const [a, b, c] = await Promise.all([connect(), connect(), connect()]);
    try {
      const pids = [await pidOf(a), await pidOf(b), await pidOf(c), await pidOf(a)];
      expect(new Set(pids).size).toBe(1);
      // Extended protocol (unnamed statements, parameters) in a transaction of its own.
      expect((await b.query('select $1::int + 1 as n', [41])).rows).toEqual([{ n: 42 }]);
      expect((await c.query('select current_user as u, current_database() as db')).rows).toEqual([{ u: 'alice', db: 'acme' }]);
    } finally {
      await Promise.all([a.end(), b.end(), c.end()]);
    }
  });

  it('a transaction holds its server until COMMIT; another client waits for it', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    try {
      await a.query('BEGIN');
      await a.query('CREATE TEMP TABLE held (x int) ON COMMIT DROP');
      let bDone = false;
      const bQuery = b.query('select 1 as one').then((r) => {
        bDone = true;
        return r.rows;
      });
      await eventually(async () => (await metric('pgs_router_pool_clients{state="waiting"}')) === 1, 5000, 'b waiting');
      expect(bDone).toBe(false);
      await a.query('INSERT INTO held VALUES (1)');
      await a.query('COMMIT');
      expect(await bQuery).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('cancels the running query of the client that holds the server', async () => {
    const a = await connect();
    try {
      expect(await cancelSleepThroughRouter(a, () => pgServer.adminClient(), router)).toBe('57014');
      expect((await a.query('select 2 as two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await a.end();
    }
  });

  it('psql runs several statements, and a client leaving mid-transaction does not hand the server on', async () => {
    const r = await psql(`host=127.0.0.1 port=${router.port} user=alice.txn dbname=acme sslmode=disable`, 'select 1; select 2', PW);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['1', '2']);
    const a = await connect();
    await a.query('BEGIN');
    const pid = await pidOf(a);
    await a.end();
    const b = await connect();
    try {
      await eventually(async () => (await pidOf(b)) !== pid, 10_000, 'a fresh server connection');
    } finally {
      await b.end();
    }
  });

  it('pgbench with more clients than server connections, simple and extended protocol', async () => {
    const env = { PGPASSWORD: PW };
    const target = ['-h', '127.0.0.1', '-p', String(router.port), '-U', 'alice.txn'];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...target, 'acme'], env, 60_000);
    expect(init.code, init.stderr).toBe(0);
    for (const mode of ['simple', 'extended']) {
      const r = await run('pgbench', ['-M', mode, '-c', '4', '-j', '2', '-t', '50', ...target, 'acme'], env, 60_000);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 200/200');
    }
    // Three pgbench runs of up to 60 s each (their own bounds): the default 30 s was missed on a loaded machine.
  }, 200_000);
});
