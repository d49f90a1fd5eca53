// A client of a suspended tenant: held (after its startup packet, and after authentication where
// the router authenticates) while the coordinator wakes the tenant, then served by the woken
// instance; told 57P03 when the wake is refused, the tenant fails, or the deadline passes.
import type { RouterMetrics } from './metrics.js';
import { refuse } from './refusal.js';
import type { RouteEntry } from './route.js';
import { holdUntilRoutable } from './route-hold.js';
import type { TenantWaker } from './tenant-waker.js';

/** What holding for a wake needs. */
export interface WakeHoldDeps {
  waker: TenantWaker;
  lookup(tenantId: string): RouteEntry | undefined;
  timeoutMs: number;
  metrics: RouterMetrics;
}

/**
 * States a waking tenant passes through: still suspended (the wake not seen yet, or its copy being
 * built on another host when its own host has no room left), then starting, or switching to the
 * host it was moved to.
 */
const WAKING: ReadonlySet<RouteEntry['state']> = new Set(['SUSPENDED', 'PROVISIONING', 'SWITCHING']);

/** Holds until the tenant is routable; returns its route, or throws the refusal the client gets. */
export async function holdForWake(route: RouteEntry, deps: WakeHoldDeps, clientGone: () => boolean): Promise<RouteEntry> {
  const ticket = deps.waker.join(route.tenantId);
  let outcome = 'client_closed';
  try {
    const result = await holdUntilRoutable({
      tenantId: route.tenantId,
      lookup: deps.lookup,
      deadlineMs: deps.timeoutMs,
      waitable: (r) => WAKING.has(r.state),
      abandon: () => ticket.refused() ?? (clientGone() ? 'the client closed the connection' : undefined),
    });
    deps.metrics.wakeWaitSeconds.observe(result.waitedMs / 1000);
    switch (result.kind) {
      case 'routable':
        outcome = 'served';
        return result.route;
      case 'expired':
        outcome = 'gave_up';
        throw refuse.tenantWaking(route.tenantId, result.waitedMs);
      case 'not_waitable':
        outcome = 'refused';
        throw result.route ? refuse.notRoutable(result.route) : refuse.unknownTenant(route.tenantId, false);
      case 'abandoned': {
        const refusal = ticket.refused();
        if (refusal === undefined) throw refuse.tenantWaking(route.tenantId, result.waitedMs);
        outcome = 'refused';
        throw refuse.wakeRefused(route.tenantId, refusal);
      }
    }
  } finally {
    deps.metrics.wakeWaits.inc({ outcome });
    ticket.leave();
  }
}
