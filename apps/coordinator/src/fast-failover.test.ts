/**
 * Fast failure detection, coordinator side: a real coordinator in process, fake agents on real
 * gRPC streams, with heartbeat timing slow enough (ttl 4 s + grace 4 s) that only the fast path
 * can be fast. A broken agent stream confirmed by a replica that lost its sender fails over at
 * once (no lease wait); a broken stream alone waits for the short confirmation and then the lease;
 * a goodbye is not a failure; a single-node tenant answers "host down" after the confirmation.
 * Each failover is a row of the operations table while it runs.
 */
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { BackendFailureKind, HostState, InstanceRole, RouteState, TenantStatus } from '@pgs/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';
import { openStore } from './store/open-store.js';

const LEASE_MS = 2000;
const CONFIRM_MS = 600;
const agents: FakeAgent[] = [];
let hostSeq = 0;
let group = 0;

async function agent(h: Harness): Promise<FakeAgent> {
  hostSeq++;
  const a = new FakeAgent({
    hostId: `ff${hostSeq}`,
    address: `127.0.2.${hostSeq}`,
    coordinator: h.coordinator.grpcAddress,
    autoRealize: true,
    labels: { group: `f${group}` },
  });
  agents.push(a);
  await a.connect();
  return a;
}

async function activeTenant(h: Harness, id: string, pool: FakeAgent[], nodes = 2): Promise<{ primary: FakeAgent; replica: FakeAgent | undefined }> {
  await h.operator.createTenant({ id, spec: { nodes, syncReplicas: nodes > 1 ? 1 : 0, placement: { group: `f${group}` } } });
  await eventually(async () => (await h.operator.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 5000, `${id} ACTIVE`);
  const primaryId = (await h.operator.getTenant({ id })).tenant?.placements.find((p) => p.role === InstanceRole.PRIMARY)?.hostId;
  const primary = pool.find((a) => a.options.hostId === primaryId);
  if (!primary) throw new Error('expected a primary among the agents');
  return { primary, replica: pool.find((a) => a.options.hostId !== primaryId && a.instances.has(id)) };
}

/** Waits until the coordinator has seen the agent's stream break (its report may race the break otherwise). */
async function brokenSeen(h: Harness, a: FakeAgent): Promise<void> {
  await eventually(() => h.coordinator.ctx.liveness.signals(a.options.hostId).streamEnd?.how === 'reset', 5000, 'the break seen');
}

async function fencedVia(h: Harness, id: string): Promise<string | undefined> {
  const res = await h.operator.listEvents({ tenantId: id, limit: 200 });
  return res.events.find((e) => e.action === 'failover.fenced')?.details.via;
}

afterEach(async () => {
  group++;
  for (const a of agents.splice(0)) await a.close();
});

describe('fast failure detection', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness([
      '--host-ttl',
      '4s',
      '--host-down-grace',
      '4s',
      '--agent-lease',
      `${LEASE_MS}ms`,
      '--host-lost-confirm',
      `${CONFIRM_MS}ms`,
      '--replica-replace-delay',
      '1h',
    ]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('a broken stream and a replica that lost its sender: promoted without waiting for the lease, fenced as gone; no operation row is left', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-gone', pool);
    if (!replica) throw new Error('replica expected');
    await primary.disconnect();
    await brokenSeen(h, primary);
    replica.senderLostAt.set('ff-gone', Date.now());
    await replica.reportAll();
    await eventually(() => replica.received('ff-gone', 'promote').length > 0, 5000, 'Promote sent');
    // Not by the lease: the primary counted as gone from the second signal on.
    expect(await fencedVia(h, 'ff-gone')).toBe('gone');
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'ff-gone' });
        return t.route?.state === RouteState.ROUTABLE && t.route.hostId === replica.options.hostId;
      },
      5000,
      'route to the new primary',
    );
    expect(await h.coordinator.ctx.store.read.operations.get('ff-gone')).toBeUndefined();
  });

  it("a broken stream and a router refused at the primary's address: fenced as gone too", async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-refused', pool);
    if (!replica) throw new Error('replica expected');
    const port = primary.instances.get('ff-refused')?.port ?? 0;
    await primary.disconnect();
    await brokenSeen(h, primary);
    await h.routes.reportBackendFailures({
      routerId: 'r1',
      failures: [{ tenantId: 'ff-refused', address: primary.options.address, port, kind: BackendFailureKind.REFUSED, observedAt: timestampFromMs(Date.now()) }],
    });
    await eventually(() => replica.received('ff-refused', 'promote').length > 0, 5000, 'Promote sent');
    expect(await fencedVia(h, 'ff-refused')).toBe('gone');
  });

  it('a broken stream alone: the host is DOWN after the short confirmation, and the promotion still waits for the lease', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-lease', pool);
    if (!replica) throw new Error('replica expected');
    const killedAt = Date.now();
    await primary.disconnect();
    const down = await eventually(
      async () => (await h.operator.listHosts({})).hosts.find((x) => x.id === primary.options.hostId && x.state === HostState.DOWN) && Date.now(),
      5000,
      'host DOWN',
    );
    // Not the 8 s of ttl + grace.
    expect(down - killedAt).toBeLessThan(4000);
    const row = await eventually(() => h.coordinator.ctx.store.read.operations.get('ff-lease'), 3000, 'operation row');
    expect(row).toMatchObject({ kind: 'failover', cause: 'host_lost', oldPrimary: primary.options.hostId });
    await eventually(() => replica.received('ff-lease', 'promote').length > 0, 8000, 'Promote sent');
    expect(replica.received('ff-lease', 'promote')[0]!.at - killedAt).toBeGreaterThanOrEqual(LEASE_MS - 200);
    expect(await fencedVia(h, 'ff-lease')).toBe('lease');
  });

  it('a goodbye is not a failure: the host stays READY past the confirmation', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary } = await activeTenant(h, 'ff-bye', pool);
    await primary.goodbye();
    const until = Date.now() + CONFIRM_MS + 700;
    while (Date.now() < until) {
      const host = (await h.operator.listHosts({})).hosts.find((x) => x.id === primary.options.hostId);
      expect(host?.state).toBe(HostState.READY);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await h.operator.getTenant({ id: 'ff-bye' })).tenant?.status).toBe(TenantStatus.ACTIVE);
  });

  it('a single-node tenant: routers are told "host down" after the short confirmation, and nothing is re-created', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary } = await activeTenant(h, 'ff-single', pool, 1);
    const killedAt = Date.now();
    await primary.disconnect();
    await eventually(async () => (await h.operator.getTenant({ id: 'ff-single' })).route?.state === RouteState.HOST_DOWN, 5000, 'route HOST_DOWN');
    expect(Date.now() - killedAt).toBeLessThan(4000);
    const t = (await h.operator.getTenant({ id: 'ff-single' })).tenant;
    expect(t?.placements.map((p) => p.hostId)).toEqual([primary.options.hostId]);
  });
});

describe('a primary gone with its agent, with the default confirmation window', () => {
  let h: Harness;
  beforeAll(async () => {
    // The default --host-lost-confirm (5 s) and a lease the gone path must not wait for.
    h = await startHarness([
      '--host-ttl',
      '8s',
      '--host-down-grace',
      '4s',
      '--agent-lease',
      '8000ms',
      '--replica-replace-delay',
      '1h',
      '--host-lost-confirm',
      '5s',
    ]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("the promoted primary's quorum leaves the dead old primary out at once (writes never wait for its host's DOWN), and takes it back when its agent returns", async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-quorum', pool);
    if (!replica) throw new Error('replica expected');
    const oldHost = primary.options.hostId;
    const killedAt = Date.now();
    await primary.disconnect();
    await brokenSeen(h, primary);
    replica.senderLostAt.set('ff-quorum', Date.now());
    await replica.reportAll();
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'ff-quorum' });
        return t.route?.state === RouteState.ROUTABLE && t.route.hostId === replica.options.hostId;
      },
      4000,
      'route to the new primary',
    );
    const spec = replica.instances.get('ff-quorum');
    expect(spec?.role).toBe(InstanceRole.PRIMARY);
    // A quorum naming the dead old primary would accept no write until its host is DOWN (5 s on).
    expect(spec?.synchronousStandbyNames).toBe('');
    expect(await fencedVia(h, 'ff-quorum')).toBe('gone');
    const old = (await h.operator.listHosts({})).hosts.find((x) => x.id === oldHost);
    expect(old?.state).toBe(HostState.UNREACHABLE);
    expect(Date.now() - killedAt).toBeLessThan(5000);

    // The old host's agent returns (a supervisor restarted it): it may run the instance again, so the
    // quorum names it again.
    primary.senderLostAt.clear();
    await primary.connect();
    await eventually(
      () => (replica.instances.get('ff-quorum')?.synchronousStandbyNames ?? '').includes(`"${oldHost}"`),
      5000,
      'the returning old primary back in the quorum',
    );
  });
});

describe('failover operations are rows', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.stop();
  });

  it('a coordinator restarted mid-fence resumes the operation from its row: no second start, the lease counted from the restart, then the promotion', async () => {
    // A long lease keeps the operation in its fencing phase while the coordinator restarts.
    const flags = ['--agent-lease', '8000ms', '--replica-replace-delay', '1h', '--host-lost-confirm', '1500ms'];
    h = await startHarness(flags);
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-resume', pool);
    if (!replica) throw new Error('replica expected');
    primary.hang();
    const row = await eventually(async () => (await h?.coordinator.ctx.store.read.operations.get('ff-resume')) ?? false, 5000, 'operation row');
    expect(row).toMatchObject({ kind: 'failover', phase: 'fencing', oldPrimary: primary.options.hostId, candidate: '' });
    const dataDir = h.dataDir;
    await h.stop();
    h = undefined;
    for (const a of agents.splice(0)) await a.close();

    h = await startHarness(flags, dataDir);
    const restartedAt = Date.now();
    expect(await h.coordinator.ctx.store.read.operations.get('ff-resume')).toMatchObject({ phase: 'fencing' });
    // Only the replica's host comes back (a new agent process with the same host id).
    const back = new FakeAgent({
      hostId: replica.options.hostId,
      address: replica.options.address,
      coordinator: h.coordinator.grpcAddress,
      autoRealize: true,
      labels: replica.options.labels,
    });
    agents.push(back);
    await back.connect();
    await eventually(() => back.received('ff-resume', 'promote').length > 0, 20_000, 'Promote after the restart');
    // Fenced by the lease, counted from this coordinator's start (the latest renewal any agent can hold).
    expect(back.received('ff-resume', 'promote')[0]!.at - restartedAt).toBeGreaterThanOrEqual(8000);
    const harness = h;
    await eventually(
      async () => (await harness.operator.getTenant({ id: 'ff-resume' })).route?.hostId === replica.options.hostId,
      5000,
      'route to the new primary',
    );
    // The route moves at the promotion; the operation completes (event, row deleted) right after it.
    const actions = await eventually(
      async () => {
        const all = (await harness.operator.listEvents({ tenantId: 'ff-resume', limit: 200 })).events.map((e) => e.action);
        return all.includes('failover.completed') ? all : false;
      },
      10_000,
      'failover.completed',
    );
    expect(actions.filter((a) => a === 'failover.started')).toHaveLength(1);
    expect(await harness.coordinator.ctx.store.read.operations.get('ff-resume')).toBeUndefined();
  }, 60_000);

  it("a coordinator restarted mid-fence with the old primary's gone point in the row fences from it at once, without the lease", async () => {
    await h?.stop();
    const flags = ['--agent-lease', '8000ms', '--replica-replace-delay', '1h', '--host-lost-confirm', '1500ms'];
    h = await startHarness(flags);
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ff-resume-gone', pool);
    if (!replica) throw new Error('replica expected');
    primary.hang();
    await eventually(async () => (await h?.coordinator.ctx.store.read.operations.get('ff-resume-gone')) ?? false, 5000, 'operation row');
    const dataDir = h.dataDir;
    await h.stop();
    h = undefined;
    for (const a of agents.splice(0)) await a.close();
    // The row as a detection that found the primary gone with its agent writes it (a restart can
    // land between that start and the fenced step), written while no coordinator runs.
    const goneAt = Date.now();
    const { store } = openStore({ dataDir, allowInit: false, routeHistory: 1000, now: goneAt });
    const row = await store.read.operations.get('ff-resume-gone');
    expect(row).toMatchObject({ phase: 'fencing', goneAt: 0 });
    if (row) await store.transaction((tx) => tx.operations.put({ ...row, goneAt }));
    await store.close();

    h = await startHarness(flags, dataDir);
    const restartedAt = Date.now();
    expect(await h.coordinator.ctx.store.read.operations.get('ff-resume-gone')).toMatchObject({ phase: 'fencing', goneAt });
    const back = new FakeAgent({
      hostId: replica.options.hostId,
      address: replica.options.address,
      coordinator: h.coordinator.grpcAddress,
      autoRealize: true,
      labels: replica.options.labels,
    });
    agents.push(back);
    await back.connect();
    await eventually(() => back.received('ff-resume-gone', 'promote').length > 0, 20_000, 'Promote after the restart');
    // Not the 8 s lease counted from the restart.
    expect(back.received('ff-resume-gone', 'promote')[0]!.at - restartedAt).toBeLessThan(6000);
    expect(await fencedVia(h, 'ff-resume-gone')).toBe('gone');
  }, 60_000);
});
