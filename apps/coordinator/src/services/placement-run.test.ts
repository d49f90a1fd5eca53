/** The sliced backlog walk on a real store (the reconcile timer is idle: the test drives it). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlacementRun } from './placement-run.js';
import { aHost, aTenant } from '../testing/records.js';
import { eventually, startHarness, type Harness } from '../testing/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness(['--reconcile-interval', '1h', '--max-creating-per-host', '2']);
});
afterAll(async () => {
  await h?.stop();
});

describe('PlacementRun', () => {
  it('places the backlog a page at a time within capacity, and says "unplaced" once per tenant', async () => {
    const ctx = h.coordinator.ctx;
    const r = aTenant('x').spec.resources;
    // Room for exactly five tenants per host by memory (memory is never overcommitted).
    const capacity = { cpuMillis: r.cpuMillis * 5, memoryMib: r.memoryMib * 5, diskMib: r.diskMib * 5 };
    await ctx.store.transaction((tx) => tx.hosts.put(aHost('pr1', { capacity, labels: { zone: 'a' } })));
    await ctx.store.transaction((tx) => tx.hosts.put(aHost('pr2', { capacity, labels: { zone: 'b' } })));
    await ctx.store.transaction(async (tx) => {
      for (let i = 0; i < 12; i++) await tx.tenants.insert(aTenant(`pr-${String(i).padStart(2, '0')}`, { createdAt: 5000 + i }));
    });
    const run = new PlacementRun(ctx);
    const pages: number[] = [];
    for (let took = await run.step(4); took > 0; took = await run.step(4)) pages.push(took);
    expect(pages).toEqual([4, 4, 4]);

    const allocations = await ctx.store.read.placements.allocations();
    expect(allocations.get('pr1')?.instances).toBe(5);
    expect(allocations.get('pr2')?.instances).toBe(5);
    for (const id of ['pr1', 'pr2']) expect(allocations.get(id)!.memoryMib).toBeLessThanOrEqual(capacity.memoryMib);
    // Oldest first: the two newest wait.
    const waiting = (await ctx.store.read.tenants.listWaiting(100)).map((t) => t.id);
    expect(waiting).toEqual(['pr-10', 'pr-11']);
    expect((await ctx.store.read.tenants.get('pr-11'))?.statusReason).toMatch(/^waiting for a host/);

    // Another walk finds the same two still waiting: no second "unplaced" event.
    run.restart();
    while ((await run.step(4)) > 0);
    const unplacedEvents = (await ctx.store.read.events.list({ tenantId: 'pr-11', limit: 50 })).filter((e) => e.action === 'scheduler.unplaced');
    expect(unplacedEvents).toHaveLength(1);

    // Capacity freed by someone else is seen at once (the cached allocation is invalidated).
    await ctx.store.transaction((tx) => tx.tenants.delete('pr-00'));
    run.restart();
    while ((await run.step(4)) > 0);
    expect((await ctx.store.read.tenants.listWaiting(100)).map((t) => t.id)).toEqual(['pr-11']);
    // Let the hub's pending flush run before the store closes.
    await new Promise((resolve) => setImmediate(resolve));
  });

  it('shares a burst of creates between hosts by the instances each is still creating, then bin-packs again', async () => {
    const ctx = h.coordinator.ctx;
    // Tenants an earlier test left waiting would fit on these hosts too.
    for (const t of await ctx.store.read.tenants.listWaiting(1000)) await ctx.store.transaction((tx) => tx.tenants.delete(t.id));
    const pool = { pool: 'burst' };
    for (const id of ['bu1', 'bu2', 'bu3']) await ctx.store.transaction((tx) => tx.hosts.put(aHost(id, { labels: { ...pool, zone: id } })));
    const burst = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `bu-${String(from + i).padStart(2, '0')}`);
    const insert = async (ids: string[], createdAt: number): Promise<void> =>
      await ctx.store.transaction(async (tx) => {
        for (const [i, id] of ids.entries()) {
          const t = aTenant(id, { createdAt: createdAt + i });
          await tx.tenants.insert({ ...t, spec: { ...t.spec, placement: pool } });
        }
      });
    const hostOf = async (id: string): Promise<string | undefined> => (await ctx.store.read.placements.list({ tenantId: id }))[0]?.hostId;
    const run = new PlacementRun(ctx);
    await insert(burst(0, 7), 9000);
    while ((await run.step(100)) > 0);
    // --max-creating-per-host 2: two each, then on in chunks of two from the least busy level.
    const counts = new Map<string, number>();
    for (const id of burst(0, 7)) counts.set((await hostOf(id)) ?? '', (counts.get((await hostOf(id)) ?? '') ?? 0) + 1);
    expect([...counts.values()].sort()).toEqual([2, 2, 3]);

    // Once created, the hosts count by what they hold again: the fullest one takes the next tenants.
    await ctx.store.transaction(async (tx) => {
      for (const p of (await tx.placements.list()).filter((p) => p.hostId.startsWith('bu')))
        await tx.placements.update({ ...p, realization: 'REALIZED', realizedOnce: true });
    });
    const held = [...(await ctx.store.read.placements.allocations())]
      .filter(([id]) => id.startsWith('bu'))
      .sort(([a, x], [b, y]) => y.instances - x.instances || (a < b ? -1 : 1));
    const fullest = held[0]?.[0];
    await insert(burst(7, 2), 9100);
    run.restart();
    while ((await run.step(100)) > 0);
    expect([await hostOf('bu-07'), await hostOf('bu-08')]).toEqual([fullest, fullest]);
    await new Promise((resolve) => setImmediate(resolve));
  });
});

describe('placement at create', () => {
  it('places a created tenant at once, without waiting for the reconcile tick (1 h here)', async () => {
    const ctx = h.coordinator.ctx;
    for (const t of await ctx.store.read.tenants.listWaiting(1000)) await ctx.store.transaction((tx) => tx.tenants.delete(t.id));
    await ctx.store.transaction((tx) => tx.hosts.put(aHost('now1', { labels: { pool: 'now' } })));
    await h.operator.createTenant({ id: 'placed-now', spec: { placement: { pool: 'now' } } });
    const host = await eventually(async () => (await ctx.store.read.placements.list({ tenantId: 'placed-now' }))[0]?.hostId, 2000, 'placement of placed-now');
    expect(host).toBe('now1');
    expect((await ctx.store.read.events.list({ tenantId: 'placed-now', limit: 10 })).map((e) => e.action)).toContain('scheduler.placed');
  });
});

describe('placement passes that read the same waiting tenants', () => {
  it("a create's immediate placement and the backlog walk racing for the same tenants: each placed once, the later pass places none, no conflict", async () => {
    const ctx = h.coordinator.ctx;
    for (const t of await ctx.store.read.tenants.listWaiting(1000)) await ctx.store.transaction((tx) => tx.tenants.delete(t.id));
    for (const id of ['race1', 'race2']) await ctx.store.transaction((tx) => tx.hosts.put(aHost(id, { labels: { pool: 'race', zone: id } })));
    const ids = Array.from({ length: 6 }, (_, i) => `race-${i}`);
    await ctx.store.transaction(async (tx) => {
      for (const [i, id] of ids.entries()) {
        const t = aTenant(id, { createdAt: 20_000 + i });
        await tx.tenants.insert({ ...t, spec: { ...t.spec, placement: { pool: 'race' } } });
      }
    });
    const run = new PlacementRun(ctx);
    // Both read the six as waiting before either commits (what a take-over's backlog walk and the
    // creates arriving meanwhile do): without the check the later pass inserts a second primary.
    const [now, walked] = await Promise.all([run.placeNow(ids), run.step(100).then(() => run.walked.placed)]);
    expect(now + walked).toBe(ids.length);
    expect(Math.min(now, walked)).toBe(0);
    for (const id of ids) expect((await ctx.store.read.placements.list({ tenantId: id })).filter((p) => p.role === 'PRIMARY')).toHaveLength(1);
    expect(await ctx.store.read.tenants.listWaiting(100)).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
  });
});
