/**
 * Which instance reports would change nothing in the store. An agent reports every instance every
 * few seconds; in a steady fleet almost every report repeats the last one, and applying it still
 * cost a transaction that read the tenant, its placements, hosts, users and route — per instance,
 * per report, on the event loop. A report whose stored facts (realization, state, reason,
 * address, port, revision, whether it is healthy, its role, archive failures) equal those of the
 * last report applied for that instance is answered from memory: its health goes to the health
 * cache, nothing to the store.
 *
 * What the shortcut never skips: reports that are not REALIZED (a failure must count against the
 * retry backoff), deletions, recovery results, and any instance whose tenant changed since (a
 * commit that sent its hosts a desired set or added or removed a placement of the host forgets
 * what was applied), nor a primary that archives WAL and was not applied for `archiveMaxAgeMs`
 * (the stored archived-through time is derived from its reports and must still move).
 */
import type { Commit } from '../store/contract.js';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';

/** The stored facts of a report, as one comparable string; undefined when it must always be applied. */
export function reportFacts(r: InstanceReportView): string | undefined {
  if (r.realization !== 'REALIZED' || r.state === 'DELETED' || r.recovery) return undefined;
  const h = r.health;
  const healthy = h === undefined ? '-' : h.up && h.acceptingConnections ? 'up' : 'down';
  const archive = h?.archive ? `${h.archive.failedCount}` : '';
  return [r.state, r.reason, r.address, r.port, r.specRevision, healthy, h?.role ?? '', archive].join('\u0000');
}

interface Applied {
  hostId: string;
  facts: string;
  at: number;
  archives: boolean;
}

/**
 * The facts last applied per instance, forgotten as the store changes. Held for every instance of
 * the fleet, so kept compact: a tenant's one instance is its entry itself (a map per tenant, as
 * before, cost some 150 bytes more a tenant); only a tenant with instances on several hosts has a list.
 */
export class UnchangedReports {
  /** tenant → what was applied of its instance (or of each of its instances, one per host). */
  private readonly byTenant = new Map<string, Applied | Applied[]>();
  /** host → its tenants with an entry (to forget a host at once). */
  private readonly byHost = new Map<string, Set<string>>();

  constructor(private readonly archiveMaxAgeMs = 30_000) {}

  private find(tenantId: string, hostId: string): Applied | undefined {
    const e = this.byTenant.get(tenantId);
    if (e === undefined) return undefined;
    if (!Array.isArray(e)) return e.hostId === hostId ? e : undefined;
    return e.find((a) => a.hostId === hostId);
  }

  /** True when applying `r` from `hostId` now would change nothing stored. */
  unchanged(hostId: string, r: InstanceReportView, now: number): boolean {
    const applied = this.find(r.tenantId, hostId);
    if (!applied || (applied.archives && now - applied.at >= this.archiveMaxAgeMs)) return false;
    return applied.facts === reportFacts(r);
  }

  /** `r` from `hostId` was applied (inside the transaction that stores it; forget the host if it fails). */
  noteApplied(hostId: string, r: InstanceReportView, now: number): void {
    const facts = reportFacts(r);
    if (facts === undefined) return this.forget(r.tenantId, hostId);
    const archives = r.health?.archive !== undefined;
    const found = this.find(r.tenantId, hostId);
    if (found) {
      found.facts = facts;
      found.at = now;
      found.archives = archives;
      return;
    }
    const applied: Applied = { hostId, facts, at: now, archives };
    const e = this.byTenant.get(r.tenantId);
    if (e === undefined) this.byTenant.set(r.tenantId, applied);
    else if (Array.isArray(e)) e.push(applied);
    else this.byTenant.set(r.tenantId, [e, applied]);
    let tenants = this.byHost.get(hostId);
    if (!tenants) this.byHost.set(hostId, (tenants = new Set()));
    tenants.add(r.tenantId);
  }

  /** Drops the tenant's entry for `hostId` (byHost is the caller's). */
  private drop(tenantId: string, hostId: string): void {
    const e = this.byTenant.get(tenantId);
    if (e === undefined) return;
    if (!Array.isArray(e)) {
      if (e.hostId === hostId) this.byTenant.delete(tenantId);
      return;
    }
    const rest = e.filter((a) => a.hostId !== hostId);
    if (rest.length === 0) this.byTenant.delete(tenantId);
    else this.byTenant.set(tenantId, rest.length === 1 ? rest[0]! : rest);
  }

  /** Forgets one instance. */
  forget(tenantId: string, hostId: string): void {
    this.drop(tenantId, hostId);
    this.byHost.get(hostId)?.delete(tenantId);
  }

  /** Forgets every instance of a tenant. */
  forgetTenant(tenantId: string): void {
    const e = this.byTenant.get(tenantId);
    if (e === undefined) return;
    for (const a of Array.isArray(e) ? e : [e]) this.byHost.get(a.hostId)?.delete(tenantId);
    this.byTenant.delete(tenantId);
  }

  /** Forgets every instance of a host (it reconnected, or its placements changed). */
  forgetHost(hostId: string): void {
    for (const tenantId of this.byHost.get(hostId) ?? []) this.drop(tenantId, hostId);
    this.byHost.delete(hostId);
  }

  /** Follows the store: a tenant whose desired set changed, or a host whose placements did, is applied in full again. */
  onCommit(commit: Commit): void {
    for (const d of commit.desired) this.forgetTenant(d.tenantId);
    for (const hostId of commit.placementHosts) this.forgetHost(hostId);
  }

  /** Instances remembered (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const e of this.byTenant.values()) n += Array.isArray(e) ? e.length : 1;
    return n;
  }
}
