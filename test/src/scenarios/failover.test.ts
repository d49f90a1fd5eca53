// Failover scenarios, real processes end to end: a tenant with one synchronous replica keeps every
// acknowledged row when its primary's host is lost while a client writes through the router, the
// router takes writes again after the failover (the time from the kill to the first accepted write
// is printed), the old primary rejoins as a replica when its host returns, and a planned
// switchover loses nothing.
import { describe, expect, it } from 'vitest';
import { queryOnce } from '../harness/pg-clients.js';
import { RowWriter } from '../harness/row-writer.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin, primaryOf } from '../harness/tenant-probes.js';
import { tenantName, useFleet } from '../harness/use-fleet.js';

interface HealthJson {
  up: boolean;
  role: string;
  timeline: number;
  lsn: string;
}

interface MemberJson {
  hostId: string;
  role: string;
  realization: string;
  health: HealthJson | null;
}

describe('failover with a synchronous replica', () => {
  const fleet = useFleet({ name: 'failover', block: 27, agents: 2, routers: 1 });

  const members = async (id: string): Promise<MemberJson[]> => (await fleet().tenant(id)).tenant.placements as unknown as MemberJson[];

  it('host of the primary killed under a continuous writer: every acknowledged row survives, writes resume through the router, and the old primary rejoins as a replica', async () => {
    const f = fleet();
    const id = tenantName('ha');
    const password = 'ha-secret-12';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await queryOnce(router.endpoint, login, 'create table acked (id int primary key)');
    const before = await primaryOf(f, id);
    await waitUntil(
      `replica of ${id} streaming`,
      () => members(id),
      (ms) => ms.some((m) => m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    const writer = new RowWriter(router.endpoint, login, { table: 'acked', connectTimeoutMs: 2000 });
    writer.start();
    await waitUntil(
      'writer has committed rows',
      () => writer.acked.length,
      (n) => n >= 100,
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const killedAt = Date.now();
    await f.stopHost(before.hostIndex);
    const resumed = await waitUntil(
      'a write accepted through the router after the kill',
      () => writer.firstAckAfter(killedAt),
      (t) => t !== undefined,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    const failoverMs = (resumed ?? 0) - killedAt;
    const ackedAtResume = writer.acked.length;
    await waitUntil(
      'more writes after the failover',
      () => writer.acked.length,
      (n) => n >= ackedAtResume + 20,
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    await writer.stop();
    console.log(
      `failover: host kill -> first write accepted through the router: ${failoverMs} ms (${writer.acked.length} rows acknowledged, ${writer.failures.length} failed attempts: ${[...new Set(writer.failures.map((x) => x.code))].join(', ')})`,
    );

    const after = await primaryOf(f, id);
    expect(after.hostId).not.toBe(before.hostId);
    // Zero acknowledged commits lost.
    const rows = await queryOnce<{ id: number }>(router.endpoint, login, 'select id from acked order by id');
    const present = new Set(rows.map((r) => r.id));
    const lost = writer.acked.filter((a) => !present.has(a));
    expect(lost).toEqual([]);
    const events = await f.pgsctlJson<Array<{ action: string; details?: Record<string, unknown> }>>(['events', '--tenant', id]);
    expect(events.map((e) => e.action)).toEqual(expect.arrayContaining(['failover.started', 'failover.fenced', 'failover.completed']));

    // The host returns: its old primary is rewound into a replica of the new one, never a second primary.
    await f.restartAgent(before.hostIndex);
    const rejoined = await waitUntil(
      `old primary of ${id} back as a replica`,
      () => members(id),
      (ms) => ms.some((m) => m.hostId === before.hostId && m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(rejoined.filter((m) => m.health?.role === 'PRIMARY' && m.health.up).map((m) => m.hostId)).toEqual([after.hostId]);
    // It follows the new primary: a row written now reaches it (it is the synchronous standby again).
    await queryOnce(router.endpoint, login, 'insert into acked (id) values (-1)');
    const newTimeline = rejoined.find((m) => m.hostId === after.hostId)?.health?.timeline ?? 0;
    await waitUntil(
      'old primary on the new timeline',
      () => members(id),
      (ms) => (ms.find((m) => m.hostId === before.hostId)?.health?.timeline ?? 0) >= newTimeline && newTimeline >= 2,
      { timeoutMs: 20_000, intervalMs: 250 },
    );
  }, 240_000);

  it('switchover loses nothing: rows committed before it are all on the new primary, and writes resume', async () => {
    const f = fleet();
    const id = tenantName('sw');
    const password = 'sw-secret-123';
    const login = ownerLogin(id, password);
    await f.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const router = f.routers[0];
    if (!router) throw new Error('router expected');
    await waitUntil(
      `replica of ${id} streaming`,
      () => members(id),
      (ms) => ms.some((m) => m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await queryOnce(router.endpoint, login, 'create table acked as select g as id from generate_series(1, 5000) g');
    const before = await primaryOf(f, id);
    const target = (await members(id)).find((m) => m.role === 'REPLICA')?.hostId ?? '';
    const started = Date.now();
    const out = await f.pgsctl(['tenant', 'switchover', id, '--to', target]);
    expect(out.code, out.stderr).toBe(0);
    console.log(`switchover to ${target}: ${Date.now() - started} ms (pgsctl round trip)`);
    const after = await primaryOf(f, id);
    expect(after.hostId).toBe(target);
    expect(after.hostId).not.toBe(before.hostId);
    await f.waitServing(login, 20_000);
    expect(await queryOnce(router.endpoint, login, 'select count(*)::int as n from acked')).toEqual([{ n: 5000 }]);
    await queryOnce(router.endpoint, login, 'insert into acked values (5001)');
    await waitUntil(
      `old primary of ${id} a replica`,
      () => members(id),
      (ms) => ms.some((m) => m.hostId === before.hostId && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  }, 180_000);
});
