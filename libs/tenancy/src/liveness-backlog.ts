/**
 * Host liveness that allows for the coordinator's own backlog. Silence is only the host's fault
 * when the coordinator was able to read what the host sent. Two things keep a coordinator from
 * reading heartbeats that did arrive:
 *
 * - The reconnect storm after a start or a leadership take-over: every host of the fleet says
 *   Hello at once, each Hello costs store work, and a coordinator starved of CPU reads the
 *   heartbeats that follow seconds late. Judging hosts by that silence makes them flap
 *   UNREACHABLE and back, and each flap re-derives every tenant of the host, which deepens the
 *   backlog. So after a start, no host is judged for silence while the storm is being read: until
 *   every host the store knew has said Hello, as long as agents keep reconnecting (each stream
 *   opened or Hello read extends it by twice ttl + grace: a starved coordinator reads the first
 *   Hellos seconds after they were sent), and never longer than a hard bound. The storm does not
 *   end with the last Hello: every host then waits for its full desired set, and the first report
 *   after it (100 instances a host on a fleet's first start) waits behind every other host's. So
 *   the grace also holds while hosts heard since start are still catching up that way and the
 *   coordinator keeps working through them (one caught up within twice ttl + grace, not counting
 *   the coordinator's own stalls), up to a second, longer hard bound. A grace that ended never
 *   comes back: a host reconnecting later is judged as always.
 * - The coordinator's own delays outside a storm: a slow event loop (socket data waits unread for
 *   as long as a turn of the loop takes) and a host's stream whose previous message is still being
 *   handled (the stream is read one message at a time; a report that waits for a store commit holds
 *   up the heartbeats behind it). Silence is measured from when the coordinator could read again.
 *
 * Both credits are bounded, and neither touches the other failure signals: a broken stream
 * confirmed by a replica or a router (primaryLoss) fails a primary over during the grace too.
 */
import { hostLiveness, type AgentSignals, type LivenessPolicy, type LivenessVerdict } from './failover-signals.js';
import type { HostState } from './statuses.js';

/** What the coordinator knows of its own start and the reconnects since. */
export interface StartProgress {
  /** When this coordinator started (or took over the lead). */
  startedAt: number;
  /** Hosts the store knew (not DOWN) at start: the ones expected to reconnect. */
  expected: number;
  /** How many of them said Hello since start. */
  helloed: number;
  /** The last sign of the reconnects since start (an agent stream opened, a Hello read), from any host. */
  lastHelloAt: number | undefined;
  /**
   * Hosts heard since start still catching up: their full desired set, or the first instance
   * report after it, not handled yet (a host whose set is empty, or whose stream ended, has caught up).
   */
  catchingUp: number;
  /** When a host last caught up since start. */
  lastCaughtUpAt: number | undefined;
  /** When the grace ended (it never holds again after). */
  endedAt: number | undefined;
}

/** A start with nothing read yet: `expected` hosts the store knew (not DOWN). */
export function startProgress(startedAt: number, expected = 0): StartProgress {
  return { startedAt, expected, helloed: 0, lastHelloAt: undefined, catchingUp: 0, lastCaughtUpAt: undefined, endedAt: undefined };
}

/** How long the start grace may last. */
export interface StartGracePolicy {
  ttlMs: number;
  graceMs: number;
  /** The reconnect storm's part of the grace never lasts longer than this after start, however slowly it is read. */
  maxMs: number;
  /** The grace never lasts longer than this after start, however long hosts take to catch up. */
  backlogMaxMs: number;
}

/**
 * Whether the start grace holds at `now`: the reconnect storm is still being read (stormHolds) or
 * hosts heard since start are still catching up and the coordinator keeps getting through them
 * (backlogHolds). `loopLagMs`: how late the coordinator's own event loop ran lately; a stall is not
 * the backlog's lack of progress (after it, what it held up is read before it is handled).
 */
export function startGraceHolds(p: StartProgress, now: number, policy: StartGracePolicy, loopLagMs = 0): boolean {
  if (p.endedAt !== undefined) return false;
  return stormHolds(p, now, policy) || backlogHolds(p, now, policy, loopLagMs);
}

/**
 * The storm: some expected host has not said Hello yet, no agent has reconnected yet or one did
 * within the last twice ttl + grace, and `maxMs` has not passed. A fleet whose hosts all said
 * Hello, a storm that stopped (the hosts still missing are really gone) or a start `maxMs` ago
 * ends it.
 */
export function stormHolds(p: StartProgress, now: number, policy: StartGracePolicy): boolean {
  if (p.helloed >= p.expected) return false;
  if (now - p.startedAt >= policy.maxMs) return false;
  // Before any agent reconnected the fault is ours (agents back off while we were away, our
  // listener is slow to be read), not that of every host at once.
  if (p.lastHelloAt === undefined) return true;
  return now - p.lastHelloAt <= 2 * (policy.ttlMs + policy.graceMs);
}

/**
 * The backlog after the storm: hosts heard since start wait for their full set or for their first
 * report to be handled, one of them caught up (or said Hello) within the last twice ttl + grace
 * once the coordinator's own stalls are taken off, and `backlogMaxMs` has not passed. Only after a
 * start on a store that knew hosts: a first host registering on an empty store is no backlog. A
 * backlog that stopped moving (a host that never reports, a coordinator wedged for good) ends it,
 * so a host that died meanwhile is judged.
 */
export function backlogHolds(p: StartProgress, now: number, policy: StartGracePolicy, loopLagMs = 0): boolean {
  if (p.expected === 0 || p.catchingUp <= 0) return false;
  if (now - p.startedAt >= policy.backlogMaxMs) return false;
  const progress = Math.max(p.startedAt, p.lastHelloAt ?? p.startedAt, p.lastCaughtUpAt ?? p.startedAt);
  return now - Math.max(0, loopLagMs) - progress <= 2 * (policy.ttlMs + policy.graceMs);
}

/** How the coordinator itself was able to read one host's stream. */
export interface ReadState {
  /** Set while the coordinator handles a message of this host's stream (nothing behind it is read). */
  busySince: number | undefined;
  /** When the coordinator last finished handling a message of this host and read on. */
  resumedAt: number | undefined;
}

/** The coordinator's own delay, shared by every host. */
export interface OwnDelay {
  /** The event loop's worst delay lately: data on any socket may have waited this long unread. */
  loopLagMs: number;
  /** The most either credit may excuse (the delay of a wedged coordinator must not hide a lost host forever). */
  maxCreditMs: number;
}

/**
 * The host's signals as the coordinator could have read them: while its stream's previous message
 * is being handled the host counts as heard (up to the credit bound), and silence after such a
 * wait counts from when reading resumed. `now` moves back by the event loop's lag. A stream that
 * ended has nothing left to read: its signals stand as they are (the fast path of a broken stream
 * is never slowed down).
 */
export function readAdjusted(s: AgentSignals, read: ReadState, now: number, own: OwnDelay): { signals: AgentSignals; now: number } {
  if (!s.connected || s.lastSeenAt === undefined) return { signals: s, now };
  const at = now - Math.min(Math.max(0, own.loopLagMs), own.maxCreditMs);
  let heard = s.lastSeenAt;
  if (read.busySince !== undefined) heard = Math.max(heard, Math.min(at, read.busySince + own.maxCreditMs));
  else if (read.resumedAt !== undefined && read.resumedAt <= at) heard = Math.max(heard, Math.min(read.resumedAt, s.lastSeenAt + own.maxCreditMs));
  return { signals: { ...s, lastSeenAt: heard }, now: at };
}

/**
 * The state a host should be in at `now` once the coordinator's backlog is allowed for: during the
 * start grace a host keeps `current` (a READY host stays READY, a DOWN one stays DOWN until its
 * Hello); otherwise hostLiveness on what could have been read, silence counted from the grace's end.
 */
export function hostLivenessWithBacklog(
  s: AgentSignals,
  read: ReadState,
  current: HostState,
  now: number,
  policy: LivenessPolicy & { startGraceMaxMs: number; startBacklogMaxMs: number },
  start: StartProgress,
  own: OwnDelay,
): LivenessVerdict {
  const grace = { ttlMs: policy.ttlMs, graceMs: policy.graceMs, maxMs: policy.startGraceMaxMs, backlogMaxMs: policy.startBacklogMaxMs };
  if (startGraceHolds(start, now, grace, own.loopLagMs)) {
    return {
      state: current,
      reason: `reading the reconnects after start (${start.helloed} of ${start.expected} hosts back, ${start.catchingUp} catching up)`,
    };
  }
  const adjusted = readAdjusted(s, read, now, own);
  return hostLiveness(silenceSinceGrace(adjusted.signals, start), current, adjusted.now, policy);
}

/**
 * Silence while the start grace held was never judged, and it counts from the grace's end: the
 * last stretch of the backlog leaves heartbeats seconds unread, and judging that silence the moment
 * the grace ended flapped hosts UNREACHABLE and back (267 of 1,000 at the end of a 100,000-tenant
 * first start). A host that died during the grace is so judged one ttl after it, its stream still
 * open; a broken stream is judged from its break as always.
 */
function silenceSinceGrace(s: AgentSignals, start: StartProgress): AgentSignals {
  if (start.endedAt === undefined || !s.connected || s.lastSeenAt === undefined || s.lastSeenAt >= start.endedAt) return s;
  return { ...s, lastSeenAt: start.endedAt };
}
