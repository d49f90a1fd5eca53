/**
 * Host liveness from heartbeats: READY while heartbeats arrive, UNREACHABLE after `ttlMs` without
 * one, DOWN after `graceMs` more. Last-seen times live in memory (an fsync per heartbeat would
 * buy nothing); at start every known host gets one TTL plus grace to reconnect before it is
 * declared down, so a coordinator restart never takes hosts down by itself.
 */
import type { HostState } from '@pgs/tenancy';

/** Liveness timing. */
export interface LivenessOptions {
  ttlMs: number;
  graceMs: number;
  /**
   * When this coordinator started: a lease granted by a previous coordinator process was granted
   * before it, so it is the latest renewal any agent can hold before we renew ourselves.
   */
  startedAt?: number;
}

/** Tracks when each host was last heard from. */
export class Liveness {
  private readonly lastSeen = new Map<string, number>();
  private readonly renewed = new Map<string, number>();

  constructor(readonly options: LivenessOptions) {}

  /** Records a sign of life (hello or heartbeat). */
  seen(hostId: string, now: number): void {
    this.lastSeen.set(hostId, now);
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

  /** The state a host should be in at `now`; a host never heard from since start keeps `current`. */
  stateAt(hostId: string, now: number, current: HostState): HostState {
    const last = this.lastSeen.get(hostId);
    if (last === undefined) return current;
    const silent = now - last;
    if (silent <= this.options.ttlMs) return 'READY';
    if (silent <= this.options.ttlMs + this.options.graceMs) return current === 'DOWN' ? 'DOWN' : 'UNREACHABLE';
    return 'DOWN';
  }
}
