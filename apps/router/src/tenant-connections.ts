// Open connections per tenant at this router, against the route's connection_limit.

/**
 * Where a connection takes its tenant slot: in-process (TenantConnections), or with --workers at
 * the primary, which counts for every worker (the limit is per router, not per process).
 */
export interface TenantSlots {
  /** Takes a slot; false when `limit` (> 0) is already reached. */
  acquire(tenantId: string, limit: number): boolean | Promise<boolean>;
  /** Gives a slot back. */
  release(tenantId: string): void;
}

/** Per-tenant counters of open client connections. */
export class TenantConnections implements TenantSlots {
  readonly #open = new Map<string, number>();

  /** Takes a slot; false when `limit` (> 0) is already reached. */
  acquire(tenantId: string, limit: number): boolean {
    const n = this.#open.get(tenantId) ?? 0;
    if (limit > 0 && n >= limit) return false;
    this.#open.set(tenantId, n + 1);
    return true;
  }

  /** Gives a slot back. */
  release(tenantId: string): void {
    const n = (this.#open.get(tenantId) ?? 0) - 1;
    if (n > 0) this.#open.set(tenantId, n);
    else this.#open.delete(tenantId);
  }

  /** Open connections of a tenant. */
  count(tenantId: string): number {
    return this.#open.get(tenantId) ?? 0;
  }

  /** Open connections of every tenant that has any. */
  all(): ReadonlyMap<string, number> {
    return this.#open;
  }
}

/** A simple counting gate: at most `limit` holders at once. */
export class Gate {
  #held = 0;
  constructor(readonly limit: number) {}

  /** Takes a place; false when full. */
  tryAcquire(): boolean {
    if (this.#held >= this.limit) return false;
    this.#held++;
    return true;
  }

  /** Gives a place back. */
  release(): void {
    if (this.#held > 0) this.#held--;
  }

  /** Places held now. */
  get held(): number {
    return this.#held;
  }
}
