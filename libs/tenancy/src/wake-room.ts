/**
 * Whether a suspended tenant's host can take it back. A suspended instance keeps its disk on the
 * host but gives up its CPU and memory, which the scheduler may have promised to others since; a
 * wake that does not fit must not start an instance the host cannot hold (decideWake moves it instead).
 */
import type { Resources } from './resources.js';
import type { HostState } from './statuses.js';
import { formatCpu, formatSize } from './units.js';

/** The host as the wake check needs it: `allocated` without the tenant being woken. */
export interface WakeHost {
  id: string;
  state: HostState;
  capacity: Resources;
  allocated: Resources;
}

/** undefined when the tenant fits on its host again, otherwise why not (safe to show an operator or client). */
export function wakeProblem(host: WakeHost | undefined, resources: Resources, cpuOvercommit: number): string | undefined {
  if (host === undefined) return 'its host is no longer registered';
  if (host.state !== 'READY') return `its host ${host.id} is ${host.state}`;
  const freeCpu = host.capacity.cpuMillis * Math.max(1, cpuOvercommit) - host.allocated.cpuMillis;
  const freeMemory = host.capacity.memoryMib - host.allocated.memoryMib;
  const short: string[] = [];
  if (freeMemory < resources.memoryMib) short.push(`memory (needs ${formatSize(resources.memoryMib)}, ${formatSize(Math.max(0, freeMemory))} free)`);
  if (freeCpu < resources.cpuMillis) short.push(`cpu (needs ${formatCpu(resources.cpuMillis)}, ${formatCpu(Math.max(0, freeCpu))} free)`);
  if (short.length === 0) return undefined;
  return `its host ${host.id} has no room left for it: short of ${short.join(' and ')}`;
}

/** One member of a suspended tenant: its role and its host as the wake check needs it. */
export interface WakeMember {
  role: 'PRIMARY' | 'REPLICA';
  hostId: string;
  host: WakeHost | undefined;
}
