/** What the backup rules know of one base backup (the coordinator's rows carry more). */

/** pgBackRest's backup kinds: full, differential (since the last full), incremental (since the last backup). */
export type BackupType = 'FULL' | 'DIFF' | 'INCR';

/** RUNNING until the agent answers; only SUCCEEDED backups are restorable. */
export type BackupStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'EXPIRED';

/** One backup as the rules see it; times are epoch ms (0 = not yet). */
export interface BackupView {
  id: string;
  type: BackupType;
  status: BackupStatus;
  /** The host whose agent ran it (the tenant's primary then). */
  hostId: string;
  /** pgBackRest's label, '' until it finished. */
  label: string;
  /** The label a DIFF or INCR depends on ('' for a FULL). */
  priorLabel: string;
  startedAt: number;
  finishedAt: number;
  /** The timeline the primary was on (0 = unknown). */
  timeline: number;
}
