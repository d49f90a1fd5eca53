/**
 * Vitest wiring for one fleet per test file: started in beforeAll, logs printed when a test fails,
 * stopped in afterAll whatever happened, and the file fails if anything was still running under
 * the fleet's temp dir at the end.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { READY_TIMEOUT_MS, startFleet, type Fleet, type FleetOptions } from './fleet.js';

/**
 * Starts a fleet for this file; call the returned function inside tests to get it. Options given as
 * a function are read when the fleet starts (after the file's earlier beforeAll hooks, e.g. a server
 * the fleet must point at). The default start timeout covers the coordinator, the agents and the
 * routers each taking their whole default readiness deadline.
 */
export function useFleet(given: FleetOptions | (() => FleetOptions), startTimeoutMs = 3 * READY_TIMEOUT_MS + 60_000): () => Fleet {
  const name = typeof given === 'function' ? 'fleet' : given.name;
  let fleet: Fleet | undefined;
  beforeAll(async () => {
    fleet = await startFleet(typeof given === 'function' ? given() : given);
  }, startTimeoutMs);
  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      if (fleet) console.error(`\n===== logs of fleet ${name} (test "${ctx.task.name}" failed) =====\n${fleet.logs(60)}\n`);
    });
  });
  afterAll(async () => {
    if (!fleet) return;
    const stopped = fleet;
    fleet = undefined;
    const leftovers = await stopped.stop();
    // Only the agents' instances may legitimately outlive a polite stop (agents leave them for adoption),
    // with their children: the WAL archiver runs pgBackRest's archive-push (through sh) for them.
    const unexpected = leftovers.filter((p) => !/postgres|postmaster|pgbackrest/.test(p.cmdline) && p.cmdline !== '');
    if (unexpected.length > 0)
      throw new Error(`fleet ${name} left processes that ignored SIGTERM: ${unexpected.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
  }, 60_000);
  return () => {
    if (!fleet) throw new Error(`fleet ${name} is not running (did beforeAll fail?)`);
    return fleet;
  };
}

/** A tenant id unique to this run: `<prefix>-<random>` (lowercase letters and digits). */
export function tenantName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 8)}`.replace(/[^a-z0-9-]/g, 'x');
}
