/**
 * Whether a former primary must be rewound before it can follow the new primary, decided the way
 * pg_rewind decides it (postgres-docs app-pgrewind.html, "How It Works"): the new primary's
 * timeline history names the position where its timeline forked off the old one; a former primary
 * that was shut down cleanly and whose last checkpoint (a clean shutdown's last record) lies before
 * that position wrote nothing the new primary lacks, so it starts as a standby as it is. That is the
 * planned switch's case, and it needs neither pg_rewind (which refuses an instance run without
 * wal_log_hints or data checksums even when there is nothing to rewind) nor a fresh copy.
 */
import { tryParseLsn } from './failover-lsn.js';

/** One line of a timeline history file: timeline `parent` ended at `switchpoint`. */
export interface TimelineSwitch {
  parent: number;
  switchpoint: bigint;
}

/** Parses a timeline history file (`<parent tli>\t<switchpoint>\t<reason>` lines); unreadable lines are skipped. */
export function parseTimelineHistory(text: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of text.split('\n')) {
    const [tli, lsn] = line.trim().split(/\s+/);
    const parent = Number(tli);
    const switchpoint = tryParseLsn(lsn);
    if (Number.isInteger(parent) && parent > 0 && switchpoint !== undefined) out.push({ parent, switchpoint });
  }
  return out;
}

/** The stopped former primary as pg_controldata shows it. */
export interface FormerPrimaryControl {
  /** "Database cluster state" ("shut down" after a clean stop). */
  clusterState: string;
  /** "Latest checkpoint location". */
  checkpointLsn: string;
  /** "Latest checkpoint's TimeLineID". */
  checkpointTimeline: number;
}

/** The verdict with its reason (for the log). */
export type RewindNeed = { needed: false; reason: string } | { needed: true; reason: string };

/** Decides from the former primary's control data and the new primary's newest timeline history. */
export function formerPrimaryNeedsRewind(control: FormerPrimaryControl, history: readonly TimelineSwitch[]): RewindNeed {
  if (control.clusterState !== 'shut down')
    return { needed: true, reason: `the former primary was not shut down cleanly (${control.clusterState || 'state unknown'})` };
  const checkpoint = tryParseLsn(control.checkpointLsn);
  if (checkpoint === undefined) return { needed: true, reason: 'the former primary has no readable last checkpoint' };
  const fork = history.find((h) => h.parent === control.checkpointTimeline);
  if (!fork) return { needed: true, reason: `the new primary's history does not fork off timeline ${control.checkpointTimeline}` };
  // The fork is at a record boundary: past the checkpoint record's start means past its end.
  if (checkpoint < fork.switchpoint)
    return { needed: false, reason: `shut down cleanly at ${control.checkpointLsn}, before the new timeline forked off at its end` };
  return { needed: true, reason: `the former primary's last checkpoint ${control.checkpointLsn} is at or past the fork` };
}
