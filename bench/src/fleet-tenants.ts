/** Tenant helpers of the fleet benchmarks: create through the operator API, wait for a query through a router. */
import { RunState } from '@pgs/proto';
import pg from 'pg';
import type { BenchFleet, BenchRouter } from './fleet-launcher.js';

/** The password every benchmark tenant's owner gets. */
export const BENCH_PASSWORD = 'bench-owner-secret';

/** Creates a tenant with external access on (the smallest resources the rules allow). */
export async function createTenant(fleet: BenchFleet, id: string, options: { externalAccess?: boolean } = {}): Promise<void> {
  await fleet.client.createTenant({
    id,
    ownerPassword: BENCH_PASSWORD,
    spec: {
      resources: { cpuMillis: 1000, memoryMib: 512, diskMib: 8192 },
      nodes: 1,
      externalAccess: options.externalAccess ?? true,
      runState: RunState.RUNNING,
    },
  });
}

/** One connect + `select 1` through a router as the tenant's owner; true when it worked. */
export async function queryThrough(router: BenchRouter, id: string): Promise<boolean> {
  const client = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: BENCH_PASSWORD, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch (err) {
    // 57P03 (starting up), 3D000/28000 (route not there yet) are expected while it provisions.
    if ((err as { code?: string }).code === undefined && !/ECONNREFUSED|ECONNRESET|timeout|terminated/i.test(String(err))) throw err;
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls until a query through `router` succeeds; returns when it first did (performance.now()). */
export async function firstQuery(router: BenchRouter, id: string, timeoutMs = 60_000, intervalMs = 10): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await queryThrough(router, id)) return performance.now();
    if (Date.now() > deadline) throw new Error(`tenant ${id} not queryable through ${router.id} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Connect + `select 1` through the router as the owner; ms until the answer (throws on failure). */
export async function timedQuery(router: BenchRouter, id: string, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  const client = new pg.Client({ host: router.host, port: router.port, user: id, database: id, password: BENCH_PASSWORD, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return performance.now() - started;
  } finally {
    await client.end().catch(() => undefined);
  }
}
