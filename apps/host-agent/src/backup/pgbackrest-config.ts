/**
 * The text of a tenant's pgBackRest configuration file and the PostgreSQL settings that archive its
 * WAL through it. Pure: the caller writes the file (0600, owned by the postgres OS user) and keeps
 * the secrets it holds (cipher pass, S3 keys) out of every log line and error message.
 * Docs: https://pgbackrest.org/configuration.html, https://pgbackrest.org/user-guide.html
 */
import { AgentError } from '../errors.js';
import type { BackupRepository, InstanceBackup } from './backup-types.js';

/** Where one instance's server and pgBackRest's working files are. */
export interface PgBackRestPaths {
  /** The data directory (pg1-path). */
  pgPath: string;
  /** The unix socket directory (pg1-socket-path) and port (pg1-port). */
  socketPath: string;
  port: number;
  spoolPath: string;
  logPath: string;
  lockPath: string;
  /** Where the S3 CA bundle is written (repo1-storage-ca-file), used only with an S3 repository that has one. */
  caFile: string;
}

/** A stanza name: pgBackRest and the archive_command accept it unquoted. */
const STANZA = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/;

/** Returns the stanza, or throws INVALID_IDENTIFIER. */
export function checkedStanza(stanza: string): string {
  if (!STANZA.test(stanza))
    throw new AgentError('INVALID_IDENTIFIER', `not a valid pgBackRest stanza name: ${JSON.stringify(stanza.slice(0, 80))} (letters, digits, '_', '.', '-')`, {
      kind: 'user',
    });
  return stanza;
}

/** A value on one line of the file: a line break would start a new option, so it is refused (named, never shown). */
function line(name: string, value: string | number): string {
  const text = String(value);
  if (/[\r\n\0]/.test(text))
    throw new AgentError(
      'INVALID_IDENTIFIER',
      `the backup repository's ${name} contains a line break; fix it in the coordinator's backup repository settings`,
      { kind: 'user' },
    );
  return `${name}=${text}`;
}

/** The [global] lines that say where the repository is and how it is encrypted. */
function repositoryLines(repo: BackupRepository, caFile: string): string[] {
  const s = repo.store;
  const lines: string[] = [];
  if (s.kind === 'posix') {
    lines.push(line('repo1-type', 'posix'), line('repo1-path', s.path));
  } else {
    lines.push(
      line('repo1-type', 's3'),
      line('repo1-path', s.path === '' ? '/' : s.path),
      line('repo1-s3-endpoint', s.endpoint),
      line('repo1-s3-bucket', s.bucket),
      line('repo1-s3-region', s.region),
      line('repo1-s3-uri-style', s.pathStyle ? 'path' : 'host'),
    );
    if (s.port > 0) lines.push(line('repo1-storage-port', s.port));
    if (s.caPem !== '') lines.push(line('repo1-storage-ca-file', caFile));
    lines.push(line('repo1-s3-key', s.accessKey), line('repo1-s3-key-secret', s.secretKey));
  }
  if (repo.cipherPass !== '') lines.push(line('repo1-cipher-type', 'aes-256-cbc'), line('repo1-cipher-pass', repo.cipherPass));
  return lines;
}

/**
 * The configuration file of one stanza. `retentionDays` 0 leaves retention unset (pgBackRest then
 * keeps every backup and warns); a restore's file has no use for it.
 */
export function renderPgBackRestConfig(o: { repo: BackupRepository; stanza: string; retentionDays: number; paths: PgBackRestPaths }): string {
  const p = o.paths;
  const lines = [
    '# Written by pgs-host-agent from the fleet backup repository and the tenant spec; edits are overwritten.',
    '[global]',
    ...repositoryLines(o.repo, p.caFile),
    ...(o.retentionDays > 0 ? [line('repo1-retention-full-type', 'time'), line('repo1-retention-full', o.retentionDays)] : []),
    line('compress-type', 'lz4'),
    // archive-push returns as soon as the segment is queued in the spool; a separate process ships it.
    line('archive-async', 'y'),
    line('spool-path', p.spoolPath),
    line('log-path', p.logPath),
    line('lock-path', p.lockPath),
    // A backup starts with an immediate checkpoint instead of waiting up to checkpoint_timeout.
    line('start-fast', 'y'),
    // Errors reach the agent on stderr; the details go to the log file.
    line('log-level-console', 'off'),
    line('log-level-stderr', 'error'),
    line('log-level-file', 'info'),
    '',
    `[${checkedStanza(o.stanza)}]`,
    line('pg1-path', p.pgPath),
    line('pg1-socket-path', p.socketPath),
    line('pg1-port', p.port),
    '',
  ];
  return lines.join('\n');
}

/** A word for /bin/sh, single-quoted unless it is plainly safe. */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * The PostgreSQL settings of an instance with (`backup`) or without (undefined) WAL archiving. Every
 * key is always written, so turning archiving off is a change the agent sees (archive_mode only
 * takes effect at server start). A replica gets the same: with archive_mode=on a standby archives
 * nothing until it is promoted, and then it continues the same stanza.
 * Docs: https://www.postgresql.org/docs/current/continuous-archiving.html
 */
export function archiveSettings(backup: InstanceBackup | undefined, configFile: string): Record<string, string> {
  if (!backup) return { archive_mode: 'off', archive_command: '', archive_timeout: '0' };
  return {
    archive_mode: 'on',
    archive_command: `pgbackrest ${shellWord(`--config=${configFile}`)} --stanza=${checkedStanza(backup.stanza)} archive-push %p`,
    archive_timeout: `${backup.archiveTimeoutSeconds}s`,
  };
}
