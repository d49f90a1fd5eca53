// Scenarios "agent restart" and "host loss": instances outlive their agent and are adopted
// (same postmaster) when it comes back; a whole host lost is marked DOWN within TTL + grace, its
// replica-less tenant is refused with the "host down" error (never an empty database elsewhere)
// and serves its old data again when the host returns.
import { describe, expect, it } from 'vitest';
import { attempt, connect, queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin, primaryOf, tenantPostmaster, tenantPostmasters } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

/** Slack on top of TTL + grace: the reconcile tick, the route push and pgsctl's own start-up. */
const DETECTION_SLACK_MS = 3_000;

describe('host faults', () => {
  const fleet = useFleet({ name: 'hostfaults', block: 24, agents: 2, routers: 2 });

  it('kill -9 an agent: its tenants keep serving; restarted, it adopts the same postmaster', async () => {
    const f = fleet();
    const id = tenantName('adopt');
    const password = 'adopt-secret-1';
    await f.createTenant(id, { password });
    const primary = await primaryOf(f, id);
    const before = tenantPostmaster(f, primary.hostIndex, id);
    expect(before, 'postmaster of the tenant under its host data root').toBeDefined();
    const router = f.routers[0];
    if (!router || !before) throw new Error('unreachable');
    const session = await connect(router.endpoint, ownerLogin(id, password));
    const [{ started }] = (await session.query<{ started: string }>('select pg_postmaster_start_time()::text as started')).rows as [{ started: string }];

    await f.killAgent(primary.hostIndex, 'SIGKILL');
    expect(f.hosts[primary.hostIndex]?.process.running).toBe(false);
    // The tenant keeps serving: the open session and new ones through every router.
    await session.query('create table t as select 1 as x');
    for (const r of f.routers) expect(await queryOnce<{ x: number }>(r.endpoint, ownerLogin(id, password), 'select x from t')).toEqual([{ x: 1 }]);

    await f.restartAgent(primary.hostIndex);
    await waitUntil(
      `tenant ${id} ACTIVE after adoption`,
      async () => (await f.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(tenantPostmaster(f, primary.hostIndex, id)?.pid).toBe(before.pid);
    expect((await session.query<{ started: string }>('select pg_postmaster_start_time()::text as started')).rows).toEqual([{ started }]);
    await session.end();
  });

  it('host loss: DOWN within TTL + grace, a tenant without replicas is refused with "host down" (never re-created empty), and serves its old data when the host returns', async () => {
    const f = fleet();
    const id = tenantName('lost');
    const password = 'lost-secret-1';
    await f.createTenant(id, { password });
    const primary = await primaryOf(f, id);
    const router = f.routers[1];
    if (!router) throw new Error('router expected');
    await queryOnce(router.endpoint, ownerLogin(id, password), 'create table kept as select g as id, md5(g::text) as h from generate_series(1, 1000) g');
    const checksum = await queryOnce<{ c: string }>(router.endpoint, ownerLogin(id, password), "select md5(string_agg(h, ',' order by id)) as c from kept");

    const lostAt = Date.now();
    await f.stopHost(primary.hostIndex);
    const hostId = primary.hostId;
    await waitUntil(
      `host ${hostId} DOWN`,
      () => f.hostStates(),
      (s) => s[hostId] === 'DOWN',
      { timeoutMs: f.timing.hostTtlMs + f.timing.hostDownGraceMs + DETECTION_SLACK_MS + 5_000, intervalMs: 100 },
    );
    const detectedMs = Date.now() - lostAt;
    expect(detectedMs).toBeLessThan(f.timing.hostTtlMs + f.timing.hostDownGraceMs + DETECTION_SLACK_MS);

    const details = await waitUntil(
      `tenant ${id} UNAVAILABLE`,
      () => f.tenant(id),
      (d) => d.tenant.status === 'UNAVAILABLE',
      { timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(details.route).toMatchObject({ state: 'HOST_DOWN', hostId });
    for (const r of f.routers) {
      const refused = await waitUntil(
        `router ${r.id} answers host down`,
        () => attempt(r.endpoint, ownerLogin(id, password)),
        (a) => !a.ok && a.code === '57P03',
        { timeoutMs: 5_000, intervalMs: 50 },
      );
      if (!refused.ok) expect(refused.message).toMatch(/host is down/);
    }
    // Never an empty database elsewhere: no instance of the tenant on any other host, and it stays placed where its data is.
    expect(tenantPostmasters(f, id)).toEqual([]);
    expect((await f.tenant(id)).tenant.placements.map((p) => p.hostId)).toEqual([hostId]);

    // The host comes back (agent restarts; its instance was killed with it and is started again from its data).
    await f.restartAgent(primary.hostIndex);
    await waitUntil(
      `tenant ${id} ACTIVE again`,
      async () => (await f.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await f.waitServing(ownerLogin(id, password));
    for (const r of f.routers) {
      expect(await queryOnce(r.endpoint, ownerLogin(id, password), "select md5(string_agg(h, ',' order by id)) as c from kept")).toEqual(checksum);
    }
  });

  it('a frozen host (SIGSTOP: sockets stay open, nothing answers, as in a partition) is detected by heartbeat silence and recovers when it thaws', async () => {
    const f = fleet();
    const id = tenantName('frozen');
    const password = 'frozen-secret-1';
    await f.createTenant(id, { password });
    const primary = await primaryOf(f, id);
    const hostId = primary.hostId;
    await queryOnce(f.routers[0]?.endpoint ?? { host: '', port: 0 }, ownerLogin(id, password), 'create table survives as select 42 as answer');
    const frozenAt = Date.now();
    f.freezeHost(primary.hostIndex, true);
    try {
      // No FIN ever reaches the coordinator: only the missing heartbeats can tell it.
      await waitUntil(
        `host ${hostId} DOWN while frozen`,
        () => f.hostStates(),
        (s) => s[hostId] === 'DOWN',
        { timeoutMs: f.timing.hostTtlMs + f.timing.hostDownGraceMs + DETECTION_SLACK_MS + 5_000, intervalMs: 100 },
      );
      expect(Date.now() - frozenAt).toBeLessThan(f.timing.hostTtlMs + f.timing.hostDownGraceMs + DETECTION_SLACK_MS);
      await waitUntil(
        `tenant ${id} UNAVAILABLE`,
        async () => (await f.tenant(id)).tenant.status,
        (s) => s === 'UNAVAILABLE',
        { timeoutMs: 5_000, intervalMs: 100 },
      );
    } finally {
      f.freezeHost(primary.hostIndex, false);
    }
    await waitUntil(
      `host ${hostId} READY after thawing`,
      () => f.hostStates(),
      (s) => s[hostId] === 'READY',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await waitUntil(
      `tenant ${id} ACTIVE after thawing`,
      async () => (await f.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await f.waitServing(ownerLogin(id, password));
    for (const r of f.routers) expect(await queryOnce(r.endpoint, ownerLogin(id, password), 'select answer from survives')).toEqual([{ answer: 42 }]);
  });

  it('host loss with a synchronous replica: the tenant fails over and keeps every committed row', async () => {
    const f = fleet();
    const id = tenantName('ha');
    const password = 'ha-secret-12';
    await f.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const primary = await primaryOf(f, id);
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    const writer = await connect(router.endpoint, ownerLogin(id, password));
    await writer.query('create table acked (id int primary key)');
    let committed = 0;
    for (; committed < 200; committed++) await writer.query('insert into acked values ($1)', [committed]);
    await writer.end();
    await f.stopHost(primary.hostIndex);
    await waitUntil(
      `tenant ${id} failed over`,
      () => primaryOf(f, id),
      (p) => p.hostId !== primary.hostId,
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await f.waitServing(ownerLogin(id, password), 30_000);
    expect(await queryOnce(router.endpoint, ownerLogin(id, password), 'select count(*)::int as n from acked')).toEqual([{ n: committed }]);
  });
});
