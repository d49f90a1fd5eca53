/**
 * WAL a promoted standby holds that the archive may lack.
 *
 * With archive_mode=on a standby archives nothing: the primary it streams from archives, and the
 * standby marks every segment it receives as done. When that primary dies, the segments it had
 * closed but not yet pushed (its archiver works a segment or more behind the writer) are lost
 * from the archive, though the standby received them: a restore to any time after that hole
 * stops at it. (archive_mode=always would have the standby archive too, but pgBackRest refuses to
 * back up a primary that runs with it.) So right after a promotion the agent marks the old
 * timeline's complete segments still in pg_wal for archiving again: the new primary's archiver
 * pushes them (pgBackRest accepts a segment it already has when its checksum is the same), and a
 * checkpoint never removes a segment that waits to be archived.
 * Docs: https://www.postgresql.org/docs/current/warm-standby.html#CONTINUOUS-ARCHIVING-IN-STANDBY
 */
import fs from 'node:fs';
import path from 'node:path';
import { tryParseLsn } from '@pgs/tenancy';
import { isSegmentName, segmentNumber, timelineHex } from './wal-names.js';

/** Where the timeline `timeline` began: the previous timeline and the LSN it switched at (from its history file). */
export function parseHistorySwitch(text: string, timeline: number): { parent: number; switchLsn: bigint } | undefined {
  // Each line: "<parent timeline>\t<switch LSN>\t<reason>"; the last names the newest parent.
  const lines = text.split('\n').filter((l) => /^\s*\d+\s/.test(l));
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  const [parentText, lsnText] = last.trim().split(/\s+/);
  const parent = Number(parentText);
  const switchLsn = tryParseLsn(lsnText);
  if (!Number.isInteger(parent) || parent <= 0 || parent >= timeline || switchLsn === undefined) return undefined;
  return { parent, switchLsn };
}

/**
 * Of the files in pg_wal, the complete segments of `parent` before the segment it switched in:
 * those were received whole. The segment holding the switch PostgreSQL archives itself (as
 * .partial), and later ones named for `parent` are recycled files, not WAL.
 */
export function segmentsBeforeSwitch(names: readonly string[], parent: number, switchLsn: bigint, segmentBytes: bigint): string[] {
  const prefix = timelineHex(parent);
  const switchSegment = switchLsn / segmentBytes;
  return names.filter((n) => isSegmentName(n) && n.startsWith(prefix) && segmentNumber(n, segmentBytes) < switchSegment).sort();
}

/**
 * Marks the old timeline's received segments in `dataDir` for archiving (their `.done` becomes
 * `.ready`) on a server just promoted to `timeline`; returns the segments marked. A segment with
 * no status file is left alone: PostgreSQL marks one itself at its next checkpoint.
 */
export function markReceivedWalForArchive(dataDir: string, timeline: number): string[] {
  const wal = path.join(dataDir, 'pg_wal');
  let history: string;
  try {
    history = fs.readFileSync(path.join(wal, `${timelineHex(timeline)}.history`), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const from = parseHistorySwitch(history, timeline);
  if (!from) return [];
  const names = fs.readdirSync(wal);
  const first = names.find(isSegmentName);
  if (first === undefined) return [];
  const segmentBytes = BigInt(fs.statSync(path.join(wal, first)).size);
  const marked: string[] = [];
  for (const name of segmentsBeforeSwitch(names, from.parent, from.switchLsn, segmentBytes)) {
    const done = path.join(wal, 'archive_status', `${name}.done`);
    try {
      fs.renameSync(done, path.join(wal, 'archive_status', `${name}.ready`));
      marked.push(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return marked;
}
