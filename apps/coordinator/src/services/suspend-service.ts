/**
 * Scale to zero: suspending a tenant (its instances stop with a checkpoint, the data stays, its
 * CPU and memory go back to the hosts' pools; a replicated tenant's members all stop, and all wake,
 * together) and waking it again (on a router's request when a
 * client arrives, or an operator's). Each is one transaction that bumps the instance revision, so
 * the agents get the new run state through the desired-set push; events say when each started and,
 * once the instances stopped or the route is routable again, how long it took.
 */
import { membersWakeProblem, suspendedReason, takeToken, type BucketLimit, type TokenBucket, type WakeMember } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound, PreconditionError } from '../domain/errors.js';
import type { TenantRecord } from '../domain/model.js';
import type { Commit, StoreTx } from '../store/contract.js';
import { syncTenant } from './tenant-sync.js';

/** What became of a wake request (the proto WakeOutcome names). */
export type WakeOutcome = 'STARTED' | 'IN_PROGRESS' | 'THROTTLED' | 'REFUSED';

/** The answer to a wake request. */
export interface WakeResult {
  outcome: WakeOutcome;
  message: string;
  retryAfterMs: number;
}

/** Why a suspend was asked: the idle policy or an operator. */
export type SuspendTrigger = 'idle' | 'operator';

/** How long a refused wake is remembered, so many clients of one tenant make one event, not one each. */
const REFUSAL_MEMORY_MS = 60_000;
/** A wake or suspend not finished after this long is forgotten (its instance failed; the status says why). */
const PENDING_MAX_MS = 10 * 60_000;

/** Suspends and wakes tenants. */
export class SuspendService {
  #bucket: TokenBucket | undefined;
  /** Tenants whose suspend was decided and whose instances are not all stopped yet: since when. */
  readonly #suspending = new Map<string, { at: number; trigger: SuspendTrigger }>();
  /** Tenants woken and not routable yet: since when, and who asked. */
  readonly #waking = new Map<string, { at: number; principal: string; waiting: number }>();
  /** Wakes done (route routable), waiting for their event to be written. */
  readonly #woken: { tenantId: string; at: number; durationMs: number; principal: string; waiting: number }[] = [];
  readonly #refused = new Map<string, { reason: string; at: number }>();
  /** Tenants a wake request is being decided for (its reads and write are in flight). */
  readonly #deciding = new Set<string>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly wakeLimit: BucketLimit,
  ) {
    this.#unsubscribe = ctx.store.subscribe((commit) => this.#noteRoutes(commit));
  }

  readonly #unsubscribe: () => void;

  /** Stops following the store's commits (the coordinator's term ended). */
  close(): void {
    this.#unsubscribe();
  }

  /** Tenants waking now (for metrics and tests). */
  get waking(): number {
    return this.#waking.size;
  }

  /** Suspends an ACTIVE tenant; a suspended one stays as it is. Returns the tenant after the commit. */
  async suspend(id: string, principal: string, trigger: SuspendTrigger, why: string): Promise<TenantRecord> {
    const now = this.ctx.clock();
    const result = await this.ctx.store.transaction(async (tx) => {
      const tenant = await mustGet(tx, id);
      if (tenant.status === 'SUSPENDED') return { tenant, changed: false };
      if (tenant.deleting) throw new PreconditionError('TENANT_DELETING', `tenant "${id}" is being deleted`);
      if (tenant.status !== 'ACTIVE' || tenant.spec.runState !== 'RUNNING') {
        throw new PreconditionError('TENANT_NOT_ACTIVE', `tenant "${id}" is ${tenant.status}; only an ACTIVE, running tenant can be suspended`);
      }
      const members = membersPhrase((await tx.placements.list({ tenantId: id })).filter((p) => p.role === 'REPLICA').length);
      const reason = `${suspendedReason(now, why)}${members === '' ? '' : `; ${members} stopped`}`;
      const updated: TenantRecord = { ...tenant, status: 'SUSPENDED', statusReason: reason, instanceRevision: tenant.instanceRevision + 1, updatedAt: now };
      await tx.tenants.update(updated);
      await tx.events.append({
        time: now,
        principal,
        action: 'tenant.suspend',
        tenantId: id,
        message: `suspending${members === '' ? '' : ` ${members}`}: ${why}`,
        details: { trigger },
      });
      const synced = (await syncTenant(tx, id, { now, health: this.ctx.health, principal })) ?? updated;
      // Its CPU and memory go back to the host's pool.
      tx.record({ kind: 'desired', tenantId: id });
      tx.record({ kind: 'room' });
      return { tenant: synced, changed: true };
    });
    if (result.changed) {
      this.#suspending.set(id, { at: now, trigger });
      this.#waking.delete(id);
      this.ctx.metrics?.suspends.inc({ trigger });
    }
    return result.tenant;
  }

  /**
   * A router holds clients of a suspended tenant: wake it, once. A tenant not suspended is
   * already waking (or awake, or not wakeable: the route tells the router); a wake beyond the fleet's
   * rate is throttled; one whose host cannot take it back is refused with the reason.
   */
  async wake(id: string, principal: string, waiting: number): Promise<WakeResult> {
    // Many clients arrive at once: the first request decides, the others hear it is waking.
    if (this.#deciding.has(id)) return this.#count({ outcome: 'IN_PROGRESS', message: `tenant "${id}" is waking`, retryAfterMs: 0 });
    this.#deciding.add(id);
    try {
      return await this.#wake(id, principal, waiting);
    } finally {
      this.#deciding.delete(id);
    }
  }

  async #wake(id: string, principal: string, waiting: number): Promise<WakeResult> {
    const now = this.ctx.clock();
    const tenant = await this.ctx.store.read.tenants.get(id);
    if (!tenant || tenant.deleting) return this.#count({ outcome: 'REFUSED', message: `tenant "${id}" does not exist`, retryAfterMs: 0 });
    if (tenant.status !== 'SUSPENDED') return this.#count({ outcome: 'IN_PROGRESS', message: `tenant "${id}" is ${tenant.status}`, retryAfterMs: 0 });
    const room = await this.#roomProblem(tenant);
    if (room !== undefined) {
      await this.#refuse(tenant, principal, room, now);
      return this.#count({ outcome: 'REFUSED', message: `tenant "${id}" cannot be woken: ${room}`, retryAfterMs: 0 });
    }
    const take = takeToken(this.#bucket, this.wakeLimit, now);
    this.#bucket = take.bucket;
    if (!take.granted) return this.#count({ outcome: 'THROTTLED', message: 'too many wakes in the fleet right now', retryAfterMs: take.retryAfterMs });
    const started = await this.#start(id, principal, waiting, now);
    return this.#count(
      started
        ? { outcome: 'STARTED', message: `waking tenant "${id}"`, retryAfterMs: 0 }
        : { outcome: 'IN_PROGRESS', message: `tenant "${id}" is waking`, retryAfterMs: 0 },
    );
  }

  /** An operator's wake: not rate limited; refused (FAILED_PRECONDITION) when the host has no room. */
  async resume(id: string, principal: string): Promise<TenantRecord> {
    const now = this.ctx.clock();
    const tenant = await this.ctx.store.read.tenants.get(id);
    if (!tenant) throw notFound.tenant(id);
    if (tenant.status === 'SUSPENDED') {
      const room = await this.#roomProblem(tenant);
      if (room !== undefined) {
        await this.#refuse(tenant, principal, room, now);
        throw new PreconditionError('WAKE_NO_ROOM', `tenant "${id}" cannot be woken: ${room}`);
      }
      await this.#start(id, principal, 0, now);
    }
    return (await this.ctx.store.read.tenants.get(id)) ?? tenant;
  }

  /** Writes the events of suspends and wakes that finished; forgets the ones that never will. */
  async tick(): Promise<void> {
    const now = this.ctx.clock();
    const store = this.ctx.store;
    const done: { tenantId: string; durationMs: number; trigger: SuspendTrigger; instances: number }[] = [];
    for (const [id, s] of this.#suspending) {
      const tenant = await store.read.tenants.get(id);
      if (!tenant || tenant.status !== 'SUSPENDED' || now - s.at > PENDING_MAX_MS) {
        this.#suspending.delete(id);
        continue;
      }
      const placements = await store.read.placements.list({ tenantId: id });
      if (placements.every((p) => p.realizedRevision >= tenant.instanceRevision && p.instanceState === 'STOPPED')) {
        this.#suspending.delete(id);
        done.push({ tenantId: id, durationMs: now - s.at, trigger: s.trigger, instances: placements.length });
      }
    }
    for (const [id, w] of this.#waking) if (now - w.at > PENDING_MAX_MS) this.#waking.delete(id);
    for (const [id, r] of this.#refused) if (now - r.at > REFUSAL_MEMORY_MS) this.#refused.delete(id);
    const woken = this.#woken.splice(0);
    if (done.length === 0 && woken.length === 0) return;
    await store.transaction(async (tx) => {
      for (const d of done) {
        await tx.events.append({
          time: now,
          principal: 'system:suspend',
          action: 'tenant.suspended',
          tenantId: d.tenantId,
          message: `suspended: ${d.instances === 1 ? 'instance' : `all ${d.instances} instances`} stopped in ${d.durationMs} ms`,
          details: { durationMs: String(d.durationMs), trigger: d.trigger },
        });
      }
      for (const w of woken) {
        await tx.events.append({
          time: w.at,
          principal: w.principal,
          action: 'tenant.woken',
          tenantId: w.tenantId,
          message: `woken in ${w.durationMs} ms${w.waiting > 0 ? ` (${w.waiting} client(s) waiting)` : ''}`,
          details: { durationMs: String(w.durationMs), waitingClients: String(w.waiting) },
        });
      }
    });
  }

  #count(r: WakeResult): WakeResult {
    this.ctx.metrics?.wakes.inc({ outcome: r.outcome.toLowerCase() });
    return r;
  }

  /** Why the hosts of the tenant's members (the primary's first) cannot take it back now; undefined when they can. */
  async #roomProblem(tenant: TenantRecord): Promise<string | undefined> {
    const read = this.ctx.store.read;
    const placements = await read.placements.list({ tenantId: tenant.id });
    const allocations = await read.placements.allocations();
    const members: WakeMember[] = [];
    for (const p of placements) {
      const host = await read.hosts.get(p.hostId);
      const allocated = allocations.get(p.hostId) ?? { cpuMillis: 0, memoryMib: 0, diskMib: 0 };
      members.push({ role: p.role, hostId: p.hostId, host: host ? { id: host.id, state: host.state, capacity: host.capacity, allocated } : undefined });
    }
    return membersWakeProblem(members, tenant.spec.resources, this.ctx.placementPolicy.cpuOvercommit ?? 1);
  }

  /** Records a refused wake once per reason and minute: in the status reason and an event. */
  async #refuse(tenant: TenantRecord, principal: string, reason: string, now: number): Promise<void> {
    const last = this.#refused.get(tenant.id);
    if (last && last.reason === reason && now - last.at < REFUSAL_MEMORY_MS) return;
    this.#refused.set(tenant.id, { reason, at: now });
    await this.ctx.store.transaction(async (tx) => {
      const current = await tx.tenants.get(tenant.id);
      if (!current || current.status !== 'SUSPENDED') return;
      const base = current.statusReason.replace(/; wake refused: .*$/, '');
      await tx.tenants.update({ ...current, statusReason: `${base}; wake refused: ${reason}`, updatedAt: now });
      await tx.events.append({ time: now, principal, action: 'tenant.wake', tenantId: tenant.id, outcome: 'FAILURE', message: `cannot wake: ${reason}` });
      await syncTenant(tx, tenant.id, { now, health: this.ctx.health, principal });
    });
  }

  /** SUSPENDED -> IN_PROGRESS with a new instance revision; false when somebody else woke it first. */
  async #start(id: string, principal: string, waiting: number, now: number): Promise<boolean> {
    const started = await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(id);
      if (!tenant || tenant.status !== 'SUSPENDED') return false;
      const replicas = (await tx.placements.list({ tenantId: id })).filter((p) => p.role === 'REPLICA').length;
      const members = membersPhrase(replicas);
      const why = `${waiting > 0 ? `${waiting} client(s) waiting at ${principal}` : `asked by ${principal}`}${members === '' ? '' : `; ${members} start together`}`;
      await tx.tenants.update({
        ...tenant,
        status: 'IN_PROGRESS',
        statusReason: `waking up (${why})`,
        instanceRevision: tenant.instanceRevision + 1,
        updatedAt: now,
      });
      await tx.events.append({
        time: now,
        principal,
        action: 'tenant.wake',
        tenantId: id,
        message: `waking up: ${why}`,
        details: { waitingClients: String(waiting) },
      });
      await syncTenant(tx, id, { now, health: this.ctx.health, principal });
      tx.record({ kind: 'desired', tenantId: id });
      return true;
    });
    if (!started) return false;
    this.#suspending.delete(id);
    this.#refused.delete(id);
    // Set before the route can turn routable: the commit's own route change is still IN_PROGRESS.
    this.#waking.set(id, { at: now, principal, waiting });
    return true;
  }

  /** A woken tenant's route turned routable: the wake is done (its event is written on the next tick). */
  #noteRoutes(summary: Commit): void {
    if (this.#waking.size === 0) return;
    for (const change of summary.routeChanges) {
      const w = this.#waking.get(change.tenantId);
      if (!w || change.route?.state !== 'ROUTABLE') continue;
      this.#waking.delete(change.tenantId);
      const at = this.ctx.clock();
      this.ctx.metrics?.wakeSeconds.observe((at - w.at) / 1000);
      this.#woken.push({ tenantId: change.tenantId, at, durationMs: at - w.at, principal: w.principal, waiting: w.waiting });
    }
  }
}

/** '' for a single-node tenant, else "the primary and its N replica(s)". */
function membersPhrase(replicas: number): string {
  return replicas === 0 ? '' : `the primary and its ${replicas} replica${replicas === 1 ? '' : 's'}`;
}

async function mustGet(tx: StoreTx, id: string): Promise<TenantRecord> {
  const tenant = await tx.tenants.get(id);
  if (!tenant) throw notFound.tenant(id);
  return tenant;
}
