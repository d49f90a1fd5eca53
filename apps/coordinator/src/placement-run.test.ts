/** The sliced backlog walk on a real store (the reconcile timer is idle: the test drives it). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlacementRun } from './placement-run.js';
import { aHost, aTenant } from './testing/records.js';
import { startHarness, type Harness } from './testing/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness(['--reconcile-interval', '1h']);
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
});
