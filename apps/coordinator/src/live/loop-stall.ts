/**
 * Event-loop stalls and liveness: after a stall the heartbeats that arrived meanwhile have not been
 * read yet (Node runs expired timers before it polls sockets), so silence measured then is ours,
 * not the host's.
 */

/**
 * True when a periodic tick expected every `intervalMs` comes `sinceLastTickMs` after the last one,
 * late by more than one heartbeat interval: the loop was blocked long enough that heartbeats wait unread.
 */
export function stallBeyondHeartbeat(sinceLastTickMs: number, intervalMs: number, heartbeatIntervalMs: number): boolean {
  return sinceLastTickMs - intervalMs > heartbeatIntervalMs;
}

/**
 * How late the periodic tick ran lately: the worst lateness within the last `windowMs`. After a
 * stall the work queued during it drains first, and heartbeats wait behind it a while longer than
 * the stall itself, so a host's silence is judged net of the worst recent delay, not only the
 * current tick's.
 */
export class RecentLateness {
  private readonly samples: Array<{ at: number; lateMs: number }> = [];

  constructor(private readonly windowMs: number) {}

  /** Records a tick at `at` that came `lateMs` late; returns the worst lateness within the window. */
  note(at: number, lateMs: number): number {
    while (this.samples.length > 0 && at - (this.samples[0]?.at ?? at) > this.windowMs) this.samples.shift();
    if (lateMs > 0) this.samples.push({ at, lateMs });
    return this.samples.reduce((worst, s) => Math.max(worst, s.lateMs), 0);
  }
}
