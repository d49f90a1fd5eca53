/**
 * Runs the leader lease for one coordinator: every renew interval one acquire-or-renew attempt on
 * its own connection (so store traffic never delays a renewal), the local leadership state kept by
 * the pure rules of @pgs/tenancy, and listeners told when this coordinator starts or stops leading.
 * A leader whose renewals fail stops leading at its local deadline, even with the store out of
 * reach; a clean stop releases the lease so a follower takes over at its next attempt.
 */
import { DEFAULT_LEASE_TIMINGS, mayAct, nextLeadership, type Leadership, type LeaseDecision, type LeaseTimings } from '@pgs/tenancy';
import type pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { leaseStep, releaseLease } from '../store/postgres/leader-lease-sql.js';
import type { WriteFence } from '../store/postgres/pg-store.js';

/** Options of startLeaderElection. */
export interface LeaderElectionOptions {
  /** A coordinator id plus a per-process nonce: two processes never share it. */
  holder: string;
  /** The API address followers name when they refuse a write. */
  address: string;
  /** Opens the dedicated connection the lease runs on (again after it broke). */
  connect: () => Promise<pg.Client>;
  timings?: LeaseTimings;
  log: Pick<Logger, 'info' | 'warn'>;
  /** Monotonic milliseconds; performance.now by default. */
  clock?: () => number;
  /**
   * Whether to attempt at all now; an attempt not made counts as a failed one (a leader steps down
   * at its deadline, a follower takes nothing). Always by default.
   */
  mayAttempt?: () => boolean;
  /** Told every state the loop reaches, renewals included (onChange only hears changes of role). */
  onState?: (l: Leadership) => void;
}

/** A running election. */
export interface LeaderElection {
  /** This coordinator's holder name in the lease row. */
  readonly holder: string;
  /** The local state now (a leader past its local deadline reads as a follower). */
  current(): Leadership;
  /** The epoch to stamp on writes and commands, when this coordinator may act as the leader now. */
  leaderEpoch(): number | undefined;
  /** Called on every change of role (and of the known leader while following). */
  onChange(listener: (l: Leadership) => void): () => void;
  /** One attempt now (tests and start-up: no need to wait for the first interval). */
  tick(): Promise<void>;
  /** Stops attempting; releases a held lease unless `release` is false (a simulated crash). */
  stop(options?: { release?: boolean }): Promise<void>;
}

function sameLeadership(a: Leadership, b: Leadership): boolean {
  if (a.role !== b.role) return false;
  if (a.role === 'leader' && b.role === 'leader') return a.epoch === b.epoch;
  if (a.role === 'follower' && b.role === 'follower') return a.leader?.epoch === b.leader?.epoch && a.leader?.holder === b.leader?.holder;
  return false;
}

/** Starts the election loop; the first attempt runs at once. */
export function startLeaderElection(o: LeaderElectionOptions): LeaderElection {
  const t = o.timings ?? DEFAULT_LEASE_TIMINGS;
  const clock = o.clock ?? (() => performance.now());
  const listeners = new Set<(l: Leadership) => void>();
  let state: Leadership = { role: 'follower', leader: undefined };
  let client: pg.Client | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let deadlineTimer: NodeJS.Timeout | undefined;

  /** Why the last step went as it did, for the log line of a step down. */
  const set = (next: Leadership, why: string): void => {
    const changed = !sameLeadership(state, next);
    const was = state;
    state = next;
    clearTimeout(deadlineTimer);
    o.onState?.(next);
    if (next.role === 'leader') {
      // Step down at the local deadline if no renewal arrives before it. Judged after the I/O that
      // is ready has been read (setImmediate runs after this turn's I/O, a timer before it): after a
      // turn of the event loop longer than what was left, a renewal answered meanwhile is read
      // first and keeps the term instead of ending and resuming it. Nothing acts in between:
      // mayAct and leaderEpoch go by the clock.
      deadlineTimer = setTimeout(
        () =>
          setImmediate(() => {
            if (!stopped) set(nextLeadership(state, undefined, clock(), clock(), t), 'no renewal answered before the local deadline');
          }),
        Math.max(0, next.actUntil - clock()),
      );
      deadlineTimer.unref();
    }
    if (!changed) return;
    if (next.role === 'leader') o.log.info({ epoch: next.epoch }, 'leading');
    else if (was.role === 'leader') o.log.warn({ epoch: was.epoch, leader: next.leader?.address, why }, 'no longer leading');
    for (const l of listeners) l(next);
  };

  const attempt = async (): Promise<void> => {
    let sentAt = clock();
    let decision: LeaseDecision | undefined;
    if (o.mayAttempt?.() === false) {
      set(nextLeadership(state, undefined, sentAt, clock(), t), 'not attempting (mayAttempt said no)');
      return;
    }
    try {
      client ??= await o.connect();
      // The local deadline counts from when the lease statement is sent, not from before a
      // (re)connect: a connect that took most of the lease on a loaded machine would otherwise leave
      // an acquisition too late to act on, and the coordinator following itself until the lease ran
      // out and it took it again at the next epoch.
      sentAt = clock();
      const heldEpoch = state.role === 'leader' ? state.epoch : 0;
      decision = await leaseStep(client, { holder: o.holder, address: o.address, heldEpoch }, t);
    } catch (err) {
      o.log.warn({ err }, 'leader lease attempt failed');
      const broken = client;
      client = undefined;
      await broken?.end().catch(() => undefined);
    }
    if (stopped) return;
    const tookMs = Math.round(clock() - sentAt);
    set(
      nextLeadership(state, decision, sentAt, clock(), t),
      decision === undefined
        ? 'the attempt failed'
        : decision.kind === 'follow'
          ? 'another coordinator holds the lease'
          : `the answer came ${tookMs} ms after it was sent, too late to act on`,
    );
  };

  const tick = (): Promise<void> => (running ??= attempt().finally(() => (running = undefined)));
  const timer = setInterval(() => void tick(), t.renewIntervalMs);
  void tick();

  return {
    holder: o.holder,
    current: () => (state.role === 'leader' && !mayAct(state, clock()) ? { role: 'follower', leader: undefined } : state),
    leaderEpoch: () => (state.role === 'leader' && mayAct(state, clock()) ? state.epoch : undefined),
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    tick,
    stop: async ({ release = true } = {}) => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(deadlineTimer);
      await running;
      const held = state;
      state = { role: 'follower', leader: undefined };
      try {
        if (release && held.role === 'leader' && client) await releaseLease(client, o.holder, held.epoch);
      } catch (err) {
        o.log.warn({ err }, 'could not release the leader lease; a follower takes over when it runs out');
      } finally {
        await client?.end().catch(() => undefined);
        client = undefined;
      }
    },
  };
}

/** The store's write fence of a coordinator: its holder and epoch while it may act as the leader, else none. */
export function electionFence(e: LeaderElection): WriteFence {
  return () => {
    const epoch = e.leaderEpoch();
    return epoch === undefined ? undefined : { holder: e.holder, epoch };
  };
}
