// Pooled clients while their tenant moves (switchover, failover: the route names another
// instance), and isolation under load: two tenants on two instances, each with a user "alice",
// hammered in pool modes session and transaction, every query checking where it ran. Real
// PostgreSQL instances, node-postgres through the router, routes from a fake feed.
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import net from 'node:net';
import { loadavg as osLoad } from 'node:os';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgConnect } from './testing/clients.js';
import { startFakeRouteFeed, type FakeRouteFeed } from './testing/fake-route-feed.js';
import { startTestRouter, type TestRouter } from './testing/router-harness.js';
import { eventually, routableRoute } from './testing/routes.js';

const ACME_PW = 'moves-acme-pw';
const loadavg = (): string =>
  osLoad()
    .map((x) => x.toFixed(1))
    .join(' ');
const GLOBEX_PW = 'moves-globex-pw';
/** acme's primary, its stand-in after a switchover (same role, same verifier), and globex's instance. */
let primary: TestPostgres;
let standby: TestPostgres;
let globex: TestPostgres;
let feed: FakeRouteFeed;
let router: TestRouter;
let acmeVerifier: string;
let globexVerifier: string;

async function verifierOf(p: TestPostgres): Promise<string> {
  const admin = await p.adminClient();
  try {
    return (await admin.query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'")).rows[0]!.rolpassword;
  } finally {
    await admin.end();
  }
}

const route = (tenant: string, at: TestPostgres, mode: 'SESSION' | 'TRANSACTION', verifier: string): ReturnType<typeof routableRoute> =>
  routableRoute(tenant, at.host, at.port, { poolMode: mode, users: [{ name: 'alice', scramVerifier: verifier }] });

/** Every route back at its start: acme (transaction) and acmes (session) on the primary, globex and globexs on globex. */
function initialRoutes(): Array<ReturnType<typeof routableRoute>> {
  return [
    route('acme', primary, 'TRANSACTION', acmeVerifier),
    route('acmes', primary, 'SESSION', acmeVerifier),
    route('globex', globex, 'TRANSACTION', globexVerifier),
    route('globexs', globex, 'SESSION', globexVerifier),
  ];
}

beforeAll(async () => {
  [primary, standby, globex] = await Promise.all([
    startTestPostgres({ users: [{ name: 'alice', password: ACME_PW, database: 'acme' }] }),
    startTestPostgres({ users: [{ name: 'alice', password: 'replaced-below', database: 'acme' }] }),
    startTestPostgres({ users: [{ name: 'alice', password: GLOBEX_PW, database: 'globex' }] }),
  ]);
  acmeVerifier = await verifierOf(primary);
  globexVerifier = await verifierOf(globex);
  // The stand-in holds the byte-identical verifier, as the agents install it on replicas.
  const admin = await standby.adminClient();
  await admin.query(`ALTER ROLE alice PASSWORD '${acmeVerifier}'`);
  await admin.end();
  feed = await startFakeRouteFeed({ routes: initialRoutes() });
  router = await startTestRouter({ coordinator: feed.address, args: ['--pool-size', '2', '--pool-wait-timeout', '20s', '--route-change-wait', '3s'] });
  await eventually(() => router.cache.lookup('globexs') !== undefined, 10_000, 'routes synced');
}, 60_000);

afterAll(async () => {
  await router?.stop();
  await feed?.stop();
  await Promise.all([primary?.stop(), standby?.stop(), globex?.stop()]);
});

function connect(tenant: string, database: string, password: string): Promise<pg.Client> {
  return pgConnect({ host: router.host, port: router.port, user: `alice.${tenant}`, database, password });
}

async function whereAmI(c: pg.Client): Promise<{ db: string; u: string; port: number }> {
  return (await c.query<{ db: string; u: string; port: number }>('select current_database() as db, current_user as u, inet_server_port() as port')).rows[0]!;
}

/**
 * acmes's route goes SWITCHING (still naming the primary), `during` runs, then the route names `to`.
 * Returns what `during` returned.
 */
async function switchAcmesTo<T>(to: TestPostgres, during: () => Promise<T>): Promise<T> {
  feed.set({ ...route('acmes', primary, 'SESSION', acmeVerifier), state: 'SWITCHING', reason: 'switching to the standby' });
  await eventually(() => router.cache.lookup('acmes')?.state === 'SWITCHING', 10_000, 'route switching');
  const out = await during();
  await moveAcmeTo(to);
  return out;
}

/** pgs_router_sessions_carried_total of one result, from the router's /metrics. */
async function carriedCount(result: string): Promise<number> {
  const { body } = await router.get('/metrics');
  const line = body.split('\n').find((l) => l.startsWith('pgs_router_sessions_carried_total{') && l.includes(`result="${result}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function moveAcmeTo(to: TestPostgres): Promise<void> {
  feed.set(route('acme', to, 'TRANSACTION', acmeVerifier), route('acmes', to, 'SESSION', acmeVerifier));
  await eventually(() => router.cache.lookup('acme')?.port === to.port && router.cache.lookup('acmes')?.port === to.port, 10_000, 'route moved');
}

describe('pooled clients while their tenant moves', () => {
  it('switchover in transaction mode: a client between transactions goes on at the new primary unnoticed, one inside a transaction finishes it first', async () => {
    const between = await connect('acme', 'acme', ACME_PW);
    const inside = await connect('acme', 'acme', ACME_PW);
    try {
      expect((await whereAmI(between)).port).toBe(primary.port);
      await inside.query('BEGIN');
      expect((await whereAmI(inside)).port).toBe(primary.port);
      await moveAcmeTo(standby);
      expect(await whereAmI(between)).toEqual({ db: 'acme', u: 'alice', port: standby.port });
      // Its transaction stays where it began; the next one goes to the new primary.
      expect((await whereAmI(inside)).port).toBe(primary.port);
      await inside.query('COMMIT');
      expect((await whereAmI(inside)).port).toBe(standby.port);
      // Nothing of the old primary is lent again.
      for (let i = 0; i < 5; i++) expect((await whereAmI(between)).port).toBe(standby.port);
    } finally {
      await Promise.all([between.end(), inside.end()]);
      await moveAcmeTo(primary);
    }
  });

  it('failover in transaction mode: a client inside a transaction on the fenced primary is terminated (57P01), one between transactions goes on', async () => {
    const between = await connect('acme', 'acme', ACME_PW);
    const inside = await connect('acme', 'acme', ACME_PW);
    const ended = new Promise<void>((resolve) => inside.once('end', () => resolve()));
    try {
      expect((await whereAmI(between)).port).toBe(primary.port);
      await inside.query('BEGIN');
      await whereAmI(inside);
      await moveAcmeTo(standby);
      // Fencing the old primary ends its sessions, as PostgreSQL reports it (57P01).
      const admin = await primary.adminClient();
      const running = inside.query('select pg_sleep(30)').catch((e: { code?: string }) => e.code);
      await eventually(
        async () => (await admin.query("select 1 from pg_stat_activity where query = 'select pg_sleep(30)'")).rowCount === 1,
        10_000,
        'the sleep running',
      );
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'alice'");
      await admin.end();
      expect(await running).toBe('57P01');
      await ended;
      expect(await whereAmI(between)).toEqual({ db: 'acme', u: 'alice', port: standby.port });
    } finally {
      await Promise.all([between.end(), inside.end().catch(() => undefined)]);
      await moveAcmeTo(primary);
    }
  });

  it('switch in session mode: an idle session without state is held through SWITCHING and carried to the new primary, its SETs, named statements and SQL PREPAREs with it', async () => {
    const c = await connect('acmes', 'acme', ACME_PW);
    try {
      await c.query("SET statement_timeout = '12345ms'");
      // SQL-level prepared statements (simple protocol, between transactions); one deallocated again.
      await c.query('PREPARE sql_port (int) AS select inet_server_port() + $1 - $1 as port');
      await c.query('PREPARE gone AS select 1');
      await c.query('DEALLOCATE gone');
      const named = { name: 'where_am_i', text: 'select inet_server_port() as port' };
      expect((await c.query<{ port: number }>(named)).rows[0]?.port).toBe(primary.port);
      const oldPid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      // The switch: routers hold the next query while the route is SWITCHING, then it goes where the route points.
      let answered = false;
      const t0 = performance.now();
      const { q: held } = await switchAcmesTo(standby, async () => {
        const q = c.query<{ port: number }>(named).finally(() => (answered = true));
        await new Promise((r) => setTimeout(r, 300));
        // Not sent to the primary the tenant is leaving.
        expect(answered).toBe(false);
        // In an object: a promise returned as it is would be awaited here, before the route moves.
        return { q };
      });
      expect((await held).rows[0]?.port).toBe(standby.port);
      console.log(`session carried across the switch: its query held ${Math.round(performance.now() - t0)} ms (load ${loadavg()})`);
      // The named statement was prepared again there (node-postgres sends only a Bind for it now), the SET replayed.
      expect((await c.query<{ port: number }>(named)).rows[0]?.port).toBe(standby.port);
      expect((await c.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]?.statement_timeout).toBe('12345ms');
      // The PREPARE ran again there; the deallocated one did not (a PREPARE of its name succeeds).
      expect((await c.query<{ port: number }>('EXECUTE sql_port(7)')).rows[0]?.port).toBe(standby.port);
      await c.query('PREPARE gone AS select 2');
      expect(await whereAmI(c)).toEqual({ db: 'acme', u: 'alice', port: standby.port });
      // The old server connection is closed, not left on the old primary.
      const admin = await primary.adminClient();
      try {
        await eventually(
          async () => (await admin.query('select 1 from pg_stat_activity where pid = $1', [oldPid])).rowCount === 0,
          10_000,
          'old server closed',
        );
      } finally {
        await admin.end();
      }
      await c.end();
      // The connection's log line and the metric count the carry.
      await eventually(() => router.logs.some((l) => l.msg === 'connection closed' && l.tenantId === 'acmes' && l.carried === 1), 10_000, 'log line');
      expect(await carriedCount('carried')).toBeGreaterThanOrEqual(1);
    } finally {
      await c.end().catch(() => undefined);
      await moveAcmeTo(primary);
    }
  });

  it('switch in session mode: a session with a temporary table ends with 57P01 "moved", one inside a transaction finishes it where it began', async () => {
    const stateful = await connect('acmes', 'acme', ACME_PW);
    const inside = await connect('acmes', 'acme', ACME_PW);
    try {
      await stateful.query('create temp table scratch (x int)');
      await inside.query('BEGIN');
      expect((await whereAmI(inside)).port).toBe(primary.port);
      await moveAcmeTo(standby);
      const err = (await stateful.query('select 1').catch((e: unknown) => e)) as { code?: string; message?: string; detail?: string };
      expect(err.code).toBe('57P01');
      expect(err.message).toMatch(/tenant "acmes" moved to another instance/);
      expect(err.detail).toMatch(/temporary tables/);
      expect(await carriedCount('not_carried')).toBeGreaterThanOrEqual(1);
      // Its transaction stays where it began, then the session goes on at the new primary.
      expect((await whereAmI(inside)).port).toBe(primary.port);
      await inside.query('COMMIT');
      expect((await whereAmI(inside)).port).toBe(standby.port);
    } finally {
      await Promise.all([stateful.end().catch(() => undefined), inside.end()]);
      await moveAcmeTo(primary);
    }
  });

  it('session mode: a server ended while its client is idle (a fence before the route changed) is replaced when the route moves; not when it stays', async () => {
    const carried = await connect('acmes', 'acme', ACME_PW);
    const ended = await connect('acmes', 'acme', ACME_PW);
    const errors: Array<string | undefined> = [];
    ended.on('error', (e: Error & { code?: string }) => errors.push(e.code));
    const admin = await primary.adminClient();
    try {
      const pidOf = async (c: pg.Client): Promise<number> => (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      // The route stays: the client gets the server's own FATAL (after the router waited for a move).
      await admin.query('select pg_terminate_backend($1)', [await pidOf(ended)]);
      await eventually(() => errors.length > 0, 10_000, 'the FATAL told');
      // (node-postgres adds its own "Connection terminated" after it.)
      expect(errors[0]).toBe('57P01');
      // The server ends, then the route moves (within --route-change-wait): the client goes on, unaware.
      await admin.query('select pg_terminate_backend($1)', [await pidOf(carried)]);
      await moveAcmeTo(standby);
      expect(await whereAmI(carried)).toEqual({ db: 'acme', u: 'alice', port: standby.port });
    } finally {
      await admin.end();
      await Promise.all([carried.end(), ended.end().catch(() => undefined)]);
      await moveAcmeTo(primary);
    }
  });
});

describe('session mode: a server lost without a word', () => {
  it('a server that vanishes in the middle of a transaction (its host died) is told as 08006, never a bare close', async () => {
    // A TCP hop in front of the primary: cutting it is a host gone without a FATAL.
    const links = new Set<net.Socket>();
    const hop = net.createServer((inbound) => {
      const outbound = net.connect(primary.port, primary.host);
      for (const [a, b] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        links.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => hop.listen(0, primary.host, resolve));
    const port = (hop.address() as net.AddressInfo).port;
    feed.set({ ...route('acmes', primary, 'SESSION', acmeVerifier), port });
    await eventually(() => router.cache.lookup('acmes')?.port === port, 10_000, 'route through the hop');
    const c = await connect('acmes', 'acme', ACME_PW);
    try {
      await c.query('BEGIN');
      const running = c.query('select pg_sleep(10)').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      for (const s of links) s.destroy();
      const err = (await running) as { code?: string; message?: string };
      expect(err.code).toBe('08006');
      expect(err.message).toMatch(/the connection to the instance of tenant "acmes" was lost/);
    } finally {
      await c.end().catch(() => undefined);
      await moveAcmeTo(primary);
      for (const s of links) s.destroy();
      await new Promise((r) => hop.close(r));
    }
  });
});

describe('isolation under load', () => {
  it('two tenants with a user "alice" each, session and transaction mode, 24 clients at once: every query runs on its own tenant', async () => {
    const targets = [
      { tenant: 'acme', database: 'acme', password: ACME_PW, at: primary },
      { tenant: 'acmes', database: 'acme', password: ACME_PW, at: primary },
      { tenant: 'globex', database: 'globex', password: GLOBEX_PW, at: globex },
      { tenant: 'globexs', database: 'globex', password: GLOBEX_PW, at: globex },
    ];
    const mixups: string[] = [];
    let queries = 0;
    const worker = async (t: (typeof targets)[number], n: number): Promise<void> => {
      // Session-mode clients come and go (the pool has 2 servers per tenant); transaction-mode ones stay.
      const rounds = t.tenant.endsWith('s') ? 5 : 1;
      for (let r = 0; r < rounds; r++) {
        const c = await connect(t.tenant, t.database, t.password);
        try {
          for (let i = 0; i < 40 / rounds; i++) {
            const inTxn = (n + i) % 3 === 0;
            if (inTxn) await c.query('BEGIN');
            const row = (
              await c.query<{ db: string; u: string; port: number; addr: string }>(
                'select current_database() as db, current_user as u, inet_server_port() as port, host(inet_server_addr()) as addr',
              )
            ).rows[0]!;
            if (inTxn) await c.query('COMMIT');
            queries++;
            if (row.db !== t.database || row.u !== 'alice' || row.port !== t.at.port || row.addr !== t.at.host)
              mixups.push(`${t.tenant}: ${JSON.stringify(row)}`);
          }
        } finally {
          await c.end();
        }
      }
    };
    const session = targets.filter((t) => t.tenant.endsWith('s'));
    const txn = targets.filter((t) => !t.tenant.endsWith('s'));
    // Two per session tenant (its pool's size), eight per transaction tenant (four times the pool).
    await Promise.all([...session.flatMap((t) => [0, 1].map((n) => worker(t, n))), ...txn.flatMap((t) => Array.from({ length: 8 }, (_, n) => worker(t, n)))]);
    expect(mixups).toEqual([]);
    expect(queries).toBe(20 * 40);
  }, 120_000);
});
