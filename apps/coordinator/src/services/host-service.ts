/**
 * Host operations: list, get, cordon, uncordon, drain. A drain cordons the host and plans where
 * every instance goes (libs/tenancy planDrain, placement rules and capacity): tenants that never
 * held data are simply placed again elsewhere, every other instance leaves by a live move (a
 * replicated tenant's member is moved as that member), a few at a time; what cannot move is
 * reported with the reason.
 */
import { validateHostId, type HostMajor, type HostState } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound } from '../domain/errors.js';
import type { DrainProgress } from './drain-runner.js';
import type { HostRecord, TenantRecord } from '../domain/model.js';
import type { MoveManager } from './move-manager.js';
import { hostCandidates } from './host-candidates.js';
import { planHostDrain } from './drain-planning.js';
import type { StoreReads } from '../store/contract.js';

/** A host with its live fields (exact last heartbeat, allocation, connected). */
export interface HostView {
  host: HostRecord;
  allocated: { cpuMillis: number; memoryMib: number; diskMib: number; instances: number };
  connected: boolean;
  /** Ready spares from the agent's last heartbeat; undefined when it reports none. */
  readySpares: number | undefined;
  /** The PostgreSQL majors its agent reported at its last connect (undefined: none since the coordinator started). */
  postgresMajors: readonly HostMajor[] | undefined;
  /** A drain's progress, while the host is draining. */
  drain: DrainProgress | undefined;
}

/** What DrainHost did and could not do. */
export interface DrainResult {
  view: HostView;
  moves: { tenantId: string; toHostId: string }[];
  blocked: { tenantId: string; reason: string }[];
}

/** Host operations. */
export class HostService {
  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly moves: MoveManager,
  ) {}

  private async views(tx: StoreReads): Promise<HostView[]> {
    const candidates = new Map((await hostCandidates(tx)).map((c) => [c.id, c.allocated]));
    return (await tx.hosts.list()).map((host) => ({
      host: { ...host, lastHeartbeatAt: Math.max(host.lastHeartbeatAt, this.ctx.liveness.lastSeenAt(host.id) ?? 0) },
      allocated: candidates.get(host.id) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 },
      connected: this.ctx.hub.isConnected(host.id),
      readySpares: this.ctx.spares.get(host.id),
      postgresMajors: this.ctx.versions.hostMajors(host.id),
      drain: host.draining ? this.moves.drains.progress(host.id) : undefined,
    }));
  }

  /** Hosts, optionally only those in one state. */
  async list(state?: HostState): Promise<HostView[]> {
    return (await this.views(this.ctx.store.read)).filter((v) => state === undefined || v.host.state === state);
  }

  /** One host and the tenants placed on it. */
  async get(id: string): Promise<{ view: HostView; tenants: TenantRecord[] }> {
    validateHostId(id, 'id');
    // Only this host's placements and tenants: reading the whole fleet per call made every
    // cordon/uncordon cost a scan of every tenant (seconds at 100,000).
    const store = this.ctx.store;
    const host = await store.read.hosts.get(id);
    if (!host) throw notFound.host(id);
    // One read (a host holds at most one placement of a tenant): uncordoning a thousand hosts of a
    // hundred tenants each read tenants one by one, 100,000 round trips on a store across the network.
    const tenants = await store.read.tenants.list({ hostId: id });
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
      drain: host.draining ? this.moves.drains.progress(host.id) : undefined,
    };
    return { view, tenants: tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) };
  }

  private async setFlags(id: string, flags: Partial<Pick<HostRecord, 'cordoned' | 'draining'>>, action: string, principal: string): Promise<HostView> {
    validateHostId(id, 'id');
    const now = this.ctx.clock();
    await this.ctx.store.transaction(async (tx) => {
      const host = await tx.hosts.get(id);
      if (!host) throw notFound.host(id);
      await tx.hosts.put({ ...host, ...flags });
      await tx.events.append({ time: now, principal, action, hostId: id, message: action });
      tx.record({ kind: 'room' });
    });
    return (await this.get(id)).view;
  }

  /** No new placements on the host. */
  async cordon(id: string, principal: string): Promise<HostView> {
    return await this.setFlags(id, { cordoned: true }, 'host.cordon', principal);
  }

  /** New placements allowed again (also ends a drain). */
  async uncordon(id: string, principal: string): Promise<HostView> {
    this.moves.drains.stop(id);
    const view = await this.setFlags(id, { cordoned: false, draining: false }, 'host.uncordon', principal);
    // A look at the store's draining flags in between may have taken the drain up again.
    this.moves.drains.stop(id);
    return view;
  }

  /** Cordons the host and starts moving away what can move, `parallel` live moves at a time (0 = default). */
  async drain(id: string, principal: string, parallel = 0): Promise<DrainResult> {
    validateHostId(id, 'id');
    const now = this.ctx.clock();
    const plan = await this.ctx.store.transaction(async (tx) => {
      const host = await tx.hosts.get(id);
      if (!host) throw notFound.host(id);
      await tx.hosts.put({ ...host, cordoned: true, draining: true });
      const planned = await planHostDrain(tx, this.ctx, id, new Set(), now, principal);
      await tx.events.append({
        time: now,
        principal,
        action: 'host.drain',
        hostId: id,
        outcome: planned.blocked.length ? 'FAILURE' : 'SUCCESS',
        message: `drain: ${planned.moved.length} placed again, ${planned.queue.length} to move live, ${planned.blocked.length} blocked`,
        details: { moved: [...planned.moved, ...planned.queue.map((m) => m.tenantId)].join(','), blocked: planned.blocked.map((b) => b.tenantId).join(',') },
      });
      return planned;
    });
    // Started once the cordon is committed: the runner's moves run their own transactions.
    this.moves.drains.start(id, plan, parallel, principal);
    const moves = [...plan.placedAgain, ...plan.queue].map((m) => ({ tenantId: m.tenantId, toHostId: m.toHostId }));
    return { view: (await this.get(id)).view, moves, blocked: plan.blocked };
  }
}
