// Network partitions: one host's agent and its postgres run inside a network namespace
// the test creates (veth to the root namespace, the test range blackholed so nothing leaves the
// machine); the coordinator and routers stay in the root namespace. The link between that host
// and the coordinator is cut (packets dropped: no FIN, no RST) while clients can still reach the
// instance, and the test checks what the platform promises at that point. A fencing
// case too: a replicated primary cut off that way stops itself (lease) before its replica is promoted.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../harness/fleet.js';
import { createNetnsLab, netnsUnavailable, type NetnsLab } from '../harness/netns-lab.js';
import { attempt, queryOnce } from '../harness/pg-clients.js';
import { RowWriter } from '../harness/row-writer.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin, primaryOf, tenantPostmasters } from '../harness/tenant-probes.js';
import { tenantName } from '../harness/use-fleet.js';

/** Slack on top of TTL + grace: the reconcile tick, the route push and pgsctl's own start-up. */
const DETECTION_SLACK_MS = 3_000;
/** Lab number: the namespace's /24 is 10.231.<LAB>.0/24. */
const LAB = 26;
/** The partitioned host's index in the fleet (h2); h1 stays in the root namespace. */
const ISOLATED = 1;
/** h1: in the root namespace, on the veth's root-side address, which the namespace can reach (a replica must stream both ways). */
const ROOT_HOST = 0;

const unavailable = netnsUnavailable();
if (unavailable !== undefined) {
  console.warn(`\n!!!!! PARTITION SCENARIOS SKIPPED: ${unavailable} (they need root or CAP_NET_ADMIN: ip netns, veth, iptables) !!!!!\n`);
}

describe.skipIf(unavailable !== undefined)('network partition', () => {
  let lab: NetnsLab | undefined;
  let fleet: Fleet | undefined;
  const f = (): Fleet => {
    if (!fleet) throw new Error('fleet is not running (did beforeAll fail?)');
    return fleet;
  };

  beforeAll(async () => {
    lab = createNetnsLab(LAB);
    fleet = await startFleet({
      name: 'partition',
      block: 26,
      // Agents in a namespace start slowly on a loaded machine (15 s to join was seen).
      readyTimeoutMs: 180_000,
      agents: 2,
      routers: 2,
      // The namespace reaches the root namespace only through its veth: the coordinator listens there.
      coordinatorAddress: lab.rootAddress,
      isolatedHosts: {
        [ISOLATED]: { netns: lab.netns, address: lab.nsAddress, allowCidrs: ['127.0.0.0/8', lab.cidr] },
        // Still the root namespace (lab.rootNetns is only its name), so the partition never touches it.
        [ROOT_HOST]: { netns: lab.rootNetns, address: lab.rootAddress, allowCidrs: ['127.0.0.0/8', lab.cidr] },
      },
    });
  }, 420_000);

  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      if (fleet) console.error(`\n===== logs of fleet partition (test "${ctx.task.name}" failed) =====\n${fleet.logs(60)}\n`);
    });
  });

  afterAll(async () => {
    try {
      const leftovers = await fleet?.stop();
      const unexpected = (leftovers ?? []).filter((p) => !/postgres|postmaster/.test(p.cmdline) && p.cmdline !== '');
      if (unexpected.length > 0)
        throw new Error(`fleet partition left processes that ignored SIGTERM: ${unexpected.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
    } finally {
      fleet = undefined;
      lab?.teardown();
      lab = undefined;
    }
  }, 60_000);

  it('host cut off from the coordinator: DOWN within TTL + grace, routers refuse with 57P03 host down, the instance keeps its data on its address and is not re-created elsewhere; the link heals and it serves again', async () => {
    const fl = f();
    const l = lab as NetnsLab;
    const isolated = fl.hosts[ISOLATED];
    if (!isolated) throw new Error('isolated host expected');
    const id = tenantName('cut');
    const password = 'cut-secret-12';
    // Only the isolated host may take the tenant; h1 is uncordoned again so it is a candidate during the cut.
    await fl.pgsctlJson(['host', 'cordon', 'h1']);
    try {
      await fl.createTenant(id, { password });
    } finally {
      await fl.pgsctlJson(['host', 'uncordon', 'h1']);
    }
    const primary = await primaryOf(fl, id);
    expect(primary.hostId).toBe(isolated.id);
    expect(primary.address).toBe(l.nsAddress);
    const direct = { host: primary.address, port: primary.port, instance: true };
    const login = ownerLogin(id, password);
    await queryOnce(fl.routers[0]?.endpoint ?? direct, login, 'create table kept as select g as id, md5(g::text) as h from generate_series(1, 500) g');
    const checksumSql = "select md5(string_agg(h, ',' order by id)) as c from kept";
    const checksum = await queryOnce<{ c: string }>(direct, login, checksumSql);

    const grpcPort = Number(fl.coordinatorGrpc.split(':').pop());
    const cutAt = Date.now();
    l.partition(grpcPort, true);
    try {
      await waitUntil(
        `host ${isolated.id} DOWN while cut off`,
        () => fl.hostStates(),
        (s) => s[isolated.id] === 'DOWN',
        { timeoutMs: fl.timing.hostTtlMs + fl.timing.hostDownGraceMs + DETECTION_SLACK_MS + 5_000, intervalMs: 100 },
      );
      expect(Date.now() - cutAt).toBeLessThan(fl.timing.hostTtlMs + fl.timing.hostDownGraceMs + DETECTION_SLACK_MS);
      const details = await waitUntil(
        `tenant ${id} UNAVAILABLE`,
        () => fl.tenant(id),
        (d) => d.tenant.status === 'UNAVAILABLE',
        { timeoutMs: 5_000, intervalMs: 100 },
      );
      expect(details.route).toMatchObject({ state: 'HOST_DOWN', hostId: isolated.id });
      for (const r of fl.routers) {
        const refused = await waitUntil(
          `router ${r.id} answers host down`,
          () => attempt(r.endpoint, login),
          (a) => !a.ok && a.code === '57P03',
          { timeoutMs: 5_000, intervalMs: 50 },
        );
        if (!refused.ok) expect(refused.message).toMatch(/host is down/);
      }
      // The instance itself is fine and still reachable on its host's address (only the control link is cut).
      expect(await queryOnce(direct, login, checksumSql)).toEqual(checksum);
      // Never an empty database elsewhere, although h1 is a ready candidate.
      expect(tenantPostmasters(fl, id).map((p) => p.hostIndex)).toEqual([ISOLATED]);
      expect((await fl.tenant(id)).tenant.placements.map((p) => p.hostId)).toEqual([isolated.id]);
      expect(isolated.process.running).toBe(true);
    } finally {
      l.partition(grpcPort, false);
    }

    await waitUntil(
      `host ${isolated.id} READY after the link heals`,
      () => fl.hostStates(),
      (s) => s[isolated.id] === 'READY',
      { timeoutMs: 40_000, intervalMs: 200 },
    );
    await waitUntil(
      `tenant ${id} ACTIVE after the link heals`,
      async () => (await fl.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await fl.waitServing(login);
    for (const r of fl.routers) expect(await queryOnce(r.endpoint, login, checksumSql)).toEqual(checksum);
  }, 180_000);

  it('fencing: a primary cut off from the coordinator stops taking writes before its replica is promoted; no acknowledged row is lost; it rejoins as a replica when the link heals', async () => {
    const fl = f();
    const l = lab as NetnsLab;
    const isolated = fl.hosts[ISOLATED];
    const rooted = fl.hosts[ROOT_HOST];
    if (!isolated || !rooted) throw new Error('both hosts expected');
    const id = tenantName('fence');
    const password = 'fence-secret-1';
    const login = ownerLogin(id, password);
    // Placement is all-or-nothing (a cordoned h1 would leave the replica nowhere): place it, then switch the primary over to the isolated host if needed.
    await fl.createTenant(id, { password, replicas: 1, syncReplicas: 1 });
    const streaming =
      (hostId: string) =>
      (ms: MemberJson[]): boolean =>
        ms.some((m) => m.hostId === hostId && m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up);
    if ((await primaryOf(fl, id)).hostIndex !== ISOLATED) {
      await waitUntil(`replica of ${id} streaming on ${isolated.id}`, () => members(fl, id), streaming(isolated.id), { timeoutMs: 30_000, intervalMs: 200 });
      const out = await fl.pgsctl(['tenant', 'switchover', id, '--to', isolated.id]);
      expect(out.code, out.stderr).toBe(0);
    }
    await waitUntil(
      `tenant ${id} ACTIVE`,
      async () => (await fl.tenant(id)).tenant.status,
      (s) => s === 'ACTIVE',
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    await waitUntil(`replica of ${id} streaming on ${rooted.id}`, () => members(fl, id), streaming(rooted.id), { timeoutMs: 30_000, intervalMs: 200 });
    const primary = await primaryOf(fl, id);
    expect(primary.hostIndex).toBe(ISOLATED);
    expect(primary.address).toBe(l.nsAddress);
    const direct = { host: primary.address, port: primary.port, instance: true };
    await queryOnce(direct, login, 'create table w (id int primary key)');

    const writer = new RowWriter(direct, login, { table: 'w', connectTimeoutMs: 1000 });
    writer.start();
    await waitUntil(
      'writer has committed rows on the old primary',
      () => writer.acked.length,
      (n) => n >= 50,
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    const grpcPort = Number(fl.coordinatorGrpc.split(':').pop());
    const cutAt = Date.now();
    l.partition(grpcPort, true);
    let promotedAt: number;
    try {
      const after = await waitUntil(
        `tenant ${id} promoted on ${rooted.id}`,
        () => primaryOf(fl, id),
        (p) => p.hostIndex === ROOT_HOST,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      expect(after.address).toBe(l.rootAddress);
      const events = await fl.pgsctlJson<EventJson[]>(['events', '--tenant', id, '--limit', '200']);
      const promote = events.find((e) => e.action === 'failover.promote' && e.hostId === rooted.id);
      if (!promote?.time) throw new Error(`no failover.promote event for ${id}: ${JSON.stringify(events.map((e) => e.action))}`);
      promotedAt = Date.parse(promote.time);
      expect(events.find((e) => e.action === 'failover.fenced')?.details).toMatchObject({ via: 'lease' });
      // A few more tries after the promotion: the old primary takes none of them.
      const triesAtPromotion = writer.tries;
      const ackedAtPromotion = writer.acked.length;
      await waitUntil(
        'five more writes tried on the old primary',
        () => writer.tries,
        (n) => n >= triesAtPromotion + 5,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      expect(writer.acked.length).toBe(ackedAtPromotion);
    } finally {
      await writer.stop();
    }
    const stoppedAt = writer.firstFailureAfter(cutAt);
    const lastAck = writer.ackedAt.at(-1) ?? 0;
    console.log(
      `fencing: cut -> old primary refused writes ${(stoppedAt ?? NaN) - cutAt} ms, cut -> promotion decided ${promotedAt - cutAt} ms (last direct ack ${lastAck - cutAt} ms after the cut; ${writer.acked.length} rows acknowledged, failures: ${[...new Set(writer.failures.map((x) => x.code))].join(', ')})`,
    );
    // (1) Fenced before promoted: the old primary's last acknowledged write and its first refusal both precede the promotion.
    expect(stoppedAt).toBeDefined();
    expect(stoppedAt ?? Infinity).toBeLessThan(promotedAt);
    expect(lastAck).toBeLessThan(promotedAt);
    // Neither host became a second primary while cut off (the old one is stopped, not just unreachable).
    expect(tenantPostmasters(fl, id).map((p) => p.hostIndex)).toEqual([ROOT_HOST]);

    // (2) Writes through the router reach the new primary; every acknowledged row (old and new) is there.
    await fl.waitServing(login, 30_000);
    const router = fl.routers[0]?.endpoint ?? direct;
    await queryOnce(router, login, 'insert into w values (-1)');
    const rows = await queryOnce<{ id: number }>(router, login, 'select id from w order by id');
    const present = new Set(rows.map((r) => r.id));
    expect(writer.acked.filter((a) => !present.has(a))).toEqual([]);
    expect(present.has(-1)).toBe(true);

    // (3) The link heals: the old primary is rewound into a replica of the new one, never a second primary.
    const primariesSeen = new Set<string>();
    const healedAt = Date.now();
    l.partition(grpcPort, false);
    const rejoined = await waitUntil(
      `old primary of ${id} back as a replica`,
      async () => {
        const ms = await members(fl, id);
        // Only reports made after the heal: the coordinator still shows the cut-off host's last one from before the cut.
        for (const m of ms) if (m.health?.role === 'PRIMARY' && m.health.up && Date.parse(m.health.checkedAt ?? '') >= healedAt) primariesSeen.add(m.hostId);
        return ms;
      },
      (ms) => ms.some((m) => m.hostId === isolated.id && m.role === 'REPLICA' && m.health?.role === 'REPLICA' && m.health.up),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect([...primariesSeen]).toEqual([rooted.id]);
    expect(rejoined.filter((m) => m.health?.role === 'PRIMARY' && m.health.up).map((m) => m.hostId)).toEqual([rooted.id]);
    // It follows the new primary: a row written through the router now reaches it (it is the synchronous standby again).
    await queryOnce(router, login, 'insert into w values (-2)');
    await waitUntil(
      'row -2 on the rejoined replica',
      () => queryOnce<{ n: number }>(direct, login, 'select count(*)::int as n from w where id = -2'),
      (r) => r[0]?.n === 1,
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  }, 240_000);
});

interface MemberJson {
  hostId: string;
  role: string;
  health: { up: boolean; role: string; checkedAt: string | null } | null;
}

interface EventJson {
  action: string;
  hostId?: string;
  time: string | null;
  details?: Record<string, unknown>;
}

async function members(fl: Fleet, id: string): Promise<MemberJson[]> {
  return (await fl.tenant(id)).tenant.placements as unknown as MemberJson[];
}
