// The harness itself: a fleet starts, its parts answer, and stopping it leaves nothing running.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startFleet } from './fleet.js';
import { waitUntil } from './poll.js';
import { processesUnder } from './proc-scan.js';
import { missingBuilds } from './repo.js';

const needs = missingBuilds(['coordinator', 'router', 'pgsctl']);

describe.skipIf(needs.length > 0)('fleet harness', () => {
  it('starts a coordinator and two routers, then stops them leaving no process or directory behind', async () => {
    const fleet = await startFleet({ name: 'harness', block: 9, agents: 0, routers: 2 });
    try {
      const table = await fleet.routeTable();
      expect(table.routes).toEqual([]);
      expect(table.routers.map((r) => r.routerId).sort()).toEqual(['r1', 'r2']);
      const health = await fleet.routerHealth(1);
      expect(health).toMatchObject({ ok: true, routerId: 'r2', cache: { connected: true } });
      expect(processesUnder(fleet.root).length).toBeGreaterThanOrEqual(3);
    } finally {
      const leftovers = await fleet.stop();
      expect(leftovers).toEqual([]);
    }
    expect(processesUnder(fleet.root)).toEqual([]);
    expect(fs.existsSync(fleet.root)).toBe(false);
  });

  it('kills -9 and restarts the coordinator; routers reconnect to it', async () => {
    const fleet = await startFleet({ name: 'harness2', block: 9, agents: 0, routers: 1 });
    try {
      const pid = fleet.coordinator.pid;
      await fleet.killCoordinator();
      expect(fleet.coordinator.running).toBe(false);
      await fleet.restartCoordinator();
      expect(fleet.coordinator.pid).not.toBe(pid);
      // The router's feed broke with the coordinator and comes back to the new process.
      await waitUntil(
        'router r1 feed reconnected',
        () => fleet.routerHealth(0),
        (h) => h.cache.connected,
        { timeoutMs: 10_000 },
      );
      const table = await fleet.routeTable();
      expect(table.routers.map((r) => r.routerId)).toEqual(['r1']);
    } finally {
      await fleet.stop();
    }
    expect(processesUnder(fleet.root)).toEqual([]);
  });
});
