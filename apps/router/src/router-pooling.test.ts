// Authentication at the router and pool mode `session`, with real PostgreSQL and real clients
// (psql/libpq 15 with sslmode disable/require and channel_binding=require, node-postgres). Two
// tenants on two instances each have a user "alice" with a different password.
import fs from 'node:fs';
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect, pgConnectError, psql, run } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { cancelSleepThroughRouter } from './testing/cancel-probe.js';
import { eventually, routableRoute } from './testing/routes.js';
import { createTestCa, type TestCa } from './testing/test-ca.js';

const ACME_PW = 'acme-alice-pw';
const GLOBEX_PW = 'globex-alice-pw';
let acme: TestPostgres;
let globex: TestPostgres;
let feed: FakeRouteFeed;
let ca: TestCa;
let router: TestRouter;
let acmeRoute: ReturnType<typeof routableRoute>;

/** The verifier the instance holds: the coordinator ships the same bytes to agents and routers. */
async function verifierOf(server: TestPostgres, user: string): Promise<string> {
  const admin = await server.adminClient();
  try {
    const r = await admin.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
    return r.rows[0]!.rolpassword;
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  ca = createTestCa();
  [acme, globex] = await Promise.all([
    startTestPostgres({ users: [{ name: 'alice', password: ACME_PW, database: 'acme' }] }),
    startTestPostgres({ users: [{ name: 'alice', password: GLOBEX_PW, database: 'globex' }] }),
  ]);
  acmeRoute = routableRoute('acme', acme.host, acme.port, { poolMode: 'SESSION', users: [{ name: 'alice', scramVerifier: await verifierOf(acme, 'alice') }] });
  const globexRoute = routableRoute('globex', globex.host, globex.port, {
    poolMode: 'SESSION',
    users: [{ name: 'alice', scramVerifier: await verifierOf(globex, 'alice') }],
  });
  feed = await startFakeRouteFeed({ routes: [acmeRoute, globexRoute] });
  router = await startTestRouter({
    coordinator: feed.address,
    args: [
      '--tls-cert',
      ca.serverCert,
      '--tls-key',
      ca.serverKey,
      '--pool-size',
      '2',
      '--pool-wait-timeout',
      '1s',
      '--auth-failure-limit',
      '8',
      '--auth-failure-window',
      '1m',
    ],
  });
  await eventually(() => router.cache.revision === 2, 10_000, 'routes synced');
});

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await acme?.stop();
  await globex?.stop();
  ca?.remove();
});

function conninfo(extra: string): string {
  return `host=127.0.0.1 port=${router.port} ${extra}`;
}

/** A sample of the router's /metrics, e.g. `pgs_router_pool_backends{state="idle"}` (0 when absent). */
async function metric(name: string): Promise<number> {
  const { body } = await router.get('/metrics');
  // Every sample carries the registry's default label app="router" last.
  const sample = name.replace(/\}$/, ',app="router"}');
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Waits until the pool holds `n` idle connections (a departed client's reset runs in the background). */
function idleBackends(n: number): Promise<boolean> {
  return eventually(async () => (await metric('pgs_router_pool_backends{state="idle"}')) === n, 10_000, `${n} idle pooled connections`);
}

async function onAcme<T>(fn: (c: pg.Client) => Promise<T>, over: Partial<pg.ClientConfig> = {}): Promise<T> {
  const client = await pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW, ...over });
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('authentication at the router', () => {
  it.each([
    ['sslmode=disable', 'disable'],
    ['sslmode=require', 'require'],
    ['sslmode=require channel_binding=require', 'require-cb'],
  ])('psql %s logs in with SCRAM at the router and works on the instance', async (extra, app) => {
    const r = await psql(
      conninfo(`user=alice.acme dbname=acme ${extra} application_name=${app}`),
      'select current_user, current_database(), inet_server_port()',
      ACME_PW,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`alice|acme|${acme.port}`);
  });

  it('node-postgres over TLS, with SCRAM-SHA-256-PLUS channel binding and without', async () => {
    const ssl = { ca: fs.readFileSync(ca.caCert), servername: 'localhost' };
    for (const enableChannelBinding of [true, false]) {
      const row = await onAcme(async (c) => (await c.query('select current_user as u, ssl from pg_stat_ssl where pid = pg_backend_pid()')).rows[0], {
        ssl,
        enableChannelBinding,
      });
      // The router's own link to the instance is plaintext; the client's TLS ends at the router.
      expect(row).toEqual({ u: 'alice', ssl: false });
    }
  });

  it('channel_binding=require without TLS is refused by libpq (the router offers -PLUS only over TLS)', async () => {
    const r = await psql(conninfo('user=alice.acme dbname=acme sslmode=disable channel_binding=require'), 'select 1', ACME_PW);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('channel binding');
  });

  it("a wrong password gets 28P01 with PostgreSQL's own message, the same as the instance gives directly", async () => {
    const viaRouter = await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: 'wrong-pw' });
    const direct = await pgConnectError({ host: acme.host, port: acme.port, user: 'alice', database: 'acme', password: 'wrong-pw' });
    expect(viaRouter).toMatchObject({ code: '28P01', message: 'password authentication failed for user "alice"' });
    expect(viaRouter).toEqual(direct);
    const r = await psql(conninfo('user=alice.acme dbname=acme sslmode=disable'), 'select 1', 'wrong-pw');
    expect(r.stderr).toContain('FATAL:  password authentication failed for user "alice"');
  });

  it('an unknown user gets exactly the reply of a wrong password (a mock exchange, with a stable salt)', async () => {
    const unknown = await pgConnectError({ host: router.host, port: router.port, user: 'nobody.acme', database: 'acme', password: 'whatever' });
    const direct = await pgConnectError({ host: acme.host, port: acme.port, user: 'nobody', database: 'acme', password: 'whatever' });
    expect(unknown).toEqual({ ...direct });
    expect(unknown).toMatchObject({ code: '28P01', message: 'password authentication failed for user "nobody"' });
    expect(await metric('pgs_router_auth_failures_total{reason="unknown_user"}')).toBeGreaterThanOrEqual(1);
  });

  it("the password of the other tenant's same-named user does not open this tenant", async () => {
    const e = await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: GLOBEX_PW });
    expect(e.code).toBe('28P01');
  });

  it('throttles repeated failures per tenant and user (known or not), other users unaffected', async () => {
    for (let i = 0; i < 8; i++) await pgConnectError({ host: router.host, port: router.port, user: 'mallory.acme', database: 'acme', password: `guess${i}` });
    const blocked = await pgConnectError({ host: router.host, port: router.port, user: 'mallory.acme', database: 'acme', password: 'guess-again' });
    expect(blocked).toMatchObject({ code: '28000', message: 'too many failed authentication attempts for user "mallory"' });
    expect(await onAcme((c) => c.query('select 1 as one'))).toMatchObject({ rows: [{ one: 1 }] });
  });

  it('a password change on the feed takes effect for new logins; an open session goes on; pooled connections of the old password retire', async () => {
    const open = await pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW });
    const oldPid = await onAcme(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
    try {
      const admin = await acme.adminClient();
      await admin.query("ALTER ROLE alice PASSWORD 'acme-new-pw'");
      await admin.end();
      feed.set({ ...acmeRoute, users: [{ name: 'alice', scramVerifier: await verifierOf(acme, 'alice') }] });
      await eventually(() => router.cache.verifierOf('acme', 'alice') !== acmeRoute.users![0]!.scramVerifier, 10_000, 'new verifier cached');
      expect((await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW })).code).toBe('28P01');
      expect(await onAcme((c) => c.query('select 2 as two'), { password: 'acme-new-pw' })).toMatchObject({ rows: [{ two: 2 }] });
      expect((await open.query('select 3 as three')).rows).toEqual([{ three: 3 }]);
      // The idle connection logged in with the old password is closed at the next sweep, never lent again.
      const admin2 = await acme.adminClient();
      await eventually(
        async () => (await admin2.query('select 1 from pg_stat_activity where pid = $1', [oldPid])).rowCount === 0,
        10_000,
        'old connection closed',
      );
      await admin2.end();
      const pids = await onAcme(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid, { password: 'acme-new-pw' });
      expect(pids).not.toBe(oldPid);
    } finally {
      await open.end();
      const admin = await acme.adminClient();
      // As the agents do: the coordinator's verifier is installed as is, so both hold the same bytes.
      await admin.query(`ALTER ROLE alice PASSWORD '${acmeRoute.users![0]!.scramVerifier}'`);
      await admin.end();
      feed.set(acmeRoute);
      await eventually(() => router.cache.verifierOf('acme', 'alice') === acmeRoute.users![0]!.scramVerifier, 10_000, 'old verifier back');
    }
  });
});

describe('pool mode session', () => {
  it("a second client reuses the first one's server process, with the session state reset", async () => {
    await idleBackends(await metric('pgs_router_pool_backends{state="idle"}'));
    const first = await onAcme(
      async (c) => {
        await c.query("SET search_path = pg_catalog; SET statement_timeout = '5min'; CREATE TEMP TABLE scratch (x int); PREPARE p AS SELECT 1; LISTEN chan");
        await c.query('SELECT pg_advisory_lock(42)');
        return (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      },
      { application_name: 'first' },
    );
    await eventually(
      async () => {
        const admin = await acme.adminClient();
        try {
          const r = await admin.query<{ state: string }>('select state from pg_stat_activity where pid = $1', [first]);
          return r.rows[0]?.state === 'idle';
        } finally {
          await admin.end();
        }
      },
      10_000,
      'reset done',
    );
    const second = await onAcme(
      async (c) => {
        const r = await c.query(
          `select pg_backend_pid() as pid, current_setting('search_path') as sp, current_setting('statement_timeout') as st,
                to_regclass('pg_temp.scratch') as tmp, (select count(*)::int from pg_prepared_statements) as prepared,
                (select count(*)::int from pg_listening_channels()) as listening, (select count(*)::int from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as locks,
                current_setting('application_name') as app, current_user as usr, current_database() as db`,
        );
        return { row: r.rows[0] as Record<string, unknown>, appParam: (c as unknown as { connectionParameters: unknown }).connectionParameters };
      },
      { application_name: 'second' },
    );
    expect(second.row).toEqual({
      pid: first,
      sp: '"$user", public',
      st: '0',
      tmp: null,
      prepared: 0,
      listening: 0,
      locks: 0,
      app: 'second',
      usr: 'alice',
      db: 'acme',
    });
    expect(await metric('pgs_router_pool_leases_total{kind="reuse"}')).toBeGreaterThanOrEqual(1);
  });

  it('clients of one pool key share its server login, each new server connection logged in with its own client’s application_name', async () => {
    // Options of their own: a pool key no earlier test left idle connections for, so each client logs a server in.
    const over = { options: '-c lock_timeout=4711' };
    const first = await pgConnect({
      host: router.host,
      port: router.port,
      user: 'alice.acme',
      database: 'acme',
      password: ACME_PW,
      application_name: 'login-one',
      ...over,
    });
    try {
      const second = await pgConnect({
        host: router.host,
        port: router.port,
        user: 'alice.acme',
        database: 'acme',
        password: ACME_PW,
        application_name: 'login-two',
        ...over,
      });
      try {
        const seen = async (c: pg.Client): Promise<Record<string, unknown>> =>
          (
            await c.query(
              `select current_setting('application_name') as app, current_setting('lock_timeout') as lt,
                      (select application_name from pg_stat_activity where pid = pg_backend_pid()) as activity, pg_backend_pid() as pid`,
            )
          ).rows[0] as Record<string, unknown>;
        const [one, two] = [await seen(first), await seen(second)];
        expect(one.pid).not.toBe(two.pid);
        expect([one.app, one.activity, one.lt]).toEqual(['login-one', 'login-one', '4711ms']);
        expect([two.app, two.activity, two.lt]).toEqual(['login-two', 'login-two', '4711ms']);
      } finally {
        await second.end();
      }
    } finally {
      await first.end();
    }
  });

  it('a client that leaves inside a transaction does not hand its server process on', async () => {
    const pid = await onAcme(async (c) => {
      await c.query('BEGIN');
      await c.query('CREATE TEMP TABLE t_in_tx (x int)');
      return (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    });
    await eventually(
      async () => {
        const admin = await acme.adminClient();
        try {
          return (await admin.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0;
        } finally {
          await admin.end();
        }
      },
      10_000,
      'the server process closed',
    );
    const next = await onAcme(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
    expect(next).not.toBe(pid);
  });

  it('two tenants with a same-named user never share a server connection', async () => {
    for (let i = 0; i < 3; i++) {
      const a = await onAcme(async (c) => (await c.query('select current_database() as db, current_user as u, inet_server_port() as port')).rows[0]);
      const g = await pgConnect({ host: router.host, port: router.port, user: 'alice.globex', database: 'globex', password: GLOBEX_PW });
      const gr = (await g.query('select current_database() as db, current_user as u, inet_server_port() as port')).rows[0];
      await g.end();
      expect(a).toEqual({ db: 'acme', u: 'alice', port: acme.port });
      expect(gr).toEqual({ db: 'globex', u: 'alice', port: globex.port });
    }
  });

  it('cancels a query through a pooled connection with the router-issued key', async () => {
    const client = await pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW });
    try {
      expect(await cancelSleepThroughRouter(client, () => acme.adminClient(), router)).toBe('57014');
      expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('a full pool makes a client wait, then 53300 after --pool-wait-timeout; a freed connection serves the waiter', async () => {
    const held = await Promise.all(
      [0, 1].map(() => pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW })),
    );
    try {
      const e = await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW });
      expect(e).toMatchObject({ code: '53300', message: 'no server connection of tenant "acme" became free within 1000 ms' });
      const waiter = pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW });
      await eventually(async () => (await metric('pgs_router_pool_clients{state="waiting"}')) === 1, 5000, 'a waiting client');
      await held.pop()!.end();
      const w = await waiter;
      expect((await w.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
      await w.end();
    } finally {
      for (const c of held) await c.end();
    }
  });

  it('pgbench initializes through the pool and runs with a new client connection per transaction (-C) on reused servers', async () => {
    const env = { PGPASSWORD: ACME_PW };
    const target = ['-h', '127.0.0.1', '-p', String(router.port), '-U', 'alice.acme'];
    const init = await run('pgbench', ['-i', '-s', '1', '-q', ...target, 'acme'], env, 60_000);
    expect(init.code, init.stderr).toBe(0);
    const reusedBefore = await metric('pgs_router_pool_leases_total{kind="reuse"}');
    const perConnection = await run('pgbench', ['-S', '-C', '-c', '2', '-t', '50', ...target, 'acme'], env, 60_000);
    expect(perConnection.code, perConnection.stderr).toBe(0);
    expect(perConnection.stdout).toContain('number of transactions actually processed: 100/100');
    // --pool-size 2: after the first two, every connection gets a pooled server.
    expect((await metric('pgs_router_pool_leases_total{kind="reuse"}')) - reusedBefore).toBeGreaterThanOrEqual(90);
  });

  it('forgets an idle server connection the instance closed, and cuts a client whose server was killed', async () => {
    const pid = await onAcme(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
    await eventually(async () => (await metric('pgs_router_pool_backends{state="idle"}')) >= 1, 10_000, 'an idle connection');
    const admin = await acme.adminClient();
    try {
      // Every pooled connection of both tenants goes (as in a restart of their instances).
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', ['alice']);
      const other = await globex.adminClient();
      await other.query('select pg_terminate_backend(pid) from pg_stat_activity where usename = $1', ['alice']);
      await other.end();
      await eventually(async () => (await metric('pgs_router_pool_backends{state="idle"}')) === 0, 10_000, 'idle connections forgotten');
      const client = await pgConnect({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW });
      const lentPid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      expect(lentPid).not.toBe(pid);
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      await admin.query('select pg_terminate_backend($1)', [lentPid]);
      await ended;
      await expect(client.query('select 1')).rejects.toThrow();
      // The killed server is not lent again.
      const next = await onAcme(async (c) => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      expect(next).not.toBe(lentPid);
    } finally {
      await admin.end();
    }
  });

  it("closes the idle connections of a user the route no longer lists; the user's logins then fail", async () => {
    await onAcme((c) => c.query('select 1'));
    await eventually(async () => (await metric('pgs_router_pool_backends{state="idle"}')) >= 1, 10_000, 'an idle connection');
    const before = await metric('pgs_router_pool_backends_closed_total{reason="route_changed"}');
    feed.set({ ...acmeRoute, users: [] });
    try {
      await eventually(async () => (await metric('pgs_router_pool_backends_closed_total{reason="route_changed"}')) > before, 10_000, 'idle connections closed');
      expect(await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW })).toMatchObject({
        code: '28P01',
      });
    } finally {
      feed.set(acmeRoute);
      await eventually(() => router.cache.verifierOf('acme', 'alice') !== undefined, 10_000, 'user back');
    }
  });

  it("closes a tenant's idle connections when its route changes, and serves from the new route", async () => {
    await onAcme((c) => c.query('select 1'));
    await eventually(async () => (await metric('pgs_router_pool_backends{state="idle"}')) >= 1, 10_000, 'an idle connection');
    const before = await metric('pgs_router_pool_backends_closed_total{reason="route_changed"}');
    feed.set({ ...acmeRoute, state: 'STOPPED', reason: 'stopped by the test' });
    await eventually(async () => (await metric('pgs_router_pool_backends_closed_total{reason="route_changed"}')) > before, 10_000, 'idle connections closed');
    expect((await pgConnectError({ host: router.host, port: router.port, user: 'alice.acme', database: 'acme', password: ACME_PW })).code).toBe('57P03');
    feed.set(acmeRoute);
    await eventually(() => router.cache.lookup('acme')?.state === 'ROUTABLE', 10_000, 'route back');
    expect(await onAcme(async (c) => (await c.query('select current_database() as db')).rows[0])).toEqual({ db: 'acme' });
  });
});
