/**
 * The agent's domain view of backups (pgBackRest): the fleet's repository from Welcome, a tenant's
 * archiving settings and restore source from its InstanceSpec, and what the agent reports back
 * (a backup's result, where a restore's recovery ended, how WAL archiving goes). The proto types
 * are converted to these in mappers/agent-mapper.ts.
 */

/** A directory every host can reach (a shared mount). */
export interface PosixRepository {
  kind: 'posix';
  path: string;
}

/** An S3-compatible object store. */
export interface S3Repository {
  kind: 's3';
  /** Host name of the endpoint; it must match a DNS name of the endpoint's TLS certificate. */
  endpoint: string;
  /** 0 = pgBackRest's default (443). */
  port: number;
  bucket: string;
  region: string;
  /** Path inside the bucket ('' = '/'). */
  path: string;
  pathStyle: boolean;
  /** PEM CA bundle for the endpoint's certificate; '' = the system's. */
  caPem: string;
  accessKey: string;
  secretKey: string;
}

/** The fleet's backup repository (Welcome.backup_repository). */
export interface BackupRepository {
  store: PosixRepository | S3Repository;
  /** aes-256-cbc passphrase; '' = not encrypted. A secret: never logged. */
  cipherPass: string;
  /** Names the key (safe to log and to put in error messages). */
  keyId: string;
}

/** A tenant's stanza and archiving settings, and what a new instance is restored from: shared with the coordinator. */
export type { InstanceBackup, RestoreSource } from '@pgs/tenancy';
import type { RestoreSource } from '@pgs/tenancy';

/** Where a restore stops. */
export type RestoreTarget = RestoreSource['target'];

/** pgBackRest's backup types. */
export type BackupKind = 'FULL' | 'DIFF' | 'INCR';

/** What one pgBackRest backup made (CommandResult.backup). */
export interface BackupResult {
  label: string;
  /** The backup a diff or incr depends on ('' for a full). */
  priorLabel: string;
  type: BackupKind;
  startedAtMs: number;
  finishedAtMs: number;
  /** The database size the backup covers. */
  sizeBytes: number;
  /** What it added to the repository (compressed, deduplicated). */
  repoSizeBytes: number;
  lsnStart: string;
  lsnStop: string;
  timeline: number;
  /** The stanza's backups together in the repository, and its archive's oldest and newest WAL. */
  stanzaRepoSizeBytes: number;
  archiveMinWal: string;
  archiveMaxWal: string;
}

/** Where the recovery of a restored instance ended (InstanceStatus.recovery). */
export interface RecoveryResult {
  restoreId: string;
  ok: boolean;
  errorCode: string;
  message: string;
  /** Last replayed WAL position. */
  lsn: string;
  /** Epoch ms of the last replayed commit (0 = none replayed or unknown). */
  commitTimeMs: number;
  timeline: number;
  /** The newest WAL segment in the source's archive when the restore began. */
  archiveMaxWal: string;
}

/** WAL archiving of one primary (InstanceHealth.archive). */
export interface ArchiveStatus {
  enabled: boolean;
  archivedCount: number;
  lastArchivedWal: string;
  /** Epoch ms; 0 = never. When the archiver last finished a file, not how far the archive reaches. */
  lastArchivedAtMs: number;
  /** Epoch ms through which every commit is archived (archived-through.ts); 0 = not known yet. */
  archivedThroughMs: number;
  failedCount: number;
  lastFailedWal: string;
  lastFailedAtMs: number;
  /** Segments written but not archived yet (.ready files) and their bytes. */
  pendingSegments: number;
  pendingBytes: number;
  /** Age of the oldest .ready file (0 when nothing waits). */
  lagSeconds: number;
}
