/**
 * Host liveness from the agents' streams and heartbeats (libs/tenancy hostLiveness decides):
 * READY while heartbeats arrive, UNREACHABLE after `ttlMs` without one, DOWN after `graceMs` more;
 * a stream that broke (the agent's process or host died: a reset, not a goodbye) makes the host
 * UNREACHABLE at once and DOWN after `confirmMs` of silence. Last-seen times live in memory (an
 * fsync per heartbeat would buy nothing); at start every known host gets one TTL plus grace to
 * reconnect before it is declared down, so a coordinator restart never takes hosts down by itself.
 */
import { hostLiveness, type AgentSignals, type HostState, type LivenessVerdict, type StreamEnd } from '@pgs/tenancy';

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
}

/** Tracks when each host was last heard from and how its streams ended. */
export class Liveness {
  private readonly lastSeen = new Map<string, number>();
  private readonly renewed = new Map<string, number>();
  private readonly open = new Map<string, number>();
  private readonly ends = new Map<string, StreamEnd>();

  constructor(readonly options: LivenessOptions) {}

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

  /** The state a host should be in at `now`, and why; a host never heard from since start keeps `current`. */
  verdictAt(hostId: string, now: number, current: HostState): LivenessVerdict {
    const { ttlMs, graceMs } = this.options;
    return hostLiveness(this.signals(hostId), current, now, { ttlMs, graceMs, confirmMs: this.options.confirmMs ?? ttlMs + graceMs });
  }

  /** The state a host should be in at `now`. */
  stateAt(hostId: string, now: number, current: HostState): HostState {
    return this.verdictAt(hostId, now, current).state;
  }
}
