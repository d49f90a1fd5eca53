/**
 * The `process` runtime (the embedded default): one postgres server process per tenant, straight
 * from the host's server binaries. Layout under the data root:
 *
 *   template-<major>/            initdb output, cloned for every new instance (template.ts)
 *   spares/                      ready copies of the template (spare-clones.ts)
 *   instances/<tenant>/
 *     instance.json              port and last applied spec (instance-record.ts)
 *     data/                      the data directory (owned by the postgres OS user, 0700)
 *     sock/                      the unix socket directory (0700): the agent's only way in as superuser
 *     postgres.log               the server's stdout/stderr
 *     replication.pass           replicas: the replication role's passfile (0600, owned by postgres)
 *     pgbackrest.conf, pgbackrest/   with backups: pgBackRest's config and working files (process-backups.ts)
 *
 * A replica's data directory is a pg_basebackup of its primary with standby.signal; a former
 * primary told to become a replica is rewound (pg_rewind) onto the new primary's timeline, or
 * re-cloned when that fails (the old data is replaced only once the new copy is complete).
 *
 * An instance whose spec has `restore` and no data directory yet is made by `pgbackrest restore`
 * instead (restored-instance.ts): it starts only once its settings archive into its own stanza,
 * recovers, and is handed over as a primary.
 *
 * postgres is spawned detached in its own session with the unprivileged user's uid/gid (no shell),
 * so it outlives an agent killed with -9; the next agent adopts it through postmaster.pid and /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { formerPrimaryNeedsRewind, isValidTenantId, parseTimelineHistory, type HostMajor, type RewindNeed } from '@pgs/tenancy';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from '../errors.js';
import { readPendingWal } from '../backup/pending-wal.js';
import { markReceivedWalForArchive } from '../backup/received-wal.js';
import { ProcessBackups, type BackupInstance } from '../backup/process-backups.js';
import { restoreInstance } from './restored-instance.js';
import { CgroupLimits, childPids } from './cgroup-limits.js';
import { hbaConf, hostCidr, instanceSettings, settingsConf, tlsSettings } from './instance-config.js';
import { replicationSettings } from './replication-settings.js';
import { readInstanceRecord, writeInstanceRecord, type InstanceRecord } from './instance-record.js';
import { assertTraversable, type OsUser } from './os-user.js';
import type { PortAllocator } from './port-allocator.js';
import { binDirFor, type PostgresInstall } from './postgres-install.js';
import { isAlive, pidFilePath, readPostmasterPid, runningPostmaster } from './postmaster-pid.js';
import type { BackupOperations, InstanceRuntime, InstanceTls, RuntimeInstance, RuntimeReplication, RuntimeSpec, StopMode, UpgradeTools } from './runtime.js';
import { SpareClones } from './spare-clones.js';
import { baseBackup, controlData, newestTimelineHistory, rewind, writePassFile, type ReplicationTls } from './standby-tools.js';
import { checkedTenantId } from './tenant-paths.js';
import { ensureTemplate } from './template.js';

/** What the process runtime needs. */
export interface ProcessRuntimeOptions {
  dataRoot: string;
  /** The host's advertised address: instances listen on it only. */
  address: string;
  /** Networks allowed to log in with SCRAM besides the host's own address (e.g. the routers'). */
  allowCidrs: readonly string[];
  install: PostgresInstall;
  /** The OS user postgres runs as (undefined: the agent's own user). */
  runAs: OsUser | undefined;
  ports: PortAllocator;
  cgroups: CgroupLimits;
  log: Logger;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** Ready copies of the template kept per major (0 = copy on create). */
  spareClones: number;
  /** How long a pgBackRest backup, or a restore and its recovery, may take (default 6 h). */
  backupTimeoutMs?: number;
}

/** Paths of one instance. */
export interface InstancePaths {
  dir: string;
  dataDir: string;
  socketDir: string;
  logFile: string;
  recordFile: string;
  passFile: string;
  standbySignal: string;
}

const POLL_MS = 10;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes `content` to `file` when it differs; returns whether it changed. */
function writeIfChanged(file: string, content: string, owner: OsUser | undefined): boolean {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (current === content) return false;
  fs.writeFileSync(file, content, { mode: 0o600 });
  if (owner) fs.chownSync(file, owner.uid, owner.gid);
  return true;
}

/** The last lines of a log file, for error messages. */
export function logTail(file: string, bytes = 1500): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch (err) {
    return `(no log: ${messageOf(err)})`;
  }
}

/** The spec as remembered on disk: the replication password is left out (it lives in the passfile only). */
function recordedSpec(spec: RuntimeSpec, major: string, port: number): RuntimeSpec {
  const out: RuntimeSpec = { ...spec, version: major, port };
  if (spec.replication) out.replication = { ...spec.replication, password: '' };
  return out;
}

/** The process runtime driver. */
/**
 * Start-only settings a running primary does without until its next restart: a primary that gains
 * or loses a replica (a live move builds one, then drops it) must not restart and cut its clients
 * for them. hot_standby and recovery_target_timeline matter only to a standby; wal_log_hints only to a later pg_rewind of this
 * instance, which falls back to a fresh base backup when it is off. max_logical_replication_workers
 * matters only while an upgrade's subscriptions run: the new primary keeps its workers until it restarts.
 */
const PRIMARY_DEFERRED: ReadonlySet<string> = new Set(['wal_log_hints', 'hot_standby', 'recovery_target_timeline', 'max_logical_replication_workers']);

/**
 * The new instance of a major upgrade flushes its WAL every 10 ms instead of 200: the apply
 * workers commit asynchronously and report as confirmed only what is flushed, so the switch's
 * catch-up (the routers hold clients meanwhile) waited ~100 ms per round for the WAL writer
 * (measured at load 32: 101-157 ms with the default, 1-11 ms with 10 ms). Reloaded back to the
 * default once the instance is the tenant's primary.
 */
const UPGRADE_SUBSCRIBER_WAL = { wal_writer_delay: '10ms' };

export class ProcessRuntime implements InstanceRuntime {
  readonly kind = 'process' as const;
  readonly supportsReplication = true;
  private readonly templates = new Map<string, Promise<string>>();
  private readonly instancesDir: string;
  private readonly log: Logger;
  private readonly spares: SpareClones;
  private sparesListener: (() => void) | undefined;
  private readonly pbr: ProcessBackups;
  readonly backups: BackupOperations;
  private tls: InstanceTls = { files: undefined, required: false };

  constructor(private readonly o: ProcessRuntimeOptions) {
    this.instancesDir = path.join(o.dataRoot, 'instances');
    this.log = o.log.child({ component: 'process-runtime' });
    this.spares = new SpareClones(o.dataRoot, o.spareClones, this.log, () => this.sparesListener?.());
    this.pbr = new ProcessBackups({ runAs: o.runAs, log: this.log, longTimeoutMs: o.backupTimeoutMs ?? 6 * 3600_000 });
    this.backups = {
      setRepository: (repo) => this.pbr.setRepository(repo),
      stanzaCreate: (t) => this.pbr.stanzaCreate(this.backupInstance(t), this.backupSpec(t)),
      backup: (t, kind) => this.pbr.backup(this.backupInstance(t), this.backupSpec(t), kind),
      expire: (t, label) => this.pbr.expire(this.backupInstance(t), this.backupSpec(t), label),
      pendingWal: (t) => readPendingWal(this.paths(t).dataDir),
      archiveReceivedWal: (t, timeline) => markReceivedWalForArchive(this.paths(t).dataDir, timeline),
      backupOf: (t) => this.pbr.archiving(this.record(t)?.spec.backup),
    };
  }

  /** Where pgBackRest finds an existing instance. */
  private backupInstance(tenantId: string): BackupInstance {
    const record = this.record(tenantId);
    if (!record) throw new AgentError('INSTANCE_NOT_FOUND', `no instance of ${tenantId} on this host`);
    const p = this.paths(tenantId);
    return { tenantId, dir: p.dir, dataDir: p.dataDir, socketDir: p.socketDir, port: record.port };
  }

  /** The instance's backup settings, or BACKUP_NOT_CONFIGURED. */
  private backupSpec(tenantId: string) {
    const backup = this.pbr.archiving(this.record(tenantId)?.spec.backup);
    if (!backup)
      throw new AgentError(
        'BACKUP_NOT_CONFIGURED',
        `the instance of ${tenantId} has no backups configured (no stanza in its spec, or no backup repository in the fleet)`,
        { kind: 'user' },
      );
    this.pbr.repository();
    return backup;
  }

  setTls(tls: InstanceTls): boolean {
    const changed = JSON.stringify(tls) !== JSON.stringify(this.tls);
    this.tls = { files: tls.files, required: tls.required };
    return changed;
  }

  async reloadTls(): Promise<void> {
    for (const inst of await this.list()) {
      if (!inst.running) continue;
      try {
        process.kill(inst.pid, 'SIGHUP');
      } catch (err) {
        this.log.warn({ tenantId: inst.tenantId, err }, 'could not signal the instance to reload its certificate');
      }
    }
  }

  /** How standbys and the standby tools reach a primary. */
  private replicationTls(): ReplicationTls {
    return { caFile: this.tls.required ? this.tls.files?.caFile : undefined };
  }

  onSparesChanged(listener: () => void): void {
    this.sparesListener = listener;
  }

  async init(): Promise<void> {
    fs.mkdirSync(this.instancesDir, { recursive: true, mode: 0o755 });
    // postgres must traverse the root to reach its data directory.
    fs.chmodSync(this.o.dataRoot, 0o755);
    fs.chmodSync(this.instancesDir, 0o755);
    if (this.o.runAs) assertTraversable(this.instancesDir, this.o.runAs);
    this.spares.init();
    const major = this.o.install.defaultMajor;
    void this.spares.refill(major, await this.template(major));
    this.o.cgroups.unavailableReason();
  }

  async close(): Promise<void> {
    await this.spares.settle();
  }

  postgresMajors(): { majors: HostMajor[]; pgbackrestVersion: string } {
    const { majors, pgbackrestVersion } = this.o.install;
    return { majors: majors.map(({ binDir: _binDir, ...m }) => m), pgbackrestVersion };
  }

  upgradeTools(): UpgradeTools {
    return {
      clientBinDir: (major) => this.o.install.majors.find((m) => m.major === major && m.pgDump === true)?.binDir,
      tls: () => this.replicationTls(),
      runAs: this.o.runAs,
    };
  }

  readySpares(): number {
    return this.spares.ready(this.o.install.defaultMajor);
  }

  private template(major: string): Promise<string> {
    let t = this.templates.get(major);
    if (!t) {
      const { binDir } = binDirFor(this.o.install, major);
      t = ensureTemplate({ dataRoot: this.o.dataRoot, major, binDir, runAs: this.o.runAs, log: this.log }).then(({ dir, created }) => {
        if (created) this.spares.discard(major);
        return dir;
      });
      // A failed initdb may succeed later (disk full, fixed permissions): do not cache the failure.
      t.catch(() => this.templates.delete(major));
      this.templates.set(major, t);
    }
    return t;
  }

  private paths(tenantId: string): InstancePaths {
    const dir = path.join(this.instancesDir, checkedTenantId(tenantId));
    const dataDir = path.join(dir, 'data');
    return {
      dir,
      dataDir,
      socketDir: path.join(dir, 'sock'),
      logFile: path.join(dir, 'postgres.log'),
      recordFile: path.join(dir, 'instance.json'),
      passFile: path.join(dir, 'replication.pass'),
      standbySignal: path.join(dataDir, 'standby.signal'),
    };
  }

  private record(tenantId: string): InstanceRecord | undefined {
    return readInstanceRecord(this.paths(tenantId).recordFile);
  }

  private toInstance(record: InstanceRecord): RuntimeInstance {
    const pm = runningPostmaster(this.paths(record.tenantId).dataDir);
    const inst: RuntimeInstance = {
      tenantId: record.tenantId,
      address: record.address,
      port: record.port,
      running: pm !== undefined,
      pid: pm?.pid ?? 0,
      runtimeId: pm ? String(pm.pid) : '',
      spec: record.spec,
    };
    if (record.recovery) inst.recovery = record.recovery;
    return inst;
  }

  async list(): Promise<RuntimeInstance[]> {
    const out: RuntimeInstance[] = [];
    for (const entry of fs.readdirSync(this.instancesDir)) {
      if (!isValidTenantId(entry)) {
        this.log.warn({ entry }, 'ignoring a directory under instances/ that is not named like a tenant');
        continue;
      }
      const record = this.record(entry);
      if (record) out.push(this.toInstance(record));
      else
        this.log.warn(
          { tenantId: entry, dir: path.join(this.instancesDir, entry) },
          'instance directory without instance.json (creation was cut short); it is recreated when the tenant is desired again',
        );
    }
    return out;
  }

  async inspect(tenantId: string): Promise<RuntimeInstance | undefined> {
    const record = this.record(tenantId);
    return record ? this.toInstance(record) : undefined;
  }

  private takenPorts(except: string): Set<number> {
    const taken = new Set<number>();
    for (const entry of fs.readdirSync(this.instancesDir)) {
      if (entry === except || !isValidTenantId(entry)) continue;
      const r = this.record(entry);
      if (r) taken.add(r.port);
    }
    return taken;
  }

  /** The settings an instance gets for `port`, `address` and `spec`. */
  private settingsFor(p: InstancePaths, address: string, port: number, spec: RuntimeSpec): Record<string, string> {
    return {
      ...instanceSettings({ listenAddresses: address, port, socketDir: p.socketDir, resources: spec.resources }),
      ...replicationSettings(spec.role ?? 'PRIMARY', spec.replication, p.passFile, this.replicationTls()),
      ...this.pbr.settings(p.dir, spec.backup),
      ...tlsSettings(this.tls.files),
      // One apply worker per database plus table-sync workers for the initial copy.
      ...(spec.upgradeSubscriber ? { max_logical_replication_workers: '4', max_sync_workers_per_subscription: '2', ...UPGRADE_SUBSCRIBER_WAL } : {}),
    };
  }

  /** Writes pg_hba.conf, pgs.conf and pgbackrest.conf; returns whether the server's files changed. */
  private writeConfig(p: InstancePaths, port: number, spec: RuntimeSpec): boolean {
    this.pbr.writeConfig({ tenantId: spec.tenantId, dir: p.dir, dataDir: p.dataDir, socketDir: p.socketDir, port }, spec.backup);
    const hba = hbaConf([hostCidr(this.o.address), ...this.o.allowCidrs], spec.replication?.user ?? '', this.tls.required && this.tls.files !== undefined);
    const settings = settingsConf(this.settingsFor(p, this.o.address, port, spec));
    const a = writeIfChanged(path.join(p.dataDir, 'pg_hba.conf'), hba, this.o.runAs);
    const b = writeIfChanged(path.join(p.dataDir, 'pgs.conf'), settings, this.o.runAs);
    const c = spec.replication !== undefined && spec.replication.password !== '' && writePassFile(p.passFile, spec.replication, this.o.runAs);
    return a || b || c;
  }

  async ensure(spec: RuntimeSpec): Promise<RuntimeInstance> {
    const record = this.record(spec.tenantId);
    return record ? this.reconfigure(record, spec) : this.create(spec);
  }

  private async create(spec: RuntimeSpec): Promise<RuntimeInstance> {
    const started = performance.now();
    const { major } = binDirFor(this.o.install, spec.version);
    const template = await this.template(major);
    const p = this.paths(spec.tenantId);
    // No record means creation never finished: nothing in here was ever served to a tenant. A server
    // may still run in it (a restore's recovery when the agent was killed): stop it first.
    if (runningPostmaster(p.dataDir)) await this.stop(spec.tenantId, 'immediate');
    fs.rmSync(p.dir, { recursive: true, force: true });
    fs.mkdirSync(p.dir, { mode: 0o755 });
    const port = spec.port > 0 ? spec.port : await this.o.ports.allocate(() => this.takenPorts(spec.tenantId));
    if (spec.restore && spec.role !== 'REPLICA') return this.createFromBackup(spec, p, port, major, started);
    let copy: 'spare' | 'copied' | 'base backup' = 'base backup';
    if (spec.role === 'REPLICA') {
      await this.cloneFromPrimary(p, p.dataDir, spec, major);
      fs.writeFileSync(p.standbySignal, '', { mode: 0o600 });
      if (this.o.runAs) fs.chownSync(p.standbySignal, this.o.runAs.uid, this.o.runAs.gid);
    } else {
      copy = await this.spares.take(major, template, p.dataDir);
    }
    fs.mkdirSync(p.socketDir, { mode: 0o700 });
    fs.writeFileSync(p.logFile, '', { mode: 0o640 });
    if (this.o.runAs) {
      fs.chownSync(p.socketDir, this.o.runAs.uid, this.o.runAs.gid);
      fs.chownSync(p.logFile, this.o.runAs.uid, this.o.runAs.gid);
    }
    this.writeConfig(p, port, spec);
    const record: InstanceRecord = {
      tenantId: spec.tenantId,
      address: this.o.address,
      port,
      spec: recordedSpec(spec, major, port),
      createdAt: new Date().toISOString(),
    };
    // The record goes last: its presence means the instance is complete.
    writeInstanceRecord(p.recordFile, record);
    this.log.info(
      { tenantId: spec.tenantId, port, major, role: spec.role ?? 'PRIMARY', from: copy, durationMs: Math.round(performance.now() - started) },
      spec.role === 'REPLICA' ? 'replica created from a base backup of its primary' : 'instance created from template',
    );
    return this.toInstance(record);
  }

  /** A new instance restored from the spec's backup source and recovered; it is left running as a primary. */
  private async createFromBackup(spec: RuntimeSpec, p: InstancePaths, port: number, major: string, started: number): Promise<RuntimeInstance> {
    const restored = await restoreInstance({
      spec,
      paths: p,
      port,
      backups: this.pbr,
      runAs: this.o.runAs,
      log: this.log,
      timeoutMs: this.o.backupTimeoutMs ?? 6 * 3600_000,
      writeConfig: () => this.writeConfig(p, port, spec),
      agentSettings: () => Object.keys(this.settingsFor(p, this.o.address, port, spec)),
      spawn: () => this.spawnServer(spec.tenantId, p, major, spec.resources),
      stop: () => this.stop(spec.tenantId, 'immediate'),
    });
    const record: InstanceRecord = {
      tenantId: spec.tenantId,
      address: this.o.address,
      port,
      spec: recordedSpec(spec, major, port),
      createdAt: new Date().toISOString(),
      recovery: restored.recovery,
    };
    writeInstanceRecord(p.recordFile, record);
    const pm = runningPostmaster(p.dataDir);
    if (pm) this.o.cgroups.apply(spec.tenantId, spec.resources, () => [pm.pid, ...childPids(pm.pid)]);
    this.log.info(
      {
        tenantId: spec.tenantId,
        port,
        major,
        restoreId: restored.recovery.restoreId,
        lsn: restored.recovery.lsn,
        timeline: restored.recovery.timeline,
        durationMs: Math.round(performance.now() - started),
        restoreMs: restored.restoreMs,
        recoveryMs: restored.recoveryMs,
      },
      'instance created from a backup and recovered',
    );
    return this.toInstance(record);
  }

  /** pg_basebackup of the spec's primary into `target` (created empty, owned by postgres). */
  private async cloneFromPrimary(p: InstancePaths, target: string, spec: RuntimeSpec, major: string): Promise<void> {
    const replication = spec.replication;
    if (!replication || replication.password === '')
      throw new AgentError('PRIMARY_NOT_READY', 'a replica needs the replication role and its password in its spec');
    if (this.o.install.majors.find((m) => m.major === major)?.pgBasebackup === false) {
      // pg_basebackup of another major refuses the server ("incompatible server version").
      throw new AgentError(
        'NOT_SUPPORTED',
        `PostgreSQL ${major} on this host has no pg_basebackup ${major} beside its server binaries; a replica of it cannot be cloned here`,
        { kind: 'user' },
      );
    }
    const started = performance.now();
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(target, { mode: 0o700 });
    if (this.o.runAs) fs.chownSync(target, this.o.runAs.uid, this.o.runAs.gid);
    writePassFile(p.passFile, replication, this.o.runAs);
    try {
      await baseBackup({
        binDir: binDirFor(this.o.install, major).binDir,
        dataDir: target,
        replication,
        passFile: p.passFile,
        runAs: this.o.runAs,
        tls: this.replicationTls(),
      });
    } catch (err) {
      fs.rmSync(target, { recursive: true, force: true });
      throw err;
    }
    this.log.info(
      {
        tenantId: spec.tenantId,
        primary: `${replication.primaryAddress}:${replication.primaryPort}`,
        slot: replication.slot,
        durationMs: Math.round(performance.now() - started),
      },
      'base backup of the primary taken',
    );
  }

  /**
   * Turns a stopped (or stray running) former primary into a standby of the spec's primary:
   * pg_rewind onto the new timeline, or a fresh base backup when rewinding fails. The old data is
   * replaced only by a complete copy, so a primary that cannot be reached yet costs nothing.
   */
  private async convertToStandby(p: InstancePaths, spec: RuntimeSpec, major: string): Promise<void> {
    const replication = spec.replication;
    if (!replication || replication.primaryPort === 0 || replication.password === '')
      throw new AgentError('PRIMARY_NOT_READY', 'the new primary is not known yet; the former primary stays stopped until it is');
    await this.stop(spec.tenantId);
    writePassFile(p.passFile, replication, this.o.runAs);
    const { binDir } = binDirFor(this.o.install, major);
    const started = performance.now();
    const control = await controlData({ binDir, dataDir: p.dataDir, runAs: this.o.runAs }).catch(() => ({}) as Record<string, string>);
    const need = await this.rewindNeed(control, binDir, replication, p.passFile);
    if (!need.needed) {
      this.log.info({ tenantId: spec.tenantId, reason: need.reason }, 'former primary follows the new primary as it is (nothing to rewind)');
      fs.writeFileSync(p.standbySignal, '', { mode: 0o600 });
      if (this.o.runAs) fs.chownSync(p.standbySignal, this.o.runAs.uid, this.o.runAs.gid);
      return;
    }
    try {
      // pg_rewind refuses an instance that ran without wal_log_hints and without data checksums:
      // straight to the copy, without a failed attempt first.
      if (control['wal_log_hints setting'] === 'off' && control['Data page checksum version'] === '0')
        throw new AgentError('REWIND_FAILED', 'the former primary ran without wal_log_hints and without data checksums, which pg_rewind needs');
      const out = await rewind({ binDir, dataDir: p.dataDir, replication, passFile: p.passFile, runAs: this.o.runAs, tls: this.replicationTls() });
      this.log.info(
        { tenantId: spec.tenantId, durationMs: Math.round(performance.now() - started), output: out.trim().split('\n').slice(-2).join(' | ') },
        "former primary rewound onto the new primary's timeline",
      );
    } catch (err) {
      this.log.warn({ tenantId: spec.tenantId, err, why: need.reason }, 'cannot rewind; re-cloning the former primary from the new one');
      const fresh = `${p.dataDir}.clone`;
      await this.cloneFromPrimary(p, fresh, spec, major);
      fs.rmSync(p.dataDir, { recursive: true, force: true });
      fs.renameSync(fresh, p.dataDir);
    }
    fs.writeFileSync(p.standbySignal, '', { mode: 0o600 });
    if (this.o.runAs) fs.chownSync(p.standbySignal, this.o.runAs.uid, this.o.runAs.gid);
  }

  /** Whether the stopped former primary needs pg_rewind (see formerPrimaryNeedsRewind); needed when unsure. */
  private async rewindNeed(control: Record<string, string>, binDir: string, replication: RuntimeReplication, passFile: string): Promise<RewindNeed> {
    try {
      const history = await newestTimelineHistory({ binDir, replication, passFile, runAs: this.o.runAs, tls: this.replicationTls() });
      return formerPrimaryNeedsRewind(
        {
          clusterState: control['Database cluster state'] ?? '',
          checkpointLsn: control['Latest checkpoint location'] ?? '',
          checkpointTimeline: Number(control["Latest checkpoint's TimeLineID"] ?? 0),
        },
        parseTimelineHistory(history),
      );
    } catch (err) {
      return { needed: true, reason: `the new primary's timeline history could not be read: ${messageOf(err)}` };
    }
  }

  private async reconfigure(record: InstanceRecord, spec: RuntimeSpec): Promise<RuntimeInstance> {
    const p = this.paths(spec.tenantId);
    const major = spec.version === '' ? record.spec.version : spec.version;
    if (major !== record.spec.version) {
      throw new AgentError(
        'NOT_SUPPORTED',
        `the instance runs PostgreSQL ${record.spec.version}; changing the major version in place (to ${major}) is not supported`,
        { kind: 'user' },
      );
    }
    const port = spec.port > 0 ? spec.port : record.port;
    if (spec.role === 'REPLICA' && !fs.existsSync(p.standbySignal)) await this.convertToStandby(p, spec, major);
    const changed = this.writeConfig(p, port, spec);
    const next: InstanceRecord = { ...record, address: this.o.address, port, spec: recordedSpec(spec, major, port) };
    if (JSON.stringify(next) !== JSON.stringify(record)) writeInstanceRecord(p.recordFile, next);
    const pm = runningPostmaster(p.dataDir);
    if (pm && changed) {
      const before = this.settingsFor(p, record.address, record.port, record.spec);
      const after = this.settingsFor(p, this.o.address, port, spec);
      const changedNames = Object.keys(after).filter((k) => before[k] !== after[k]);
      const restartOnly = (await this.restartOnlySettings(spec.tenantId, record.port, changedNames)).filter(
        (name) => spec.role === 'REPLICA' || !PRIMARY_DEFERRED.has(name),
      );
      if (restartOnly.length > 0) {
        this.log.info({ tenantId: spec.tenantId, settings: restartOnly }, 'settings need a restart; restarting the instance');
        await this.stop(spec.tenantId);
        return this.start(spec.tenantId);
      }
      process.kill(pm.pid, 'SIGHUP');
      this.log.info({ tenantId: spec.tenantId, settings: changedNames }, 'instance configuration reloaded');
    }
    if (pm) this.o.cgroups.apply(spec.tenantId, spec.resources, () => [pm.pid, ...childPids(pm.pid)]);
    return this.toInstance(next);
  }

  /** Which of `names` only take effect at server start (context 'postmaster'), asked of the server itself. */
  private async restartOnlySettings(tenantId: string, port: number, names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const client = new pg.Client({ host: this.paths(tenantId).socketDir, port, user: 'postgres', database: 'postgres' });
    try {
      await client.connect();
      const r = await client.query<{ name: string }>("select name from pg_settings where context = 'postmaster' and name = any($1::text[])", [names]);
      return r.rows.map((row) => row.name);
    } finally {
      await client.end().catch((err: unknown) => this.log.debug({ tenantId, err }, 'closing the admin connection failed'));
    }
  }

  async start(tenantId: string): Promise<RuntimeInstance> {
    const record = this.record(tenantId);
    if (!record) throw new AgentError('INSTANCE_NOT_FOUND', `no instance of ${tenantId} on this host`);
    const p = this.paths(tenantId);
    if (runningPostmaster(p.dataDir)) return this.toInstance(record);
    const stale = readPostmasterPid(p.dataDir);
    if (stale) {
      // The pid is dead, or alive but not this data directory's postmaster (reused after a crash).
      // PostgreSQL itself would refuse to start when a reused pid belongs to the same OS user.
      this.log.warn({ tenantId, stalePid: stale.pid, pidAlive: isAlive(stale.pid) }, 'removing stale postmaster.pid left by a crash');
      fs.rmSync(pidFilePath(p.dataDir), { force: true });
    }
    // The socket directory belongs to this instance alone, so with its postmaster not running a
    // socket or its .lock there is a crash leftover; PostgreSQL refuses to start while the lock names
    // a pid that still exists (a dead postmaster not yet reaped is such a pid).
    for (const entry of fs.readdirSync(p.socketDir)) {
      if (entry.startsWith('.s.PGSQL.')) fs.rmSync(path.join(p.socketDir, entry), { force: true });
    }
    const { pid, child } = this.spawnServer(tenantId, p, record.spec.version, record.spec.resources);
    await this.waitReady(tenantId, p, pid, child);
    this.o.cgroups.apply(tenantId, record.spec.resources, () => childPids(pid));
    this.log.info({ tenantId, pid, port: record.port }, 'instance started');
    return this.toInstance(record);
  }

  /** Spawns postgres on the instance's data directory (detached, as the postgres OS user, output to postgres.log). */
  private spawnServer(tenantId: string, p: InstancePaths, version: string, resources: RuntimeSpec['resources']): { pid: number; child: ChildProcess } {
    const { binDir } = binDirFor(this.o.install, version);
    const logFd = fs.openSync(p.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(path.join(binDir, 'postgres'), ['-D', p.dataDir], {
        uid: this.o.runAs?.uid,
        gid: this.o.runAs?.gid,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        cwd: p.dir,
        env: { PATH: '/usr/bin:/bin', LANG: 'C', TZ: process.env.TZ ?? 'UTC' },
      });
    } finally {
      fs.closeSync(logFd);
    }
    child.on('error', (err) => this.log.error({ tenantId, err }, 'postgres could not be spawned'));
    // Survive the agent: the server runs in its own session and the agent does not wait for it.
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new AgentError('START_FAILED', `postgres for ${tenantId} could not be spawned: ${logTail(p.logFile)}`);
    this.o.cgroups.apply(tenantId, resources, [pid]);
    return { pid, child };
  }

  private async waitReady(tenantId: string, p: InstancePaths, pid: number, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + this.o.startTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null || !isAlive(pid)) {
        throw new AgentError(
          'START_FAILED',
          `postgres for ${tenantId} exited during start (${child.exitCode ?? child.signalCode ?? 'gone'}): ${logTail(p.logFile)}`,
        );
      }
      const file = readPostmasterPid(p.dataDir);
      if (file?.pid === pid && file.status === 'ready') return;
      await sleep(POLL_MS);
    }
    process.kill(pid, 'SIGQUIT');
    throw new AgentError('START_FAILED', `postgres for ${tenantId} did not accept connections within ${this.o.startTimeoutMs} ms: ${logTail(p.logFile)}`);
  }

  async isStandby(tenantId: string): Promise<boolean> {
    return fs.existsSync(this.paths(tenantId).standbySignal);
  }

  async checkpointLsn(tenantId: string): Promise<string> {
    const record = this.record(tenantId);
    if (!record) return '';
    const fields = await controlData({
      binDir: binDirFor(this.o.install, record.spec.version).binDir,
      dataDir: this.paths(tenantId).dataDir,
      runAs: this.o.runAs,
    });
    return fields['Latest checkpoint location'] ?? '';
  }

  async stop(tenantId: string, mode: StopMode = 'fast'): Promise<void> {
    const p = this.paths(tenantId);
    const pm = runningPostmaster(p.dataDir);
    if (!pm) return;
    // Fast shutdown (SIGINT) rolls back and disconnects clients; immediate (SIGQUIT) after the
    // timeout skips the checkpoint; SIGKILL is the last resort (postgres-docs "Shutting Down the Server").
    // A lease-expired primary is stopped immediately: it must stop accepting writes now.
    const steps: { signal: NodeJS.Signals; waitMs: number }[] = [
      ...(mode === 'fast' ? [{ signal: 'SIGINT' as const, waitMs: this.o.stopTimeoutMs }] : []),
      { signal: 'SIGQUIT', waitMs: 5000 },
      { signal: 'SIGKILL', waitMs: 5000 },
    ];
    for (const step of steps) {
      try {
        process.kill(pm.pid, step.signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
        throw err;
      }
      const deadline = Date.now() + step.waitMs;
      while (Date.now() < deadline) {
        if (!isAlive(pm.pid)) {
          this.log.info({ tenantId, pid: pm.pid, signal: step.signal }, 'instance stopped');
          return;
        }
        await sleep(POLL_MS * 2);
      }
      this.log.warn({ tenantId, pid: pm.pid, signal: step.signal, waitedMs: step.waitMs }, 'postgres did not stop in time; escalating');
    }
    throw new AgentError('STOP_FAILED', `postgres ${pm.pid} of ${tenantId} did not stop even after SIGKILL`);
  }

  async remove(tenantId: string): Promise<void> {
    await this.stop(tenantId);
    this.o.cgroups.remove(tenantId);
    const p = this.paths(tenantId);
    fs.rmSync(p.dir, { recursive: true, force: true });
    this.log.info({ tenantId, dir: p.dir }, 'instance and its data deleted');
  }

  adminConnection(tenantId: string, database = 'postgres'): pg.ClientConfig {
    const record = this.record(tenantId);
    if (!record) throw new AgentError('INSTANCE_NOT_FOUND', `no instance of ${tenantId} on this host`);
    return { host: this.paths(tenantId).socketDir, port: record.port, user: 'postgres', database };
  }
}
