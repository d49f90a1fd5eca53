import type { RouteEntry } from '../route.js';

/** A routable route for tests; override any field. */
export function routableRoute(tenantId: string, address: string, port: number, over: Partial<RouteEntry> = {}): Omit<RouteEntry, 'revision'> {
  return { tenantId, hostId: 'h1', address, port, state: 'ROUTABLE', reason: '', externalAccess: true, connectionLimit: 0, ...over };
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}
