/**
 * Automatic failover and planned switchover, driven by the reconciler's tick. Decisions are
 * libs/tenancy's (primaryLoss, fencingState, pickPromotionCandidate); this file executes them:
 *
 *   detect (the agent's stream, the replicas' walreceivers, heartbeats, the agent's health reports)
 *     -> FAILING_OVER (route FAILOVER: routers answer 57P03, retryable)
 *   fence the old primary (Fence to its agent when connected; found gone with its agent: fenced from
 *     that point; otherwise wait for its lease to run out)
 *   choose the replica (fresh LSN reports after the fencing point; quorum-safe under sync replication)
 *   swap roles in the store (the decision is durable before Promote is sent), push the new specs
 *   (replicas and the old primary now point at the new primary), send Promote
 *   promoted (ack or a PRIMARY report) -> leave FAILING_OVER, the route switches to the new primary
 *
 * Every step is an audited event with its duration. Each operation is a row of the store's
 * operations table (phase, candidate, fencing point, deadline), written in the same transaction as
 * the change it records, so a restarted coordinator resumes it where it was. Command ids and
 * resend times live in memory only: a resumed operation sends its command again (both are
 * idempotent on the agent).
 */
import { fencingState, pickPromotionCandidate, primaryLoss, stillGone, tryParseLsn, type LossCause, type LossVerdict } from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { PreconditionError } from '../domain/errors.js';
import { failoverMembers, quorumsInForce } from './failover-members.js';
import type { OperationRecord, PlacementRecord, TenantRecord } from '../domain/model.js';
import type { StoreTx } from '../store/contract.js';
import { isHealthy, syncTenant } from './tenant-sync.js';

const PRINCIPAL = 'system:failover';
/** How often an unanswered Fence or Promote is sent again (same stream or a new one). */
const RESEND_MS = 2000;
/**
 * A replica's or router's signal confirms a broken agent stream when at most this far apart: one
 * event (the host's processes dying) shows on every channel within it, while a replica that lost
 * its sender long before is about something else.
 */
const SIGNAL_WINDOW_MS = 2000;

type Phase = 'fencing' | 'choosing' | 'promoting';

/** One failover or switchover in flight. */
interface Operation {
  tenantId: string;
  kind: 'failover' | 'switchover';
  cause: LossCause | 'switchover' | 'resumed';
  phase: Phase;
  /** The old primary was found gone with its agent at this time (primaryLoss goneAt); kept in the row. */
  goneAt: number | undefined;
  /** When the failure began (last heartbeat of a lost host, first unhealthy report) or the request came. */
  failedAt: number;
  startedAt: number;
  oldPrimary: string;
  toHostId: string | undefined;
  fenceCommand: string | undefined;
  fenceSentAt: number;
  fenceAckedAt: number | undefined;
  /** The old primary's last WAL position, from its Fence answer (switchover waits for it). */
  finalLsn: string;
  fencedAt: number;
  candidate: string;
  promoteCommand: string | undefined;
  promoteSentAt: number;
  chosenAt: number;
  lastWaitReason: string;
  deadline: number;
  /** A step is being decided or applied; an ask meanwhile (an agent's answer, a tick) runs right after. */
  advancing: boolean;
  again: boolean;
  /** Where the agents' time went (their answers' messages: grace, shutdown; replay wait, promotion); memory only. */
  fenceDetail: string;
  promoteDetail: string;
  /**
   * A move's switch: the old primary is removed once the new one serves, so its host gets no spec
   * turning it into a replica meanwhile (it stays fenced and stopped instead of rewinding or
   * re-cloning itself only to be deleted); memory only.
   */
  retiring: boolean;
  settle: ((result: { ok: true } | { ok: false; error: Error }) => void) | undefined;
}

/** Timings of a finished failover, in ms (also in the audit event). */
export interface FailoverTimings {
  detectionMs: number;
  fencingMs: number;
  promotionMs: number;
  routeMs: number;
  totalMs: number;
}

/** Runs failovers and switchovers. */
export class FailoverManager {
  private readonly ops = new Map<string, Operation>();
  private readonly unhealthySince = new Map<string, number>();
  private readonly strayFencedAt = new Map<string, number>();
  /** When an old primary's placement turned REPLICA (tenant and host); memory only. */
  private readonly demotedAt = new Map<string, number>();
  private resumed = false;
  /** The last finished failover's timings per tenant (tests, benchmarks). */
  readonly lastTimings = new Map<string, FailoverTimings>();

  private readonly stopListening: () => void;

  constructor(private readonly ctx: CoordinatorContext) {
    // The agent's answer to a Fence or a Promote moves the operation on at once: waiting for the
    // next tick added up to two reconciler intervals to every planned switch's pause.
    this.stopListening = ctx.hub.onResult((commandId) => {
      for (const op of this.ops.values()) {
        if (op.fenceCommand !== commandId && op.promoteCommand !== commandId) continue;
        this.step(op).catch((err: unknown) => this.ctx.log.error({ err, tenantId: op.tenantId }, 'failover step failed; retrying next tick'));
        return;
      }
    });
  }

  /** Stops acting on agents' answers (the coordinator stopping). */
  stop(): void {
    this.stopListening();
  }

  /** True while a failover or switchover of the tenant is in flight. */
  inFlight(tenantId: string): boolean {
    return this.ops.has(tenantId);
  }

  /** One pass: detect failures, advance operations, fence stray primaries. */
  async tick(): Promise<void> {
    const now = this.ctx.clock();
    if (!this.resumed) {
      // After a restart: every operation in flight continues from its row.
      for (const r of await this.ctx.store.read.operations.list()) {
        if (this.ops.has(r.tenantId)) continue;
        const op = fromRecord(r);
        // A live move's switch (its row says so) keeps the old primary fenced until the move removes it.
        if (r.kind === 'switchover') op.retiring = (await this.ctx.store.read.moves.get(r.tenantId))?.progress.phase === 'switching';
        this.ops.set(r.tenantId, op);
        // A promotion already under way keeps leaving the gone old primary out of its quorum.
        if (op.goneAt !== undefined && op.fencedAt > 0) this.ctx.gone.mark(op.tenantId, op.oldPrimary, op.goneAt);
      }
      this.resumed = true;
    }
    // Only replicated tenants and those with an operation in flight: listing every tenant each
    // tick blocked the event loop for half a second at 100,000 tenants.
    const watched = await this.ctx.store.read.tenants.listReplicated();
    const ids = new Set(watched.map((t) => t.id));
    for (const id of this.ops.keys()) {
      const tenant = ids.has(id) ? undefined : await this.ctx.store.read.tenants.get(id);
      if (tenant) watched.push(tenant);
    }
    for (const tenant of watched) {
      try {
        await this.confirmQuorum(tenant);
        const op = this.ops.get(tenant.id);
        if (op) await this.step(op, now);
        else await this.detect(tenant, now);
        await this.fenceStrayPrimaries(tenant.id, now);
      } catch (err) {
        this.ctx.log.error({ err, tenantId: tenant.id }, 'failover step failed; retrying next tick');
      }
    }
  }

  /**
   * A planned primary change: the old primary is fenced by its agent (a clean shutdown that sends
   * all its WAL to the replicas), the target must reach the old primary's last LSN, then it is
   * promoted. Resolves when the route points at the new primary; rolls back on timeout.
   */
  async switchover(tenantId: string, toHostId: string, principal: string, options: { forMove?: boolean } = {}): Promise<void> {
    const now = this.ctx.clock();
    const op = await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(tenantId);
      if (!tenant) throw new PreconditionError('TENANT_NOT_FOUND', `tenant "${tenantId}" does not exist`);
      const placements = await tx.placements.list({ tenantId });
      // A live move switches a single-node tenant over to the copy it just built.
      if (!placements.some((p) => p.role === 'REPLICA')) throw new PreconditionError('NO_REPLICA', `tenant "${tenantId}" has no replica to switch over to`);
      if (this.ops.has(tenantId) || tenant.status === 'FAILING_OVER')
        throw new PreconditionError('FAILOVER_IN_PROGRESS', `tenant "${tenantId}" is already failing over`);
      if (tenant.status === 'MOVING' && !options.forMove)
        throw new PreconditionError('MOVE_IN_PROGRESS', `tenant "${tenantId}" is being moved; wait for the move to finish`);
      // A move's copy may leave the tenant IN_PROGRESS for a moment (a host that looked unreachable):
      // what a planned switch needs is checked just below (a healthy primary, a healthy target).
      const movable = options.forMove && (tenant.status === 'MOVING' || tenant.status === 'IN_PROGRESS');
      if (tenant.status !== 'ACTIVE' && !movable)
        throw new PreconditionError('TENANT_NOT_ACTIVE', `tenant "${tenantId}" is ${tenant.status}; a switchover needs an ACTIVE tenant`);
      const primary = placements.find((p) => p.role === 'PRIMARY');
      if (!primary || !this.ctx.hub.isConnected(primary.hostId) || !isHealthy(primary, this.ctx.health)) {
        throw new PreconditionError(
          'PRIMARY_NOT_READY',
          'the primary must be healthy and its agent connected to hand over cleanly (use failover for a lost primary)',
        );
      }
      const targets = placements.filter((p) => p.role === 'REPLICA' && (toHostId === '' || p.hostId === toHostId));
      if (toHostId !== '' && targets.length === 0) throw new PreconditionError('NOT_A_REPLICA', `host "${toHostId}" holds no replica of tenant "${tenantId}"`);
      const ready = targets.filter((p) => this.ctx.hub.isConnected(p.hostId) && isHealthy(p, this.ctx.health));
      if (ready.length === 0) throw new PreconditionError('NO_HEALTHY_REPLICA', 'no healthy replica with a connected agent to switch over to');
      const lag = Math.min(...ready.map((p) => this.ctx.health.get(tenantId, p.hostId)?.lagBytes ?? 0));
      if (lag > this.ctx.failover.switchoverMaxLagBytes) {
        throw new PreconditionError(
          'REPLICA_LAGGING',
          `the replica is ${lag} bytes behind (at most ${this.ctx.failover.switchoverMaxLagBytes}); try again when it caught up`,
        );
      }
      const created = this.newOperation(tenantId, 'switchover', 'switchover', primary.hostId, now, now);
      created.toHostId = toHostId === '' ? undefined : toHostId;
      created.retiring = options.forMove === true;
      created.deadline = now + this.ctx.failover.switchoverTimeoutMs;
      await this.begin(tx, tenant, created, principal, `switchover requested${toHostId ? ` to ${toHostId}` : ''}`);
      return created;
    });
    this.ops.set(tenantId, op);
    return new Promise((resolve, reject) => {
      op.settle = (r) => (r.ok ? resolve() : reject(r.error));
      this.step(op).catch((err: unknown) => this.ctx.log.error({ err, tenantId }, 'switchover step failed; retrying next tick'));
    });
  }

  private newOperation(tenantId: string, kind: Operation['kind'], cause: Operation['cause'], oldPrimary: string, failedAt: number, now: number): Operation {
    return {
      tenantId,
      kind,
      cause,
      phase: 'fencing',
      goneAt: undefined,
      failedAt,
      startedAt: now,
      oldPrimary,
      toHostId: undefined,
      fenceCommand: undefined,
      fenceSentAt: 0,
      fenceAckedAt: undefined,
      finalLsn: '',
      fencedAt: 0,
      candidate: '',
      promoteCommand: undefined,
      promoteSentAt: 0,
      chosenAt: 0,
      lastWaitReason: '',
      deadline: Number.POSITIVE_INFINITY,
      advancing: false,
      again: false,
      fenceDetail: '',
      promoteDetail: '',
      retiring: false,
      settle: undefined,
    };
  }

  /** Marks the tenant FAILING_OVER (route FAILOVER) and audits the start. */
  private async begin(tx: StoreTx, tenant: TenantRecord, op: Operation, principal: string, reason: string): Promise<void> {
    const now = op.startedAt;
    await tx.tenants.update({ ...tenant, status: 'FAILING_OVER', statusReason: reason, updatedAt: now });
    await tx.operations.put(toRecord(op, now));
    await tx.events.append({
      time: now,
      principal,
      action: `${op.kind}.started`,
      tenantId: tenant.id,
      hostId: op.oldPrimary,
      message: reason,
      details: { cause: op.cause, detection_ms: String(now - op.failedAt), from: tenant.status },
    });
    // A planned switch has a live primary until the fence: routers hold clients through it.
    await syncTenant(tx, tenant.id, { now, health: this.ctx.health, principal, switching: op.kind === 'switchover' });
  }

  private async confirmQuorum(tenant: TenantRecord): Promise<void> {
    const primary = (await this.ctx.store.read.placements.list({ tenantId: tenant.id })).find((p) => p.role === 'PRIMARY');
    if (primary && primary.realizedRevision > 0) this.ctx.quorums.realized(tenant.id, primary.realizedRevision);
  }

  private async detect(tenant: TenantRecord, now: number): Promise<void> {
    // A RESTORING tenant's replicas hold nothing yet: the restore itself deals with a lost primary.
    if (tenant.deleting || tenant.spec.runState !== 'RUNNING' || ['NEW', 'STOPPING', 'STOPPED', 'DELETING', 'RESTORING', 'SUSPENDED'].includes(tenant.status))
      return;
    const placements = await this.ctx.store.read.placements.list({ tenantId: tenant.id });
    const primary = placements.find((p) => p.role === 'PRIMARY');
    if (!primary) return;
    if (tenant.status === 'FAILING_OVER') return this.resume(tenant, primary, placements, now);
    if (!primary.realizedOnce) return;
    const verdict = await this.lossOf(tenant.id, primary, placements, now);
    if (verdict.kind !== 'failed') return;
    const members = await failoverMembers(this.ctx.store.read, this.ctx, tenant.id);
    if (pickPromotionCandidate({ members, oldPrimaryHostId: primary.hostId, quorums: [], fencedAt: 0 }).kind === 'none') return; // nothing to fail over to: status says UNAVAILABLE/ERROR
    await this.start(tenant, primary.hostId, verdict.cause, verdict.failedAt, now, verdict.reason, verdict.goneAt);
  }

  /** The primary-loss decision on what the agents, the replicas and liveness say now. */
  private async lossOf(tenantId: string, primary: PlacementRecord, placements: readonly PlacementRecord[], now: number): Promise<LossVerdict> {
    const host = await this.ctx.store.read.hosts.get(primary.hostId);
    const hostState = host?.state ?? 'DOWN';
    const healthy = isHealthy(primary, this.ctx.health);
    if (healthy || hostState !== 'READY') this.unhealthySince.delete(tenantId);
    else if (!this.unhealthySince.has(tenantId)) this.unhealthySince.set(tenantId, now);
    const senderLostAt: number[] = [];
    for (const p of placements) {
      const h = p.role === 'REPLICA' ? this.ctx.health.get(tenantId, p.hostId) : undefined;
      if (h?.role === 'REPLICA' && h.up && (h.senderLostAt ?? 0) > 0) senderLostAt.push(h.senderLostAt ?? 0);
    }
    const agent = this.ctx.liveness.signals(primary.hostId);
    if (agent.lastSeenAt === undefined && host) agent.lastSeenAt = host.lastHeartbeatAt;
    const refused = primary.port > 0 ? this.ctx.backendFailures.latest(tenantId, primary.address, primary.port) : undefined;
    return primaryLoss(
      {
        hostId: primary.hostId,
        hostState,
        agent,
        healthy,
        unhealthySince: this.unhealthySince.get(tenantId),
        senderLostAt,
        refusedAt: refused === undefined ? [] : [refused],
        now,
      },
      { unhealthyAfterMs: this.ctx.failover.unhealthyAfterMs, signalWindowMs: SIGNAL_WINDOW_MS },
    );
  }

  private async start(
    tenant: TenantRecord,
    oldPrimary: string,
    cause: Operation['cause'],
    failedAt: number,
    now: number,
    reason: string,
    goneAt?: number,
  ): Promise<void> {
    const op = this.newOperation(tenant.id, 'failover', cause, oldPrimary, failedAt, now);
    op.goneAt = goneAt;
    await this.ctx.store.transaction(async (tx) => {
      const current = await tx.tenants.get(tenant.id);
      if (current) await this.begin(tx, current, op, PRINCIPAL, `${reason}; failing over to a replica`);
    });
    this.ops.set(tenant.id, op);
    this.unhealthySince.delete(tenant.id);
    this.ctx.log.warn({ tenantId: tenant.id, hostId: oldPrimary, cause }, 'failover started');
    await this.step(op, now);
  }

  /**
   * A tenant FAILING_OVER with no operation row (a store written before operations were rows, or a
   * row lost with its tenant's re-creation): decided from the facts. The store's primary running as
   * a primary means the promotion happened and only the finish is missing; anything else starts a
   * failover away from it (fenced by command or lease: nothing is known about the old primary).
   */
  private async resume(tenant: TenantRecord, primary: PlacementRecord, placements: readonly PlacementRecord[], now: number): Promise<void> {
    const health = this.ctx.health.get(tenant.id, primary.hostId);
    const hostReady = (await this.ctx.store.read.hosts.get(primary.hostId))?.state === 'READY';
    // Wait for the first report after a restart rather than fence a node that may just have been promoted.
    if (hostReady && health === undefined) return;
    if (hostReady && health?.role === 'PRIMARY' && isHealthy(primary, this.ctx.health)) {
      const op = this.newOperation(tenant.id, 'failover', 'resumed', primary.hostId, now, now);
      op.candidate = primary.hostId;
      op.phase = 'promoting';
      op.chosenAt = now;
      this.ops.set(tenant.id, op);
      await this.finish(op, now, 'report');
      return;
    }
    // The status derivation marks a tenant whose primary's host went DOWN as FAILING_OVER at once:
    // the same decision as detect() says how it failed and whether it is already fenced.
    const verdict = await this.lossOf(tenant.id, primary, placements, now);
    if (verdict.kind === 'failed') return this.start(tenant, primary.hostId, verdict.cause, verdict.failedAt, now, verdict.reason, verdict.goneAt);
    await this.start(
      tenant,
      primary.hostId,
      'resumed',
      this.ctx.liveness.lastSeenAt(primary.hostId) ?? now,
      now,
      `primary on ${primary.hostId} is being replaced`,
    );
  }

  /**
   * Advances one operation, one step at a time: a tick, the switchover's request and an agent's
   * answer may all ask at once; an ask during a step runs right after it, on what it left.
   */
  private async step(op: Operation, now?: number): Promise<void> {
    if (op.advancing) {
      op.again = true;
      return;
    }
    op.advancing = true;
    try {
      let at = now ?? this.ctx.clock();
      do {
        op.again = false;
        await this.advance(op, at);
        at = this.ctx.clock();
      } while (op.again && this.ops.get(op.tenantId) === op);
    } finally {
      op.advancing = false;
    }
  }

  private async advance(op: Operation, now: number): Promise<void> {
    const tenant = await this.ctx.store.read.tenants.get(op.tenantId);
    if (!tenant || tenant.deleting || tenant.spec.runState !== 'RUNNING') return this.abandon(op, now, 'the tenant was stopped or deleted');
    if (now > op.deadline) return this.timeout(op, now);
    if (op.phase === 'fencing') await this.fence(op, now);
    if (op.phase === 'choosing') await this.choose(op, tenant, now);
    if (op.phase === 'promoting') await this.promote(op, now);
  }

  private async fence(op: Operation, now: number): Promise<void> {
    if (op.fenceCommand) {
      const r = this.ctx.hub.takeResult(op.fenceCommand);
      if (r) {
        op.fenceCommand = undefined;
        if (r.ok) {
          op.fenceAckedAt = r.at;
          op.finalLsn = r.lsn;
          op.fenceDetail = r.message;
        } else {
          await this.audit(op, 'fence_refused', op.oldPrimary, 'FAILURE', `the agent could not fence: ${r.errorCode} ${r.message}`, {});
        }
      }
    }
    const fenceWait = RESEND_MS + (op.kind === 'switchover' ? this.ctx.failover.switchGraceMs : 0);
    if (op.fenceAckedAt === undefined && (op.fenceCommand === undefined || now - op.fenceSentAt >= fenceWait) && this.ctx.hub.isConnected(op.oldPrimary)) {
      if (op.fenceCommand) this.ctx.hub.forgetCommand(op.fenceCommand);
      // A planned switch lets open transactions finish while the routers hold the next ones.
      op.fenceCommand = this.ctx.hub.sendCommand(op.oldPrimary, op.tenantId, 'fence', {
        graceMs: op.kind === 'switchover' ? this.ctx.failover.switchGraceMs : 0,
      });
      if (op.fenceSentAt === 0) await this.audit(op, 'fence_sent', op.oldPrimary, 'SUCCESS', 'Fence sent to the old primary', {});
      op.fenceSentAt = now;
    }
    // A gone point counts while the agent stays away (this process's memory or, after a restart, the
    // host's stored return): an agent that came back may have started the old primary again.
    if (op.goneAt !== undefined) {
      const host = await this.ctx.store.read.hosts.get(op.oldPrimary);
      if (!stillGone(op.goneAt, this.ctx.liveness.signals(op.oldPrimary), host)) op.goneAt = undefined;
    }
    // A switchover waits for the agent: the lease of a healthy, connected agent never runs out.
    const state = fencingState({
      ackedAt: op.fenceAckedAt,
      leaseRenewedAt: this.ctx.liveness.leaseRenewedAt(op.oldPrimary),
      leaseMs: this.ctx.leaseMs,
      goneAt: op.goneAt,
      agentConnected: this.ctx.hub.isConnected(op.oldPrimary),
      now,
    });
    if (!state.fenced) return;
    op.fencedAt = state.at;
    op.phase = 'choosing';
    // The promoted primary's quorum leaves the dead old primary out at once (its writes would wait
    // for it until its host is declared DOWN otherwise).
    if (state.via === 'gone') this.ctx.gone.mark(op.tenantId, op.oldPrimary, state.at);
    const how = {
      ack: 'the old primary is stopped (its agent acknowledged)',
      lease: 'the old primary is fenced by its lease (its agent has not heard from us for lease_ms)',
      gone: "the old primary is gone with its agent (the agent's stream broke and a replica or router saw the primary stop); a returning agent gets it back only as a replica",
    }[state.via];
    await this.ctx.store.transaction(async (tx) => {
      await tx.operations.put(toRecord(op, now));
      await tx.events.append({
        time: this.ctx.clock(),
        principal: PRINCIPAL,
        action: `${op.kind}.fenced`,
        tenantId: op.tenantId,
        hostId: op.oldPrimary,
        outcome: 'SUCCESS',
        message: how,
        details: { via: state.via, fencing_ms: String(Math.max(0, state.at - op.startedAt)), final_lsn: op.finalLsn, agent: op.fenceDetail },
      });
    });
  }

  private async choose(op: Operation, tenant: TenantRecord, now: number): Promise<void> {
    const members = await failoverMembers(this.ctx.store.read, this.ctx, op.tenantId);
    const decision = pickPromotionCandidate({
      members,
      oldPrimaryHostId: op.oldPrimary,
      quorums: await quorumsInForce(this.ctx.store.read, this.ctx, tenant, op.oldPrimary),
      fencedAt: op.fencedAt,
      toHostId: op.toHostId,
    });
    if (decision.kind === 'none' && op.kind === 'failover') {
      // Right after a restart no replica has reported yet: a resumed failover waits for their agents
      // (each gets ttl + grace to reconnect, as liveness gives them) instead of giving up at once.
      if (await this.replicasUnheardSinceStart(op, now)) return this.waiting(op, `waiting for the replicas' agents to reconnect (${decision.reason})`);
      return this.abandon(op, now, decision.reason);
    }
    if (decision.kind !== 'promote') return this.waiting(op, decision.reason);
    if (op.kind === 'switchover' && op.finalLsn !== '') {
      // A planned switch loses nothing: the target must have everything the old primary wrote. (A
      // failover does not wait for it: acknowledged commits are already on the quorum, and a sick
      // primary's unshipped tail may never arrive.)
      const target = members.find((m) => m.hostId === decision.hostId);
      const caughtUp = target !== undefined && target.reportedAt >= op.fencedAt && target.lsn !== '' && lsnAtLeast(target.lsn, op.finalLsn);
      // A connected target checks it itself before it promotes (Promote.min_lsn): no wait for its
      // next health report, which was most of a planned switch's pause.
      if (!caughtUp && !this.ctx.hub.isConnected(decision.hostId)) {
        return this.waiting(op, `waiting for ${decision.hostId} to reach the old primary's last position ${op.finalLsn} (at ${target?.lsn || 'unknown'})`);
      }
    }
    op.candidate = decision.hostId;
    op.chosenAt = now;
    op.phase = 'promoting';
    op.deadline = Math.min(op.deadline, now + this.ctx.failover.promoteTimeoutMs);
    await this.ctx.store.transaction(async (tx) => {
      const placements = await tx.placements.list({ tenantId: op.tenantId });
      const oldP = placements.find((p) => p.hostId === op.oldPrimary);
      const newP = placements.find((p) => p.hostId === op.candidate);
      const current = await tx.tenants.get(op.tenantId);
      if (!oldP || !newP || !current) return;
      // Demote first: the store allows one primary per tenant at any instant.
      await tx.placements.update({ ...oldP, role: 'REPLICA', realization: 'PENDING', updatedAt: now });
      await tx.placements.update({ ...newP, role: 'PRIMARY', realization: 'PENDING', updatedAt: now });
      await tx.tenants.update({
        ...current,
        instanceRevision: current.instanceRevision + 1,
        statusReason: `promoting the replica on ${op.candidate}`,
        updatedAt: now,
      });
      await tx.operations.put(toRecord(op, now));
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: `${op.kind}.promote`,
        tenantId: op.tenantId,
        hostId: op.candidate,
        message: `promoting ${op.candidate} (${decision.reason}); ${op.oldPrimary} becomes its replica`,
        details: { old_primary: op.oldPrimary, lsn: decision.lsn, choosing_ms: String(now - op.fencedAt) },
      });
      await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: PRINCIPAL });
      // The candidate's spec now says PRIMARY; the others (and the old primary) point at it.
      recordDesired(tx, op, placements);
    });
    this.demotedAt.set(`${op.tenantId}\u0000${op.oldPrimary}`, now);
    this.ctx.quorums.reset(op.tenantId);
  }

  /**
   * True while some replica has not reported its instance since this coordinator started, and it may
   * still. An agent that connected has not necessarily reported yet: giving up in between (a few
   * milliseconds after its Hello) dropped the operation's row, and with it a gone point that would
   * have fenced the old primary at once, and the failover started again waiting for the lease.
   */
  private async replicasUnheardSinceStart(op: Operation, now: number): Promise<boolean> {
    const { startedAt = 0, ttlMs, graceMs } = this.ctx.liveness.options;
    if (now - startedAt > ttlMs + graceMs) return false;
    const replicas = (await this.ctx.store.read.placements.list({ tenantId: op.tenantId })).filter((p) => p.role === 'REPLICA' && p.hostId !== op.oldPrimary);
    return replicas.some((p) => this.ctx.liveness.lastSeenAt(p.hostId) === undefined || this.ctx.health.get(op.tenantId, p.hostId) === undefined);
  }

  private async promote(op: Operation, now: number): Promise<void> {
    if (op.promoteCommand) {
      const r = this.ctx.hub.takeResult(op.promoteCommand);
      if (r) {
        op.promoteCommand = undefined;
        if (r.ok) {
          op.promoteDetail = r.message;
          return this.finish(op, now, 'ack');
        }
        await this.audit(op, 'promote_refused', op.candidate, 'FAILURE', `the agent could not promote: ${r.errorCode} ${r.message}`, {});
      }
    }
    const health = this.ctx.health.get(op.tenantId, op.candidate);
    if (health?.role === 'PRIMARY' && health.up && health.checkedAt >= op.chosenAt) return this.finish(op, now, 'report');
    if (op.promoteCommand === undefined || now - op.promoteSentAt >= RESEND_MS) {
      if (op.promoteCommand) this.ctx.hub.forgetCommand(op.promoteCommand);
      op.promoteCommand = this.ctx.hub.sendCommand(op.candidate, op.tenantId, 'promote', { minLsn: op.kind === 'switchover' ? op.finalLsn : '' });
      if (op.promoteCommand !== undefined) op.promoteSentAt = now;
    }
  }

  private async finish(op: Operation, now: number, via: 'ack' | 'report'): Promise<void> {
    const timings: FailoverTimings = {
      detectionMs: Math.max(0, op.startedAt - op.failedAt),
      fencingMs: Math.max(0, op.fencedAt - op.startedAt),
      promotionMs: Math.max(0, now - Math.max(op.chosenAt, op.fencedAt)),
      routeMs: 0,
      totalMs: 0,
    };
    const route = await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(op.tenantId);
      if (!tenant) return undefined;
      await tx.tenants.update({ ...tenant, statusReason: '', updatedAt: now });
      await tx.operations.delete(op.tenantId);
      const synced = await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: PRINCIPAL, endFailover: true });
      const r = await tx.routes.get(op.tenantId);
      timings.routeMs = Math.max(0, this.ctx.clock() - now);
      timings.totalMs = Math.max(0, this.ctx.clock() - op.failedAt);
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: `${op.kind}.completed`,
        tenantId: op.tenantId,
        hostId: op.candidate,
        message: `${op.candidate} is the primary (promotion confirmed by ${via}); route ${r?.state ?? 'none'}; status ${synced?.status ?? '?'}`,
        details: {
          old_primary: op.oldPrimary,
          detection_ms: String(timings.detectionMs),
          fencing_ms: String(timings.fencingMs),
          promotion_ms: String(timings.promotionMs),
          route_ms: String(timings.routeMs),
          total_ms: String(timings.totalMs),
          agent: op.promoteDetail,
        },
      });
      recordDesired(tx, op, await tx.placements.list({ tenantId: op.tenantId }));
      return r;
    });
    this.ops.delete(op.tenantId);
    this.lastTimings.set(op.tenantId, timings);
    this.ctx.log.warn({ tenantId: op.tenantId, hostId: op.candidate, oldPrimary: op.oldPrimary, route: route?.state, ...timings }, `${op.kind} completed`);
    op.settle?.({ ok: true });
  }

  private async waiting(op: Operation, reason: string): Promise<void> {
    if (op.lastWaitReason === reason) return;
    op.lastWaitReason = reason;
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(op.tenantId);
      if (tenant) await tx.tenants.update({ ...tenant, statusReason: reason, updatedAt: this.ctx.clock() });
    });
    await this.audit(op, 'waiting', '', 'SUCCESS', reason, {});
  }

  /** Ends an operation that cannot go on; the status is derived again from the facts. */
  private async abandon(op: Operation, now: number, reason: string): Promise<void> {
    this.ops.delete(op.tenantId);
    await this.ctx.store.transaction(async (tx) => {
      await tx.operations.delete(op.tenantId);
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: `${op.kind}.abandoned`,
        tenantId: op.tenantId,
        hostId: op.oldPrimary,
        outcome: 'FAILURE',
        message: reason,
      });
      const tenant = await tx.tenants.get(op.tenantId);
      const move = tenant && op.kind === 'switchover' ? await tx.moves.get(op.tenantId) : undefined;
      if (tenant && move) {
        // A live move's switch hands the tenant back to the move, which decides next (it abandons a
        // switch that rolled back). A wake by a move keeps its clients held meanwhile: its old
        // instance only fed the copy, and the tenant goes back to sleep without ever serving there.
        await tx.tenants.update({
          ...tenant,
          status: 'MOVING',
          statusReason: `the switch of the move to ${move.progress.toHostId} ended: ${reason}`,
          updatedAt: now,
        });
        await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: PRINCIPAL, wakeMove: move.wake !== '' && move.progress.primary });
      } else if (tenant) await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: PRINCIPAL, endFailover: true });
    });
    op.settle?.({ ok: false, error: new PreconditionError('FAILOVER_ABANDONED', reason) });
  }

  private async timeout(op: Operation, now: number): Promise<void> {
    if (op.kind === 'switchover' && op.phase !== 'promoting') {
      // Nothing was promoted: the old primary stays primary. A new instance revision lifts its fence.
      await this.ctx.store.transaction(async (tx) => {
        const tenant = await tx.tenants.get(op.tenantId);
        if (tenant) await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
        tx.record({ kind: 'desired', tenantId: op.tenantId });
      });
      return this.abandon(
        op,
        now,
        `switchover rolled back after ${now - op.startedAt} ms: ${op.lastWaitReason || (op.fenceAckedAt === undefined ? 'the old primary was not fenced' : 'no replica caught up')}`,
      );
    }
    if (op.phase === 'promoting') {
      // The chosen replica never confirmed: it may or may not be a primary now. Fence it in turn and choose again.
      this.ops.delete(op.tenantId);
      // A move's old primary held back for its removal is a member again: it gets its replica spec.
      if (op.retiring) await this.ctx.store.transaction(async (tx) => tx.record({ kind: 'desired', tenantId: op.tenantId }));
      await this.audit(op, 'promote_timeout', op.candidate, 'FAILURE', `${op.candidate} did not confirm its promotion; fencing it and choosing again`, {});
      const tenant = await this.ctx.store.read.tenants.get(op.tenantId);
      op.settle?.({ ok: false, error: new PreconditionError('PROMOTION_TIMEOUT', `${op.candidate} did not confirm its promotion`) });
      if (tenant) await this.start(tenant, op.candidate, 'unhealthy', now, now, `${op.candidate} did not confirm its promotion`);
      return;
    }
    op.deadline = Number.POSITIVE_INFINITY;
  }

  /**
   * A placement the store calls REPLICA that reports itself a running primary (an old primary back
   * after a partition whose agent did not fence it): fence it at once; its spec already says REPLICA.
   */
  private async fenceStrayPrimaries(tenantId: string, now: number): Promise<void> {
    const op = this.ops.get(tenantId);
    for (const p of await this.ctx.store.read.placements.list({ tenantId })) {
      if (p.role !== 'REPLICA' || op?.candidate === p.hostId) continue;
      const h = this.ctx.health.get(tenantId, p.hostId);
      if (h?.role !== 'PRIMARY' || !h.up || !this.ctx.hub.isConnected(p.hostId)) continue;
      // A report from before the role swap (a switch acts on the fence's answer at once, so the old
      // primary's last report may still be the one it sent just before it) says nothing about a
      // stray primary: its next report does.
      if (h.checkedAt < (this.demotedAt.get(`${tenantId}\u0000${p.hostId}`) ?? 0)) continue;
      const key = `${tenantId}\u0000${p.hostId}`;
      if (now - (this.strayFencedAt.get(key) ?? -Infinity) < RESEND_MS) continue;
      this.strayFencedAt.set(key, now);
      this.ctx.hub.sendCommand(p.hostId, tenantId, 'fence');
      await this.ctx.store.transaction((tx) =>
        tx.events.append({
          time: now,
          principal: PRINCIPAL,
          action: 'failover.stray_primary',
          tenantId,
          hostId: p.hostId,
          outcome: 'FAILURE',
          message: 'an instance that must be a replica reports itself a primary; fenced',
        }),
      );
      this.ctx.log.error({ tenantId, hostId: p.hostId }, 'stray primary fenced');
    }
  }

  private async audit(
    op: Operation,
    step: string,
    hostId: string,
    outcome: 'SUCCESS' | 'FAILURE',
    message: string,
    details: Record<string, string>,
  ): Promise<void> {
    await this.ctx.store.transaction((tx) =>
      tx.events.append({
        time: this.ctx.clock(),
        principal: PRINCIPAL,
        action: `${op.kind}.${step}`,
        tenantId: op.tenantId,
        hostId,
        outcome,
        message,
        details,
      }),
    );
  }
}

/** The row of an operation. */
function toRecord(op: Operation, now: number): OperationRecord {
  return {
    tenantId: op.tenantId,
    kind: op.kind,
    cause: op.cause,
    phase: op.phase,
    failedAt: op.failedAt,
    startedAt: op.startedAt,
    oldPrimary: op.oldPrimary,
    toHostId: op.toHostId ?? '',
    fencedAt: op.fencedAt,
    fenceSentAt: op.fenceSentAt,
    fenceAckedAt: op.fenceAckedAt ?? 0,
    goneAt: op.goneAt ?? 0,
    finalLsn: op.finalLsn,
    candidate: op.candidate,
    chosenAt: op.chosenAt,
    promoteSentAt: op.promoteSentAt,
    deadline: Number.isFinite(op.deadline) ? op.deadline : 0,
    updatedAt: now,
  };
}

/**
 * An operation resumed from its row. Commands in flight are not (their ids died with the process):
 * the next step sends them again. The old primary's gone point is: a resumed fence fences from it
 * at once while the agent is still away (its return is written to the store before it is sent
 * anything), else waits for an acknowledgement or the lease, counted from this process's start at
 * the latest.
 */
function fromRecord(r: OperationRecord): Operation {
  return {
    tenantId: r.tenantId,
    kind: r.kind,
    cause: (['host_lost', 'host_down', 'unhealthy', 'switchover'].includes(r.cause) ? r.cause : 'resumed') as Operation['cause'],
    phase: r.phase,
    goneAt: r.goneAt > 0 ? r.goneAt : undefined,
    failedAt: r.failedAt,
    startedAt: r.startedAt,
    oldPrimary: r.oldPrimary,
    toHostId: r.toHostId === '' ? undefined : r.toHostId,
    fenceCommand: undefined,
    // Kept so the first send is not audited twice; the Fence itself goes out again at once.
    fenceSentAt: r.fenceSentAt,
    fenceAckedAt: r.fenceAckedAt > 0 ? r.fenceAckedAt : undefined,
    finalLsn: r.finalLsn,
    fencedAt: r.fencedAt,
    candidate: r.candidate,
    promoteCommand: undefined,
    promoteSentAt: 0,
    chosenAt: r.chosenAt,
    lastWaitReason: '',
    deadline: r.deadline > 0 ? r.deadline : Number.POSITIVE_INFINITY,
    advancing: false,
    again: false,
    fenceDetail: '',
    promoteDetail: '',
    retiring: false,
    settle: undefined,
  };
}

/** Sends the tenant's members their specs; a move's old primary keeps its fenced one (see Operation.retiring). */
function recordDesired(tx: StoreTx, op: Operation, placements: readonly PlacementRecord[]): void {
  if (!op.retiring) return tx.record({ kind: 'desired', tenantId: op.tenantId });
  for (const p of placements) if (p.hostId !== op.oldPrimary) tx.record({ kind: 'desired', tenantId: op.tenantId, hostId: p.hostId });
}

/** a >= b as LSNs; false when either is not an LSN. */
function lsnAtLeast(a: string, b: string): boolean {
  const x = tryParseLsn(a);
  const y = tryParseLsn(b);
  return x !== undefined && y !== undefined && x >= y;
}
