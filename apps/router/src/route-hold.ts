// Holding a client until its tenant's route is routable again, with a deadline and a reason:
// the one wait every "the tenant is about to be back" state shares (a suspended tenant waking, a
// tenant switching hosts). The caller says which states are worth waiting through; anything else
// ends the hold at once, so a client never waits on a tenant that stopped or failed meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import { refuse } from './refusal.js';
import type { RouteEntry, RouteStateName } from './route.js';

/** What one hold needs. */
export interface HoldOptions {
  tenantId: string;
  lookup(tenantId: string): RouteEntry | undefined;
  /** How long the client may be held, in ms. */
  deadlineMs: number;
  /** States worth waiting through (e.g. SUSPENDED and PROVISIONING while a tenant wakes). */
  waitable(route: RouteEntry): boolean;
  /** Checked each round: a reason to stop holding now (the wake was refused, the client left). */
  abandon?(): string | undefined;
  /** How often the route is looked at: one cache read (a map or an indexed SELECT). */
  pollMs?: number;
}

/** How a hold ended. */
export type HoldResult =
  | { kind: 'routable'; route: RouteEntry; waitedMs: number }
  /** The route went to a state not worth waiting for (or disappeared). */
  | { kind: 'not_waitable'; route: RouteEntry | undefined; waitedMs: number }
  | { kind: 'expired'; route: RouteEntry | undefined; waitedMs: number }
  | { kind: 'abandoned'; reason: string; waitedMs: number };

/** Waits until the tenant's route is ROUTABLE, the deadline passes, or the hold is abandoned. */
export async function holdUntilRoutable(o: HoldOptions): Promise<HoldResult> {
  const started = Date.now();
  const deadline = started + o.deadlineMs;
  const pollMs = o.pollMs ?? 20;
  for (;;) {
    const waitedMs = Date.now() - started;
    const route = o.lookup(o.tenantId);
    if (route?.state === 'ROUTABLE') return { kind: 'routable', route, waitedMs };
    if (route === undefined || !o.waitable(route)) return { kind: 'not_waitable', route, waitedMs };
    const reason = o.abandon?.();
    if (reason !== undefined) return { kind: 'abandoned', reason, waitedMs };
    if (Date.now() >= deadline) return { kind: 'expired', route, waitedMs };
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** Route states of a planned switch, which a router holds clients through rather than refusing them. */
export const HELD_STATES: ReadonlySet<RouteStateName> = new Set(['SWITCHING']);

/** True when clients of this route wait for a switch to end rather than being refused. */
export function isHeld(route: RouteEntry, held: ReadonlySet<RouteStateName> = HELD_STATES): boolean {
  return held.has(route.state);
}

/** What a hold through a switch needs. */
export interface SwitchHoldOptions {
  lookup(tenantId: string): RouteEntry | undefined;
  /** The bound: a client is never held longer than this. */
  timeoutMs: number;
  /** How often the cache is looked at again (default 20 ms: a switch's end reaches the client within that). */
  pollMs?: number;
  /** True once the client is gone: the hold ends without a verdict. */
  abandoned?(): boolean;
}

/**
 * The tenant's route once the switch is over (it may then be routable or not: the caller checks),
 * or a RouterRefusal: hold_timeout after `timeoutMs`, unknown tenant when the route went away. A
 * route that is not switching returns at once.
 */
export async function holdUntilServed(route: RouteEntry, o: SwitchHoldOptions): Promise<RouteEntry> {
  if (!isHeld(route)) return route;
  const r = await holdUntilRoutable({
    tenantId: route.tenantId,
    lookup: o.lookup,
    deadlineMs: o.timeoutMs,
    waitable: (x) => isHeld(x),
    abandon: () => (o.abandoned?.() ? 'client gone' : undefined),
    ...(o.pollMs === undefined ? {} : { pollMs: o.pollMs }),
  });
  switch (r.kind) {
    case 'routable':
      return r.route;
    case 'not_waitable':
      if (!r.route) throw refuse.unknownTenant(route.tenantId, false);
      return r.route;
    case 'expired':
      throw refuse.holdTimeout(r.route ?? route, o.timeoutMs);
    case 'abandoned':
      return o.lookup(route.tenantId) ?? route;
  }
}
