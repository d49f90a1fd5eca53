/**
 * The routers' open clients per tenant, as each router last reported them. Kept in memory: the
 * counts change all the time and a restarted coordinator gets them again within one report
 * period (until then every count is unknown, so nothing is suspended on old facts).
 */

/** One router's last report. */
interface RouterReport {
  clients: ReadonlyMap<string, number>;
  complete: boolean;
  at: number;
}

/** Client counts by router, and what they add up to. */
export class RouterClients {
  readonly #reports = new Map<string, RouterReport>();

  /** @param maxAgeMs a report older than this is unknown (the router stopped reporting). */
  constructor(private readonly maxAgeMs: number) {}

  /** Records a router's report, replacing its previous one. */
  report(routerId: string, clients: ReadonlyMap<string, number>, complete: boolean, now: number): void {
    this.#reports.set(routerId, { clients, complete, at: now });
  }

  /**
   * The clients of every tenant summed over the routers, or undefined when some connected router's
   * count is unknown (no report yet, an old one, or an incomplete one): then no tenant is idle.
   * Reports of routers no longer connected count while they are fresh (a router that lost its
   * stream may still serve clients from its cache) and are dropped once old.
   */
  totals(connected: readonly string[], now: number): ReadonlyMap<string, number> | undefined {
    for (const [id, r] of this.#reports) if (now - r.at > this.maxAgeMs && !connected.includes(id)) this.#reports.delete(id);
    for (const id of connected) {
      const r = this.#reports.get(id);
      if (!r || !r.complete || now - r.at > this.maxAgeMs) return undefined;
    }
    const sum = new Map<string, number>();
    for (const r of this.#reports.values()) {
      if (!r.complete) return undefined;
      for (const [tenantId, n] of r.clients) sum.set(tenantId, (sum.get(tenantId) ?? 0) + n);
    }
    return sum;
  }
}
