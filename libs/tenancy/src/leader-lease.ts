/**
 * The coordinators' leader lease as pure rules. Several coordinators share one store; one row holds
 * the lease: who holds it, until when, and an epoch that grows by one at every change of hands (a
 * fencing token). The leader renews long before the lease ends; a follower takes the lease only
 * once it has run out. Every write of the leader is conditional on its epoch and on the lease being
 * live (checked by the store in the same transaction), so a leader that lost the lease cannot
 * commit, and agents refuse commands stamped with an epoch older than the newest they saw.
 *
 * Two clocks, on purpose: the row's times come from the store's clock alone (every coordinator asks
 * the database for `now`), so coordinators' clocks never have to agree; a leader judges locally how
 * long it may still act with its own monotonic clock, counted from when it *sent* its last
 * successful renewal, which is never later than the store's `now` of that renewal.
 */

/** The lease row as stored. Times are the store's clock, epoch ms. */
export interface LeaseRow {
  /** Who holds it: a coordinator's id plus a per-process nonce ('' = nobody ever did). */
  holder: string;
  /** The holder's advertised API address, so followers can name the leader. */
  address: string;
  /** Grows by one at every acquisition; 0 before the first. */
  epoch: number;
  /** The lease is live while the store's now < expiresAt. */
  expiresAt: number;
}

/** The lease timings. */
export interface LeaseTimings {
  /** How long a granted or renewed lease lasts. */
  ttlMs: number;
  /** How often the leader renews, and how often a follower tries to acquire. */
  renewIntervalMs: number;
  /** How much earlier than the lease's end a leader stops acting, for clock rate differences. */
  safetyMarginMs: number;
}

/**
 * Defaults: a 2 s lease renewed every 500 ms (three renewals may fail or be slow before the lease
 * ends, which rides out a GC pause or a brief store hiccup), followers trying every 500 ms. After a
 * leader dies a follower holds the lease within ttl + one interval = 2.5 s of the leader's last
 * renewal; the leader stops acting 250 ms before its lease could have ended.
 */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { ttlMs: 2000, renewIntervalMs: 500, safetyMarginMs: 250 };

/** Who asks: this coordinator, and the epoch it holds (0 = none). */
export interface LeaseCandidate {
  holder: string;
  address: string;
  heldEpoch: number;
}

/** What to do with the row, decided under its lock. */
export type LeaseDecision =
  /** The candidate holds a live lease: extend it, same epoch. */
  | { kind: 'renew'; next: LeaseRow }
  /** The lease is free or ran out: take it with the next epoch. */
  | { kind: 'acquire'; next: LeaseRow }
  /** Someone else holds a live lease: follow it (and, if we thought we led, we lost). */
  | { kind: 'follow'; leader: LeaseRow; lost: boolean };

/**
 * The timings of a lease `ttlMs` long, in the proportions of the defaults: renewed every quarter of
 * it (three renewals may fail before it ends) and left an eighth of it early. A longer lease rides
 * out a slower store or a busier leader (a loaded machine where the default changes hands
 * constantly); the price is the same longer wait before a follower takes over a dead leader.
 */
export function leaseTimingsFor(ttlMs: number): LeaseTimings {
  if (!Number.isInteger(ttlMs)) throw new RangeError(`a leader lease of ${ttlMs} ms does not work: whole milliseconds only`);
  const t = { ttlMs, renewIntervalMs: Math.floor(ttlMs / 4), safetyMarginMs: Math.floor(ttlMs / 8) };
  const problem = validateLeaseTimings(t);
  if (problem !== undefined) throw new RangeError(`a leader lease of ${ttlMs} ms does not work: ${problem}`);
  return t;
}

/** Checks the timings make sense: the leader renews several times within one lease, and the margin leaves room to act. */
export function validateLeaseTimings(t: LeaseTimings): string | undefined {
  if (!(t.ttlMs > 0 && t.renewIntervalMs > 0 && t.safetyMarginMs >= 0)) return 'lease timings must be positive';
  if (t.renewIntervalMs * 2 > t.ttlMs - t.safetyMarginMs) {
    return `the renew interval (${t.renewIntervalMs} ms) must fit at least twice into the lease (${t.ttlMs} ms) less its safety margin (${t.safetyMarginMs} ms)`;
  }
  return undefined;
}

/**
 * The acquire/renew/lose rule, applied to the row read under lock with the store's `now`.
 * A lease is renewed only by its holder at the same epoch while it is live; once it ran out anyone,
 * its old holder too, may take it, always with a new epoch (a holder whose lease lapsed may have
 * been overtaken in between and must reload what it knows).
 */
export function decideLease(row: LeaseRow, me: LeaseCandidate, now: number, t: LeaseTimings): LeaseDecision {
  const live = now < row.expiresAt;
  const mine = row.holder === me.holder && row.epoch === me.heldEpoch && me.heldEpoch > 0;
  if (live && mine) return { kind: 'renew', next: { ...row, address: me.address, expiresAt: now + t.ttlMs } };
  if (live) return { kind: 'follow', leader: row, lost: me.heldEpoch > 0 };
  return { kind: 'acquire', next: { holder: me.holder, address: me.address, epoch: row.epoch + 1, expiresAt: now + t.ttlMs } };
}

/**
 * Until when (local monotonic clock) a leader may act after a renewal or acquisition it sent at
 * `sentAt` and that succeeded: the lease, less the safety margin. The store's `now` of that
 * renewal was no earlier than `sentAt`, so the store's lease outlives this local deadline.
 */
export function actUntil(sentAt: number, t: LeaseTimings): number {
  return sentAt + t.ttlMs - t.safetyMarginMs;
}

/** What the local leadership state is, as the renew loop sees it. */
export type Leadership = { role: 'follower'; leader: LeaseRow | undefined } | { role: 'leader'; epoch: number; actUntil: number };

/**
 * The local state after one attempt. A failed attempt (store unreachable, `decision` undefined)
 * keeps a leader leading only until its local deadline; past it the leader steps down even though
 * nobody told it so, because another coordinator may hold the lease by then.
 */
export function nextLeadership(current: Leadership, decision: LeaseDecision | undefined, sentAt: number, now: number, t: LeaseTimings): Leadership {
  if (decision === undefined) {
    if (current.role === 'leader' && now < current.actUntil) return current;
    return { role: 'follower', leader: current.role === 'follower' ? current.leader : undefined };
  }
  if (decision.kind === 'follow') return { role: 'follower', leader: decision.leader };
  const until = actUntil(sentAt, t);
  if (now >= until) return { role: 'follower', leader: decision.next }; // the answer came too late to act on
  return { role: 'leader', epoch: decision.next.epoch, actUntil: until };
}

/** Whether a leader may still act (send commands, start operations) at `now`. */
export function mayAct(l: Leadership, now: number): boolean {
  return l.role === 'leader' && now < l.actUntil;
}

/**
 * The agents' rule: a command stamped with an epoch older than the newest one seen comes from a
 * coordinator that was overtaken, and is refused; a newer one raises the bar. Epoch 0 means an
 * unstamped command (a single coordinator on SQLite) and is accepted while no epoch was seen.
 */
export function acceptEpoch(newestSeen: number, stamped: number): { accept: boolean; newestSeen: number } {
  if (stamped < newestSeen) return { accept: false, newestSeen };
  return { accept: true, newestSeen: stamped };
}
