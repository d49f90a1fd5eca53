/**
 * High availability, coordinator side: a real coordinator in process, fake agents on real
 * gRPC streams. Replicas and their replication settings, failover with fencing first (Fence acked,
 * or the lease run out), the old primary back as a replica, switchover, replica replacement.
 */
import fs from 'node:fs';
import path from 'node:path';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { InstanceRole, InstanceState, Realization, RouteState, TenantStatus } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

const LEASE_MS = 1000;
const agents: FakeAgent[] = [];
let hostSeq = 0;
/** Each test's agents carry their own label, and its tenants ask for it: hosts of earlier tests never take them. */
let group = 0;

async function agent(h: Harness, options: Partial<ConstructorParameters<typeof FakeAgent>[0]> = {}): Promise<FakeAgent> {
  hostSeq++;
  const a = new FakeAgent({
    hostId: `ha${hostSeq}`,
    address: `127.0.1.${hostSeq}`,
    coordinator: h.coordinator.grpcAddress,
    autoRealize: true,
    labels: { group: `g${group}` },
    ...options,
  });
  agents.push(a);
  await a.connect();
  return a;
}

async function primaryHost(h: Harness, id: string): Promise<string | undefined> {
  return (await h.operator.getTenant({ id })).tenant?.placements.find((p) => p.role === InstanceRole.PRIMARY)?.hostId;
}

/** Creates a tenant and waits until it is ACTIVE; returns the agents holding its primary and replica. */
async function activeTenant(h: Harness, id: string, pool: FakeAgent[], syncReplicas = 1): Promise<{ primary: FakeAgent; replica: FakeAgent }> {
  await h.operator.createTenant({ id, spec: { nodes: 2, syncReplicas, placement: { group: `g${group}` } } });
  await eventually(async () => (await h.operator.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 5000, `${id} ACTIVE`);
  const primaryId = await primaryHost(h, id);
  const primary = pool.find((a) => a.options.hostId === primaryId);
  const replica = pool.find((a) => a.options.hostId !== primaryId && a.instances.has(id));
  if (!primary || !replica) throw new Error('expected a primary and a replica among the agents');
  return { primary, replica };
}

async function events(h: Harness, tenantId: string): Promise<{ action: string; hostId: string; time: number; details: Record<string, string> }[]> {
  const res = await h.operator.listEvents({ tenantId, limit: 200 });
  return res.events.map((e) => ({
    action: e.action,
    hostId: e.hostId,
    time: Number(e.time?.seconds ?? 0n) * 1000 + Math.floor((e.time?.nanos ?? 0) / 1e6),
    details: { ...e.details },
  }));
}

afterEach(async () => {
  group++;
  for (const a of agents.splice(0)) await a.close();
});

describe('replicas, failover, switchover', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(['--failover-unhealthy-after', '300ms', '--replica-replace-delay', '1h']);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('nodes=2: a primary and a replica on distinct hosts, with sync names, slots and the replication secret never stored plain', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ha-place', pool);
    expect(primary.options.hostId).not.toBe(replica.options.hostId);
    const p = primary.instances.get('ha-place')!;
    const r = replica.instances.get('ha-place')!;
    expect(p.role).toBe(InstanceRole.PRIMARY);
    expect(p.synchronousStandbyNames).toBe(`ANY 1 ("${replica.options.hostId}")`);
    expect(p.replicationUser).toBe('pgs_replication');
    expect(p.replicationSecret).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(p.replicationSlots).toEqual([`pgs_${replica.options.hostId}`]);
    expect(p.fenceOnLeaseExpiry).toBe(true);
    expect(r.role).toBe(InstanceRole.REPLICA);
    expect(r.primaryAddress).toBe(primary.options.address);
    expect(r.primaryPort).toBe(p.port);
    expect(r.replicationSlot).toBe(`pgs_${replica.options.hostId}`);
    expect(r.standbyName).toBe(replica.options.hostId);
    expect(r.fenceOnLeaseExpiry).toBe(false);
    const password = r.replicationSecret;
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    // The store holds it sealed only: the password appears nowhere in the database files.
    const files = fs.readdirSync(h.dataDir).filter((f) => f.startsWith('coordinator.db'));
    for (const f of files) expect(fs.readFileSync(path.join(h.dataDir, f)).includes(Buffer.from(password))).toBe(false);
    await eventually(() => primary.leaseRenewals > 0, 3000, 'heartbeats answered with lease renewals');
  });

  it("host DOWN: FAILING_OVER with route FAILOVER; no Promote before the silent primary's lease ran out; then the replica serves", async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ha-down', pool);
    // The host hangs: the stream stays open (the agent looks connected) but nothing arrives.
    const silentAt = Date.now();
    primary.hang();
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-down' })).route?.state === RouteState.FAILOVER, 5000, 'route FAILOVER');
    await eventually(() => replica.received('ha-down', 'promote').length > 0, 5000, 'Promote sent');
    const promotedAt = replica.received('ha-down', 'promote')[0]!.at;
    // The agent's lease was last renewed no later than its last heartbeat: Promote waits for lease + margin.
    expect(promotedAt - silentAt).toBeGreaterThanOrEqual(LEASE_MS);
    // Fence was tried first (the stream looked alive), and not answered.
    expect(primary.received('ha-down', 'fence')[0]!.at).toBeLessThanOrEqual(promotedAt);
    const got = await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'ha-down' });
        return t.route?.state === RouteState.ROUTABLE && t;
      },
      5000,
      'route to the new primary',
    );
    expect(got.route?.hostId).toBe(replica.options.hostId);
    expect(got.route?.address).toBe(replica.options.address);
    expect(got.route?.port).toBe(replica.instances.get('ha-down')?.port);
    expect(got.tenant?.placements.find((p) => p.hostId === primary.options.hostId)?.role).toBe(InstanceRole.REPLICA);
    const log = await events(h, 'ha-down');
    const order = log.map((e) => e.action).filter((a) => a.startsWith('failover.'));
    expect(order.indexOf('failover.started')).toBeLessThan(order.indexOf('failover.fenced'));
    expect(order.indexOf('failover.fenced')).toBeLessThan(order.indexOf('failover.promote'));
    expect(order.indexOf('failover.promote')).toBeLessThan(order.indexOf('failover.completed'));
    const fenced = log.find((e) => e.action === 'failover.fenced')!;
    expect(fenced.details.via).toBe('lease');
    const done = log.find((e) => e.action === 'failover.completed')!;
    for (const k of ['detection_ms', 'fencing_ms', 'promotion_ms', 'route_ms', 'total_ms']) expect(Number(done.details[k])).toBeGreaterThanOrEqual(0);
    // No sync standby left (the old primary is lost): the new primary must not wait for one.
    await eventually(
      () => replica.instances.get('ha-down')?.role === InstanceRole.PRIMARY && replica.instances.get('ha-down')?.synchronousStandbyNames === '',
      3000,
      'new primary spec, asynchronous while degraded',
    );

    // The old host returns: its instance comes back as a replica of the new primary, never a primary.
    await primary.disconnect();
    await primary.connect();
    await eventually(() => primary.instances.get('ha-down')?.role === InstanceRole.REPLICA, 3000, 'old primary told REPLICA');
    const spec = primary.instances.get('ha-down')!;
    expect(spec.primaryAddress).toBe(replica.options.address);
    expect(spec.primaryPort).toBe(replica.instances.get('ha-down')?.port);
    expect(spec.replicationSecret).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-down' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ACTIVE with both nodes');
    expect((await h.operator.getTenant({ id: 'ha-down' })).route?.hostId).toBe(replica.options.hostId);
    // The primary now names the old one as its synchronous standby again.
    await eventually(() => replica.instances.get('ha-down')?.synchronousStandbyNames === `ANY 1 ("${primary.options.hostId}")`, 3000, 'sync standby restored');

    // If it ever claims to be a primary again, it is fenced at once.
    const fencesBefore = primary.received('ha-down', 'fence').length;
    primary.role.set('ha-down', InstanceRole.PRIMARY);
    await primary.reportAll();
    await eventually(() => primary.received('ha-down', 'fence').length > fencesBefore, 3000, 'stray primary fenced');
    expect((await events(h, 'ha-down')).some((e) => e.action === 'failover.stray_primary')).toBe(true);
  });

  it('primary unhealthy with its host up: Fence is acknowledged before Promote is sent', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ha-sick', pool);
    primary.unhealthy.add('ha-sick');
    await primary.reportAll();
    await eventually(() => replica.received('ha-sick', 'promote').length > 0, 5000, 'Promote sent');
    const fence = primary.received('ha-sick', 'fence')[0];
    expect(fence).toBeDefined();
    expect(fence!.at).toBeLessThanOrEqual(replica.received('ha-sick', 'promote')[0]!.at);
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-sick' })).route?.hostId === replica.options.hostId, 5000, 'route moved');
    const fenced = (await events(h, 'ha-sick')).find((e) => e.action === 'failover.fenced');
    expect(fenced?.details.via).toBe('ack');
  });

  it('an agent that is connected but never answers Fence blocks promotion (its lease keeps being renewed)', async () => {
    const pool = [await agent(h, { answerCommands: false }), await agent(h, { answerCommands: false })];
    const { primary, replica } = await activeTenant(h, 'ha-hung', pool);
    primary.unhealthy.add('ha-hung');
    await primary.reportAll();
    await eventually(() => primary.received('ha-hung', 'fence').length > 0, 5000, 'Fence sent');
    // Well past lease + margin: still no Promote, still failing over, clients refused with a retryable error.
    await new Promise((r) => setTimeout(r, LEASE_MS * 2));
    expect(replica.received('ha-hung', 'promote')).toEqual([]);
    const t = await h.operator.getTenant({ id: 'ha-hung' });
    expect(t.tenant?.status).toBe(TenantStatus.FAILING_OVER);
    expect(t.route?.state).toBe(RouteState.FAILOVER);
    // Once the agent is gone for good, its lease runs out and the failover proceeds.
    await primary.disconnect();
    await eventually(() => replica.received('ha-hung', 'promote').length > 0, 5000, 'Promote after the lease');
  });

  it("switchover: the target must reach the old primary's last LSN; nothing is lost; the RPC returns when done", async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ha-switch', pool, 0);
    primary.fenceLsn = '0/3000148';
    replica.lsn.set('ha-switch', '0/3000100');
    await replica.reportAll();
    const call = h.operator.switchoverTenant({ id: 'ha-switch', toHostId: replica.options.hostId });
    await eventually(() => primary.received('ha-switch', 'fence').length > 0, 3000, 'Fence sent');
    // A connected target is told the old primary's last position and promotes only once it has
    // replayed that far itself (no wait for its next health report).
    await eventually(() => replica.received('ha-switch', 'promote').length > 0, 3000, 'Promote sent');
    const promote = replica.received('ha-switch', 'promote')[0]!.command.action;
    expect(promote.case === 'promote' ? promote.value.minLsn : undefined).toBe('0/3000148');
    replica.lsn.set('ha-switch', '0/3000148');
    await replica.reportAll();
    const res = await call;
    expect(res.tenant?.placements.find((p) => p.role === InstanceRole.PRIMARY)?.hostId).toBe(replica.options.hostId);
    const t = await h.operator.getTenant({ id: 'ha-switch' });
    expect(t.route?.hostId).toBe(replica.options.hostId);
    expect(t.route?.state).toBe(RouteState.ROUTABLE);
    await eventually(() => primary.instances.get('ha-switch')?.role === InstanceRole.REPLICA, 3000, 'old primary told REPLICA');
  });

  it('live move: a single-node tenant is copied, switched over and its old instance deleted, each step an event', async () => {
    const pool = [await agent(h), await agent(h)];
    await h.operator.createTenant({ id: 'ha-move', spec: { placement: { group: `g${group}` } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-move' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ha-move ACTIVE');
    const fromId = await primaryHost(h, 'ha-move');
    const from = pool.find((a) => a.options.hostId === fromId)!;
    const to = pool.find((a) => a.options.hostId !== fromId)!;
    // The copy replays to where the old primary stopped: nothing is lost in the switch.
    from.fenceLsn = '0/1000000';
    const res = await h.operator.moveTenant({ id: 'ha-move', toHostId: to.options.hostId, wait: true });
    expect(res.steps.map((st) => st.name)).toEqual(['copy', 'switch', 'remove_old']);
    expect(res.tenant?.placements.map((p) => [p.hostId, p.role])).toEqual([[to.options.hostId, InstanceRole.PRIMARY]]);
    const t = await h.operator.getTenant({ id: 'ha-move' });
    expect(t.tenant?.status).toBe(TenantStatus.ACTIVE);
    expect(t.route?.hostId).toBe(to.options.hostId);
    expect(t.route?.state).toBe(RouteState.ROUTABLE);
    expect(from.instances.has('ha-move')).toBe(false);
    // The old primary stays fenced until it is deleted: never told to become a replica (a rewind or
    // a copy of the new primary only to be deleted).
    const toldReplica = from.desired.flatMap((d) => d.instances).filter((i) => i.tenantId === 'ha-move' && i.role === InstanceRole.REPLICA);
    expect(toldReplica).toEqual([]);
    const actions = (await events(h, 'ha-move')).map((e) => e.action);
    for (const a of ['move.started', 'move.copied', 'move.checkpointed', 'move.switched', 'move.old_removed', 'move.completed']) expect(actions).toContain(a);
    // The source checkpointed while clients still ran, answered before the fence (the route turned
    // SWITCHING only after its answer), so the fence's shutdown checkpoint has little to write.
    const checkpoint = from.received('ha-move', 'checkpoint');
    expect(checkpoint).toHaveLength(1);
    expect(to.received('ha-move', 'checkpoint')).toEqual([]);
    expect(checkpoint[0]!.at).toBeLessThanOrEqual(from.received('ha-move', 'fence')[0]!.at);
    const all = await events(h, 'ha-move');
    const checkpointed = all.find((e) => e.action === 'move.checkpointed')!;
    expect(checkpointed.details.agent).toBe('checkpoint 1 ms');
    expect(checkpointed.time).toBeLessThanOrEqual(all.find((e) => e.action === 'switchover.started')!.time);
  });

  it('live move: a source that cannot checkpoint (an older agent) is switched over without it', async () => {
    const pool = [await agent(h, { checkpointAnswer: 'fail' }), await agent(h, { checkpointAnswer: 'fail' })];
    await h.operator.createTenant({ id: 'ha-move-nockpt', spec: { placement: { group: `g${group}` } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-move-nockpt' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ACTIVE');
    const fromId = await primaryHost(h, 'ha-move-nockpt');
    const from = pool.find((a) => a.options.hostId === fromId)!;
    const to = pool.find((a) => a.options.hostId !== fromId)!;
    const res = await h.operator.moveTenant({ id: 'ha-move-nockpt', toHostId: to.options.hostId, wait: true });
    expect(res.tenant?.placements.map((p) => [p.hostId, p.role])).toEqual([[to.options.hostId, InstanceRole.PRIMARY]]);
    expect(from.received('ha-move-nockpt', 'checkpoint')).toHaveLength(1);
    const res2 = await h.operator.listEvents({ tenantId: 'ha-move-nockpt', limit: 200 });
    const failed = res2.events.find((e) => e.action === 'move.checkpointed');
    expect(failed?.message).toContain('switching without it');
  });

  it('live move: a source host lost for a moment before the switch leaves the tenant UNAVAILABLE (its copy is no heir), and the move completes once it is back', async () => {
    const pool = [await agent(h, { checkpointAnswer: 'never' }), await agent(h, { checkpointAnswer: 'never' })];
    await h.operator.createTenant({ id: 'ha-move-blip', spec: { placement: { group: `g${group}` } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-move-blip' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'ACTIVE');
    const fromId = await primaryHost(h, 'ha-move-blip');
    const from = pool.find((a) => a.options.hostId === fromId)!;
    const to = pool.find((a) => a.options.hostId !== fromId)!;
    await h.operator.moveTenant({ id: 'ha-move-blip', toHostId: to.options.hostId });
    // The copy caught up and the source was asked to checkpoint: the switch is next.
    await eventually(() => from.received('ha-move-blip', 'checkpoint').length > 0, 5000, 'Checkpoint asked');
    const statuses = new Set<TenantStatus>();
    const watch = setInterval(() => {
      void h.operator.getTenant({ id: 'ha-move-blip' }).then(
        (t) => statuses.add(t.tenant?.status ?? TenantStatus.UNSPECIFIED),
        () => undefined,
      );
    }, 20);
    try {
      // The source's agent drops out long enough for its host to be declared DOWN.
      await from.disconnect();
      await eventually(async () => (await h.operator.getTenant({ id: 'ha-move-blip' })).tenant?.status === TenantStatus.UNAVAILABLE, 5000, 'UNAVAILABLE');
      const during = await h.operator.getTenant({ id: 'ha-move-blip' });
      expect(during.tenant?.statusReason).toMatch(/is down; a single-node tenant waits for its host/);
      expect(during.tenant?.placements.map((p) => [p.hostId, p.role])).toContainEqual([fromId, InstanceRole.PRIMARY]);
      // While the host was away, the tenant never waited for a failover that nothing runs for it.
      clearInterval(watch);
      expect([...statuses]).not.toContain(TenantStatus.FAILING_OVER);
      from.options.checkpointAnswer = 'ok';
      await from.connect();
      const done = await eventually(
        async () => {
          const t = await h.operator.getTenant({ id: 'ha-move-blip' });
          return t.tenant?.status === TenantStatus.ACTIVE && t.tenant.placements.length === 1 && t;
        },
        15_000,
        'the move completed',
      );
      expect(done.tenant?.placements.map((p) => [p.hostId, p.role])).toEqual([[to.options.hostId, InstanceRole.PRIMARY]]);
    } finally {
      clearInterval(watch);
    }
    const actions = (await events(h, 'ha-move-blip')).map((e) => e.action);
    expect(actions).toContain('move.completed');
    expect(actions).not.toContain('move.abandoned');
  });

  it('switchover is refused for a single-node tenant, a lagging target and an unknown host', async () => {
    const pool = [await agent(h), await agent(h)];
    await h.operator.createTenant({ id: 'ha-single', spec: { placement: { group: `g${group}` } } });
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-single' })).tenant?.status === TenantStatus.ACTIVE);
    const single = await h.operator.switchoverTenant({ id: 'ha-single' }).catch((e: unknown) => e);
    expect((single as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    const { replica } = await activeTenant(h, 'ha-refuse', pool);
    const unknown = await h.operator.switchoverTenant({ id: 'ha-refuse', toHostId: 'nope' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(RpcError);
    expect((unknown as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    const spec = replica.instances.get('ha-refuse')!;
    await replica.report([
      {
        tenantId: 'ha-refuse',
        realization: Realization.REALIZED,
        state: InstanceState.RUNNING,
        address: replica.options.address,
        port: spec.port,
        specRevision: spec.specRevision,
        health: {
          up: true,
          acceptingConnections: true,
          role: InstanceRole.REPLICA,
          lsn: '0/1000000',
          lagBytes: 1n << 30n,
          checkedAt: timestampFromMs(Date.now()),
        },
      },
    ]);
    // The report is only sent; until the coordinator has applied it, a switchover would really start
    // (and wait for a promotion this fake agent never does).
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'ha-refuse' });
        return t.tenant?.placements.find((p) => p.hostId === replica.options.hostId)?.health?.lagBytes === 1n << 30n;
      },
      3000,
      'the lag report applied',
    );
    const lagging = await h.operator.switchoverTenant({ id: 'ha-refuse' }).catch((err: unknown) => err);
    expect(lagging).toBeInstanceOf(RpcError);
    expect((lagging as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    expect((lagging as RpcError).message).toMatch(/1073741824 bytes behind/);
  });
});

describe('replica replacement', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(['--replica-replace-delay', '300ms']);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('a replica lost with its host is re-created on another host after the delay', async () => {
    const pool = [await agent(h), await agent(h)];
    const { primary, replica } = await activeTenant(h, 'ha-replace', pool);
    const spare = await agent(h);
    replica.hang();
    await eventually(() => spare.instances.get('ha-replace')?.role === InstanceRole.REPLICA, 5000, 'replica re-created on the spare host');
    const t = await h.operator.getTenant({ id: 'ha-replace' });
    expect(t.tenant?.placements.map((p) => p.hostId).sort()).toEqual([primary.options.hostId, spare.options.hostId].sort());
    expect(spare.instances.get('ha-replace')?.primaryAddress).toBe(primary.options.address);
    await eventually(
      () => primary.instances.get('ha-replace')?.replicationSlots.join() === `pgs_${spare.options.hostId}`,
      3000,
      'primary keeps a slot for the new replica',
    );
    await eventually(async () => (await h.operator.getTenant({ id: 'ha-replace' })).tenant?.status === TenantStatus.ACTIVE, 5000, 'back to 2 nodes, ACTIVE');
    expect((await events(h, 'ha-replace')).some((e) => e.action === 'replica.replaced' && e.details.lost_host === replica.options.hostId)).toBe(true);
  });
});
