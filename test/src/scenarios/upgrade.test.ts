// Major upgrade by logical replication, real processes end to end: a tenant on PostgreSQL 15 is
// upgraded to 18 (server binaries from apps/host-agent/scripts/setup-postgres-versions.sh) under a
// continuous writer, a reader and a prober through the router; no acknowledged write is lost, the
// longest pause a client saw is printed, and `select version()` says 18 after. A tenant holding a
// large object is refused up front with the reason. A rollback under a writer through the router
// gives the tenant its kept 15 instance back with its data as of the switch, with no refused
// connection: logical replication ran one way only (15 -> 18), so what was written on 18 after the
// switch is not on 15, and the CLI says so.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { SwitchLoad } from '../harness/switch-load.js';
import { ownerLogin, primaryOf } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';
import type { TenantJson } from '../harness/views.js';

const PG18 = '/var/lib/pgs/postgres/18/bin/postgres';
const have18 = fs.existsSync(PG18);
if (!have18)
  console.warn(`upgrade scenario skipped: ${PG18} is missing; run apps/host-agent/scripts/setup-postgres-versions.sh (as root) to install PostgreSQL 18`);

interface UpgradeJson {
  phase: string;
  fromMajor: number;
  toMajor: number;
  fromHostId: string;
  toHostId: string;
  copyMs: number;
  switchMs: number;
}

type TenantWithUpgrade = TenantJson & { upgrade: UpgradeJson | null };

describe.skipIf(!have18)('major upgrade 15 -> 18 by logical replication', () => {
  const fleet = useFleet({ name: 'upgrade', block: 42, agents: 2, routers: 1, readyTimeoutMs: 120_000 }, 240_000);
  const tenant = async (id: string): Promise<TenantWithUpgrade> => (await fleet().tenant(id)).tenant as TenantWithUpgrade;

  it('upgrades under a writer through the router: no acknowledged write lost, version 18 after; a rollback returns 15', async () => {
    const f = fleet();
    const id = tenantName('up');
    const password = 'upgrade-secret-1';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password, extraArgs: ['--version', '15'] });
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await queryOnce(router.endpoint, login, 'create table acked (id bigint primary key); create table rolled (id bigint primary key)');
    await queryOnce(router.endpoint, login, 'create table filler as select g as id, md5(g::text) as v from generate_series(1, 20000) g');
    await queryOnce(router.endpoint, login, 'alter table filler add primary key (id)');
    await queryOnce(
      router.endpoint,
      login,
      "create table numbered (n bigserial primary key, note text); insert into numbered (note) select 'before' from generate_series(1, 100)",
    );
    const before = await primaryOf(f, id);
    expect((await queryOnce<{ v: string }>(router.endpoint, login, 'select version() as v'))[0]?.v).toMatch(/^PostgreSQL 15\./);

    const load = new SwitchLoad(router.endpoint, login, 'acked');
    load.start();
    await waitUntil(
      'the writer has committed rows',
      () => load.stats.acked.length,
      (n) => n >= 50,
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const started = Date.now();
    const out = await f.pgsctl(['tenant', 'upgrade', id, '--to', '18', '--wait', '-o', 'json']);
    expect(out.code, out.stderr).toBe(0);
    const answer = JSON.parse(out.stdout) as { upgrade: UpgradeJson };
    const acksAtEnd = load.stats.acked.length;
    await waitUntil(
      'writes go on after the upgrade',
      () => load.stats.acked.length,
      (n) => n >= acksAtEnd + 50,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await load.stop();
    const pause = load.longestPause(started);
    const codes = [...new Set(load.stats.failures.map((x) => `${x.client}:${x.code}`))].join(', ');
    console.log(
      `upgrade 15 -> 18: ${Date.now() - started} ms in all (copy ${answer.upgrade.copyMs} ms, switch hold ${answer.upgrade.switchMs} ms); ` +
        `longest client pause ${Math.round(pause)} ms; ${load.stats.acked.length} writes acknowledged; ${load.stats.connects} connections, ` +
        `${load.stats.connectFailures} failed; ${load.stats.failures.length} client errors${codes ? ` (${codes})` : ''}`,
    );

    // The tenant runs 18 on the other host, with every acknowledged write and the sequences carried on.
    expect((await queryOnce<{ v: string }>(router.endpoint, login, 'select version() as v'))[0]?.v).toMatch(/^PostgreSQL 18\./);
    const after = await primaryOf(f, id);
    expect(after.hostId).toBe(answer.upgrade.toHostId);
    expect(after.hostId).not.toBe(before.hostId);
    const rows = await queryOnce<{ id: string }>(router.endpoint, login, 'select id from acked');
    const present = new Set(rows.map((r) => Number(r.id)));
    expect(load.stats.acked.filter((a) => !present.has(a))).toEqual([]);
    expect(await queryOnce(router.endpoint, login, 'select count(*)::int as n from filler')).toEqual([{ n: 20000 }]);
    expect(await queryOnce(router.endpoint, login, "insert into numbered (note) values ('on 18') returning n::int as n")).toEqual([{ n: 101 }]);
    const t = await tenant(id);
    expect(t.spec.version).toBe('18');
    await waitUntil(
      `the old instance of ${id} stopped and kept`,
      () => tenant(id),
      (x) => x.upgrade?.phase === 'kept',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const shown = await f.pgsctl(['tenant', 'get', id, '-o', 'table']);
    expect(shown.stdout).toMatch(/Upgrade:\s+15 -> 18 .*kept/);

    // Rollback under a writer through the router: the kept 15 instance starts while clients still
    // use 18, then the routers hold them while the route goes back, so no new connection is refused.
    const back15 = new SwitchLoad(router.endpoint, login, 'rolled');
    back15.start();
    await waitUntil(
      'the rollback writer has committed rows',
      () => back15.stats.acked.length,
      (n) => n >= 20,
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const rollbackStarted = Date.now();
    const rolled = await f.pgsctl(['tenant', 'upgrade', id, '--rollback', '--wait', '-o', 'table']);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toMatch(/rolled back.*writes made on the new major since the switch are gone/);
    const rolledAcks = back15.stats.acked.length;
    await waitUntil(
      'writes go on after the rollback',
      () => back15.stats.acked.length,
      (n) => n >= rolledAcks + 20,
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await back15.stop();
    const rollbackCodes = [...new Set(back15.stats.failures.map((x) => `${x.client}:${x.code}`))].join(', ');
    console.log(
      `rollback 18 -> 15: ${Date.now() - rollbackStarted} ms; longest client pause ${Math.round(back15.longestPause(rollbackStarted))} ms; ` +
        `${back15.stats.connects} connections, ${back15.stats.connectFailures} failed; ${back15.stats.failures.length} client errors${rollbackCodes ? ` (${rollbackCodes})` : ''}`,
    );
    expect(back15.stats.connectFailures).toBe(0);
    await f.waitServing(login, 60_000);
    expect((await queryOnce<{ v: string }>(router.endpoint, login, 'select version() as v'))[0]?.v).toMatch(/^PostgreSQL 15\./);
    expect((await primaryOf(f, id)).hostId).toBe(before.hostId);
    expect((await tenant(id)).spec.version).toBe('15');
    expect((await tenant(id)).upgrade).toBeNull();
    // 15 holds what it had at the switch (a part of what 18 had); the writes made on 18 are not there.
    const back = (await queryOnce<{ id: string }>(router.endpoint, login, 'select id from acked')).map((r) => Number(r.id));
    expect(back.length).toBeGreaterThan(0);
    expect(back.filter((x) => !present.has(x))).toEqual([]);
    expect(back.length).toBeLessThan(present.size);
    expect(await queryOnce(router.endpoint, login, "select count(*)::int as n from numbered where note = 'on 18'")).toEqual([{ n: 0 }]);
    expect(await queryOnce(router.endpoint, login, 'select count(*)::int as n from filler')).toEqual([{ n: 20000 }]);
  }, 400_000);

  it('refuses a tenant with a large object, naming the reason and the database', async () => {
    const f = fleet();
    const id = tenantName('uplo');
    const password = 'upgrade-secret-1';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password, extraArgs: ['--version', '15'] });
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await queryOnce(router.endpoint, login, 'select lo_create(0)');
    const out = await f.pgsctl(['tenant', 'upgrade', id, '--to', '18']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/logical replication does not carry large objects/);
    expect(out.stderr).toMatch(new RegExp(`${id}: 1\\b`));
    expect(out.stderr).toMatch(/\[LARGE_OBJECTS\]/);
    // Nothing started: the tenant serves on 15 where it was.
    expect((await tenant(id)).upgrade).toBeNull();
    expect((await queryOnce<{ v: string }>(router.endpoint, login, 'select version() as v'))[0]?.v).toMatch(/^PostgreSQL 15\./);
  }, 120_000);
});
