import { describe, expect, it } from 'vitest';
import type { Commit } from '../store/contract.js';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import type { InstanceHealthView } from '../live/health-cache.js';
import { aHealthView } from '../testing/records.js';
import { UnchangedReports } from './unchanged-reports.js';

const health = (over: Partial<InstanceHealthView> = {}): InstanceHealthView => aHealthView({ connections: 3, databaseSizeBytes: 1000, ...over });

const report = (over: Partial<InstanceReportView> = {}): InstanceReportView => ({
  tenantId: 't1',
  realization: 'REALIZED',
  state: 'RUNNING',
  reason: '',
  address: '127.0.0.1',
  port: 20000,
  specRevision: 3,
  health: health(),
  recovery: undefined,
  ...over,
});

const commit = (over: Partial<Commit>): Commit =>
  ({ routeChanges: [], events: [], desired: [], placementHosts: [], roomFreed: false, toPlace: [], ...over }) as Commit;

describe('UnchangedReports', () => {
  it('answers a repeat of the last applied report from memory, whatever its moment-to-moment health', () => {
    const u = new UnchangedReports();
    expect(u.unchanged('h1', report(), 0)).toBe(false);
    u.noteApplied('h1', report(), 0);
    expect(u.unchanged('h1', report({ health: health({ connections: 9, lsn: '0/2000', checkedAt: 5 }) }), 5000)).toBe(true);
    // The same instance on another host was never applied.
    expect(u.unchanged('h2', report(), 5000)).toBe(false);
  });

  it('applies a report whose stored facts differ', () => {
    const u = new UnchangedReports();
    u.noteApplied('h1', report(), 0);
    for (const changed of [
      report({ port: 20001 }),
      report({ specRevision: 4 }),
      report({ state: 'STOPPED' }),
      report({ reason: 'restarted' }),
      report({ address: '127.0.0.2' }),
      report({ health: health({ acceptingConnections: false }) }),
      report({ health: health({ role: 'REPLICA' }) }),
      report({ health: undefined }),
    ])
      expect(u.unchanged('h1', changed, 1000)).toBe(false);
  });

  it('never skips failures, deletions and recovery results', () => {
    const u = new UnchangedReports();
    for (const r of [
      report({ realization: 'FAILED', reason: 'disk full' }),
      report({ state: 'DELETED' }),
      report({ recovery: { restoreId: 'r1', ok: true, errorCode: '', message: '', lsn: '0/1', commitTime: 0, timeline: 2 } }),
    ]) {
      u.noteApplied('h1', r, 0);
      expect(u.unchanged('h1', r, 1)).toBe(false);
    }
  });

  it('applies an archiving primary again after the archive age, and counts new archive failures', () => {
    const u = new UnchangedReports(30_000);
    const archive = {
      enabled: true,
      archivedCount: 10,
      lastArchivedWal: 'w10',
      lastArchivedAt: 1,
      archivedThrough: 1,
      failedCount: 0,
      lastFailedWal: '',
      lastFailedAt: 0,
      pendingSegments: 0,
      pendingBytes: 0,
      lagSeconds: 0,
    };
    u.noteApplied('h1', report({ health: health({ archive }) }), 0);
    expect(u.unchanged('h1', report({ health: health({ archive: { ...archive, archivedCount: 11, lastArchivedAt: 2, archivedThrough: 2 } }) }), 29_999)).toBe(
      true,
    );
    expect(u.unchanged('h1', report({ health: health({ archive: { ...archive, failedCount: 1 } }) }), 1000)).toBe(false);
    expect(u.unchanged('h1', report({ health: health({ archive }) }), 30_000)).toBe(false);
    // Without archiving, age alone never forces a report through.
    u.noteApplied('h1', report(), 0);
    expect(u.unchanged('h1', report(), 3_600_000)).toBe(true);
  });

  it('forgets a tenant whose desired set changed and a host whose placements changed', () => {
    const u = new UnchangedReports();
    u.noteApplied('h1', report(), 0);
    u.noteApplied('h2', report(), 0);
    u.noteApplied('h1', report({ tenantId: 't2' }), 0);
    expect(u.size).toBe(3);
    u.onCommit(commit({ desired: [{ tenantId: 't1', hostId: 'h2' }] }));
    expect(u.unchanged('h1', report(), 1)).toBe(false);
    expect(u.unchanged('h2', report(), 1)).toBe(false);
    expect(u.unchanged('h1', report({ tenantId: 't2' }), 1)).toBe(true);
    u.onCommit(commit({ placementHosts: ['h1'] }));
    expect(u.unchanged('h1', report({ tenantId: 't2' }), 1)).toBe(false);
    expect(u.size).toBe(0);
  });

  it('forgets a host at once (a reconnect, a failed transaction)', () => {
    const u = new UnchangedReports();
    u.noteApplied('h1', report(), 0);
    u.noteApplied('h1', report({ tenantId: 't2' }), 0);
    u.noteApplied('h2', report(), 0);
    u.forgetHost('h1');
    expect(u.size).toBe(1);
    expect(u.unchanged('h2', report(), 1)).toBe(true);
    // Applying a report that must always be applied drops what was remembered for it.
    u.noteApplied('h2', report({ realization: 'PENDING' }), 2);
    expect(u.size).toBe(0);
  });

  it('keeps each host of a tenant on three hosts apart, as they come and go', () => {
    const u = new UnchangedReports();
    for (const h of ['h1', 'h2', 'h3']) u.noteApplied(h, report({ port: Number(h.slice(1)) }), 0);
    u.noteApplied('h2', report({ port: 22 }), 1);
    expect(['h1', 'h2', 'h3'].map((h) => u.unchanged(h, report({ port: Number(h.slice(1)) }), 1))).toEqual([true, false, true]);
    expect(u.unchanged('h2', report({ port: 22 }), 1)).toBe(true);
    u.forget('t1', 'h1');
    u.forgetHost('h3');
    expect([u.size, u.unchanged('h1', report({ port: 1 }), 1), u.unchanged('h2', report({ port: 22 }), 1)]).toEqual([1, false, true]);
    u.noteApplied('h1', report({ port: 1 }), 2);
    expect([u.size, u.unchanged('h1', report({ port: 1 }), 2)]).toEqual([2, true]);
    u.forgetTenant('t1');
    expect(u.size).toBe(0);
  });
});
