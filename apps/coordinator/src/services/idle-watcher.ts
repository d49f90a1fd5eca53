/**
 * The idle-suspend loop: every interval it gathers, for each ACTIVE tenant with an idle-suspend
 * policy, what the routers report of its clients, what its primary's health says of busy backends,
 * whether its replicas (if any) are caught up, and whether a backup or restore runs; the pure decideIdleSuspend (libs/tenancy) says when the
 * tenant was last busy and whether its whole interval has passed idle; this loop only suspends.
 */
import { decideIdleSuspend } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import type { RouterClients } from '../live/router-clients.js';
import type { SuspendService } from './suspend-service.js';

/** What the watcher needs besides the context. */
export interface IdleWatcherDeps {
  ctx: CoordinatorContext;
  clients: RouterClients;
  suspends: SuspendService;
  /** The routers connected now (their reports must all be fresh for any tenant to be idle). */
  connectedRouters: () => string[];
  intervalMs: number;
  /** A health report older than this says nothing about busy backends. */
  healthMaxAgeMs: number;
}

/** Watches idle-suspend tenants and suspends the ones idle for their whole interval. */
export class IdleWatcher {
  readonly #lastBusyAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** A round in flight: the next interval skips instead of overlapping it. */
  #running = false;

  constructor(private readonly deps: IdleWatcherDeps) {}

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = true;
      void this.tick().finally(() => {
        this.#running = false;
      });
    }, this.deps.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One round (the loop runs it every interval; tests call it). */
  async tick(): Promise<void> {
    const { ctx, clients, suspends } = this.deps;
    const log = ctx.log;
    try {
      await suspends.tick();
      const now = ctx.clock();
      const read = ctx.store.read;
      // Only the tenants with a policy (an index holds them): reading every ACTIVE tenant each second costs seconds at a million.
      const watched = await read.tenants.listIdleSuspend();
      const seen = new Set(watched.map((t) => t.id));
      for (const id of this.#lastBusyAt.keys()) if (!seen.has(id)) this.#lastBusyAt.delete(id);
      if (watched.length === 0) return;
      const totals = clients.totals(this.deps.connectedRouters(), now);
      const working = new Set([
        ...(await read.backups.listRunning()).map((b) => b.tenantId),
        ...(await read.restores.listRunning()).map((r) => r.targetTenantId),
      ]);
      for (const tenant of watched) {
        const placements = await read.placements.list({ tenantId: tenant.id });
        const primary = placements.find((p) => p.role === 'PRIMARY');
        const health = primary ? ctx.health.get(tenant.id, primary.hostId) : undefined;
        const hostReady = primary !== undefined && (await read.hosts.get(primary.hostId))?.state === 'READY';
        const fresh = health !== undefined && health.up && now - health.checkedAt <= this.deps.healthMaxAgeMs && hostReady;
        // A replica is caught up when a fresh report shows it streaming (its sender not lost) with nothing left to replay.
        const replicas = placements
          .filter((p) => p.role === 'REPLICA')
          .map((p) => {
            const h = ctx.health.get(tenant.id, p.hostId);
            const known = h !== undefined && h.up && h.role === 'REPLICA' && now - h.checkedAt <= this.deps.healthMaxAgeMs;
            return { hostId: p.hostId, caughtUp: known ? (h.senderLostAt ?? 0) === 0 && h.lagBytes === 0 : undefined };
          });
        const decision = decideIdleSuspend(
          { status: tenant.status, runState: tenant.spec.runState, deleting: tenant.deleting, idleSuspendSeconds: tenant.spec.idleSuspendSeconds },
          {
            routerClients: totals === undefined ? undefined : (totals.get(tenant.id) ?? 0),
            busyBackends: fresh ? health.busyBackends : undefined,
            backupRunning: working.has(tenant.id),
            replicas,
          },
          this.#lastBusyAt.get(tenant.id),
          now,
        );
        this.#lastBusyAt.set(tenant.id, decision.lastBusyAt);
        if (!decision.suspend) continue;
        this.#lastBusyAt.delete(tenant.id);
        try {
          await suspends.suspend(tenant.id, 'system:idle-suspend', 'idle', decision.reason);
          log.info({ tenantId: tenant.id, reason: decision.reason }, 'tenant suspended while idle');
        } catch (err) {
          log.warn({ tenantId: tenant.id, err }, 'idle tenant could not be suspended');
        }
      }
    } catch (err) {
      log.error({ err }, 'idle-suspend round failed');
    }
  }
}
