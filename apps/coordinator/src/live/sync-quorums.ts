/**
 * Which synchronous quorum each tenant's primary may be running with. A change of
 * synchronous_standby_names is in force only once the primary reports the instance revision that
 * carried it; until then the old and the new quorum may both be in force, and failover must satisfy
 * both (libs/tenancy pickPromotionCandidate). Kept in memory: after a restart nothing is known, and
 * the caller falls back to assuming every replica may be in the quorum (never less safe).
 */
import type { SyncQuorum } from '@pgs/tenancy';

interface Sent {
  revision: number;
  quorum: SyncQuorum;
}

/** Quorums sent to primaries, per tenant, until confirmed. */
export class SyncQuorums {
  private readonly byTenant = new Map<string, { confirmed: SyncQuorum | undefined; pending: Sent[] }>();

  /** A desired spec at `revision` carrying `quorum` was built for the tenant's primary. */
  sent(tenantId: string, revision: number, quorum: SyncQuorum): void {
    const entry = this.byTenant.get(tenantId) ?? { confirmed: undefined, pending: [] };
    const last = entry.pending[entry.pending.length - 1];
    if (last && last.revision === revision && same(last.quorum, quorum)) return;
    if (!last && entry.confirmed && same(entry.confirmed, quorum)) return;
    entry.pending.push({ revision, quorum });
    this.byTenant.set(tenantId, entry);
  }

  /** The primary reported `revision` realized: quorums sent up to it are settled. */
  realized(tenantId: string, revision: number): void {
    const entry = this.byTenant.get(tenantId);
    if (!entry) return;
    const done = entry.pending.filter((s) => s.revision <= revision);
    if (done.length === 0) return;
    entry.confirmed = done[done.length - 1]!.quorum;
    entry.pending = entry.pending.filter((s) => s.revision > revision);
  }

  /** Every quorum that may be in force, or undefined when this process knows nothing of the tenant. */
  inForce(tenantId: string): SyncQuorum[] | undefined {
    const entry = this.byTenant.get(tenantId);
    if (!entry || (!entry.confirmed && entry.pending.length === 0)) return undefined;
    return [...(entry.confirmed ? [entry.confirmed] : []), ...entry.pending.map((s) => s.quorum)];
  }

  /** Forgets a tenant (its primary changed: the new primary starts from its own spec). */
  reset(tenantId: string): void {
    this.byTenant.delete(tenantId);
  }
}

function same(a: SyncQuorum, b: SyncQuorum): boolean {
  return a.k === b.k && a.standbys.length === b.standbys.length && a.standbys.every((s, i) => s === b.standbys[i]);
}
