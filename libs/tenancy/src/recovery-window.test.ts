import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BackupView } from './backup-types.js';
import { PgsError } from './errors.js';
import { deleteImpact, dependentsOf, expiredByRetention, recoveryWindow, rfc3339, validateRestoreTarget } from './recovery-window.js';

const H = 3_600_000;
const D = 24 * H;
const NOW = Date.UTC(2026, 11, 6, 10, 0, 0);

function b(id: string, over: Partial<BackupView> = {}): BackupView {
  return {
    id,
    type: 'FULL',
    status: 'SUCCEEDED',
    hostId: 'h1',
    label: `L-${id}`,
    priorLabel: '',
    startedAt: NOW - D,
    finishedAt: NOW - D + 60_000,
    timeline: 1,
    ...over,
  };
}

function thrown(fn: () => unknown): PgsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PgsError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('recoveryWindow', () => {
  it('runs from the second after the end of the oldest restorable backup to the last archived WAL', () => {
    const list = [b('old', { finishedAt: NOW - 8 * D }), b('new', { finishedAt: NOW - D }), b('bad', { status: 'FAILED', finishedAt: NOW - 9 * D })];
    // pgBackRest's stop times are whole seconds: a backup that "stopped at :00" may have stopped at :00.9.
    expect(recoveryWindow(list, NOW - 60_000)).toEqual({ earliest: NOW - 8 * D + 1000, latest: NOW - 60_000 });
    expect(recoveryWindow(list, 0)).toEqual({ earliest: NOW - 8 * D + 1000, latest: NOW - D });
    expect(recoveryWindow([b('x', { status: 'EXPIRED' })], NOW)).toBeUndefined();
  });
});

describe('dependentsOf and deleteImpact', () => {
  const full = b('f', { finishedAt: NOW - 9 * D });
  const diff = b('d', { type: 'DIFF', priorLabel: 'L-f', finishedAt: NOW - 8 * D });
  const incr = b('i', { type: 'INCR', priorLabel: 'L-d', finishedAt: NOW - 7.5 * D });
  const full2 = b('f2', { finishedAt: NOW - 2 * D });

  it('a full takes its differentials and their incrementals with it', () => {
    expect(dependentsOf([full, diff, incr, full2], 'f').map((x) => x.id)).toEqual(['f', 'd', 'i']);
    expect(dependentsOf([full, diff, incr, full2], 'i').map((x) => x.id)).toEqual(['i']);
    expect(dependentsOf([full], 'nope')).toEqual([]);
  });

  it('refuses to shrink the window below the retention, allows what keeps it', () => {
    const week = 7 * D;
    expect(deleteImpact([full, diff, incr, full2], 'f', NOW, week, NOW).shrinksBelowRetention).toBe(true);
    // The newest full: the window still starts 9 days back.
    expect(deleteImpact([full, diff, incr, full2], 'f2', NOW, week, NOW).shrinksBelowRetention).toBe(false);
    // Deleting the oldest when the next one is still older than the retention is fine.
    const older = b('o', { finishedAt: NOW - 12 * D });
    expect(deleteImpact([older, full, full2], 'o', NOW, week, NOW).shrinksBelowRetention).toBe(false);
    // The only backup of a young tenant: the window would vanish.
    const only = b('only', { finishedAt: NOW - H });
    expect(deleteImpact([only], 'only', NOW, week, NOW)).toMatchObject({ removed: ['only'], after: undefined, shrinksBelowRetention: true });
  });

  it('never lets a refused deletion through: what remains after an allowed one covers the retention or the window did not move', () => {
    const arb = fc.array(fc.integer({ min: 0, max: 20 * D }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(arb, fc.nat(), (ages, pick) => {
        const list = ages.map((age, i) => b(`b${i}`, { finishedAt: NOW - age }));
        const id = `b${pick % list.length}`;
        const impact = deleteImpact(list, id, NOW, 7 * D, NOW);
        if (!impact.shrinksBelowRetention && impact.before) {
          expect(impact.after !== undefined && (impact.after.earliest <= NOW - 7 * D || impact.after.earliest === impact.before.earliest)).toBe(true);
        }
      }),
    );
  });
});

describe('validateRestoreTarget', () => {
  const list = [b('f', { finishedAt: NOW - 2 * D }), b('x', { status: 'FAILED', label: '' })];

  it('accepts a time inside the window, a restorable backup and latest', () => {
    expect(validateRestoreTarget({ kind: 'time', time: NOW - D }, list, NOW)).toEqual({ kind: 'time', time: NOW - D });
    expect(validateRestoreTarget({ kind: 'backup', backupId: 'f' }, list, NOW)).toEqual({ kind: 'backup', backupId: 'f', label: 'L-f' });
    expect(validateRestoreTarget({ kind: 'latest' }, list, NOW)).toEqual({ kind: 'latest' });
  });

  it('names the window in RFC 3339 when the time is outside it', () => {
    const err = thrown(() => validateRestoreTarget({ kind: 'time', time: NOW - 3 * D }, list, NOW));
    expect(err.code).toBe('RESTORE_TARGET_OUTSIDE_WINDOW');
    expect(err.message).toBe(`cannot restore to ${rfc3339(NOW - 3 * D)}: the recovery window is 2026-12-04T10:00:01Z to 2026-12-06T10:00:00Z`);
    expect(thrown(() => validateRestoreTarget({ kind: 'time', time: NOW + 1000 }, list, NOW)).code).toBe('RESTORE_TARGET_OUTSIDE_WINDOW');
  });

  it('refuses a backup that is not restorable, an unknown one, and any target without a backup', () => {
    expect(thrown(() => validateRestoreTarget({ kind: 'backup', backupId: 'x' }, list, NOW)).code).toBe('BACKUP_NOT_RESTORABLE');
    expect(thrown(() => validateRestoreTarget({ kind: 'backup', backupId: 'nope' }, list, NOW)).code).toBe('BACKUP_NOT_FOUND');
    expect(thrown(() => validateRestoreTarget({ kind: 'latest' }, [], NOW)).code).toBe('NO_RESTORABLE_BACKUP');
    expect(thrown(() => validateRestoreTarget({ kind: 'time', time: NOW }, [], NOW)).kind).toBe('user');
  });
});

describe('expiredByRetention', () => {
  it('removes fulls older than the retention except the newest of them, with their dependents', () => {
    const f1 = b('f1', { finishedAt: NOW - 20 * D });
    const d1 = b('d1', { type: 'DIFF', priorLabel: 'L-f1', finishedAt: NOW - 19 * D });
    const f2 = b('f2', { finishedAt: NOW - 10 * D });
    const f3 = b('f3', { finishedAt: NOW - 3 * D });
    expect(expiredByRetention([f1, d1, f2, f3], 7, NOW).sort()).toEqual(['d1', 'f1']);
    expect(expiredByRetention([f2, f3], 7, NOW)).toEqual([]);
    expect(expiredByRetention([f3], 1, NOW)).toEqual([]);
  });
});
