/**
 * Stopping a fleet in the order that loses nothing and leaves nothing: routers (no new client
 * connections), agents (no more instance changes), the tenant postgres servers the agents
 * started, then the coordinator.
 */
import fs from 'node:fs';
import { expectedCommand } from './apps.js';
import type { FleetLayout } from './layout.js';
import { isOurs, readPidFile, stopPid } from './pids.js';
import { stopPostgresInstances } from './postgres-instances.js';

/** Time each class of process gets before SIGKILL. */
export const STOP_TIMEOUTS = Object.freeze({ router: 10_000, agent: 15_000, postgres: 30_000, coordinator: 10_000 });

/** The coordinators' store servers, stopped last (primary first, so its last WAL reaches the standby). */
export const STORE_SERVERS = ['store-primary', 'store-standby'] as const;

/** The fleet process names recorded in the pid dir, by class. */
function recorded(layout: FleetLayout): { routers: string[]; agents: string[]; coordinator: string[]; store: string[] } {
  let names: string[];
  try {
    names = fs
      .readdirSync(layout.pidsDir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => f.slice(0, -4));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
    else throw err;
  }
  return {
    routers: names.filter((n) => /^r\d+$/.test(n)),
    agents: names.filter((n) => /^h\d+$/.test(n)),
    coordinator: names.filter((n) => n === 'coordinator' || /^coordinator-\d+$/.test(n)),
    store: STORE_SERVERS.filter((n) => names.includes(n)),
  };
}

async function stopRecorded(layout: FleetLayout, names: readonly string[], timeoutMs: number, say: (line: string) => void): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      const file = layout.pidFile(name);
      const pid = readPidFile(file);
      if (pid !== undefined && isOurs(pid, expectedCommand(name))) {
        const how = await stopPid(pid, 'SIGTERM', timeoutMs);
        say(`stopped ${name} (pid ${pid}${how === 'killed' ? ', killed after the timeout' : ''})`);
      }
      fs.rmSync(file, { force: true });
    }),
  );
}

/**
 * Stops every fleet process recorded in pid files (e.g. left by a launcher that was killed),
 * in stop order, then the tenant postgres servers under the agents' data roots.
 */
export async function stopRecordedFleet(layout: FleetLayout, say: (line: string) => void): Promise<void> {
  const r = recorded(layout);
  await stopRecorded(layout, r.routers, STOP_TIMEOUTS.router, say);
  await stopRecorded(layout, r.agents, STOP_TIMEOUTS.agent, say);
  const n = await stopPostgresInstances([layout.agentsDir], STOP_TIMEOUTS.postgres);
  if (n > 0) say(`stopped ${n} tenant postgres server${n === 1 ? '' : 's'}`);
  await stopRecorded(layout, r.coordinator, STOP_TIMEOUTS.coordinator, say);
  for (const name of r.store) await stopStoreServer(layout, name, say);
}

/** Fast shutdown (SIGINT) of one store server named in its pid file, only when its command line still names our store dir. */
export async function stopStoreServer(layout: FleetLayout, name: string, say: (line: string) => void): Promise<void> {
  const file = layout.pidFile(name);
  const pid = readPidFile(file);
  if (pid !== undefined && isOurs(pid, layout.storeDir)) {
    const how = await stopPid(pid, 'SIGINT', STOP_TIMEOUTS.postgres);
    say(`stopped ${name} (pid ${pid}${how === 'killed' ? ', killed after the timeout' : ''})`);
  }
  fs.rmSync(file, { force: true });
}
