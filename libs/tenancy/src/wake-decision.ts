/**
 * How a suspended tenant wakes. A suspended instance keeps its data on its host but gives up its
 * CPU and memory, which the scheduler may have promised to others since. When every member still
 * fits, the tenant wakes in place (its stopped data directories start again). When one member's
 * host gave its room away, that member moves to a host with room: a live move copies from a
 * running instance, so the member starts on its old host only as the copy's source (the one case in
 * which a host runs more than its capacity: for the copy's duration, and the primary takes no
 * clients there), the copy is built and switched to, and the old instance is deleted. When no host
 * can take it, the wake is refused with the reason.
 */
import { placeTenants } from './placement.js';
import type { HostCandidate, PlacementPolicy } from './placement-types.js';
import type { Resources } from './resources.js';
import type { InstanceRole } from './statuses.js';
import { wakeProblem, type WakeMember } from './wake-room.js';

/** What deciding a wake needs. */
export interface WakeFacts {
  tenantId: string;
  resources: Resources;
  /** Labels a host must carry (the tenant's placement rule). */
  placement: Record<string, string>;
  /** The PostgreSQL major the tenant runs ('' = the newest a host has). */
  version: string;
  /** The tenant's members and their hosts (allocations without the sleeping tenant). */
  members: readonly WakeMember[];
  /** Every host as the scheduler sees it (the members' own hosts are skipped). */
  candidates: readonly HostCandidate[];
  /** Hosts whose agent is connected now: a move's target must be one of them. */
  connected: ReadonlySet<string>;
}

/** A wake whose host cannot take a member back: where that member goes, and why. */
export interface WakeMove {
  kind: 'move';
  /** The member that moves: its host now, and its role. */
  fromHostId: string;
  role: InstanceRole;
  toHostId: string;
  /** Why it cannot wake where it is (safe to show a client or an operator). */
  reason: string;
}

/** Wake in place, wake by moving one member, or refuse with the reason. */
export type WakeDecision = { kind: 'in_place' } | WakeMove | { kind: 'refuse'; reason: string };

/**
 * Decides how a suspended tenant wakes. Only one member moves per wake: a replicated tenant with
 * two members whose hosts are full is refused (free one of them, or move one by hand). A primary
 * whose host is not READY is refused as before (there is nothing to copy from, and a failover
 * handles a lost host); a replica whose host is not READY does not block (the tenant wakes degraded).
 */
export function decideWake(f: WakeFacts, policy: Partial<PlacementPolicy> = {}): WakeDecision {
  const cpuOvercommit = policy.cpuOvercommit ?? 1;
  const primary = f.members.find((m) => m.role === 'PRIMARY');
  if (primary === undefined) return { kind: 'refuse', reason: 'it has no placement' };
  if (primary.host === undefined || primary.host.state !== 'READY') {
    return { kind: 'refuse', reason: wakeProblem(primary.host, f.resources, cpuOvercommit) ?? `its host ${primary.hostId} is not ready` };
  }
  const blocked: { member: WakeMember; problem: string }[] = [];
  for (const m of [primary, ...f.members.filter((x) => x.role === 'REPLICA')]) {
    if (m.role === 'REPLICA' && (m.host === undefined || m.host.state !== 'READY')) continue;
    const problem = wakeProblem(m.host, f.resources, cpuOvercommit);
    if (problem === undefined) continue;
    blocked.push({
      member: m,
      problem: m.role === 'PRIMARY' ? problem : `the replica on ${m.hostId} cannot wake there: ${problem.replace(/^its host/, 'the host')}`,
    });
  }
  const first = blocked[0];
  if (first === undefined) return { kind: 'in_place' };
  if (blocked.length > 1) {
    const hosts = blocked.map((b) => b.member.hostId).join(' and ');
    return { kind: 'refuse', reason: `${first.problem}; the hosts ${hosts} are all full and a wake moves one member at a time: free capacity on one of them` };
  }
  const moving = first.member;
  // The target must be a READY host with a connected agent (it builds the copy now), fit by the
  // scheduler's own rules (room, labels, zones apart from the other members, majors it can clone).
  const others = f.members.filter((m) => m !== moving).map((m) => m.hostId);
  const hosts = f.candidates.filter((h) => h.id !== moving.hostId && f.connected.has(h.id));
  const { placed, unplaced } = placeTenants(
    hosts,
    [
      {
        tenantId: f.tenantId,
        resources: f.resources,
        nodes: 1,
        placement: f.placement,
        excludeHosts: others,
        ...(f.version === '' ? {} : { version: f.version }),
        replicated: true,
      },
    ],
    policy,
  );
  const toHostId = placed[0]?.hostIds[0];
  if (toHostId === undefined) {
    const why = hosts.length === 0 ? 'no other host is connected' : (unplaced[0]?.reason ?? 'no host has room');
    return { kind: 'refuse', reason: `${first.problem}, and no other host can take it (${why}): free capacity on ${moving.hostId} or add a host` };
  }
  return { kind: 'move', fromHostId: moving.hostId, role: moving.role, toHostId, reason: first.problem };
}
