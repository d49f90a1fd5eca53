/**
 * The archive part of a primary's health: PostgreSQL's own counters (pg_stat_archiver) and what
 * waits in pg_wal. A failing archive_command (repository down, wrong key) shows as a growing
 * failed_count, a last_failed_wal and pending segments with a growing lag, while the instance
 * keeps serving: PostgreSQL retries and keeps the WAL, which the agent never removes.
 * Docs: https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW
 */
import type pg from 'pg';
import type { ArchivedThrough } from './archived-through.js';
import type { ArchiveStatus } from './backup-types.js';
import type { PendingWal } from './pending-wal.js';
import { tryParseLsn } from '@pgs/tenancy';

const ARCHIVER_SQL = `select archived_count::text as archived, coalesce(last_archived_wal, '') as last_archived_wal,
  coalesce((extract(epoch from last_archived_time) * 1000)::bigint, 0)::text as last_archived_ms,
  failed_count::text as failed, coalesce(last_failed_wal, '') as last_failed_wal,
  coalesce((extract(epoch from last_failed_time) * 1000)::bigint, 0)::text as last_failed_ms,
  current_setting('archive_mode') as mode,
  pg_current_wal_insert_lsn()::text as insert_lsn,
  (select setting from pg_settings where name = 'wal_segment_size') as segment_bytes,
  ((select count(*) from pg_stat_activity where backend_xid is not null) + (select count(*) from pg_prepared_xacts))::int as xid_holders,
  pg_snapshot_xmax(pg_current_snapshot())::text as next_xid
  from pg_stat_archiver`;

interface ArchiverRow {
  archived: string;
  last_archived_wal: string;
  last_archived_ms: string;
  failed: string;
  last_failed_wal: string;
  last_failed_ms: string;
  mode: string;
  insert_lsn: string;
  /** Bytes (pg_settings gives wal_segment_size in bytes since PostgreSQL 11). */
  segment_bytes: string;
  xid_holders: number;
  next_xid: string;
}

/**
 * Reads pg_stat_archiver over `client` (a primary's: the insert position exists only there) and
 * joins it with `pending`; `now` is the clock before the query, and `progress` this primary's
 * archive progress, fed this look.
 */
export async function readArchiveStatus(client: pg.ClientBase, pending: PendingWal, now: number, progress: ArchivedThrough): Promise<ArchiveStatus> {
  const row = (await client.query<ArchiverRow>(ARCHIVER_SQL)).rows[0];
  const lsn = tryParseLsn(row?.insert_lsn);
  const through =
    row && lsn !== undefined
      ? progress.observe({
          atMs: now,
          insertLsn: lsn,
          lastArchivedWal: row.last_archived_wal,
          segmentBytes: BigInt(row.segment_bytes),
          xidHolders: row.xid_holders,
          nextXid: row.next_xid,
        })
      : 0;
  return {
    enabled: row !== undefined && row.mode !== 'off',
    archivedCount: Number(row?.archived ?? 0),
    lastArchivedWal: row?.last_archived_wal ?? '',
    lastArchivedAtMs: Number(row?.last_archived_ms ?? 0),
    archivedThroughMs: through,
    failedCount: Number(row?.failed ?? 0),
    lastFailedWal: row?.last_failed_wal ?? '',
    lastFailedAtMs: Number(row?.last_failed_ms ?? 0),
    pendingSegments: pending.segments,
    pendingBytes: pending.bytes,
    lagSeconds: pending.oldestReadyAtMs > 0 ? Math.max(0, Math.floor((now - pending.oldestReadyAtMs) / 1000)) : 0,
  };
}
