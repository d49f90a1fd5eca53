/**
 * Host liveness from the agents' streams and heartbeats (libs/tenancy hostLivenessWithBacklog
 * decides): READY while heartbeats arrive, UNREACHABLE after `ttlMs` without one, DOWN after
 * `graceMs` more; a stream that broke (the agent's process or host died: a reset, not a goodbye)
 * makes the host UNREACHABLE at once and DOWN after `confirmMs` of silence. Last-seen times live in
 * memory (an fsync per heartbeat would buy nothing); at start every known host gets one TTL plus
 * grace to reconnect, and no host is judged for silence while the reconnect storm is read (the
 * start grace, which lasts until the hosts caught up with their full sets and first reports too),
 * so a coordinator restart never takes hosts down by itself. Silence is counted from when this
 * coordinator could read the host's stream: its own delays are not the host's.
 */
import {
  hostLivenessWithBacklog,
  startGraceHolds,
  startProgress,
  type AgentSignals,
  type HostState,
  type LivenessVerdict,
  type ReadState,
  type StartProgress,
  type StreamEnd,
} from '@pgs/tenancy';

/** Liveness timing. */
export interface LivenessOptions {
  ttlMs: number;
  graceMs: number;
  /** Silence after a broken stream that confirms a host lost (default: ttl + grace, i.e. no fast path). */
  confirmMs?: number;
  /**
   * When this coordinator started: a lease granted by a previous coordinator process was granted
   * before it, so it is the latest renewal any agent can hold before we renew ourselves.
   */
  startedAt?: number;
  /** The longest the reconnect storm's part of the start grace may last (default: ten times ttl + grace). */
  startGraceMaxMs?: number;
  /**
   * The longest the start grace may last while hosts catch up with their full sets and first
   * reports (default: forty times ttl + grace, 280 s with the defaults: a first start of 100,000
   * tenants on 1,000 hosts took 150-290 s on a loaded machine).
   */
  startBacklogMaxMs?: number;
  /** The most of our own delay (event loop lag, a message still being handled) that excuses a host's silence (default: ttl). */
  maxCreditMs?: number;
}

/** Tracks when each host was last heard from and how its streams ended. */
export class Liveness {
  private readonly lastSeen = new Map<string, number>();
  private readonly renewed = new Map<string, number>();
  private readonly open = new Map<string, number>();
  private readonly ends = new Map<string, StreamEnd>();
  /** Hosts the store knew (not DOWN) at start, still to say Hello. */
  private readonly awaited = new Set<string>();
  private readonly start: StartProgress;
  /** Per host: a message of its stream is being handled since, or reading resumed at. */
  private readonly reads = new Map<string, ReadState>();
  /** Hosts heard since start whose full set, or first report after it, is not handled yet. */
  private readonly behind = new Set<string>();

  constructor(readonly options: LivenessOptions) {
    this.start = startProgress(options.startedAt ?? 0);
  }

  /** The hosts the store knew at start (not DOWN): the start grace lasts until they all said Hello (bounded). */
  expectReconnects(hostIds: Iterable<string>): void {
    for (const id of hostIds) {
      if (this.awaited.has(id)) continue;
      this.awaited.add(id);
      this.start.expected++;
    }
  }

  /** An agent stream opened at `now`: the reconnects after start are under way (the start grace goes on). */
  reconnecting(now: number): void {
    this.start.lastHelloAt = Math.max(now, this.start.lastHelloAt ?? now);
  }

  /** The host said Hello at `now` (the reconnect storm after start progresses). */
  helloed(hostId: string, now: number): void {
    this.reconnecting(now);
    if (this.awaited.delete(hostId)) this.start.helloed++;
  }

  /**
   * The host said Hello during the start grace: it catches up (its full set, then the first report
   * after it) behind every other host's, and the grace holds while the fleet does.
   */
  catchingUp(hostId: string): void {
    if (this.start.endedAt !== undefined || this.behind.has(hostId)) return;
    this.behind.add(hostId);
    this.start.catchingUp = this.behind.size;
  }

  /** The host caught up at `now`: its set was empty, its first report after it was handled, or its stream ended. */
  caughtUp(hostId: string, now: number): void {
    if (!this.behind.delete(hostId)) return;
    this.start.catchingUp = this.behind.size;
    this.start.lastCaughtUpAt = Math.max(now, this.start.lastCaughtUpAt ?? now);
  }

  /**
   * Whether the start grace holds at `now` (no host is judged for silence); once it ended it never
   * holds again. `loopLagMs`: how late the event loop ran lately (a stall is not the backlog's).
   */
  inStartGrace(now: number, loopLagMs = 0): boolean {
    if (this.start.endedAt !== undefined) return false;
    if (startGraceHolds(this.start, now, this.gracePolicy(), loopLagMs)) return true;
    this.start.endedAt = now;
    this.behind.clear();
    this.start.catchingUp = 0;
    return false;
  }

  /** The start's progress (for logs and metrics). */
  get startProgress(): Readonly<StartProgress> {
    return this.start;
  }

  /** A message of the host's stream is being handled: nothing behind it on that stream is read until `reading`. */
  handling(hostId: string, now: number): void {
    this.reads.set(hostId, { busySince: now, resumedAt: undefined });
  }

  /** The host's stream is read again. */
  reading(hostId: string, now: number): void {
    this.reads.set(hostId, { busySince: undefined, resumedAt: now });
  }

  /** Records a sign of life (hello or heartbeat). */
  seen(hostId: string, now: number): void {
    this.lastSeen.set(hostId, now);
  }

  /** A stream of the host's agent opened (after its Hello). */
  streamOpened(hostId: string): void {
    this.open.set(hostId, (this.open.get(hostId) ?? 0) + 1);
  }

  /** A stream of the host's agent ended: `goodbye` (half-closed by the agent) or `reset` (it broke). */
  streamEnded(hostId: string, how: StreamEnd['how'], at: number): void {
    const left = Math.max(0, (this.open.get(hostId) ?? 0) - 1);
    if (left === 0) this.open.delete(hostId);
    else this.open.set(hostId, left);
    this.ends.set(hostId, { how, at });
    this.reads.delete(hostId);
    // What its stream still had to handle was dropped with it.
    this.caughtUp(hostId, at);
  }

  /** What is known of the host's agent, for the failure decisions. */
  signals(hostId: string): AgentSignals {
    return { lastSeenAt: this.lastSeen.get(hostId), connected: this.open.has(hostId), streamEnd: this.ends.get(hostId) };
  }

  /** Records that the host's agent lease was renewed (Welcome or LeaseRenewal sent) at `now`. */
  renewLease(hostId: string, now: number): void {
    this.renewed.set(hostId, Math.max(now, this.renewed.get(hostId) ?? 0));
  }

  /** The latest time the host's lease can have been renewed: our last renewal, else our start. */
  leaseRenewedAt(hostId: string): number {
    return this.renewed.get(hostId) ?? this.options.startedAt ?? 0;
  }

  /** When the host was last heard from, if since start. */
  lastSeenAt(hostId: string): number | undefined {
    return this.lastSeen.get(hostId);
  }

  /**
   * The state a host should be in at `now`, and why; a host never heard from since start keeps
   * `current`. `loopLagMs`: how late the event loop runs lately (data may wait unread that long).
   */
  verdictAt(hostId: string, now: number, current: HostState, loopLagMs = 0): LivenessVerdict {
    const { ttlMs, graceMs } = this.options;
    const { maxMs, backlogMaxMs } = this.gracePolicy();
    const policy = { ttlMs, graceMs, confirmMs: this.options.confirmMs ?? ttlMs + graceMs, startGraceMaxMs: maxMs, startBacklogMaxMs: backlogMaxMs };
    // Ends the grace for good once it no longer holds.
    this.inStartGrace(now, loopLagMs);
    const read = this.reads.get(hostId) ?? { busySince: undefined, resumedAt: undefined };
    return hostLivenessWithBacklog(this.signals(hostId), read, current, now, policy, this.start, { loopLagMs, maxCreditMs: this.options.maxCreditMs ?? ttlMs });
  }

  /** The state a host should be in at `now`. */
  stateAt(hostId: string, now: number, current: HostState): HostState {
    return this.verdictAt(hostId, now, current).state;
  }

  private gracePolicy(): { ttlMs: number; graceMs: number; maxMs: number; backlogMaxMs: number } {
    const { ttlMs, graceMs } = this.options;
    const maxMs = this.options.startGraceMaxMs ?? 10 * (ttlMs + graceMs);
    return { ttlMs, graceMs, maxMs, backlogMaxMs: Math.max(maxMs, this.options.startBacklogMaxMs ?? 40 * (ttlMs + graceMs)) };
  }
}
