import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKUP_POLICY } from './backup-policy.js';
import { backupProblems, type ProblemInput } from './backup-problems.js';
import type { BackupView } from './backup-types.js';

const H = 3_600_000;
const D = 24 * H;
const NOW = Date.UTC(2026, 11, 6, 10, 0, 0);

const good = (finishedAt: number): BackupView => ({
  id: 'b',
  type: 'FULL',
  status: 'SUCCEEDED',
  hostId: 'h1',
  label: 'L',
  priorLabel: '',
  startedAt: finishedAt - 1000,
  finishedAt,
  timeline: 1,
});
const input = (over: Partial<ProblemInput>): ProblemInput => ({
  policy: DEFAULT_BACKUP_POLICY,
  backups: [],
  archive: undefined,
  since: NOW - 30 * D,
  now: NOW,
  ...over,
});

describe('backupProblems', () => {
  it('is quiet when the last backup is recent and archiving keeps up', () => {
    expect(
      backupProblems(
        input({ backups: [good(NOW - H)], archive: { failedCount: 0, lastArchivedAt: NOW - 1000, lastFailedAt: 0, lagSeconds: 0, pendingSegments: 0 } }),
      ),
    ).toEqual([]);
  });

  it('says how old the last good backup is against the policy', () => {
    expect(backupProblems(input({ backups: [good(NOW - 9 * D)] }))).toEqual(['last good backup is 9 days old; the policy wants one every 24 hours']);
  });

  it('gives a new tenant an hour before "no good backup yet"', () => {
    expect(backupProblems(input({ since: NOW - 10 * 60_000 }))).toEqual([]);
    expect(backupProblems(input({ since: NOW - 3 * H }))).toEqual(['no good backup yet (the tenant is 3 hours old)']);
  });

  it('reports archiving that fails or falls behind', () => {
    const problems = backupProblems(
      input({
        backups: [good(NOW - H)],
        archive: { failedCount: 4, lastArchivedAt: NOW - 10 * 60_000, lastFailedAt: NOW - 5000, lagSeconds: 600, pendingSegments: 3 },
      }),
    );
    expect(problems).toEqual(['WAL archiving is failing (4 failures, the last 5 s ago)', 'WAL archiving is 10 minutes behind; archive_timeout is 60 s']);
  });

  it('says nothing when backups are disabled', () => {
    expect(backupProblems(input({ policy: { ...DEFAULT_BACKUP_POLICY, disabled: true } }))).toEqual([]);
  });
});
