/**
 * Keeps the instances on this host equal to what the coordinator wants, and knows the truth about
 * them. Each tenant has one queue: converges (create, reconfigure, start, stop, delete) and
 * commands run one at a time per tenant, in order, and a converge asked for while one is queued
 * is merged into it. A health loop watches every instance: one that died behind the agent's back
 * is reported CRASHED and brought back. Status changes are pushed to a listener (the agent loop).
 *
 * Rules that protect data: a tenant merely absent from a desired set is left alone; only an
 * explicit removal deletes, and it is logged; an instance whose data vanished is reported FAILED,
 * never re-created empty behind the coordinator's back.
 *
 * Rules that keep one primary: a fenced instance never runs as a primary again until a
 * spec with a higher revision says PRIMARY (as a replica it may: it is rewound and follows the new
 * primary); a primary whose spec says fence_on_lease_expiry is stopped at once when the agent's
 * lease runs out, and is started as a primary only while the lease holds and once the coordinator
 * has confirmed its spec since the agent started or the lease was lost.
 *
 * Backups (pgBackRest, through the runtime's `backups`): the repository from the last Welcome goes
 * to the runtime; a primary with backups gets its stanza created in the background once it runs;
 * RunBackup and ExpireBackup run outside the tenant's queue (a backup of minutes holds up neither
 * the tenant's converges nor anything else); a restore that cannot succeed (target after the
 * archive's end, wrong key, no backup before the target) is reported once and not retried until a
 * newer spec revision arrives.
 */
import { isValidTenantId, leaseHoldReason, type Resources } from '@pgs/tenancy';
import type { Logger } from '@pgs/service-kit';
import { readArchiveStatus } from './backup/archive-status.js';
import { ArchivedThrough } from './backup/archived-through.js';
import type { BackupRepository, RecoveryResult } from './backup/backup-types.js';
import { InitSqlExecutor } from './init-sql.js';
import { objectsFingerprint } from './objects-fingerprint.js';
import { AgentError, codeOf, messageOf, RestoreError } from './errors.js';
import { downHealth, HealthProbe, startedHealth } from './health.js';
import { KeptConnections } from './kept-connections.js';
import type { InstanceAdmin } from './instance-admin.js';
import type { AgentMetrics } from './metrics.js';
import type { AgentCommand, CommandAction, CommandOutcome, DesiredInstance, DesiredSet, InstanceHealth, InstanceStatus } from './model.js';
import { ReplicationAdmin } from './replication-admin.js';
import { SenderWatch } from './sender-watch.js';
import { Slots } from './slots.js';
import type { UpgradeRunner } from './upgrade/upgrade-runner.js';
import type { InstanceRuntime, InstanceTls, RuntimeInstance, RuntimeSpec } from './runtime/runtime.js';

/** The lease as the manager sees it (lease.ts). */
export interface LeaseView {
  valid(): boolean;
  /** Epoch ms at which the lease runs out (0: never held). */
  readonly deadline: number;
  onExpire(listener: () => void): void;
}

/** What the manager needs. */
export interface InstanceManagerOptions {
  runtime: InstanceRuntime;
  admin: InstanceAdmin;
  log: Logger;
  metrics: AgentMetrics;
  healthIntervalMs: number;
  clock?: () => number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** The agent's lease from the coordinator; absent: it always holds (no lease fencing). */
  lease?: LeaseView;
  /** Retry delay cap while a replica waits for its primary (created at the same time, or being promoted). */
  primaryWaitMaxMs?: number;
  /** Instances created at the same time, at most (0 or absent: no limit); the rest wait in order. */
  maxConcurrentCreates?: number;
  /** Period of the look at running replicas' walreceivers (sender-watch.ts); 0 or absent: off. */
  senderWatchMs?: number;
  /** How old a measured database size may be before the health round reads it again (default 10 s). */
  healthSizeEveryMs?: number;
  /** Runs major-upgrade steps; absent: they are answered NOT_SUPPORTED. */
  upgrades?: UpgradeRunner;
}

interface Entry {
  tenantId: string;
  /** What to converge to; from the coordinator, or from the runtime's record for an adopted instance. */
  desired: DesiredInstance | undefined;
  deleting: boolean;
  status: InstanceStatus;
  chain: Promise<void>;
  pendingOps: number;
  convergeQueued: boolean;
  failures: number;
  retryTimer: NodeJS.Timeout | undefined;
  /** Set by a Fence command: stay stopped until a newer spec revision arrives. */
  fencedAtRevision: number | undefined;
  /** The coordinator sent (or confirmed) this spec since the agent started or its lease was lost. */
  confirmed: boolean;
  /** The stanza stanza-create last succeeded for ('' = not yet), the run in flight, and when to try again after a failure. */
  stanzaReady: string;
  stanzaWork: Promise<void> | undefined;
  stanzaRetryAt: number;
  /** A RunBackup is running (one at a time per tenant). */
  backupRunning: boolean;
  /** The spec revision whose restore failed for good (not retried until a newer revision). */
  restoreFailedAtRevision: number | undefined;
  /**
   * The objects (roles, databases, replication role and slots) last applied to this instance as a
   * primary, as a digest; cleared whenever the instance may have changed under it (a replica spec,
   * a failed realization, a removal, a new instance).
   */
  objectsApplied?: string;
}

/** Restore failures that the same spec can never get past: reported once, not retried. */
const PERMANENT_RESTORE_ERRORS = new Set([
  'RESTORE_TARGET_NOT_REACHED',
  'BACKUP_KEY',
  'NO_BACKUP_BEFORE_TARGET',
  'BACKUP_NOT_FOUND',
  'RESTORE_REFUSED',
  'NOT_SUPPORTED',
  'INVALID_IDENTIFIER',
]);

/** How long after a failed stanza-create the health loop tries again. */
const STANZA_RETRY_MS = 30_000;

/** A desired instance rebuilt from what a runtime remembers (roles live in the instance itself; no secret is kept). */
function desiredFromRuntime(inst: RuntimeInstance): DesiredInstance {
  const s = inst.spec;
  const r = s.replication;
  return {
    tenantId: inst.tenantId,
    specRevision: s.specRevision,
    role: s.role ?? 'PRIMARY',
    resources: s.resources,
    version: s.version,
    image: s.image,
    runState: s.runState,
    roles: [],
    databases: [],
    dropRoles: [],
    dropDatabases: [],
    port: s.port,
    primaryAddress: r?.primaryAddress ?? '',
    primaryPort: r?.primaryPort ?? 0,
    synchronousStandbyNames: r?.synchronousStandbyNames ?? '',
    replicationSecret: '',
    replicationUser: r?.user ?? '',
    fenceOnLeaseExpiry: s.fenceOnLeaseExpiry ?? false,
    replicationSlots: [],
    replicationSlot: r?.slot ?? '',
    standbyName: r?.standbyName ?? '',
    ...(s.backup ? { backup: s.backup } : {}),
    ...(s.restore ? { restore: s.restore } : {}),
    ...(s.upgradeSubscriber ? { upgradeSubscriber: true } : {}),
  };
}

function runtimeSpec(d: DesiredInstance): RuntimeSpec {
  const spec: RuntimeSpec = {
    tenantId: d.tenantId,
    specRevision: d.specRevision,
    resources: d.resources,
    version: d.version,
    image: d.image,
    port: d.port,
    runState: d.runState,
    role: d.role,
    fenceOnLeaseExpiry: d.fenceOnLeaseExpiry,
  };
  if (d.backup) spec.backup = d.backup;
  if (d.restore) spec.restore = d.restore;
  if (d.upgradeSubscriber) spec.upgradeSubscriber = true;
  if (d.replicationUser !== '') {
    spec.replication = {
      user: d.replicationUser,
      // A primary gets a verifier, which is not a password; only a replica logs in.
      password: d.role === 'REPLICA' ? d.replicationSecret : '',
      primaryAddress: d.primaryAddress,
      primaryPort: d.primaryPort,
      slot: d.replicationSlot,
      standbyName: d.standbyName,
      synchronousStandbyNames: d.synchronousStandbyNames,
    };
  }
  return spec;
}

/**
 * Fields whose change is worth a report right away (sizes and connection counts wait for the steady
 * report); for a replicated tenant also its WAL position, timeline and lag, which failover and
 * switchover decisions read.
 */
function significant(s: InstanceStatus, replicated: boolean): string {
  const base = [
    s.realization,
    s.state,
    s.reason,
    s.address,
    s.port,
    s.runtimeId,
    s.pid,
    s.specRevision,
    s.health?.up,
    s.health?.acceptingConnections,
    s.health?.role,
    (s.health?.busyBackends ?? 0) > 0,
    s.recovery?.restoreId,
    s.recovery?.ok,
    s.recovery?.errorCode,
  ];
  return JSON.stringify(replicated ? [...base, s.health?.lsn, s.health?.timeline, s.health?.lagBytes, s.health?.senderLostAt ?? 0] : base);
}

/** The instance manager. */
/** How long a planned switch's standby may take to replay the old primary's last WAL before its promotion is refused. */
const REPLAY_WAIT_MS = 10_000;

export class InstanceManager {
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger;
  private readonly clock: () => number;
  private listener: (status: InstanceStatus) => void = () => undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private senderTimer: NodeJS.Timeout | undefined;
  private readonly senderWatch: SenderWatch;
  private readonly kept: KeptConnections;
  private readonly health: HealthProbe;
  /** Each backed-up primary's archive progress (the end of its recovery window), by tenant. */
  private readonly archived = new Map<string, ArchivedThrough>();
  private healthRunning = false;
  private closed = false;
  private tls: InstanceTls = { files: undefined, required: false };

  private readonly replication: ReplicationAdmin;
  private readonly creates: Slots;

  private readonly initSql: InitSqlExecutor;

  constructor(private readonly o: InstanceManagerOptions) {
    this.log = o.log.child({ component: 'instances' });
    this.creates = new Slots(o.maxConcurrentCreates ?? 0);
    this.clock = o.clock ?? Date.now;
    this.kept = new KeptConnections(o.admin, this.log);
    this.health = new HealthProbe(this.kept, this.clock, this.log, o.healthSizeEveryMs);
    this.senderWatch = new SenderWatch(this.kept, this.log, this.clock);
    this.replication = new ReplicationAdmin(o.admin, this.log);
    this.initSql = new InitSqlExecutor(
      o.admin,
      (tenantId, database) => o.runtime.adminConnection(tenantId, database),
      this.log.child({ component: 'init-sql' }),
    );
    o.lease?.onExpire(() => this.fenceOnLeaseLoss());
  }

  /** Called with a copy of an instance's status whenever something significant changed. */
  onChange(listener: (status: InstanceStatus) => void): void {
    this.listener = listener;
  }

  /** Adopts what already runs on this host, brings back what should run, and starts the health loop. */
  async start(): Promise<void> {
    for (const inst of await this.o.runtime.list()) {
      const desired = desiredFromRuntime(inst);
      const e = this.entry(inst.tenantId);
      e.desired = desired;
      const wantRunning = this.mayRun(e, desired, inst.running);
      e.status = {
        ...e.status,
        realization: inst.running === wantRunning ? 'REALIZED' : 'PENDING',
        state: inst.running ? 'RUNNING' : wantRunning ? 'CRASHED' : 'STOPPED',
        address: inst.address,
        port: inst.port,
        runtimeId: inst.runtimeId,
        pid: inst.pid,
        specRevision: desired.specRevision,
        health: inst.running ? await this.measure(inst.tenantId) : downHealth(this.clock()),
      };
      if (inst.recovery) e.status.recovery = inst.recovery;
      this.log.info(
        { tenantId: inst.tenantId, running: inst.running, pid: inst.pid, port: inst.port },
        inst.running ? 'adopted a running instance' : 'found a stopped instance',
      );
      if (inst.running !== wantRunning) this.schedule(e);
    }
    this.scheduleHealth();
    this.scheduleSenderWatch();
  }

  /** Stops the loops (instances keep running) and waits for queued work to finish. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.healthTimer);
    clearTimeout(this.senderTimer);
    for (const e of this.entries.values()) clearTimeout(e.retryTimer);
    await Promise.all([...this.entries.values()].flatMap((e) => [e.chain, e.stanzaWork ?? Promise.resolve()]));
    this.kept.close();
  }

  /** Every known instance's status. */
  statuses(): InstanceStatus[] {
    return [...this.entries.values()].filter((e) => e.status.state !== 'DELETED').map((e) => structuredClone(e.status));
  }

  /** Whether the instance is a member of a replicated tenant (its positions matter to failovers). */
  replicated(tenantId: string): boolean {
    const d = this.entries.get(tenantId)?.desired;
    return (d?.replicationUser ?? '') !== '' || d?.role === 'REPLICA';
  }

  /** One instance's status. */
  status(tenantId: string): InstanceStatus | undefined {
    const e = this.entries.get(tenantId);
    return e ? structuredClone(e.status) : undefined;
  }

  /** Resources requested by the instances on this host, and how many there are. */
  usage(): Resources & { instances: number } {
    const out = { cpuMillis: 0, memoryMib: 0, diskMib: 0, instances: 0 };
    for (const e of this.entries.values()) {
      if (!e.desired || e.status.state === 'DELETED') continue;
      out.cpuMillis += e.desired.resources.cpuMillis;
      out.memoryMib += e.desired.resources.memoryMib;
      out.diskMib += e.desired.resources.diskMib;
      out.instances += 1;
    }
    return out;
  }

  /**
   * The fleet's backup repository from a Welcome (undefined: none). When it changed (or is first
   * known after a start), every instance with backups converges again: its pgbackrest.conf is
   * rewritten and its stanza made again.
   */
  setBackupRepository(repo: BackupRepository | undefined): void {
    const backups = this.o.runtime.backups;
    if (!backups) {
      if (repo)
        this.log.warn(
          { runtime: this.o.runtime.kind },
          "the fleet has a backup repository, but this host's runtime cannot back up; tenants here are not archived (backups need the process runtime)",
        );
      return;
    }
    if (!backups.setRepository(repo)) return;
    for (const e of this.entries.values()) {
      e.stanzaReady = '';
      if (e.desired?.backup && !e.deleting && e.status.state !== 'DELETED') this.schedule(e);
    }
  }

  /**
   * The instances' TLS (the host's certificate files once there are some; whether the fleet requires
   * TLS, from each Welcome). When it changed, every instance converges again: its pg_hba.conf and
   * settings are rewritten and the server reloads them.
   */
  setInstanceTls(change: Partial<InstanceTls>): void {
    this.tls = { ...this.tls, ...change };
    if (this.tls.required && !this.tls.files)
      this.log.warn({}, 'the fleet requires TLS to instances but this host has no instance certificate yet: they accept plaintext until it comes');
    if (!this.o.runtime.setTls(this.tls)) return;
    this.log.info(
      { tls: this.tls.files !== undefined, tlsOnly: this.tls.required && this.tls.files !== undefined },
      'instance TLS changed; instances converge to it',
    );
    for (const e of this.entries.values()) {
      if (e.desired && !e.deleting && e.status.state !== 'DELETED') this.schedule(e);
    }
  }

  /** Applies a desired set (the caller has checked its generation): upserts converge, explicit removals delete. */
  applyDesired(set: DesiredSet): void {
    for (const d of set.instances) {
      if (!isValidTenantId(d.tenantId)) {
        this.log.error({ tenantId: d.tenantId }, 'desired instance with an invalid tenant id ignored');
        continue;
      }
      const e = this.entry(d.tenantId);
      e.desired = d;
      e.deleting = false;
      e.confirmed = true;
      if (e.fencedAtRevision !== undefined && d.specRevision > e.fencedAtRevision) {
        this.log.info({ tenantId: d.tenantId, specRevision: d.specRevision }, 'newer spec after a fence: the instance may run again');
        e.fencedAtRevision = undefined;
      }
      this.schedule(e);
    }
    for (const tenantId of set.removedTenantIds) {
      if (!isValidTenantId(tenantId)) {
        this.log.error({ tenantId }, 'removal of an invalid tenant id ignored');
        continue;
      }
      const e = this.entry(tenantId);
      e.deleting = true;
      this.log.warn({ tenantId, generation: set.generation }, 'the coordinator asked explicitly to delete this instance and its data');
      this.schedule(e);
    }
    // A delta names only what changed: the coordinator still wants the rest as the agent holds it.
    if (!set.full) this.confirmDesired();
    if (set.full) {
      const named = new Set([...set.instances.map((d) => d.tenantId), ...set.removedTenantIds]);
      for (const e of this.entries.values()) {
        if (!named.has(e.tenantId) && e.status.state !== 'DELETED') {
          this.log.info({ tenantId: e.tenantId }, 'instance not in the full desired set; left alone (only an explicit removal deletes)');
        }
      }
    }
  }

  /**
   * The coordinator answered with a desired set that was not newer than the one applied: nothing
   * changed, so the specs held count as confirmed (primaries held back by a lost lease may run).
   */
  confirmDesired(): void {
    for (const e of this.entries.values()) {
      if (e.confirmed || !e.desired || e.status.state === 'DELETED') continue;
      e.confirmed = true;
      this.schedule(e);
    }
  }

  /** Whether the instance should be running now (`running`: whether it is), as what its spec says. */
  private mayRun(e: Entry, d: DesiredInstance, running: boolean): boolean {
    return d.runState === 'RUNNING' && this.heldReason(e, d, running) === '';
  }

  /**
   * Why an instance that should run is held stopped ('' when it is not). A replica never accepts
   * writes, so it is never held (a fenced former primary is rewound into one first). A running
   * primary may go on while the lease holds; starting one also needs the coordinator's confirmation.
   */
  private heldReason(e: Entry, d: DesiredInstance, running: boolean): string {
    const now = this.clock();
    return leaseHoldReason({
      runState: d.runState,
      role: d.role,
      fencedByCommand: e.fencedAtRevision !== undefined,
      fenceOnLeaseExpiry: d.fenceOnLeaseExpiry,
      // No lease configured: it always holds.
      leaseDeadline: this.o.lease?.deadline ?? Number.POSITIVE_INFINITY,
      running,
      confirmed: e.confirmed,
      now,
    });
  }

  /** The lease ran out: stop at once every primary that must not outlive it, outside the queues (now, not after queued work). */
  private fenceOnLeaseLoss(): void {
    for (const e of this.entries.values()) {
      const d = e.desired;
      if (!d || !d.fenceOnLeaseExpiry || d.role !== 'PRIMARY' || e.deleting || e.status.state === 'DELETED') continue;
      e.confirmed = false;
      const t = e.tenantId;
      const started = performance.now();
      this.log.warn({ tenantId: t }, 'lease expired: stopping the primary immediately (fencing)');
      void this.o.runtime.stop(t, 'immediate').then(
        () => {
          this.log.warn({ tenantId: t, durationMs: Math.round(performance.now() - started) }, 'primary fenced after the lease expired');
          this.update(e, {
            state: 'STOPPED',
            reason: 'fenced: the lease from the coordinator expired',
            pid: 0,
            runtimeId: '',
            health: downHealth(this.clock()),
          });
        },
        (err: unknown) => this.log.error({ tenantId: t, err }, 'stopping the primary after the lease expired failed'),
      );
    }
  }

  /** Runs a one-off command in the tenant's queue. */
  async runCommand(cmd: AgentCommand): Promise<CommandOutcome> {
    const done = (ok: boolean, errorCode = '', message = '', position: { lsn?: string; timeline?: number } = {}): CommandOutcome => {
      this.o.metrics.commands.inc({ result: ok ? 'ok' : errorCode });
      return { commandId: cmd.commandId, ok, errorCode, message, lsn: position.lsn ?? '', timeline: position.timeline ?? 0 };
    };
    const e = this.entries.get(cmd.tenantId);
    if (!e || e.deleting || e.status.state === 'DELETED') return done(false, 'INSTANCE_NOT_FOUND', `no instance of ${cmd.tenantId} on this host`);
    const action = cmd.action;
    if (!action) return done(false, 'UNKNOWN_COMMAND', 'the command has no action this agent knows');
    if (action.kind === 'runInitSql') {
      // Outside the tenant's queue: a long script must not hold converges or a Fence behind it
      // (two runs of the same scripts take turns on an advisory lock inside the database).
      if (e.status.state !== 'RUNNING' || e.desired?.role !== 'PRIMARY')
        return done(false, 'NOT_PRIMARY', `the instance of ${cmd.tenantId} here is not a running primary`);
      try {
        const r = await this.initSql.run(cmd.tenantId, action.scripts);
        const out = done(r.error === '', r.error === '' ? '' : 'INIT_SQL_FAILED', r.error);
        out.initSql = r;
        return out;
      } catch (err) {
        this.log.warn({ tenantId: cmd.tenantId, commandId: cmd.commandId, err }, 'init scripts could not run');
        return done(false, codeOf(err), messageOf(err));
      }
    }
    if (action.kind === 'checkpoint') {
      // Outside the tenant's queue: converges and health checks go on while it writes the dirty
      // buffers, and the Fence that follows waits for its answer anyway (the coordinator sends it after).
      if (e.status.state !== 'RUNNING' || e.desired?.role !== 'PRIMARY')
        return done(false, 'NOT_PRIMARY', `the instance of ${cmd.tenantId} here is not a running primary`);
      try {
        const started = performance.now();
        await this.replication.checkpoint(cmd.tenantId);
        return done(true, '', `checkpoint ${Math.round(performance.now() - started)} ms`);
      } catch (err) {
        this.log.warn({ tenantId: cmd.tenantId, commandId: cmd.commandId, err }, 'checkpoint failed');
        return done(false, codeOf(err), messageOf(err));
      }
    }
    if (action.kind === 'upgradeSource' || action.kind === 'upgradeTarget') {
      // Outside the tenant's queue: a schema copy or a catch-up must not hold converges behind it.
      const upgrades = this.o.upgrades;
      if (!upgrades) return done(false, 'NOT_SUPPORTED', `this host's ${this.o.runtime.kind} runtime does not run major upgrades`);
      if (e.status.state !== 'RUNNING') return done(false, 'INSTANCE_NOT_RUNNING', `the instance of ${cmd.tenantId} here is ${e.status.state}, not running`);
      try {
        const source = action.kind === 'upgradeSource' ? await upgrades.source(cmd.tenantId, action) : undefined;
        const target = action.kind === 'upgradeTarget' ? await upgrades.target(cmd.tenantId, action) : undefined;
        return { ...done(true), ...(source ? { upgradeSource: source } : {}), ...(target ? { upgradeTarget: target } : {}) };
      } catch (err) {
        this.log.warn({ tenantId: cmd.tenantId, commandId: cmd.commandId, step: action.step, err }, 'upgrade step failed');
        return done(false, codeOf(err), messageOf(err));
      }
    }
    if (action.kind === 'runBackup' || action.kind === 'expireBackup') {
      const r = await this.runBackupCommand(e, action);
      const out = done(r.ok, r.errorCode, r.message);
      if (r.backup) out.backup = r.backup;
      return out;
    }
    try {
      const position = await this.enqueue(e, async (): Promise<{ lsn?: string; timeline?: number; detail?: string }> => {
        const t = cmd.tenantId;
        const admin = this.o.admin;
        switch (action.kind) {
          case 'createRole':
            await admin.withClient(t, 'postgres', (c) => admin.ensureRole(c, t, action.role));
            return {};
          case 'dropRole':
            await admin.dropRole(t, action.name);
            return {};
          case 'setRolePassword':
            await admin.setPassword(t, action.name, action.scramVerifier);
            return {};
          case 'createDatabase':
            await admin.withClient(t, 'postgres', (c) => admin.ensureDatabase(c, t, action.database));
            return {};
          case 'dropDatabase':
            await admin.withClient(t, 'postgres', (c) => admin.dropDatabase(c, t, action.name));
            return {};
          case 'promote': {
            const t0 = performance.now();
            if (action.minLsn !== '') await this.replication.awaitReplay(t, action.minLsn, REPLAY_WAIT_MS);
            const t1 = performance.now();
            const promotion = await this.replication.promote(t);
            const t2 = performance.now();
            // Say so at once: the coordinator confirms a promotion by this ack or a report with role PRIMARY.
            const health = await this.measure(t);
            this.update(e, { health, reason: '' });
            if (promotion.promoted) this.afterPromotion(t, promotion.timeline);
            const ms = (a: number, b: number) => Math.round(b - a);
            return {
              lsn: promotion.lsn,
              timeline: promotion.timeline,
              detail: `replay wait ${ms(t0, t1)} ms, promotion ${ms(t1, t2)} ms, report ${ms(t2, performance.now())} ms`,
            };
          }
          case 'fence': {
            const t0 = performance.now();
            if (action.graceMs > 0) await this.awaitOpenTransactions(t, action.graceMs);
            const t1 = performance.now();
            e.fencedAtRevision = e.desired?.specRevision ?? 0;
            this.log.warn({ tenantId: t }, 'fencing: stopping the instance until a newer spec arrives');
            this.update(e, { state: 'STOPPING' });
            // Fast shutdown: the walsenders ship the last WAL (the shutdown checkpoint) to the replicas first.
            await this.o.runtime.stop(t);
            this.update(e, { state: 'STOPPED', reason: 'fenced', pid: 0, runtimeId: '', health: downHealth(this.clock()) });
            const lsn = await this.o.runtime.checkpointLsn(t).catch((err: unknown) => {
              this.log.warn({ tenantId: t, err }, 'last checkpoint of the fenced instance unknown');
              return '';
            });
            const ms = (a: number, b: number) => Math.round(b - a);
            const detail = `grace ${ms(t0, t1)} ms, shutdown ${ms(t1, performance.now())} ms`;
            this.log.warn({ tenantId: t, lsn, detail }, 'instance fenced');
            return { lsn, detail };
          }
        }
      });
      // An answer's message says where a fence's or promotion's time went (audited by the coordinator).
      return done(true, '', position.detail ?? '', position);
    } catch (err) {
      this.log.warn({ tenantId: cmd.tenantId, commandId: cmd.commandId, kind: action.kind, err }, 'command failed');
      return done(false, codeOf(err), messageOf(err));
    }
  }

  /**
   * RunBackup and ExpireBackup, outside the tenant's queue: pgBackRest runs as a child process for
   * as long as the backup takes, while converges, health checks and heartbeats go on.
   */
  private async runBackupCommand(
    e: Entry,
    action: Extract<CommandAction, { kind: 'runBackup' | 'expireBackup' }>,
  ): Promise<Pick<CommandOutcome, 'ok' | 'errorCode' | 'message' | 'backup'>> {
    const t = e.tenantId;
    const backups = this.o.runtime.backups;
    if (!backups) return { ok: false, errorCode: 'NOT_SUPPORTED', message: `backups need the process runtime; this host runs ${this.o.runtime.kind}` };
    const configured = backups.backupOf(t);
    if (!configured)
      return {
        ok: false,
        errorCode: 'BACKUP_NOT_CONFIGURED',
        message: `the instance of ${t} on this host has no backups configured (no stanza in its spec, or no backup repository in the fleet)`,
      };
    if (action.stanza !== '' && action.stanza !== configured.stanza)
      return { ok: false, errorCode: 'BACKUP_NOT_CONFIGURED', message: `the instance of ${t} archives into stanza ${configured.stanza}, not ${action.stanza}` };
    try {
      if (action.kind === 'expireBackup') {
        await backups.expire(t, action.label);
        return { ok: true, errorCode: '', message: '' };
      }
      const inst = await this.o.runtime.inspect(t);
      const health = inst?.running ? await this.measure(t) : undefined;
      if (e.desired?.role !== 'PRIMARY' || !health?.acceptingConnections || health.role !== 'PRIMARY') {
        return {
          ok: false,
          errorCode: 'NOT_PRIMARY',
          message: `the instance of ${t} is not a running primary on this host (${inst?.running ? `running as ${health?.acceptingConnections ? (health.role === 'PRIMARY' ? 'a primary the coordinator calls a replica' : 'a replica') : 'a server not accepting connections'}` : 'not running'}); take the backup on the primary`,
        };
      }
      if (e.backupRunning) return { ok: false, errorCode: 'BACKUP_RUNNING', message: `a backup of ${t} is already running on this host` };
      e.backupRunning = true;
      try {
        const backup = await backups.backup(t, action.type);
        e.stanzaReady = configured.stanza;
        return { ok: true, errorCode: '', message: '', backup };
      } finally {
        e.backupRunning = false;
      }
    } catch (err) {
      this.log.warn({ tenantId: t, kind: action.kind, code: codeOf(err), err: messageOf(err) }, 'backup command failed');
      const code = codeOf(err);
      return {
        ok: false,
        errorCode: code === 'RUNTIME_ERROR' ? (action.kind === 'runBackup' ? 'BACKUP_FAILED' : 'EXPIRE_FAILED') : code,
        message: messageOf(err),
      };
    }
  }

  /**
   * stanza-create for a running primary with backups, once per stanza (and again after the
   * repository changed). Until it succeeds archive_command fails and PostgreSQL keeps the WAL in
   * pg_wal, retrying; a failure is logged and tried again from the health loop.
   */
  private ensureStanza(e: Entry): void {
    const backups = this.o.runtime.backups;
    const backup = backups?.backupOf(e.tenantId);
    if (!backups || !backup || e.stanzaReady === backup.stanza || e.stanzaWork || this.clock() < e.stanzaRetryAt || this.closed) return;
    const t = e.tenantId;
    e.stanzaWork = backups
      .stanzaCreate(t)
      .then(
        () => {
          e.stanzaReady = backup.stanza;
          e.stanzaRetryAt = 0;
        },
        (err: unknown) => {
          e.stanzaRetryAt = this.clock() + STANZA_RETRY_MS;
          this.log.warn(
            { tenantId: t, stanza: backup.stanza, code: codeOf(err), err: messageOf(err), retryInMs: STANZA_RETRY_MS },
            'stanza-create failed; WAL waits in pg_wal until the stanza exists',
          );
        },
      )
      .finally(() => {
        e.stanzaWork = undefined;
      });
  }

  /** A status note for a spec asking for backups this runtime cannot give ('' otherwise). */
  private backupNote(d: DesiredInstance): string {
    return d.backup && !this.o.runtime.backups
      ? `backups need the process runtime; this host runs ${this.o.runtime.kind}, so this instance is not archived`
      : '';
  }

  private entry(tenantId: string): Entry {
    let e = this.entries.get(tenantId);
    if (!e || e.status.state === 'DELETED') {
      e = {
        tenantId,
        desired: undefined,
        deleting: false,
        status: {
          tenantId,
          realization: 'PENDING',
          state: 'CREATING',
          reason: '',
          address: '',
          port: 0,
          runtimeId: '',
          pid: 0,
          specRevision: 0,
          health: undefined,
        },
        chain: e?.chain ?? Promise.resolve(),
        pendingOps: 0,
        convergeQueued: false,
        failures: 0,
        retryTimer: undefined,
        fencedAtRevision: undefined,
        confirmed: false,
        stanzaReady: '',
        stanzaWork: undefined,
        stanzaRetryAt: 0,
        backupRunning: false,
        restoreFailedAtRevision: undefined,
      };
      this.entries.set(tenantId, e);
    }
    return e;
  }

  private enqueue<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    e.pendingOps += 1;
    const run = e.chain.then(fn).finally(() => {
      e.pendingOps -= 1;
    });
    e.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private schedule(e: Entry): void {
    clearTimeout(e.retryTimer);
    e.retryTimer = undefined;
    if (e.convergeQueued || this.closed) return;
    e.convergeQueued = true;
    void this.enqueue(e, async () => {
      e.convergeQueued = false;
      await this.converge(e);
    });
  }

  private update(e: Entry, patch: Partial<InstanceStatus>): void {
    // A fresh measure of a replica keeps what the sender watch saw (the health round does not look).
    const lost = this.senderWatch.lostAt(e.tenantId);
    if (patch.health?.role === 'REPLICA' && patch.health.up && lost > 0) patch = { ...patch, health: { ...patch.health, senderLostAt: lost } };
    const replicated = (e.desired?.replicationUser ?? '') !== '';
    const before = significant(e.status, replicated);
    e.status = { ...e.status, ...patch };
    if (significant(e.status, replicated) !== before) this.listener(structuredClone(e.status));
  }

  /** The first measure of an instance reported before it (a woken primary), kept while it still runs as then. */
  private measureStarted(e: Entry, pid: number): void {
    this.measure(e.tenantId).then(
      (health) => {
        if (this.closed || e.deleting || e.status.state !== 'RUNNING' || e.status.pid !== pid) return;
        this.update(e, { health });
      },
      (err: unknown) => this.log.warn({ tenantId: e.tenantId, err }, 'the first health measure after a start failed'),
    );
  }

  private async measure(tenantId: string): Promise<InstanceHealth> {
    const started = performance.now();
    const backups = this.o.runtime.backups;
    const backedUp = backups?.backupOf(tenantId) !== undefined;
    const keep = this.keepsConnection(tenantId, backedUp);
    const health = await this.health.measure(tenantId, keep);
    if (backups && backedUp && health.acceptingConnections && health.role === 'PRIMARY') {
      try {
        const pending = backups.pendingWal(tenantId);
        let progress = this.archived.get(tenantId);
        if (!progress) this.archived.set(tenantId, (progress = new ArchivedThrough()));
        const now = this.clock();
        health.archive = await this.kept.use(tenantId, (c) => readArchiveStatus(c, pending, now, progress), keep);
      } catch (err) {
        this.log.debug({ tenantId, err }, 'archive status could not be read');
      }
    } else if (health.role !== 'PRIMARY') {
      // A demoted primary's looks say nothing of the archive of whichever primary comes next.
      this.archived.delete(tenantId);
    }
    this.o.metrics.healthCheckSeconds.observe({ result: health.acceptingConnections ? 'accepting' : 'not_accepting' }, (performance.now() - started) / 1000);
    return health;
  }

  /**
   * Whether an instance's looks go over a kept connection (kept-connections.ts): a replicated or
   * backed-up one, looked at more than once a round, and one with clients, which already holds
   * backends and is worth the 3.5-4 MiB of one more. An idle single instance pays a fork per look
   * instead, so idle tenants stay as small as they were.
   */
  private keepsConnection(tenantId: string, backedUp: boolean): boolean {
    const e = this.entries.get(tenantId);
    if (!e) return false;
    return this.replicated(tenantId) || backedUp || (e.status.health?.connections ?? 0) > 0;
  }

  private async converge(e: Entry): Promise<void> {
    if (e.deleting) return this.remove(e);
    const d = e.desired;
    if (!d) return;
    const started = performance.now();
    const t = d.tenantId;
    let releaseSlot: (() => void) | undefined;
    try {
      if (d.role === 'REPLICA' && !this.o.runtime.supportsReplication) {
        throw new AgentError(
          'NOT_SUPPORTED',
          `the ${this.o.runtime.kind} runtime does not run replicas; place replicated tenants on hosts with the process runtime`,
          { kind: 'user' },
        );
      }
      const existing = await this.o.runtime.inspect(t);
      let spec = runtimeSpec(d);
      if (d.restore && existing && existing.recovery?.restoreId !== d.restore.restoreId) {
        // The data directory exists: a restore never overwrites it. Say so, and converge the rest.
        if (e.status.recovery?.restoreId !== d.restore.restoreId)
          this.log.warn({ tenantId: t, restoreId: d.restore.restoreId }, 'restore refused: the instance already has a data directory on this host');
        this.update(e, {
          recovery: {
            restoreId: d.restore.restoreId,
            ok: false,
            errorCode: 'RESTORE_REFUSED',
            message: `the instance of ${t} already has a data directory on this host; a restore never overwrites it (remove the instance first, or restore into a new tenant)`,
            lsn: '',
            commitTimeMs: 0,
            timeline: 0,
            archiveMaxWal: '',
          },
        });
        delete spec.restore;
      }
      if (d.restore && !existing) {
        if (!this.o.runtime.backups)
          throw new RestoreError('NOT_SUPPORTED', `restoring from a backup needs the process runtime; this host runs ${this.o.runtime.kind}`, '', {
            kind: 'user',
          });
        if (e.restoreFailedAtRevision === d.specRevision) return;
        spec = { ...spec, restore: d.restore };
      }
      if (!existing) this.update(e, { state: 'CREATING', realization: 'PENDING', reason: '' });
      else if (d.specRevision !== e.status.specRevision) this.update(e, { realization: 'PENDING' });
      // Where a realization's time goes (ms per step), logged when it created or started the instance.
      const steps: Record<string, number> = {};
      let mark = performance.now();
      const step = (name: string): void => {
        const now = performance.now();
        steps[name] = Math.round(now - mark);
        mark = now;
      };
      // Only creations wait for a slot: starts, reconfigurations and promotions of existing
      // instances (failover) never queue behind them.
      if (!existing) {
        releaseSlot = await this.creates.acquire();
        step('queued');
      }
      if (!existing) e.objectsApplied = undefined;
      // For a replica spec on a former primary this rewinds (or re-clones) it first.
      let inst = await this.o.runtime.ensure(spec);
      step(existing ? 'reconfigure' : spec.restore ? 'restore' : 'create');
      this.update(e, { address: inst.address, port: inst.port });
      if (!existing && inst.recovery) this.update(e, { recovery: inst.recovery });
      const held = this.heldReason(e, d, inst.running);
      if (d.runState === 'RUNNING' && held === '') {
        const wasRunning = inst.running;
        if (!inst.running) {
          this.update(e, { state: 'STARTING' });
          inst = await this.o.runtime.start(t);
          step('start');
        }
        let woken = false;
        if (d.role === 'PRIMARY') {
          const fingerprint = objectsFingerprint(d);
          // A woken primary (stopped on this agent's watch, started again as a primary on the same
          // data) already holds what was last applied: serve it without the admin connections.
          woken = !wasRunning && e.objectsApplied === fingerprint && !(await this.o.runtime.isStandby(t));
          if (!woken) {
            e.objectsApplied = undefined;
            // A spec that turns a replica into the primary means promote (idempotent on a primary).
            const promotion = await this.replication.promote(t);
            if (promotion.promoted) this.afterPromotion(t, promotion.timeline);
            await this.o.admin.apply(t, d);
            if (d.replicationUser !== '' && d.replicationSecret !== '') await this.replication.ensurePrimary(t, d);
            e.objectsApplied = fingerprint;
          }
          step(woken ? 'objectsKept' : 'objects');
        } else {
          e.objectsApplied = undefined;
        }
        // A woken primary without replicas serves as soon as its postmaster accepts connections: its
        // health is measured right after the report, not before it (the first connection to a server
        // just started rebuilds its catalog caches, most of a wake's health step). A replicated one
        // measures first: its members' positions decide failovers and switches.
        const deferred = woken && d.replicationUser === '';
        const health = deferred ? startedHealth(this.clock()) : await this.measure(t);
        step(deferred ? 'healthDeferred' : 'health');
        if (!existing || !wasRunning)
          this.log.info(
            { tenantId: t, specRevision: d.specRevision, durationMs: Math.round(performance.now() - started), steps },
            existing ? 'instance started and realized' : 'instance created and realized',
          );
        this.update(e, {
          state: 'RUNNING',
          realization: 'REALIZED',
          reason: this.backupNote(d),
          pid: inst.pid,
          runtimeId: inst.runtimeId,
          port: inst.port,
          specRevision: d.specRevision,
          health,
        });
        if (d.role === 'PRIMARY' && health.role === 'PRIMARY') this.ensureStanza(e);
        if (deferred) this.measureStarted(e, inst.pid);
      } else {
        if (inst.running) {
          this.update(e, { state: 'STOPPING' });
          await this.o.runtime.stop(t);
        }
        this.update(e, {
          state: 'STOPPED',
          realization: 'REALIZED',
          reason: held,
          pid: 0,
          runtimeId: '',
          specRevision: d.specRevision,
          health: downHealth(this.clock()),
        });
      }
      e.failures = 0;
      this.o.metrics.realizationSeconds.observe({ outcome: 'realized' }, (performance.now() - started) / 1000);
    } catch (err) {
      e.failures += 1;
      e.objectsApplied = undefined;
      if (d.restore && err instanceof RestoreError) {
        const recovery: RecoveryResult = {
          restoreId: d.restore.restoreId,
          ok: false,
          errorCode: err.code,
          message: err.message,
          lsn: '',
          commitTimeMs: 0,
          timeline: 0,
          archiveMaxWal: err.archiveMaxWal,
        };
        this.update(e, { recovery });
        if (PERMANENT_RESTORE_ERRORS.has(err.code)) {
          e.restoreFailedAtRevision = d.specRevision;
          this.update(e, { state: 'FAILED', realization: 'FAILED', reason: `restore failed: ${err.message}`, specRevision: d.specRevision });
          this.log.warn(
            { tenantId: t, restoreId: d.restore.restoreId, code: err.code, err: err.message },
            'restore failed; not retried until a newer spec revision',
          );
          this.o.metrics.realizationSeconds.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
          return;
        }
      }
      const running = await this.o.runtime.inspect(t).then(
        (i) => i?.running ?? false,
        () => false,
      );
      // A replica waiting for its primary (created alongside it, or just promoted) is an expected wait,
      // not a failure: it stays PENDING with the reason, so the tenant reads IN_PROGRESS, never ERROR.
      const waitingForPrimary = codeOf(err) === 'PRIMARY_NOT_READY';
      if (waitingForPrimary) {
        this.update(e, {
          state: running ? 'RUNNING' : e.status.state === 'STOPPED' ? 'STOPPED' : 'CREATING',
          realization: 'PENDING',
          reason: `waiting for the primary: ${messageOf(err)}`,
          specRevision: d.specRevision,
        });
      } else {
        this.update(e, { state: running ? 'RUNNING' : 'FAILED', realization: 'FAILED', reason: messageOf(err), specRevision: d.specRevision });
        this.o.metrics.realizationSeconds.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
      }
      // ... and retries briskly.
      const maxMs = waitingForPrimary ? Math.min(this.o.primaryWaitMaxMs ?? 2000, this.o.retryMaxMs ?? 60_000) : (this.o.retryMaxMs ?? 60_000);
      const delay = Math.min(maxMs, (this.o.retryBaseMs ?? 1000) * 2 ** Math.min(e.failures - 1, 10));
      this.log.warn({ tenantId: t, err, code: codeOf(err), failures: e.failures, retryInMs: delay }, 'instance did not converge; will retry');
      if (!this.closed) e.retryTimer = setTimeout(() => this.schedule(e), delay);
    } finally {
      releaseSlot?.();
    }
  }

  /**
   * A planned switch: the routers hold every client's next transaction, so the transactions still
   * open end by themselves. Waits until none is open (client backends with a transaction start) or
   * `graceMs` passed; whatever is still open then is ended by the shutdown (57P01). Routers learn of
   * the switch in about the time the coordinator's fence takes to get here; a short first wait
   * covers a router that was a moment later.
   */
  private async awaitOpenTransactions(tenantId: string, graceMs: number): Promise<void> {
    const started = performance.now();
    const deadline = started + graceMs;
    await new Promise((r) => setTimeout(r, Math.min(100, graceMs)));
    let open = -1;
    try {
      await this.o.admin.withClient(tenantId, 'postgres', async (c) => {
        for (;;) {
          const r = await c.query<{ n: number }>(
            "select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and xact_start is not null and pid <> pg_backend_pid()",
          );
          open = r.rows[0]?.n ?? 0;
          if (open === 0 || performance.now() >= deadline) return;
          await new Promise((r2) => setTimeout(r2, 10));
        }
      });
    } catch (err) {
      this.log.warn({ tenantId, err }, 'open transactions could not be counted before the fence; fencing now');
    }
    this.log.info(
      { tenantId, openTransactions: Math.max(0, open), waitedMs: Math.round(performance.now() - started) },
      open > 0 ? 'fence grace over: open transactions end with the shutdown' : 'no open transactions: fencing',
    );
  }

  private async remove(e: Entry): Promise<void> {
    const t = e.tenantId;
    e.objectsApplied = undefined;
    try {
      this.update(e, { state: 'STOPPING' });
      this.release(t);
      await this.o.runtime.remove(t);
      this.log.warn({ tenantId: t }, 'instance and its data deleted (explicit removal)');
      // A re-creation may have been asked for while we deleted: then the entry lives on.
      if (e.deleting) {
        this.update(e, { state: 'DELETED', realization: 'REALIZED', reason: '', pid: 0, runtimeId: '', health: undefined });
        e.desired = undefined;
      }
    } catch (err) {
      e.failures += 1;
      this.update(e, { state: 'FAILED', realization: 'FAILED', reason: `delete failed: ${messageOf(err)}` });
      this.log.error({ tenantId: t, err }, 'deleting the instance failed; will retry');
      if (!this.closed) e.retryTimer = setTimeout(() => this.schedule(e), Math.min(60_000, 1000 * 2 ** Math.min(e.failures, 6)));
    }
  }

  /**
   * What follows a promotion, off the clients' pause (the new primary accepts writes as soon as it
   * left recovery: PostgreSQL promotes without an end-of-recovery checkpoint). First the old
   * timeline's received WAL is marked for archiving (received-wal.ts), before any checkpoint could
   * remove it; then the checkpoint pg_rewind of the former primary needs (its control file names
   * the new timeline only after one).
   */
  private afterPromotion(tenantId: string, timeline: number): void {
    const backups = this.o.runtime.backups;
    if (backups && backups.backupOf(tenantId) !== undefined) {
      try {
        const marked = backups.archiveReceivedWal(tenantId, timeline);
        if (marked.length > 0) this.log.info({ tenantId, timeline, segments: marked }, 'received WAL of the old timeline marked for archiving');
      } catch (err) {
        this.log.warn({ tenantId, err }, 'the received WAL of the old timeline could not be marked for archiving');
      }
    }
    this.replication.checkpoint(tenantId).catch((err: unknown) => this.log.warn({ tenantId, err }, 'checkpoint after the promotion failed'));
  }

  /** Lets go of what the agent keeps of a running instance: its kept connection, its last measures. */
  private release(tenantId: string): void {
    this.kept.forget(tenantId);
    this.health.forget(tenantId);
    this.archived.delete(tenantId);
  }

  private scheduleSenderWatch(): void {
    const period = this.o.senderWatchMs ?? 0;
    if (this.closed || period <= 0) return;
    this.senderTimer = setTimeout(() => {
      void this.senderRound().finally(() => this.scheduleSenderWatch());
    }, period);
  }

  /** One look at every running replica's walreceiver; a change is reported at once. */
  private async senderRound(): Promise<void> {
    const replicas = [...this.entries.values()]
      .filter((e) => e.desired?.role === 'REPLICA' && !e.deleting && e.status.state === 'RUNNING' && e.status.pid > 0)
      .map((e) => ({ tenantId: e.tenantId, pid: e.status.pid }));
    try {
      for (const tenantId of await this.senderWatch.look(replicas)) {
        const e = this.entries.get(tenantId);
        const h = e?.status.health;
        if (!e || !h || this.closed) continue;
        const lostAt = this.senderWatch.lostAt(tenantId);
        if (lostAt > 0) this.log.warn({ tenantId }, 'the replica lost its primary (walreceiver without a sender)');
        this.update(e, { health: { ...h, senderLostAt: lostAt > 0 ? lostAt : undefined } });
      }
    } catch (err) {
      this.log.warn({ err }, 'sender watch round failed');
    }
  }

  private scheduleHealth(): void {
    if (this.closed) return;
    this.healthTimer = setTimeout(() => {
      void this.healthRound().finally(() => this.scheduleHealth());
    }, this.o.healthIntervalMs);
  }

  /** Runs one health round now (the loop runs it every healthIntervalMs). */
  async healthRound(): Promise<void> {
    if (this.healthRunning) return;
    this.healthRunning = true;
    try {
      await Promise.all([...this.entries.values()].map((e) => this.observe(e)));
    } finally {
      this.healthRunning = false;
    }
  }

  private async observe(e: Entry): Promise<void> {
    // Work in the queue owns the instance's state; look again after it.
    if (e.pendingOps > 0 || e.deleting || e.status.state === 'DELETED' || !e.desired || this.closed) return;
    const t = e.tenantId;
    try {
      const inst = await this.o.runtime.inspect(t);
      if (e.pendingOps > 0) return;
      if (!inst?.running) this.release(t);
      if (!inst) {
        // A restore that failed for good has no instance, and its report already says why; so has a
        // creation that failed and waits for its retry (no free port, a failed copy): it was never here.
        if (e.status.state !== 'CREATING' && e.restoreFailedAtRevision !== e.desired.specRevision && e.retryTimer === undefined) {
          this.update(e, {
            state: 'FAILED',
            realization: 'FAILED',
            reason: 'the instance is missing from this host (data directory or container gone); it is not re-created empty',
            pid: 0,
            runtimeId: '',
            health: downHealth(this.clock()),
          });
        }
        return;
      }
      const wantRunning = this.mayRun(e, e.desired, inst.running);
      if (inst.running) {
        const health = await this.measure(t);
        if (e.pendingOps > 0) return;
        const state = e.status.state === 'CRASHED' || e.status.state === 'STOPPED' ? 'RUNNING' : e.status.state;
        this.update(e, { state, pid: inst.pid, runtimeId: inst.runtimeId, health });
        if (!wantRunning) this.schedule(e);
        else if (e.desired.role === 'PRIMARY' && health.role === 'PRIMARY') this.ensureStanza(e);
        return;
      }
      if (wantRunning) {
        // A failed converge already has its retry planned with backoff; do not hurry it.
        if (e.retryTimer !== undefined) return;
        this.log.warn({ tenantId: t, lastPid: e.status.pid }, "instance is down behind the agent's back; bringing it back");
        this.update(e, { state: 'CRASHED', reason: 'postgres was not running', pid: 0, runtimeId: '', health: downHealth(this.clock()) });
        this.schedule(e);
      } else if (e.status.state !== 'STOPPED') {
        this.update(e, { state: 'STOPPED', pid: 0, runtimeId: '', health: downHealth(this.clock()) });
      }
    } catch (err) {
      this.log.warn({ tenantId: t, err }, 'health round failed for the instance');
    }
  }
}
