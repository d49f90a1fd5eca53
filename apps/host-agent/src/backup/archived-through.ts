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

/** What one look at a primary read, and when. */
export interface PrimaryLook {
  /** The agent's clock before the query. */
  atMs: number;
  /** pg_current_wal_insert_lsn(). */
  insertLsn: bigint;
  /** pg_stat_archiver's last_archived_wal ('' when nothing was archived since the stats began). */
  lastArchivedWal: string;
  segmentBytes: bigint;
  /** Backends and prepared transactions holding a transaction id: 0 means none could commit. */
  xidHolders: number;
  /** The snapshot's xmax (the latest finished transaction id + 1): it moves with every commit and abort. */
  nextXid: string;
}

/** A look as kept: its time and the WAL position every commit before it lies below. */
interface Kept {
  atMs: number;
  commitBound: bigint;
}

/** Looks kept while the archive is behind: at one a second, a quarter of an hour of backlog. */
const MAX_LOOKS = 900;

/** A segment's first record follows its long page header: an insert position there has written nothing into it. */
const LONG_PAGE_HEADER_BYTES = 40n;

/** One primary's archive progress, fed a look at a time. */
export class ArchivedThrough {
  private readonly looks: Kept[] = [];
  private archivedEnd = 0n;
  private throughMs = 0;
  private previous: { quiet: boolean; nextXid: string; commitBound: bigint } | undefined;

  /** Records a look and returns the time through which every commit is archived, 0 while no look is known to be covered. */
  observe(look: PrimaryLook): number {
    const end = segmentEndLsn(look.lastArchivedWal, look.segmentBytes);
    // Only the newest archived file is shown; a history file after a segment leaves the end as it was.
    if (end !== undefined && end > this.archivedEnd) this.archivedEnd = end;
    const commitBound = this.commitBound(look);
    this.looks.push({ atMs: look.atMs, commitBound });
    let covered = -1;
    for (let i = 0; i < this.looks.length && this.looks[i]!.commitBound <= this.archivedEnd; i++) covered = i;
    if (covered >= 0) {
      this.throughMs = Math.max(this.throughMs, this.looks[covered]!.atMs);
      this.looks.splice(0, covered + 1);
    }
    // A backlog longer than the looks kept drops the oldest: the end then waits for a newer look to be
    // covered, later than it could have moved but never past what is archived.
    if (this.looks.length > MAX_LOOKS) this.looks.splice(0, this.looks.length - MAX_LOOKS);
    return this.throughMs;
  }

  /**
   * The position every commit before the look lies below. Its insert position, except on a quiet
   * server: an idle one still writes records that are no commit (a standby snapshot every 15 s, a
   * checkpoint), into a segment archive_timeout does not switch for them, so the insert position
   * alone would hold the window back until the next write. When neither this look nor the one
   * before saw a transaction holding an id, and no transaction finished between them (the same
   * xmax), nothing committed between them: this look keeps the one before's bound.
   */
  private commitBound(look: PrimaryLook): bigint {
    const offset = look.insertLsn % look.segmentBytes;
    const own = offset <= LONG_PAGE_HEADER_BYTES ? look.insertLsn - offset : look.insertLsn;
    const quiet = look.xidHolders === 0;
    const p = this.previous;
    const bound = quiet && p !== undefined && p.quiet && p.nextXid === look.nextXid ? p.commitBound : own;
    this.previous = { quiet, nextXid: look.nextXid, commitBound: bound };
    return bound;
  }
}
