/**
 * The scheduler's running sums of what each host is allocated, kept current without summing the
 * whole fleet again: summed whole once, then host by host as commits name hosts whose sums may
 * have moved. Summing every placement took 0.3-0.8 s at 100,000 tenants (it reads each tenant's
 * spec) and ran once a second while tenants were being placed: a third of the coordinator's time,
 * and a cost per create that grew with the fleet (placement O(tenants²) over a fleet's growth).
 *
 * Which commits move a host's sum: placements inserted or deleted (`Commit.placementHosts`), and a
 * change of a tenant's resources or its suspension, which its hosts must be sent as a new desired
 * set (`Commit.desired`: the named host, or every host of the tenant). A host is re-summed from the
 * store only when one of those named it, by its own placements (`allocationOf`, one host's rows).
 * As a net for a change that no commit names, every host is re-summed once per `sweepMs` too, a
 * few per pass, so the net never costs a pass the whole fleet.
 */
import type { Commit, HostAllocation, StoreReads } from '../store/contract.js';
import type { TenantRecord } from '../domain/model.js';

/** Every host is re-summed at least this often by the net (a few hosts per pass). */
export const ALLOCATION_SWEEP_MS = 300_000;

export class AllocationLedger {
  private sums: Map<string, HostAllocation> | undefined;
  /** The whole fleet is being summed: commits meanwhile are noted, their hosts re-summed after. */
  private summing = false;
  private readonly staleHosts = new Set<string>();
  /** Tenants whose every host may have moved (a desired set sent to all of its hosts). */
  private readonly staleTenants = new Set<string>();
  /** The net's walk: the hosts in the order it re-sums them, where it is, and when it last went on. */
  private sweep: { order: string[]; next: number; at: number } = { order: [], next: 0, at: 0 };

  constructor(
    private readonly reads: StoreReads,
    private readonly sweepMs = ALLOCATION_SWEEP_MS,
  ) {}

  /** Notes the hosts a commit may have moved; they are re-summed by the next `current`. */
  noteCommit(commit: Commit): void {
    if (!this.sums && !this.summing) return; // nothing summed yet: the first `current` sums everything
    for (const hostId of commit.placementHosts) this.staleHosts.add(hostId);
    for (const d of commit.desired) {
      if (d.hostId === undefined) this.staleTenants.add(d.tenantId);
      else this.staleHosts.add(d.hostId);
    }
  }

  /**
   * Adds a placement the caller is committing to its host's sum, so the decisions after it in the
   * same pass see it; the caller leaves that commit out of `noteCommit` (the sum holds it already).
   */
  add(hostId: string, tenant: Pick<TenantRecord, 'spec'>): void {
    const sums = this.sums;
    if (!sums) return;
    const a = sums.get(hostId) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
    const r = tenant.spec.resources;
    sums.set(hostId, {
      cpuMillis: a.cpuMillis + r.cpuMillis,
      memoryMib: a.memoryMib + r.memoryMib,
      diskMib: a.diskMib + r.diskMib,
      instances: a.instances + 1,
    });
  }

  /** Re-sums these hosts in the next `current` (a pass that added to them failed to commit). */
  markStale(hostIds: Iterable<string>): void {
    for (const hostId of hostIds) this.staleHosts.add(hostId);
  }

  /** The sums as of now: stale hosts and the net's share re-summed, or everything the first time. */
  async current(now: number): Promise<Map<string, HostAllocation>> {
    if (!this.sums) {
      this.staleHosts.clear();
      this.staleTenants.clear();
      this.summing = true;
      try {
        this.sums = await this.reads.placements.allocations();
      } finally {
        this.summing = false;
      }
      this.sweep = { order: [], next: 0, at: now };
      return this.sums;
    }
    const hosts = new Set(this.staleHosts);
    this.staleHosts.clear();
    if (this.staleTenants.size > 0) {
      const tenants = [...this.staleTenants];
      this.staleTenants.clear();
      for (const p of await this.reads.placements.listOfTenants(tenants)) hosts.add(p.hostId);
    }
    for (const hostId of await this.sweepShare(now)) hosts.add(hostId);
    const summed = await Promise.all([...hosts].map(async (hostId) => [hostId, await this.reads.placements.allocationOf(hostId)] as const));
    const sums = this.sums;
    for (const [hostId, a] of summed) {
      if (a.instances === 0) sums.delete(hostId);
      else sums.set(hostId, a);
    }
    return sums;
  }

  /** The hosts the net re-sums in this pass: its share of the fleet for the time since the last. */
  private async sweepShare(now: number): Promise<string[]> {
    if (this.sweep.next >= this.sweep.order.length) {
      // A new walk over the hosts registered now (a host with nothing on it is summed as zero).
      this.sweep = { order: (await this.reads.hosts.list()).map((h) => h.id), next: 0, at: this.sweep.at };
    }
    const { order, next, at } = this.sweep;
    const due = Math.min(order.length - next, Math.floor((order.length * Math.max(0, now - at)) / this.sweepMs));
    if (due <= 0) return []; // time accrues until a whole host is due
    this.sweep = { order, next: next + due, at: now };
    return order.slice(next, next + due);
  }
}
