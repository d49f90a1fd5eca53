/**
 * Live move of one instance of a tenant to another host, as pure decisions. The executor (the
 * coordinator) feeds facts and applies the answer:
 *
 *   copying    a replica is built on the target (a base backup of the primary) and catches up;
 *              a moving primary then runs a CHECKPOINT while clients still work, so the fence's
 *              shutdown checkpoint (inside the clients' pause) only writes what changed since
 *   switching  only when the moving member is the primary: a planned switchover to the target
 *              (routers hold clients, the old primary is fenced, the target replays its last WAL
 *              and is promoted, the route moves)
 *   removing   the old instance is deleted, once the new one serves
 *
 * A failure before the switch commits abandons the move and removes the target's copy, leaving
 * the tenant as it was; once the target is the primary, the move only goes forward.
 */
import { placeTenants } from './placement.js';
import type { HostCandidate, PlacementPolicy } from './placement-types.js';
import type { Resources } from './resources.js';
import type { HostState, InstanceRole, Realization, TenantStatus } from './statuses.js';

/** Why a move is refused before anything starts. */
export interface MoveRefusal {
  code:
    | 'SAME_HOST'
    | 'HOST_NOT_FOUND'
    | 'TARGET_NOT_READY'
    | 'TARGET_CORDONED'
    | 'TARGET_FULL'
    | 'MEMBER_REQUIRED'
    | 'NOT_A_MEMBER'
    | 'TENANT_NOT_ACTIVE'
    | 'MOVE_IN_PROGRESS';
  message: string;
}

/** What deciding whether a move may start needs. */
export interface MoveRequestFacts {
  tenantId: string;
  status: TenantStatus;
  resources: Resources;
  placement: Record<string, string>;
  /** The tenant's placements (host and role). */
  members: readonly { hostId: string; role: InstanceRole }[];
  /** '' = the primary (single-node tenants). */
  memberHostId: string;
  toHostId: string;
  /** The target as the scheduler sees it; undefined when no such host exists. */
  target: HostCandidate | undefined;
  /** Whether the target's agent is connected now. */
  targetConnected: boolean;
  /** A move, failover or switchover of this tenant is already in flight. */
  busy: boolean;
  /**
   * The move wakes a SUSPENDED tenant whose host gave its room away: the member starts on its old
   * host only as the copy's source (see decideWake).
   */
  waking?: boolean;
}

/** The member that moves, or why the move cannot start. */
export function checkMove(
  f: MoveRequestFacts,
  policy: Partial<PlacementPolicy> = {},
): { member: { hostId: string; role: InstanceRole } } | { refusal: MoveRefusal } {
  const refuse = (code: MoveRefusal['code'], message: string) => ({ refusal: { code, message } });
  if (f.busy || f.status === 'MOVING' || f.status === 'FAILING_OVER')
    return refuse('MOVE_IN_PROGRESS', `tenant "${f.tenantId}" is already being moved or failed over; wait for it to finish`);
  const movable = f.waking === true ? f.status === 'SUSPENDED' : f.status === 'ACTIVE';
  if (!movable)
    return refuse(
      'TENANT_NOT_ACTIVE',
      f.waking === true
        ? `tenant "${f.tenantId}" is ${f.status}; only a SUSPENDED tenant is woken by a move`
        : `tenant "${f.tenantId}" is ${f.status}; only an ACTIVE tenant can move`,
    );
  let member: { hostId: string; role: InstanceRole } | undefined;
  if (f.memberHostId === '') {
    if (f.members.length > 1)
      return refuse('MEMBER_REQUIRED', `tenant "${f.tenantId}" has ${f.members.length} members; say which one moves with --member <host>`);
    member = f.members.find((m) => m.role === 'PRIMARY');
  } else {
    member = f.members.find((m) => m.hostId === f.memberHostId);
    if (!member) return refuse('NOT_A_MEMBER', `tenant "${f.tenantId}" has no instance on host "${f.memberHostId}"`);
  }
  if (!member) return refuse('TENANT_NOT_ACTIVE', `tenant "${f.tenantId}" has no primary to move`);
  if (f.members.some((m) => m.hostId === f.toHostId)) {
    return refuse('SAME_HOST', `tenant "${f.tenantId}" already has an instance on host "${f.toHostId}"; pick another host`);
  }
  const t = f.target;
  if (!t) return refuse('HOST_NOT_FOUND', `host "${f.toHostId}" is not in the fleet (pgsctl host list shows the hosts)`);
  if (t.state !== 'READY' || !f.targetConnected)
    return refuse(
      'TARGET_NOT_READY',
      `host "${f.toHostId}" is ${t.state}${t.state === 'READY' ? ' but its agent is not connected' : ''}; move to a READY host`,
    );
  if (t.cordoned || t.draining)
    return refuse(
      'TARGET_CORDONED',
      `host "${f.toHostId}" is ${t.draining ? 'draining' : 'cordoned'}: it takes no new instances (uncordon it, or pick another host)`,
    );
  // The scheduler's own rules (room, labels, zones) decide whether the target fits; the moving
  // member's own host does not count against the target's zone, since it is going away.
  const others = f.members.filter((m) => m.hostId !== member.hostId).map((m) => m.hostId);
  const { unplaced } = placeTenants([t], [{ tenantId: f.tenantId, resources: f.resources, nodes: 1, placement: f.placement, excludeHosts: others }], policy);
  if (unplaced.length > 0) return refuse('TARGET_FULL', `host "${f.toHostId}" cannot take tenant "${f.tenantId}": ${unplaced[0]?.reason ?? 'no room'}`);
  return { member };
}

/** Where a move is. */
export type MovePhase = 'copying' | 'switching' | 'removing';

/** A move in flight, as the executor keeps it. */
export interface MoveProgress {
  phase: MovePhase;
  fromHostId: string;
  toHostId: string;
  /** The moving member is the primary: a switchover hands over before the old one goes. */
  primary: boolean;
  startedAt: number;
  phaseStartedAt: number;
  /** The copy (base backup and catch-up) must be done by then, or the move is abandoned. */
  copyDeadline: number;
}

/** What the executor observed this tick. */
export interface MoveFacts {
  targetHostState: HostState | undefined;
  targetConnected: boolean;
  /** The target's placement; undefined once it is gone. */
  target: { realization: Realization; role: InstanceRole; healthy: boolean; lagBytes: number | undefined; reason: string } | undefined;
  /** The host of the tenant's primary now. */
  primaryHostId: string | undefined;
  /** The switchover's outcome: undefined while none ran or one runs. */
  switchover: { ok: true } | { ok: false; reason: string } | undefined;
  switchoverRunning: boolean;
  /** The old instance's placement is gone and its agent reported the instance deleted (or its host is DOWN). */
  oldRemoved: boolean;
  sourceHostState: HostState | undefined;
  /** The source host's agent is connected (a planned switch fences the old primary through it). */
  sourceConnected: boolean;
  /** The tenant was stopped or is being deleted. */
  cancelled: boolean;
  /** A base backup of the tenant is running on the primary (the switch would end it). */
  backupRunning: boolean;
  /** The source primary's CHECKPOINT before the switch (see MoveCheckpoint). */
  checkpoint: MoveCheckpoint;
}

/**
 * The CHECKPOINT the source primary runs before the switch: not asked yet, asked at `since`, or
 * answered at `at` (ok or not: a failed one only makes the switch's shutdown longer).
 */
export type MoveCheckpoint = { state: 'none' } | { state: 'running'; since: number } | { state: 'finished'; at: number; ok: boolean };

/** The next thing the executor does. */
export type MoveDecision =
  | { kind: 'wait'; reason: string }
  | { kind: 'checkpoint'; reason: string }
  | { kind: 'switch' }
  | { kind: 'remove_old'; reason: string }
  | { kind: 'done' }
  | { kind: 'abandon'; reason: string };

/** How far a catching-up target may be behind to count as caught up, and the checkpoint's bounds. */
export interface MovePolicy {
  maxLagBytes: number;
  /** How long the switch waits for the source's checkpoint before it goes ahead without it (0: no checkpoint). */
  checkpointWaitMs?: number;
  /** A checkpoint older than this when the switch is due (a backup was awaited meanwhile) runs again. */
  checkpointFreshMs?: number;
}

/** Default bounds of the checkpoint before the switch. */
export const MOVE_CHECKPOINT_WAIT_MS = 30_000;
export const MOVE_CHECKPOINT_FRESH_MS = 30_000;

/** Decides the next step of a move from the facts; `now` only compares with the deadlines. */
export function decideMove(p: MoveProgress, f: MoveFacts, policy: MovePolicy, now: number): MoveDecision {
  if (p.phase === 'copying') return copying(p, f, policy, now);
  if (p.phase === 'switching') return switching(p, f);
  if (f.oldRemoved) return { kind: 'done' };
  if (f.sourceHostState === 'DOWN') return { kind: 'done' };
  return { kind: 'wait', reason: `serving on ${p.toHostId}; removing the old instance on ${p.fromHostId}` };
}

function copying(p: MoveProgress, f: MoveFacts, policy: MovePolicy, now: number): MoveDecision {
  if (f.cancelled) return { kind: 'abandon', reason: 'the tenant was stopped or deleted during the copy' };
  // A failover made the copy the primary (the source was lost): nothing to go back to.
  if (f.primaryHostId === p.toHostId)
    return { kind: 'remove_old', reason: `${p.toHostId} took over as the primary; removing the old instance on ${p.fromHostId}` };
  if (f.primaryHostId === undefined || (p.primary && f.primaryHostId !== p.fromHostId))
    return { kind: 'abandon', reason: 'the primary changed during the copy (a failover?)' };
  if (f.targetHostState === 'DOWN' || f.targetHostState === undefined)
    return { kind: 'abandon', reason: `target host ${p.toHostId} went down during the copy` };
  if (!f.target) return { kind: 'abandon', reason: `the copy on ${p.toHostId} is gone` };
  const t = f.target;
  const ready = f.targetConnected && t.realization === 'REALIZED' && t.healthy && t.lagBytes !== undefined && t.lagBytes <= policy.maxLagBytes;
  if (!ready && now > p.copyDeadline) {
    const why = t.realization === 'FAILED' ? `: ${t.reason}` : t.reason ? ` (${t.reason})` : '';
    return { kind: 'abandon', reason: `the copy on ${p.toHostId} did not catch up within ${p.copyDeadline - p.startedAt} ms${why}` };
  }
  if (!f.targetConnected) return { kind: 'wait', reason: `copying to ${p.toHostId}: waiting for its agent to reconnect` };
  if (t.realization !== 'REALIZED' || !t.healthy) {
    const detail = t.realization === 'FAILED' ? `retrying after: ${t.reason}` : 'base backup of the primary';
    return { kind: 'wait', reason: `copying to ${p.toHostId} (${detail})` };
  }
  if (!ready)
    return { kind: 'wait', reason: `replica on ${p.toHostId} catching up (${t.lagBytes === undefined ? 'lag unknown' : `${t.lagBytes} bytes behind`})` };
  if (!p.primary) return { kind: 'remove_old', reason: `replica on ${p.toHostId} caught up; removing the old member on ${p.fromHostId}` };
  // A source host that went away for a moment (a missed heartbeat under load) comes back: the switch
  // needs its agent to fence the old primary, so the move waits for it rather than try and give up.
  if (f.sourceHostState !== 'READY' || !f.sourceConnected) {
    const where = `the source host ${p.fromHostId} is ${f.sourceHostState === 'READY' ? 'reconnecting' : (f.sourceHostState ?? 'gone')}`;
    if (now > p.copyDeadline) return { kind: 'abandon', reason: `${where}; the switch needs it and the copy's time is up` };
    return { kind: 'wait', reason: `replica on ${p.toHostId} caught up; ${where}, waiting for it to switch` };
  }
  // A running backup would be cut by the switch: wait for it while the copy's deadline allows, then
  // switch anyway (the backup is then marked failed, as after any change of primary).
  if (f.backupRunning && now < p.copyDeadline)
    return { kind: 'wait', reason: `replica on ${p.toHostId} caught up; waiting for the running backup to finish before switching` };
  return beforeSwitch(p, f.checkpoint, policy, now);
}

/**
 * The source primary checkpoints while clients still run, then the switch: a checkpoint that does
 * not answer within its bound, or fails, only leaves more for the fence's shutdown to write, so
 * the switch goes ahead without it rather than wait or give up.
 */
function beforeSwitch(p: MoveProgress, c: MoveCheckpoint, policy: MovePolicy, now: number): MoveDecision {
  const waitMs = policy.checkpointWaitMs ?? MOVE_CHECKPOINT_WAIT_MS;
  const freshMs = policy.checkpointFreshMs ?? MOVE_CHECKPOINT_FRESH_MS;
  if (waitMs <= 0) return { kind: 'switch' };
  if (c.state === 'none' || (c.state === 'finished' && now - c.at > freshMs))
    return { kind: 'checkpoint', reason: `replica on ${p.toHostId} caught up; checkpointing the primary on ${p.fromHostId} before the switch` };
  if (c.state === 'running' && now - c.since < waitMs)
    return { kind: 'wait', reason: `replica on ${p.toHostId} caught up; checkpointing the primary on ${p.fromHostId} before the switch` };
  return { kind: 'switch' };
}

function switching(p: MoveProgress, f: MoveFacts): MoveDecision {
  // Once the target is the primary the move is committed: it only goes forward.
  if (f.primaryHostId === p.toHostId && !f.switchoverRunning)
    return { kind: 'remove_old', reason: `serving on ${p.toHostId}; removing the old instance on ${p.fromHostId}` };
  if (f.switchoverRunning || f.switchover === undefined) return { kind: 'wait', reason: `switching to ${p.toHostId}` };
  if (!f.switchover.ok) return { kind: 'abandon', reason: `the switch to ${p.toHostId} failed and was rolled back: ${f.switchover.reason}` };
  return { kind: 'wait', reason: `switching to ${p.toHostId}: waiting for the route` };
}
