import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKUP_POLICY } from './backup-policy.js';
import { backupRunning, defaultBackupType, dueBackup, type DueInput } from './backup-schedule.js';
import type { BackupView } from './backup-types.js';

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
    startedAt: NOW - H,
    finishedAt: NOW - H + 60_000,
    timeline: 1,
    ...over,
  };
}

function input(backups: BackupView[], over: Partial<DueInput> = {}): DueInput {
  return { policy: DEFAULT_BACKUP_POLICY, backups, now: NOW, primary: { hostId: 'h1', timeline: 1 }, failureBackoffMs: 10 * 60_000, ...over };
}

describe('dueBackup', () => {
  it('asks for a full backup when none is restorable', () => {
    expect(dueBackup(input([]))).toEqual({ type: 'FULL', trigger: 'schedule' });
    expect(dueBackup(input([b('f', { status: 'EXPIRED' }), b('d', { type: 'DIFF' })]))).toEqual({ type: 'FULL', trigger: 'schedule' });
  });

  it('never starts a second one while one runs, nor without a running primary, nor when disabled', () => {
    expect(dueBackup(input([b('r', { status: 'RUNNING', finishedAt: 0 })]))).toBeUndefined();
    expect(dueBackup(input([], { primary: undefined }))).toBeUndefined();
    expect(dueBackup(input([], { policy: { ...DEFAULT_BACKUP_POLICY, disabled: true } }))).toBeUndefined();
  });

  it('takes each kind when its interval has passed since the last of its kind began', () => {
    expect(dueBackup(input([b('f', { startedAt: NOW - 2 * H })]))).toBeUndefined();
    expect(dueBackup(input([b('f', { startedAt: NOW - D })]))).toEqual({ type: 'DIFF', trigger: 'schedule' });
    expect(dueBackup(input([b('f', { startedAt: NOW - 7 * D }), b('d', { type: 'DIFF', startedAt: NOW - H })]))).toEqual({ type: 'FULL', trigger: 'schedule' });
    const incr = { ...DEFAULT_BACKUP_POLICY, incrIntervalSeconds: 900 };
    expect(dueBackup(input([b('f', { startedAt: NOW - 16 * 60_000 })], { policy: incr }))).toEqual({ type: 'INCR', trigger: 'schedule' });
  });

  it('takes one at once after the primary moved to another host or timeline', () => {
    expect(dueBackup(input([b('f')], { primary: { hostId: 'h2', timeline: 2 } }))).toEqual({ type: 'DIFF', trigger: 'after-failover' });
    expect(dueBackup(input([b('f')], { primary: { hostId: 'h1', timeline: 3 } }))).toEqual({ type: 'DIFF', trigger: 'after-failover' });
  });

  it('waits out the backoff after a failed attempt', () => {
    const failed = b('x', { status: 'FAILED', startedAt: NOW - 2 * 60_000, finishedAt: NOW - 60_000 });
    expect(dueBackup(input([failed]))).toBeUndefined();
    expect(dueBackup(input([failed], { now: NOW + 10 * 60_000 }))).toEqual({ type: 'FULL', trigger: 'schedule' });
  });

  it('does not wait after a failure on another host: the primary moved during that backup', () => {
    const cut = b('x', { status: 'FAILED', hostId: 'h1', startedAt: NOW - 2 * 60_000, finishedAt: NOW - 60_000 });
    expect(dueBackup(input([b('f', { startedAt: NOW - 2 * H }), cut], { primary: { hostId: 'h2', timeline: 2 } }))).toEqual({
      type: 'DIFF',
      trigger: 'after-failover',
    });
  });

  it('is never due while one runs, whatever else the history holds', () => {
    const arb = fc.array(
      fc.record({
        type: fc.constantFrom('FULL' as const, 'DIFF' as const, 'INCR' as const),
        status: fc.constantFrom('SUCCEEDED' as const, 'FAILED' as const, 'EXPIRED' as const),
        age: fc.integer({ min: 0, max: 30 * D }),
      }),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(arb, (list) => {
        const backups = list.map((x, i) => b(`b${i}`, { type: x.type, status: x.status, startedAt: NOW - x.age, finishedAt: NOW - x.age + 1000 }));
        expect(dueBackup(input([...backups, b('run', { status: 'RUNNING', finishedAt: 0 })]))).toBeUndefined();
        const due = dueBackup(input(backups));
        if (!backups.some((x) => x.status === 'SUCCEEDED' && x.type === 'FULL') && !backups.some((x) => x.status === 'FAILED')) expect(due?.type).toBe('FULL');
      }),
    );
  });
});

describe('defaultBackupType and backupRunning', () => {
  it('full without a restorable full, else diff', () => {
    expect(defaultBackupType([])).toBe('FULL');
    expect(defaultBackupType([b('f', { status: 'FAILED' })])).toBe('FULL');
    expect(defaultBackupType([b('f')])).toBe('DIFF');
    expect(backupRunning([b('f'), b('r', { status: 'RUNNING' })])).toBe(true);
    expect(backupRunning([b('f')])).toBe(false);
  });
});
