/**
 * placeTenants: the scheduler as a pure function. Requests are handled in the order given, and
 * each decision updates the working copy of the fleet, so one batch never over-commits memory
 * or disk, nor cpu past the policy's ratio. A tenant is placed whole or not at all: its primary
 * and every replica, each on a different host and, where hosts carry the zone label, in a
 * different zone. Deterministic: the same hosts (in any order) and requests give the same answer.
 */
import { FleetState, constraintKey, type TenantFootprint, type VersionNeed } from './fleet-state.js';
import type { HostCandidate, PlacementDecision, PlacementPolicy, PlacementRequest, Unplaced } from './placement-types.js';
import type { Resources } from './resources.js';

export type { HostCandidate, PlacementDecision, PlacementPolicy, PlacementRequest, Unplaced } from './placement-types.js';
export { DEFAULT_PLACEMENT_POLICY } from './placement-types.js';

/** Why a request cannot even be considered, or undefined when it is well-formed. */
export function requestProblem(request: PlacementRequest): string | undefined {
  if (typeof request.tenantId !== 'string' || request.tenantId === '') return 'invalid request: empty tenant id';
  if (!Number.isSafeInteger(request.nodes) || request.nodes < 1)
    return `invalid request: nodes must be a whole number, 1 or more (got ${String(request.nodes)})`;
  const r = request.resources as Partial<Resources> | undefined;
  const whole = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (r === undefined || !whole(r.cpuMillis) || !whole(r.memoryMib) || !whole(r.diskMib)) {
    return 'invalid request: resources must be whole numbers, 0 or more';
  }
  return undefined;
}

/**
 * What a request asks of the fleet, as text: two requests with the same shape get the same answer
 * from the same fleet state. Undefined for a request that excludes hosts (its own footprint).
 */
function shapeOf(request: PlacementRequest): string | undefined {
  if (request.excludeHosts !== undefined && request.excludeHosts.length > 0) return undefined;
  const r = request.resources;
  const need = versionNeed(request);
  return `${r.cpuMillis}/${r.memoryMib}/${r.diskMib}x${request.nodes}|${constraintKey(request.placement ?? {})}|${need ? `${need.version}${need.replicated ? '+r' : ''}` : ''}`;
}

function versionNeed(request: PlacementRequest): VersionNeed | undefined {
  return request.version === undefined || request.version === ''
    ? undefined
    : { version: request.version, replicated: request.replicated === true || request.nodes > 1 };
}

/**
 * Places `nodes` instances for one tenant on `fleet`, all or none. Returns the hosts, primary
 * first, or the reason it could not. Exported for planDrain; the footprint is updated in place.
 */
export function placeOne(fleet: FleetState, request: PlacementRequest, footprint: TenantFootprint): number[] | string {
  const chosen: number[] = [];
  const placement = request.placement ?? {};
  for (let k = 0; k < request.nodes; k++) {
    const h = fleet.choose(request.resources, placement, footprint, versionNeed(request));
    if (h === undefined) {
      const why = fleet.explain(request.resources, placement, footprint, versionNeed(request));
      // All or nothing: a tenant with a primary but a missing replica is not what was asked for.
      for (const taken of chosen) fleet.allocate(taken, request.resources, -1);
      return request.nodes === 1 ? why : `instance ${k + 1} of ${request.nodes}: ${why}`;
    }
    fleet.allocate(h, request.resources);
    fleet.occupy(footprint, h);
    chosen.push(h);
  }
  return chosen;
}

/**
 * Places every request it can, in order; the rest come back with a reason. Throws
 * ValidationError only for a bad policy or duplicate host ids; a bad request is just unplaced.
 */
export function placeTenants(
  hosts: readonly HostCandidate[],
  requests: readonly PlacementRequest[],
  policy: Partial<PlacementPolicy> = {},
): { placed: PlacementDecision[]; unplaced: Unplaced[] } {
  const fleet = new FleetState(hosts, policy);
  const placed: PlacementDecision[] = [];
  const unplaced: Unplaced[] = [];
  const seen = new Set<string>();
  // A request of a shape that found no host, at the fleet version it failed at: while nothing is
  // allocated, the next of that shape gets the same answer without a search or an explanation
  // (O(hosts) each: a backlog of thousands waiting for full or cordoned hosts paid it per tenant).
  const failed = new Map<string, { version: number; reason: string }>();
  for (const request of requests) {
    const problem = requestProblem(request);
    if (problem !== undefined) {
      unplaced.push({ tenantId: String(request.tenantId), reason: problem });
      continue;
    }
    if (seen.has(request.tenantId)) {
      unplaced.push({ tenantId: request.tenantId, reason: 'duplicate request for this tenant in the same batch' });
      continue;
    }
    seen.add(request.tenantId);
    const shape = shapeOf(request);
    const known = shape === undefined ? undefined : failed.get(shape);
    if (known !== undefined && known.version === fleet.version) {
      unplaced.push({ tenantId: request.tenantId, reason: known.reason });
      continue;
    }
    const result = placeOne(fleet, request, fleet.footprint(request.excludeHosts));
    if (typeof result === 'string') {
      unplaced.push({ tenantId: request.tenantId, reason: result });
      if (shape !== undefined) failed.set(shape, { version: fleet.version, reason: result });
    } else placed.push({ tenantId: request.tenantId, hostIds: result.map((h) => fleet.hostId(h)) });
  }
  return { placed, unplaced };
}
