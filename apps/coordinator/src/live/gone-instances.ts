/**
 * Instances found gone with their agents (libs/tenancy primaryLoss goneAt: the agent's stream broke
 * and a replica or a router saw the instance stop), per tenant and host. A failover that fenced its
 * old primary this way marks it here, so the promoted primary's synchronous quorum leaves it out at
 * once (libs/tenancy stillGone) instead of waiting for its host to be declared DOWN: a quorum that
 * names a dead standby accepts no write. A mark counts only while the agent stays away; a returning
 * agent ends every mark of its host. Memory only: a failover resumed after a restart marks its old
 * primary again from its operation row.
 */
import { stillGone } from '@pgs/tenancy';
import type { HostRecord } from '../domain/model.js';
import type { Liveness } from './liveness.js';

/** Gone points per (tenant, host). */
export class GoneInstances {
  private readonly marks = new Map<string, number>();

  constructor(private readonly liveness: Liveness) {}

  /** The tenant's instance on `hostId` was found gone with its agent at `goneAt`. */
  mark(tenantId: string, hostId: string, goneAt: number): void {
    if (goneAt > 0) this.marks.set(keyOf(tenantId, hostId), Math.max(goneAt, this.marks.get(keyOf(tenantId, hostId)) ?? 0));
  }

  /** True while the tenant's instance on `host` counts as gone (its agent away since the mark). */
  isGone(tenantId: string, host: HostRecord | undefined): boolean {
    if (!host) return false;
    const goneAt = this.marks.get(keyOf(tenantId, host.id));
    return goneAt !== undefined && stillGone(goneAt, this.liveness.signals(host.id), host);
  }

  /** The host's agent is back: its marks end. True when there were any (quorums that left them out go out again). */
  forgetHost(hostId: string): boolean {
    let found = false;
    for (const k of this.marks.keys()) {
      if (k.endsWith(`\u0000${hostId}`)) {
        this.marks.delete(k);
        found = true;
      }
    }
    return found;
  }
}

function keyOf(tenantId: string, hostId: string): string {
  return `${tenantId}\u0000${hostId}`;
}
