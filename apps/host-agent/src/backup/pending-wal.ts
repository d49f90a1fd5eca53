/**
 * WAL that waits in pg_wal for the archiver: PostgreSQL marks each completed segment (and history
 * or backup-history file) with `pg_wal/archive_status/<name>.ready` and renames it to `.done` once
 * archive_command succeeded. While the repository is unreachable these pile up, and the segments
 * stay on the host's disk: nothing is lost, and this is how much is waiting.
 * Docs: https://www.postgresql.org/docs/current/continuous-archiving.html#BACKUP-ARCHIVING-WAL
 */
import fs from 'node:fs';
import path from 'node:path';

/** What waits to be archived. */
export interface PendingWal {
  segments: number;
  bytes: number;
  /** Epoch ms of the oldest .ready file (0 when none). */
  oldestReadyAtMs: number;
}

/** Reads pg_wal/archive_status of `dataDir`; a missing directory means nothing waits. */
export function readPendingWal(dataDir: string): PendingWal {
  const statusDir = path.join(dataDir, 'pg_wal', 'archive_status');
  let entries: string[];
  try {
    entries = fs.readdirSync(statusDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: 0, bytes: 0, oldestReadyAtMs: 0 };
    throw err;
  }
  const out: PendingWal = { segments: 0, bytes: 0, oldestReadyAtMs: 0 };
  for (const entry of entries) {
    if (!entry.endsWith('.ready')) continue;
    const name = entry.slice(0, -'.ready'.length);
    // The archiver may finish one between readdir and stat: then it no longer waits.
    const marker = fs.statSync(path.join(statusDir, entry), { throwIfNoEntry: false });
    if (!marker) continue;
    const file = fs.statSync(path.join(dataDir, 'pg_wal', name), { throwIfNoEntry: false });
    out.segments += 1;
    out.bytes += file?.size ?? 0;
    if (out.oldestReadyAtMs === 0 || marker.mtimeMs < out.oldestReadyAtMs) out.oldestReadyAtMs = Math.floor(marker.mtimeMs);
  }
  return out;
}
