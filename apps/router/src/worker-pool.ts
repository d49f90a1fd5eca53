// The primary's side of --workers: forks the worker processes (node:cluster), hands each its
// WorkerInit, counts tenant slots for all of them (the connection limit is per router), relays
// cancels between them, gathers status and metrics, restarts a crashed worker, and stops them.
//
// Scheduling: the workers share the listening sockets and the kernel hands each connection to one
// of them (SCHED_NONE), so the primary stays out of the data path; UV_TCP_SINGLE_ACCEPT makes a
// worker yield after each accept so one worker does not take a whole burst of connections.
import type { BackendFailureNote } from './backend-failure-report.js';
import type { WakeAnswer } from './tenant-waker.js';
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Logger } from '@pgs/service-kit';
import type { CancelOutcome } from './cancel-routing.js';
import type { RouterConfig } from './config.js';
import type { HostPort } from './listen-address.js';
import type { WorkerInit, WorkerStatus } from './router-worker.js';
import { IpcPeer } from './worker-ipc.js';

/** How long a worker may take from fork to listening. */
const START_TIMEOUT_MS = 30_000;
/** Delay before a crashed worker is replaced (a worker that crashes at start must not spin). */
const RESTART_DELAY_MS = 1000;
/** Timeout of the primary's own questions to a worker (status, metrics, TLS reload). */
const ASK_TIMEOUT_MS = 5000;

/** What the pool needs. */
export interface WorkerPoolOptions {
  config: RouterConfig;
  log: Logger;
  /** The router's cancel-key secret: the same in every worker, so any of them can check a key. */
  cancelSecret: Buffer;
  /** The fleet CA the workers verify instances with (read at each worker's start); undefined: none (--insecure). */
  instanceCaPem?: () => string | undefined;
  /** Wakes a suspended tenant for a worker's held client (the primary holds the coordinator link). */
  wake?: (tenantId: string, waitingClients: number) => Promise<WakeAnswer>;
  /** Reports a worker's refused or timed-out connect to an instance (the primary holds the coordinator link). */
  backendFailure?: (failure: BackendFailureNote) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  ipc: IpcPeer;
  /** Open connections of this worker per tenant, as far as the primary counts them. */
  holds: Map<string, number>;
  exited: Promise<void>;
}

/** The worker processes of a router. */
export class WorkerPool {
  readonly #o: WorkerPoolOptions;
  readonly #slots = new Map<number, Slot>();
  /** Open connections per tenant over all workers. */
  readonly #tenants = new Map<string, number>();
  #stopping = false;
  #listen: HostPort | undefined;
  #cancelBound: HostPort | undefined;

  private constructor(options: WorkerPoolOptions) {
    this.#o = options;
  }

  /** Forks `config.workers` workers and resolves when all of them listen. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    const here = fileURLToPath(import.meta.url);
    // From the TypeScript sources (tests) the worker entry runs through tsx; built, it is plain JS.
    const fromSource = here.endsWith('.ts');
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({
      exec: path.join(path.dirname(here), fromSource ? 'worker-main.ts' : 'worker-main.js'),
      args: [],
      execArgv: fromSource ? ['--conditions=@pgs/source', '--import', 'tsx'] : [],
    });
    try {
      await Promise.all(Array.from({ length: options.config.workers }, (_, i) => pool.#fork(i)));
    } catch (err) {
      await pool.stop(0);
      throw err;
    }
    return pool;
  }

  /** Open connections per tenant over every worker. */
  tenantCounts(): ReadonlyMap<string, number> {
    return this.#tenants;
  }

  /** The bound client address (shared by all workers). */
  get listen(): HostPort {
    return this.#listen ?? { host: '', port: 0 };
  }

  /** The bound cancel listener address (shared by all workers). */
  get cancelBound(): HostPort {
    return this.#cancelBound ?? { host: '', port: 0 };
  }

  /** Status of every live worker (a worker that does not answer is left out). */
  async status(): Promise<WorkerStatus[]> {
    const answers = await Promise.allSettled([...this.#slots.values()].map((s) => s.ipc.request<WorkerStatus>('status', null, ASK_TIMEOUT_MS)));
    return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  }

  /** Every live worker's metrics as prom-client JSON, to aggregate with the primary's own. */
  async metrics(): Promise<Array<Array<MetricObjectWithValues<MetricValue<string>>>>> {
    const answers = await Promise.allSettled(
      [...this.#slots.values()].map((s) => s.ipc.request<Array<MetricObjectWithValues<MetricValue<string>>>>('metrics', null, ASK_TIMEOUT_MS)),
    );
    return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  }

  /**
   * Tells every worker that the primary committed a route batch: each keeps what it read of the
   * cache file in memory and reads the file again for what changed (RouteCache.refresh).
   */
  routesChanged(): void {
    for (const s of this.#slots.values()) s.ipc.note('routes-changed', null);
  }

  /** Asks every worker to re-read the certificate files; throws when one of them kept the old pair. */
  async reloadTls(): Promise<void> {
    const results = await Promise.all([...this.#slots.values()].map((s) => s.ipc.request<string>('reload-tls', null, ASK_TIMEOUT_MS)));
    if (results.includes('error')) throw new Error('a worker could not load the new certificate pair; it keeps the previous one');
  }

  /** Drains every worker (up to `deadlineMs`) and waits until all have exited. */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const slots = [...this.#slots.values()];
    await Promise.all(
      slots.map(async (s) => {
        try {
          await s.ipc.request('stop', { deadlineMs }, deadlineMs + ASK_TIMEOUT_MS);
        } catch (err) {
          this.#o.log.warn({ worker: s.index, err: (err as Error).message }, 'worker did not stop in time; killing it');
          s.worker.process.kill('SIGKILL');
        }
        await s.exited;
      }),
    );
  }

  #fork(index: number): Promise<void> {
    const { config, log, cancelSecret } = this.#o;
    const worker = cluster.fork({ UV_TCP_SINGLE_ACCEPT: '1' });
    const ipc = new IpcPeer(worker);
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const slot: Slot = { index, worker, ipc, holds: new Map(), exited };
    this.#slots.set(index, slot);
    const init: WorkerInit = {
      config,
      index,
      workers: config.workers,
      cancelSecret: cancelSecret.toString('base64'),
      // --max-startups bounds the router as a whole; each worker takes its share.
      maxStartups: Math.max(1, Math.ceil(config.maxStartups / config.workers)),
      instanceCaPem: this.#o.instanceCaPem?.(),
    };
    ipc.onNote('hello', () => {
      ipc
        .request('init', init, START_TIMEOUT_MS)
        .catch((err: unknown) => log.error({ worker: index, err: (err as Error).message }, 'worker did not take its init'));
    });
    ipc.onNote('tenant-acquire', (body) => this.#hold(slot, (body as { tenantId: string }).tenantId));
    ipc.onNote('tenant-release', (body) => this.#release(slot, (body as { tenantId: string }).tenantId));
    ipc.handle('tenant-acquire', (body) => {
      const { tenantId, limit } = body as { tenantId: string; limit: number };
      if (limit > 0 && (this.#tenants.get(tenantId) ?? 0) >= limit) return false;
      this.#hold(slot, tenantId);
      return true;
    });
    ipc.handle('wake', (body) => {
      const { tenantId, waiting } = body as { tenantId: string; waiting: number };
      if (!this.#o.wake) return { outcome: 'REFUSED', message: 'this router does not wake tenants', retryAfterMs: 0 } satisfies WakeAnswer;
      return this.#o.wake(tenantId, waiting);
    });
    ipc.handle('cancel', (body) => this.#relayCancel(body as { worker: number; processId: number; secretKey: string }));
    ipc.onNote('backend_failure', (body) => this.#o.backendFailure?.(body as BackendFailureNote));

    const listening = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`router worker ${index} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      ipc.onNote('listening', (body) => {
        clearTimeout(timer);
        const b = body as { listen: HostPort; cancel: HostPort };
        this.#listen ??= b.listen;
        this.#cancelBound ??= b.cancel;
        resolve();
      });
      worker.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`router worker ${index} exited during start (code ${code}, signal ${signal})`));
      });
    });
    worker.once('exit', (code, signal) => {
      ipc.close(`worker ${index} exited`);
      // Its connections are gone with it: give their tenant slots back.
      for (const [tenantId, n] of slot.holds) for (let i = 0; i < n; i++) this.#release(slot, tenantId);
      if (this.#slots.get(index) === slot) this.#slots.delete(index);
      if (this.#stopping) return;
      log.error({ worker: index, pid: worker.process.pid, code, signal }, 'router worker exited; starting a new one');
      setTimeout(() => {
        if (this.#stopping) return;
        this.#fork(index).catch((err: unknown) => log.error({ worker: index, err: (err as Error).message }, 'router worker restart failed'));
      }, RESTART_DELAY_MS).unref();
    });
    return listening;
  }

  #hold(slot: Slot, tenantId: string): void {
    slot.holds.set(tenantId, (slot.holds.get(tenantId) ?? 0) + 1);
    this.#tenants.set(tenantId, (this.#tenants.get(tenantId) ?? 0) + 1);
  }

  #release(slot: Slot, tenantId: string): void {
    const mine = slot.holds.get(tenantId) ?? 0;
    if (mine <= 0) return;
    if (mine === 1) slot.holds.delete(tenantId);
    else slot.holds.set(tenantId, mine - 1);
    const all = (this.#tenants.get(tenantId) ?? 0) - 1;
    if (all > 0) this.#tenants.set(tenantId, all);
    else this.#tenants.delete(tenantId);
  }

  async #relayCancel(body: { worker: number; processId: number; secretKey: string }): Promise<CancelOutcome> {
    const owner = this.#slots.get(body.worker);
    // The issuing worker is gone (crashed): so are its connections; nothing to cancel.
    if (!owner) return 'unknown_key';
    return owner.ipc.request<CancelOutcome>('cancel', { processId: body.processId, secretKey: body.secretKey }, ASK_TIMEOUT_MS);
  }
}
