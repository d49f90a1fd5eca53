/**
 * What the routers are told about a tenant, derived from its status and its primary placement.
 * A primary that reports itself running and healthy stays routable while changes are in flight
 * (a new user, a failed resize): refusing clients for those would be an outage of our making.
 */
import { DEFAULT_POOL_MODE } from '@pgs/tenancy';
import type { HostRecord, PlacementRecord, RouteRecord, RouteState, RouteUser, TenantRecord, UserRecord } from './model.js';

const REASONS: Partial<Record<TenantRecord['status'], [RouteState, string]>> = {
  NEW: ['PROVISIONING', 'the tenant is being created'],
  IN_PROGRESS: ['PROVISIONING', 'the tenant is being created'],
  STOPPING: ['STOPPED', 'the tenant is stopped'],
  STOPPED: ['STOPPED', 'the tenant is stopped'],
  DELETING: ['STOPPED', 'the tenant is being deleted'],
  FAILING_OVER: ['FAILOVER', 'the tenant is failing over to a replica; retry shortly'],
  SUSPENDED: ['SUSPENDED', 'the tenant is suspended'],
  RESTORING: ['PROVISIONING', 'the tenant is being restored from a backup'],
  // A move whose primary does not serve yet: a wake whose replica moves (the primary is starting).
  MOVING: ['PROVISIONING', 'the tenant is starting'],
};

/** Statuses that end an upgrade's hold at once (clients are refused with the status's reason). */
const UPGRADE_HOLD_ENDS = new Set<TenantRecord['status']>(['STOPPING', 'STOPPED', 'DELETING', 'SUSPENDED']);

/**
 * The users routers authenticate: every login role not being dropped, with the verifier the
 * instance is given as is (so a router's ClientKey login matches it), sorted for stable comparison.
 */
export function routeUsers(users: readonly UserRecord[]): RouteUser[] {
  return users
    .filter((u) => u.status !== 'DELETING')
    .map((u) => ({ name: u.name, scramVerifier: u.scramVerifier }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The route of a tenant (without its revision, which the store assigns). `switching`: the primary
 * change under way is planned (a switchover, a live move), so routers hold clients instead of
 * refusing them; `upgradeHold`: a major upgrade switches to its new instance (held the same way);
 * `wakeMove`: a suspended tenant is woken by moving its primary to a host with room, and its old
 * instance runs only as the copy's source, so the route stays SUSPENDED (routers hold clients as for
 * any wake) until the switch to the new host.
 */
export function routeFor(
  tenant: TenantRecord,
  primary: PlacementRecord | undefined,
  host: HostRecord | undefined,
  healthy: boolean,
  users: readonly UserRecord[] = [],
  switching = false,
  upgradeHold = false,
  wakeMove = false,
): Omit<RouteRecord, 'revision'> {
  const where = {
    tenantId: tenant.id,
    hostId: primary?.hostId ?? '',
    address: primary?.address || host?.address || '',
    port: primary?.port ?? 0,
    externalAccess: tenant.spec.externalAccess,
    connectionLimit: tenant.spec.connectionLimit,
    poolMode: tenant.spec.poolMode ?? DEFAULT_POOL_MODE,
    users: routeUsers(users),
  };
  // A major upgrade's switch: the old instance stopped taking writers and the new one catches up;
  // clients wait (the routers hold them) unless the tenant is being stopped or deleted meanwhile.
  if (upgradeHold && !UPGRADE_HOLD_ENDS.has(tenant.status))
    return { ...where, state: 'SWITCHING', reason: 'the tenant is switching to a new PostgreSQL major; connections wait until it serves' };
  if (wakeMove && tenant.status === 'MOVING')
    return { ...where, state: 'SUSPENDED', reason: 'the tenant is waking up on another host (its own host has no room left for it)' };
  const serving = primary !== undefined && primary.port > 0 && primary.instanceState === 'RUNNING' && healthy && host?.state !== 'DOWN';
  const blocking = new Set<TenantRecord['status']>(['STOPPING', 'STOPPED', 'DELETING', 'UNAVAILABLE', 'SUSPENDED', 'FAILING_OVER', 'RESTORING']);
  if (serving && !blocking.has(tenant.status)) return { ...where, state: 'ROUTABLE', reason: '' };
  if (tenant.status === 'FAILING_OVER' && switching)
    return { ...where, state: 'SWITCHING', reason: 'the tenant is switching to another instance; connections wait until it serves' };
  if (tenant.status === 'UNAVAILABLE') return { ...where, state: 'HOST_DOWN', reason: `the tenant is unavailable: ${tenant.statusReason}` };
  if (tenant.status === 'ERROR') return { ...where, state: 'ERROR', reason: `the tenant is in error: ${tenant.statusReason}` };
  if (tenant.status === 'ACTIVE') return { ...where, state: 'PROVISIONING', reason: 'the tenant is starting' };
  const [state, reason] = REASONS[tenant.status] ?? ['ERROR', `the tenant is ${tenant.status}`];
  return { ...where, state, reason };
}
