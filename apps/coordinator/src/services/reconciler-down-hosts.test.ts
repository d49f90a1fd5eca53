/**
 * The reconciler's look at down hosts for tenants that never ran (placed again elsewhere): it reads
 * the placements only of down hosts that hold such a placement. When a starved coordinator had
 * declared most of a fleet down at once, reading every placement of every down host on each tick
 * was most of its CPU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reconciler } from './reconciler.js';
import type { CoordinatorContext } from './context.js';
import { aHost, aPlacement, aTenant } from '../testing/records.js';
import { startHarness, type Harness } from '../testing/harness.js';
import { openStore } from '../store/open-store.js';
import { desiredSetForHost } from './desired-set.js';

let h: Harness;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-down-hosts-'));
beforeAll(async () => {
  // The harness lends its context (policy, keys, caches); the test brings its own store.
  h = await startHarness(['--reconcile-interval', '1h']);
});
afterAll(async () => {
  await h?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('tenants that never ran on a down host', () => {
  it('are placed again, and only down hosts holding such a placement have their placements read', async () => {
    const { store } = openStore({ dataDir: root, allowInit: true, routeHistory: 1000, now: Date.now() });
    const ctx: CoordinatorContext = { ...h.coordinator.ctx, store, metrics: undefined };
    await store.transaction(async (tx) => {
      await tx.hosts.put(aHost('ran-h1', { state: 'DOWN' }));
      await tx.hosts.put(aHost('fresh-h2', { state: 'DOWN' }));
      for (const id of ['ran-a', 'ran-b']) {
        await tx.tenants.insert(aTenant(id, { status: 'ACTIVE' }));
        await tx.placements.insert(aPlacement(id, 'ran-h1', { realization: 'REALIZED', instanceState: 'RUNNING', realizedOnce: true }));
      }
      await tx.tenants.insert(aTenant('never-ran', { status: 'IN_PROGRESS' }));
      await tx.placements.insert(aPlacement('never-ran', 'fresh-h2'));
    });
    const hostsRead: string[] = [];
    const list = store.read.placements.list.bind(store.read.placements);
    store.read.placements.list = (filter) => {
      if (filter?.hostId !== undefined) hostsRead.push(filter.hostId);
      return list(filter);
    };
    const reconciler = new Reconciler(ctx, 3_600_000);
    try {
      // The step alone: the tick's other steps read hosts for their own reasons.
      await (reconciler as unknown as { replaceNeverRealized(): Promise<void> }).replaceNeverRealized();
      expect(hostsRead).toEqual(['fresh-h2']);
      expect(await list({ tenantId: 'never-ran' })).toEqual([]);
      expect((await store.read.tenants.get('never-ran'))?.statusReason).toMatch(/placed again|waiting/);
      expect((await list({ hostId: 'ran-h1' })).map((p) => p.tenantId).sort()).toEqual(['ran-a', 'ran-b']);

      // The down host may have created the instance before it went away: back, it is told to delete
      // it (an instance merely absent from its set would be left alone, a stray copy for ever).
      const replication = { keys: ctx.keys, quorums: ctx.quorums, retiring: ctx.retiring };
      const back = await store.transaction((tx) => desiredSetForHost(tx, 'fresh-h2', ctx.versions, undefined, replication));
      expect(back.removedTenantIds).toEqual(['never-ran']);
      // Placed on that host again before it came back: kept, and the removal forgotten.
      await store.transaction((tx) => tx.placements.insert(aPlacement('never-ran', 'fresh-h2')));
      const placedAgain = await store.transaction((tx) => desiredSetForHost(tx, 'fresh-h2', ctx.versions, undefined, replication));
      expect(placedAgain.removedTenantIds).toEqual([]);
      expect(placedAgain.instances.map((i) => i.tenantId)).toEqual(['never-ran']);
      expect(ctx.retiring.onHost('fresh-h2')).toEqual([]);
    } finally {
      reconciler.close();
      await store.close();
    }
  });
});
