// Scale to zero: a tenant idle for its interval is suspended (its postgres processes gone, its data
// kept) and the next client through any router wakes it; many clients at once cause one wake; a
// session idle in a transaction keeps the tenant awake; a host that gave the room away refuses the
// wake with the reason; a router restarted while the tenant sleeps still wakes it.
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Fleet } from '../harness/fleet.js';
import { attempt, connect, psql, queryOnce, type Login } from '../harness/pg-clients.js';
import { pause, waitUntil } from '../harness/poll.js';
import { ownerLogin, primaryOf, tenantPostmasters } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import type { TenantJson } from '../harness/views.js';

/** An event as `pgsctl tenant get -o json` lists it. */
interface EventJson {
  action: string;
  principal: string;
  message: string;
  details: Record<string, string>;
}

async function events(f: Fleet, id: string): Promise<EventJson[]> {
  return (await f.pgsctlJson<{ recentEvents: EventJson[] }>(['tenant', 'get', id])).recentEvents;
}

async function status(f: Fleet, id: string): Promise<string> {
  return (await f.tenant(id)).tenant.status;
}

async function suspended(f: Fleet, id: string, timeoutMs = 45_000): Promise<void> {
  await waitUntil(
    `${id} SUSPENDED`,
    () => status(f, id),
    (s) => s === 'SUSPENDED',
    { timeoutMs, intervalMs: 250 },
  );
  await waitUntil(
    `${id}'s postgres gone`,
    () => tenantPostmasters(f, id),
    (p) => p.length === 0,
    { timeoutMs: 30_000, intervalMs: 250 },
  );
}

describe('scale to zero', () => {
  // Generous start: on a loaded machine an agent may need tens of seconds to join.
  const fleet = useFleet({ name: 'suspend', block: 35, agents: 3, routers: 2, readyTimeoutMs: 150_000 }, 400_000);

  it('suspends after the idle interval with no postgres left, and psql through either router wakes it with all its data', async () => {
    const f = fleet();
    const id = tenantName('idle');
    const password = 'idle-secret-1';
    await f.createTenant(id, { password, extraArgs: ['--idle-suspend', '5s'] });
    const [r1, r2] = f.routers;
    if (!r1 || !r2) throw new Error('two routers expected');
    const session = await psql(
      r1.endpoint,
      ownerLogin(id, password),
      "create table notes (id int primary key, body text); insert into notes select g, 'note ' || g from generate_series(1, 300) g; select count(*) from notes",
    );
    expect(session, session.stderr).toMatchObject({ code: 0 });

    await suspended(f, id);
    const details = await f.tenant(id);
    expect(details.route?.state).toBe('SUSPENDED');
    expect(details.tenant.statusReason).toMatch(/^suspended at .*idle for \d+s \(policy 5s\)/);
    const listed = await f.pgsctl(['tenant', 'list', '-o', 'table']);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+SUSPENDED \\d+s`));
    await waitUntil(
      'suspended event',
      () => events(f, id),
      (e) => e.some((x) => x.action === 'tenant.suspended'),
      { timeoutMs: 10_000 },
    );

    for (const router of [r1, r2]) {
      const woke = await psql(router.endpoint, ownerLogin(id, password, 'user.tenant'), "select count(*) || ' ' || max(body) from notes");
      expect(woke, woke.stderr).toMatchObject({ code: 0, stdout: '300 note 99\n' });
      if (router === r1) await suspended(f, id);
    }
    // A wake's event is written on the suspend service's next tick, after the route already serves.
    const log = await waitUntil(
      'both wakes recorded',
      () => events(f, id),
      (e) => e.filter((x) => x.action === 'tenant.woken').length >= 2,
      { timeoutMs: 10_000 },
    );
    const woken = log.filter((e) => e.action === 'tenant.woken');
    expect(woken.length).toBeGreaterThanOrEqual(2);
    for (const w of woken) expect(Number(w.details.durationMs)).toBeGreaterThan(0);
    expect(log.filter((e) => e.action === 'tenant.suspended').every((e) => Number(e.details.durationMs) >= 0)).toBe(true);
  });

  it('ten clients at once wake the tenant once, and all of them are served', async () => {
    const f = fleet();
    const id = tenantName('crowd');
    const password = 'crowd-secret-1';
    await f.createTenant(id, { password });
    await queryOnce(f.routers[0]!.endpoint, ownerLogin(id, password), 'create table t (n int); insert into t values (42)');
    const s = await f.pgsctl(['tenant', 'suspend', id, '--wait', '--timeout', '60s']);
    expect(s.code, s.stderr).toBe(0);
    await suspended(f, id);
    const wakesBefore = (await events(f, id)).filter((e) => e.action === 'tenant.wake').length;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => queryOnce<{ n: number }>(f.routers[i % 2]!.endpoint, ownerLogin(id, password), 'select n from t')),
    );
    expect(results).toEqual(Array(10).fill([{ n: 42 }]));
    const wakes = (await events(f, id)).filter((e) => e.action === 'tenant.wake');
    expect(wakes.length - wakesBefore).toBe(1);
  });

  it('a session idle in a transaction keeps the tenant awake; once it commits the tenant suspends', async () => {
    const f = fleet();
    const id = tenantName('txn');
    const password = 'txn-secret-1';
    await f.createTenant(id, { password });
    // Straight to the instance, as a job on the host would: no router counts this client.
    const primary = await primaryOf(f, id);
    const direct = await connect({ host: primary.address, port: primary.port, instance: true }, ownerLogin(id, password));
    try {
      await direct.query('begin');
      await direct.query('select 1');
      // The policy only once the transaction is open (on a slow machine a create alone takes longer than 3 s).
      const update = await f.pgsctl(['tenant', 'update', id, '--idle-suspend', '3s']);
      expect(update.code, update.stderr).toBe(0);
      // Three times the interval, with the router reports and health rounds well inside it.
      const until = Date.now() + 10_000;
      while (Date.now() < until) {
        expect(await status(f, id)).toBe('ACTIVE');
        await pause(500);
      }
      await direct.query('commit');
      await suspended(f, id);
    } finally {
      await direct.end().catch(() => undefined);
    }
  });

  it('a wake on a host that gave the room away is refused with the reason; with room again it wakes', async () => {
    const f = fleet();
    const id = tenantName('evict');
    const password = 'evict-secret-1';
    // Host 3 (zone z3) is this test's alone: 64Gi of memory.
    await f.createTenant(id, { password, extraArgs: ['--placement', 'zone=z3'] });
    expect((await f.pgsctl(['tenant', 'suspend', id, '--wait', '--timeout', '60s'])).code).toBe(0);
    await suspended(f, id);
    const filler = tenantName('filler');
    await f.createTenant(filler, { password: 'filler-secret-1', access: false, extraArgs: ['--placement', 'zone=z3', '--memory', '64Gi'] });

    const refused = await attempt(f.routers[0]!.endpoint, ownerLogin(id, password));
    expect(refused).toMatchObject({ ok: false, code: '57P03' });
    if (!refused.ok) expect(refused.message).toBe(`tenant "${id}" is suspended and cannot be woken now`);
    const details = await f.tenant(id);
    expect(details.tenant.status).toBe('SUSPENDED');
    expect(details.tenant.statusReason).toMatch(/wake refused: its host h3 has no room left for it: short of memory/);
    const resume = await f.pgsctl(['tenant', 'resume', id]);
    expect(resume.code).not.toBe(0);
    expect(resume.stderr).toMatch(/cannot be woken: its host h3 has no room left/);

    expect((await f.pgsctl(['tenant', 'delete', filler, '--yes', '--wait', '--timeout', '60s'])).code).toBe(0);
    const rows = await queryOnce<{ ok: number }>(f.routers[0]!.endpoint, ownerLogin(id, password), 'select 1 as ok');
    expect(rows).toEqual([{ ok: 1 }]);
    expect(await status(f, id)).toBe('ACTIVE');
  });

  it('a router restarted while the tenant is suspended still wakes it', async () => {
    const f = fleet();
    const id = tenantName('restart');
    const password = 'restart-secret-1';
    const login: Login = ownerLogin(id, password);
    await f.createTenant(id, { password });
    expect((await f.pgsctl(['tenant', 'suspend', id, '--wait', '--timeout', '60s'])).code).toBe(0);
    await suspended(f, id);
    await f.killRouter(1, 'SIGTERM');
    await f.restartRouter(1);
    const rows = await queryOnce<{ who: string }>(f.routers[1]!.endpoint, login, 'select current_user as who');
    expect(rows).toEqual([{ who: id }]);
    const t: TenantJson = (await f.tenant(id)).tenant;
    expect(t.status).toBe('ACTIVE');
  });

  it('a tenant with a replica suspends with it, psql wakes both, and the replica streams again', async () => {
    const f = fleet();
    const id = tenantName('pair');
    const password = 'pair-secret-1';
    await f.createTenant(id, { password, replicas: 1, extraArgs: ['--idle-suspend', '5s'] });
    const router = f.routers[0]!;
    const session = await psql(
      router.endpoint,
      ownerLogin(id, password),
      'create table kept (id int primary key); insert into kept select generate_series(1, 50)',
    );
    expect(session, session.stderr).toMatchObject({ code: 0 });

    // Both members stop: no postgres of the tenant is left on any host.
    await suspended(f, id, 90_000);
    const asleep = (await f.tenant(id)).tenant;
    expect(asleep.statusReason).toMatch(/the primary and its 1 replica stopped$/);
    expect(asleep.suspendedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    await waitUntil(
      'suspended event for both members',
      () => events(f, id),
      (e) => e.some((x) => x.action === 'tenant.suspended' && x.message.startsWith('suspended: all 2 instances stopped')),
      { timeoutMs: 10_000 },
    );

    // The first client wakes both; it stays connected so the tenant stays awake while we look.
    const client = await connect(router.endpoint, ownerLogin(id, password), 60_000);
    try {
      expect((await client.query<{ n: number }>('select count(*)::int as n from kept')).rows).toEqual([{ n: 50 }]);
      await waitUntil(
        'both postmasters back',
        () => tenantPostmasters(f, id),
        (p) => p.length === 2,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect((await events(f, id)).find((x) => x.action === 'tenant.wake')?.message).toMatch(/the primary and its 1 replica start together$/);
      // The replica streams from the woken primary again, and what is written now reaches it.
      await client.query('insert into kept values (51)');
      const primary = await primaryOf(f, id);
      const socketDir = path.join(f.hosts[primary.hostIndex]!.dataRoot, 'instances', id, 'sock');
      await waitUntil(
        'the replica streams and replayed the new row',
        async () => {
          const admin = new pg.Client({ host: socketDir, port: primary.port, user: 'postgres', database: 'postgres' });
          await admin.connect();
          try {
            const r = await admin.query<{ state: string; caught: boolean }>(
              'select state, replay_lsn >= pg_current_wal_lsn() as caught from pg_stat_replication',
            );
            return r.rows;
          } finally {
            await admin.end();
          }
        },
        (rows) => rows.length === 1 && rows[0]!.state === 'streaming' && rows[0]!.caught,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect((await f.tenant(id)).tenant.status).toBe('ACTIVE');
    } finally {
      await client.end();
    }
  });
});
