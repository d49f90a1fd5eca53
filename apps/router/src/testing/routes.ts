import type { RouteUpsert } from '../route.js';

/** A routable passthrough route for tests; override any field (poolMode, users, ...). */
export function routableRoute(tenantId: string, address: string, port: number, over: Partial<RouteUpsert> = {}): Omit<RouteUpsert, 'revision'> {
  return { tenantId, hostId: 'h1', address, port, state: 'ROUTABLE', reason: '', externalAccess: true, connectionLimit: 0, poolMode: 'NONE', ...over };
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
