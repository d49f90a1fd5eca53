/**
 * Failover decisions as pure functions: when a primary counts as failed, when its old
 * primary counts as fenced (its agent acknowledged, or the agent's lease ran out), which replica
 * may be promoted without losing an acknowledged commit, and the step plan as data. Time is passed
 * in (`now`); the coordinator executes the plan.
 */
import { compareLsn, tryParseLsn } from './failover-lsn.js';
import type { HostState, InstanceRole } from './statuses.js';

/** What the decisions need to know about one instance of the tenant. */
export interface FailoverMember {
  hostId: string;
  role: InstanceRole;
  hostState: HostState;
  /** Realized at least once (it holds a copy of the data) and not FAILED now. */
  realized: boolean;
  /** Running and answering (the agent's last report). */
  healthy: boolean;
  /** Last reported LSN: receive/replay position on a replica, '' when unknown. */
  lsn: string;
  /** Last reported timeline, 0 when unknown. */
  timeline: number;
  /** When the agent checked (epoch ms), 0 when never. */
  reportedAt: number;
}

/** Why a primary counts as failed. */
export type FailureCause = 'host_down' | 'unhealthy';

/** The verdict on a primary. */
export type PrimaryVerdict = { failed: false } | { failed: true; cause: FailureCause; reason: string };

/** Inputs of primaryFailure. */
export interface PrimaryObservation {
  hostId: string;
  hostState: HostState;
  healthy: boolean;
  /** Since when the primary has been seen unhealthy with its host up; undefined while healthy. */
  unhealthySince: number | undefined;
  now: number;
}

/**
 * A primary has failed when its host is DOWN, or when it has been unhealthy for at least
 * `unhealthyAfterMs` while its host is READY (a crash loop, a full disk). An UNREACHABLE host is
 * not failed yet: it may come back within the grace period, and failing over then costs more than
 * the wait.
 */
export function primaryFailure(o: PrimaryObservation, policy: { unhealthyAfterMs: number }): PrimaryVerdict {
  if (o.hostState === 'DOWN') return { failed: true, cause: 'host_down', reason: `primary host ${o.hostId} is down` };
  if (o.hostState !== 'READY' || o.healthy || o.unhealthySince === undefined) return { failed: false };
  const forMs = o.now - o.unhealthySince;
  if (forMs < policy.unhealthyAfterMs) return { failed: false };
  return { failed: true, cause: 'unhealthy', reason: `primary on host ${o.hostId} has been unhealthy for ${forMs} ms` };
}

/**
 * The time after which an agent last renewed at `renewedAt` has certainly fenced its primaries: the
 * lease, plus a margin for the agent to stop the instance and for clocks running at slightly
 * different rates (10% of the lease, at least 250 ms).
 */
export function leaseDeadline(renewedAt: number, leaseMs: number): number {
  return renewedAt + leaseMs + Math.max(250, Math.ceil(leaseMs / 10));
}

/** Inputs of fencingState. */
export interface FencingInput {
  /** When the old primary's agent acknowledged Fence (ok), if it did. */
  ackedAt: number | undefined;
  /** When the coordinator last renewed that agent's lease (Welcome or a lease renewal sent). */
  leaseRenewedAt: number;
  leaseMs: number;
  /**
   * When the old primary was found gone with its agent (primaryLoss goneAt), while the agent is still
   * away: nothing runs it and nothing can restart it unconfirmed. Ignored once the agent is back
   * (then only its acknowledgement fences).
   */
  goneAt?: number | undefined;
  /** Whether the old primary's agent is connected now. */
  agentConnected?: boolean;
  now: number;
}

/** Whether the old primary is fenced, how, and since when; or until when to wait at most. */
export type FencingState = { fenced: true; via: 'ack' | 'lease' | 'gone'; at: number } | { fenced: false; leaseExpiresAt: number };

/**
 * The old primary is fenced once its agent acknowledged Fence, or once its lease is over: an agent
 * stops its primaries when it has not heard from the coordinator for lease_ms. While the agent is
 * connected its lease keeps being renewed, so only an acknowledgement fences it; nothing else does.
 * A primary found gone with its agent (both stopped answering at once, see primaryLoss) is fenced
 * from that point while its agent stays away.
 */
export function fencingState(f: FencingInput): FencingState {
  if (f.ackedAt !== undefined) return { fenced: true, via: 'ack', at: f.ackedAt };
  if (f.goneAt !== undefined && f.goneAt > 0 && f.agentConnected !== true) return { fenced: true, via: 'gone', at: f.goneAt };
  const expires = leaseDeadline(f.leaseRenewedAt, f.leaseMs);
  return f.now >= expires ? { fenced: true, via: 'lease', at: expires } : { fenced: false, leaseExpiresAt: expires };
}

/** A synchronous quorum that may be in force on the old primary: ANY k of `standbys` (host ids). */
export interface SyncQuorum {
  k: number;
  standbys: readonly string[];
}

/** Inputs of pickPromotionCandidate. */
export interface CandidateInput {
  members: readonly FailoverMember[];
  /** The failed (or switched-away) primary's host: never a candidate. */
  oldPrimaryHostId: string;
  /**
   * Every quorum the old primary may have been running with (more than one while a change of
   * synchronous_standby_names was sent but not yet confirmed). Empty or k = 0: asynchronous.
   */
  quorums: readonly SyncQuorum[];
  /** Reports checked before this time (the fencing point) may be stale: the primary could still write. */
  fencedAt: number;
  /** Switchover target or operator preference; only it may be chosen when given. */
  toHostId?: string | undefined;
}

/** A replica to promote, or why there is none (yet). */
export type CandidateDecision =
  { kind: 'promote'; hostId: string; lsn: string; reason: string } | { kind: 'wait'; reason: string } | { kind: 'none'; reason: string };

/** Orders by timeline, then LSN (unknown last). */
function moreAdvanced(a: FailoverMember, b: FailoverMember): number {
  if (a.timeline !== b.timeline) return a.timeline - b.timeline;
  const la = tryParseLsn(a.lsn);
  const lb = tryParseLsn(b.lsn);
  if (la === undefined || lb === undefined) return la === undefined ? (lb === undefined ? 0 : -1) : 1;
  return compareLsn(a.lsn, b.lsn);
}

/**
 * The replica to promote. Only healthy, realized replicas on READY hosts are eligible. With
 * synchronous replication (`ANY k` of n standbys) an acknowledged commit is on at least k of the n,
 * so among any n - k + 1 of them one has it; WAL being one sequence, the most advanced of those has
 * every acknowledged commit. So: at least n - k + 1 of each quorum's standbys must be eligible with
 * a report taken after the fencing point (older LSNs may have moved since), and the most advanced of
 * the fresh ones is chosen (timeline first, then LSN). When k = n every standby has every
 * acknowledged commit and any eligible one is safe. Asynchronous: the most advanced eligible replica
 * (a commit not yet shipped is lost, which asynchronous replication accepts). Ties go to the
 * smallest host id, so the choice is deterministic.
 */
export function pickPromotionCandidate(input: CandidateInput): CandidateDecision {
  const eligible = input.members.filter(
    (m) => m.hostId !== input.oldPrimaryHostId && m.role === 'REPLICA' && m.hostState === 'READY' && m.realized && m.healthy,
  );
  if (eligible.length === 0) return { kind: 'none', reason: 'no healthy replica on a ready host' };
  const fresh = eligible.filter((m) => m.reportedAt >= input.fencedAt && tryParseLsn(m.lsn) !== undefined);
  const freshIds = new Set(fresh.map((m) => m.hostId));
  const eligibleIds = new Set(eligible.map((m) => m.hostId));
  let pool = eligible;
  for (const q of input.quorums) {
    const n = q.standbys.length;
    if (q.k <= 0 || n === 0 || q.k >= n) continue;
    const need = n - q.k + 1;
    const have = q.standbys.filter((id) => freshIds.has(id)).length;
    if (have < need) {
      const reachable = q.standbys.filter((id) => eligibleIds.has(id)).length;
      const why = `ANY ${q.k} of ${n} standbys: ${need} must report their position after fencing, ${have} did`;
      return reachable >= need
        ? { kind: 'wait', reason: `${why}; waiting for fresh reports` }
        : { kind: 'wait', reason: `${why}; only ${reachable} are healthy, waiting for more (promoting another could lose acknowledged commits)` };
    }
    pool = fresh;
  }
  // A quorum with k = n: every standby has every acknowledged commit; only its members are safe.
  const strict = input.quorums.filter((q) => q.k > 0 && q.k >= q.standbys.length && q.standbys.length > 0);
  for (const q of strict) pool = pool.filter((m) => q.standbys.includes(m.hostId));
  if (pool.length === 0) return { kind: 'wait', reason: 'no eligible replica is in the synchronous quorum yet' };
  const sorted = [...pool].sort((a, b) => moreAdvanced(b, a) || (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0));
  const best = sorted[0]!;
  if (input.toHostId !== undefined && input.toHostId !== '') {
    const target = pool.find((m) => m.hostId === input.toHostId);
    if (!target) return { kind: 'none', reason: `host ${input.toHostId} has no replica that is healthy, on a ready host and safe to promote` };
    if (moreAdvanced(target, best) < 0)
      return { kind: 'wait', reason: `replica on ${target.hostId} (${target.lsn || 'unknown'}) is behind ${best.hostId} (${best.lsn})` };
    return { kind: 'promote', hostId: target.hostId, lsn: target.lsn, reason: `requested target, at ${target.lsn || 'unknown LSN'}` };
  }
  const sync = input.quorums.some((q) => q.k > 0);
  return {
    kind: 'promote',
    hostId: best.hostId,
    lsn: best.lsn,
    reason: `${sync ? 'synchronous' : 'asynchronous'} replica, most advanced at ${best.lsn || 'unknown LSN'}`,
  };
}

/** One step of a failover, in execution order. */
export type FailoverStep =
  | { step: 'fence'; hostId: string; via: 'command' | 'lease' }
  | { step: 'promote'; hostId: string }
  | { step: 'repoint'; hostIds: string[] }
  | { step: 'route'; hostId: string }
  | { step: 'rejoin'; hostId: string };

/** Inputs of failoverPlan. */
export interface PlanInput {
  oldPrimaryHostId: string;
  /** Whether the old primary's agent is connected (it can be told to fence) or only its lease can. */
  oldPrimaryReachable: boolean;
  candidateHostId: string;
  /** Every other replica's host. */
  replicaHostIds: readonly string[];
}

/**
 * The steps, as data: fence the old primary first (command when its agent is reachable, else its
 * lease), promote the candidate, repoint the other replicas to it, switch the route, and finally
 * bring the old primary back as a replica of the new one (when its host returns).
 */
export function failoverPlan(p: PlanInput): FailoverStep[] {
  const others = p.replicaHostIds.filter((h) => h !== p.candidateHostId && h !== p.oldPrimaryHostId);
  return [
    { step: 'fence', hostId: p.oldPrimaryHostId, via: p.oldPrimaryReachable ? 'command' : 'lease' },
    { step: 'promote', hostId: p.candidateHostId },
    { step: 'repoint', hostIds: [...others].sort() },
    { step: 'route', hostId: p.candidateHostId },
    { step: 'rejoin', hostId: p.oldPrimaryHostId },
  ];
}
