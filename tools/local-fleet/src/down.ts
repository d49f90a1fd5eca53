/** `down` (stop a running fleet from anywhere), `reset` (down + wipe) and `status`. */
import fs from 'node:fs';
import path from 'node:path';
import { readFleetFile } from './fleet-file.js';
import { expectedCommand } from './apps.js';
import { fleetLayout } from './layout.js';
import type { FleetOptions } from './options.js';
import { isOurs, readPidFile, stopPid } from './pids.js';
import { findPostgresInstances } from './postgres-instances.js';
import { stopRecordedFleet } from './stop-order.js';

/** Stops the fleet kept in options.stateDir: asks its launcher first (ordered stop), then cleans up leftovers. */
export async function down(options: FleetOptions, say: (line: string) => void): Promise<number> {
  const layout = fleetLayout(options.stateDir);
  const launcher = readPidFile(layout.pidFile('launcher'));
  if (launcher !== undefined && isOurs(launcher, expectedCommand('launcher'))) {
    say(`asking the launcher (pid ${launcher}) to stop the fleet...`);
    // The launcher stops routers, agents, instances and coordinator in order; give it time for all of them.
    const how = await stopPid(launcher, 'SIGTERM', 90_000);
    if (how === 'killed') say('the launcher did not stop in time and was killed; cleaning up after it');
  }
  await stopRecordedFleet(layout, say);
  fs.rmSync(layout.pidFile('launcher'), { force: true });
  say('local fleet is down');
  return 0;
}

/** down, then delete the state dir (and the agents' data roots when they live elsewhere). */
export async function reset(options: FleetOptions, say: (line: string) => void): Promise<number> {
  await down(options, say);
  const layout = fleetLayout(options.stateDir);
  if (!layout.agentsDir.startsWith(layout.stateDir + path.sep)) fs.rmSync(path.dirname(layout.agentsDir), { recursive: true, force: true });
  fs.rmSync(layout.stateDir, { recursive: true, force: true });
  say(`deleted ${layout.stateDir}`);
  return 0;
}

/** Prints whether the fleet runs and its addresses; exit 0 when it runs, 3 when it does not. */
export function status(options: FleetOptions, say: (line: string) => void): number {
  const layout = fleetLayout(options.stateDir);
  const d = readFleetFile(layout.fleetFile);
  const launcher = readPidFile(layout.pidFile('launcher'));
  const up = launcher !== undefined && isOurs(launcher, expectedCommand('launcher'));
  if (d === undefined) {
    say(`no local fleet in ${layout.stateDir}; start one with \`npm start\``);
    return 3;
  }
  const alive = (name: string): string => {
    const pid = readPidFile(layout.pidFile(name));
    const match = name.startsWith('store-') ? layout.storeDir : expectedCommand(name);
    return pid !== undefined && isOurs(pid, match) ? `running (pid ${pid})` : 'stopped';
  };
  say(`local fleet in ${layout.stateDir}: ${up ? d.state : 'stopped'}`);
  const coordinators = d.coordinators ?? [{ name: 'coordinator', grpc: d.coordinator.grpc }];
  for (const c of coordinators) say(`  ${c.name.padEnd(11)}  ${c.grpc}  ${alive(c.name)}`);
  for (const s of d.store?.servers ?? []) say(`  ${s.name.padEnd(11)}  ${s.address}:${s.port}  ${alive(s.name)}`);
  for (const h of d.hosts) say(`  ${h.id.padEnd(11)}  ${h.address}  ${alive(h.id)}`);
  for (const r of d.routers) say(`  ${r.id.padEnd(11)}  ${r.listen}  ${alive(r.id)}`);
  say(`  tenant postgres servers running: ${findPostgresInstances([layout.agentsDir]).length}`);
  if (up && d.demo) say(`  demo: psql "${d.demo.uri}"`);
  return up ? 0 : 3;
}
