/**
 * Scale to zero: suspending a tenant (its instances stop with a checkpoint, the data stays, its
 * CPU and memory go back to the hosts' pools; a replicated tenant's members all stop together, and
 * wake primary first) and waking it again (on a router's request when a client arrives, or an
 * operator's). Each is one transaction that bumps the instance revision, so the agents get the new
 * run state through the desired-set push; events say when each started and, once the instances
 * stopped or the route is routable again, how long it took. A wake whose host gave the tenant's
 * room away meanwhile moves the tenant to a host with room (libs/tenancy decideWake, run by the
 * move manager), or is refused with the reason when no host has any.
 */
import { decideWake, suspendedReason, takeToken, type BucketLimit, type TokenBucket, type WakeDecision, type WakeMember, type WakeMove } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { notFound, PreconditionError } from '../domain/errors.js';
import type { TenantRecord } from '../domain/model.js';
import type { Commit, StoreTx } from '../store/contract.js';
import { hostCandidates } from './host-candidates.js';
import type { ResumedWake, WakeByMove } from './move-manager.js';
import { syncTenant } from './tenant-sync.js';

/** What waking by a move needs of the move manager. */
export interface WakeMover {
  start(tenantId: string, toHostId: string, memberHostId: string, principal: string, wake: WakeByMove): Promise<unknown>;
  /** Resolves when the tenant's move ends; rejects with why it was abandoned. */
  wait(tenantId: string): Promise<void>;
  /** Calls `listener` for each wake by a move taken back after a coordinator restart. */
  onResumedWake?(listener: (w: ResumedWake) => void): void;
}

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
  /** Tenants woken and not routable yet: since when, who asked, and the move that wakes it, if one does. */
  readonly #waking = new Map<string, Waking>();
  /** Wakes done (route routable), waiting for their event to be written. */
  readonly #woken: (Waking & { tenantId: string; doneAt: number; durationMs: number })[] = [];
  readonly #refused = new Map<string, { reason: string; at: number }>();
  /** Wakes by a move that failed: routers' wakes are refused with the reason for a while (no copy loop). */
  readonly #failedMoves = new Map<string, { reason: string; at: number }>();
  /** Tenants a wake request is being decided for (its reads and write are in flight). */
  readonly #deciding = new Set<string>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly wakeLimit: BucketLimit,
    /** Runs wakes that move the tenant; absent = such wakes are refused with the reason. */
    private readonly mover?: WakeMover,
  ) {
    this.#unsubscribe = ctx.store.subscribe((commit) => this.#noteRoutes(commit));
    mover?.onResumedWake?.((w) => this.#resumedWake(w));
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
    const failed = this.#failedMoves.get(id);
    const decision: WakeDecision = failed && now - failed.at < REFUSAL_MEMORY_MS ? { kind: 'refuse', reason: failed.reason } : await this.#decide(tenant);
    if (decision.kind === 'refuse') {
      await this.#refuse(tenant, principal, decision.reason, now);
      return this.#count({ outcome: 'REFUSED', message: `tenant "${id}" cannot be woken: ${decision.reason}`, retryAfterMs: 0 });
    }
    const take = takeToken(this.#bucket, this.wakeLimit, now);
    this.#bucket = take.bucket;
    if (!take.granted) return this.#count({ outcome: 'THROTTLED', message: 'too many wakes in the fleet right now', retryAfterMs: take.retryAfterMs });
    if (decision.kind === 'move') {
      const moved = await this.#startMove(tenant, decision, principal, waiting, now);
      if (moved !== true) return this.#count({ outcome: 'REFUSED', message: `tenant "${id}" cannot be woken: ${moved}`, retryAfterMs: 0 });
      return this.#count({ outcome: 'STARTED', message: `waking tenant "${id}" on ${decision.toHostId}: ${decision.reason}`, retryAfterMs: 0 });
    }
    const started = await this.#start(id, principal, waiting, now);
    return this.#count(
      started
        ? { outcome: 'STARTED', message: `waking tenant "${id}"`, retryAfterMs: 0 }
        : { outcome: 'IN_PROGRESS', message: `tenant "${id}" is waking`, retryAfterMs: 0 },
    );
  }

  /**
   * An operator's wake: not rate limited, and tried again even right after a failed wake by a move;
   * moves the tenant when its host has no room, refused (FAILED_PRECONDITION) when no host has any.
   */
  async resume(id: string, principal: string): Promise<TenantRecord> {
    const now = this.ctx.clock();
    const tenant = await this.ctx.store.read.tenants.get(id);
    if (!tenant) throw notFound.tenant(id);
    if (tenant.status === 'SUSPENDED') {
      const decision = await this.#decide(tenant);
      const refusal =
        decision.kind === 'refuse' ? decision.reason : decision.kind === 'move' ? await this.#startMove(tenant, decision, principal, 0, now) : true;
      if (refusal !== true) {
        await this.#refuse(tenant, principal, refusal, now);
        throw new PreconditionError('WAKE_NO_ROOM', `tenant "${id}" cannot be woken: ${refusal}`);
      }
      if (decision.kind === 'in_place') await this.#start(id, principal, 0, now);
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
    for (const [id, r] of this.#failedMoves) if (now - r.at > REFUSAL_MEMORY_MS) this.#failedMoves.delete(id);
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
        const moved = w.move
          ? `; ${w.move.role === 'PRIMARY' ? 'moved' : 'its replica moves'} from ${w.move.fromHostId} to ${w.move.toHostId}: ${w.move.reason}`
          : '';
        await tx.events.append({
          time: w.doneAt,
          principal: w.principal,
          action: 'tenant.woken',
          tenantId: w.tenantId,
          message: `woken in ${w.durationMs} ms${w.waiting > 0 ? ` (${w.waiting} client(s) waiting)` : ''}${moved}`,
          details: {
            durationMs: String(w.durationMs),
            waitingClients: String(w.waiting),
            ...(w.move ? { how: 'move', from: w.move.fromHostId, to: w.move.toHostId } : { how: 'in_place' }),
          },
        });
      }
    });
  }

  #count(r: WakeResult): WakeResult {
    this.ctx.metrics?.wakes.inc({ outcome: r.outcome.toLowerCase() });
    return r;
  }

  /**
   * How the tenant wakes: where it is, by moving a member whose host has no room left, or not at all
   * (why). Its members' hosts are summed alone; the whole fleet (every host's allocation, a read of
   * every placement and tenant: seconds at a million tenants) is read only when a member cannot
   * wake where it is and a host to move it to is needed.
   */
  async #decide(tenant: TenantRecord): Promise<WakeDecision> {
    const read = this.ctx.store.read;
    const placements = await read.placements.list({ tenantId: tenant.id });
    const members: WakeMember[] = [];
    for (const p of placements) {
      const host = await read.hosts.get(p.hostId);
      const allocated = await read.placements.allocationOf(p.hostId);
      members.push({ role: p.role, hostId: p.hostId, host: host ? { id: host.id, state: host.state, capacity: host.capacity, allocated } : undefined });
    }
    const facts = { tenantId: tenant.id, resources: tenant.spec.resources, placement: tenant.spec.placement, version: tenant.spec.version, members };
    const inPlace = decideWake({ ...facts, candidates: [], connected: new Set<string>() }, this.ctx.placementPolicy);
    if (inPlace.kind === 'in_place') return inPlace;
    const candidates = await hostCandidates(read, this.ctx.versions);
    const decision = decideWake(
      { ...facts, candidates, connected: new Set(candidates.filter((h) => this.ctx.hub.isConnected(h.id)).map((h) => h.id)) },
      this.ctx.placementPolicy,
    );
    if (decision.kind === 'move' && this.mover === undefined) return { kind: 'refuse', reason: decision.reason };
    return decision;
  }

  /**
   * Wakes the tenant by moving the member whose host has no room (the move manager's live move, its
   * source started on the old host only for the copy): true once started, else why not.
   */
  async #startMove(tenant: TenantRecord, d: WakeMove, principal: string, waiting: number, now: number): Promise<true | string> {
    const mover = this.mover;
    if (!mover) return d.reason;
    const id = tenant.id;
    const what = d.role === 'PRIMARY' ? 'the primary' : 'the replica';
    const asked = waiting > 0 ? `${waiting} client(s) waiting at ${principal}` : `asked by ${principal}`;
    try {
      await mover.start(id, d.toHostId, d.fromHostId, principal, {
        reason: d.reason,
        audit: async (tx, at) => {
          await tx.events.append({
            time: at,
            principal,
            action: 'tenant.wake',
            tenantId: id,
            hostId: d.toHostId,
            message: `waking up by moving ${what} from ${d.fromHostId} to ${d.toHostId} (${asked}): ${d.reason}`,
            details: { waitingClients: String(waiting), how: 'move', from: d.fromHostId, to: d.toHostId },
          });
        },
      });
    } catch (err) {
      // The target filled or the tenant changed between the decision and the move's own check.
      if (!(err instanceof PreconditionError)) throw err;
      const current = await this.ctx.store.read.tenants.get(id);
      if (current && current.status !== 'SUSPENDED') return true;
      return `${d.reason}; moving it to ${d.toHostId} was refused: ${err.message}`;
    }
    this.#suspending.delete(id);
    this.#refused.delete(id);
    this.#failedMoves.delete(id);
    this.#waking.set(id, { at: now, principal, waiting, move: d });
    this.#watchMove(id, d.toHostId);
    return true;
  }

  /** A wake by a move that fails: routers' wakes of the tenant are refused with the reason for a while. */
  #watchMove(id: string, toHostId: string): void {
    this.mover?.wait(id).catch((err: unknown) => {
      const reason = `its wake by a move to ${toHostId} failed: ${err instanceof Error ? err.message : String(err)}`;
      this.#failedMoves.set(id, { reason, at: this.ctx.clock() });
      this.#waking.delete(id);
    });
  }

  /** A wake by a move the move manager took back after a restart: timed from its start, as if no restart happened. */
  #resumedWake(w: ResumedWake): void {
    const move: WakeMove = { kind: 'move', role: w.primary ? 'PRIMARY' : 'REPLICA', fromHostId: w.fromHostId, toHostId: w.toHostId, reason: w.reason };
    this.#waking.set(w.tenantId, { at: w.startedAt, principal: w.principal, waiting: 0, move });
    this.#watchMove(w.tenantId, w.toHostId);
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
      const first = replicas === 0 ? '' : `; the primary starts first, then its ${replicas} replica${replicas === 1 ? '' : 's'}`;
      const why = `${waiting > 0 ? `${waiting} client(s) waiting at ${principal}` : `asked by ${principal}`}${first}`;
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
        details: { waitingClients: String(waiting), how: 'in_place' },
      });
      await syncTenant(tx, id, { now, health: this.ctx.health, principal });
      tx.record({ kind: 'desired', tenantId: id });
      return true;
    });
    if (!started) return false;
    this.#suspending.delete(id);
    this.#refused.delete(id);
    // Set before the route can turn routable: the commit's own route change is still IN_PROGRESS.
    this.#waking.set(id, { at: now, principal, waiting, move: undefined });
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
      this.#woken.push({ ...w, tenantId: change.tenantId, doneAt: at, durationMs: at - w.at });
    }
  }
}

/** A wake not finished yet: since when, who asked, how many clients waited, and the move that wakes it. */
interface Waking {
  at: number;
  principal: string;
  waiting: number;
  move: WakeMove | undefined;
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
