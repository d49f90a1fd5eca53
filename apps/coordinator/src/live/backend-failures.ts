/**
 * Routers' reports of refused connects to tenants' instances (nothing listening on the address).
 * Together with a broken agent stream, a refusal says the instance's process is gone, not only
 * its agent (libs/tenancy primaryLoss). Timeouts are kept out: a partition looks the same, and the
 * lease handles it. Memory only, a few seconds deep: a report is worth something only right after
 * the event it describes.
 */

/** How long a refusal is kept. */
const KEEP_MS = 10_000;

/** Latest refusal per (tenant, instance address). */
export class BackendFailures {
  private readonly refused = new Map<string, number>();

  /** Records a refused connect to the tenant's instance at address:port, seen at `at`. */
  refusedAt(tenantId: string, address: string, port: number, at: number, now: number): void {
    // A router's clock may run ahead: a report is never dated after its arrival.
    const when = Math.min(at > 0 ? at : now, now);
    const key = keyOf(tenantId, address, port);
    this.refused.set(key, Math.max(when, this.refused.get(key) ?? 0));
    this.prune(now);
  }

  /** The latest refusal of a connect to the tenant's instance at address:port, if any recent. */
  latest(tenantId: string, address: string, port: number): number | undefined {
    return this.refused.get(keyOf(tenantId, address, port));
  }

  private prune(now: number): void {
    if (this.refused.size < 1000) return;
    for (const [k, at] of this.refused) if (now - at > KEEP_MS) this.refused.delete(k);
  }
}

function keyOf(tenantId: string, address: string, port: number): string {
  return `${tenantId}\u0000${address}\u0000${port}`;
}
