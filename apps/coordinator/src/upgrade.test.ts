/**
 * Major upgrades against a real coordinator with fake agents: h1 runs PostgreSQL 15, h2 runs 18.
 * The new instance goes to h2 from the upgrade's row (target major, logical replication workers);
 * the steps are sent in order; the switch holds the route and sends the source its roles with
 * login off; the placement then moves to h2 with the tenant's major, the subscriptions are dropped
 * and the old instance stops and is kept; a rollback starts it, holds the route, blocks the new
 * instance's writers, gives the placement back and cleans the old instance. Refusals list every reason; a failed copy abandons and cleans.
 */
import { RouteState, RunState, TenantStatus, UpgradeSource_Step, UpgradeTarget_Step, type Command, type DesiredInstances } from '@pgs/proto';
import { Code, RpcError } from '@pgs/rpc';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeAgent, upgradeDefaultAnswer, type UpgradeAnswer } from './testing/fake-agent.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

let h: Harness;
const agents: FakeAgent[] = [];
const major = (m: string, tools: boolean) => ({ major: m, serverVersion: `${m}.1`, pgBasebackup: tools, pgRewind: tools, pgbackrest: tools, pgDump: tools });

async function agent(
  hostId: string,
  majors: ReturnType<typeof major>[],
  answer?: (c: Command) => UpgradeAnswer | 'hang' | Promise<UpgradeAnswer | 'hang'>,
  capacity?: { cpuMillis: number; memoryMib: number; diskMib: number },
): Promise<FakeAgent> {
  const a = new FakeAgent({
    hostId,
    address: `127.0.0.${hostId === 'h1' ? 61 : 62}`,
    coordinator: h.coordinator.grpcAddress,
    autoRealize: true,
    postgresMajors: majors,
    ...(answer ? { upgradeAnswer: answer } : {}),
    ...(capacity ? { capacity } : {}),
  });
  agents.push(a);
  await a.connect();
  return a;
}

/** The last desired instance of `tenantId` an agent got (undefined: never, or removed since). */
function lastSpec(a: FakeAgent, tenantId: string): DesiredInstances['instances'][number] | undefined {
  for (let i = a.desired.length - 1; i >= 0; i--) {
    const d = a.desired[i] as DesiredInstances;
    if (d.removedTenantIds.includes(tenantId)) return undefined;
    const spec = d.instances.find((x) => x.tenantId === tenantId);
    if (spec) return spec;
  }
  return undefined;
}

function steps(a: FakeAgent, tenantId: string): string[] {
  return [...a.received(tenantId, 'upgradeSource'), ...a.received(tenantId, 'upgradeTarget')]
    .sort((x, y) => x.at - y.at)
    .map((c) => `${c.command.action.case}:${String((c.command.action.value as { step: number }).step)}`);
}

/**
 * `tenant upgrade --wait` that gives up after `limitMs` saying where the upgrade stands (its phase
 * and the coordinator's last reason), rather than running into the test's own limit unexplained.
 */
async function upgradeWaited(id: string, action: { case: 'toMajor'; value: number } | { case: 'rollback'; value: true }, limitMs = 30_000) {
  try {
    return await h.operator.upgradeTenant({ id, action, wait: true }, { timeoutMs: limitMs });
  } catch (err) {
    if (!(err instanceof RpcError) || err.code !== Code.DEADLINE_EXCEEDED) throw err;
    const u = (await h.operator.getTenant({ id })).tenant?.upgrade;
    const what = action.case === 'toMajor' ? `the upgrade of ${id} to ${action.value}` : `the rollback of ${id}`;
    throw new Error(`${what} did not end within ${limitMs / 1000} s; it is ${u ? `${u.phase}: ${u.reason}` : 'over (no upgrade row)'}`);
  }
}

async function active(id: string, resources?: { cpuMillis: number; memoryMib: number; diskMib: number }): Promise<void> {
  await h.operator.createTenant({ id, spec: { version: '15', externalAccess: true, ...(resources ? { resources } : {}) } });
  await h.operator.createUser({ tenantId: id, name: 'app', password: 'app-secret-123' });
  await eventually(async () => (await h.operator.getTenant({ id })).tenant?.status === TenantStatus.ACTIVE, 20_000, `${id} ACTIVE`);
}

beforeAll(async () => {
  h = await startHarness(['--versions', '15=img:15,18=img:18']);
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
});
afterAll(async () => {
  await h?.stop();
});

describe('major upgrade', () => {
  it('builds the new instance from the row, holds the route with login off at the switch, moves the placement, keeps and rolls back', async () => {
    type Seen = Promise<{ state: RouteState | undefined; hostId: string | undefined }>;
    const seen: { route?: Seen; drop?: Seen; oldAtDrop?: RunState; rollbackBlock?: Seen; oldAtRollback?: ReturnType<typeof lastSpec> } = {};
    const routeNow = (id: string): Seen => h.operator.getTenant({ id }).then((t) => ({ state: t.route?.state, hostId: t.route?.hostId }));
    const a1 = await agent('h1', [major('15', true)]);
    const a2 = await agent('h2', [major('18', false)], (c) => {
      // At the catch-up the routers must be holding the tenant's clients.
      if (c.action.case === 'upgradeTarget' && c.action.value.step === 3) seen.route = routeNow(c.tenantId);
      // The subscriptions are dropped once the route moved, while the old instance still runs (their slots live there).
      if (c.action.case === 'upgradeTarget' && c.action.value.step === 4) {
        seen.drop = routeNow(c.tenantId);
        seen.oldAtDrop = lastSpec(a1, c.tenantId)?.runState;
      }
      // A rollback blocks the new instance's writers while the routers hold the clients, the old instance already running.
      if (c.action.case === 'upgradeSource' && c.action.value.step === 3) {
        seen.rollbackBlock = routeNow(c.tenantId);
        seen.oldAtRollback = lastSpec(a1, c.tenantId);
      }
      return upgradeDefaultAnswer(c);
    });
    await active('upa');
    const res = await upgradeWaited('upa', { case: 'toMajor', value: 18 });
    expect(res.upgrade).toMatchObject({ fromMajor: 15, toMajor: 18, fromHostId: 'h1', toHostId: 'h2' });
    expect((await seen.route)?.state).toBe(RouteState.SWITCHING);
    // Source steps on h1, target steps on h2, in decideUpgrade's order; the subscriptions go after the switch.
    expect(steps(a1, 'upa')).toEqual(['upgradeSource:1', 'upgradeSource:2', 'upgradeSource:3']);
    await eventually(() => steps(a2, 'upa').length === 4, 15_000, 'the subscriptions dropped');
    expect(steps(a2, 'upa')).toEqual(['upgradeTarget:1', 'upgradeTarget:2', 'upgradeTarget:3', 'upgradeTarget:4']);
    expect(await seen.drop).toEqual({ state: RouteState.ROUTABLE, hostId: 'h2' });
    expect(seen.oldAtDrop).toBe(RunState.RUNNING);
    // The source got its roles with login off while the switch held (the agent's role sync keeps them out).
    const sourceSpecs = a1.desired.flatMap((d) => (d as DesiredInstances).instances.filter((x) => x.tenantId === 'upa'));
    expect(sourceSpecs.some((s) => s.roles.some((r) => r.name === 'app' && !r.login))).toBe(true);
    // The new instance ran 18 with logical replication workers before the switch.
    const newSpecs = a2.desired.flatMap((d) => (d as DesiredInstances).instances.filter((x) => x.tenantId === 'upa'));
    expect(newSpecs[0]).toMatchObject({ version: '18', upgradeSubscriber: true, runState: RunState.RUNNING });
    expect(newSpecs[0]?.backup).toBeUndefined();

    // Switched: the placement is h2, the tenant's major 18, the route serves there; h1's instance stops and is kept.
    const t = await h.operator.getTenant({ id: 'upa' });
    expect(t.tenant?.spec?.version).toBe('18');
    expect(t.tenant?.placements.map((p) => p.hostId)).toEqual(['h2']);
    await eventually(async () => (await h.operator.getTenant({ id: 'upa' })).route?.state === RouteState.ROUTABLE, 15_000, 'route ROUTABLE on h2');
    expect((await h.operator.getTenant({ id: 'upa' })).route?.hostId).toBe('h2');
    await eventually(async () => (await h.operator.getTenant({ id: 'upa' })).tenant?.upgrade?.phase === 'kept', 15_000, 'upgrade kept');
    expect(lastSpec(a1, 'upa')).toMatchObject({ version: '15', runState: RunState.STOPPED });
    expect(lastSpec(a2, 'upa')?.upgradeSubscriber).toBeFalsy();

    // A second upgrade is refused while the old instance is kept.
    await expect(h.operator.upgradeTenant({ id: 'upa', action: { case: 'toMajor', value: 18 } })).rejects.toThrow(/another operation runs on upa/);

    // Rollback: h1 takes the tenant back on 15; h2's instance is deleted.
    const back = await upgradeWaited('upa', { case: 'rollback', value: true });
    expect(back.tenant?.spec?.version).toBe('15');
    expect(back.tenant?.placements.map((p) => p.hostId)).toEqual(['h1']);
    expect(back.tenant?.upgrade).toBeUndefined();
    // The old instance ran with its roles able to log in before the routers held anyone; then the hold, the new instance's writers blocked.
    expect(seen.oldAtRollback).toMatchObject({ version: '15', runState: RunState.RUNNING });
    expect(seen.oldAtRollback?.roles.every((r) => r.login)).toBe(true);
    expect(await seen.rollbackBlock).toEqual({ state: RouteState.SWITCHING, hostId: 'h2' });
    expect(steps(a2, 'upa').at(-1)).toBe('upgradeSource:3');
    // The old instance's side of the upgrade (publications, slots, role) is cleaned.
    expect(steps(a1, 'upa').at(-1)).toBe('upgradeSource:5');
    await eventually(() => lastSpec(a2, 'upa') === undefined, 15_000, "h2's instance removed");
    expect(lastSpec(a1, 'upa')).toMatchObject({ version: '15', runState: RunState.RUNNING });
    await eventually(async () => (await h.operator.getTenant({ id: 'upa' })).route?.state === RouteState.ROUTABLE, 15_000, 'route ROUTABLE on h1');
    const events = (await h.operator.listEvents({ tenantId: 'upa' })).events.map((e) => e.action);
    expect(events).toEqual(expect.arrayContaining(['upgrade.started', 'upgrade.switched', 'upgrade.kept', 'upgrade.rolled_back']));
  }, 90_000);

  it('refuses with every reason at once, and starts nothing', async () => {
    await agent('h1', [major('15', true)], (c) =>
      c.action.case === 'upgradeSource'
        ? { ok: true, upgradeSource: { major: 15, walLevel: 'replica', databases: ['upb'], largeObjects: ['upb: 3'], unloggedTables: ['upb: public.scratch'] } }
        : upgradeDefaultAnswer(c),
    );
    await agent('h2', [major('18', false)]);
    await active('upb');
    const err = await h.operator.upgradeTenant({ id: 'upb', action: { case: 'toMajor', value: 18 } }).then(
      () => undefined,
      (e: unknown) => e as RpcError,
    );
    expect(err?.message).toMatch(/wal_level=replica.*\[WAL_LEVEL\]/);
    expect(err?.message).toMatch(/large objects.*\(upb: 3\).*\[LARGE_OBJECTS\]/);
    expect(err?.message).toMatch(/unlogged tables \(upb: public\.scratch\).*\[UNLOGGED_TABLES\]/);
    expect((await h.operator.getTenant({ id: 'upb' })).tenant?.upgrade).toBeUndefined();
    await expect(h.operator.upgradeTenant({ id: 'upb', action: { case: 'toMajor', value: 14 } })).rejects.toThrow(/must be newer/);
    await expect(h.operator.upgradeTenant({ id: 'upb', action: { case: 'rollback', value: true } })).rejects.toThrow(/no upgrade kept/);
  }, 30_000);

  it('abandons an upgrade whose schema copy fails: the new instance is deleted, the source cleaned, the tenant serves on 15', async () => {
    const a1 = await agent('h1', [major('15', true)]);
    const a2 = await agent('h2', [major('18', false)], (c) =>
      c.action.case === 'upgradeTarget' && c.action.value.step === 1 ? { ok: false, message: 'pg_dump of upc failed: boom' } : upgradeDefaultAnswer(c),
    );
    await active('upc');
    await expect(upgradeWaited('upc', { case: 'toMajor', value: 18 })).rejects.toThrow(/abandoned: copying the schema failed: pg_dump of upc failed: boom/);
    await eventually(() => lastSpec(a2, 'upc') === undefined, 15_000, "h2's instance removed");
    expect(steps(a1, 'upc')).toEqual(['upgradeSource:1', 'upgradeSource:2', 'upgradeSource:5']);
    const t = await h.operator.getTenant({ id: 'upc' });
    expect(t.tenant?.spec?.version).toBe('15');
    expect(t.tenant?.placements.map((p) => p.hostId)).toEqual(['h1']);
    expect(t.tenant?.upgrade).toBeUndefined();
    expect(t.route?.state).toBe(RouteState.ROUTABLE);
  }, 30_000);

  it("keeps what others write while a step runs (an agent's report, an operator's rollback), and takes a rollback asked right after the switch", async () => {
    // h2 reports the new instance realized only while h1 prepares its publications, after the coordinator read the row for that step.
    let releaseDrop = (): void => undefined;
    const dropHeld = new Promise<void>((resolve) => (releaseDrop = resolve));
    const a2 = await agent('h2', [major('18', false)], async (c) => {
      // The subscriptions' drop after the switch waits for the test: the upgrade stays switched, not yet kept.
      if (c.action.case === 'upgradeTarget' && c.action.value.step === UpgradeTarget_Step.ABANDON) await dropHeld;
      return upgradeDefaultAnswer(c);
    });
    a2.options.autoRealize = false;
    const prepareWhileReported = async (c: Command): Promise<UpgradeAnswer> => {
      if (c.action.case === 'upgradeSource' && c.action.value.step === UpgradeSource_Step.PREPARE) {
        const spec = await eventually(() => lastSpec(a2, c.tenantId), 15_000, "h2's spec of the new instance");
        a2.options.autoRealize = true;
        await a2.report([a2.statusOf(c.tenantId, spec.specRevision, 7001)]);
        const realized = async () => ((await h.coordinator.ctx.store.read.upgrades.get(c.tenantId))?.other.realizedRevision ?? 0) > 0;
        await eventually(realized, 15_000, "the new instance's report applied");
      }
      return upgradeDefaultAnswer(c);
    };
    await agent('h1', [major('15', true)], prepareWhileReported);
    await active('upd');
    // Were the row written back as read before the step, the new instance would stay "building" until the copy's deadline.
    const res = await upgradeWaited('upd', { case: 'toMajor', value: 18 });
    expect(res.upgrade?.toHostId).toBe('h2');
    expect(res.tenant?.placements.map((p) => p.hostId)).toEqual(['h2']);
    expect(res.tenant?.placements[0]?.port).toBe(7001);

    // `--rollback` as soon as `--wait` returned: taken while the old instance still stops, done once it is kept.
    const asked = await h.operator.upgradeTenant({ id: 'upd', action: { case: 'rollback', value: true } });
    expect(asked.upgrade?.phase).toBe('switching');
    releaseDrop();
    await eventually(
      async () => {
        const t = await h.operator.getTenant({ id: 'upd' });
        return t.tenant !== undefined && t.tenant.upgrade === undefined && t.tenant.placements.map((p) => p.hostId).join() === 'h1';
      },
      20_000,
      'upd rolled back to h1',
    );
    const events = (await h.operator.listEvents({ tenantId: 'upd' })).events.map((e) => e.action);
    expect(events).toEqual(expect.arrayContaining(['upgrade.switched', 'upgrade.kept', 'upgrade.rolled_back']));
  }, 60_000);

  // Last: its first upgrade stays in its copy (the agent never answers) until the harness stops.
  it('counts the new instance on its host while the upgrade runs, and refuses another upgrade that finds no room, saying why', async () => {
    const size = { cpuMillis: 1000, memoryMib: 600, diskMib: 8192 };
    await agent('h1', [major('15', true)]);
    await agent('h2', [major('18', false)], (c) => (c.action.case === 'upgradeTarget' && c.action.value.step === 1 ? 'hang' : upgradeDefaultAnswer(c)), {
      cpuMillis: 4000,
      memoryMib: 1024,
      diskMib: 20_480,
    });
    await active('upe', size);
    await active('upf', size);
    await h.operator.upgradeTenant({ id: 'upe', action: { case: 'toMajor', value: 18 } });
    // upe's new instance takes 600 of h2's 1024 MiB while upe still runs on h1: upf's cannot fit beside it.
    await expect(h.operator.upgradeTenant({ id: 'upf', action: { case: 'toMajor', value: 18 } })).rejects.toThrow(
      /no host that runs PostgreSQL 18 has room for the new instance.*\(.*\).*\[NO_ROOM\]/,
    );
    expect((await h.operator.getTenant({ id: 'upf' })).tenant?.upgrade).toBeUndefined();
    const events = (await h.operator.listEvents({ tenantId: 'upf' })).events;
    expect(events.find((e) => e.action === 'upgrade.refused')?.message).toMatch(/NO_ROOM/);
  }, 30_000);
});
