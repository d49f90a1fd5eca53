// One --workers worker process: serves clients from the route cache file its primary writes
// (read-only), takes tenant slots from the primary, relays cancels for keys of other workers
// through it, and reports status and metrics when asked. Started by worker-main.ts.
import { createRegistry, type Logger } from '@pgs/service-kit';
import { CancelKeys } from './cancel-keys.js';
import type { CancelOutcome } from './cancel-routing.js';
import type { RouterConfig } from './config.js';
import { mockSecretOf } from './edge-auth.js';
import { startDataPlane, type DataPlane } from './data-plane.js';
import { createRouterMetrics } from './metrics.js';
import { RouteCache } from './route-cache.js';
import type { TenantSlots } from './tenant-connections.js';
import { TenantWaker, type WakeAnswer } from './tenant-waker.js';
import { IpcPeer } from './worker-ipc.js';

/** What the primary hands a worker when it starts (over IPC, so the cancel secret never sits in an environment). */
export interface WorkerInit {
  config: RouterConfig;
  index: number;
  workers: number;
  /** The router's cancel-key secret (base64), the same in every worker. */
  cancelSecret: string;
  maxStartups: number;
  /** The fleet CA instances' certificates are verified against; undefined: none (--insecure). */
  instanceCaPem?: string | undefined;
}

/** What a worker answers to `status`. */
export interface WorkerStatus {
  index: number;
  pid: number;
  connections: number;
  cancelKeys: number;
}

/** How long a worker waits for the primary's answer about a tenant slot or a relayed cancel. */
const PRIMARY_TIMEOUT_MS = 5000;
/**
 * How often a worker looks whether the cache file changed without a note from the primary (one
 * pragma): the primary's note after each batch is the fast path, this bounds a lost one.
 */
const CACHE_REFRESH_MS = 1000;

/** Tenant slots counted at the primary: a limited tenant asks; everything else is told. */
class PrimaryTenantSlots implements TenantSlots {
  constructor(private readonly ipc: IpcPeer) {}

  acquire(tenantId: string, limit: number): boolean | Promise<boolean> {
    // Unlimited tenants are counted too (a limit set later must see them) but need no answer.
    if (limit <= 0) {
      this.ipc.note('tenant-acquire', { tenantId });
      return true;
    }
    return this.ipc.request<boolean>('tenant-acquire', { tenantId, limit }, PRIMARY_TIMEOUT_MS);
  }

  release(tenantId: string): void {
    this.ipc.note('tenant-release', { tenantId });
  }
}

/** A serving worker. */
export interface RunningWorker {
  readonly plane: DataPlane;
  /** Drains (up to `deadlineMs`) and closes; the same promise on every call. */
  stop(deadlineMs: number): Promise<void>;
}

/** Serves clients in this worker until the primary asks it to stop; `exit` ends the process after the answer. */
export async function runRouterWorker(ipc: IpcPeer, init: WorkerInit, log: Logger, exit: (code: number) => void): Promise<RunningWorker> {
  const { config } = init;
  const cache = new RouteCache(config.cachePath, { readOnly: true });
  // Lookups are served from memory (a transaction-mode transaction makes several): the primary
  // tells the worker when a batch is committed, and a periodic look catches a note that never came.
  ipc.onNote('routes-changed', () => cache.refresh());
  const refresher = setInterval(() => cache.refresh(), CACHE_REFRESH_MS);
  refresher.unref();
  const keys = new CancelKeys({
    routerId: config.routerId,
    secret: Buffer.from(init.cancelSecret, 'base64'),
    worker: { index: init.index, count: init.workers },
  });
  // The primary scrapes this registry (as JSON) and sums it with the other workers' and its own.
  const registry = createRegistry('router');
  const metrics = createRouterMetrics(registry);
  const plane = await startDataPlane({
    config,
    log,
    metrics,
    keys,
    lookup: (id) => cache.lookup(id),
    verifierOf: (id, user) => cache.verifierOf(id, user),
    instanceTls: { enabled: () => cache.instanceTls, caPem: () => init.instanceCaPem },
    mockSecret: mockSecretOf(Buffer.from(init.cancelSecret, 'base64')),
    // Read when a cancel must be forwarded (rare), so a peer change is seen without being told.
    peers: () => cache.peers(),
    tenants: new PrimaryTenantSlots(ipc),
    maxStartups: init.maxStartups,
    // The primary holds the coordinator link and forwards the ask.
    waker: new TenantWaker(
      (tenantId, waiting) => ipc.request<WakeAnswer>('wake', { tenantId, waiting }, PRIMARY_TIMEOUT_MS),
      log.child({ component: 'wake' }),
      metrics,
    ),
    // The primary holds the coordinator link: failures go to it as notes (no answer awaited).
    onBackendFailure: (failure) => ipc.note('backend_failure', failure),
    // The per-router bound is shared out like --max-startups.
    poolMaxBackends: Math.max(1, Math.ceil(config.poolMaxBackends / init.workers)),
    relayToWorker: (worker, processId, secretKey) =>
      ipc.request<CancelOutcome>('cancel', { worker, processId, secretKey: secretKey.toString('base64') }, PRIMARY_TIMEOUT_MS).catch((err: unknown) => {
        log.warn({ err: (err as Error).message, worker }, 'cancel relay to another worker failed');
        return 'failed' as const;
      }),
  });

  let stopping: Promise<void> | undefined;
  const stop = (deadlineMs: number): Promise<void> => {
    stopping ??= plane.server.stop(deadlineMs).then(() => {
      clearInterval(refresher);
      plane.pool.close();
      cache.close();
    });
    return stopping;
  };
  ipc.handle('cancel', (body) => {
    const b = body as { processId: number; secretKey: string };
    return plane.cancels.handleRelayed(b.processId, Buffer.from(b.secretKey, 'base64'));
  });
  ipc.handle('status', (): WorkerStatus => ({ index: init.index, pid: process.pid, connections: plane.server.open, cancelKeys: keys.size }));
  ipc.handle('metrics', () => registry.getMetricsAsJSON());
  ipc.handle('reload-tls', () => plane.reloadTls());
  ipc.handle('stop', async (body) => {
    await stop((body as { deadlineMs: number }).deadlineMs);
    // Answer first, then leave: the primary counts the exit as this worker's end.
    setImmediate(() => exit(0));
    return 'stopped';
  });
  return { plane, stop };
}
