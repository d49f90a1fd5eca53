/**
 * What PostgreSQL's server log says about how a point-in-time recovery ended. Pure. At the end of
 * archive recovery PostgreSQL logs "recovery stopping before commit of transaction N, time T" (a
 * time target), "redo done at X/Y", "last completed transaction was at log time T" (the last
 * replayed commit), and, when the archive ended before the target, those lines followed by FATAL
 * "recovery ended before configured recovery target was reached" (xlogrecovery.c logs how far
 * recovery went first, on purpose).
 * Docs: https://www.postgresql.org/docs/current/runtime-config-wal.html#RUNTIME-CONFIG-WAL-RECOVERY-TARGET
 */

/** What the log told. Times are epoch ms (0 = not logged). */
export interface RecoveryLog {
  /** The last replayed commit's time ("last completed transaction was at log time"). */
  lastCommitMs: number;
  /** The first commit not replayed because of the target ("recovery stopping before commit ... time"). */
  stoppedBeforeCommitMs: number;
  /** "redo done at" position ('' when not logged). */
  redoDoneLsn: string;
  /** The archive ended before the target. */
  targetNotReached: boolean;
  /** The first FATAL or PANIC line's message ('' when none). */
  fatal: string;
}

/**
 * A PostgreSQL log timestamp ("2026-12-06 09:28:09.696121+00", zone "+05:30" or "-08" style) as
 * epoch ms; 0 when it does not parse.
 */
export function parseLogTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?([+-]\d{2})(?::?(\d{2}))?$/.exec(text.trim());
  if (!m) return 0;
  const fraction = (m[3] ?? '.0').slice(1, 4).padEnd(3, '0');
  const ms = Date.parse(`${m[1]}T${m[2]}.${fraction}${m[4]}:${m[5] ?? '00'}`);
  return Number.isNaN(ms) ? 0 : ms;
}

/** Reads the recovery lines of a server log (the part written since the restored server started). */
export function parseRecoveryLog(log: string): RecoveryLog {
  const out: RecoveryLog = { lastCommitMs: 0, stoppedBeforeCommitMs: 0, redoDoneLsn: '', targetNotReached: false, fatal: '' };
  for (const line of log.split('\n')) {
    let m = /last completed transaction was at log time (.+)$/.exec(line);
    if (m?.[1] !== undefined) out.lastCommitMs = parseLogTime(m[1]);
    m = /recovery stopping before (?:commit|abort) of transaction \d+, time (.+)$/.exec(line);
    if (m?.[1] !== undefined) out.stoppedBeforeCommitMs = parseLogTime(m[1]);
    m = /redo done at ([0-9A-F]+\/[0-9A-F]+)/i.exec(line);
    if (m?.[1] !== undefined) out.redoDoneLsn = m[1];
    if (line.includes('recovery ended before configured recovery target was reached')) out.targetNotReached = true;
    m = /\b(?:FATAL|PANIC):\s+(.*)$/.exec(line);
    if (m?.[1] !== undefined && out.fatal === '') out.fatal = m[1].trim();
  }
  return out;
}
