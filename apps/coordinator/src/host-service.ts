/**
 * Host operations: list, get, cordon, uncordon, drain. Until live move exists, drain moves only
 * tenants that never held data (they are simply placed again elsewhere) and reports every other
 * tenant as blocked, with where it would go and why it cannot yet.
 */
import { planDrain, validateHostId, type HostMajor, type HostState } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound } from './errors.js';
import type { HostRecord, TenantRecord } from './model.js';
import { hostCandidates, versionRequest } from './host-candidates.js';
import type { StoreTx } from './store/store.js';
import { syncTenant } from './tenant-sync.js';

/** A host with its live fields (exact last heartbeat, allocation, connected). */
export interface HostView {
  host: HostRecord;
  allocated: { cpuMillis: number; memoryMib: number; diskMib: number; instances: number };
  connected: boolean;
  /** Ready spares from the agent's last heartbeat; undefined when it reports none. */
  readySpares: number | undefined;
  /** The PostgreSQL majors its agent reported at its last connect (undefined: none since the coordinator started). */
  postgresMajors: readonly HostMajor[] | undefined;
}

/** What DrainHost did and could not do. */
export interface DrainResult {
  view: HostView;
  moves: { tenantId: string; toHostId: string }[];
  blocked: { tenantId: string; reason: string }[];
}

/** Host operations. */
export class HostService {
  constructor(private readonly ctx: CoordinatorContext) {}

  private views(tx: StoreTx): HostView[] {
    const candidates = new Map(hostCandidates(tx).map((c) => [c.id, c.allocated]));
    return tx.listHosts().map((host) => ({
      host: { ...host, lastHeartbeatAt: Math.max(host.lastHeartbeatAt, this.ctx.liveness.lastSeenAt(host.id) ?? 0) },
      allocated: candidates.get(host.id) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
      connected: this.ctx.hub.isConnected(host.id),
      readySpares: this.ctx.spares.get(host.id),
      postgresMajors: this.ctx.versions.hostMajors(host.id),
    }));
  }

  /** Hosts, optionally only those in one state. */
  list(state?: HostState): HostView[] {
    return this.views(this.ctx.store).filter((v) => state === undefined || v.host.state === state);
  }

  /** One host and the tenants placed on it. */
  get(id: string): { view: HostView; tenants: TenantRecord[] } {
    validateHostId(id, 'id');
    // Only this host's placements and tenants: reading the whole fleet per call made every
    // cordon/uncordon cost a scan of every tenant (seconds at 100,000).
    const store = this.ctx.store;
    const host = store.getHost(id);
    if (!host) throw notFound.host(id);
    const tenants: TenantRecord[] = [];
    for (const p of store.listPlacements({ hostId: id })) {
      const tenant = store.getTenant(p.tenantId);
      if (tenant) tenants.push(tenant);
    }
    const allocated = { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
    for (const t of tenants) {
      allocated.cpuMillis += t.spec.resources.cpuMillis;
      allocated.memoryMib += t.spec.resources.memoryMib;
      allocated.diskMib += t.spec.resources.diskMib;
      allocated.instances += 1;
    }
    const view: HostView = {
      host: { ...host, lastHeartbeatAt: Math.max(host.lastHeartbeatAt, this.ctx.liveness.lastSeenAt(host.id) ?? 0) },
      allocated,
      connected: this.ctx.hub.isConnected(host.id),
      readySpares: this.ctx.spares.get(host.id),
      postgresMajors: this.ctx.versions.hostMajors(host.id),
    };
    return { view, tenants: tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
  }

  private setFlags(id: string, flags: Partial<Pick<HostRecord, 'cordoned' | 'draining'>>, action: string, principal: string): HostView {
    validateHostId(id, 'id');
    const now = this.ctx.clock();
    this.ctx.store.write((tx) => {
      const host = tx.getHost(id);
      if (!host) throw notFound.host(id);
      tx.putHost({ ...host, ...flags });
      tx.appendEvent({ time: now, principal, action, hostId: id, message: action });
    });
    return this.get(id).view;
  }

  /** No new placements on the host. */
  cordon(id: string, principal: string): HostView {
    return this.setFlags(id, { cordoned: true }, 'host.cordon', principal);
  }

  /** New placements allowed again (also ends a drain). */
  uncordon(id: string, principal: string): HostView {
    return this.setFlags(id, { cordoned: false, draining: false }, 'host.uncordon', principal);
  }

  /** Cordons the host and moves away what can move. */
  drain(id: string, principal: string): DrainResult {
    validateHostId(id, 'id');
    const now = this.ctx.clock();
    const result = this.ctx.store.write((tx) => {
      const host = tx.getHost(id);
      if (!host) throw notFound.host(id);
      tx.putHost({ ...host, cordoned: true, draining: true });
      const onHost = tx.listPlacements({ hostId: id });
      const instances = onHost.map((p) => {
        const tenant = tx.getTenant(p.tenantId);
        const all = tx.listPlacements({ tenantId: p.tenantId });
        return {
          tenantId: p.tenantId,
          resources: tenant?.spec.resources ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0 },
          nodes: 1,
          placement: tenant?.spec.placement ?? {},
          excludeHosts: all.map((x) => x.hostId),
          ...(tenant ? versionRequest(tenant) : {}),
          role: p.role,
          hasReplica: all.some((x) => x.role === 'REPLICA'),
          neverHeldData: !all.some((x) => x.realizedOnce),
        };
      });
      const plan = planDrain(id, hostCandidates(tx, this.ctx.versions), instances, this.ctx.placementPolicy);
      const moves: DrainResult['moves'] = [];
      const blocked: DrainResult['blocked'] = [...plan.blocked];
      for (const move of plan.moves) {
        const inst = instances.find((i) => i.tenantId === move.tenantId);
        if (inst?.neverHeldData) {
          // Nothing to lose: drop the placements; the scheduler places the tenant on another host.
          for (const p of tx.listPlacements({ tenantId: move.tenantId })) tx.deletePlacement(move.tenantId, p.hostId);
          const tenant = tx.getTenant(move.tenantId);
          if (tenant) tx.updateTenant({ ...tenant, status: 'NEW', statusReason: `moved off draining host ${id} before it ever ran`, updatedAt: now });
          syncTenant(tx, move.tenantId, { now, health: this.ctx.health, principal });
          moves.push({ tenantId: move.tenantId, toHostId: move.toHostId });
        } else {
          blocked.push({
            tenantId: move.tenantId,
            reason: `holds data and live move is not available yet (it would go to ${move.toHostId}${move.switchover ? ' after a switchover' : ''})`,
          });
        }
      }
      tx.appendEvent({
        time: now,
        principal,
        action: 'host.drain',
        hostId: id,
        outcome: blocked.length ? 'FAILURE' : 'SUCCESS',
        message: `drain: ${moves.length} moved, ${blocked.length} blocked`,
        details: { moved: moves.map((m) => m.tenantId).join(','), blocked: blocked.map((b) => b.tenantId).join(',') },
      });
      return { moves, blocked };
    });
    return { view: this.get(id).view, ...result };
  }
}
