/**
 * Makes a new instance from a backup (process runtime): `pgbackrest restore` of the source stanza
 * into an empty data directory, the agent's own settings written over the source's (its port, its
 * socket, and above all archiving into its OWN stanza: the restored files carry the source's), then
 * the server is started and recovers to the target, promotes itself (target-action=promote, or the
 * end of the archive) and is left running as a primary. Where recovery stopped is read from the
 * server (last replayed LSN, timeline) and its log (the last replayed commit's time).
 * A failure stops the server and removes everything made, so nothing half-restored is ever served.
 * Docs: https://www.postgresql.org/docs/current/continuous-archiving.html#BACKUP-PITR-RECOVERY
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '@pgs/service-kit';
import { RECOVERY_SETTINGS, withoutSettings } from '../backup/auto-conf.js';
import type { RecoveryResult } from '../backup/backup-types.js';
import type { ProcessBackups } from '../backup/process-backups.js';
import type { InfoBackup } from '../backup/pgbackrest-info.js';
import { parseRecoveryLog } from '../backup/recovery-log.js';
import { targetNotReachedMessage } from '../backup/restore-plan.js';
import { AgentError, codeOf, messageOf, RestoreError } from '../errors.js';
import type { OsUser } from './os-user.js';
import { isAlive } from './postmaster-pid.js';
import type { InstancePaths } from './process-runtime.js';
import type { RuntimeSpec } from './runtime.js';

const POLL_MS = 100;

/** What a restore needs from the runtime. */
export interface RestoreInstanceOptions {
  spec: RuntimeSpec;
  paths: InstancePaths;
  port: number;
  backups: ProcessBackups;
  runAs: OsUser | undefined;
  log: Logger;
  /** Restore plus recovery, at most. */
  timeoutMs: number;
  /** Writes pg_hba.conf, pgs.conf (own stanza) and pgbackrest.conf of the new instance. */
  writeConfig: () => void;
  /** The settings pgs.conf owns (taken out of the restored postgresql.auto.conf). */
  agentSettings: () => string[];
  spawn: () => { pid: number; child: ChildProcess };
  stop: () => Promise<void>;
}

/** Rewrites postgresql.auto.conf of `dataDir` without `names` (keeping its owner and mode). */
function scrubAutoConf(dataDir: string, names: readonly string[], archive: boolean): void {
  const file = path.join(dataDir, 'postgresql.auto.conf');
  if (!fs.existsSync(file)) return;
  const before = fs.readFileSync(file, 'utf8');
  const after = withoutSettings(before, names, { archive });
  if (after !== before) fs.writeFileSync(file, after);
}

/** The part of the log file written since byte `from`. */
function logSince(file: string, from: number): string {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(Math.min(from, buf.length)).toString('utf8');
  } catch (err) {
    return `(no log: ${messageOf(err)})`;
  }
}

interface Position {
  recovery: boolean;
  lsn: string | null;
  timeline: number;
}

/** pg_is_in_recovery() and where replay ended, or undefined while the server does not take connections yet. */
async function position(o: RestoreInstanceOptions): Promise<Position | undefined> {
  const client = new pg.Client({ host: o.paths.socketDir, port: o.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 });
  // The server may stop under this connection (a recovery that fails): that is for the caller to see, not an unhandled event.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<Position>(
      "select pg_is_in_recovery() as recovery, pg_last_wal_replay_lsn()::text as lsn, ('x' || substr(pg_walfile_name(case when pg_is_in_recovery() then '0/0'::pg_lsn else pg_current_wal_lsn() end), 1, 8))::bit(32)::int as timeline",
    );
    return r.rows[0];
  } catch {
    // Starting up, or in recovery before a consistent state: not an error, the caller polls.
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Restores, starts and recovers the instance; returns where recovery ended. Throws RestoreError. */
export async function restoreInstance(o: RestoreInstanceOptions): Promise<{ recovery: RecoveryResult; restoreMs: number; recoveryMs: number }> {
  const source = o.spec.restore;
  const p = o.paths;
  if (!source) throw new AgentError('RESTORE_FAILED', 'no restore source in the spec');
  const backup = o.spec.backup;
  let archiveMaxWal = '';
  let restored: InfoBackup | undefined;
  const deadline = Date.now() + o.timeoutMs;
  try {
    fs.mkdirSync(p.socketDir, { mode: 0o700 });
    fs.writeFileSync(p.logFile, '', { mode: 0o640 });
    if (o.runAs) {
      fs.chownSync(p.socketDir, o.runAs.uid, o.runAs.gid);
      fs.chownSync(p.logFile, o.runAs.uid, o.runAs.gid);
    }
    const t0 = performance.now();
    const inst = { tenantId: o.spec.tenantId, dir: p.dir, dataDir: p.dataDir, socketDir: p.socketDir, port: o.port };
    ({ archiveMaxWal, backup: restored } = await o.backups.restore(inst, { stanza: source.stanza, target: source.target }, p.dataDir));
    const restoreMs = Math.round(performance.now() - t0);
    // Before the first start: the agent's settings, archiving into this tenant's stanza (or not at
    // all), and nothing of the source's that would override them.
    o.writeConfig();
    scrubAutoConf(p.dataDir, o.agentSettings(), true);
    if (backup && o.backups.archiving(backup))
      o.log.info({ tenantId: o.spec.tenantId, stanza: backup.stanza, sourceStanza: source.stanza }, 'restored instance archives into its own stanza');
    const logStart = fs.statSync(p.logFile).size;
    const t1 = performance.now();
    const { pid, child } = o.spawn();
    let pos: Position | undefined;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null || !isAlive(pid)) {
        const log = parseRecoveryLog(logSince(p.logFile, logStart));
        if (log.targetNotReached)
          throw new RestoreError(
            'RESTORE_TARGET_NOT_REACHED',
            targetNotReachedMessage(source.target, log.lastCommitMs, archiveMaxWal, restored),
            archiveMaxWal,
            { kind: 'user' },
          );
        throw new RestoreError(
          'RESTORE_FAILED',
          `the restored server stopped during recovery: ${log.fatal || logSince(p.logFile, logStart).slice(-1200).trim()}`,
          archiveMaxWal,
        );
      }
      if (Date.now() > deadline) throw new RestoreError('RESTORE_FAILED', `recovery did not finish within ${Math.round(o.timeoutMs / 1000)} s`, archiveMaxWal);
      pos = await position(o);
      if (pos && !pos.recovery) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const recoveryMs = Math.round(performance.now() - t1);
    const log = parseRecoveryLog(logSince(p.logFile, logStart));
    // Recovery is over: its settings go, so a later standby.signal does not stop at this target.
    scrubAutoConf(p.dataDir, RECOVERY_SETTINGS, false);
    o.backups.forgetRestore(p.dir);
    const recovery: RecoveryResult = {
      restoreId: source.restoreId,
      ok: true,
      errorCode: '',
      message: '',
      lsn: pos.lsn ?? log.redoDoneLsn,
      commitTimeMs: log.lastCommitMs,
      timeline: pos.timeline,
      archiveMaxWal,
    };
    return { recovery, restoreMs, recoveryMs };
  } catch (err) {
    await o.stop().catch((stopErr: unknown) => o.log.error({ tenantId: o.spec.tenantId, err: stopErr }, 'stopping the server of a failed restore failed'));
    fs.rmSync(p.dir, { recursive: true, force: true });
    if (err instanceof RestoreError) throw err;
    throw new RestoreError(codeOf(err) === 'RUNTIME_ERROR' ? 'RESTORE_FAILED' : (codeOf(err) as RestoreErrorCode), messageOf(err), archiveMaxWal, {
      cause: err,
    });
  }
}

type RestoreErrorCode = ConstructorParameters<typeof RestoreError>[0];
