/**
 * Registering many tenants for a density run: each worker creates a tenant, waits until it is
 * ACTIVE and, unless it is one of the active ones, suspends it before taking the next, so at most
 * `concurrency` instances beyond the active ones run at any time (a thousand running instances at
 * once would need ~10 GiB). The disk is checked as it goes: a run stops with a clear error
 * before it fills the filesystem other work shares.
 */
import os from 'node:os';
import { TenantStatus, type Tenant } from '@pgs/proto';
import { poll, type BenchFleet } from './fleet-launcher.js';
import { createTenant } from './fleet-tenants.js';
import { freeBytes } from './machine-memory.js';

/** What registerTenants needs. */
export interface RegisterOptions {
  /** Tenants that stay running. */
  active: readonly string[];
  /** Tenants that end suspended. */
  suspended: readonly string[];
  concurrency: number;
  /** Stop (throw) when the filesystem of `dataDir` has fewer free bytes than this. */
  minFreeBytes: number;
  dataDir: string;
}

const GiB = 1024 ** 3;

/** How long a tenant may stay in ERROR (retried with backoff) before the run gives up on it. */
const ERROR_PATIENCE_MS = 20_000;

/** Polls one tenant until it is ACTIVE; one in ERROR for ERROR_PATIENCE_MS, or not ACTIVE in 5 minutes, throws with its reason. */
async function untilActive(fleet: BenchFleet, id: string): Promise<void> {
  let last: Tenant | undefined;
  let errorSince: number | undefined;
  try {
    await poll(
      `tenant ${id} ACTIVE`,
      async () => {
        last = (await fleet.client.getTenant({ id })).tenant;
        errorSince = last?.status === TenantStatus.ERROR ? (errorSince ?? Date.now()) : undefined;
        return last?.status === TenantStatus.ACTIVE || (errorSince !== undefined && Date.now() - errorSince > ERROR_PATIENCE_MS);
      },
      5 * 60_000,
      100,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message} (last status ${last ? TenantStatus[last.status] : 'none'}: ${last?.statusReason ?? ''})`, { cause: err });
  }
  if (errorSince !== undefined) throw new Error(`tenant ${id} in ERROR for ${ERROR_PATIENCE_MS / 1000} s: ${last?.statusReason ?? ''}`);
}

/**
 * Suspends a tenant that was ACTIVE. On a loaded machine its host may flap (UNREACHABLE for a
 * heartbeat or two, the tenant UNAVAILABLE meanwhile): then it waits for ACTIVE and asks again.
 */
async function suspendWhenActive(fleet: BenchFleet, id: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fleet.client.suspendTenant({ id });
      return;
    } catch (err) {
      if ((err as { errorCode?: string }).errorCode !== 'TENANT_NOT_ACTIVE' || attempt >= 5) throw err;
      await untilActive(fleet, id);
    }
  }
}

/** Every tenant of a status, page by page. */
export async function listByStatus(fleet: BenchFleet, status: TenantStatus): Promise<Tenant[]> {
  const out: Tenant[] = [];
  let pageToken = '';
  do {
    const res = await fleet.client.listTenants({ status, page: { pageSize: 1000, pageToken } });
    out.push(...res.tenants);
    pageToken = res.page?.nextPageToken ?? '';
  } while (pageToken !== '');
  return out;
}

/** How registering went: each tenant's create -> ACTIVE (ms), and each suspend call's (ms). */
export interface Registered {
  createMs: number[];
  suspendMs: number[];
  /** From the first create to every suspended instance stopped (s). */
  seconds: number;
}

/**
 * Creates the active tenants, then the suspended ones (each suspended once ACTIVE), `concurrency`
 * at a time, printing progress; waits until every suspended tenant's instance has stopped.
 */
export async function registerTenants(fleet: BenchFleet, o: RegisterOptions): Promise<Registered> {
  const started = performance.now();
  const total = o.active.length + o.suspended.length;
  const stay = new Set(o.active);
  const queue = [...o.active, ...o.suspended];
  let done = 0;
  const createMs: number[] = [];
  const suspendMs: number[] = [];
  let failure: Error | undefined;
  const progress = (): void => {
    const s = (performance.now() - started) / 1000;
    const recent = createMs.slice(-50).sort((a, b) => a - b);
    console.log(
      `registered ${done}/${total} in ${s.toFixed(0)} s (${(done / s).toFixed(1)}/s; create -> ACTIVE median of the last ${recent.length} ` +
        `${Math.round(recent[Math.floor(recent.length / 2)] ?? 0)} ms), load avg ${os.loadavg()[0]?.toFixed(1)}, ${(freeBytes(o.dataDir) / GiB).toFixed(1)} GiB free`,
    );
  };
  await Promise.all(
    Array.from({ length: Math.max(1, o.concurrency) }, async () => {
      for (let id = queue.shift(); id !== undefined && failure === undefined; id = queue.shift()) {
        try {
          const free = freeBytes(o.dataDir);
          if (free < o.minFreeBytes)
            throw new Error(
              `only ${(free / GiB).toFixed(1)} GiB left on the disk of ${o.dataDir} after ${done} tenants (the run keeps ${(o.minFreeBytes / GiB).toFixed(0)} GiB free): run a smaller PGS_BENCH_DENSITY`,
            );
          const t0 = performance.now();
          await createTenant(fleet, id);
          await untilActive(fleet, id);
          createMs.push(performance.now() - t0);
          if (!stay.has(id)) {
            const t1 = performance.now();
            await suspendWhenActive(fleet, id);
            suspendMs.push(performance.now() - t1);
          }
          done++;
          if (done % 50 === 0) progress();
        } catch (err) {
          failure ??= err as Error;
        }
      }
    }),
  );
  if (failure) throw failure;
  if (done % 50 !== 0) progress();
  const wanted = new Set(o.suspended);
  await poll(
    `${wanted.size} suspended tenants stopped`,
    async () => {
      const stopped = (await listByStatus(fleet, TenantStatus.SUSPENDED)).filter((t) => wanted.has(t.id) && t.placements.every((p) => p.health?.up !== true));
      return stopped.length === wanted.size;
    },
    10 * 60_000,
    1000,
  );
  return { createMs, suspendMs, seconds: (performance.now() - started) / 1000 };
}
