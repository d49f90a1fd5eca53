/**
 * Scale to zero against a real coordinator: idle tenants suspend (routers report no client, the
 * primary no busy backend), a router's wake brings them back once however many clients wait, the
 * fleet's wake rate throttles, a host that gave the room away makes the wake move the tenant to a
 * host with room (or refuses it with the reason when none has any), and replicas wake after their primary.
 * A wake by a move survives a coordinator restart (taken back from its row), and one whose switch
 * rolls back holds its clients until the tenant sleeps again.
 */
import { InstanceRole, RouteState, TenantStatus, WakeOutcome, RunState } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

const FLAGS = ['--idle-check-interval', '50ms', '--wake-rate', '2', '--wake-burst', '2'];

let h: Harness;
const agents: FakeAgent[] = [];
let hostSeq = 0;
let reporting: NodeJS.Timeout | undefined;
/** What the fake router r1 reports: clients per tenant. */
const routerClients = new Map<string, number>();

async function agent(options: Partial<ConstructorParameters<typeof FakeAgent>[0]> = {}): Promise<FakeAgent> {
  hostSeq++;
  const a = new FakeAgent({ hostId: `s${hostSeq}`, address: `127.0.0.${10 + hostSeq}`, coordinator: h.coordinator.grpcAddress, autoRealize: true, ...options });
  agents.push(a);
  await a.connect();
  return a;
}

/** The earlier wakes of this file may have used the fleet's burst: waits for it to fill again (2 per second). */
async function wakeBurstRefilled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1200));
}

async function status(id: string): Promise<TenantStatus> {
  return (await h.operator.getTenant({ id })).tenant?.status ?? TenantStatus.UNSPECIFIED;
}

async function active(id: string, idleSuspendSeconds: number, a: FakeAgent): Promise<void> {
  await h.operator.createTenant({ id, spec: { idleSuspendSeconds, externalAccess: true, placement: { ...a.options.labels } } });
  await eventually(async () => (await status(id)) === TenantStatus.ACTIVE, 5000, `${id} ACTIVE`);
}

beforeAll(async () => {
  h = await startHarness(FLAGS);
  // The fake router r1 reports its clients every 50 ms, as a real router does every few seconds.
  reporting = setInterval(() => {
    const tenants = [...routerClients].map(([tenantId, clients]) => ({ tenantId, clients }));
    h.routes.reportClients({ routerId: 'r1', tenants, complete: true }).catch(() => undefined);
  }, 50);
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  routerClients.clear();
});
afterAll(async () => {
  clearInterval(reporting);
  await h?.stop();
});

describe('idle suspend', () => {
  it('suspends an idle tenant: instances stopped, route SUSPENDED, CPU and memory released, events with durations', async () => {
    const a = await agent({ labels: { host: 'idle' } });
    await active('sleepy', 1, a);
    await eventually(async () => (await status('sleepy')) === TenantStatus.SUSPENDED, 5000, 'sleepy SUSPENDED');
    const got = await h.operator.getTenant({ id: 'sleepy' });
    expect(got.route?.state).toBe(RouteState.SUSPENDED);
    expect(got.tenant?.statusReason).toMatch(/^suspended at \d{4}-\d\d-\d\dT.*\(idle for 1s \(policy 1s\)\)$/);
    expect(a.instances.get('sleepy')?.runState).toBe(RunState.STOPPED);
    expect((await h.coordinator.ctx.store.read.placements.allocations()).get(a.options.hostId)).toMatchObject({
      cpuMillis: 0,
      memoryMib: 0,
      diskMib: 8192,
      instances: 1,
    });
    await eventually(
      async () => (await h.operator.getTenant({ id: 'sleepy' })).recentEvents.find((e) => e.action === 'tenant.suspended'),
      3000,
      'suspended event',
    );
    const events = (await h.operator.getTenant({ id: 'sleepy' })).recentEvents;
    expect(events.find((e) => e.action === 'tenant.suspend')?.principal).toBe('system:idle-suspend');
    expect(events.find((e) => e.action === 'tenant.suspended')?.details.durationMs).toMatch(/^\d+$/);
  });

  it('keeps a tenant awake while a router has a client or the primary a busy backend', async () => {
    const a = await agent({ labels: { host: 'busy' } });
    routerClients.set('chatty', 1);
    a.busy.set('working', 1);
    await active('chatty', 1, a);
    await active('working', 1, a);
    const until = Date.now() + 2500;
    while (Date.now() < until) {
      expect(await status('chatty')).toBe(TenantStatus.ACTIVE);
      expect(await status('working')).toBe(TenantStatus.ACTIVE);
      await new Promise((r) => setTimeout(r, 100));
    }
    routerClients.delete('chatty');
    await eventually(async () => (await status('chatty')) === TenantStatus.SUSPENDED, 5000, 'chatty SUSPENDED once its client left');
    a.busy.delete('working');
    await a.reportAll();
    await eventually(async () => (await status('working')) === TenantStatus.SUSPENDED, 5000, 'working SUSPENDED once idle');
  });
});

describe('wake', () => {
  it('wakes once for many waiting clients; the route turns ROUTABLE and the wake is timed', async () => {
    const a = await agent({ labels: { host: 'wake' } });
    await active('napper', 60, a);
    await h.operator.suspendTenant({ id: 'napper' });
    await eventually(async () => (await h.operator.getTenant({ id: 'napper' })).route?.state === RouteState.SUSPENDED, 3000, 'napper suspended');
    const answers = await Promise.all([1, 2, 3].map(() => h.routes.wakeTenant({ tenantId: 'napper', routerId: 'r1', waitingClients: 3 })));
    expect(answers.map((x) => x.outcome).sort()).toEqual([WakeOutcome.STARTED, WakeOutcome.IN_PROGRESS, WakeOutcome.IN_PROGRESS]);
    await eventually(async () => (await h.operator.getTenant({ id: 'napper' })).route?.state === RouteState.ROUTABLE, 5000, 'napper routable');
    expect(a.instances.get('napper')?.runState).toBe(RunState.RUNNING);
    const woken = await eventually(
      async () => (await h.operator.getTenant({ id: 'napper' })).recentEvents.find((e) => e.action === 'tenant.woken'),
      3000,
      'woken event',
    );
    expect(woken.principal).toBe('router:r1');
    expect(woken.message).toMatch(/^woken in \d+ ms \(3 client\(s\) waiting\)$/);
    expect((await h.operator.getTenant({ id: 'napper' })).recentEvents.filter((e) => e.action === 'tenant.wake')).toHaveLength(1);
  });

  it('throttles wakes beyond the fleet rate, and says when to ask again', async () => {
    const a = await agent({ labels: { host: 'rate' } });
    const ids = ['r-a', 'r-b', 'r-c'];
    for (const id of ids) await active(id, 60, a);
    for (const id of ids) await h.operator.suspendTenant({ id });
    await wakeBurstRefilled();
    const answers = [];
    for (const id of ids) answers.push(await h.routes.wakeTenant({ tenantId: id, routerId: 'r1', waitingClients: 1 }));
    expect(answers.map((x) => x.outcome)).toEqual([WakeOutcome.STARTED, WakeOutcome.STARTED, WakeOutcome.THROTTLED]);
    expect(answers[2]?.retryAfterMs).toBeGreaterThan(0);
    expect(answers[2]?.retryAfterMs).toBeLessThanOrEqual(500);
  });

  it("refuses a wake when the host gave the tenant's room away, with the reason, for routers and operators", async () => {
    const a = await agent({ labels: { host: 'full' }, capacity: { cpuMillis: 2000, memoryMib: 2048, diskMib: 204800 } });
    await active('evicted', 60, a);
    await h.operator.suspendTenant({ id: 'evicted' });
    // Its memory went back to the host, and a new tenant took it (the suspension's desired set
    // makes the scheduler sum that host again).
    await h.operator.createTenant({ id: 'squatter', spec: { resources: { memoryMib: 2048 }, placement: { host: 'full' } } });
    await eventually(async () => (await status('squatter')) === TenantStatus.ACTIVE, 10_000, 'squatter ACTIVE');
    const answer = await h.routes.wakeTenant({ tenantId: 'evicted', routerId: 'r1', waitingClients: 1 });
    expect(answer.outcome).toBe(WakeOutcome.REFUSED);
    // No other host carries its placement label: nowhere to move it either.
    expect(answer.message).toMatch(
      new RegExp(
        `^tenant "evicted" cannot be woken: its host ${a.options.hostId} has no room left for it: short of memory \\(needs 1Gi, 0Mi free\\), and no other host can take it \\(.+\\): free capacity on ${a.options.hostId} or add a host$`,
      ),
    );
    const err = await h.operator.resumeTenant({ id: 'evicted' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(Code.FAILED_PRECONDITION);
    const got = await h.operator.getTenant({ id: 'evicted' });
    expect(got.tenant?.status).toBe(TenantStatus.SUSPENDED);
    expect(got.tenant?.statusReason).toContain('wake refused: its host');
    expect(got.recentEvents.filter((e) => e.action === 'tenant.wake' && e.message.startsWith('cannot wake'))).toHaveLength(1);
    // Room again: the operator's resume wakes it.
    await h.operator.deleteTenant({ id: 'squatter' });
    await eventually(async () => (await h.operator.getTenant({ id: 'squatter' }).catch(() => undefined)) === undefined, 5000, 'squatter gone');
    await h.operator.resumeTenant({ id: 'evicted' });
    await eventually(async () => (await status('evicted')) === TenantStatus.ACTIVE, 5000, 'evicted ACTIVE again');
  });

  it('moves a tenant whose host gave its room away to a host with room, and wakes it there', async () => {
    const small = await agent({ labels: { host: 'mover', size: 'small' }, capacity: { cpuMillis: 2000, memoryMib: 2048, diskMib: 204800 } });
    const big = await agent({ labels: { host: 'mover' } });
    // Bin-packing puts it on the small host (the least free memory that fits).
    await active('nomad', 60, big);
    expect((await h.operator.getTenant({ id: 'nomad' })).tenant?.placements.map((p) => p.hostId)).toEqual([small.options.hostId]);
    await h.operator.suspendTenant({ id: 'nomad' });
    await eventually(async () => small.instances.get('nomad')?.runState === RunState.STOPPED, 3000, 'nomad stopped');
    await h.operator.createTenant({ id: 'nomad-squatter', spec: { resources: { memoryMib: 2048 }, placement: { size: 'small' } } });
    await eventually(async () => (await status('nomad-squatter')) === TenantStatus.ACTIVE, 10_000, 'nomad-squatter ACTIVE');
    expect((await h.operator.getTenant({ id: 'nomad-squatter' })).tenant?.placements[0]?.hostId).toBe(small.options.hostId);
    // The copy replays to where the old instance stopped; it is not ready until the test says so.
    small.fenceLsn = '0/1000000';
    big.unhealthy.add('nomad');

    await wakeBurstRefilled();
    const answer = await h.routes.wakeTenant({ tenantId: 'nomad', routerId: 'r1', waitingClients: 3 });
    expect(answer.outcome, answer.message).toBe(WakeOutcome.STARTED);
    expect(answer.message).toBe(
      `waking tenant "nomad" on ${big.options.hostId}: its host ${small.options.hostId} has no room left for it: short of memory (needs 1Gi, 0Mi free)`,
    );
    // Asked again while it moves: one wake.
    expect((await h.routes.wakeTenant({ tenantId: 'nomad', routerId: 'r1', waitingClients: 3 })).outcome).toBe(WakeOutcome.IN_PROGRESS);
    // During the copy the old instance runs as its source, and no client is routed to it.
    await eventually(async () => small.instances.get('nomad')?.runState === RunState.RUNNING && big.instances.has('nomad'), 5000, 'source and copy asked for');
    await small.reportAll();
    const during = await h.operator.getTenant({ id: 'nomad' });
    expect(during.tenant?.status).toBe(TenantStatus.MOVING);
    expect(during.tenant?.statusReason).toMatch(
      new RegExp(`^waking up on ${big.options.hostId} \\(its host ${small.options.hostId} has no room left for it: short of memory [^)]*\\)\\): `),
    );
    expect(during.route?.state).toBe(RouteState.SUSPENDED);
    expect(during.route?.reason).toBe('the tenant is waking up on another host (its own host has no room left for it)');
    big.unhealthy.delete('nomad');
    await big.reportAll();
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'nomad' });
        return t.tenant?.status === TenantStatus.ACTIVE && t.route?.state === RouteState.ROUTABLE && t.route.hostId === big.options.hostId;
      },
      10_000,
      'nomad ACTIVE on the big host',
    );
    const got = await h.operator.getTenant({ id: 'nomad' });
    expect(got.tenant?.placements.map((p) => p.hostId)).toEqual([big.options.hostId]);
    await eventually(async () => !small.instances.has('nomad'), 5000, 'old instance deleted');
    // The old instance ran only as the copy's source: told to run, never routed to.
    expect(small.desired.flatMap((d) => d.instances).some((i) => i.tenantId === 'nomad' && i.runState === RunState.RUNNING)).toBe(true);
    const log = await eventually(
      async () => {
        const e = (await h.operator.getTenant({ id: 'nomad' })).recentEvents;
        return e.some((x) => x.action === 'tenant.woken') ? e : undefined;
      },
      5000,
      'woken event',
    );
    expect(log.find((e) => e.action === 'tenant.wake')?.message).toBe(
      `waking up by moving the primary from ${small.options.hostId} to ${big.options.hostId} (3 client(s) waiting at router:r1): its host ${small.options.hostId} has no room left for it: short of memory (needs 1Gi, 0Mi free)`,
    );
    const woken = log.find((e) => e.action === 'tenant.woken');
    expect(woken?.details).toMatchObject({ how: 'move', from: small.options.hostId, to: big.options.hostId });
    expect(woken?.message).toMatch(
      new RegExp(`^woken in \\d+ ms \\(3 client\\(s\\) waiting\\); moved from ${small.options.hostId} to ${big.options.hostId}: `),
    );
    expect(log.map((e) => e.action)).toEqual(expect.arrayContaining(['move.started', 'move.switched', 'move.completed']));
  });

  it('refuses to suspend what cannot be suspended', async () => {
    const err = await h.operator.suspendTenant({ id: 'nobody' }).catch((e: unknown) => e);
    expect((err as RpcError).code).toBe(Code.NOT_FOUND);
  });
});

describe('REST', () => {
  const rest = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://${h.coordinator.httpAddress}${path}`, { method: 'POST', headers: { authorization: `Bearer ${h.adminToken}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('suspends and resumes with the errors gRPC gives', async () => {
    const a = await agent({ labels: { host: 'rest' }, capacity: { cpuMillis: 2000, memoryMib: 2048, diskMib: 204800 } });
    await active('restful-nap', 60, a);
    const suspended = await rest('/v1/postgres/instances/restful-nap/suspend');
    expect(suspended.status).toBe(200);
    expect(suspended.body).toMatchObject({ name: 'restful-nap', status: 'SUSPENDED' });
    expect(suspended.body.status_reason).toMatch(/^suspended at .*\(by /);
    expect(suspended.body.suspended_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(suspended.body.status_reason).toContain(`suspended at ${String(suspended.body.suspended_at)}`);
    const viaGrpc = (await h.operator.getTenant({ id: 'restful-nap' })).tenant;
    expect(viaGrpc?.suspendedAt).toBeDefined();
    // Suspending again changes nothing; resuming wakes it.
    expect((await rest('/v1/postgres/instances/restful-nap/suspend')).status).toBe(200);
    const resumed = await rest('/v1/postgres/instances/restful-nap/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('IN_PROGRESS');
    expect(resumed.body.suspended_at).toBeNull();
    await eventually(async () => (await status('restful-nap')) === TenantStatus.ACTIVE, 5000, 'restful-nap ACTIVE');

    const missing = await rest('/v1/postgres/instances/nobody/suspend');
    expect(missing.status).toBe(404);
    expect((await rest('/v1/postgres/instances/nobody/resume')).status).toBe(404);
    // A host that gave the room away: 409 with the reason, as gRPC's FAILED_PRECONDITION.
    await rest('/v1/postgres/instances/restful-nap/suspend');
    await h.operator.createTenant({ id: 'rest-squatter', spec: { resources: { memoryMib: 2048 }, placement: { host: 'rest' } } });
    await eventually(async () => (await status('rest-squatter')) === TenantStatus.ACTIVE, 10_000, 'rest-squatter ACTIVE');
    const refused = await rest('/v1/postgres/instances/restful-nap/resume');
    expect(refused.status).toBe(409);
    expect(JSON.stringify(refused.body)).toMatch(/cannot be woken: its host s\d+ has no room left for it/);
    expect(JSON.stringify(refused.body)).toMatch(/WAKE_NO_ROOM/);
  });
});

describe('replicated tenants', () => {
  it('suspends every member together when idle, and wakes the primary first, then its replica', async () => {
    const a1 = await agent({ labels: { host: 'pair' } });
    const a2 = await agent({ labels: { host: 'pair' } });
    await h.operator.createTenant({ id: 'twins', spec: { nodes: 2, idleSuspendSeconds: 1, externalAccess: true, placement: { host: 'pair' } } });
    await eventually(async () => (await status('twins')) === TenantStatus.SUSPENDED, 8000, 'twins SUSPENDED while idle');
    const got = await h.operator.getTenant({ id: 'twins' });
    expect(got.tenant?.statusReason).toMatch(/; the primary and its 1 replica stopped$/);
    expect(a1.instances.get('twins')?.runState).toBe(RunState.STOPPED);
    expect(a2.instances.get('twins')?.runState).toBe(RunState.STOPPED);
    const suspended = await eventually(
      async () => (await h.operator.getTenant({ id: 'twins' })).recentEvents.find((e) => e.action === 'tenant.suspended'),
      3000,
      'suspended event',
    );
    expect(suspended.message).toMatch(/^suspended: all 2 instances stopped in \d+ ms$/);
    // Nothing fails over, nor is replaced, while every member is stopped on purpose.
    await new Promise((r) => setTimeout(r, 500));
    expect(await status('twins')).toBe(TenantStatus.SUSPENDED);
    const primaryHost = got.tenant?.placements.find((p) => p.role === InstanceRole.PRIMARY)?.hostId;
    const [primary, replica] = primaryHost === a1.options.hostId ? [a1, a2] : [a2, a1];
    const sentBefore = replica.desired.length;
    await wakeBurstRefilled();
    const answer = await h.routes.wakeTenant({ tenantId: 'twins', routerId: 'r1', waitingClients: 1 });
    expect(answer.outcome).toBe(WakeOutcome.STARTED);
    await eventually(async () => (await h.operator.getTenant({ id: 'twins' })).route?.state === RouteState.ROUTABLE, 5000, 'twins routable');
    await eventually(async () => replica.instances.get('twins')?.runState === RunState.RUNNING, 5000, 'replica told to run');
    expect(primary.instances.get('twins')?.runState).toBe(RunState.RUNNING);
    // The replica was told to stay stopped at the wake's revision, and to run once the primary ran.
    const toReplica = replica.desired
      .slice(sentBefore)
      .flatMap((d) => d.instances)
      .filter((i) => i.tenantId === 'twins')
      .map((i) => i.runState);
    expect(toReplica[0]).toBe(RunState.STOPPED);
    expect(toReplica.at(-1)).toBe(RunState.RUNNING);
    const events = (await h.operator.getTenant({ id: 'twins' })).recentEvents;
    expect(events.find((e) => e.action === 'tenant.wake')?.message).toMatch(/the primary starts first, then its 1 replica$/);
    // A router client keeps it awake from now on.
    routerClients.set('twins', 1);
  });
});

describe('wake by a move, through a restart and a rollback', () => {
  // A switch whose old primary never answers rolls back after this long (its checkpoint before the
  // switch is not waited for longer either).
  const SWITCH_FLAGS = [...FLAGS, '--switchover-timeout', '3000ms', '--move-checkpoint-timeout', '1000ms'];

  beforeAll(async () => {
    await h.stop();
    h = await startHarness(SWITCH_FLAGS);
  });

  /** The tenant suspended on a small host whose room a squatter then took: its wake moves it to the big host. */
  async function evicted(id: string, smallOptions: Partial<ConstructorParameters<typeof FakeAgent>[0]> = {}): Promise<{ small: FakeAgent; big: FakeAgent }> {
    const small = await agent({ labels: { host: id, size: `small-${id}` }, capacity: { cpuMillis: 2000, memoryMib: 2048, diskMib: 204800 }, ...smallOptions });
    const big = await agent({ labels: { host: id } });
    await active(id, 60, big);
    expect((await h.operator.getTenant({ id })).tenant?.placements.map((p) => p.hostId)).toEqual([small.options.hostId]);
    await h.operator.suspendTenant({ id });
    await eventually(async () => small.instances.get(id)?.runState === RunState.STOPPED, 5000, `${id} stopped`);
    await h.operator.createTenant({ id: `${id}-squatter`, spec: { resources: { memoryMib: 2048 }, placement: { size: `small-${id}` } } });
    await eventually(async () => (await status(`${id}-squatter`)) === TenantStatus.ACTIVE, 10_000, `${id}-squatter ACTIVE`);
    return { small, big };
  }

  /** A new agent process of a host that was there before the restart (same id, address and labels). */
  async function rejoin(old: FakeAgent, unhealthy: string[] = []): Promise<FakeAgent> {
    const a = new FakeAgent({ ...old.options, coordinator: h.coordinator.grpcAddress });
    for (const id of unhealthy) a.unhealthy.add(id);
    agents.push(a);
    await a.connect();
    return a;
  }

  it("takes a wake by a move back from its row after a coordinator restart and completes it, the wake's reason kept", async () => {
    const { small, big } = await evicted('phoenix');
    big.unhealthy.add('phoenix');
    await wakeBurstRefilled();
    const answer = await h.routes.wakeTenant({ tenantId: 'phoenix', routerId: 'r1', waitingClients: 2 });
    expect(answer.outcome, answer.message).toBe(WakeOutcome.STARTED);
    await eventually(
      async () => small.instances.get('phoenix')?.runState === RunState.RUNNING && big.instances.has('phoenix'),
      5000,
      'source and copy asked for',
    );
    const row = await h.coordinator.ctx.store.read.moves.get('phoenix');
    expect(row).toMatchObject({ principal: 'router:r1', progress: { phase: 'copying', fromHostId: small.options.hostId, toHostId: big.options.hostId } });
    expect(row?.wake).toMatch(new RegExp(`^its host ${small.options.hostId} has no room left for it: short of memory`));

    // The coordinator restarts mid-copy; both hosts' agents come back (new processes, same hosts).
    const dataDir = h.dataDir;
    await h.stop();
    for (const a of agents.splice(0)) await a.close();
    h = await startHarness(SWITCH_FLAGS, dataDir);
    const small2 = await rejoin(small);
    small2.fenceLsn = '0/1000000';
    const big2 = await rejoin(big, ['phoenix']);
    const resumed = await eventually(
      async () => (await h.operator.listEvents({ tenantId: 'phoenix', limit: 200 })).events.find((e) => e.action === 'move.resumed'),
      10_000,
      'move.resumed',
    );
    expect(resumed.message).toContain(`(copying): copying to ${big.options.hostId} goes on`);
    const during = await h.operator.getTenant({ id: 'phoenix' });
    expect(during.tenant?.status).toBe(TenantStatus.MOVING);
    expect(during.tenant?.statusReason).toMatch(
      new RegExp(`^waking up on ${big.options.hostId} \\(its host ${small.options.hostId} has no room left for it: `),
    );
    expect(during.route?.state).toBe(RouteState.SUSPENDED);
    // A router asking again hears it is waking: no second move.
    expect((await h.routes.wakeTenant({ tenantId: 'phoenix', routerId: 'r1', waitingClients: 1 })).outcome).toBe(WakeOutcome.IN_PROGRESS);

    big2.unhealthy.delete('phoenix');
    await big2.reportAll();
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'phoenix' });
        return t.tenant?.status === TenantStatus.ACTIVE && t.route?.state === RouteState.ROUTABLE && t.route.hostId === big.options.hostId;
      },
      15_000,
      'phoenix ACTIVE on the big host',
    );
    expect((await h.operator.getTenant({ id: 'phoenix' })).tenant?.placements.map((p) => p.hostId)).toEqual([big.options.hostId]);
    await eventually(async () => !small2.instances.has('phoenix'), 5000, 'old instance deleted');
    expect(await h.coordinator.ctx.store.read.moves.get('phoenix')).toBeUndefined();
    // Timed from the wake's start before the restart, with the move it took.
    const log = await eventually(
      async () => {
        const e = (await h.operator.listEvents({ tenantId: 'phoenix', limit: 200 })).events;
        return e.some((x) => x.action === 'tenant.woken') ? e : undefined;
      },
      5000,
      'woken event',
    );
    expect(log.find((e) => e.action === 'tenant.woken')?.details).toMatchObject({ how: 'move', from: small.options.hostId, to: big.options.hostId });
    expect(log.map((e) => e.action)).toEqual(expect.arrayContaining(['move.started', 'move.resumed', 'move.switched', 'move.completed']));
    expect(log.filter((e) => e.action === 'move.started')).toHaveLength(1);
  }, 60_000);

  it('holds the clients of a wake by a move whose switch rolls back until the tenant sleeps again on its own host', async () => {
    // The old primary's agent never answers its Fence: the switch rolls back on its timeout.
    const { small, big } = await evicted('icarus', { answerCommands: false });
    const routes: string[] = [];
    const unsubscribe = h.coordinator.ctx.store.subscribe((commit) => {
      for (const c of commit.routeChanges) if (c.tenantId === 'icarus') routes.push(`${c.route?.state ?? 'GONE'} on ${c.route?.hostId ?? ''}`);
    });
    try {
      await wakeBurstRefilled();
      const answer = await h.routes.wakeTenant({ tenantId: 'icarus', routerId: 'r1', waitingClients: 1 });
      expect(answer.outcome, answer.message).toBe(WakeOutcome.STARTED);
      const got = await eventually(
        async () => {
          const t = await h.operator.getTenant({ id: 'icarus' });
          return t.tenant?.status === TenantStatus.SUSPENDED && t.tenant.placements.length === 1 ? t : undefined;
        },
        30_000,
        'icarus SUSPENDED again',
      ).catch(async (err: unknown) => {
        const t = await h.operator.getTenant({ id: 'icarus' });
        const e = (await h.operator.listEvents({ tenantId: 'icarus', limit: 200 })).events.map((x) => `${x.action}: ${x.message}`);
        throw new Error(`${String(err)}; ${t.tenant?.status} ${t.tenant?.statusReason}; routes ${routes.join(', ')}; events ${e.join(' | ')}`);
      });
      expect(got.tenant?.placements.map((p) => p.hostId)).toEqual([small.options.hostId]);
      expect(got.tenant?.statusReason).toContain(
        `its wake by a move to ${big.options.hostId} failed: the switch to ${big.options.hostId} failed and was rolled back`,
      );
      expect(got.route?.state).toBe(RouteState.SUSPENDED);
      // From the wake to the sleep the routers only ever held the clients: never routed to the old host.
      expect(routes).toContain(`SWITCHING on ${small.options.hostId}`);
      expect(routes.filter((r) => !r.startsWith('SUSPENDED') && !r.startsWith('SWITCHING'))).toEqual([]);
      await eventually(async () => small.instances.get('icarus')?.runState === RunState.STOPPED, 5000, 'old instance stopped again');
      expect(await h.coordinator.ctx.store.read.moves.get('icarus')).toBeUndefined();
    } finally {
      unsubscribe();
    }
  }, 60_000);
});
