/**
 * A host drain's live moves, a few at a time, until the host is empty. The plan (libs/tenancy
 * planDrain, through a DrainPlanner) is made when the drain starts; after that the runner works
 * like a reconciler: a move that failed or was refused for a reason that a new target may not
 * have (the target filled up, went away, was cordoned) is planned again against the fleet as it
 * is then, a tenant that is busy for a while (failing over, being created) is waited for, and
 * whatever is still on the host with nothing queued for it is planned again from time to time. A
 * drain outlives the coordinator that started it: hosts flagged draining in the store get their
 * drain back on the next leader. Only a tenant that failed to move three times, or that no host
 * can take, is given up on, with the reason, shown on the host (pgsctl host list).
 */

/** What the drain needs of the move executor. */
export interface MoveStarter {
  start(tenantId: string, toHostId: string, memberHostId: string, principal: string): Promise<unknown>;
  inFlight(tenantId: string): boolean;
  /** The outcome of the tenant's last finished move. */
  outcome(tenantId: string): { ok: boolean; reason: string } | undefined;
}

/** One planned move: the tenant's instance on the drained host goes to `toHostId`. */
export interface PlannedMove {
  tenantId: string;
  toHostId: string;
  /** The drained host for a replicated tenant's member; '' for a single-node tenant. */
  memberHostId: string;
}

/** A plan for what is on a draining host. */
export interface DrainPlan {
  queue: PlannedMove[];
  /** Tenants no host can take, with the reason. */
  blocked: { tenantId: string; reason: string }[];
  /** Tenants that left without a live move (they never held data and are placed again). */
  moved: string[];
}

/** What the drain needs of the store. */
export interface DrainPlanner {
  /** The hosts flagged draining. */
  draining(): Promise<string[]>;
  /** Plans what is on the host, leaving out the tenants in `skip`. */
  plan(hostId: string, skip: ReadonlySet<string>, principal: string): Promise<DrainPlan>;
}

/** A drain's progress, as the host shows it. */
export interface DrainProgress {
  total: number;
  moved: number;
  moving: number;
  blocked: number;
  /** Tenants that could not move, with the reason. */
  blockedTenants: { tenantId: string; reason: string }[];
}

interface QueuedMove extends PlannedMove {
  /** When the tenant was first found busy (undefined: it was not). */
  busySince: number | undefined;
}

interface DrainJob {
  hostId: string;
  principal: string;
  parallel: number;
  queue: QueuedMove[];
  moving: Set<string>;
  moved: Set<string>;
  blocked: Map<string, string>;
  /** Tenants to plan again (their move failed or their target refused). */
  replan: Set<string>;
  /** Failed or refused moves per tenant. */
  failures: Map<string, number>;
  /** When the host was last planned (0: never, plan at the next tick). */
  plannedAt: number;
}

/** Refusals that pass: the tenant is busy or the target is reconnecting. The same move is tried again. */
const WAIT_CODES = new Set(['TENANT_NOT_ACTIVE', 'MOVE_IN_PROGRESS', 'TARGET_NOT_READY']);
/** A tenant busy this long counts as a failed move (and is planned again). */
const MAX_BUSY_MS = 5 * 60_000;

/**
 * Move starts a drain tries in one tick at most (at least its parallelism). Each start reads the
 * fleet's allocations (every placement) and a refusal writes an event: a drain of 512 tenants
 * whose targets had not reconnected yet (a restarted coordinator) tried all 512 in one stretch of
 * the event loop, 25-30 s at 10,000 tenants, past the gRPC keepalive that drops every connection.
 */
export const MOVE_TRIES_PER_TICK = 8;

/** Gives the event loop a turn between two move starts (each a store transaction). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** A tenant whose move failed (or was refused) this many times is given up on. */
const MAX_MOVE_FAILURES = 3;
/** How often a drain with nothing queued or moving looks at what is still on its host. */
const RECHECK_MS = 5_000;
/** How often the store is asked which hosts are draining (a drain started by another coordinator). */
const RESUME_CHECK_MS = 5_000;
/** The principal of a drain taken over from the store. */
const RESUMED_BY = 'system:drain';

/** Runs drains. */
export class DrainRunner {
  private readonly jobs = new Map<string, DrainJob>();
  private resumeCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly moves: MoveStarter,
    private readonly planner: DrainPlanner,
    private readonly defaultParallel: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Starts (or restarts) the drain of `hostId` with its first plan. */
  start(hostId: string, plan: DrainPlan, parallel: number, principal: string): void {
    const job = this.newJob(hostId, principal, parallel);
    this.take(job, plan);
    job.plannedAt = this.clock();
    this.jobs.set(hostId, job);
  }

  /** Stops starting moves off the host (uncordon); moves in flight finish. */
  stop(hostId: string): void {
    this.jobs.delete(hostId);
  }

  /** The drain's progress, if the host is being drained (or was, since this coordinator started). */
  progress(hostId: string): DrainProgress | undefined {
    const job = this.jobs.get(hostId);
    if (!job) return undefined;
    const blockedTenants = [...job.blocked].map(([tenantId, reason]) => ({ tenantId, reason }));
    return {
      total: job.moved.size + job.moving.size + job.queue.length + job.replan.size + job.blocked.size,
      moved: job.moved.size,
      moving: job.moving.size,
      blocked: job.blocked.size,
      blockedTenants,
    };
  }

  /** Notes finished moves, starts the next ones, and plans what is left. */
  async tick(): Promise<void> {
    const now = this.clock();
    if (now - this.resumeCheckedAt >= RESUME_CHECK_MS) {
      this.resumeCheckedAt = now;
      await this.resume();
    }
    for (const job of [...this.jobs.values()]) {
      this.noteFinished(job);
      const budget = { tries: Math.max(MOVE_TRIES_PER_TICK, job.parallel) };
      await this.startNext(job, now, budget);
      const idle = job.queue.length === 0 && job.moving.size === 0;
      if (job.replan.size > 0 || job.plannedAt === 0 || (idle && now - job.plannedAt >= RECHECK_MS)) await this.planAgain(job, now);
      // What a plan queued starts now rather than a tick later.
      if (job.moving.size < job.parallel && job.queue.length > 0) await this.startNext(job, now, budget);
    }
  }

  /** Drains the store flags that have no job here (a coordinator restart, a new leader), and drops jobs no longer flagged. */
  private async resume(): Promise<void> {
    const draining = new Set(await this.planner.draining());
    for (const hostId of draining) if (!this.jobs.has(hostId)) this.jobs.set(hostId, this.newJob(hostId, RESUMED_BY, this.defaultParallel));
    for (const hostId of [...this.jobs.keys()]) if (!draining.has(hostId)) this.jobs.delete(hostId);
  }

  private newJob(hostId: string, principal: string, parallel: number): DrainJob {
    return {
      hostId,
      principal,
      parallel: Math.max(1, parallel > 0 ? parallel : this.defaultParallel),
      queue: [],
      moving: new Set(),
      moved: new Set(),
      blocked: new Map(),
      replan: new Set(),
      failures: new Map(),
      plannedAt: 0,
    };
  }

  private noteFinished(job: DrainJob): void {
    for (const tenantId of [...job.moving]) {
      if (this.moves.inFlight(tenantId)) continue;
      job.moving.delete(tenantId);
      const outcome = this.moves.outcome(tenantId);
      if (outcome?.ok) job.moved.add(tenantId);
      // An abandoned move left the tenant as it was.
      else this.failed(job, tenantId, `the move failed: ${outcome?.reason ?? 'unknown'}`);
    }
  }

  /** A failed or refused move: planned again, or given up on after the last try. */
  private failed(job: DrainJob, tenantId: string, reason: string): void {
    const failures = (job.failures.get(tenantId) ?? 0) + 1;
    job.failures.set(tenantId, failures);
    if (failures >= MAX_MOVE_FAILURES) job.blocked.set(tenantId, reason);
    else job.replan.add(tenantId);
  }

  /** Starts queued moves up to the job's parallelism, trying at most `budget.tries` (what is left of this tick's). */
  private async startNext(job: DrainJob, now: number, budget: { tries: number }): Promise<void> {
    const waiting: QueuedMove[] = [];
    for (let tried = 0; job.moving.size < job.parallel && job.queue.length > 0 && budget.tries > 0; tried++) {
      if (tried > 0) await turn();
      budget.tries -= 1;
      const next = job.queue.shift()!;
      try {
        await this.moves.start(next.tenantId, next.toHostId, next.memberHostId, job.principal);
        job.moving.add(next.tenantId);
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        const reason = err instanceof Error ? err.message : String(err);
        // Deleted meanwhile: it left the host all the same.
        if (code === 'TENANT_NOT_FOUND') job.moved.add(next.tenantId);
        else if (WAIT_CODES.has(code) && now - (next.busySince ?? now) < MAX_BUSY_MS) waiting.push({ ...next, busySince: next.busySince ?? now });
        else this.failed(job, next.tenantId, reason);
      }
    }
    job.queue.push(...waiting);
  }

  /** Plans what is on the host and not queued, moving or given up on. */
  private async planAgain(job: DrainJob, now: number): Promise<void> {
    const replanning = new Set(job.replan);
    const skip = new Set([...job.moving, ...job.queue.map((q) => q.tenantId), ...job.blocked.keys(), ...job.moved]);
    const plan = await this.planner.plan(job.hostId, skip, job.principal);
    job.plannedAt = now;
    job.replan.clear();
    this.take(job, plan);
    // A tenant to plan again that the plan no longer finds on the host has left it (moved by hand, deleted).
    const planned = new Set([...plan.queue.map((q) => q.tenantId), ...plan.blocked.map((b) => b.tenantId), ...plan.moved]);
    for (const tenantId of replanning) if (!planned.has(tenantId)) job.moved.add(tenantId);
  }

  private take(job: DrainJob, plan: DrainPlan): void {
    for (const m of plan.queue) job.queue.push({ ...m, busySince: undefined });
    for (const b of plan.blocked) job.blocked.set(b.tenantId, b.reason);
    for (const id of plan.moved) job.moved.add(id);
  }
}
