// Issue 9, network partitions: one host's agent and its postgres run inside a network namespace
// the test creates (veth to the root namespace, the test range blackholed so nothing leaves the
// machine); the coordinator and routers stay in the root namespace. The link between that host
// and the coordinator is cut (packets dropped: no FIN, no RST) while clients can still reach the
// instance, and the test checks what the platform promises at that point.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type Fleet } from '../harness/fleet.js';
import { createNetnsLab, netnsUnavailable, type NetnsLab } from '../harness/netns-lab.js';
import { attempt, queryOnce } from '../harness/pg-clients.js';
import { waitUntil } from '../harness/poll.js';
import { ownerLogin, primaryOf, tenantPostmasters } from '../harness/tenant-probes.js';
import { tenantName } from '../harness/use-fleet.js';

/** Slack on top of TTL + grace: the reconcile tick, the route push and pgsctl's own start-up. */
const DETECTION_SLACK_MS = 3_000;
/** Lab number: the namespace's /24 is 10.231.<LAB>.0/24. */
const LAB = 26;
/** The partitioned host's index in the fleet (h2); h1 stays in the root namespace. */
const ISOLATED = 1;

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
      agents: 2,
      routers: 2,
      // The namespace reaches the root namespace only through its veth: the coordinator listens there.
      coordinatorAddress: lab.rootAddress,
      isolatedHosts: { [ISOLATED]: { netns: lab.netns, address: lab.nsAddress, allowCidrs: ['127.0.0.0/8', lab.cidr] } },
    });
  }, 180_000);

  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      if (fleet) console.error(`\n===== logs of fleet partition (test "${ctx.task.name}" failed) =====\n${fleet.logs(60)}\n`);
    });
  });

  afterAll(async () => {
    try {
      const leftovers = await fleet?.stop();
      const unexpected = (leftovers ?? []).filter((p) => !/postgres|postmaster/.test(p.cmdline) && p.cmdline !== '');
      if (unexpected.length > 0) throw new Error(`fleet partition left processes that ignored SIGTERM: ${unexpected.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
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
    const direct = { host: primary.address, port: primary.port };
    const login = ownerLogin(id, password);
    await queryOnce(fl.routers[0]?.endpoint ?? direct, login, 'create table kept as select g as id, md5(g::text) as h from generate_series(1, 500) g');
    const checksumSql = "select md5(string_agg(h, ',' order by id)) as c from kept";
    const checksum = await queryOnce<{ c: string }>(direct, login, checksumSql);

    const grpcPort = Number(fl.coordinatorGrpc.split(':').pop());
    const cutAt = Date.now();
    l.partition(grpcPort, true);
    try {
      await waitUntil(`host ${isolated.id} DOWN while cut off`, () => fl.hostStates(), (s) => s[isolated.id] === 'DOWN', { timeoutMs: fl.timing.hostTtlMs + fl.timing.hostDownGraceMs + DETECTION_SLACK_MS + 5_000, intervalMs: 100 });
      expect(Date.now() - cutAt).toBeLessThan(fl.timing.hostTtlMs + fl.timing.hostDownGraceMs + DETECTION_SLACK_MS);
      const details = await waitUntil(`tenant ${id} UNAVAILABLE`, () => fl.tenant(id), (d) => d.tenant.status === 'UNAVAILABLE', { timeoutMs: 5_000, intervalMs: 100 });
      expect(details.route).toMatchObject({ state: 'HOST_DOWN', hostId: isolated.id });
      for (const r of fl.routers) {
        const refused = await waitUntil(`router ${r.id} answers host down`, () => attempt(r.endpoint, login), (a) => !a.ok && a.code === '57P03', { timeoutMs: 5_000, intervalMs: 50 });
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

    await waitUntil(`host ${isolated.id} READY after the link heals`, () => fl.hostStates(), (s) => s[isolated.id] === 'READY', { timeoutMs: 40_000, intervalMs: 200 });
    await waitUntil(`tenant ${id} ACTIVE after the link heals`, async () => (await fl.tenant(id)).tenant.status, (s) => s === 'ACTIVE', { timeoutMs: 20_000, intervalMs: 200 });
    await fl.waitServing(login);
    for (const r of fl.routers) expect(await queryOnce(r.endpoint, login, checksumSql)).toEqual(checksum);
  });

  // Missing in the host agent (apps/host-agent/src/agent-loop.ts, 'leaseRenewal'): lease fencing
  // (InstanceSpec.fence_on_lease_expiry: stop accepting writes when no renewal arrived within the
  // lease) and standby creation from InstanceSpec.primary_address. Without both, a replicated tenant
  // never reaches ACTIVE and a cut-off primary keeps taking writes. Un-skip when the agent has them.
  it.skip('fencing: a primary cut off from the coordinator stops taking writes before its replica is promoted', async () => {
    const fl = f();
    const l = lab as NetnsLab;
    const id = tenantName('fence');
    const password = 'fence-secret-1';
    await fl.pgsctlJson(['host', 'cordon', 'h1']);
    await fl.createTenant(id, { password, replicas: 1, syncReplicas: 1, wait: false });
    await fl.pgsctlJson(['host', 'uncordon', 'h1']);
    await waitUntil(`tenant ${id} ACTIVE`, async () => (await fl.tenant(id)).tenant.status, (s) => s === 'ACTIVE', { timeoutMs: 60_000, intervalMs: 200 });
    const primary = await primaryOf(fl, id);
    expect(primary.hostIndex).toBe(ISOLATED);
    const direct = { host: primary.address, port: primary.port };
    const login = ownerLogin(id, password);
    await queryOnce(direct, login, 'create table w (id int primary key)');
    const grpcPort = Number(fl.coordinatorGrpc.split(':').pop());
    const acked: number[] = [];
    let tries = 0;
    let writing = true;
    // Writes straight to the old primary's address for the whole cut: each acknowledged one must survive.
    const writer = (async () => {
      for (let n = 0; writing; n++, tries++) {
        const a = await attempt(direct, login);
        if (a.ok && (await queryOnce(direct, login, 'insert into w values ($1)', [n]).then(() => true, () => false))) acked.push(n);
      }
    })();
    l.partition(grpcPort, true);
    try {
      await waitUntil(`tenant ${id} promoted elsewhere`, () => primaryOf(fl, id), (p) => p.hostIndex !== ISOLATED, { timeoutMs: 60_000, intervalMs: 200 });
      const ackedAtPromotion = acked.length;
      const triesAtPromotion = tries;
      // Fenced: once the replica is primary, the old one takes no more writes (a few more tries prove it).
      await waitUntil('five more writes tried on the old primary', async () => tries, (n) => n >= triesAtPromotion + 5, { timeoutMs: 30_000, intervalMs: 100 });
      expect(acked.length).toBe(ackedAtPromotion);
    } finally {
      writing = false;
      await writer;
      l.partition(grpcPort, false);
    }
    await fl.waitServing(login, 30_000);
    const rows = await queryOnce<{ id: number }>(fl.routers[0]?.endpoint ?? direct, login, 'select id from w order by id');
    expect(rows.map((r) => r.id)).toEqual(expect.arrayContaining(acked));
  });
});
