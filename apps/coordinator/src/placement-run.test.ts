/** The sliced backlog walk on a real store (the reconcile timer is idle: the test drives it). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlacementRun } from './placement-run.js';
import { aHost, aTenant } from './testing/records.js';
import { eventually, startHarness, type Harness } from './testing/harness.js';

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
    ctx.store.putHost(aHost('pr1', { capacity, labels: { zone: 'a' } }));
    ctx.store.putHost(aHost('pr2', { capacity, labels: { zone: 'b' } }));
    ctx.store.write((tx) => {
      for (let i = 0; i < 12; i++) tx.insertTenant(aTenant(`pr-${String(i).padStart(2, '0')}`, { createdAt: 5000 + i }));
    });
    const run = new PlacementRun(ctx);
    const pages: number[] = [];
    for (let took = run.step(4); took > 0; took = run.step(4)) pages.push(took);
    expect(pages).toEqual([4, 4, 4]);

    const allocations = ctx.store.hostAllocations();
    expect(allocations.get('pr1')?.instances).toBe(5);
    expect(allocations.get('pr2')?.instances).toBe(5);
    for (const id of ['pr1', 'pr2']) expect(allocations.get(id)!.memoryMib).toBeLessThanOrEqual(capacity.memoryMib);
    // Oldest first: the two newest wait.
    const waiting = ctx.store.listWaitingTenants(100).map((t) => t.id);
    expect(waiting).toEqual(['pr-10', 'pr-11']);
    expect(ctx.store.getTenant('pr-11')?.statusReason).toMatch(/^waiting for a host/);

    // Another walk finds the same two still waiting: no second "unplaced" event.
    run.restart();
    while (run.step(4) > 0);
    const unplacedEvents = ctx.store.listEvents({ tenantId: 'pr-11', limit: 50 }).filter((e) => e.action === 'scheduler.unplaced');
    expect(unplacedEvents).toHaveLength(1);

    // Capacity freed by someone else is seen at once (the cached allocation is invalidated).
    ctx.store.deleteTenant('pr-00');
    run.restart();
    while (run.step(4) > 0);
    expect(ctx.store.listWaitingTenants(100).map((t) => t.id)).toEqual(['pr-11']);
    // Let the hub's pending flush run before the store closes.
    await new Promise((resolve) => setImmediate(resolve));
  });

  it('shares a burst of creates between hosts by the instances each is still creating, then bin-packs again', async () => {
    const ctx = h.coordinator.ctx;
    // Tenants an earlier test left waiting would fit on these hosts too.
    for (const t of ctx.store.listWaitingTenants(1000)) ctx.store.deleteTenant(t.id);
    const pool = { pool: 'burst' };
    for (const id of ['bu1', 'bu2', 'bu3']) ctx.store.putHost(aHost(id, { labels: { ...pool, zone: id } }));
    const burst = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `bu-${String(from + i).padStart(2, '0')}`);
    const insert = (ids: string[], createdAt: number): void =>
      ctx.store.write((tx) => {
        ids.forEach((id, i) => {
          const t = aTenant(id, { createdAt: createdAt + i });
          tx.insertTenant({ ...t, spec: { ...t.spec, placement: pool } });
        });
      });
    const hostOf = (id: string): string | undefined => ctx.store.listPlacements({ tenantId: id })[0]?.hostId;
    const run = new PlacementRun(ctx);
    insert(burst(0, 7), 9000);
    while (run.step(100) > 0);
    // --max-creating-per-host 2: two each, then on in chunks of two from the least busy level.
    const counts = new Map<string, number>();
    for (const id of burst(0, 7)) counts.set(hostOf(id) ?? '', (counts.get(hostOf(id) ?? '') ?? 0) + 1);
    expect([...counts.values()].sort()).toEqual([2, 2, 3]);

    // Once created, the hosts count by what they hold again: the fullest one takes the next tenants.
    ctx.store.write((tx) => {
      for (const p of tx.listPlacements().filter((p) => p.hostId.startsWith('bu'))) tx.updatePlacement({ ...p, realization: 'REALIZED', realizedOnce: true });
    });
    const held = [...ctx.store.hostAllocations()].filter(([id]) => id.startsWith('bu')).sort(([a, x], [b, y]) => y.instances - x.instances || (a < b ? -1 : 1));
    const fullest = held[0]?.[0];
    insert(burst(7, 2), 9100);
    run.restart();
    while (run.step(100) > 0);
    expect([hostOf('bu-07'), hostOf('bu-08')]).toEqual([fullest, fullest]);
    await new Promise((resolve) => setImmediate(resolve));
  });
});

describe('placement at create', () => {
  it('places a created tenant at once, without waiting for the reconcile tick (1 h here)', async () => {
    const ctx = h.coordinator.ctx;
    for (const t of ctx.store.listWaitingTenants(1000)) ctx.store.deleteTenant(t.id);
    ctx.store.putHost(aHost('now1', { labels: { pool: 'now' } }));
    await h.operator.createTenant({ id: 'placed-now', spec: { placement: { pool: 'now' } } });
    const host = await eventually(() => ctx.store.listPlacements({ tenantId: 'placed-now' })[0]?.hostId, 2000, 'placement of placed-now');
    expect(host).toBe('now1');
    expect(ctx.store.listEvents({ tenantId: 'placed-now', limit: 10 }).map((e) => e.action)).toContain('scheduler.placed');
  });
});
