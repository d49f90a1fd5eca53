/**
 * A major upgrade by logical replication as pure decisions; the coordinator feeds facts and
 * applies the answer, one step at a time (each step idempotent, so a restarted coordinator resumes):
 *
 *   creating     the new instance (target major) is built empty on the target host, with the
 *                tenant's roles and databases; the source gets its publications
 *   copying      schema copied and one subscription per database; the initial copy runs, then streams
 *   switching    the routers hold the tenant's clients (route SWITCHING), the source's writers are
 *                blocked, the new instance catches up to the source's last position and takes its
 *                sequence values, the route moves to it and the hold is released; only then are the
 *                subscriptions dropped (cleanup the clients need not wait for) and the old instance
 *                stopped
 *   kept         the old instance is stopped and kept for a rollback until finalized or its
 *                retention ends. A rollback starts it again while clients still use the new one,
 *                then holds them, blocks the new instance's writers and gives the route back
 *
 * Before the route moves, any failure abandons the upgrade and leaves the tenant as it was (the
 * source's writers unblocked, the hold released, the new instance removed). A switch that cannot
 * catch up within the hold gives the clients back to the source and tries again later, a few times.
 * Once the route moved, the upgrade only goes forward, or back through an explicit rollback.
 */

/** The phases of an upgrade. */
export type UpgradePhase = 'creating' | 'copying' | 'switching' | 'kept';

/** Where an upgrade is (the operation row). */
export interface UpgradeProgress {
  phase: UpgradePhase;
  fromHostId: string;
  toHostId: string;
  fromMajor: number;
  toMajor: number;
  startedAt: number;
  phaseStartedAt: number;
  /** The new instance must be built and copied by then. */
  copyDeadline: number;
  /** Switches tried that could not catch up within the hold. */
  switchAttempts: number;
  /** Kept: the old instance is deleted after this (0 = only by an explicit finalize). */
  keepUntil: number;
}

/** What the coordinator knows now. */
export interface UpgradeFacts {
  /** The tenant was deleted or stopped meanwhile. */
  cancelled: boolean;
  /** The new instance: undefined = not placed yet. */
  target: { realized: boolean; healthy: boolean; failedReason: string } | undefined;
  /** The source has its publications (PREPARE answered ok). */
  sourcePrepared: boolean;
  /** Schema copied and subscribed (SUBSCRIBE answered ok). */
  subscribed: boolean;
  /** The last SYNC_STATE answer. */
  sync: { tables: number; ready: number } | undefined;
  /** The route is SWITCHING (routers hold clients). */
  held: boolean;
  /** BLOCK_WRITERS answered ok. */
  writersBlocked: boolean;
  /** The CATCH_UP answer; undefined = not sent or in flight. */
  catchUp: { ok: true } | { ok: false; reason: string } | undefined;
  /** The route names the new instance. */
  routeOnTarget: boolean;
  /** The old instance is stopped (kept for rollback). */
  oldStopped: boolean;
  /** Kept, rolling back: the old instance runs the tenant's current spec and is healthy. */
  oldReady: boolean;
  /** What the operator asked for while kept. */
  request: 'none' | 'rollback' | 'finalize';
}

/** Limits of an upgrade. */
export interface UpgradePolicy {
  /** Switches that may fail to catch up within the hold before the upgrade is abandoned. */
  maxSwitchAttempts: number;
}

/** What to do next. */
export type UpgradeDecision =
  | { kind: 'wait'; reason: string }
  | { kind: 'prepare_source' }
  | { kind: 'subscribe' }
  | { kind: 'poll_sync' }
  | { kind: 'hold' }
  | { kind: 'block_writers' }
  | { kind: 'catch_up' }
  /** Route to the new instance (its major becomes the tenant's), the hold released. */
  | { kind: 'switch_route' }
  /** After the route moved: the new instance's subscriptions (and their slots on the old one) are dropped. */
  | { kind: 'drop_subscriptions' }
  | { kind: 'stop_old' }
  /** The switch did not catch up in time: writers unblocked, the hold released, back to copying. */
  | { kind: 'retry_switch'; reason: string }
  /** Before the route moved: everything undone, the new instance removed. */
  | { kind: 'abandon'; reason: string }
  /** Rolling back: the kept old instance starts with the tenant's spec while clients still use the new one. */
  | { kind: 'start_old' }
  /** Rolling back, the old instance ready: the routers hold the clients (route SWITCHING). */
  | { kind: 'rollback_hold' }
  /** Rolling back, held: the new instance's writers end, so nothing commits there after the route leaves it. */
  | { kind: 'block_new_writers' }
  /** Rolling back, held and blocked: the old instance takes the route back and the hold ends (writes to the new one since the switch are lost). */
  | { kind: 'rollback' }
  /** Kept: the old instance is deleted. */
  | { kind: 'finalize'; reason: string };

/** The next step of an upgrade. */
export function decideUpgrade(p: UpgradeProgress, f: UpgradeFacts, policy: UpgradePolicy, now: number): UpgradeDecision {
  if (p.phase === 'kept') return kept(p, f, now);
  // Once the route moved, nothing goes back but an explicit rollback.
  if (p.phase === 'switching') return switching(p, f, policy);
  if (f.cancelled) return { kind: 'abandon', reason: 'the tenant was deleted or stopped' };
  if (now >= p.copyDeadline) return { kind: 'abandon', reason: `the new instance on ${p.toHostId} was not ready by the deadline` };
  return p.phase === 'creating' ? creating(p, f) : copying(f);
}

function creating(p: UpgradeProgress, f: UpgradeFacts): UpgradeDecision {
  if (f.target?.failedReason) return { kind: 'abandon', reason: `the new instance on ${p.toHostId} failed: ${f.target.failedReason}` };
  if (!f.sourcePrepared) return { kind: 'prepare_source' };
  if (!f.target?.realized || !f.target.healthy) return { kind: 'wait', reason: `building PostgreSQL ${p.toMajor} on ${p.toHostId}` };
  return { kind: 'subscribe' };
}

function copying(f: UpgradeFacts): UpgradeDecision {
  if (f.target?.failedReason) return { kind: 'abandon', reason: `the new instance failed: ${f.target.failedReason}` };
  if (!f.subscribed) return { kind: 'subscribe' };
  const s = f.sync;
  // Zero tables is a copy not started yet (a subscription lists its tables when it is created).
  if (!s || s.tables === 0 || s.ready < s.tables) return { kind: 'poll_sync' };
  return { kind: 'hold' };
}

function switching(p: UpgradeProgress, f: UpgradeFacts, policy: UpgradePolicy): UpgradeDecision {
  if (f.routeOnTarget) {
    // The source's slots go with the subscriptions, so the old instance runs until they are dropped.
    if (f.subscribed) return { kind: 'drop_subscriptions' };
    return f.oldStopped ? { kind: 'wait', reason: 'switched' } : { kind: 'stop_old' };
  }
  if (f.cancelled) return { kind: 'abandon', reason: 'the tenant was deleted or stopped' };
  if (!f.held) return { kind: 'hold' };
  if (!f.writersBlocked) return { kind: 'block_writers' };
  if (f.catchUp === undefined) return { kind: 'catch_up' };
  if (f.catchUp.ok) return { kind: 'switch_route' };
  if (p.switchAttempts + 1 >= policy.maxSwitchAttempts)
    return { kind: 'abandon', reason: `the new instance could not catch up within the hold ${policy.maxSwitchAttempts} times: ${f.catchUp.reason}` };
  return { kind: 'retry_switch', reason: f.catchUp.reason };
}

function kept(p: UpgradeProgress, f: UpgradeFacts, now: number): UpgradeDecision {
  if (f.request === 'rollback') {
    // Clients are held only once the old instance can take them at once (no refusals while it starts).
    if (!f.oldReady) return { kind: 'start_old' };
    if (!f.held) return { kind: 'rollback_hold' };
    if (!f.writersBlocked) return { kind: 'block_new_writers' };
    return { kind: 'rollback' };
  }
  if (f.request === 'finalize') return { kind: 'finalize', reason: 'finalized by the operator' };
  if (p.keepUntil > 0 && now >= p.keepUntil) return { kind: 'finalize', reason: 'the retention of the old instance ended' };
  return { kind: 'wait', reason: `the old PostgreSQL ${p.fromMajor} instance on ${p.fromHostId} is kept for a rollback` };
}
