// Pool mode transaction with session state, real PostgreSQL and real clients: named prepared
// statements follow a client to whichever server connection runs its next transaction, and a
// client that creates session state (SET, temp table) keeps its server until the state is gone.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, run } from './testing/clients.js';
import { extendedBatch, type BatchResult } from './testing/extended-batch.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const PW = 'txs-alice-pw';
let pgServer: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;
/** The same tenant through a router whose servers keep only 2 named statements each. */
let small: TestRouter;

beforeAll(async () => {
  pgServer = await startTestPostgres({ users: [{ name: 'alice', password: PW, database: 'acme' }] });
  const admin = await pgServer.adminClient();
  const verifier = (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'")).rows[0]!.rolpassword;
  await admin.end();
  feed = await startFakeRouteFeed({
    routes: [routableRoute('txs', pgServer.host, pgServer.port, { poolMode: 'TRANSACTION', users: [{ name: 'alice', scramVerifier: verifier }] })],
  });
  router = await startTestRouter({ coordinator: feed.address, args: ['--pool-size', '2', '--pool-wait-timeout', '10s'] });
  small = await startTestRouter({ coordinator: feed.address, args: ['--pool-size', '1', '--pool-prepared-statements', '2'] });
  await eventually(() => router.cache.revision === 1 && small.cache.revision === 1, 10_000, 'routes synced');
}, 60_000);

afterAll(async () => {
  await small?.stop();
  await router?.stop();
  await feed?.stop();
  await pgServer?.stop();
});

function connect(): Promise<pg.Client> {
  return pgConnect({ host: router.host, port: router.port, user: 'alice.txs', database: 'acme', password: PW });
}

async function metric(name: string): Promise<number> {
  const { body } = await router.get('/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${name}{app="router"} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function pidOf(c: pg.Client): Promise<number> {
  return (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
}

/** Holds the other server connection in a transaction so `c`'s next transaction must use another one. */
async function withOtherServerBusy<T>(fn: () => Promise<T>): Promise<T> {
  const hog = await connect();
  try {
    await hog.query('BEGIN');
    await hog.query('select 1');
    return await fn();
  } finally {
    await hog.query('COMMIT').catch(() => undefined);
    await hog.end();
  }
}

describe('pool mode transaction: named statements and pinning', () => {
  // One pgbench thread per client: pgbench prepares with the blocking PQprepare, so a thread whose
  // other clients hold every server connection in a transaction would wait on itself (README).
  it('pgbench -M prepared with 8 clients on 2 server connections', async () => {
    const env = { PGPASSWORD: PW };
    const target = ['-h', '127.0.0.1', '-p', String(router.port), '-U', 'alice.txs'];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...target, 'acme'], env, 60_000);
    expect(init.code, init.stderr).toBe(0);
    for (const extra of [[], ['-S']]) {
      const r = await run('pgbench', ['-M', 'prepared', '-c', '8', '-j', '8', '-t', '100', ...extra, ...target, 'acme'], env, 120_000);
      expect(
        r.code,
        r.stderr + JSON.stringify(router.logs.filter((l) => l['msg'] !== 'connection closed' || l['outcome'] !== 'closed_by_client').slice(-8)),
      ).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 800/800');
    }
  }, 180_000);

  // pgbench prepares with the blocking PQprepare: a thread whose other clients hold both server
  // connections in a transaction waited on itself until --pool-wait-timeout before the router
  // answered such a Parse itself when no server is free (parse-without-server.ts).
  it('pgbench -M prepared with more clients than threads (-c 8 -j 2) on 2 server connections', async () => {
    const env = { PGPASSWORD: PW };
    const target = ['-h', '127.0.0.1', '-p', String(router.port), '-U', 'alice.txs'];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...target, 'acme'], env, 60_000);
    expect(init.code, init.stderr).toBe(0);
    for (const extra of [[], ['-S']]) {
      const r = await run('pgbench', ['-M', 'prepared', '-c', '8', '-j', '2', '-t', '100', ...extra, ...target, 'acme'], env, 120_000);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 800/800');
    }
  }, 180_000);

  it('a second Parse of a statement name fails with 42P05 as on PostgreSQL itself, in and out of a transaction', async () => {
    const scenario = async (c: pg.Client): Promise<unknown[]> => {
      const seen: unknown[] = [];
      const brief = (r: BatchResult): unknown => ({ parsed: r.parsed, rows: r.rows, code: r.error?.code, message: r.error?.message });
      seen.push(brief(await extendedBatch(c, [{ parse: 'dup', text: 'select 1' }, { parse: 'dup', text: 'select 2' }, { bind: 'dup' }, { execute: true }])));
      seen.push(brief(await extendedBatch(c, [{ parse: 'dup', text: 'select 3' }])));
      // The first one stands.
      seen.push(brief(await extendedBatch(c, [{ bind: 'dup' }, { execute: true }])));
      await c.query('BEGIN');
      seen.push(brief(await extendedBatch(c, [{ parse: 'dup', text: 'select 4' }])));
      seen.push(await c.query('select 1').catch((e: { code?: string }) => e.code));
      await c.query('ROLLBACK');
      seen.push(brief(await extendedBatch(c, [{ bind: 'dup' }, { execute: true }])));
      return seen;
    };
    const direct = await pgConnect({ host: pgServer.host, port: pgServer.port, user: 'alice', database: 'acme', password: PW });
    const routed = await connect();
    try {
      const expected = await scenario(direct);
      expect(expected[0]).toEqual({ parsed: 1, rows: [], code: '42P05', message: 'prepared statement "dup" already exists' });
      expect(expected[2]).toEqual({ parsed: 0, rows: [['1']], code: undefined, message: undefined });
      expect(expected[4]).toBe('25P02');
      expect(await scenario(routed)).toEqual(expected);
    } finally {
      await Promise.all([direct.end(), routed.end()]);
    }
  });

  it('named Parses while every server connection is busy are answered by the router and prepared at first use', async () => {
    const hogs = await Promise.all([connect(), connect()]);
    const a = await connect();
    try {
      for (const h of hogs) {
        await h.query('BEGIN');
        await h.query('select 1');
      }
      const answered = await extendedBatch(a, [
        { parse: 'twice', text: "select 'x' || 2 as v" },
        { parse: 'bad', text: 'selec 1' },
        { parse: 'twice', text: 'select 0' },
      ]);
      expect(answered).toEqual({ parsed: 2, rows: [], error: { code: '42P05', message: 'prepared statement "twice" already exists' } });
      for (const h of hogs) await h.query('COMMIT');
      expect((await extendedBatch(a, [{ bind: 'twice' }, { execute: true }])).rows).toEqual([['x2']]);
      // The text is checked where it is first used.
      expect((await extendedBatch(a, [{ bind: 'bad' }, { execute: true }])).error).toMatchObject({ code: '42601' });
      expect((await a.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await Promise.all([...hogs, a].map((c) => c.end()));
    }
  });

  it('node-postgres named statements across transactions and server connections', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    try {
      const q = { name: 'add-one', text: 'select $1::int + 1 as n' };
      expect((await a.query({ ...q, values: [1] })).rows).toEqual([{ n: 2 }]);
      const pids = new Set<number>();
      for (let i = 0; i < 6; i++) {
        // b sometimes holds a server in a transaction, so a's statement must move.
        if (i % 2 === 0) await b.query('BEGIN');
        pids.add(await pidOf(a));
        expect((await a.query({ ...q, values: [i] })).rows).toEqual([{ n: i + 1 }]);
        // The same name in another client, another text: each client has its own names.
        expect((await b.query({ name: 'add-one', text: 'select $1::int + 100 as n', values: [i] })).rows).toEqual([{ n: i + 100 }]);
        if (i % 2 === 0) await b.query('COMMIT');
      }
      expect(pids.size).toBe(2);
      // An error in a named statement keeps the protocol in sync.
      await expect(a.query({ name: 'div', text: 'select 1 / $1::int as x', values: [0] })).rejects.toMatchObject({ code: '22012' });
      expect((await a.query({ name: 'div', text: 'select 1 / $1::int as x', values: [2] })).rows).toEqual([{ x: 0 }]);
      expect((await a.query({ ...q, values: [41] })).rows).toEqual([{ n: 42 }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('a SET pins the client to its server until RESET ALL; the pinned count shows it', async () => {
    const a = await connect();
    try {
      await a.query("SET application_name = 'pinned-app'");
      const pid = await pidOf(a);
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(1);
      // Another client runs meanwhile on the other server connection.
      const b = await connect();
      expect(await pidOf(b)).not.toBe(pid);
      await b.end();
      for (let i = 0; i < 3; i++) {
        expect((await a.query<{ application_name: string }>('show application_name')).rows[0]!.application_name).toBe('pinned-app');
        expect(await pidOf(a)).toBe(pid);
      }
      await a.query('RESET ALL');
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(0);
    } finally {
      await a.end();
    }
  });

  it('a statement whose table is gone fails where it is prepared and where the router prepares it, and the client goes on', async () => {
    const a = await connect();
    try {
      await a.query('CREATE TABLE IF NOT EXISTS vanishing (x int)');
      const q = { name: 'count-vanishing', text: 'select count(*)::int as n from vanishing' };
      expect((await a.query(q)).rows).toEqual([{ n: 0 }]);
      await a.query('DROP TABLE vanishing');
      // Once on the server that has it (the last one used: the pool lends the most recent idle),
      // once on the other (the hog takes that one): the router's injected Parse fails there.
      await expect(a.query(q)).rejects.toMatchObject({ code: '42P01' });
      await withOtherServerBusy(async () => {
        await expect(a.query(q)).rejects.toMatchObject({ code: '42P01' });
        expect((await a.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      });
      await a.query('CREATE TABLE vanishing (x int)');
      await a.query('INSERT INTO vanishing VALUES (1)');
      for (let i = 0; i < 2; i++) {
        const run = (): Promise<pg.QueryResult> => a.query(q);
        expect((await (i === 0 ? run() : withOtherServerBusy(run))).rows).toEqual([{ n: 1 }]);
      }
    } finally {
      await a.query('DROP TABLE IF EXISTS vanishing').catch(() => undefined);
      await a.end();
    }
  });

  it('a server over its statement bound closes the least recently used; clients prepare them again', async () => {
    const [a, b] = await Promise.all([
      pgConnect({ host: small.host, port: small.port, user: 'alice.txs', database: 'acme', password: PW }),
      pgConnect({ host: small.host, port: small.port, user: 'alice.txs', database: 'acme', password: PW }),
    ]);
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) {
          const c = i % 2 === 0 ? a : b;
          expect((await c.query({ name: `s${i}`, text: `select ${i} + $1::int as n`, values: [round] })).rows).toEqual([{ n: i + round }]);
        }
      }
      const held = await (async () => {
        const r = await a.query<{ names: string[] }>("select coalesce(array_agg(name order by name), '{}') as names from pg_prepared_statements");
        return r.rows[0]!.names;
      })();
      // One server connection: it holds at most 2 router statements (the one just used among them).
      expect(held.length).toBeLessThanOrEqual(2);
      for (const n of held) expect(n).toMatch(/^pgs_[0-9a-f]{24}$/);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('LISTEN pins the listener, which gets notifications between its transactions', async () => {
    const [listener, notifier] = await Promise.all([connect(), connect()]);
    const got: string[] = [];
    listener.on('notification', (n) => got.push(n.payload ?? ''));
    try {
      await listener.query('LISTEN txs_chan');
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(1);
      await notifier.query("NOTIFY txs_chan, 'a'");
      await notifier.query("select pg_notify('txs_chan', 'b')");
      await eventually(() => got.length === 2, 5000, 'notifications');
      expect(got).toEqual(['a', 'b']);
      await listener.query('UNLISTEN *');
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(0);
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
    }
  });

  it('a session advisory lock pins its holder until pg_advisory_unlock_all', async () => {
    const [a, b] = await Promise.all([connect(), connect()]);
    try {
      await a.query('select pg_advisory_lock(4242)');
      const pid = await pidOf(a);
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(1);
      expect((await b.query<{ got: boolean }>('select pg_try_advisory_xact_lock(4242) as got')).rows[0]!.got).toBe(false);
      expect(await pidOf(a)).toBe(pid);
      await a.query('select pg_advisory_unlock_all()');
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(0);
      expect((await b.query<{ got: boolean }>('select pg_try_advisory_xact_lock(4242) as got')).rows[0]!.got).toBe(true);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('a temp table stays visible to its client across transactions while others are served', async () => {
    const a = await connect();
    try {
      await a.query('CREATE TEMP TABLE scratch (x int)');
      await withOtherServerBusy(async () => {
        await a.query('INSERT INTO scratch VALUES (1), (2)');
        expect((await a.query('select count(*)::int as n from scratch')).rows).toEqual([{ n: 2 }]);
      });
      await a.query('DISCARD TEMP');
      expect(await metric('pgs_router_pool_clients_pinned')).toBe(0);
    } finally {
      await a.end();
    }
  });
});
