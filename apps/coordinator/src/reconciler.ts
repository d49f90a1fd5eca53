/**
 * The control loop. Each tick: host liveness transitions; tenants that never held data and sit on
 * a DOWN host are placed again; NEW tenants are placed (libs/tenancy placeTenants); failed
 * realizations are retried with backoff. A tenant that may hold data is never re-created
 * elsewhere by the loop: its status derivation makes it UNAVAILABLE until its host returns or an
 * operator accepts the data loss.
 */
import { placeTenants, type HostState, type PlacementRequest } from '@pgs/tenancy';
import { resyncQuorums, syncHostTenants, touchReplicaTenants, type CoordinatorContext } from './context.js';
import type { FailoverManager } from './failover-manager.js';
import { hostCandidates } from './host-candidates.js';
import type { HostRecord, PlacementRecord } from './model.js';
import { replaceLostReplicas } from './replica-replacement.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import { syncTenant } from './tenant-sync.js';


const SCHEDULER = 'system:scheduler';

/** The reconciler loop. */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private readonly unplacedReason = new Map<string, string>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly intervalMs: number,
    private readonly failover?: FailoverManager,
  ) {}

  /** Starts ticking. */
  start(): void {
    // Hosts known from before a restart get one TTL plus grace to reconnect.
    const now = this.ctx.clock();
    for (const h of this.ctx.store.listHosts()) if (h.state !== 'DOWN') this.ctx.liveness.seen(h.id, now);
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops ticking. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass of the loop; safe to call any time (tests call it directly). */
  tick(): void {
    try {
      this.checkLiveness();
      this.replaceNeverRealized();
      this.placeNew();
      this.retryFailed();
      this.failover?.tick();
      for (const tenantId of replaceLostReplicas(this.ctx, (id) => this.failover?.inFlight(id) ?? false)) this.ctx.hub.touchTenant(tenantId);
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
    const down = new Set(this.ctx.store.listHosts().filter((h) => h.state === 'DOWN').map((h) => h.id));
    if (down.size === 0) return;
    const byTenant = new Map<string, PlacementRecord[]>();
    for (const p of this.ctx.store.listPlacements()) byTenant.set(p.tenantId, [...(byTenant.get(p.tenantId) ?? []), p]);
    for (const [tenantId, placements] of byTenant) {
      if (!placements.some((p) => down.has(p.hostId)) || placements.some((p) => p.realizedOnce)) continue;
      const now = this.ctx.clock();
      this.ctx.store.write((tx) => {
        const tenant = tx.getTenant(tenantId);
        if (!tenant || tenant.deleting) return;
        for (const p of placements) tx.deletePlacement(tenantId, p.hostId);
        const hosts = placements.map((p) => p.hostId).join(', ');
        tx.updateTenant({ ...tenant, status: 'NEW', statusReason: `placed again: host ${hosts} went down before the instance ever ran`, updatedAt: now });
        tx.appendEvent({ time: now, principal: SCHEDULER, action: 'scheduler.replace', tenantId, message: `host ${hosts} is down and the tenant never held data; placing it again` });
        syncTenant(tx, tenantId, { now, health: this.ctx.health, principal: SCHEDULER });
      });
      this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'replaced' });
    }
  }

  private placeNew(): void {
    const store = this.ctx.store;
    const waiting = store.listTenants({ status: 'NEW' }).filter((t) => !t.deleting && store.listPlacements({ tenantId: t.id }).length === 0);
    if (waiting.length === 0) return;
    waiting.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
    const now = this.ctx.clock();
    const placedTenants = store.write((tx) => {
      const requests: PlacementRequest[] = waiting.map((t) => ({ tenantId: t.id, resources: t.spec.resources, nodes: t.spec.nodes, placement: t.spec.placement }));
      const { placed, unplaced } = placeTenants(hostCandidates(tx), requests, this.ctx.placementPolicy);
      for (const decision of placed) {
        if (decision.hostIds.length > 1) ensureReplicationSecret(tx, this.ctx.keys, decision.tenantId, now);
        decision.hostIds.forEach((hostId, i) => {
          tx.insertPlacement({
            tenantId: decision.tenantId,
            hostId,
            role: i === 0 ? 'PRIMARY' : 'REPLICA',
            realization: 'PENDING',
            reason: '',
            instanceState: '',
            address: tx.getHost(hostId)?.address ?? '',
            port: 0,
            realizedRevision: 0,
            realizedOnce: false,
            generation: 0,
            failures: 0,
            nextRetryAt: 0,
            updatedAt: now,
          });
        });
        tx.appendEvent({
          time: now,
          principal: SCHEDULER,
          action: 'scheduler.placed',
          tenantId: decision.tenantId,
          hostId: decision.hostIds[0] ?? '',
          message: `primary on ${decision.hostIds[0]}${decision.hostIds.length > 1 ? `, replicas on ${decision.hostIds.slice(1).join(', ')}` : ''}`,
        });
        this.unplacedReason.delete(decision.tenantId);
        syncTenant(tx, decision.tenantId, { now, health: this.ctx.health, principal: SCHEDULER });
      }
      for (const u of unplaced) {
        // Said once per distinct reason, not every tick.
        if (this.unplacedReason.get(u.tenantId) === u.reason) continue;
        this.unplacedReason.set(u.tenantId, u.reason);
        const tenant = tx.getTenant(u.tenantId);
        if (tenant) tx.updateTenant({ ...tenant, statusReason: `waiting for a host: ${u.reason}`, updatedAt: now });
        tx.appendEvent({ time: now, principal: SCHEDULER, action: 'scheduler.unplaced', tenantId: u.tenantId, outcome: 'FAILURE', message: u.reason });
        this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'unplaced' });
      }
      return placed.map((d) => d.tenantId);
    });
    this.ctx.metrics?.schedulerDecisions.inc({ outcome: 'placed' }, placedTenants.length);
    for (const tenantId of placedTenants) this.ctx.hub.touchTenant(tenantId);
  }

  private retryFailed(): void {
    const now = this.ctx.clock();
    for (const p of this.ctx.store.listPlacements()) {
      if (p.realization !== 'FAILED' || p.nextRetryAt === 0 || p.nextRetryAt > now || !this.ctx.hub.isConnected(p.hostId)) continue;
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
