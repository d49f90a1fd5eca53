/**
 * planDrain: which tenants leave a draining host, and where each goes. Every instance on the host
 * must move; the plan is computed hardest first (most memory first, the first-fit-decreasing
 * rule, which packs better than arrival order) and returned in the order that hurts clients
 * least: replicas (no client sees them), then primaries with a replica (switch over first, then
 * move), then lone primaries (a restart on the new host).
 */
import { ValidationError } from './errors.js';
import { FleetState } from './fleet-state.js';
import { placeOne, requestProblem } from './placement.js';
import type { HostCandidate, PlacementPolicy, PlacementRequest, Unplaced } from './placement-types.js';
import type { InstanceRole } from './statuses.js';

/** A tenant instance on the draining host. `excludeHosts` lists the tenant's other hosts; `nodes` is ignored (one instance moves). */
export type DrainingInstance = PlacementRequest & { role: InstanceRole; hasReplica: boolean };

/** One planned move: the tenant's instance on the draining host goes to `toHostId`. */
export interface DrainMove {
  tenantId: string;
  toHostId: string;
  role: InstanceRole;
  /** True when a replica should be promoted before the old primary moves (no restart for clients). */
  switchover: boolean;
}

/** Impact rank of a move: lower runs first. */
function impact(t: DrainingInstance): number {
  if (t.role === 'REPLICA') return 0;
  return t.hasReplica ? 1 : 2;
}

/** Plans the moves off `hostId`; tenants no host can take come back in `blocked` with the reason. */
export function planDrain(
  hostId: string,
  hosts: readonly HostCandidate[],
  tenantsOnHost: readonly DrainingInstance[],
  policy: Partial<PlacementPolicy> = {},
): { moves: DrainMove[]; blocked: Unplaced[] } {
  // The drained host takes nothing, even when the caller has not flagged it draining yet.
  const fleet = new FleetState(hosts, policy, new Set([hostId]));
  if (fleet.hostNumber(hostId) === undefined) {
    throw new ValidationError('host_id', hostId, 'the id of a host in the fleet', { code: 'HOST_NOT_FOUND' });
  }
  const order = [...tenantsOnHost].sort(
    (a, b) => (b.resources?.memoryMib ?? 0) - (a.resources?.memoryMib ?? 0) || (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0),
  );
  const moves: (DrainMove & { rank: number })[] = [];
  const blocked: Unplaced[] = [];
  const seen = new Set<string>();
  for (const tenant of order) {
    const request = { ...tenant, nodes: 1 };
    const problem = requestProblem(request);
    if (problem !== undefined || seen.has(tenant.tenantId)) {
      blocked.push({ tenantId: String(tenant.tenantId), reason: problem ?? 'listed twice on the draining host' });
      continue;
    }
    seen.add(tenant.tenantId);
    // The instance leaves the drained host, so that host's zone becomes free for it again.
    const others = (tenant.excludeHosts ?? []).filter((id) => id !== hostId);
    const result = placeOne(fleet, request, fleet.footprint(others));
    if (typeof result === 'string') {
      blocked.push({ tenantId: tenant.tenantId, reason: result });
    } else {
      const to = result[0] as number;
      moves.push({
        tenantId: tenant.tenantId,
        toHostId: fleet.hostId(to),
        role: tenant.role,
        switchover: tenant.role === 'PRIMARY' && tenant.hasReplica,
        rank: impact(tenant),
      });
    }
  }
  moves.sort((a, b) => a.rank - b.rank || (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
  blocked.sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
  return { moves: moves.map(({ rank: _rank, ...move }) => move), blocked };
}
