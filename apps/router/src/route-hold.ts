// Holding a client while its tenant's route is in a state that passes by itself (a planned switch
// to another instance): instead of a refusal the client waits, its route looked up again in the
// cache every few milliseconds, until the route serves or the hold bound passes (then 57P03). New
// connections wait here before they are routed, and a pooled client's next transaction before it
// gets a server. Generic over the held states, so other passing states can share it.
import { refuse } from './refusal.js';
import type { RouteEntry, RouteStateName } from './route.js';

/** Route states a router holds clients through rather than refusing them. */
export const HELD_STATES: ReadonlySet<RouteStateName> = new Set(['SWITCHING']);

/** What a hold needs. */
export interface HoldOptions {
  lookup(tenantId: string): RouteEntry | undefined;
  /** The bound: a client is never held longer than this. */
  timeoutMs: number;
  /** How often the cache is looked at again (default 20 ms: a switch's end reaches the client within that). */
  pollMs?: number;
  /** States to hold through (default HELD_STATES). */
  held?: ReadonlySet<RouteStateName>;
  /** True once the client is gone: the hold ends without a verdict. */
  abandoned?(): boolean;
}

/** True when clients of this route wait rather than being refused. */
export function isHeld(route: RouteEntry, held: ReadonlySet<RouteStateName> = HELD_STATES): boolean {
  return held.has(route.state);
}

/**
 * The tenant's route once it is no longer in a held state (it may then be routable or not: the
 * caller checks), or a RouterRefusal: hold_timeout after `timeoutMs`, unknown tenant when the route
 * went away. A route that is not held returns at once.
 */
export async function holdUntilServed(route: RouteEntry, o: HoldOptions): Promise<RouteEntry> {
  const held = o.held ?? HELD_STATES;
  if (!isHeld(route, held)) return route;
  const deadline = performance.now() + o.timeoutMs;
  let current = route;
  for (;;) {
    if (o.abandoned?.()) return current;
    const left = deadline - performance.now();
    if (left <= 0) throw refuse.holdTimeout(current, o.timeoutMs);
    await new Promise((r) => setTimeout(r, Math.min(o.pollMs ?? 20, left)));
    const next = o.lookup(route.tenantId);
    if (!next) throw refuse.unknownTenant(route.tenantId, false);
    current = next;
    if (!isHeld(current, held)) return current;
  }
}
