/**
 * A host drain's live moves, a few at a time: the plan (libs/tenancy planDrain) is made once, when
 * the drain starts, and the moves are started from it as earlier ones finish. What could not move
 * is kept with the reason, and the progress is shown on the host (pgsctl host list).
 */

/** What the drain needs of the move executor. */
export interface MoveStarter {
  start(tenantId: string, toHostId: string, memberHostId: string, principal: string): Promise<unknown>;
  inFlight(tenantId: string): boolean;
  /** The outcome of the tenant's last finished move. */
  outcome(tenantId: string): { ok: boolean; reason: string } | undefined;
}

/** One planned move of a drain. */
export interface QueuedMove {
  tenantId: string;
  toHostId: string;
  /** The drained host for a replicated tenant's member; '' for a single-node tenant. */
  memberHostId: string;
  attempts: number;
  /** Moves of this tenant that failed so far. */
  failures: number;
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

interface DrainJob {
  hostId: string;
  principal: string;
  parallel: number;
  queue: QueuedMove[];
  moving: Set<string>;
  moved: string[];
  blocked: { tenantId: string; reason: string }[];
  total: number;
  /** The moves started, for a retry after a failure. */
  tried: Map<string, QueuedMove>;
}

/** A refused start is tried again on later ticks this many times (the tenant may be busy for a moment). */
const MAX_ATTEMPTS = 60;
/** A move that failed is started again this many times in all before the tenant counts as blocked. */
const MAX_MOVE_FAILURES = 3;

/** Runs drains. */
export class DrainRunner {
  private readonly jobs = new Map<string, DrainJob>();

  constructor(private readonly moves: MoveStarter) {}

  /** Starts (or restarts) the drain of `hostId` with its plan; moved counts what needed no live move. */
  start(
    hostId: string,
    plan: { queue: Omit<QueuedMove, 'attempts' | 'failures'>[]; blocked: { tenantId: string; reason: string }[]; moved: string[] },
    parallel: number,
    principal: string,
  ): void {
    const queue = plan.queue.map((m) => ({ ...m, attempts: 0, failures: 0 }));
    this.jobs.set(hostId, {
      hostId,
      principal,
      parallel: Math.max(1, parallel),
      queue,
      moving: new Set(),
      moved: [...plan.moved],
      blocked: [...plan.blocked],
      total: queue.length + plan.blocked.length + plan.moved.length,
      tried: new Map(),
    });
  }

  /** Stops starting moves off the host (uncordon); moves in flight finish. */
  stop(hostId: string): void {
    this.jobs.delete(hostId);
  }

  /** The drain's progress, if the host is being drained (or was, since this coordinator started). */
  progress(hostId: string): DrainProgress | undefined {
    const job = this.jobs.get(hostId);
    if (!job) return undefined;
    return { total: job.total, moved: job.moved.length, moving: job.moving.size, blocked: job.blocked.length, blockedTenants: [...job.blocked] };
  }

  /** Notes finished moves and starts the next ones. */
  async tick(): Promise<void> {
    for (const job of [...this.jobs.values()]) {
      for (const tenantId of [...job.moving]) {
        if (this.moves.inFlight(tenantId)) continue;
        job.moving.delete(tenantId);
        const outcome = this.moves.outcome(tenantId);
        const queued = job.tried.get(tenantId);
        if (outcome?.ok) job.moved.push(tenantId);
        // An abandoned move left the tenant as it was: try it again a few times before giving up.
        else if (queued && queued.failures + 1 < MAX_MOVE_FAILURES) job.queue.push({ ...queued, failures: queued.failures + 1, attempts: 0 });
        else job.blocked.push({ tenantId, reason: `the move failed: ${outcome?.reason ?? 'unknown'}` });
      }
      const waiting: QueuedMove[] = [];
      while (job.moving.size < job.parallel && job.queue.length > 0) {
        const next = job.queue.shift()!;
        try {
          await this.moves.start(next.tenantId, next.toHostId, next.memberHostId, job.principal);
          job.moving.add(next.tenantId);
          job.tried.set(next.tenantId, next);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          const reason = err instanceof Error ? err.message : String(err);
          if ((code === 'TENANT_NOT_ACTIVE' || code === 'MOVE_IN_PROGRESS') && next.attempts + 1 < MAX_ATTEMPTS)
            waiting.push({ ...next, attempts: next.attempts + 1 });
          else job.blocked.push({ tenantId: next.tenantId, reason });
        }
      }
      job.queue.push(...waiting);
    }
  }
}
