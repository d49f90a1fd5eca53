import { describe, expect, it } from 'vitest';
import { parseLogTime, parseRecoveryLog } from './recovery-log.js';

// PostgreSQL 15's log of a point-in-time recovery that reached its target (as measured here).
const REACHED = `2026-12-06 09:28:23.218 UTC [9301] LOG:  starting point-in-time recovery to 2026-12-06 09:28:10.194+00
2026-12-06 09:28:23.459 UTC [9301] LOG:  consistent recovery state reached at 0/2000100
2026-12-06 09:28:23.571 UTC [9301] LOG:  recovery stopping before commit of transaction 725, time 2026-12-06 09:28:11.748675+00
2026-12-06 09:28:23.571 UTC [9301] LOG:  redo done at 0/3016560 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.23 s
2026-12-06 09:28:23.571 UTC [9301] LOG:  last completed transaction was at log time 2026-12-06 09:28:09.696121+00
2026-12-06 09:28:23.802 UTC [9301] LOG:  selected new timeline ID: 2
`;

// And one whose target was after the end of the archive.
const NOT_REACHED = `2026-12-06 10:00:01.000 UTC [1] LOG:  redo done at 0/5000060 system usage: CPU: user: 0.00 s
2026-12-06 10:00:01.000 UTC [1] LOG:  last completed transaction was at log time 2026-12-06 09:59:58.5-08
2026-12-06 10:00:01.001 UTC [1] FATAL:  recovery ended before configured recovery target was reached
2026-12-06 10:00:01.010 UTC [2] LOG:  startup process (PID 1) exited with exit code 1
`;

describe('parseRecoveryLog', () => {
  it('reads where a recovery that reached its target stopped', () => {
    expect(parseRecoveryLog(REACHED)).toEqual({
      lastCommitMs: Date.parse('2026-12-06T09:28:09.696Z'),
      stoppedBeforeCommitMs: Date.parse('2026-12-06T09:28:11.748Z'),
      redoDoneLsn: '0/3016560',
      targetNotReached: false,
      fatal: '',
    });
  });

  it('sees a target after the end of the archive and how far the archive went', () => {
    const r = parseRecoveryLog(NOT_REACHED);
    expect(r.targetNotReached).toBe(true);
    expect(r.fatal).toBe('recovery ended before configured recovery target was reached');
    expect(r.lastCommitMs).toBe(Date.parse('2026-12-06T17:59:58.500Z'));
  });

  it('parses PostgreSQL log times in any zone, and nothing else', () => {
    expect(parseLogTime('2026-12-06 09:28:09+05:30')).toBe(Date.parse('2026-12-06T03:58:09Z'));
    expect(parseLogTime('2026-12-06 09:28:09.1+00')).toBe(Date.parse('2026-12-06T09:28:09.100Z'));
    expect(parseLogTime('2026-12-06 09:28:09 UTC')).toBe(0);
    expect(parseLogTime('yesterday')).toBe(0);
  });
});
