/**
 * The tenant status machine. A tenant's status is derived from facts (its placements, their
 * realization, their hosts' liveness): pending until every placement is realized.
 * Facts arrive in any order, so the table is wide; what it forbids carries the meaning:
 * DELETING is terminal, only an ACTIVE tenant is SUSPENDED, a SUSPENDED one wakes through
 * IN_PROGRESS (or MOVING, when its host gave its room away: the wake moves it, and a move that
 * fails before the switch puts it back to SUSPENDED), and a tenant that may hold data never goes back to NEW by itself (only an
 * operator's accept_data_loss moves UNAVAILABLE to NEW).
 */
import { TransitionError } from './errors.js';
import type { HostState, InstanceRole, Realization, RunState, TenantStatus } from './statuses.js';

export type { HostState, InstanceRole, Realization, RunState, TenantStatus } from './statuses.js';

/** Allowed status changes, as data; staying in the same status is always allowed. */
export const TENANT_TRANSITIONS: Readonly<Record<TenantStatus, readonly TenantStatus[]>> = Object.freeze({
  NEW: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'RESTORING'],
  IN_PROGRESS: ['NEW', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'RESTORING', 'MOVING'],
  ACTIVE: ['IN_PROGRESS', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'SUSPENDED', 'FAILING_OVER', 'DELETING', 'RESTORING', 'MOVING'],
  ERROR: ['NEW', 'IN_PROGRESS', 'ACTIVE', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'RESTORING', 'MOVING'],
  STOPPING: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING'],
  STOPPED: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'RESTORING'],
  UNAVAILABLE: ['NEW', 'IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'FAILING_OVER', 'DELETING', 'RESTORING'],
  SUSPENDED: ['IN_PROGRESS', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'MOVING'],
  DELETING: [],
  FAILING_OVER: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'DELETING', 'MOVING'],
  // Entered only by a restore (a new tenant is created RESTORING; an existing one goes there for an
  // in-place restore or a recreation from its backup), and left when the restore ends.
  RESTORING: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING'],
  // Entered only by a live move, and left when it ends (or by a stop, a deletion or a lost host);
  // a wake by a move that is abandoned before its switch goes back to sleep.
  MOVING: ['IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'FAILING_OVER', 'DELETING', 'SUSPENDED'],
});

/** True when a tenant may go from `from` to `to` (always true for from === to). */
export function canTransition(from: TenantStatus, to: TenantStatus): boolean {
  return from === to || (TENANT_TRANSITIONS[from]?.includes(to) ?? false);
}

/** Throws TransitionError unless canTransition(from, to). */
export function assertTransition(from: TenantStatus, to: TenantStatus): void {
  if (!canTransition(from, to)) throw new TransitionError(from, to, TENANT_TRANSITIONS[from] ?? []);
}

/** What derivation needs to know about one placement. */
export interface PlacementView {
  hostId: string;
  role: InstanceRole;
  realization: Realization;
  /** Why it failed (or what it waits for), as reported by the agent. */
  reason?: string;
  hostState: HostState;
  /** Last health report: up and accepting connections. */
  healthy: boolean;
  /** Failed realizations in a row (each retried with backoff); absent = unknown, read as needing a person. */
  failures?: number;
  /** What the agent last said the instance is doing (RUNNING, STARTING, CRASHED, ...); absent = unknown. */
  instanceState?: string;
}

/**
 * Failed realizations in a row after which a tenant reads ERROR: before that a failure is an
 * expected wait (a port taken a moment, a host still copying its template) that the retry with
 * backoff resolves, and the tenant reads IN_PROGRESS with the reason.
 */
export const ERROR_AFTER_FAILURES = 3;

/** Instance states in which the agent is bringing the instance up by itself: a wait, not an error. */
const COMING_UP: ReadonlyMap<string, string> = new Map([
  ['CREATING', 'is being created'],
  ['STARTING', 'is starting'],
  ['CRASHED', 'stopped unexpectedly and is being restarted by its agent'],
]);

/** Input of deriveTenantStatus. */
export interface DeriveInput {
  current: TenantStatus;
  runState: RunState;
  deleting: boolean;
  placements: readonly PlacementView[];
  /**
   * Whether a replica may take over by itself when the primary's host is lost (default true). False
   * for a single-node tenant: its only other member is a live move's copy, which no failover ever
   * promotes (it is not replicated for that, and may lack the last acknowledged commits), so a lost
   * host leaves the tenant UNAVAILABLE until the host returns, as without the copy.
   */
  replicasTakeOver?: boolean;
}

/** A derived status and a one-line human reason ('' when there is nothing to say). */
export interface DerivedStatus {
  status: TenantStatus;
  reason: string;
}

/** Statuses in which an unreachable primary host leaves the status as it was. */
const KEEP_WHILE_UNREACHABLE: ReadonlySet<TenantStatus> = new Set(['ACTIVE', 'ERROR', 'UNAVAILABLE', 'FAILING_OVER', 'IN_PROGRESS']);

/** Statuses in which the tenant never held data, so losing every placement just means "place again". */
const NEVER_HELD_DATA: ReadonlySet<TenantStatus> = new Set(['NEW', 'IN_PROGRESS', 'ERROR']);

/**
 * Derives a tenant's status from its placements (pending until every placement is
 * realized). Always a transition TENANT_TRANSITIONS allows from `current`, and stable: deriving
 * again from the result gives the same status. Rules, first match wins:
 * deleting -> DELETING; no placements -> NEW (or UNAVAILABLE when data may be lost);
 * run state STOPPED -> ERROR / STOPPING / STOPPED; SUSPENDED stays (whatever its host does);
 * primary host DOWN -> FAILING_OVER when a realized, healthy replica on a READY host exists and may
 * take over (not for a single-node tenant), else UNAVAILABLE; primary host UNREACHABLE -> unchanged; a FAILED placement -> IN_PROGRESS while it is
 * retried, ERROR once it failed ERROR_AFTER_FAILURES times in a row; a PENDING one -> IN_PROGRESS;
 * an unhealthy primary its agent is (re)starting -> IN_PROGRESS; all realized and primary healthy -> ACTIVE.
 */
export function deriveTenantStatus(input: DeriveInput): DerivedStatus {
  const { current, placements } = input;
  if (input.deleting || current === 'DELETING') return { status: 'DELETING', reason: 'deletion requested' };
  if (placements.length === 0) {
    return NEVER_HELD_DATA.has(current)
      ? { status: 'NEW', reason: 'waiting to be placed on a host' }
      : { status: 'UNAVAILABLE', reason: 'no placement left: the data may be lost; recreate it only with accept_data_loss' };
  }
  const failed = placements.find((p) => p.realization === 'FAILED');
  const pending = placements.filter((p) => p.realization === 'PENDING').length;
  if (input.runState === 'STOPPED') {
    if (failed !== undefined) return failedStatus(failed);
    if (pending > 0) return { status: 'STOPPING', reason: `waiting for ${pending} of ${placements.length} instances to stop` };
    return { status: 'STOPPED', reason: 'stopped on request' };
  }
  const primary = placements.find((p) => p.role === 'PRIMARY');
  if (primary === undefined) {
    return current === 'FAILING_OVER'
      ? { status: 'FAILING_OVER', reason: 'waiting for a replica to be promoted' }
      : { status: 'IN_PROGRESS', reason: 'waiting for a primary placement' };
  }
  // Waking is the coordinator's explicit SUSPENDED -> IN_PROGRESS, on a client's first connection.
  // A suspended tenant runs nothing, so its host going away (or flapping) changes nothing until a
  // wake, which checks the host first; leaving SUSPENDED here would lose the suspension on a blip.
  if (current === 'SUSPENDED') {
    return {
      status: 'SUSPENDED',
      reason: primary.hostState === 'READY' ? 'suspended while idle' : `suspended; its host ${primary.hostId} is ${primary.hostState}`,
    };
  }
  if (primary.hostState === 'DOWN') {
    if (input.replicasTakeOver === false)
      return { status: 'UNAVAILABLE', reason: `primary host ${primary.hostId} is down; a single-node tenant waits for its host to return` };
    const heir = placements.find((p) => p.role === 'REPLICA' && p.realization === 'REALIZED' && p.hostState === 'READY' && p.healthy);
    return heir === undefined
      ? { status: 'UNAVAILABLE', reason: `primary host ${primary.hostId} is down and no replica can take over` }
      : { status: 'FAILING_OVER', reason: `primary host ${primary.hostId} is down; the replica on ${heir.hostId} can take over` };
  }
  if (primary.hostState === 'UNREACHABLE') {
    return {
      status: KEEP_WHILE_UNREACHABLE.has(current) ? current : 'IN_PROGRESS',
      reason: `primary host ${primary.hostId} is unreachable; waiting for it to return or be declared down`,
    };
  }
  if (failed !== undefined) return failedStatus(failed);
  if (pending > 0) return { status: 'IN_PROGRESS', reason: `waiting for ${pending} of ${placements.length} placements to be realized` };
  if (!primary.healthy) {
    const coming = primary.instanceState === undefined ? undefined : COMING_UP.get(primary.instanceState);
    if (coming !== undefined) return { status: 'IN_PROGRESS', reason: `primary on host ${primary.hostId} ${coming}` };
    // An instance that was serving and stopped answering is an error; one that never answered is still starting.
    return current === 'ACTIVE' || current === 'ERROR'
      ? {
          status: 'ERROR',
          reason: `primary on host ${primary.hostId} is not healthy: it runs but does not accept connections; see its agent's log on ${primary.hostId}`,
        }
      : { status: 'IN_PROGRESS', reason: `waiting for the primary on host ${primary.hostId} to accept connections` };
  }
  const degraded = placements.find((p) => p.role === 'REPLICA' && (p.hostState !== 'READY' || !p.healthy));
  return { status: 'ACTIVE', reason: degraded === undefined ? '' : `replica on host ${degraded.hostId} is not healthy` };
}

/** A failed placement: retried with backoff, so a wait until it failed ERROR_AFTER_FAILURES times in a row. */
function failedStatus(failed: PlacementView): DerivedStatus {
  const n = failed.failures ?? ERROR_AFTER_FAILURES;
  const reason = failureReason(failed);
  if (n < ERROR_AFTER_FAILURES)
    return { status: 'IN_PROGRESS', reason: `retrying on host ${failed.hostId} (failed ${n} time(s), retried with backoff): ${reason}` };
  return {
    status: 'ERROR',
    reason: `${reason} (failed ${n} times in a row on host ${failed.hostId}; still retried with backoff): see the agent's log on ${failed.hostId} and fix the cause, or delete the tenant`,
  };
}

/** The reason shown for a failed placement: the agent's own words when it gave any. */
function failureReason(failed: PlacementView): string {
  const reason = failed.reason?.trim() ?? '';
  return reason === '' ? `instance on host ${failed.hostId} failed` : reason;
}
