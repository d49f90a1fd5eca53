/**
 * The archive part of a primary's health: PostgreSQL's own counters (pg_stat_archiver) and what
 * waits in pg_wal. A failing archive_command (repository down, wrong key) shows as a growing
 * failed_count, a last_failed_wal and pending segments with a growing lag, while the instance
 * keeps serving: PostgreSQL retries and keeps the WAL, which the agent never removes.
 * Docs: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW
 */
import type pg from 'pg';
import type { ArchiveStatus } from './backup-types.js';
import type { PendingWal } from './pending-wal.js';

const ARCHIVER_SQL = `select archived_count::text as archived, coalesce(last_archived_wal, '') as last_archived_wal,
  coalesce((extract(epoch from last_archived_time) * 1000)::bigint, 0)::text as last_archived_ms,
  failed_count::text as failed, coalesce(last_failed_wal, '') as last_failed_wal,
  coalesce((extract(epoch from last_failed_time) * 1000)::bigint, 0)::text as last_failed_ms,
  current_setting('archive_mode') as mode
  from pg_stat_archiver`;

interface ArchiverRow {
  archived: string;
  last_archived_wal: string;
  last_archived_ms: string;
  failed: string;
  last_failed_wal: string;
  last_failed_ms: string;
  mode: string;
}

/** Reads pg_stat_archiver over `client` and joins it with `pending` (read at `now`). */
export async function readArchiveStatus(client: pg.ClientBase, pending: PendingWal, now: number): Promise<ArchiveStatus> {
  const row = (await client.query<ArchiverRow>(ARCHIVER_SQL)).rows[0];
  return {
    enabled: row !== undefined && row.mode !== 'off',
    archivedCount: Number(row?.archived ?? 0),
    lastArchivedWal: row?.last_archived_wal ?? '',
    lastArchivedAtMs: Number(row?.last_archived_ms ?? 0),
    failedCount: Number(row?.failed ?? 0),
    lastFailedWal: row?.last_failed_wal ?? '',
    lastFailedAtMs: Number(row?.last_failed_ms ?? 0),
    pendingSegments: pending.segments,
    pendingBytes: pending.bytes,
    lagSeconds: pending.oldestReadyAtMs > 0 ? Math.max(0, Math.floor((now - pending.oldestReadyAtMs) / 1000)) : 0,
  };
}
