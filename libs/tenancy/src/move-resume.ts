/**
 * A live move found in its row by a coordinator that restarted (the executor's memory of it died
 * with the old process), as a pure decision. The row says the phase the move had reached; the
 * tenant's placements and the switchover's own row say what happened since:
 *
 *   copying    goes on where it was (the copy keeps streaming meanwhile); a copy that is gone, on a
 *              host that is gone, or past its deadline is abandoned (a wake by a move then puts the
 *              tenant back to sleep on its own host)
 *   switching  a switchover still in flight is waited for; a target that already serves goes on to
 *              the removal; a switch that never started or was rolled back while no coordinator
 *              watched goes back to copying, so it switches again once the copy caught up (or is
 *              abandoned past the copy's deadline, as any move)
 *   removing   the new instance serves and the old placement is gone: the move is complete (the old
 *              host is told again to delete what it holds)
 */
import type { MoveProgress } from './move.js';
import type { HostState, InstanceRole } from './statuses.js';

/** What the restarted executor reads before it takes a move back. */
export interface MoveResumeFacts {
  /** The tenant still exists. */
  tenantExists: boolean;
  /** The move wakes a suspended tenant (the row keeps why its host could not take it back). */
  wake: boolean;
  /** The tenant's placements now. */
  members: readonly { hostId: string; role: InstanceRole }[];
  /** The target host's state (undefined when it left the fleet). */
  targetHostState: HostState | undefined;
  /** A switchover of the tenant is in flight (its operation row, resumed by the failover code). */
  switchoverInFlight: boolean;
}

/** What becomes of a move found in its row after a restart. */
export type MoveResume =
  /** Take it back with this progress (the phase may be an earlier one than the row's). */
  | { kind: 'resume'; progress: MoveProgress; reason: string }
  /** The new instance serves: end the move now (the old one is deleted by its host). */
  | { kind: 'complete'; reason: string }
  /** Give it up: the copy goes; `sleep`: a wake by a move, whose tenant goes back to sleep on its own host. */
  | { kind: 'abandon'; reason: string; sleep: boolean }
  /** Nothing left to do (the tenant is gone): drop the row. */
  | { kind: 'forget'; reason: string };

/** Decides how a move found in its row after a restart goes on; `now` only compares with the deadline. */
export function resumeMove(p: MoveProgress, f: MoveResumeFacts, now: number): MoveResume {
  if (!f.tenantExists) return { kind: 'forget', reason: 'the tenant is gone' };
  const primary = f.members.find((m) => m.role === 'PRIMARY')?.hostId;
  const target = f.members.find((m) => m.hostId === p.toHostId);
  const abandon = (reason: string): MoveResume => ({ kind: 'abandon', reason, sleep: f.wake && primary !== p.toHostId });
  if (p.phase === 'removing') return { kind: 'complete', reason: `serving on ${p.toHostId}; the old instance on ${p.fromHostId} is deleted by its host` };
  if (p.phase === 'switching') {
    if (f.switchoverInFlight) return { kind: 'resume', progress: p, reason: `switching to ${p.toHostId}: the switchover goes on from its row` };
    if (primary === p.toHostId) return { kind: 'resume', progress: p, reason: `${p.toHostId} is the primary: removing the old instance on ${p.fromHostId}` };
  }
  // Copying, or a switch that left the source the primary: the copy must still be there to go on.
  if (primary === p.toHostId) return { kind: 'resume', progress: p, reason: `${p.toHostId} took over as the primary` };
  if (!target) return abandon(`the copy on ${p.toHostId} is gone`);
  if (f.targetHostState === undefined || f.targetHostState === 'DOWN') return abandon(`target host ${p.toHostId} is ${f.targetHostState ?? 'gone'}`);
  if (now > p.copyDeadline) return abandon(`the copy on ${p.toHostId} did not catch up within ${p.copyDeadline - p.startedAt} ms`);
  if (p.phase === 'switching')
    return {
      kind: 'resume',
      progress: { ...p, phase: 'copying', phaseStartedAt: now },
      reason: `the switch to ${p.toHostId} did not happen; switching again once the copy caught up`,
    };
  return { kind: 'resume', progress: p, reason: `copying to ${p.toHostId} goes on` };
}
