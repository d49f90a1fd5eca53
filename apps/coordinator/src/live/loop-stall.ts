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
