/**
 * pgBackRest for the process runtime: the fleet's repository as the last Welcome named it, each
 * tenant's config file, and the commands the agent runs for it (stanza-create, backup, expire,
 * info, restore). Per instance directory:
 *
 *   pgbackrest.conf        the repository, its key and the stanza (0600, owned by postgres)
 *   pgbackrest-ca.pem      the S3 endpoint's CA bundle, when it has one (0600, owned by postgres)
 *   restore.conf           while a restore recovers: the source stanza's config (removed after)
 *   pgbackrest/{spool,log,lock}/   pgBackRest's working files (async archive queue, logs, locks)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '@pgs/service-kit';
import { AgentError, messageOf } from '../errors.js';
import type { OsUser } from '../runtime/os-user.js';
import type { BackupKind, BackupRepository, BackupResult, InstanceBackup, RestoreTarget } from './backup-types.js';
import { archiveSettings, checkedStanza, renderPgBackRestConfig, type PgBackRestPaths } from './pgbackrest-config.js';
import { backupResultFrom, parseStanzaInfo, type StanzaInfo } from './pgbackrest-info.js';
import { keyMessage, runPgBackRest } from './pgbackrest.js';
import { checkRestorable, chosenBackup, restoreOptions } from './restore-plan.js';
import type { InfoBackup } from './pgbackrest-info.js';

/** Where one instance is. */
export interface BackupInstance {
  tenantId: string;
  /** instances/<tenant>/ */
  dir: string;
  dataDir: string;
  socketDir: string;
  port: number;
}

/** Files in an instance directory. */
export function backupFiles(dir: string): { config: string; ca: string; restoreConfig: string; work: string } {
  return {
    config: path.join(dir, 'pgbackrest.conf'),
    ca: path.join(dir, 'pgbackrest-ca.pem'),
    restoreConfig: path.join(dir, 'restore.conf'),
    work: path.join(dir, 'pgbackrest'),
  };
}

/** Writes `content` atomically (mode 0600, owned by `owner`) when it differs; returns whether it changed. */
function writeOwned(file: string, content: string, owner: OsUser | undefined): boolean {
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  if (current === content) return false;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  if (owner) fs.chownSync(tmp, owner.uid, owner.gid);
  fs.renameSync(tmp, file);
  return true;
}

function mkdirOwned(dir: string, owner: OsUser | undefined): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
}

/** How long stanza-create waits for pgBackRest's locks held by the async archiver. */
const LOCK_WAIT_MS = 60_000;

/** The repository as the agent knows it: not yet (no Welcome since the start), none, or one. */
type RepositoryState = { known: false } | { known: true; repo: BackupRepository | undefined };

/** What it needs. */
export interface ProcessBackupsOptions {
  runAs: OsUser | undefined;
  log: Logger;
  /** How long a backup or a restore may run before it is stopped. */
  longTimeoutMs: number;
}

/** pgBackRest for the process runtime. */
export class ProcessBackups {
  private state: RepositoryState = { known: false };
  private readonly log: Logger;
  /** stanza-create in flight per tenant: a second caller joins it (two would fight over pgBackRest's locks). */
  private readonly stanzaRuns = new Map<string, Promise<void>>();

  constructor(private readonly o: ProcessBackupsOptions) {
    this.log = o.log.child({ component: 'backups' });
  }

  /** Takes the repository from a Welcome (undefined: the fleet has none); returns whether it changed. */
  setRepository(repo: BackupRepository | undefined): boolean {
    const changed = !this.state.known || JSON.stringify(this.state.repo) !== JSON.stringify(repo);
    this.state = { known: true, repo };
    if (changed)
      this.log.info(
        { configured: repo !== undefined, type: repo?.store.kind, keyId: repo?.keyId, encrypted: repo ? repo.cipherPass !== '' : undefined },
        'backup repository from the coordinator',
      );
    if (changed && repo?.store.kind === 'posix') this.preparePosixRepository(repo.store.path);
    return changed;
  }

  /**
   * pgBackRest runs as the postgres OS user and needs to write the repository: a directory that does
   * not exist yet is made for it (an existing one, e.g. a shared mount, is the operator's to set up).
   */
  private preparePosixRepository(dir: string): void {
    if (fs.existsSync(dir)) return;
    try {
      mkdirOwned(dir, this.o.runAs);
      this.log.info({ path: dir }, 'made the backup repository directory');
    } catch (err) {
      this.log.warn({ path: dir, err }, 'cannot make the backup repository directory; archiving fails until it exists and the postgres user can write it');
    }
  }

  /** The repository, or throws BACKUP_NOT_CONFIGURED. */
  repository(): BackupRepository {
    if (!this.state.known)
      throw new AgentError('BACKUP_NOT_CONFIGURED', 'the backup repository is not known yet (the coordinator has not welcomed this agent since it started)');
    if (!this.state.repo) throw new AgentError('BACKUP_NOT_CONFIGURED', 'the fleet has no backup repository configured', { kind: 'user' });
    return this.state.repo;
  }

  /**
   * Whether an instance whose spec has `backup` archives. Before the first Welcome the repository is
   * not known yet and archiving stays on (WAL waits in pg_wal); only a fleet without a repository turns it off.
   */
  archiving(backup: InstanceBackup | undefined): InstanceBackup | undefined {
    if (!backup) return undefined;
    return this.state.known && this.state.repo === undefined ? undefined : backup;
  }

  /** The archive settings of an instance in `dir` (part of pgs.conf). */
  settings(dir: string, backup: InstanceBackup | undefined): Record<string, string> {
    return archiveSettings(this.archiving(backup), backupFiles(dir).config);
  }

  private paths(inst: BackupInstance, dataDir = inst.dataDir): PgBackRestPaths {
    const f = backupFiles(inst.dir);
    return {
      pgPath: dataDir,
      socketPath: inst.socketDir,
      port: inst.port,
      spoolPath: path.join(f.work, 'spool'),
      logPath: path.join(f.work, 'log'),
      lockPath: path.join(f.work, 'lock'),
      caFile: f.ca,
    };
  }

  private writeFiles(inst: BackupInstance, file: string, stanza: string, retentionDays: number, repo: BackupRepository, dataDir?: string): void {
    const p = this.paths(inst, dataDir);
    mkdirOwned(backupFiles(inst.dir).work, this.o.runAs);
    for (const dir of [p.spoolPath, p.logPath, p.lockPath]) mkdirOwned(dir, this.o.runAs);
    if (repo.store.kind === 's3' && repo.store.caPem !== '') writeOwned(p.caFile, repo.store.caPem, this.o.runAs);
    writeOwned(file, renderPgBackRestConfig({ repo, stanza, retentionDays, paths: p }), this.o.runAs);
  }

  /**
   * Writes (or removes) the instance's pgbackrest.conf for `backup` and the current repository. With
   * the repository not known yet the file stays as it is (the last Welcome's).
   */
  writeConfig(inst: BackupInstance, backup: InstanceBackup | undefined): void {
    const f = backupFiles(inst.dir);
    if (!this.state.known) return;
    const repo = this.state.repo;
    if (!backup || !repo) {
      // The file holds the repository's secrets: it does not outlive its use.
      fs.rmSync(f.config, { force: true });
      fs.rmSync(f.ca, { force: true });
      return;
    }
    this.writeFiles(inst, f.config, backup.stanza, backup.retentionDays, repo);
  }

  private run(
    inst: BackupInstance,
    configFile: string,
    stanza: string,
    command: string,
    options: string[],
    failure: 'BACKUP_FAILED' | 'EXPIRE_FAILED' | 'RESTORE_FAILED',
    timeoutMs = this.o.longTimeoutMs,
  ): Promise<string> {
    return runPgBackRest({ configFile, stanza: checkedStanza(stanza), command, options, runAs: this.o.runAs, repo: this.repository(), failure, timeoutMs });
  }

  /** stanza-create (idempotent: an existing stanza of the same database is left as it is). */
  stanzaCreate(inst: BackupInstance, backup: InstanceBackup): Promise<void> {
    const running = this.stanzaRuns.get(inst.tenantId);
    if (running) return running;
    const run = this.stanzaCreateNow(inst, backup).finally(() => this.stanzaRuns.delete(inst.tenantId));
    this.stanzaRuns.set(inst.tenantId, run);
    return run;
  }

  private async stanzaCreateNow(inst: BackupInstance, backup: InstanceBackup): Promise<void> {
    const started = performance.now();
    this.writeConfig(inst, backup);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        await this.run(inst, backupFiles(inst.dir).config, backup.stanza, 'stanza-create', [], 'BACKUP_FAILED', 120_000);
        break;
      } catch (err) {
        // The async archiver holds the stanza's archive lock while it pushes WAL; stanza-create waits its turn.
        if (!/unable to acquire lock/i.test(messageOf(err)) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.log.info({ tenantId: inst.tenantId, stanza: backup.stanza, durationMs: Math.round(performance.now() - started) }, 'stanza ready');
  }

  /** info of the stanza in `configFile`. */
  async info(inst: BackupInstance, configFile: string, stanza: string, failure: 'BACKUP_FAILED' | 'RESTORE_FAILED'): Promise<StanzaInfo> {
    const out = await this.run(inst, configFile, stanza, 'info', ['--output=json'], failure, 120_000);
    return parseStanzaInfo(out, stanza);
  }

  /** A backup of the running primary (stanza-create first), and what it made. */
  async backup(inst: BackupInstance, backup: InstanceBackup, kind: BackupKind): Promise<BackupResult> {
    const started = performance.now();
    this.writeConfig(inst, backup);
    const config = backupFiles(inst.dir).config;
    let prior = await this.info(inst, config, backup.stanza, 'BACKUP_FAILED');
    if (prior.state === 'unreadable') throw new AgentError('BACKUP_KEY', keyMessage(this.repository(), backup.stanza, prior.message));
    if (prior.state === 'missing') {
      await this.stanzaCreate(inst, backup);
      prior = await this.info(inst, config, backup.stanza, 'BACKUP_FAILED');
    }
    const before = new Set(prior.backups.map((b) => b.label));
    await this.run(inst, config, backup.stanza, 'backup', [`--type=${kind.toLowerCase()}`], 'BACKUP_FAILED');
    const info = await this.info(inst, config, backup.stanza, 'BACKUP_FAILED');
    // The new backup is the one info did not list before (retention may have expired older ones meanwhile).
    const made = info.backups.filter((b) => !before.has(b.label)).pop();
    const result = backupResultFrom(info, made?.label ?? '');
    this.log.info(
      {
        tenantId: inst.tenantId,
        stanza: backup.stanza,
        label: result.label,
        type: result.type,
        sizeBytes: result.sizeBytes,
        repoSizeBytes: result.repoSizeBytes,
        durationMs: Math.round(performance.now() - started),
      },
      'backup taken',
    );
    return result;
  }

  /** Removes one backup (and those that depend on it) from the stanza. */
  async expire(inst: BackupInstance, backup: InstanceBackup, label: string): Promise<void> {
    if (!/^[0-9A-Za-z_-]{1,64}$/.test(label))
      throw new AgentError('INVALID_IDENTIFIER', `not a pgBackRest backup label: ${JSON.stringify(label.slice(0, 80))}`, { kind: 'user' });
    this.writeConfig(inst, backup);
    await this.run(inst, backupFiles(inst.dir).config, backup.stanza, 'expire', [`--set=${label}`], 'EXPIRE_FAILED', 10 * 60_000);
    this.log.info({ tenantId: inst.tenantId, stanza: backup.stanza, label }, 'backup expired');
  }

  /**
   * Restores the source stanza into `dataDir` (empty, created here owned by postgres), after checking
   * that the stanza can serve `target`. Returns the archive's newest WAL before the restore and the
   * backup restored. The
   * restore_command pgBackRest writes reads restore.conf, which stays until recovery has ended.
   */
  async restore(
    inst: BackupInstance,
    source: { stanza: string; target: RestoreTarget },
    dataDir: string,
  ): Promise<{ archiveMaxWal: string; backup: InfoBackup | undefined }> {
    const repo = this.repository();
    const file = backupFiles(inst.dir).restoreConfig;
    this.writeFiles(inst, file, source.stanza, 0, repo, dataDir);
    const info = await this.info(inst, file, source.stanza, 'RESTORE_FAILED');
    checkRestorable(info, source.target, repo);
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length > 0)
      throw new AgentError('RESTORE_REFUSED', `${dataDir} is not empty; a restore never overwrites a data directory`);
    mkdirOwned(dataDir, this.o.runAs);
    const started = performance.now();
    await this.run(inst, file, source.stanza, 'restore', restoreOptions(source.target), 'RESTORE_FAILED');
    this.log.info(
      {
        tenantId: inst.tenantId,
        stanza: source.stanza,
        target: source.target.kind,
        archiveMaxWal: info.archiveMaxWal,
        durationMs: Math.round(performance.now() - started),
      },
      'backup restored into a new data directory',
    );
    return { archiveMaxWal: info.archiveMaxWal, backup: chosenBackup(info, source.target) };
  }

  /** Removes the restore's config file (it holds the repository's secrets). */
  forgetRestore(dir: string): void {
    fs.rmSync(backupFiles(dir).restoreConfig, { force: true });
  }
}
