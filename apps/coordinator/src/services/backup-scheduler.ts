/**
 * Runs the backups libs/tenancy decides: each tick it checks the running ones (a host that went
 * DOWN, a primary that moved or an agent that never answered fails them), then asks dueBackup for
 * a page of tenants (and at once for tenants whose primary just moved, that were just restored or
 * that just became ACTIVE),
 * records a RUNNING row and sends RunBackup to the primary's agent only. The agent's answer
 * (CommandResult.backup) finishes the row; the command id names the row, so an answer that
 * arrives after a coordinator restart still finds it.
 */
import {
  backupProblems,
  backupRunning,
  dueBackup,
  effectiveBackupPolicy,
  expiredByRetention,
  retentionDays,
  type BackupType,
  type DueBackup,
  type EffectivePolicy,
} from '@pgs/tenancy';
import { backupCommandId, currentStanzaBackups, ensureStanza, newBackupId, parseBackupCommandId } from './backup-records.js';
import type { BackupSettings } from './backup-repository.js';
import type { CoordinatorContext } from './context.js';
import { PreconditionError } from '../domain/errors.js';
import { toRunBackupCommand, type BackupResultView } from '../transport/mappers/agent-mapper.js';
import type { BackupRecord, PlacementRecord, TenantRecord } from '../domain/model.js';
import type { Commit, StoreReads, StoreTx } from '../store/contract.js';

const PRINCIPAL = 'system:backups';
/**
 * The walk checks a page of tenants at most this often: 100,000 tenants are all seen every ~8 min,
 * plenty for schedules of hours and days; tenants whose primary moved are checked at once.
 */
const PAGE = 200;
const WALK_EVERY_MS = 1000;
/**
 * Events after which a tenant is checked at once: its primary moved, it was just restored, or a
 * major upgrade (or its rollback) changed the stanza it archives into (its first full backup is due).
 */
const CHECK_AT_ONCE = new Set(['failover.completed', 'switchover.completed', 'restore.succeeded', 'upgrade.switched', 'upgrade.rolled_back']);

/** The tenant's primary when it can take a backup: realized, running, its host READY. */
export async function runningPrimary(tx: StoreReads, tenantId: string): Promise<PlacementRecord | undefined> {
  const p = (await tx.placements.list({ tenantId })).find((x) => x.role === 'PRIMARY');
  if (!p || p.realization !== 'REALIZED' || p.instanceState !== 'RUNNING' || (await tx.hosts.get(p.hostId))?.state !== 'READY') return undefined;
  return p;
}

/** One tenant's backup health as of its last check (metrics and the fleet status read it). */
export interface TenantBackupHealth {
  /** When the last good backup finished (0 = none). */
  lastGoodAt: number;
  archiveLagSeconds: number;
  archivePendingBytes: number;
  archiveFailures: number;
  /** The stanza's repository size after its last good backup. */
  repoSizeBytes: number;
  problems: string[];
}

/** Starts and finishes backups. */
export class BackupScheduler {
  private cursor: string | undefined;
  private walkedAt = 0;
  private readonly soon = new Set<string>();
  /** Per tenant, refreshed as the walk passes it (never a read of every tenant at once). */
  readonly health = new Map<string, TenantBackupHealth>();

  constructor(private readonly ctx: CoordinatorContext) {}

  /** Follows committed events: a moved primary, a finished restore or a newly ACTIVE tenant is checked at once. */
  onCommit(summary: Commit): void {
    for (const e of summary.events) {
      if (e.tenantId === '') continue;
      // A tenant that just became ACTIVE (new, restored, back from an outage) is checked at once: its first backup is due.
      if (CHECK_AT_ONCE.has(e.action) || (e.action === 'tenant.status' && e.details.to === 'ACTIVE')) this.soon.add(e.tenantId);
    }
  }

  /** One pass (the reconciler's tick). */
  async tick(): Promise<void> {
    const settings = this.ctx.backup;
    if (!settings) return;
    await this.checkRunning(settings);
    const ids = new Set(this.soon);
    this.soon.clear();
    const now = this.ctx.clock();
    if (now - this.walkedAt >= WALK_EVERY_MS) {
      this.walkedAt = now;
      // Every tenant, not only ACTIVE ones: a primary serves on under ERROR (a failed replica) too.
      const page = await this.ctx.store.read.tenants.list({}, { after: this.cursor, limit: PAGE });
      this.cursor = page.length < PAGE ? undefined : page[page.length - 1]?.id;
      for (const t of page) ids.add(t.id);
    }
    for (const id of ids) await this.maybeStart(id, settings);
  }

  /** Fails running backups whose host went down, whose primary moved, or that never got an answer. */
  private async checkRunning(settings: BackupSettings): Promise<void> {
    const now = this.ctx.clock();
    for (const b of await this.ctx.store.read.backups.listRunning()) {
      const tx = this.ctx.store;
      const primary = (await tx.read.placements.list({ tenantId: b.tenantId })).find((p) => p.role === 'PRIMARY');
      const host = await tx.read.hosts.get(b.hostId);
      let reason: string | undefined;
      if (!host || host.state === 'DOWN') reason = `host ${b.hostId} went down during the backup`;
      else if (primary && primary.hostId !== b.hostId) reason = `primary moved to ${primary.hostId} during the backup`;
      else if (now - b.startedAt > settings.timeoutMs) reason = `no answer from the agent of ${b.hostId} within ${Math.round(settings.timeoutMs / 1000)} s`;
      if (reason !== undefined) await this.fail(b, reason);
    }
  }

  /**
   * Starts the tenant's due backup, if any: decided from plain reads (most tenants have nothing due
   * and cost no write transaction), then decided again inside the transaction that records it.
   */
  private async maybeStart(tenantId: string, settings: BackupSettings): Promise<void> {
    const now = this.ctx.clock();
    const decide = async (tx: StoreReads): Promise<{ tenant: TenantRecord; primary: PlacementRecord; due: DueBackup } | undefined> => {
      const tenant = await tx.tenants.get(tenantId);
      if (!tenant || tenant.deleting) {
        this.health.delete(tenantId);
        return undefined;
      }
      const policy = effectiveBackupPolicy(tenant.spec.backup, settings.policy);
      const backups = await currentStanzaBackups(tx, tenantId);
      this.health.set(tenantId, await this.healthOf(tx, tenant, policy, backups, now));
      const primary = await runningPrimary(tx, tenantId);
      if (!primary || !this.ctx.hub.isConnected(primary.hostId)) return undefined;
      const timeline = this.ctx.health.get(tenantId, primary.hostId)?.timeline ?? 0;
      const due = dueBackup({ policy, backups, now, primary: { hostId: primary.hostId, timeline }, failureBackoffMs: settings.retryAfterMs });
      return due ? { tenant, primary, due } : undefined;
    };
    let started: BackupRecord | undefined;
    try {
      if (!(await decide(this.ctx.store.read))) return;
      started = await this.ctx.store.transaction(async (tx) => {
        const d = await decide(tx);
        return d ? await this.record(tx, d.tenant, d.primary, d.due.type, d.due.trigger, now) : undefined;
      });
    } catch (err) {
      this.ctx.log.error({ err, tenantId }, 'cannot start a scheduled backup; trying again next tick');
      return;
    }
    if (started) await this.send(started);
  }

  private async healthOf(
    tx: StoreReads,
    tenant: TenantRecord,
    policy: EffectivePolicy,
    backups: readonly BackupRecord[],
    now: number,
  ): Promise<TenantBackupHealth> {
    const primary = (await tx.placements.list({ tenantId: tenant.id })).find((p) => p.role === 'PRIMARY');
    const a = primary ? this.ctx.health.get(tenant.id, primary.hostId)?.archive : undefined;
    const good = backups.filter((b) => b.status === 'SUCCEEDED').sort((x, y) => y.finishedAt - x.finishedAt);
    const archive = a
      ? {
          failedCount: a.failedCount,
          lastArchivedAt: a.lastArchivedAt,
          lastFailedAt: a.lastFailedAt,
          lagSeconds: a.lagSeconds,
          pendingSegments: a.pendingSegments,
        }
      : undefined;
    return {
      lastGoodAt: good[0]?.finishedAt ?? 0,
      archiveLagSeconds: a?.lagSeconds ?? 0,
      archivePendingBytes: a?.pendingBytes ?? 0,
      archiveFailures: a?.failedCount ?? 0,
      repoSizeBytes: good[0]?.stanzaRepoSizeBytes ?? 0,
      problems: backupProblems({ policy, backups, archive, since: tenant.createdAt, now }),
    };
  }

  /**
   * Records a RUNNING backup of the tenant's primary inside `tx` (shared with CreateBackup): refused
   * while one runs or without a running primary. Send it with `send()` after the commit.
   */
  async record(
    tx: StoreTx,
    tenant: TenantRecord,
    primary: PlacementRecord,
    type: BackupType,
    trigger: string,
    now: number,
    principal = PRINCIPAL,
  ): Promise<BackupRecord> {
    if (backupRunning(await tx.backups.list(tenant.id)))
      throw new PreconditionError('BACKUP_RUNNING', `a backup of "${tenant.id}" is running; wait for it to finish (GetTenant shows it)`);
    const stanza = await ensureStanza(tx, tenant, now);
    const backup: BackupRecord = {
      id: await newBackupId(tx, tenant.id, now),
      tenantId: tenant.id,
      type,
      status: 'RUNNING',
      reason: '',
      hostId: primary.hostId,
      label: '',
      priorLabel: '',
      startedAt: now,
      finishedAt: 0,
      timeline: this.ctx.health.get(tenant.id, primary.hostId)?.timeline ?? 0,
      sizeBytes: 0,
      repoSizeBytes: 0,
      stanzaRepoSizeBytes: 0,
      lsnStart: '',
      lsnStop: '',
      trigger,
      stanza: stanza.stanza,
    };
    await tx.backups.insert(backup);
    await tx.events.append({
      time: now,
      principal,
      action: 'backup.started',
      tenantId: tenant.id,
      hostId: primary.hostId,
      message: `${type.toLowerCase()} backup ${backup.id} started on ${primary.hostId} (${trigger})`,
      details: { backup: backup.id, type, trigger, stanza: stanza.stanza },
    });
    return backup;
  }

  /** Sends RunBackup for a just-recorded backup; a host that is not connected fails it at once. */
  async send(b: BackupRecord): Promise<void> {
    const message = toRunBackupCommand(backupCommandId(b), b);
    if (!this.ctx.hub.send(b.hostId, message, 'run backup')) await this.fail(b, `the agent of ${b.hostId} is not connected`);
    else this.ctx.log.info({ tenantId: b.tenantId, hostId: b.hostId, backupId: b.id, type: b.type }, 'backup sent to the agent');
  }

  /** Marks a running backup FAILED (no-op when it already finished). */
  async fail(b: BackupRecord, reason: string): Promise<void> {
    const now = this.ctx.clock();
    await this.ctx.store.transaction(async (tx) => {
      const current = await tx.backups.get(b.tenantId, b.id);
      if (!current || current.status !== 'RUNNING') return;
      await tx.backups.update({ ...current, status: 'FAILED', reason, finishedAt: now });
      await tx.events.append({
        time: now,
        principal: PRINCIPAL,
        action: 'backup.failed',
        tenantId: b.tenantId,
        hostId: b.hostId,
        outcome: 'FAILURE',
        message: `backup ${b.id} failed: ${reason}`,
        details: { backup: b.id },
      });
    });
    this.ctx.log.warn({ tenantId: b.tenantId, hostId: b.hostId, backupId: b.id, reason }, 'backup failed');
  }

  /** True when `commandId` is a RunBackup's (its answer goes to `onResult`). */
  static owns(commandId: string): boolean {
    return parseBackupCommandId(commandId) !== undefined;
  }

  /** Applies an agent's answer to RunBackup: SUCCEEDED with what pgBackRest made, or FAILED with why. */
  async onResult(hostId: string, result: BackupResultView): Promise<void> {
    const ids = parseBackupCommandId(result.commandId);
    if (!ids) return;
    const now = this.ctx.clock();
    const settings = this.ctx.backup;
    const stale = await this.ctx.store.transaction(async (tx): Promise<string | undefined> => {
      const b = await tx.backups.get(ids.tenantId, ids.backupId);
      if (!b || b.status !== 'RUNNING' || b.hostId !== hostId) return b?.status ?? 'unknown';
      const r = result.made;
      if (!result.ok || !r || r.label === '') {
        const reason = result.message || result.errorCode || 'the agent reported no backup';
        await tx.backups.update({ ...b, status: 'FAILED', reason, finishedAt: now });
        await tx.events.append({
          time: now,
          principal: `host:${hostId}`,
          action: 'backup.failed',
          tenantId: b.tenantId,
          hostId,
          outcome: 'FAILURE',
          message: `backup ${b.id} failed: ${reason}`,
          details: { backup: b.id, errorCode: result.errorCode },
        });
        return;
      }
      const done: BackupRecord = {
        ...b,
        status: 'SUCCEEDED',
        reason: '',
        label: r.label,
        priorLabel: r.priorLabel,
        type: r.type ?? b.type,
        startedAt: r.startedAt || b.startedAt,
        finishedAt: r.finishedAt || now,
        sizeBytes: r.sizeBytes,
        repoSizeBytes: r.repoSizeBytes,
        stanzaRepoSizeBytes: r.stanzaRepoSizeBytes,
        lsnStart: r.lsnStart,
        lsnStop: r.lsnStop,
        timeline: r.timeline || b.timeline,
      };
      await tx.backups.update(done);
      await tx.events.append({
        time: now,
        principal: `host:${hostId}`,
        action: 'backup.succeeded',
        tenantId: b.tenantId,
        hostId,
        message: `${done.type.toLowerCase()} backup ${b.id} (${done.label}) finished: ${done.sizeBytes} bytes, ${done.repoSizeBytes} bytes added to the repository`,
        details: { backup: b.id, label: done.label, lsnStop: done.lsnStop },
      });
      // The agent expired what the retention lets go after the backup; the rows say so too.
      const tenant = await tx.tenants.get(b.tenantId);
      if (!tenant || !settings) return;
      const days = retentionDays(effectiveBackupPolicy(tenant.spec.backup, settings.policy).retentionSeconds);
      const all = await tx.backups.list(b.tenantId);
      for (const id of expiredByRetention(all, days, now)) {
        const old = all.find((x) => x.id === id);
        if (!old) continue;
        await tx.backups.update({ ...old, status: 'EXPIRED', reason: `expired by the retention of ${days} day(s)` });
        await tx.events.append({
          time: now,
          principal: PRINCIPAL,
          action: 'backup.expired',
          tenantId: b.tenantId,
          message: `backup ${old.id} (${old.label}) expired by the retention of ${days} day(s)`,
          details: { backup: old.id },
        });
      }
      return undefined;
    });
    if (stale !== undefined)
      this.ctx.log.warn({ hostId, commandId: result.commandId, status: stale }, 'backup result for no running backup of this host; ignored');
  }
}
