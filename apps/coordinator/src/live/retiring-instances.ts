/**
 * Instances a live move left behind (the old primary once the new one serves, or the copy of an
 * abandoned move), or a tenant that never ran left on a host that went down before it was placed
 * again elsewhere: their placements are gone, and their hosts are told explicitly to delete them
 * (an instance without a placement is otherwise left alone, since nothing deletes data on a guess).
 * Kept in memory: a coordinator restarted before the agent confirmed leaves the instance as an
 * orphan, reported and untouched, which loses nothing.
 */
function key(tenantId: string, hostId: string): string {
  return `${tenantId}\u0000${hostId}`;
}

/** Which instances hosts must delete, and which deletions they confirmed. */
export class RetiringInstances {
  private readonly pending = new Map<string, { tenantId: string; hostId: string }>();
  private readonly confirmed = new Set<string>();

  /** The instance of `tenantId` on `hostId` is to be deleted. */
  add(tenantId: string, hostId: string): void {
    this.pending.set(key(tenantId, hostId), { tenantId, hostId });
    this.confirmed.delete(key(tenantId, hostId));
  }

  /** Tenants whose instance `hostId` must delete. */
  onHost(hostId: string): string[] {
    return [...this.pending.values()].filter((r) => r.hostId === hostId).map((r) => r.tenantId);
  }

  /** The agent reported the instance deleted: true when it was one of ours (then it is no orphan). */
  confirm(tenantId: string, hostId: string): boolean {
    if (!this.pending.delete(key(tenantId, hostId))) return false;
    this.confirmed.add(key(tenantId, hostId));
    return true;
  }

  /** True once the deletion was confirmed (asked once per move; forgotten after). */
  takeConfirmed(tenantId: string, hostId: string): boolean {
    return this.confirmed.delete(key(tenantId, hostId));
  }

  /** A new placement of the tenant on the host: never delete what is placed there again. */
  cancel(tenantId: string, hostId: string): void {
    this.pending.delete(key(tenantId, hostId));
    this.confirmed.delete(key(tenantId, hostId));
  }
}
