/**
 * The agent's side of the lease, as pure rules (the coordinator README, "the lease rule the agent
 * must honour"). The coordinator grants a lease with each Welcome and lease renewal; a primary of
 * a replicated tenant must not outlive it, because once it is over the coordinator may promote a
 * replica. The agent passes in its clock; nothing here reads one.
 */

/**
 * The lease deadline after the coordinator answered a message the agent sent at `sentAt`: counted
 * from the sending, never from the answer's arrival, so the agent's deadline is never later than
 * the coordinator's. A deadline never moves back (a late answer to an older message changes nothing).
 */
export function renewedLeaseDeadline(current: number, sentAt: number, leaseMs: number): number {
  if (leaseMs <= 0 || !Number.isFinite(sentAt)) return current;
  return Math.max(current, sentAt + leaseMs);
}

/** What the rule needs to know about one instance the agent holds. */
export interface LeaseHoldInput {
  runState: 'RUNNING' | 'STOPPED';
  role: 'PRIMARY' | 'REPLICA';
  /** The coordinator fenced this spec revision with a command. */
  fencedByCommand: boolean;
  /** The spec asks for the lease rule (primaries that have replicas). */
  fenceOnLeaseExpiry: boolean;
  /** The lease deadline (epoch ms, agent clock; 0: never held). */
  leaseDeadline: number;
  /** Whether the instance runs now. */
  running: boolean;
  /** The coordinator sent or confirmed this spec since the agent started or last lost its lease. */
  confirmed: boolean;
  now: number;
}

/**
 * Why an instance that should run is held stopped ('' when it may run). A replica never accepts
 * writes, so it is never held. A primary fenced by command stays stopped. A primary under the lease
 * rule runs only while the lease holds, and starting one also needs the coordinator's confirmation:
 * a restarted agent must not bring back a primary the coordinator has replaced meanwhile.
 */
export function leaseHoldReason(i: LeaseHoldInput): string {
  if (i.runState !== 'RUNNING' || i.role === 'REPLICA') return '';
  if (i.fencedByCommand) return 'fenced';
  if (!i.fenceOnLeaseExpiry) return '';
  if (i.now >= i.leaseDeadline) return 'fenced: the lease from the coordinator expired';
  if (!i.running && !i.confirmed) return 'waiting for the coordinator to confirm this primary';
  return '';
}

/** Whether the lease has run out at `now` and the primaries under its rule must stop at once. */
export function leaseExpired(leaseDeadline: number, now: number): boolean {
  return now >= leaseDeadline;
}
