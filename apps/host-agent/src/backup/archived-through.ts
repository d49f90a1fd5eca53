/**
 * The time through which a primary's archive holds every commit: the end of the recovery window.
 *
 * pg_stat_archiver's last_archived_time is when the archiver finished a segment, not how far the
 * segment's WAL reaches. The archiver works behind the writer (a segment is closed, then pushed,
 * and under load one waits behind another), so a commit made a second before last_archived_time
 * may still sit in the open segment or in one queued: a restore to that second would run out of
 * WAL. This pairs each look at the primary (its clock time and WAL insert position then) with
 * the end of the newest archived segment: a look whose position that end reaches had every
 * commit before it archived. Pure: the caller reads PostgreSQL and passes what it read.
 */
import { segmentEndLsn } from './wal-names.js';

/** One look at the primary: the agent's clock before the query, and the WAL insert position it read. */
interface Look {
  atMs: number;
  lsn: bigint;
}

/** Looks kept while the archive is behind: at one a second, a quarter of an hour of backlog. */
const MAX_LOOKS = 900;

/** One primary's archive progress, fed a look at a time. */
export class ArchivedThrough {
  private readonly looks: Look[] = [];
  private archivedEnd = 0n;
  private throughMs = 0;

  /**
   * Records a look (the clock at `atMs` before the query; the insert position and the last
   * archived file the query read) and returns the time through which every commit is archived,
   * 0 while no look is known to be covered.
   */
  observe(atMs: number, insertLsn: bigint, lastArchivedWal: string, segmentBytes: bigint): number {
    const end = segmentEndLsn(lastArchivedWal, segmentBytes);
    // Only the newest archived file is shown; a history file after a segment leaves the end as it was.
    if (end !== undefined && end > this.archivedEnd) this.archivedEnd = end;
    this.looks.push({ atMs, lsn: insertLsn });
    let covered = -1;
    for (let i = 0; i < this.looks.length && this.looks[i]!.lsn <= this.archivedEnd; i++) covered = i;
    if (covered >= 0) {
      this.throughMs = Math.max(this.throughMs, this.looks[covered]!.atMs);
      this.looks.splice(0, covered + 1);
    }
    // A backlog longer than the looks kept drops the oldest: the end then waits for a newer look to be
    // covered, later than it could have moved but never past what is archived.
    if (this.looks.length > MAX_LOOKS) this.looks.splice(0, this.looks.length - MAX_LOOKS);
    return this.throughMs;
  }
}
