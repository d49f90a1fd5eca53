import { describe, expect, it } from 'vitest';
import { DrainRunner, MOVE_TRIES_PER_TICK, type DrainPlan, type DrainPlanner, type MoveStarter } from './drain-runner.js';

/** A move executor whose moves finish when the test says; a finished move takes the tenant off the fleet's host. */
class FakeMoves implements MoveStarter {
  readonly started: string[] = [];
  /** Every start asked for, refused or not. */
  tries = 0;
  readonly running = new Set<string>();
  readonly outcomes = new Map<string, { ok: boolean; reason: string }>();
  refuse = new Map<string, { code: string; message: string }>();

  constructor(private readonly fleet: FakeFleet) {}

  start(tenantId: string, toHostId: string): Promise<void> {
    this.tries += 1;
    const r = this.refuse.get(tenantId);
    if (r) return Promise.reject(Object.assign(new Error(r.message), { code: r.code }));
    this.started.push(`${tenantId}>${toHostId}`);
    this.running.add(tenantId);
    return Promise.resolve();
  }
  inFlight(tenantId: string): boolean {
    return this.running.has(tenantId);
  }
  outcome(tenantId: string): { ok: boolean; reason: string } | undefined {
    return this.outcomes.get(tenantId);
  }
  finish(tenantId: string, ok: boolean, reason = ''): void {
    this.running.delete(tenantId);
    this.outcomes.set(tenantId, { ok, reason });
    if (ok) for (const tenants of this.fleet.onHost.values()) tenants.delete(tenantId);
  }
}

/** The store's side: what each host holds, which hosts are draining, and where a plan sends a tenant. */
class FakeFleet implements DrainPlanner {
  readonly onHost = new Map<string, Set<string>>();
  readonly draining = (): Promise<string[]> => Promise.resolve([...this.drainingHosts]);
  readonly drainingHosts = new Set<string>();
  /** The target the next plan gives a tenant (default "b"); undefined in `noRoom` blocks it. */
  target = new Map<string, string>();
  noRoom = new Set<string>();
  plans = 0;

  hold(hostId: string, ...tenants: string[]): void {
    this.onHost.set(hostId, new Set(tenants));
    this.drainingHosts.add(hostId);
  }
  plan(hostId: string, skip: ReadonlySet<string>): Promise<DrainPlan> {
    this.plans += 1;
    const plan: DrainPlan = { queue: [], blocked: [], moved: [] };
    for (const tenantId of this.onHost.get(hostId) ?? []) {
      if (skip.has(tenantId)) continue;
      if (this.noRoom.has(tenantId)) plan.blocked.push({ tenantId, reason: 'no host has room' });
      else plan.queue.push({ tenantId, toHostId: this.target.get(tenantId) ?? 'b', memberHostId: '' });
    }
    return Promise.resolve(plan);
  }
}

function setup(...tenants: string[]) {
  const fleet = new FakeFleet();
  fleet.hold('a', ...tenants);
  const moves = new FakeMoves(fleet);
  let now = 1_000_000;
  const drains = new DrainRunner(moves, fleet, 2, () => now);
  return { fleet, moves, drains, advance: (ms: number) => (now += ms) };
}

const initial = async (fleet: FakeFleet): Promise<DrainPlan> => await fleet.plan('a', new Set());

describe('DrainRunner', () => {
  it('runs at most `parallel` moves at a time and counts what moved', async () => {
    const { fleet, moves, drains } = setup('t1', 't2', 't3');
    drains.start('a', { ...(await initial(fleet)), moved: ['never-ran'] }, 2, 'op');
    await drains.tick();
    expect(moves.started).toEqual(['t1>b', 't2>b']);
    expect(drains.progress('a')).toMatchObject({ total: 4, moved: 1, moving: 2, blocked: 0 });
    moves.finish('t1', true);
    await drains.tick();
    expect(moves.started).toEqual(['t1>b', 't2>b', 't3>b']);
    moves.finish('t2', true);
    moves.finish('t3', true);
    await drains.tick();
    expect(drains.progress('a')).toEqual({ total: 4, moved: 4, moving: 0, blocked: 0, blockedTenants: [] });
  });

  it('plans a failed move again against the fleet as it is then, and gives up after the third failure', async () => {
    const { fleet, moves, drains } = setup('t1');
    drains.start('a', await initial(fleet), 1, 'op');
    await drains.tick();
    fleet.target.set('t1', 'c');
    moves.finish('t1', false, 'target died');
    await drains.tick();
    expect(moves.started).toEqual(['t1>b', 't1>c']);
    moves.finish('t1', false, 'target died');
    await drains.tick();
    moves.finish('t1', false, 'copy timed out');
    await drains.tick();
    expect(moves.started).toHaveLength(3);
    expect(drains.progress('a')).toEqual({
      total: 1,
      moved: 0,
      moving: 0,
      blocked: 1,
      blockedTenants: [{ tenantId: 't1', reason: 'the move failed: copy timed out' }],
    });
    // Given up on: later checks of the host leave it alone.
    await drains.tick();
    expect(moves.started).toHaveLength(3);
  });

  it('plans again when the target refuses (full, cordoned, gone) instead of giving up', async () => {
    const { fleet, moves, drains } = setup('t1');
    drains.start('a', await initial(fleet), 1, 'op');
    moves.refuse.set('t1', { code: 'TARGET_FULL', message: 'host "b" cannot take tenant "t1"' });
    await drains.tick();
    expect(drains.progress('a')).toMatchObject({ total: 1, moving: 0, blocked: 0 });
    moves.refuse.delete('t1');
    fleet.target.set('t1', 'c');
    await drains.tick();
    expect(moves.started).toEqual(['t1>c']);
  });

  it('waits for a busy tenant or a reconnecting target, then counts a long wait as a failure', async () => {
    const { fleet, moves, drains, advance } = setup('busy', 'far');
    drains.start('a', await initial(fleet), 2, 'op');
    moves.refuse.set('busy', { code: 'TENANT_NOT_ACTIVE', message: 'tenant "busy" is FAILING_OVER' });
    moves.refuse.set('far', { code: 'TARGET_NOT_READY', message: 'host "b" is not connected' });
    await drains.tick();
    advance(60_000);
    await drains.tick();
    expect(drains.progress('a')).toMatchObject({ total: 2, moving: 0, blocked: 0 });
    moves.refuse.delete('far');
    await drains.tick();
    expect(moves.started).toEqual(['far>b']);
    advance(5 * 60_000);
    await drains.tick();
    await drains.tick();
    // The busy tenant's wait ran out: one failure, planned again (still refused: waiting anew).
    expect(fleet.plans).toBeGreaterThan(1);
    expect(drains.progress('a')).toMatchObject({ blocked: 0 });
  });

  it('tries a bounded number of queued moves per tick when the targets refuse to wait (a restart: none reconnected yet)', async () => {
    const tenants = Array.from({ length: 100 }, (_, i) => `t${i}`);
    const { fleet, moves, drains, advance } = setup(...tenants);
    for (const t of tenants) moves.refuse.set(t, { code: 'TARGET_NOT_READY', message: 'b is not connected' });
    drains.start('a', await initial(fleet), 2, 'op');
    await drains.tick();
    expect(moves.tries).toBe(MOVE_TRIES_PER_TICK);
    // The rest are tried in later ticks, in turn; nothing was given up on.
    advance(1000);
    await drains.tick();
    expect(moves.tries).toBe(2 * MOVE_TRIES_PER_TICK);
    moves.refuse.clear();
    advance(1000);
    await drains.tick();
    expect(moves.started).toHaveLength(2);
    expect(drains.progress('a')).toMatchObject({ total: 100, moving: 2, blocked: 0 });
  });

  it('finds what is left on the host when nothing is queued, and counts a tenant deleted meanwhile as gone', async () => {
    const { fleet, moves, drains, advance } = setup('t1', 'gone');
    drains.start('a', await initial(fleet), 2, 'op');
    moves.refuse.set('gone', { code: 'TENANT_NOT_FOUND', message: 'tenant "gone" does not exist' });
    await drains.tick();
    moves.finish('t1', true);
    // An instance the first plan did not see (it arrived on the host later).
    fleet.onHost.get('a')?.add('late');
    advance(5_000);
    await drains.tick();
    expect(moves.started).toEqual(['t1>b', 'late>b']);
    moves.finish('late', true);
    await drains.tick();
    expect(drains.progress('a')).toMatchObject({ total: 3, moved: 3, moving: 0, blocked: 0 });
  });

  it('reports what no host can take', async () => {
    const { fleet, drains } = setup('huge');
    fleet.noRoom.add('huge');
    drains.start('a', await initial(fleet), 1, 'op');
    await drains.tick();
    expect(drains.progress('a')?.blockedTenants).toEqual([{ tenantId: 'huge', reason: 'no host has room' }]);
  });

  it('takes up a drain flagged in the store that no job here runs (a restarted coordinator), and drops one no longer flagged', async () => {
    const { fleet, moves, drains, advance } = setup('t1', 't2');
    await drains.tick();
    expect(moves.started).toEqual(['t1>b', 't2>b']);
    expect(drains.progress('a')).toMatchObject({ total: 2, moving: 2 });
    fleet.drainingHosts.delete('a');
    advance(5_000);
    await drains.tick();
    expect(drains.progress('a')).toBeUndefined();
  });
});
