// Scale to zero: a tenant idle for its interval is suspended (its postgres processes gone, its data
// kept) and the next client through any router wakes it; many clients at once cause one wake; a
// session idle in a transaction keeps the tenant awake; a wake on a host that gave the room away
// moves the tenant to a host with room (or, when no host may take it, is refused with the reason);
// a router restarted while the tenant sleeps still wakes it; a replica wakes after its primary.
import os from 'node:os';
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

  it('a wake on a host filled meanwhile moves the tenant to a host with room; psql through the router is held and served there', async () => {
    const f = fleet();
    const id = tenantName('nomad');
    const password = 'nomad-secret-1';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password });
    const setup = await psql(
      f.routers[0]!.endpoint,
      login,
      "create table trips (id int primary key, body text); insert into trips select g, 'trip ' || g from generate_series(1, 500) g",
    );
    expect(setup, setup.stderr).toMatchObject({ code: 0 });
    const before = await primaryOf(f, id);
    expect((await f.pgsctl(['tenant', 'suspend', id, '--wait', '--timeout', '60s'])).code).toBe(0);
    await suspended(f, id);
    // Fill its host while it sleeps: a tenant asking for all the memory left there.
    const hosts = await f.pgsctlJson<Array<{ id: string; capacity: { memoryMib: number }; allocated: { memoryMib: number } }>>(['host', 'list']);
    const host = hosts.find((x) => x.id === before.hostId)!;
    const hog = tenantName('hog');
    const free = host.capacity.memoryMib - host.allocated.memoryMib;
    await f.createTenant(hog, {
      password: 'hog-secret-1',
      access: false,
      extraArgs: ['--placement', `zone=z${before.hostIndex + 1}`, '--memory', `${free}Mi`],
    });
    try {
      // The router holds psql while the copy is built on another host and switched to (the router's
      // wake deadline is 30 s; psql waits a little longer than that).
      const started = Date.now();
      const woke = await psql(f.routers[1]!.endpoint, login, "select count(*) || ' ' || max(body) from trips", 40);
      const heldMs = Date.now() - started;
      console.log(
        `wake by a move: psql served after ${heldMs} ms (load average ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')})`,
      );
      expect(woke, woke.stderr).toMatchObject({ code: 0, stdout: '500 trip 99\n' });
      const after = await waitUntil(
        `${id} ACTIVE on another host`,
        () => f.tenant(id),
        (d) => d.tenant.status === 'ACTIVE',
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(after.tenant.placements).toHaveLength(1);
      const moved = after.tenant.placements[0]!;
      expect(moved.hostId).not.toBe(before.hostId);
      expect(after.route?.hostId).toBe(moved.hostId);
      // Its old instance and data are deleted; its postgres runs only on the new host.
      await waitUntil(
        'one postmaster, on the new host',
        () => tenantPostmasters(f, id),
        (p) => p.length === 1 && f.hosts[p[0]!.hostIndex]!.id === moved.hostId,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      // The move's own steps fill `tenant get`'s recent events: read the tenant's event log.
      const log = await waitUntil(
        'the wake by a move recorded',
        () => f.pgsctlJson<EventJson[]>(['events', '--tenant', id, '--limit', '200']),
        (e) => e.some((x) => x.action === 'tenant.woken' && x.details.how === 'move'),
        { timeoutMs: 10_000 },
      );
      expect(log.find((e) => e.action === 'tenant.wake')?.message).toMatch(
        new RegExp(
          `^waking up by moving the primary from ${before.hostId} to ${moved.hostId} \\(1 client\\(s\\) waiting at router:r2\\): its host ${before.hostId} has no room left for it: short of memory`,
        ),
      );
    } finally {
      // Its deletion goes on in the background: the cases after this one place nothing that needs it gone.
      await f.pgsctl(['tenant', 'delete', hog, '--yes']);
    }
  }, 150_000);

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
    const servedAt = Date.now();
    try {
      expect((await client.query<{ n: number }>('select count(*)::int as n from kept')).rows).toEqual([{ n: 50 }]);
      await waitUntil(
        'both postmasters back',
        () => tenantPostmasters(f, id),
        (p) => p.length === 2,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect((await events(f, id)).find((x) => x.action === 'tenant.wake')?.message).toMatch(/the primary starts first, then its 1 replica$/);
      // The replica streams from the woken primary again, and what is written now reaches it.
      await client.query('insert into kept values (51)');
      const primary = await primaryOf(f, id);
      const socketDir = path.join(f.hosts[primary.hostIndex]!.dataRoot, 'instances', id, 'sock');
      const streaming = await waitUntil(
        'the replica streams and replayed the new row',
        async () => {
          const admin = new pg.Client({ host: socketDir, port: primary.port, user: 'postgres', database: 'postgres' });
          await admin.connect();
          try {
            const r = await admin.query<{ state: string; caught: boolean; after_ms: number }>(
              `select state, replay_lsn >= pg_current_wal_lsn() as caught,
                      (extract(epoch from backend_start - pg_postmaster_start_time()) * 1000)::int as after_ms
                 from pg_stat_replication`,
            );
            return r.rows;
          } finally {
            await admin.end();
          }
        },
        (rows) => rows.length === 1 && rows[0]!.state === 'streaming' && rows[0]!.caught,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      // The replica starts once its primary runs, so it connects at its first try rather than after
      // PostgreSQL's 5 s retry interval; on a loaded machine the agents' rounds still take their time.
      const streamingMs = Date.now() - servedAt;
      const load = os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ');
      console.log(
        `replica connected ${streaming[0]!.after_ms} ms after its primary started; streaming and caught up ${streamingMs} ms after the first client was served (load average ${load})`,
      );
      expect((await f.tenant(id)).tenant.status).toBe('ACTIVE');
    } finally {
      await client.end();
    }
  }, 150_000);
});
