/**
 * The control loop. Each tick: host liveness transitions; tenants that never held data and sit on
 * a DOWN host are placed again; NEW tenants are placed (libs/tenancy placeTenants); failed
 * realizations are retried with backoff. A tenant that may hold data is never re-created
 * elsewhere by the loop: its status derivation makes it UNAVAILABLE until its host returns or an
 * operator accepts the data loss.
 */
import { performance } from 'node:perf_hooks';
import type { HostState } from '@pgs/tenancy';
import { resyncQuorums, syncHostTenants, type CoordinatorContext } from './context.js';
import type { BackupScheduler } from './backup-scheduler.js';
import type { FailoverManager } from './failover-manager.js';
import type { MoveManager } from './move-manager.js';
import { RecentLateness, stallBeyondHeartbeat } from '../live/loop-stall.js';
import type { HostRecord } from '../domain/model.js';
import type { StoreTx } from '../store/contract.js';
import { PlacementRun } from './placement-run.js';
import { replaceLostReplicas } from './replica-replacement.js';
import { replaceLostRestores } from './restore-replacement.js';
import { runSlice, type SliceBudget } from './sliced-work.js';
import { syncTenant } from './tenant-sync.js';

const SCHEDULER = 'system:scheduler';

/**
 * A parked backlog is walked again at least this often, and at least ten walks' time apart: a
 * safety net for a change that frees room without an event.
 */
const PARKED_REWALK_MS = 5_000;

/** The reconciler loop. */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private readonly placement: PlacementRun;
  /**
   * A walk of the backlog is under way: from its start until its last slice ended (finished, failed
   * or stopped), including while a slice waits on the store, so that a placement asked for meanwhile
   * never starts a second walk (restarting the cursor: on a store whose reads take a round trip,
   * every create did, and the walk never finished nor parked).
   */
  private placing = false;
  /** Tenants created meanwhile are being placed by id (one batch at a time). */
  private placingById = false;
  private stopped = false;
  /** When the last tick ran (performance clock), to see how long the event loop stalled since. */
  private lastTickAt: number | undefined;
  /** A placement pass is scheduled for the next turn (placeSoon). */
  private placeScheduled = false;
  /** A timer tick is running. */
  private ticking = false;
  private unsubscribe: (() => void) | undefined;
  /** The start grace ended (logged once). */
  private graceEnded = false;
  /** The worst lateness of recent ticks (one TTL back): heartbeats may wait unread that long. */
  private readonly lateness: RecentLateness;
  /** Tenants created since the last placement pass, placed by id while the backlog is parked. */
  private readonly created = new Set<string>();
  /**
   * Counts commits that may have freed room (a placement or tenant went; a host came, came back or
   * was uncordoned; a resize; a creation finished): each ends a parked backlog. A tenant that waits
   * for placement since a commit (created, recreated) is placed on the next turn of the event loop
   * instead of at the next tick, which was on average half a --reconcile-interval of every create's
   * time to first query.
   */
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
    this.lateness = new RecentLateness(ctx.liveness.options.ttlMs);
  }

  /** Starts ticking. */
  async start(): Promise<void> {
    // Hosts known from before a restart get one TTL plus grace to reconnect, and none is judged for
    // silence while their reconnects are being read (the start grace).
    const now = this.ctx.clock();
    const known = (await this.ctx.store.read.hosts.list()).filter((h) => h.state !== 'DOWN');
    for (const h of known) this.ctx.liveness.seen(h.id, now);
    this.ctx.liveness.expectReconnects(known.map((h) => h.id));
    this.graceEnded = known.length === 0;
    this.stopped = false;
    this.timer = setInterval(() => void this.timedTick(), this.intervalMs);
    this.timer.unref();
    this.unsubscribe = this.ctx.store.subscribe((commit) => {
      this.backups?.onCommit(commit);
      if (commit.roomFreed) this.roomChanges++;
      for (const tenantId of commit.toPlace) this.created.add(tenantId);
      if (commit.toPlace.length > 0) this.placeSoon();
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

  /** Stops for good: also stops following the store's commits for placement (the coordinator's term ended). */
  close(): void {
    this.stop();
    this.placement.close();
  }

  /** Places waiting tenants on the next turn of the event loop (once, however many ask in this turn). */
  placeSoon(): void {
    if (this.placeScheduled || this.stopped) return;
    this.placeScheduled = true;
    setImmediate(() => {
      this.placeScheduled = false;
      if (this.stopped) return;
      this.placeNew().catch((err: unknown) => {
        // A batch cut off by the coordinator's stop (its store closing) is not a failure to report.
        if (!this.stopped) this.ctx.log.error({ err }, 'placement failed; retrying next tick');
      });
    });
  }

  /** True while the backlog is parked: no event that may free room since, and its re-walk not due. */
  private parked(): boolean {
    return (
      this.parkedState !== undefined && this.roomChanges === this.parkedState.roomChanges && performance.now() - this.parkedState.at < this.parkedState.forMs
    );
  }

  /** A tick of the timer; skipped while the previous one still runs (ticks never overlap). */
  private async timedTick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.tick();
    } finally {
      this.ticking = false;
    }
  }

  /** One pass of the loop; safe to call any time (tests call it directly). */
  async tick(): Promise<void> {
    const at = performance.now();
    const sinceLast = this.lastTickAt === undefined ? 0 : at - this.lastTickAt;
    // Only the timer's ticks have a period to be late against (tests also call tick() by hand).
    const stalled = this.timer !== undefined && stallBeyondHeartbeat(sinceLast, this.intervalMs, this.ctx.heartbeatIntervalMs);
    const loopLagMs = this.timer !== undefined ? this.lateness.note(at, sinceLast - this.intervalMs) : 0;
    this.lastTickAt = at;
    try {
      // After a stall the heartbeats that arrived meanwhile are still unread: judge liveness a
      // tick later, once they are in, or a busy coordinator would mark live hosts down.
      if (stalled) this.ctx.log.warn({ stallMs: Math.round(sinceLast - this.intervalMs) }, 'event loop stalled; liveness check deferred to the next tick');
      else await this.checkLiveness(loopLagMs);
      await this.replaceNeverRealized();
      await this.placeNew();
      await this.retryFailed();
      await this.failover?.tick();
      await this.moves?.tick();
      const busy = (id: string): boolean => (this.failover?.inFlight(id) ?? false) || (this.moves?.inFlight(id) ?? false);
      await replaceLostReplicas(this.ctx, busy);
      if (this.ctx.backup) await replaceLostRestores(this.ctx);
      await this.backups?.tick();
    } catch (err) {
      this.ctx.log.error({ err }, 'reconciler tick failed; retrying next tick');
    }
  }

  /** Host state transitions; `loopLagMs`: how late recent ticks ran (heartbeats may have waited unread that long). */
  private async checkLiveness(loopLagMs: number): Promise<void> {
    const now = this.ctx.clock();
    if (!this.graceEnded && !this.ctx.liveness.inStartGrace(now, loopLagMs)) {
      this.graceEnded = true;
      const { startedAt, expected, helloed, lastCaughtUpAt } = this.ctx.liveness.startProgress;
      this.ctx.log.info(
        { afterMs: now - startedAt, expected, helloed, lastCaughtUpAfterMs: lastCaughtUpAt === undefined ? undefined : lastCaughtUpAt - startedAt },
        'start grace over: hosts are judged by their heartbeats again',
      );
    }
    const changes: Array<Promise<void>> = [];
    for (const host of await this.ctx.store.read.hosts.list()) {
      const next = this.ctx.liveness.verdictAt(host.id, now, host.state, loopLagMs);
      if (next.state !== host.state) changes.push(this.setHostState(host, next.state, now, next.reason));
    }
    // All of them at once, in one group commit: when a starved coordinator finds many hosts changed,
    // one fsync each (with every tenant of the host derived again) was most of its work.
    const failed = (await Promise.allSettled(changes)).find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * One host's transition, as a grouped transaction (each in its own savepoint: a failed one undoes
   * only itself). Skipped when the stored state is no longer the one judged (a Hello or another
   * writer changed it meanwhile).
   */
  private async setHostState(judged: HostRecord, state: HostState, now: number, reason: string): Promise<void> {
    const changed = await this.ctx.store.transaction(
      async (tx) => {
        const host = await tx.hosts.get(judged.id);
        if (!host || host.state !== judged.state) return false;
        await this.writeHostState(tx, host, state, now, reason);
        return true;
      },
      { grouped: true },
    );
    if (!changed) return;
    this.ctx.metrics?.hostTransitions.inc({ to: state });
    this.ctx.log.warn({ hostId: judged.id, from: judged.state, to: state, reason }, 'host state changed');
  }

  private async writeHostState(tx: StoreTx, host: HostRecord, state: HostState, now: number, reason: string): Promise<void> {
    const last = this.ctx.liveness.lastSeenAt(host.id) ?? host.lastHeartbeatAt;
    await tx.hosts.put({ ...host, state, stateChangedAt: now, lastHeartbeatAt: Math.max(host.lastHeartbeatAt, last) });
    await tx.events.append({
      time: now,
      principal: 'system:liveness',
      action: `host.${state.toLowerCase()}`,
      hostId: host.id,
      outcome: state === 'READY' ? 'SUCCESS' : 'FAILURE',
      message: state === 'READY' ? `host is back (was ${host.state})` : `${reason} (was ${host.state})`,
      details: { from: host.state, to: state },
    });
    tx.record({ kind: 'room' });
    await syncHostTenants(tx, this.ctx, host.id, 'system:liveness');
    if (state === 'DOWN' || host.state === 'DOWN') await resyncQuorums(tx, this.ctx, host.id, now);
  }

  /** Tenants with no instance that ever ran, stuck on a DOWN host, go back to NEW: no data can be lost. */
  private async replaceNeverRealized(): Promise<void> {
    // Only the placements of down hosts that hold a never-realized one (a partial index counts them),
    // then those tenants' own: reading every placement on each tick cost half a second at 100,000
    // tenants whenever any host was down, and every placement of every down host as much when a
    // starved coordinator had declared most of a fleet down at once. Only those hosts are read, and
    // none at all while every placement has been realized (a fleet at rest).
    const creating = await this.ctx.store.read.placements.creating();
    if (creating.size === 0) return;
    const down = (await this.ctx.store.read.hosts.getMany([...creating.keys()])).filter((h) => h.state === 'DOWN');
    const suspects = new Set<string>();
    for (const host of down) {
      for (const p of await this.ctx.store.read.placements.list({ hostId: host.id })) if (!p.realizedOnce) suspects.add(p.tenantId);
    }
    for (const tenantId of suspects) {
      const placements = await this.ctx.store.read.placements.list({ tenantId });
      if (placements.some((p) => p.realizedOnce)) continue;
      const now = this.ctx.clock();
      await this.ctx.store.transaction(async (tx) => {
        const tenant = await tx.tenants.get(tenantId);
        // A restored tenant's data comes from a backup: it is never placed again empty.
        if (!tenant || tenant.deleting || tenant.status === 'RESTORING' || (await tx.restores.list(tenantId)).length > 0) return;
        for (const p of placements) await tx.placements.delete(tenantId, p.hostId);
        const hosts = placements.map((p) => p.hostId).join(', ');
        await tx.tenants.update({
          ...tenant,
          status: 'NEW',
          statusReason: `placed again: host ${hosts} went down before the instance ever ran`,
          updatedAt: now,
        });
        await tx.events.append({
          time: now,
          principal: SCHEDULER,
          action: 'scheduler.replace',
          tenantId,
          message: `host ${hosts} is down and the tenant never held data; placing it again`,
        });
        await syncTenant(tx, tenantId, { now, health: this.ctx.health, principal: SCHEDULER });
        for (const p of placements) tx.record({ kind: 'desired', tenantId, hostId: p.hostId });
      });
      // The down host may have created the instance before it went away, and it leaves an instance
      // that is merely absent from its set alone: it is told to delete it when it is back. Nothing is
      // lost: the instance never held data (no route ever led to it).
      for (const p of placements) this.ctx.retiring.add(tenantId, p.hostId);
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'replaced' });
    }
  }

  /** Starts a new walk of the backlog unless one is still under way (it then just goes on). */
  private async placeNew(): Promise<void> {
    if (this.placing || this.placingById) return;
    if (this.parked()) {
      this.ctx.metrics?.backlogWalks.inc({ outcome: 'skipped' });
      await this.placeCreated();
      return;
    }
    // Tenants created meanwhile are in this walk.
    this.created.clear();
    this.placement.restart();
    this.walkStart = { at: performance.now(), roomChanges: this.roomChanges };
    // The walk goes on in slices of its own; this tick does not wait for it.
    this.placing = true;
    void this.placeSlice();
  }

  /**
   * Places the tenants created since the last batch, by id, while the backlog is parked. One batch
   * at a time: the ids are taken before it starts, so the next batch is what arrived meanwhile (a
   * batch that waits on the store is not walked again by another, and no id is dropped unplaced).
   */
  private async placeCreated(): Promise<void> {
    if (this.created.size === 0) return;
    const ids = [...this.created];
    this.created.clear();
    this.placingById = true;
    try {
      await this.placement.placeNow(ids);
    } finally {
      this.placingById = false;
      // What arrived meanwhile, or a walk that became due, goes on at once.
      if (this.created.size > 0 || !this.parked()) this.placeSoon();
    }
  }

  /** One bounded slice of placement; schedules the next one a turn later so I/O is read between. */
  private async placeSlice(): Promise<void> {
    let outcome;
    try {
      if (this.stopped) return this.walkEnded();
      outcome = await runSlice(
        (room) => this.placement.step(room),
        this.slice,
        () => performance.now(),
      );
    } catch (err) {
      if (!this.stopped) this.ctx.log.error({ err }, 'placement slice failed; retrying next tick');
      return this.walkEnded();
    }
    if (!outcome.more) {
      this.walkEnded();
      this.walkDone();
      return;
    }
    if (this.stopped) return this.walkEnded();
    setImmediate(() => void this.placeSlice());
  }

  /**
   * The walk's last slice ended. Tenants created while it ran are placed next (by id when it
   * parked, else by the next walk), not left for the next tick.
   */
  private walkEnded(): void {
    this.placing = false;
    if (this.created.size > 0) this.placeSoon();
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

  private async retryFailed(): Promise<void> {
    const now = this.ctx.clock();
    for (const p of await this.ctx.store.read.placements.listRetriesDue(now)) {
      if (!this.ctx.hub.isConnected(p.hostId)) continue;
      await this.ctx.store.transaction(async (tx) => {
        // Cleared until the agent reports again: the next failure report sets a longer backoff.
        await tx.placements.update({ ...p, nextRetryAt: 0, updatedAt: now });
        await tx.events.append({
          time: now,
          principal: SCHEDULER,
          action: 'placement.retry',
          tenantId: p.tenantId,
          hostId: p.hostId,
          message: `retrying realization (attempt ${p.failures + 1})`,
        });
        tx.record({ kind: 'desired', tenantId: p.tenantId, hostId: p.hostId });
      });
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'retried' });
    }
  }
}
