// The health round on a real PostgreSQL: busy backends as the idle-suspend decision needs them (an
// idle session is not work, a session idle in a transaction is, and so is a running query), and the
// kept connection it measures over where one is kept (a new backend per look cost 30-47 ms of CPU
// on this project's machines; a kept one holds 3.5-4 MiB).
import { startTestPostgres, type TestPostgres } from '@pgs/pg-testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HealthProbe } from './health.js';
import { InstanceAdmin } from './instance-admin.js';
import { KeptConnections } from './kept-connections.js';
import { testLogger } from './testing/test-env.js';

let server: TestPostgres;
let admin: InstanceAdmin;
let kept: KeptConnections;
let probe: HealthProbe;
let now = 1_000_000;

beforeAll(async () => {
  server = await startTestPostgres({ users: [{ name: 'app', password: 'app-health-pw' }] });
  admin = new InstanceAdmin(() => ({ host: server.socketDir, port: server.port, user: 'postgres', database: 'postgres' }), testLogger());
});

afterEach(() => kept?.close());

afterAll(async () => {
  await server?.stop();
});

function newProbe(sizeEveryMs?: number): HealthProbe {
  kept = new KeptConnections(admin, testLogger());
  probe = new HealthProbe(kept, () => now, testLogger(), sizeEveryMs);
  return probe;
}

/** The agent's backends on the server (its connections say application_name pgs-host-agent). */
async function agentBackends(): Promise<number[]> {
  const c = await server.adminClient();
  try {
    const r = await c.query<{ pid: number }>("select pid from pg_stat_activity where application_name = 'pgs-host-agent' order by pid");
    return r.rows.map((x) => x.pid);
  } finally {
    await c.end();
  }
}

describe('HealthProbe busy backends', () => {
  it('counts sessions in a transaction or a query, not idle ones (nor its own)', async () => {
    newProbe();
    const busy = async (): Promise<number> => (await probe.measure('t')).busyBackends;
    const a = new pg.Client({ connectionString: server.url('app', 'app-health-pw') });
    const b = new pg.Client({ connectionString: server.url('app', 'app-health-pw') });
    await a.connect();
    await b.connect();
    try {
      expect(await busy()).toBe(0);
      await a.query('begin');
      await a.query('select 1');
      expect(await busy()).toBe(1);
      const sleeping = b.query('select pg_sleep(1)');
      await new Promise((r) => setTimeout(r, 200));
      expect(await busy()).toBe(2);
      await sleeping;
      await a.query('commit');
      expect(await busy()).toBe(0);
      expect((await probe.measure('t')).connections).toBe(2);
    } finally {
      await a.end();
      await b.end();
    }
  });
});

describe('HealthProbe over a kept connection', () => {
  it('measures every round over one backend, and lets it go when told', async () => {
    newProbe();
    const first = await probe.measure('t');
    expect(first).toMatchObject({ up: true, acceptingConnections: true, role: 'PRIMARY' });
    const backends = await agentBackends();
    expect(backends).toHaveLength(1);
    for (let i = 0; i < 5; i++) expect((await probe.measure('t')).acceptingConnections).toBe(true);
    expect(await agentBackends()).toEqual(backends);
    kept.forget('t');
    await expect.poll(agentBackends, { timeout: 5000 }).toEqual([]);
  });

  it('keep: false measures over a connection of its own each time, and lets a kept one go', async () => {
    newProbe();
    await probe.measure('t');
    expect(await agentBackends()).toHaveLength(1);
    expect(await probe.measure('t', false)).toMatchObject({ up: true, acceptingConnections: true });
    await expect.poll(agentBackends, { timeout: 5000 }).toEqual([]);
    await probe.measure('t', false);
    await expect.poll(agentBackends, { timeout: 5000 }).toEqual([]);
  });

  it('answers on a fresh connection when the kept one died since the last round, with no false "not accepting"', async () => {
    newProbe();
    await probe.measure('t');
    const [old] = await agentBackends();
    const c = await server.adminClient();
    await c.query('select pg_terminate_backend($1)', [old]);
    await c.end();
    await expect.poll(agentBackends, { timeout: 5000 }).toEqual([]);
    const after = await probe.measure('t');
    expect(after.acceptingConnections).toBe(true);
    const backends = await agentBackends();
    expect(backends).toHaveLength(1);
    expect(backends[0]).not.toBe(old);
  });

  it('reads the database size again only once it is older than sizeEveryMs', async () => {
    newProbe(10_000);
    const before = (await probe.measure('t')).databaseSizeBytes;
    expect(before).toBeGreaterThan(0);
    const c = await server.adminClient();
    try {
      await c.query('create table if not exists grows as select g, repeat(md5(g::text), 20) as pad from generate_series(1, 20000) g');
      expect((await probe.measure('t')).databaseSizeBytes).toBe(before);
      now += 10_000;
      expect((await probe.measure('t')).databaseSizeBytes).toBeGreaterThan(before);
    } finally {
      await c.query('drop table if exists grows');
      await c.end();
    }
  });

  it('gives up a look the server does not answer (a frozen server) within the look timeout, and reports it not accepting', async () => {
    kept = new KeptConnections(admin, testLogger(), 300);
    probe = new HealthProbe(kept, () => now, testLogger());
    await probe.measure('t');
    const [backend] = await agentBackends();
    process.kill(backend!, 'SIGSTOP');
    try {
      const started = Date.now();
      expect(await probe.measure('t')).toMatchObject({ up: true, acceptingConnections: false });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      process.kill(backend!, 'SIGCONT');
    }
    expect((await probe.measure('t')).acceptingConnections).toBe(true);
  });

  it('reports a server that takes no connection as up and not accepting', async () => {
    kept = new KeptConnections(
      new InstanceAdmin(() => ({ host: server.socketDir, port: 1, user: 'postgres', database: 'postgres' }), testLogger(), 500),
      testLogger(),
    );
    probe = new HealthProbe(kept, () => now, testLogger());
    expect(await probe.measure('t')).toMatchObject({ up: true, acceptingConnections: false });
  });
});
