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
 * (the stored last-archived time is derived from its reports and must still move).
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
  facts: string;
  at: number;
  archives: boolean;
}

/** The facts last applied per instance, forgotten as the store changes. */
export class UnchangedReports {
  /** tenant → host → what was applied. */
  private readonly byTenant = new Map<string, Map<string, Applied>>();
  /** host → its tenants with an entry (to forget a host at once). */
  private readonly byHost = new Map<string, Set<string>>();

  constructor(private readonly archiveMaxAgeMs = 30_000) {}

  /** True when applying `r` from `hostId` now would change nothing stored. */
  unchanged(hostId: string, r: InstanceReportView, now: number): boolean {
    const applied = this.byTenant.get(r.tenantId)?.get(hostId);
    if (!applied || (applied.archives && now - applied.at >= this.archiveMaxAgeMs)) return false;
    return applied.facts === reportFacts(r);
  }

  /** `r` from `hostId` was applied (inside the transaction that stores it; forget the host if it fails). */
  noteApplied(hostId: string, r: InstanceReportView, now: number): void {
    const facts = reportFacts(r);
    if (facts === undefined) return this.forget(r.tenantId, hostId);
    let hosts = this.byTenant.get(r.tenantId);
    if (!hosts) this.byTenant.set(r.tenantId, (hosts = new Map()));
    hosts.set(hostId, { facts, at: now, archives: r.health?.archive !== undefined });
    let tenants = this.byHost.get(hostId);
    if (!tenants) this.byHost.set(hostId, (tenants = new Set()));
    tenants.add(r.tenantId);
  }

  /** Forgets one instance. */
  forget(tenantId: string, hostId: string): void {
    const hosts = this.byTenant.get(tenantId);
    if (hosts?.delete(hostId) && hosts.size === 0) this.byTenant.delete(tenantId);
    this.byHost.get(hostId)?.delete(tenantId);
  }

  /** Forgets every instance of a tenant. */
  forgetTenant(tenantId: string): void {
    for (const hostId of this.byTenant.get(tenantId)?.keys() ?? []) this.byHost.get(hostId)?.delete(tenantId);
    this.byTenant.delete(tenantId);
  }

  /** Forgets every instance of a host (it reconnected, or its placements changed). */
  forgetHost(hostId: string): void {
    for (const tenantId of this.byHost.get(hostId) ?? []) {
      const hosts = this.byTenant.get(tenantId);
      if (hosts?.delete(hostId) && hosts.size === 0) this.byTenant.delete(tenantId);
    }
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
    for (const hosts of this.byTenant.values()) n += hosts.size;
    return n;
  }
}
