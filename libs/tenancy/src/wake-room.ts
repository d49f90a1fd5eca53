/**
 * Whether a suspended tenant's host can take it back. A suspended instance keeps its disk on the
 * host but gives up its CPU and memory, which the scheduler may have promised to others since; a
 * wake that does not fit must say so rather than start an instance the host cannot hold.
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
  return `its host ${host.id} has no room left for it: short of ${short.join(' and ')}; free capacity on ${host.id} or move the tenant`;
}

/** One member of a suspended tenant: its role and its host as the wake check needs it. */
export interface WakeMember {
  role: 'PRIMARY' | 'REPLICA';
  hostId: string;
  host: WakeHost | undefined;
}

/**
 * undefined when every member fits on its host again, otherwise why not. Every member of a
 * replicated tenant stops and wakes together, so a replica whose host gave its room away blocks the
 * wake like the primary's would (waking the primary alone would over-commit that host later, or
 * leave the tenant without the redundancy it asked for); the primary is checked first. A replica
 * whose host is not READY does not block: the tenant wakes degraded, as it would run with that host
 * down, and the replica is replaced or returns with its host.
 */
export function membersWakeProblem(members: readonly WakeMember[], resources: Resources, cpuOvercommit: number): string | undefined {
  const primary = members.find((m) => m.role === 'PRIMARY');
  if (primary === undefined) return 'it has no placement';
  const primaryProblem = wakeProblem(primary.host, resources, cpuOvercommit);
  if (primaryProblem !== undefined) return primaryProblem;
  for (const m of members) {
    if (m.role !== 'REPLICA' || m.host === undefined || m.host.state !== 'READY') continue;
    const problem = wakeProblem(m.host, resources, cpuOvercommit);
    if (problem !== undefined) return `the replica on ${m.hostId} cannot wake: ${problem.replace(/^its host/, 'the host')}`;
  }
  return undefined;
}
