/**
 * Major upgrades by logical replication, executed. Decisions are libs/tenancy's (checkUpgrade,
 * decideUpgrade); this file gathers their facts, sends the agents' steps (UpgradeSource on the old
 * instance's host, UpgradeTarget on the new one's) and writes the outcome:
 *
 *   creating   an upgrade row names the new instance (target major, logical replication workers,
 *              no archiving) on another host; the row, not a placement, sends it there, so the
 *              route, failover and placement keep seeing one instance; the source gets its publications
 *   copying    schema copied and subscribed; the initial copy is polled until every table streams
 *   switching  the route goes SWITCHING (routers hold clients), the source's spec says login off and
 *              its writers are blocked, the new instance catches up and takes the sequences, then in
 *              one transaction the placement becomes the new instance (the tenant's major with it)
 *              and the row names the old one, which its host stops and keeps
 *   kept       until `--finalize` or the retention's end deletes the old instance, or `--rollback`
 *              gives it the placement back (writes made on the new major since the switch are lost)
 *
 * The row holds everything a restarted coordinator needs to resume; each agent step is idempotent.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { checkUpgrade, decideUpgrade, placeTenants, upgradeRefusalMessage, type UpgradeDecision, type UpgradeFacts, type UpgradeRefusal } from '@pgs/tenancy';
import { scramVerifier } from '@pgs/security';
import { UpgradeSource_Step, UpgradeTarget_Step, type CommandSchema, type UpgradeSourceResult } from '@pgs/proto';
import type { CoordinatorContext } from './context.js';
import { PreconditionError, notFound } from '../domain/errors.js';
import { generatePassword } from '../domain/generated-password.js';
import { newPlacement, type UpgradeRecord } from '../domain/model.js';
import type { FailoverManager } from './failover-manager.js';
import { hostCandidates } from './host-candidates.js';
import type { MoveManager } from './move-manager.js';
import type { StoreTx } from '../store/contract.js';
import type { CommandOutcome } from '../transport/agent-hub.js';
import { syncTenant } from './tenant-sync.js';
import { upgradePasswordContext } from './upgrade-secret.js';

/** The role the new instance subscribes as (created on the source by PREPARE, dropped by CLEAN). */
export const UPGRADE_USER = 'pgs_upgrade';

/** Timing of upgrades (config). */
export interface UpgradeSettings {
  /** Building and copying the new instance may take this long before the upgrade is abandoned. */
  copyTimeoutMs: number;
  /** The switch's catch-up may take this long while the routers hold clients. */
  catchUpTimeoutMs: number;
  /** Switches that may fail to catch up before the upgrade is abandoned. */
  maxSwitchAttempts: number;
  /** The old instance is kept this long after the switch (0 = until `--finalize`). */
  keepMs: number;
  /** How often upgrades in flight are advanced. */
  intervalMs: number;
}

export const DEFAULT_UPGRADE_SETTINGS: UpgradeSettings = {
  copyTimeoutMs: 30 * 60_000,
  catchUpTimeoutMs: 5_000,
  maxSwitchAttempts: 3,
  keepMs: 7 * 24 * 3600_000,
  intervalMs: 500,
};

/** What a caller sees of an upgrade. */
export interface UpgradeView {
  tenantId: string;
  phase: UpgradeRecord['phase'];
  fromMajor: number;
  toMajor: number;
  fromHostId: string;
  toHostId: string;
  reason: string;
  copyMs: number;
  switchMs: number;
  keepUntil: number;
  startedAt: number;
}

/** How an upgrade ended, for `--wait`. */
export type UpgradeOutcome = { ok: true; view: UpgradeView } | { ok: false; reason: string };

type SourceAction = MessageInitShape<typeof CommandSchema>['action'] & { case: 'upgradeSource' };
type TargetAction = MessageInitShape<typeof CommandSchema>['action'] & { case: 'upgradeTarget' };

/** Live, per tenant: what is not worth a row (re-learned after a restart). */
interface Live {
  advancing: boolean;
  sync: { tables: number; ready: number } | undefined;
  catchUp: { ok: true } | { ok: false; reason: string } | undefined;
  /** The old instance was told to stop (desired sent) after the switch. */
  stopSent: boolean;
  /** Rolling back: the old instance was told to start (desired sent at a new spec revision). */
  startSent: boolean;
  waiters: ((outcome: UpgradeOutcome) => void)[];
}

/** Runs major upgrades. */
export class UpgradeManager {
  private readonly live = new Map<string, Live>();
  /** The last finished upgrade per tenant (switched, rolled back, finalized or abandoned). */
  readonly finished = new Map<string, UpgradeOutcome>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly failover: FailoverManager,
    private readonly moves: MoveManager,
    readonly settings: UpgradeSettings = DEFAULT_UPGRADE_SETTINGS,
  ) {}

  /** Advances the upgrades every `intervalMs` until stopLoop(). */
  startLoop(): void {
    this.timer ??= setInterval(() => void this.tick(), this.settings.intervalMs);
  }

  stopLoop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** True while an upgrade of the tenant runs or its old instance is kept. */
  async inFlight(tenantId: string): Promise<boolean> {
    return (await this.ctx.store.read.upgrades.get(tenantId)) !== undefined;
  }

  /** The tenant's upgrade in flight or kept, for `tenant get` and `tenant upgrade`. */
  async get(tenantId: string): Promise<UpgradeView | undefined> {
    const u = await this.ctx.store.read.upgrades.get(tenantId);
    return u ? viewOfUpgrade(u) : undefined;
  }

  /**
   * Starts an upgrade of `tenantId` to `toMajor`; every reason it cannot is collected first (the
   * source is inspected by its agent) and refused together as one PreconditionError.
   */
  async start(tenantId: string, toMajor: number, options: { replicaIdentityFull: boolean; principal: string }): Promise<UpgradeView> {
    const read = this.ctx.store.read;
    const tenant = await read.tenants.get(tenantId);
    if (!tenant || tenant.deleting) throw notFound.tenant(tenantId);
    const placements = await read.placements.list({ tenantId });
    const source = placements.find((p) => p.role === 'PRIMARY');
    const fromMajor = Number(tenant.spec.version === '' ? this.ctx.versions.resolve('').id : tenant.spec.version);
    const existing = await read.upgrades.get(tenantId);
    const busy = existing !== undefined || this.moves.inFlight(tenantId) || this.failover.inFlight(tenantId);
    const candidates = (await hostCandidates(read, this.ctx.versions, this.ctx.slots)).filter(
      (h) =>
        h.id !== source?.hostId &&
        h.state === 'READY' &&
        !h.cordoned &&
        !h.draining &&
        this.ctx.hub.isConnected(h.id) &&
        (h.postgresMajors === undefined || h.postgresMajors.includes(String(toMajor))),
    );
    // Allocations count every upgrade's other instance on its host, so two upgrades never count on the same room.
    const request = { tenantId, resources: tenant.spec.resources, nodes: 1, placement: tenant.spec.placement, version: String(toMajor) };
    const fitting = candidates.filter((h) => placeTenants([h], [request], this.ctx.placementPolicy).unplaced.length === 0);
    const noRoomReason =
      fitting.length === 0 && candidates.length > 0 ? placeTenants(candidates, [request], this.ctx.placementPolicy).unplaced[0]?.reason : undefined;
    // Backups of the new major need a pgBackRest that knows it (on this machine's 2.45: up to 16).
    const targetProblem = this.ctx.versions.versions.some((v) => v.id === String(toMajor))
      ? this.ctx.versions.problem({ version: String(toMajor), nodes: 1, backups: this.ctx.backup !== undefined && tenant.spec.backup?.disabled !== true })
      : undefined;
    const dumpClientMajors = source ? (this.ctx.versions.hostMajors(source.hostId) ?? []).filter((m) => m.pgDump === true).map((m) => Number(m.major)) : [];
    const inspected = source && !busy ? await this.inspect(source.hostId, tenantId) : undefined;
    const checked = checkUpgrade({
      tenantId,
      fromMajor,
      toMajor,
      status: tenant.status,
      members: placements.length,
      targetHosts: fitting.map((h) => h.id),
      runnableHosts: candidates.length,
      ...(targetProblem !== undefined ? { targetProblem } : {}),
      ...(noRoomReason !== undefined ? { noRoomReason } : {}),
      dumpClientMajors,
      busy,
      replicaIdentityFull: options.replicaIdentityFull,
      source: inspected && {
        major: inspected.major,
        walLevel: inspected.walLevel,
        largeObjects: inspected.largeObjects.map(parseCount),
        unloggedTables: inspected.unloggedTables,
        tablesWithoutIdentity: inspected.tablesWithoutIdentity,
      },
    });
    const now = this.ctx.clock();
    if (!checked.ok || !source || !inspected) {
      const refusals: readonly UpgradeRefusal[] = checked.ok
        ? [{ code: 'SOURCE_UNREADABLE', message: `${tenantId} has no instance to upgrade` }]
        : checked.refusals;
      await this.ctx.store.transaction((tx) =>
        tx.events.append({
          time: now,
          principal: options.principal,
          action: 'upgrade.refused',
          tenantId,
          outcome: 'REFUSED',
          message: upgradeRefusalMessage(tenantId, refusals),
          details: { codes: refusals.map((r) => r.code).join(',') },
        }),
      );
      throw new PreconditionError(refusals[0]?.code ?? 'UPGRADE_REFUSED', upgradeRefusalMessage(tenantId, refusals));
    }
    // The host with the most memory left takes the new instance (it runs beside the old one for a while).
    const target = [...fitting].sort((a, b) => b.capacity.memoryMib - b.allocated.memoryMib - (a.capacity.memoryMib - a.allocated.memoryMib))[0];
    if (!target) throw new PreconditionError('TARGET_NOT_RUNNABLE', `no host can take PostgreSQL ${toMajor} for ${tenantId}`);
    const password = generatePassword();
    const record: UpgradeRecord = {
      tenantId,
      phase: 'creating',
      fromHostId: source.hostId,
      toHostId: target.id,
      fromMajor,
      toMajor,
      startedAt: now,
      phaseStartedAt: now,
      copyDeadline: now + this.settings.copyTimeoutMs,
      switchAttempts: 0,
      keepUntil: 0,
      request: 'none',
      principal: options.principal,
      dumpMajor: checked.dumpClientMajor,
      replicaIdentityFull: options.replicaIdentityFull,
      databases: inspected.databases,
      sealedPassword: this.ctx.keys.seal(password, upgradePasswordContext(tenantId)),
      verifier: scramVerifier(password),
      sourcePrepared: false,
      subscribed: false,
      held: false,
      writersBlocked: false,
      other: { hostId: target.id, major: toMajor, realizedRevision: 0, failedReason: '', state: '', address: '', port: 0 },
      lastReason: `building PostgreSQL ${toMajor} on ${target.id}`,
      copyMs: 0,
      switchMs: 0,
      updatedAt: now,
    };
    await this.ctx.store.transaction(async (tx) => {
      if (await tx.upgrades.get(tenantId)) throw new PreconditionError('UPGRADE_BUSY', `an upgrade of ${tenantId} already runs`);
      record.other.address = (await tx.hosts.get(target.id))?.address ?? '';
      await tx.upgrades.put(record);
      await tx.events.append({
        time: now,
        principal: options.principal,
        action: 'upgrade.started',
        tenantId,
        hostId: target.id,
        message: `upgrade from PostgreSQL ${fromMajor} on ${source.hostId} to ${toMajor} on ${target.id} started`,
        details: { from: source.hostId, to: target.id, from_major: String(fromMajor), to_major: String(toMajor) },
      });
      tx.record({ kind: 'desired', tenantId, hostId: target.id });
    });
    this.finished.delete(tenantId);
    this.ctx.log.info({ tenantId, from: source.hostId, to: target.id, fromMajor, toMajor }, 'upgrade started');
    return viewOfUpgrade(record);
  }

  /** Asks a kept upgrade to roll back or finalize (the next step does it). */
  async request(tenantId: string, request: 'rollback' | 'finalize', principal: string): Promise<UpgradeView> {
    const u = await this.ctx.store.transaction(async (tx) => {
      const row = await tx.upgrades.get(tenantId);
      if (!row) throw new PreconditionError('NO_UPGRADE', `${tenantId} has no upgrade kept for a ${request}; nothing to do`);
      // Switched (the route on the new instance, the old one stopping): the request waits in the row until the old one is kept,
      // so `--finalize` or `--rollback` right after `--wait` returned is taken rather than refused.
      const switched = row.phase === 'switching' && row.other.hostId === row.fromHostId;
      if (row.phase !== 'kept' && !switched)
        throw new PreconditionError(
          'UPGRADE_NOT_SWITCHED',
          `the upgrade of ${tenantId} is ${row.phase}; a ${request} applies once it switched (an upgrade before its switch leaves the tenant as it was when it is abandoned)`,
        );
      const next = { ...row, request, principal, updatedAt: this.ctx.clock() };
      await tx.upgrades.put(next);
      return next;
    });
    void this.advance(tenantId);
    return viewOfUpgrade(u);
  }

  /** Resolves when the upgrade switched (or was abandoned), or when a rollback or finalize ended. */
  wait(tenantId: string): Promise<UpgradeOutcome> {
    const live = this.liveOf(tenantId);
    const waiting = new Promise<UpgradeOutcome>((resolve) => live.waiters.push(resolve));
    // What ended between the caller's last read and this call is not missed: the row says so (a
    // switched upgrade names the old instance as the other one; an ended one has no row).
    this.ctx.store.read.upgrades.get(tenantId).then(
      (u) => {
        const done: UpgradeOutcome | undefined = !u
          ? this.finished.get(tenantId)
          : u.request === 'none' && u.other.hostId === u.fromHostId
            ? { ok: true, view: viewOfUpgrade(u) }
            : undefined;
        if (done) for (const w of live.waiters.splice(0)) w(done);
      },
      (err: unknown) => this.ctx.log.warn({ err, tenantId }, 'reading the upgrade for a waiter failed; it waits for the next step'),
    );
    return waiting;
  }

  /** One pass over the upgrades. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const u of await this.ctx.store.read.upgrades.list()) void this.advance(u.tenantId);
    } catch (err) {
      this.ctx.log.error({ err }, 'upgrade tick failed; retrying next tick');
    } finally {
      this.ticking = false;
    }
  }

  private liveOf(tenantId: string): Live {
    let l = this.live.get(tenantId);
    if (!l) this.live.set(tenantId, (l = { advancing: false, sync: undefined, catchUp: undefined, stopSent: false, startSent: false, waiters: [] }));
    return l;
  }

  /** Decides and applies steps until one waits (one advance per tenant at a time). */
  async advance(tenantId: string): Promise<void> {
    const live = this.liveOf(tenantId);
    if (live.advancing) return;
    live.advancing = true;
    try {
      for (let i = 0; i < 12; i++) {
        const u = await this.ctx.store.read.upgrades.get(tenantId);
        if (!u) return;
        const facts = await this.facts(u, live);
        const now = this.ctx.clock();
        const d = decideUpgrade(u, facts, { maxSwitchAttempts: this.settings.maxSwitchAttempts }, now);
        if (!(await this.apply(u, live, facts, d, now))) return;
      }
    } catch (err) {
      this.ctx.log.error({ err, tenantId }, 'upgrade step failed; retrying next tick');
    } finally {
      live.advancing = false;
    }
  }

  private async facts(u: UpgradeRecord, live: Live): Promise<UpgradeFacts> {
    const read = this.ctx.store.read;
    const tenant = await read.tenants.get(u.tenantId);
    const primary = (await read.placements.list({ tenantId: u.tenantId })).find((p) => p.role === 'PRIMARY');
    const o = u.other;
    const onTarget = o.hostId === u.toHostId;
    const health = this.ctx.health.get(u.tenantId, o.hostId);
    return {
      cancelled: !tenant || tenant.deleting || tenant.spec.runState !== 'RUNNING',
      target: onTarget
        ? {
            realized: o.realizedRevision > 0 && o.port > 0,
            healthy: o.state === 'RUNNING' && (health === undefined || (health.up && health.acceptingConnections)),
            failedReason: o.failedReason,
          }
        : { realized: true, healthy: true, failedReason: '' },
      sourcePrepared: u.sourcePrepared,
      subscribed: u.subscribed,
      sync: live.sync,
      held: u.held,
      writersBlocked: u.writersBlocked,
      catchUp: live.catchUp,
      routeOnTarget: primary?.hostId === u.toHostId,
      oldStopped: !onTarget && (o.state === 'STOPPED' || (await read.hosts.get(o.hostId))?.state === 'DOWN'),
      // The old instance realized the tenant's current spec (the rollback's start bumped its revision) and serves.
      oldReady:
        !onTarget &&
        tenant !== undefined &&
        o.state === 'RUNNING' &&
        o.realizedRevision >= tenant.instanceRevision &&
        (health === undefined || (health.up && health.acceptingConnections)),
      request: u.request,
    };
  }

  /** Applies one decision; true when the next step may be decided at once. */
  private async apply(u: UpgradeRecord, live: Live, f: UpgradeFacts, d: UpgradeDecision, now: number): Promise<boolean> {
    switch (d.kind) {
      case 'wait':
        if (u.phase === 'switching' && f.routeOnTarget && f.oldStopped) return await this.kept(u, now);
        await this.reason(u, d.reason);
        return false;
      case 'prepare_source': {
        const r = await this.source(u, {
          step: UpgradeSource_Step.PREPARE,
          user: UPGRADE_USER,
          scramVerifier: u.verifier,
          replicaIdentityFull: u.replicaIdentityFull,
        });
        if (!r.ok) return await this.failed(u, `preparing the old instance failed: ${r.message}`);
        await this.put(u, { sourcePrepared: true, lastReason: `publications ready on ${u.fromHostId}` });
        return true;
      }
      case 'subscribe': {
        const change = {
          phase: 'copying',
          phaseStartedAt: u.phase === 'creating' ? now : u.phaseStartedAt,
          lastReason: 'copying the schema and subscribing',
        } as const;
        const copying: UpgradeRecord = { ...u, ...change };
        await this.put(u, change);
        const r = await this.target(copying, { step: UpgradeTarget_Step.SUBSCRIBE, timeoutMs: Math.max(1000, u.copyDeadline - now) }, u.copyDeadline - now);
        if (!r.ok) return await this.failed(copying, `copying the schema failed: ${r.message}`);
        await this.put(u, { subscribed: true, lastReason: 'initial copy running' });
        return true;
      }
      case 'poll_sync': {
        const r = await this.target(u, { step: UpgradeTarget_Step.SYNC_STATE }, 30_000);
        if (!r.ok) return await this.failed(u, `reading the copy's progress failed: ${r.message}`);
        const t = r.upgradeTarget;
        live.sync = { tables: t?.tables ?? 0, ready: t?.ready ?? 0 };
        await this.reason(u, `initial copy: ${live.sync.ready} of ${live.sync.tables} tables streaming`);
        return live.sync.tables > 0 && live.sync.ready >= live.sync.tables;
      }
      case 'hold':
        live.catchUp = undefined;
        await this.ctx.store.transaction(async (tx) => {
          await changeUpgrade(
            tx,
            u.tenantId,
            {
              phase: 'switching',
              held: true,
              writersBlocked: false,
              copyMs: now - u.startedAt,
              phaseStartedAt: now,
              lastReason: 'switching: routers hold clients',
            },
            now,
          );
          // The route goes SWITCHING, and the source's spec says login off (see desired-set.ts).
          await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
          tx.record({ kind: 'desired', tenantId: u.tenantId });
        });
        return true;
      case 'block_writers': {
        const r = await this.source(u, { step: UpgradeSource_Step.BLOCK_WRITERS, roles: await this.roles(u.tenantId) });
        if (!r.ok) return await this.failed(u, `blocking the old instance's writers failed: ${r.message}`);
        await this.put(u, { writersBlocked: true });
        return true;
      }
      case 'catch_up': {
        const r = await this.target(
          u,
          { step: UpgradeTarget_Step.CATCH_UP, timeoutMs: this.settings.catchUpTimeoutMs },
          this.settings.catchUpTimeoutMs + 10_000,
        );
        live.catchUp = r.ok ? { ok: true } : { ok: false, reason: r.message };
        return true;
      }
      case 'switch_route':
        await this.switchRoute(u, now);
        return true;
      case 'drop_subscriptions': {
        // The route left the old instance: its subscriptions and their slots are cleanup, done while clients already use the new one.
        const r = await this.target(u, { step: UpgradeTarget_Step.ABANDON }, 60_000);
        if (!r.ok) return await this.failed(u, `dropping the subscriptions on the new instance failed: ${r.message}`);
        // The old instance ran on for its slots; now its spec says stopped.
        await this.ctx.store.transaction(async (tx) => {
          await changeUpgrade(tx, u.tenantId, { subscribed: false }, now);
          tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.fromHostId });
        });
        return true;
      }
      case 'stop_old':
        if (!live.stopSent) {
          live.stopSent = true;
          await this.ctx.store.transaction(async (tx) => tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.fromHostId }));
        }
        await this.reason(u, `stopping the old PostgreSQL ${u.fromMajor} instance on ${u.fromHostId}`);
        return false;
      case 'retry_switch':
        await this.release(
          u,
          { phase: 'copying', held: false, writersBlocked: false, switchAttempts: u.switchAttempts + 1, lastReason: `switch retried: ${d.reason}` },
          now,
        );
        live.catchUp = undefined;
        await this.audit(u, 'switch_retried', 'FAILURE', `the new instance did not catch up within the hold; clients went back to the old one: ${d.reason}`);
        return false;
      case 'abandon':
        await this.abandon(u, live, d.reason, now);
        return false;
      case 'start_old':
        if (!live.startSent) {
          live.startSent = true;
          // A new spec revision: the old instance is ready once it realized it (started, roles allowed to log in).
          await this.ctx.store.transaction(async (tx) => {
            const tenant = await tx.tenants.get(u.tenantId);
            if (tenant) await tx.tenants.update({ ...tenant, instanceRevision: tenant.instanceRevision + 1, updatedAt: now });
            tx.record({ kind: 'desired', tenantId: u.tenantId });
            tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.fromHostId });
          });
        }
        await this.reason(u, `rolling back: starting the old PostgreSQL ${u.fromMajor} instance on ${u.fromHostId} (clients still use ${u.toMajor})`);
        return false;
      case 'rollback_hold':
        await this.ctx.store.transaction(async (tx) => {
          await changeUpgrade(
            tx,
            u.tenantId,
            { held: true, writersBlocked: false, phaseStartedAt: now, lastReason: 'rolling back: routers hold clients' },
            now,
          );
          await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
          tx.record({ kind: 'desired', tenantId: u.tenantId });
        });
        return true;
      case 'block_new_writers': {
        // Nothing may commit on the new instance once the route leaves it; were it to fail, the new
        // instance's deletion ends its sessions anyway, so the rollback goes on rather than hold clients.
        const r = await this.command(
          u.toHostId,
          u.tenantId,
          'upgrade-source',
          { case: 'upgradeSource', value: { databases: u.databases, step: UpgradeSource_Step.BLOCK_WRITERS, roles: await this.roles(u.tenantId) } },
          30_000,
        );
        if (!r.ok)
          this.ctx.log.warn({ tenantId: u.tenantId, reason: r.message }, 'blocking the new instance writers for the rollback failed; rolling back anyway');
        await this.put(u, { writersBlocked: true });
        return true;
      }
      case 'rollback':
        await this.rollback(u, live, now);
        return false;
      case 'finalize':
        await this.finalize(u, live, d.reason, now);
        return false;
    }
  }

  /** The route moves to the new instance, which becomes the tenant's placement (and its major the tenant's). */
  private async switchRoute(u: UpgradeRecord, now: number): Promise<void> {
    const switchMs = now - u.phaseStartedAt;
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(u.tenantId);
      const old = (await tx.placements.list({ tenantId: u.tenantId })).find((p) => p.hostId === u.fromHostId);
      if (!tenant || !old) throw new Error(`the tenant or its old placement went away during the switch of ${u.tenantId}`);
      const revision = tenant.instanceRevision + 1;
      await tx.placements.delete(u.tenantId, u.fromHostId);
      // The new instance as last reported (the copy read before the catch-up may be older).
      const o = (await tx.upgrades.get(u.tenantId))?.other ?? u.other;
      await tx.placements.insert({
        ...newPlacement({ tenantId: u.tenantId, hostId: u.toHostId, role: 'PRIMARY', address: o.address, now }),
        realization: 'REALIZED',
        instanceState: o.state,
        port: o.port,
        realizedRevision: revision,
        realizedOnce: true,
      });
      await tx.tenants.update({ ...tenant, spec: { ...tenant.spec, version: String(u.toMajor) }, instanceRevision: revision, updatedAt: now });
      // A stanza belongs to one database system: the new major archives into a stanza of its own from
      // now on (its first full backup is due at once); the old one keeps the backups of the old major.
      const stanzaBefore = await tx.backups.getStanza(u.tenantId);
      if (stanzaBefore)
        await tx.backups.putStanza({
          tenantId: u.tenantId,
          stanza: upgradeStanzaName(stanzaBefore.stanza, u.toMajor, now),
          archivedThrough: 0,
          lastArchivedWal: '',
          createdAt: now,
        });
      await changeUpgrade(
        tx,
        u.tenantId,
        {
          held: false,
          writersBlocked: false,
          ...(stanzaBefore ? { stanzaBefore } : {}),
          switchMs,
          other: {
            hostId: u.fromHostId,
            major: u.fromMajor,
            realizedRevision: old.realizedRevision,
            failedReason: '',
            state: old.instanceState,
            address: old.address,
            port: old.port,
          },
          lastReason: `switched to PostgreSQL ${u.toMajor} on ${u.toHostId}; stopping the old instance`,
        },
        now,
      );
      await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
      tx.record({ kind: 'desired', tenantId: u.tenantId });
      tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.fromHostId });
      await tx.events.append({
        time: now,
        principal: u.principal,
        action: 'upgrade.switched',
        tenantId: u.tenantId,
        hostId: u.toHostId,
        message: `${u.tenantId} runs PostgreSQL ${u.toMajor} on ${u.toHostId}; clients were held ${switchMs} ms`,
        details: { switch_ms: String(switchMs), copy_ms: String(u.copyMs), from: u.fromHostId },
      });
    });
    this.ctx.log.warn({ tenantId: u.tenantId, switchMs, copyMs: u.copyMs }, 'upgrade switched');
    const switched = await this.ctx.store.read.upgrades.get(u.tenantId);
    if (switched) this.settle(u.tenantId, { ok: true, view: viewOfUpgrade(switched) });
  }

  /** The old instance stopped: the upgrade is kept for a rollback until finalized or its retention ends. */
  private async kept(u: UpgradeRecord, now: number): Promise<boolean> {
    const keepUntil = this.settings.keepMs > 0 ? now + this.settings.keepMs : 0;
    await this.put(u, {
      phase: 'kept',
      keepUntil,
      phaseStartedAt: now,
      lastReason: `the old PostgreSQL ${u.fromMajor} instance on ${u.fromHostId} is kept for a rollback`,
    });
    await this.audit(
      u,
      'kept',
      'SUCCESS',
      `the old instance on ${u.fromHostId} is stopped and kept ${keepUntil > 0 ? `until ${new Date(keepUntil).toISOString()}` : 'until finalized'}`,
    );
    return true;
  }

  /** Clients go back to the old instance: its writers are allowed again and the hold is released. */
  private async release(u: UpgradeRecord, change: Partial<UpgradeRecord>, now: number): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      await changeUpgrade(tx, u.tenantId, change, now);
      await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
      tx.record({ kind: 'desired', tenantId: u.tenantId });
    });
    if (u.writersBlocked || u.held) {
      const r = await this.source(u, { step: UpgradeSource_Step.UNBLOCK_WRITERS, roles: await this.roles(u.tenantId) });
      if (!r.ok) this.ctx.log.warn({ tenantId: u.tenantId, reason: r.message }, 'unblocking writers failed; the spec logs them in again');
    }
  }

  private async abandon(u: UpgradeRecord, live: Live, reason: string, now: number): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      await tx.upgrades.delete(u.tenantId);
      await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
      tx.record({ kind: 'desired', tenantId: u.tenantId });
      tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.toHostId });
      await tx.events.append({
        time: now,
        principal: u.principal,
        action: 'upgrade.abandoned',
        tenantId: u.tenantId,
        hostId: u.toHostId,
        outcome: 'FAILURE',
        message: `upgrade to PostgreSQL ${u.toMajor} abandoned (${u.tenantId} stays on ${u.fromMajor}): ${reason}`,
        details: { phase: u.phase, elapsed_ms: String(now - u.startedAt) },
      });
    });
    // Before the desired sets go out (next turn of the event loop): the new instance is deleted.
    this.ctx.retiring.add(u.tenantId, u.toHostId);
    this.ctx.health.delete(u.tenantId, u.toHostId);
    if (u.writersBlocked || u.held) await this.source(u, { step: UpgradeSource_Step.UNBLOCK_WRITERS, roles: await this.roles(u.tenantId) });
    if (u.sourcePrepared) await this.source(u, { step: UpgradeSource_Step.CLEAN, user: UPGRADE_USER });
    this.ctx.log.warn({ tenantId: u.tenantId, reason }, 'upgrade abandoned');
    this.end(u.tenantId, live, { ok: false, reason: `upgrade of ${u.tenantId} to PostgreSQL ${u.toMajor} abandoned: ${reason}` });
  }

  /**
   * The old instance, running and held for, takes the placement back and the hold ends in the same
   * transaction; the new one (and what was written to it since the switch) is deleted, and the old
   * one's side of the upgrade (publications, leftover slots, the subscription role) is cleaned.
   */
  private async rollback(u: UpgradeRecord, live: Live, now: number): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      const tenant = await tx.tenants.get(u.tenantId);
      if (!tenant) return;
      const o = u.other;
      const revision = tenant.instanceRevision + 1;
      await tx.placements.delete(u.tenantId, u.toHostId);
      await tx.placements.insert({
        ...newPlacement({ tenantId: u.tenantId, hostId: o.hostId, role: 'PRIMARY', address: o.address, now }),
        realization: 'REALIZED',
        instanceState: o.state,
        port: o.port,
        realizedRevision: o.realizedRevision,
        realizedOnce: true,
      });
      await tx.tenants.update({ ...tenant, spec: { ...tenant.spec, version: String(u.fromMajor) }, instanceRevision: revision, updatedAt: now });
      // The old major archives into its own stanza again, where its backups are.
      if (u.stanzaBefore) await tx.backups.putStanza(u.stanzaBefore);
      await tx.upgrades.delete(u.tenantId);
      await syncTenant(tx, u.tenantId, { now, health: this.ctx.health, principal: u.principal });
      tx.record({ kind: 'desired', tenantId: u.tenantId });
      tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.toHostId });
      await tx.events.append({
        time: now,
        principal: u.principal,
        action: 'upgrade.rolled_back',
        tenantId: u.tenantId,
        hostId: o.hostId,
        message: `${u.tenantId} runs PostgreSQL ${u.fromMajor} on ${o.hostId} again with its data as of the switch; the PostgreSQL ${u.toMajor} instance on ${u.toHostId} is deleted; clients were held ${now - u.phaseStartedAt} ms`,
        details: { from: u.toHostId, to: o.hostId, hold_ms: String(now - u.phaseStartedAt) },
      });
    });
    this.ctx.retiring.add(u.tenantId, u.toHostId);
    this.ctx.health.delete(u.tenantId, u.toHostId);
    this.ctx.log.warn({ tenantId: u.tenantId, holdMs: now - u.phaseStartedAt }, 'upgrade rolled back');
    const clean = await this.source(u, { step: UpgradeSource_Step.CLEAN, user: UPGRADE_USER });
    if (!clean.ok) {
      this.ctx.log.warn({ tenantId: u.tenantId, reason: clean.message }, 'cleaning the old instance after the rollback failed');
      await this.audit(
        u,
        'clean_failed',
        'FAILURE',
        `the publication "pgs_upgrade", upgrade slots and role ${UPGRADE_USER} may remain on ${u.fromHostId} (drop them by hand): ${clean.message}`,
      );
    }
    this.end(u.tenantId, live, { ok: true, view: { ...viewOfUpgrade(u), reason: 'rolled back' } });
  }

  private async finalize(u: UpgradeRecord, live: Live, reason: string, now: number): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      await tx.upgrades.delete(u.tenantId);
      tx.record({ kind: 'desired', tenantId: u.tenantId, hostId: u.fromHostId });
      await tx.events.append({
        time: now,
        principal: u.principal,
        action: 'upgrade.finalized',
        tenantId: u.tenantId,
        hostId: u.fromHostId,
        message: `the old PostgreSQL ${u.fromMajor} instance on ${u.fromHostId} is deleted: ${reason}`,
      });
    });
    this.ctx.retiring.add(u.tenantId, u.fromHostId);
    this.ctx.health.delete(u.tenantId, u.fromHostId);
    this.end(u.tenantId, live, { ok: true, view: { ...viewOfUpgrade(u), reason: 'finalized' } });
  }

  /** A step failed: before the switch the upgrade is abandoned with the reason; after it, retried. */
  private async failed(u: UpgradeRecord, reason: string): Promise<boolean> {
    if (u.phase === 'switching' || u.phase === 'kept') {
      await this.reason(u, `${reason}; retrying`);
      return false;
    }
    await this.abandon(u, this.liveOf(u.tenantId), reason, this.ctx.clock());
    return false;
  }

  private end(tenantId: string, live: Live, outcome: UpgradeOutcome): void {
    this.live.delete(tenantId);
    this.finished.set(tenantId, outcome);
    for (const w of live.waiters.splice(0)) w(outcome);
  }

  private settle(tenantId: string, outcome: UpgradeOutcome): void {
    const live = this.liveOf(tenantId);
    for (const w of live.waiters.splice(0)) w(outcome);
  }

  /** Writes a step's change onto the row as stored now (see changeUpgrade). */
  private async put(u: UpgradeRecord, change: Partial<UpgradeRecord>): Promise<void> {
    await this.ctx.store.transaction((tx) => changeUpgrade(tx, u.tenantId, change, this.ctx.clock()));
  }

  private async reason(u: UpgradeRecord, reason: string): Promise<void> {
    if (u.lastReason !== reason) await this.put(u, { lastReason: reason });
  }

  private async audit(u: UpgradeRecord, step: string, outcome: 'SUCCESS' | 'FAILURE', message: string): Promise<void> {
    await this.ctx.store.transaction((tx) =>
      tx.events.append({ time: this.ctx.clock(), principal: u.principal, action: `upgrade.${step}`, tenantId: u.tenantId, outcome, message }),
    );
  }

  /** The tenant's login roles (blocked and unblocked at the switch). */
  private async roles(tenantId: string): Promise<string[]> {
    return (await this.ctx.store.read.users.list(tenantId)).filter((x) => x.status !== 'DELETING').map((x) => x.name);
  }

  /** Reads what checkUpgrade needs from the source; undefined when its agent could not. */
  private async inspect(hostId: string, tenantId: string): Promise<UpgradeSourceResult | undefined> {
    const r = await this.command(hostId, tenantId, 'upgrade-inspect', { case: 'upgradeSource', value: { step: UpgradeSource_Step.INSPECT } }, 30_000);
    if (!r.ok) this.ctx.log.warn({ tenantId, hostId, reason: r.message }, 'the source of an upgrade could not be inspected');
    return r.ok ? r.upgradeSource : undefined;
  }

  private source(u: UpgradeRecord, value: SourceAction['value']): Promise<CommandOutcome> {
    return this.command(u.fromHostId, u.tenantId, 'upgrade-source', { case: 'upgradeSource', value: { databases: u.databases, ...value } }, 60_000);
  }

  private async target(u: UpgradeRecord, value: TargetAction['value'], timeoutMs: number): Promise<CommandOutcome> {
    const source = (await this.ctx.store.read.placements.list({ tenantId: u.tenantId })).find((p) => p.hostId === u.fromHostId);
    return this.command(
      u.toHostId,
      u.tenantId,
      'upgrade-target',
      {
        case: 'upgradeTarget',
        value: {
          sourceAddress: source?.address ?? '',
          sourcePort: source?.port ?? 0,
          user: UPGRADE_USER,
          password: this.ctx.keys.openText(u.sealedPassword, upgradePasswordContext(u.tenantId)),
          databases: u.databases,
          dumpMajor: String(u.dumpMajor),
          ...value,
        },
      },
      Math.max(5_000, timeoutMs),
    );
  }

  /** Sends one step and waits for its answer (a lost host or no answer in time is a failed step). */
  private async command(
    hostId: string,
    tenantId: string,
    what: string,
    action: MessageInitShape<typeof CommandSchema>['action'],
    timeoutMs: number,
  ): Promise<CommandOutcome> {
    const failed = (message: string): CommandOutcome => ({
      hostId,
      ok: false,
      errorCode: 'UPGRADE_STEP_FAILED',
      message,
      lsn: '',
      timeline: 0,
      at: this.ctx.clock(),
    });
    const id = this.ctx.hub.sendAction(hostId, tenantId, what, action);
    if (id === undefined) return failed(`the agent of ${hostId} is not connected`);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const r = this.ctx.hub.takeResult(id);
      if (r) return r;
      if (performance.now() >= deadline) {
        this.ctx.hub.forgetCommand(id);
        return failed(`the agent of ${hostId} did not answer ${what} within ${Math.round(timeoutMs / 1000)} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/**
 * Writes a step's `change` onto the upgrade row as stored now, inside `tx`. Others write the row
 * while a step runs (agents' reports: the other instance's state, port and revision; an operator's
 * rollback or finalize; key rotation: the sealed password), so writing back the copy read before
 * the step would undo them: an old instance reported stopped meanwhile would never count as
 * stopped, since a report that repeats the last one applied is not written again.
 */
async function changeUpgrade(tx: StoreTx, tenantId: string, change: Partial<UpgradeRecord>, now: number): Promise<UpgradeRecord | undefined> {
  const row = await tx.upgrades.get(tenantId);
  if (!row) return undefined;
  const next = { ...row, ...change, updatedAt: now };
  await tx.upgrades.put(next);
  return next;
}

/**
 * The stanza a tenant's new major archives into after an upgrade: the old name with the major and
 * the switch's time (an upgrade rolled back and tried again gets another one: the abandoned
 * instance's stanza belongs to a database system that is gone).
 */
export function upgradeStanzaName(before: string, toMajor: number, now: number): string {
  const base = before.replace(/-pg\d+-\d+$/, '');
  return `${base}-pg${toMajor}-${now}`;
}

/** "database: count" as the agent reports large objects. */
function parseCount(s: string): { database: string; count: number } {
  const at = s.lastIndexOf(': ');
  return at < 0 ? { database: s, count: 1 } : { database: s.slice(0, at), count: Number(s.slice(at + 2)) || 1 };
}

/** What a caller sees of an upgrade row (never its secret). */
export function viewOfUpgrade(u: UpgradeRecord): UpgradeView {
  return {
    tenantId: u.tenantId,
    phase: u.phase,
    fromMajor: u.fromMajor,
    toMajor: u.toMajor,
    fromHostId: u.fromHostId,
    toHostId: u.toHostId,
    reason: u.lastReason,
    copyMs: u.copyMs,
    switchMs: u.switchMs,
    keepUntil: u.keepUntil,
    startedAt: u.startedAt,
  };
}
