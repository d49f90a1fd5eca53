/**
 * Live moves, driven by the reconciler's tick. Decisions are libs/tenancy's (checkMove, decideMove);
 * this file executes them:
 *
 *   start      a REPLICA placement on the target (the agent builds it with pg_basebackup from the
 *              primary, as for any replica), status MOVING
 *   copying    waits until the copy realized, serves and caught up; a moving primary then runs a
 *              CHECKPOINT (Checkpoint to its agent) while clients still work, so the fence's
 *              shutdown checkpoint inside the clients' pause has little left to write
 *   switching  the moving member is the primary: a planned switchover to the copy (route
 *              SWITCHING, routers hold clients; fence, last WAL, promote, route moves)
 *   removing   the old placement goes and its host is told to delete the instance
 *
 * Every step is an audited event with its duration. A move abandoned before the switch removes the
 * copy and leaves the tenant as it was (a wake by a move: suspended again). Each move is a row of the
 * store's moves table, written in the same transaction as the step it records: a coordinator
 * restarted mid-way takes it back at its first tick as libs/tenancy resumeMove says (goes on,
 * completes, or abandons it, a wake by a move then sleeping again on its own host), the wake's
 * reason kept.
 */
import {
  canTransition,
  checkMove,
  decideMove,
  lsnDistance,
  resumeMove,
  suspendedReason,
  tryParseLsn,
  type MoveCheckpoint,
  type MoveDecision,
  type MoveFacts,
  type MoveProgress,
} from '@pgs/tenancy';
import type { CoordinatorContext } from './context.js';
import { DrainRunner } from './drain-runner.js';
import { StoreDrainPlanner } from './drain-planning.js';
import { PreconditionError, notFound } from '../domain/errors.js';
import type { FailoverManager } from './failover-manager.js';
import { hostCandidate } from './host-candidates.js';
import { newPlacement, type MoveRecord } from '../domain/model.js';
import { ensureReplicationSecret } from './replication-secrets.js';
import type { StoreTx } from '../store/contract.js';
import { isHealthy, syncTenant } from './tenant-sync.js';

/** One finished step of a move. */
export interface MoveStepView {
  name: 'copy' | 'switch' | 'remove_old';
  durationMs: number;
  detail: string;
}

/** What a caller sees of a move. */
export interface MoveView {
  tenantId: string;
  fromHostId: string;
  toHostId: string;
  steps: MoveStepView[];
}

/**
 * A move that wakes a SUSPENDED tenant whose host gave its room away (libs/tenancy decideWake): the
 * member starts on its old host only as the copy's source; a moving primary takes no clients there
 * (the route stays SUSPENDED until the switch).
 */
export interface WakeByMove {
  /** Why the member cannot wake where it is. */
  reason: string;
  /** Writes the wake's own audit inside the move's first transaction. */
  audit(tx: StoreTx, now: number): Promise<void>;
}

/** A wake by a move taken back after a restart (the suspend service times it as it would have). */
export interface ResumedWake {
  tenantId: string;
  principal: string;
  /** When the wake started (before the restart). */
  startedAt: number;
  fromHostId: string;
  toHostId: string;
  primary: boolean;
  reason: string;
}

interface MoveOp {
  tenantId: string;
  principal: string;
  /** Set when the move wakes a suspended tenant: why its host could not take it back. */
  wake: string | undefined;
  progress: MoveProgress;
  steps: MoveStepView[];
  switchover: { ok: true } | { ok: false; reason: string } | undefined;
  switchoverRunning: boolean;
  /** The source primary's checkpoint before the switch, and the Checkpoint command awaiting its answer. */
  checkpoint: MoveCheckpoint;
  checkpointCommand: string | undefined;
  /** A step is being decided or applied (its reads and transaction in flight). */
  advancing: boolean;
  /** Asked to advance while it was: it advances again right after. */
  again: boolean;
  lastReason: string;
  waiters: ((result: { ok: true } | { ok: false; error: Error }) => void)[];
}

/** A move as it starts here (or is taken back from its row): no switchover, checkpoint or step in flight. */
function newMoveOp(fields: Pick<MoveOp, 'tenantId' | 'principal' | 'wake' | 'progress' | 'steps' | 'lastReason'>): MoveOp {
  return {
    ...fields,
    switchover: undefined,
    switchoverRunning: false,
    checkpoint: { state: 'none' },
    checkpointCommand: undefined,
    advancing: false,
    again: false,
    waiters: [],
  };
}

/** Runs live moves. */
export class MoveManager {
  private readonly ops = new Map<string, MoveOp>();
  /** The last finished move per tenant (tests, benchmarks, the API's answer). */
  readonly finished = new Map<string, MoveView & { ok: boolean; reason: string }>();
  private resumed = false;
  private readonly resumedWakeListeners: ((w: ResumedWake) => void)[] = [];
  /** Host drains: their planned moves, started a few at a time. */
  readonly drains: DrainRunner;
  private readonly stopListening: () => void;

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly failover: FailoverManager,
    /** Moves a drain runs at once when its request does not say. */
    readonly defaultParallel = 2,
  ) {
    this.drains = new DrainRunner(this, new StoreDrainPlanner(ctx), defaultParallel, ctx.clock);
    // The source's answer to its Checkpoint starts the switch at once, not at the next tick.
    this.stopListening = ctx.hub.onResult((commandId) => {
      for (const op of this.ops.values()) {
        if (op.checkpointCommand !== commandId) continue;
        void this.safeAdvance(op);
        return;
      }
    });
  }

  /** Stops acting on agents' answers (the coordinator stopping). */
  stop(): void {
    this.stopListening();
  }

  /** The outcome of the tenant's last finished move. */
  outcome(tenantId: string): { ok: boolean; reason: string } | undefined {
    return this.finished.get(tenantId);
  }

  /** Calls `listener` for each wake by a move taken back after a restart. */
  onResumedWake(listener: (w: ResumedWake) => void): void {
    this.resumedWakeListeners.push(listener);
  }

  /** True while a move of the tenant is in flight. */
  inFlight(tenantId: string): boolean {
    return this.ops.has(tenantId);
  }

  /** The moves in flight (drains count theirs). */
  moving(): MoveView[] {
    return [...this.ops.values()].map((op) => this.view(op));
  }

  /**
   * Starts a move of the tenant's member on `memberHostId` ('' = the primary of a single-node tenant)
   * to `toHostId`; refused up front (PreconditionError with the reason) when the target cannot take it.
   */
  async start(tenantId: string, toHostId: string, memberHostId: string, principal: string, wake?: WakeByMove): Promise<MoveView> {
    const now = this.ctx.clock();
    const op = await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(tenantId);
      if (!tenant || tenant.deleting) throw notFound.tenant(tenantId);
      const members = await tx.placements.list({ tenantId });
      const candidate = await hostCandidate(tx, toHostId, this.ctx.versions, this.ctx.slots);
      const checked = checkMove(
        {
          tenantId,
          status: tenant.status,
          resources: tenant.spec.resources,
          placement: tenant.spec.placement,
          members: members.map((p) => ({ hostId: p.hostId, role: p.role })),
          memberHostId,
          toHostId,
          target: candidate,
          targetConnected: this.ctx.hub.isConnected(toHostId),
          // A major upgrade in flight or kept for a rollback owns the tenant's instances too.
          busy: this.ops.has(tenantId) || this.failover.inFlight(tenantId) || (await tx.upgrades.get(tenantId)) !== undefined,
          waking: wake !== undefined,
        },
        this.ctx.placementPolicy,
      );
      if ('refusal' in checked) {
        await tx.events.append({
          time: now,
          principal,
          action: 'move.refused',
          tenantId,
          hostId: toHostId,
          outcome: 'REFUSED',
          message: checked.refusal.message,
          details: { code: checked.refusal.code },
        });
        throw new PreconditionError(checked.refusal.code, checked.refusal.message);
      }
      const from = checked.member;
      const progress: MoveProgress = {
        phase: 'copying',
        fromHostId: from.hostId,
        toHostId,
        primary: from.role === 'PRIMARY',
        startedAt: now,
        phaseStartedAt: now,
        copyDeadline: now + this.ctx.moveCopyTimeoutMs,
      };
      await ensureReplicationSecret(tx, this.ctx.keys, tenantId, now);
      await tx.placements.insert(newPlacement({ tenantId, hostId: toHostId, role: 'REPLICA', address: (await tx.hosts.get(toHostId))?.address ?? '', now }));
      const reason = `${wake ? `waking up on ${toHostId} (${wake.reason}): ` : ''}moving ${from.role === 'PRIMARY' ? 'the primary' : 'a replica'} from ${from.hostId} to ${toHostId}: copying`;
      // The primary's replication slots (and its pg_hba) change with the new member.
      await tx.tenants.update({ ...tenant, status: 'MOVING', statusReason: reason, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
      await tx.events.append({
        time: now,
        principal,
        action: 'move.started',
        tenantId,
        hostId: toHostId,
        message: `move of the ${from.role.toLowerCase()} on ${from.hostId} to ${toHostId} started`,
        details: { from: from.hostId, to: toHostId, role: from.role, ...(wake ? { wake: 'true' } : {}) },
      });
      await tx.moves.put({ tenantId, progress, principal, wake: wake?.reason ?? '', steps: [], updatedAt: now });
      await wake?.audit(tx, now);
      // A woken primary's old instance is only the copy's source: no client is routed there.
      await syncTenant(tx, tenantId, { now, health: this.ctx.health, principal, ...(wake ? { wakeMove: from.role === 'PRIMARY' } : {}) });
      tx.record({ kind: 'desired', tenantId });
      // The source's CPU and memory count on its host again (over-committing it until the copy is done).
      if (wake) tx.record({ kind: 'room' });
      return newMoveOp({ tenantId, principal, wake: wake?.reason, progress, steps: [], lastReason: reason });
    });
    // Before the desired sets go out (they are sent on the next turn of the event loop).
    this.ctx.retiring.cancel(tenantId, toHostId);
    this.ops.set(tenantId, op);
    this.finished.delete(tenantId);
    this.ctx.log.info({ tenantId, from: op.progress.fromHostId, to: toHostId }, 'move started');
    return this.view(op);
  }

  /** Resolves when the tenant's move in flight ends (rejects with why it was abandoned). */
  wait(tenantId: string): Promise<void> {
    const op = this.ops.get(tenantId);
    if (!op) {
      const last = this.finished.get(tenantId);
      return last && !last.ok ? Promise.reject(new PreconditionError('MOVE_ABANDONED', last.reason)) : Promise.resolve();
    }
    return new Promise((resolve, reject) => op.waiters.push((r) => (r.ok ? resolve() : reject(r.error))));
  }

  /** The move in flight or the last one of the tenant. */
  get(tenantId: string): MoveView | undefined {
    const op = this.ops.get(tenantId);
    return op ? this.view(op) : this.finished.get(tenantId);
  }

  /** One pass over the moves in flight. */
  async tick(): Promise<void> {
    if (!this.resumed) await this.resumeMoves();
    for (const op of [...this.ops.values()]) {
      try {
        await this.advance(op);
      } catch (err) {
        this.ctx.log.error({ err, tenantId: op.tenantId }, 'move step failed; retrying next tick');
      }
    }
    await this.drains.tick();
  }

  private async advance(op: MoveOp): Promise<void> {
    // One step at a time per move: a tick and the end of a switchover may both ask; the later
    // ask runs right after the step in flight, on what that step left.
    if (op.advancing) {
      op.again = true;
      return;
    }
    op.advancing = true;
    try {
      do {
        op.again = false;
        const facts = await this.facts(op);
        const now = this.ctx.clock();
        const policy = { maxLagBytes: this.ctx.failover.switchoverMaxLagBytes, checkpointWaitMs: this.ctx.moveCheckpointTimeoutMs };
        const decision = decideMove(op.progress, facts, policy, now);
        await this.apply(op, decision, now);
      } while (op.again && this.ops.get(op.tenantId) === op);
    } finally {
      op.advancing = false;
    }
  }

  private async facts(op: MoveOp): Promise<MoveFacts> {
    const { tenantId } = op;
    const { fromHostId, toHostId } = op.progress;
    const read = this.ctx.store.read;
    const tenant = await read.tenants.get(tenantId);
    const placements = await read.placements.list({ tenantId });
    const primary = placements.find((p) => p.role === 'PRIMARY');
    const target = placements.find((p) => p.hostId === toHostId);
    let lagBytes: number | undefined;
    if (target) {
      const h = this.ctx.health.get(tenantId, toHostId);
      const p = primary ? this.ctx.health.get(tenantId, primary.hostId) : undefined;
      // The replica's own lag, and how far its replay is behind the primary's last report.
      if (h && h.checkedAt >= op.progress.startedAt) {
        const behind = p && tryParseLsn(p.lsn) !== undefined && tryParseLsn(h.lsn) !== undefined ? Math.max(0, lsnDistance(h.lsn, p.lsn)) : undefined;
        lagBytes = behind === undefined ? undefined : Math.max(h.lagBytes, behind);
      }
    }
    const targetHostState = (await read.hosts.get(toHostId))?.state;
    const sourceHostState = (await read.hosts.get(fromHostId))?.state;
    const backupRunning = (await read.backups.list(tenantId)).some((b) => b.status === 'RUNNING');
    // A switchover taken back from its row after a restart has no promise here: while its row is
    // there it runs; once it is gone, the primary says how it went.
    const switchoverRunning =
      op.switchoverRunning || this.failover.inFlight(tenantId) || (op.progress.phase === 'switching' && (await read.operations.get(tenantId)) !== undefined);
    const switchover =
      op.switchover ??
      (op.progress.phase === 'switching' && !switchoverRunning && primary?.hostId !== toHostId
        ? {
            ok: false as const,
            reason: `the switchover taken back after a coordinator restart ended with the primary still on ${primary?.hostId ?? 'no host'}`,
          }
        : undefined);
    await this.takeCheckpointResult(op);
    const sourceConnected = this.ctx.hub.isConnected(fromHostId);
    // A Checkpoint in flight when the source's agent dropped out is lost with its stream: asked again once it is back.
    if (!sourceConnected && op.checkpoint.state === 'running') {
      if (op.checkpointCommand !== undefined) this.ctx.hub.forgetCommand(op.checkpointCommand);
      op.checkpointCommand = undefined;
      op.checkpoint = { state: 'none' };
    }
    // Taken last: a read that failed after it would lose the confirmation.
    const removed =
      op.progress.phase === 'removing' && !placements.some((p) => p.hostId === fromHostId) && this.ctx.retiring.takeConfirmed(tenantId, fromHostId);
    return {
      targetHostState,
      targetConnected: this.ctx.hub.isConnected(toHostId),
      target: target && {
        realization:
          target.realization === 'REALIZED' && tenant !== undefined && target.realizedRevision < tenant.instanceRevision ? 'PENDING' : target.realization,
        role: target.role,
        healthy: isHealthy(target, this.ctx.health) && (this.ctx.health.get(tenantId, toHostId)?.up ?? false),
        lagBytes,
        reason: target.reason,
      },
      primaryHostId: primary?.hostId,
      switchover,
      switchoverRunning,
      oldRemoved: removed,
      sourceHostState,
      sourceConnected,
      cancelled: !tenant || tenant.deleting || tenant.spec.runState !== 'RUNNING',
      backupRunning,
      checkpoint: op.checkpoint,
    };
  }

  /** Records the source's answer to the Checkpoint, once it arrived, and audits it. */
  private async takeCheckpointResult(op: MoveOp): Promise<void> {
    if (op.checkpointCommand === undefined || op.checkpoint.state !== 'running') return;
    const r = this.ctx.hub.takeResult(op.checkpointCommand);
    if (!r) return;
    op.checkpointCommand = undefined;
    const ms = Math.max(0, r.at - op.checkpoint.since);
    op.checkpoint = { state: 'finished', at: r.at, ok: r.ok };
    await this.audit(
      op,
      'checkpointed',
      op.progress.fromHostId,
      r.ok ? 'SUCCESS' : 'FAILURE',
      r.ok
        ? `the primary on ${op.progress.fromHostId} checkpointed before the switch`
        : `the primary on ${op.progress.fromHostId} could not checkpoint before the switch (${r.errorCode} ${r.message}); switching without it`,
      { checkpoint_ms: String(ms), agent: r.message },
    );
  }

  private async apply(op: MoveOp, d: MoveDecision, now: number): Promise<void> {
    switch (d.kind) {
      case 'wait':
        return await this.progressReason(op, d.reason);
      case 'checkpoint':
        return await this.checkpoint(op, d.reason, now);
      case 'switch':
        return await this.switch(op, now);
      case 'remove_old':
        return await this.removeOld(op, d.reason, now);
      case 'done':
        return await this.done(op, now);
      case 'abandon':
        return await this.abandon(op, d.reason, now);
    }
  }

  private step(op: MoveOp, name: MoveStepView['name'], now: number, detail: string): number {
    const durationMs = Math.max(0, now - op.progress.phaseStartedAt);
    op.steps.push({ name, durationMs, detail });
    op.progress = { ...op.progress, phaseStartedAt: now };
    return durationMs;
  }

  /** Shows the step in the tenant's status reason (only while MOVING: a switchover owns FAILING_OVER). */
  private async progressReason(op: MoveOp, reason: string): Promise<void> {
    const status = (await this.ctx.store.read.tenants.get(op.tenantId))?.status;
    // A host that looked lost for a moment ends MOVING (the status is derived again); it comes back here.
    const resume = status === 'ACTIVE' || status === 'IN_PROGRESS';
    if (op.lastReason === reason && !resume) return;
    op.lastReason = reason;
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(op.tenantId);
      if (tenant && (tenant.status === 'MOVING' || resume))
        await tx.tenants.update({ ...tenant, status: 'MOVING', statusReason: `${this.heading(op)}: ${reason}`, updatedAt: this.ctx.clock() });
    });
  }

  /**
   * Asks the source primary for a CHECKPOINT (its answer advances the move). An agent that cannot be
   * reached counts as a failed checkpoint: the switch itself then decides whether it can go on.
   */
  private async checkpoint(op: MoveOp, reason: string, now: number): Promise<void> {
    if (op.checkpointCommand !== undefined) this.ctx.hub.forgetCommand(op.checkpointCommand);
    op.checkpointCommand = this.ctx.hub.sendAction(op.progress.fromHostId, op.tenantId, 'checkpoint', { case: 'checkpoint', value: {} });
    op.checkpoint = op.checkpointCommand === undefined ? { state: 'finished', at: now, ok: false } : { state: 'running', since: now };
    await this.progressReason(op, reason);
    if (op.checkpointCommand === undefined) op.again = true;
  }

  private async switch(op: MoveOp, now: number): Promise<void> {
    const copyMs = this.step(op, 'copy', now, `copy on ${op.progress.toHostId} caught up`);
    op.progress = { ...op.progress, phase: 'switching' };
    await this.ctx.store.transaction(async (tx) => {
      await tx.moves.put(this.record(op, now));
      await tx.events.append({
        time: now,
        principal: op.principal,
        action: 'move.copied',
        tenantId: op.tenantId,
        hostId: op.progress.toHostId,
        message: `the copy on ${op.progress.toHostId} caught up; switching`,
        details: { copy_ms: String(copyMs) },
      });
    });
    op.switchoverRunning = true;
    op.switchover = undefined;
    let started: Promise<void>;
    try {
      started = this.failover.switchover(op.tenantId, op.progress.toHostId, op.principal, { forMove: true });
    } catch (err) {
      started = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    void started.then(
      () => {
        op.switchoverRunning = false;
        op.switchover = { ok: true };
        return this.safeAdvance(op);
      },
      (err: unknown) => {
        op.switchoverRunning = false;
        op.switchover = { ok: false, reason: err instanceof Error ? err.message : String(err) };
        return this.safeAdvance(op);
      },
    );
  }

  /** Advances at once after the switchover settled (the pause ends with the route; no tick to wait for). */
  private async safeAdvance(op: MoveOp): Promise<void> {
    if (this.ops.get(op.tenantId) !== op) return;
    try {
      await this.advance(op);
    } catch (err) {
      this.ctx.log.error({ err, tenantId: op.tenantId }, 'move step failed; retrying next tick');
    }
  }

  private async removeOld(op: MoveOp, reason: string, now: number): Promise<void> {
    const { fromHostId, toHostId } = op.progress;
    const ms = this.step(
      op,
      op.progress.phase === 'switching' ? 'switch' : 'copy',
      now,
      op.progress.phase === 'switching' ? `${toHostId} is the primary` : `copy on ${toHostId} caught up`,
    );
    op.progress = { ...op.progress, phase: 'removing' };
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(op.tenantId);
      if (!tenant) return;
      await tx.placements.delete(op.tenantId, fromHostId);
      await tx.moves.put(this.record(op, now));
      op.lastReason = reason;
      await tx.tenants.update({
        ...tenant,
        status: 'MOVING',
        statusReason: `${this.heading(op)}: ${reason}`,
        instanceRevision: tenant.instanceRevision + 1,
        updatedAt: now,
      });
      await tx.events.append({
        time: now,
        principal: op.principal,
        action: op.progress.primary ? 'move.switched' : 'move.copied',
        tenantId: op.tenantId,
        hostId: toHostId,
        message: op.progress.primary
          ? `${toHostId} serves as the primary; the old instance on ${fromHostId} is being removed`
          : `the replica on ${toHostId} caught up; the old one on ${fromHostId} is being removed`,
        details: { [op.progress.primary ? 'switch_ms' : 'copy_ms']: String(ms), from: fromHostId },
      });
      await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: op.principal });
      tx.record({ kind: 'desired', tenantId: op.tenantId });
      tx.record({ kind: 'desired', tenantId: op.tenantId, hostId: fromHostId });
    });
    // Before the desired sets go out (they are sent on the next turn of the event loop).
    this.ctx.retiring.add(op.tenantId, fromHostId);
    this.ctx.health.delete(op.tenantId, fromHostId);
  }

  private async done(op: MoveOp, now: number, detail?: string): Promise<void> {
    const { fromHostId, toHostId } = op.progress;
    const hostDown = (await this.ctx.store.read.hosts.get(fromHostId))?.state === 'DOWN';
    this.step(
      op,
      'remove_old',
      now,
      detail ?? (hostDown ? `host ${fromHostId} is down: the old instance is deleted when it returns` : `the old instance on ${fromHostId} was deleted`),
    );
    const totalMs = Math.max(0, now - op.progress.startedAt);
    await this.ctx.store.transaction(async (tx) => {
      await tx.moves.delete(op.tenantId);
      await this.endMoving(tx, op.tenantId, now, op.principal);
      await tx.events.append({
        time: now,
        principal: op.principal,
        action: 'move.completed',
        tenantId: op.tenantId,
        hostId: toHostId,
        message: `moved from ${fromHostId} to ${toHostId} in ${totalMs} ms`,
        details: { from: fromHostId, total_ms: String(totalMs), ...Object.fromEntries(op.steps.map((s) => [`${s.name}_ms`, String(s.durationMs)])) },
      });
    });
    this.settle(op, { ok: true }, '');
    this.ctx.log.info({ tenantId: op.tenantId, from: fromHostId, to: toHostId, durationMs: totalMs, steps: op.steps }, 'move completed');
  }

  private async abandon(op: MoveOp, reason: string, now: number): Promise<void> {
    const { toHostId } = op.progress;
    const removeCopy = await this.ctx.store.transaction(async (tx) => {
      let removed = false;
      await tx.moves.delete(op.tenantId);
      const target = (await tx.placements.list({ tenantId: op.tenantId })).find((p) => p.hostId === toHostId);
      // The copy goes unless it became the primary (then the move was not abandoned: see decideMove).
      if (target && target.role === 'REPLICA') {
        await tx.placements.delete(op.tenantId, toHostId);
        removed = true;
        const tenant = await tx.tenants.get(op.tenantId);
        if (tenant) await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
        tx.record({ kind: 'desired', tenantId: op.tenantId, hostId: toHostId });
      }
      // A wake by a move goes back to sleep instead (its old instance is no source for clients),
      // unless its copy became the primary (then there is nothing to go back to).
      const asleep = op.wake !== undefined && target?.role !== 'PRIMARY' && (await this.backToSleep(tx, op, reason, now));
      if (!asleep) await this.endMoving(tx, op.tenantId, now, op.principal);
      tx.record({ kind: 'desired', tenantId: op.tenantId });
      await tx.events.append({
        time: now,
        principal: op.principal,
        action: 'move.abandoned',
        tenantId: op.tenantId,
        hostId: toHostId,
        outcome: 'FAILURE',
        message: `move to ${toHostId} abandoned: ${reason}`,
        details: { phase: op.progress.phase, elapsed_ms: String(now - op.progress.startedAt) },
      });
      return removed;
    });
    // Before the desired sets go out (they are sent on the next turn of the event loop).
    if (removeCopy) {
      this.ctx.retiring.add(op.tenantId, toHostId);
      this.ctx.health.delete(op.tenantId, toHostId);
    }
    this.settle(op, { ok: false, error: new PreconditionError('MOVE_ABANDONED', `move of ${op.tenantId} to ${toHostId} abandoned: ${reason}`) }, reason);
    this.ctx.log.warn({ tenantId: op.tenantId, to: toHostId, reason }, 'move abandoned');
  }

  /**
   * A wake by a move that failed before its switch: the tenant sleeps again where it was (its old
   * instance stops, its host's CPU and memory are given back), and says why; the next wake decides again.
   */
  private async backToSleep(tx: StoreTx, op: MoveOp, reason: string, now: number): Promise<boolean> {
    const tenant = await tx.tenants.get(op.tenantId);
    if (!tenant || tenant.deleting || tenant.spec.runState !== 'RUNNING' || !canTransition(tenant.status, 'SUSPENDED')) return false;
    const why = `its wake by a move to ${op.progress.toHostId} failed: ${reason}`;
    await tx.tenants.update({
      ...tenant,
      status: 'SUSPENDED',
      statusReason: suspendedReason(now, why),
      instanceRevision: tenant.instanceRevision + 1,
      updatedAt: now,
    });
    await tx.events.append({
      time: now,
      principal: op.principal,
      action: 'tenant.wake',
      tenantId: op.tenantId,
      outcome: 'FAILURE',
      message: `${why}; suspended again`,
    });
    await syncTenant(tx, op.tenantId, { now, health: this.ctx.health, principal: op.principal });
    tx.record({ kind: 'room' });
    return true;
  }

  /** The status reason's heading while the move runs. */
  private heading(op: MoveOp): string {
    return op.wake === undefined ? `moving to ${op.progress.toHostId}` : `waking up on ${op.progress.toHostId} (${op.wake})`;
  }

  /** Leaves MOVING: the status is derived again from the placements. */
  private async endMoving(tx: StoreTx, tenantId: string, now: number, principal: string): Promise<void> {
    const tenant = await tx.tenants.get(tenantId);
    if (!tenant) return;
    if (tenant.status === 'MOVING') await tx.tenants.update({ ...tenant, statusReason: '', updatedAt: now });
    await syncTenant(tx, tenantId, { now, health: this.ctx.health, principal, endMove: true });
  }

  private settle(op: MoveOp, result: { ok: true } | { ok: false; error: Error }, reason: string): void {
    this.ops.delete(op.tenantId);
    // A checkpoint still unanswered: its late answer is dropped by the hub, not kept for nobody.
    if (op.checkpointCommand !== undefined) this.ctx.hub.forgetCommand(op.checkpointCommand);
    this.finished.set(op.tenantId, { ...this.view(op), ok: result.ok, reason });
    for (const w of op.waiters) w(result);
  }

  /**
   * A coordinator that restarted takes back the moves of its rows (libs/tenancy resumeMove): each
   * goes on from where it was, completes, or is abandoned (a wake by a move then sleeps again).
   */
  private async resumeMoves(): Promise<void> {
    this.resumed = true;
    for (const row of await this.ctx.store.read.moves.list()) {
      if (this.ops.has(row.tenantId)) continue;
      try {
        await this.resumeOne(row);
      } catch (err) {
        // Left in its row: the next tick tries again.
        this.resumed = false;
        this.ctx.log.error({ err, tenantId: row.tenantId }, 'resuming a move failed; retrying next tick');
      }
    }
  }

  private async resumeOne(row: MoveRecord): Promise<void> {
    const read = this.ctx.store.read;
    const { tenantId } = row;
    const tenant = await read.tenants.get(tenantId);
    const members = await read.placements.list({ tenantId });
    const now = this.ctx.clock();
    const decision = resumeMove(
      row.progress,
      {
        tenantExists: tenant !== undefined,
        wake: row.wake !== '',
        members: members.map((p) => ({ hostId: p.hostId, role: p.role })),
        targetHostState: (await read.hosts.get(row.progress.toHostId))?.state,
        switchoverInFlight: this.failover.inFlight(tenantId) || (await read.operations.get(tenantId))?.kind === 'switchover',
      },
      now,
    );
    // A checkpoint asked before the restart is not waited for: the switch asks again.
    const op = newMoveOp({
      tenantId,
      principal: row.principal,
      wake: row.wake === '' ? undefined : row.wake,
      progress: decision.kind === 'resume' ? decision.progress : row.progress,
      steps: [...row.steps],
      lastReason: '',
    });
    this.ctx.log.info({ tenantId, phase: row.progress.phase, decision: decision.kind, reason: decision.reason }, 'move found after a restart');
    if (decision.kind === 'forget') {
      await this.ctx.store.transaction((tx) => tx.moves.delete(tenantId));
      return;
    }
    await this.ctx.store.transaction(async (tx) => {
      if (decision.kind === 'resume') await tx.moves.put(this.record(op, now));
      await tx.events.append({
        time: now,
        principal: 'system:move',
        action: 'move.resumed',
        tenantId,
        hostId: row.progress.toHostId,
        message: `the coordinator restarted during the move ${row.wake === '' ? '' : `that wakes the tenant (${row.wake}) `}from ${row.progress.fromHostId} to ${row.progress.toHostId} (${row.progress.phase}): ${decision.kind === 'abandon' ? `abandoned: ${decision.reason}` : decision.reason}`,
        details: { phase: row.progress.phase, decision: decision.kind, ...(row.wake === '' ? {} : { wake: 'true' }) },
      });
    });
    if (decision.kind === 'abandon') return await this.abandon(op, decision.reason, now);
    // What this process forgot: the old instance is deleted by its host, the copy is never deleted.
    if (decision.kind === 'complete' || op.progress.phase === 'removing') this.ctx.retiring.add(tenantId, op.progress.fromHostId);
    else this.ctx.retiring.cancel(tenantId, op.progress.toHostId);
    if (decision.kind === 'complete') {
      await this.ctx.store.transaction(async (tx) => tx.record({ kind: 'desired', tenantId, hostId: op.progress.fromHostId }));
      return await this.done(op, now, `the old instance on ${op.progress.fromHostId} is deleted by its host (the coordinator restarted meanwhile)`);
    }
    this.ops.set(tenantId, op);
    this.finished.delete(tenantId);
    if (op.wake === undefined) return;
    const { fromHostId, toHostId, primary, startedAt } = row.progress;
    for (const listener of this.resumedWakeListeners)
      listener({ tenantId, principal: row.principal, startedAt, fromHostId, toHostId, primary, reason: op.wake });
  }

  /** The move's row as of now. */
  private record(op: MoveOp, now: number): MoveRecord {
    return { tenantId: op.tenantId, progress: op.progress, principal: op.principal, wake: op.wake ?? '', steps: [...op.steps], updatedAt: now };
  }

  private view(op: MoveOp): MoveView {
    return { tenantId: op.tenantId, fromHostId: op.progress.fromHostId, toHostId: op.progress.toHostId, steps: [...op.steps] };
  }

  private async audit(
    op: MoveOp,
    step: string,
    hostId: string,
    outcome: 'SUCCESS' | 'FAILURE',
    message: string,
    details: Record<string, string>,
  ): Promise<void> {
    await this.ctx.store.transaction((tx) =>
      tx.events.append({ time: this.ctx.clock(), principal: op.principal, action: `move.${step}`, tenantId: op.tenantId, hostId, outcome, message, details }),
    );
  }
}
