/**
 * The reconciler's host state changes: every host found changed in one liveness check is written
 * in one group commit (one fsync), each in its own savepoint. One commit a host was most of a
 * starved coordinator's work when it found hundreds of hosts changed at once, each transition
 * deriving every tenant of its host again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Reconciler } from './reconciler.js';
import type { CoordinatorContext } from './context.js';
import { Liveness } from '../live/liveness.js';
import { aHost, aPlacement, aTenant } from '../testing/records.js';
import { startHarness, type Harness } from '../testing/harness.js';
import { openStore } from '../store/open-store.js';

let h: Harness;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-transitions-'));
beforeAll(async () => {
  // The harness lends its context (policy, keys, caches); the test brings its own store and clock.
  h = await startHarness(['--reconcile-interval', '1h']);
});
afterAll(async () => {
  await h?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('host state changes found in one liveness check', () => {
  it('share one durable commit, and each host and its tenants change as before', async () => {
    const { store } = openStore({ dataDir: root, allowInit: true, routeHistory: 1000, now: Date.now() });
    let now = 1000;
    const liveness = new Liveness({ ttlMs: 3000, graceMs: 4000, startedAt: 0 });
    const ctx: CoordinatorContext = { ...h.coordinator.ctx, store, metrics: undefined, liveness, clock: () => now };
    const ids = Array.from({ length: 20 }, (_, i) => `silent-${i}`);
    await store.transaction(async (tx) => {
      for (const id of ids) {
        await tx.hosts.put(aHost(id));
        await tx.tenants.insert(aTenant(`t-${id}`, { status: 'ACTIVE' }));
        await tx.placements.insert(aPlacement(`t-${id}`, id, { realization: 'REALIZED', instanceState: 'RUNNING', realizedOnce: true }));
      }
    });
    for (const id of ids) liveness.seen(id, 1000);
    const reconciler = new Reconciler(ctx, 3_600_000);
    try {
      now = 60_000; // silent for far longer than ttl + grace
      const before = store.durableCommits();
      await (reconciler as unknown as { checkLiveness(lagMs: number): Promise<void> }).checkLiveness(0);
      // One group, or a few on a busy machine (a group takes what fits in a 20 ms turn); one commit
      // a host, as before, would be 20.
      expect(store.durableCommits() - before).toBeLessThan(ids.length / 2);
      expect((await store.read.hosts.list()).map((x) => x.state)).toEqual(ids.map(() => 'DOWN'));
      for (const id of ids) expect((await store.read.tenants.get(`t-${id}`))?.status).toBe('UNAVAILABLE');
      const down = (await store.read.events.list({ limit: 1000, outcome: 'FAILURE' })).filter((e) => e.action === 'host.down').map((e) => e.hostId);
      expect(down.sort()).toEqual([...ids].sort());
    } finally {
      reconciler.close();
      await store.close();
    }
  });
});
