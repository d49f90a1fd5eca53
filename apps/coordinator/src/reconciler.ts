/**
 * The control loop. Each tick: host liveness transitions; tenants that never held data and sit on
 * a DOWN host are placed again; NEW tenants are placed (libs/tenancy placeTenants); failed
 * realizations are retried with backoff. A tenant that may hold data is never re-created
 * elsewhere by the loop: its status derivation makes it UNAVAILABLE until its host returns or an
 * operator accepts the data loss.
 */
import { performance } from 'node:perf_hooks';
import type { HostState } from '@pgs/tenancy';
import { resyncQuorums, syncHostTenants, touchReplicaTenants, type CoordinatorContext } from './context.js';
import type { BackupScheduler } from './backup-scheduler.js';
import type { FailoverManager } from './failover-manager.js';
import type { MoveManager } from './move-manager.js';
import { stallBeyondHeartbeat } from './loop-stall.js';
import type { HostRecord } from './model.js';
import { PlacementRun } from './placement-run.js';
import { replaceLostReplicas } from './replica-replacement.js';
import { replaceLostRestores } from './restore-replacement.js';
import { runSlice, type SliceBudget } from './sliced-work.js';
import { syncTenant } from './tenant-sync.js';


const SCHEDULER = 'system:scheduler';

/**
 * Events after which a tenant waits to be placed: it is placed at once (next event-loop turn)
 * instead of at the next tick, which was on average half a --reconcile-interval (125 ms) of every
 * create's time to first query.
 */
const PLACE_AT_ONCE = new Set(['tenant.create', 'tenant.recreate']);

/**
 * Events that cannot make a waiting tenant placeable (they change no host, no allocation and no
 * creation in flight). Any other event ends a parked backlog (see `parkedState`).
 */
const CANNOT_FREE_ROOM = /^(tenant\.create|tenant\.recreate|tenant\.status|tenant\.access\.|scheduler\.placed|scheduler\.unplaced|user\.|database\.|token\.|secrets\.|component\.|access\.|backup\.)/;

/**
 * A parked backlog is walked again at least this often, and at least ten walks' time apart: a
 * safety net for a change that frees room without an event.
 */
const PARKED_REWALK_MS = 5_000;

/** The reconciler loop. */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private readonly placement: PlacementRun;
  /** A placement slice is scheduled (the backlog walk is under way). */
  private placing = false;
  private stopped = false;
  /** When the last tick ran (performance clock), to see how long the event loop stalled since. */
  private lastTickAt: number | undefined;
  /** A placement pass is scheduled for the next turn (placeSoon). */
  private placeScheduled = false;
  private unsubscribe: (() => void) | undefined;
  /** Tenants created since the last placement pass, placed by id while the backlog is parked. */
  private readonly created = new Set<string>();
  /** Counts committed events that may have freed room (see CANNOT_FREE_ROOM). */
  private roomChanges = 0;
  /** When the current walk started, and the room changes seen by then. */
  private walkStart = { at: 0, roomChanges: 0 };
  /**
   * Set when a whole walk of the backlog placed nothing and no room was freed while it ran: until
   * another such event, or `for` ms, ticks do not walk it again (with 100,000 tenants waiting for
   * capacity a walk takes seconds, and walking it on every tick starved the API). New tenants are
   * still placed by id.
   */
  private parkedState: { at: number; roomChanges: number; forMs: number } | undefined;

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly intervalMs: number,
    private readonly failover?: FailoverManager,
    /** Placement per slice: about 500 tenants or 50 ms, then the event loop gets a turn. */
    private readonly slice: SliceBudget = { maxItems: 500, maxMs: 50 },
    private readonly backups?: BackupScheduler,
    private readonly moves?: MoveManager,
  ) {
    this.placement = new PlacementRun(ctx);
  }

  /** Starts ticking. */
  start(): void {
    // Hosts known from before a restart get one TTL plus grace to reconnect.
    const now = this.ctx.clock();
    for (const h of this.ctx.store.listHosts()) if (h.state !== 'DOWN') this.ctx.liveness.seen(h.id, now);
    this.stopped = false;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.unsubscribe = this.ctx.store.onCommit((summary) => {
      this.backups?.onCommit(summary);
      let place = false;
      for (const e of summary.events) {
        if (PLACE_AT_ONCE.has(e.action)) {
          this.created.add(e.tenantId);
          place = true;
        } else if (!CANNOT_FREE_ROOM.test(e.action)) {
          this.roomChanges++;
        }
      }
      if (place) this.placeSoon();
    });
  }

  /** Stops ticking; a placement slice in flight is the last one (checked between slices). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Places waiting tenants on the next turn of the event loop (once, however many ask in this turn). */
  placeSoon(): void {
    if (this.placeScheduled || this.stopped) return;
    this.placeScheduled = true;
    setImmediate(() => {
      this.placeScheduled = false;
      if (this.stopped) return;
      try {
        this.placeNew();
      } catch (err) {
        this.ctx.log.error({ err }, 'placement failed; retrying next tick');
      }
    });
  }

  /** True while the backlog is parked: no event that may free room since, and its re-walk not due. */
  private parked(): boolean {
    return this.parkedState !== undefined && this.roomChanges === this.parkedState.roomChanges && performance.now() - this.parkedState.at < this.parkedState.forMs;
  }

  /** One pass of the loop; safe to call any time (tests call it directly). */
  tick(): void {
    const at = performance.now();
    const sinceLast = this.lastTickAt === undefined ? 0 : at - this.lastTickAt;
    // Only the timer's ticks have a period to be late against (tests also call tick() by hand).
    const stalled = this.timer !== undefined && stallBeyondHeartbeat(sinceLast, this.intervalMs, this.ctx.heartbeatIntervalMs);
    this.lastTickAt = at;
    try {
      // After a stall the heartbeats that arrived meanwhile are still unread: judge liveness a
      // tick later, once they are in, or a busy coordinator would mark live hosts down.
      if (stalled) this.ctx.log.warn({ stallMs: Math.round(sinceLast - this.intervalMs) }, 'event loop stalled; liveness check deferred to the next tick');
      else this.checkLiveness();
      this.replaceNeverRealized();
      this.placeNew();
      this.retryFailed();
      this.failover?.tick();
      this.moves?.tick();
      const busy = (id: string): boolean => (this.failover?.inFlight(id) ?? false) || (this.moves?.inFlight(id) ?? false);
      for (const tenantId of replaceLostReplicas(this.ctx, busy)) this.ctx.hub.touchTenant(tenantId);
      if (this.ctx.backup) for (const tenantId of replaceLostRestores(this.ctx)) this.ctx.hub.touchTenant(tenantId);
      this.backups?.tick();
    } catch (err) {
      this.ctx.log.error({ err }, 'reconciler tick failed; retrying next tick');
    }
  }

  private checkLiveness(): void {
    const now = this.ctx.clock();
    for (const host of this.ctx.store.listHosts()) {
      const next = this.ctx.liveness.stateAt(host.id, now, host.state);
      if (next !== host.state) this.setHostState(host, next, now);
    }
  }

  private setHostState(host: HostRecord, state: HostState, now: number): void {
    const last = this.ctx.liveness.lastSeenAt(host.id) ?? host.lastHeartbeatAt;
    this.ctx.store.write((tx) => {
      tx.putHost({ ...host, state, stateChangedAt: now, lastHeartbeatAt: Math.max(host.lastHeartbeatAt, last) });
      tx.appendEvent({
        time: now,
        principal: 'system:liveness',
        action: `host.${state.toLowerCase()}`,
        hostId: host.id,
        outcome: state === 'READY' ? 'SUCCESS' : 'FAILURE',
        message: state === 'READY' ? `host is back (was ${host.state})` : `no heartbeat for ${now - last} ms (was ${host.state})`,
        details: { from: host.state, to: state },
      });
      syncHostTenants(tx, this.ctx, host.id, 'system:liveness');
      if (state === 'DOWN' || host.state === 'DOWN') resyncQuorums(tx, this.ctx, host.id, now);
    });
    if (state === 'DOWN' || host.state === 'DOWN') touchReplicaTenants(this.ctx, host.id);
    this.ctx.metrics?.hostTransitions.inc({ to: state });
    this.ctx.log.warn({ hostId: host.id, from: host.state, to: state }, 'host state changed');
  }

  /** Tenants with no instance that ever ran, stuck on a DOWN host, go back to NEW: no data can be lost. */
  private replaceNeverRealized(): void {
    const down = this.ctx.store.listHosts().filter((h) => h.state === 'DOWN');
    if (down.length === 0) return;
    // Only the placements on down hosts (indexed by host), then those tenants' own: reading every
    // placement on each tick cost half a second at 100,000 tenants whenever any host was down.
    const suspects = new Set<string>();
    for (const host of down) for (const p of this.ctx.store.listPlacements({ hostId: host.id })) if (!p.realizedOnce) suspects.add(p.tenantId);
    for (const tenantId of suspects) {
      const placements = this.ctx.store.listPlacements({ tenantId });
      if (placements.some((p) => p.realizedOnce)) continue;
      const now = this.ctx.clock();
      this.ctx.store.write((tx) => {
        const tenant = tx.getTenant(tenantId);
        // A restored tenant's data comes from a backup: it is never placed again empty.
        if (!tenant || tenant.deleting || tenant.status === 'RESTORING' || tx.listRestores(tenantId).length > 0) return;
        for (const p of placements) tx.deletePlacement(tenantId, p.hostId);
        const hosts = placements.map((p) => p.hostId).join(', ');
        tx.updateTenant({ ...tenant, status: 'NEW', statusReason: `placed again: host ${hosts} went down before the instance ever ran`, updatedAt: now });
        tx.appendEvent({ time: now, principal: SCHEDULER, action: 'scheduler.replace', tenantId, message: `host ${hosts} is down and the tenant never held data; placing it again` });
        syncTenant(tx, tenantId, { now, health: this.ctx.health, principal: SCHEDULER });
      });
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'replaced' });
    }
  }

  /** Starts a new walk of the backlog unless one is still under way (it then just goes on). */
  private placeNew(): void {
    if (this.placing) return;
    if (this.parked()) {
      this.ctx.metrics?.backlogWalks.inc({ outcome: 'skipped' });
      if (this.created.size > 0) this.placement.placeNow(this.created);
      this.created.clear();
      return;
    }
    // Tenants created meanwhile are in this walk.
    this.created.clear();
    this.placement.restart();
    this.walkStart = { at: performance.now(), roomChanges: this.roomChanges };
    this.placeSlice();
  }

  /** One bounded slice of placement; schedules the next one a turn later so I/O is read between. */
  private placeSlice(): void {
    this.placing = false;
    if (this.stopped) return;
    let outcome;
    try {
      outcome = runSlice((room) => this.placement.step(room), this.slice, () => performance.now());
    } catch (err) {
      this.ctx.log.error({ err }, 'placement slice failed; retrying next tick');
      return;
    }
    if (!outcome.more) {
      this.walkDone();
      return;
    }
    if (this.stopped) return;
    this.placing = true;
    setImmediate(() => this.placeSlice());
  }

  /** A whole walk that placed nothing parks the backlog; anything placed keeps it walking. */
  private walkDone(): void {
    const { considered, placed } = this.placement.walked;
    if (considered > 0 && placed === 0 && this.roomChanges === this.walkStart.roomChanges) {
      const at = performance.now();
      this.parkedState = { at, roomChanges: this.roomChanges, forMs: Math.max(PARKED_REWALK_MS, 10 * (at - this.walkStart.at)) };
      this.ctx.metrics?.backlogWalks.inc({ outcome: 'parked' });
    } else {
      this.parkedState = undefined;
      if (considered > 0) this.ctx.metrics?.backlogWalks.inc({ outcome: 'placed' });
    }
  }

  private retryFailed(): void {
    const now = this.ctx.clock();
    for (const p of this.ctx.store.listRetriesDue(now)) {
      if (!this.ctx.hub.isConnected(p.hostId)) continue;
      this.ctx.store.write((tx) => {
        // Cleared until the agent reports again: the next failure report sets a longer backoff.
        tx.updatePlacement({ ...p, nextRetryAt: 0, updatedAt: now });
        tx.appendEvent({ time: now, principal: SCHEDULER, action: 'placement.retry', tenantId: p.tenantId, hostId: p.hostId, message: `retrying realization (attempt ${p.failures + 1})` });
      });
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'retried' });
      this.ctx.hub.touch(p.hostId, p.tenantId);
    }
  }
}
