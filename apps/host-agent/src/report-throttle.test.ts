import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from './model.js';
import { ReportThrottle, reportFacts } from './report-throttle.js';

function status(tenantId: string, health: Partial<NonNullable<InstanceStatus['health']>> = {}): InstanceStatus {
  return {
    tenantId,
    realization: 'REALIZED',
    state: 'RUNNING',
    reason: '',
    address: '127.0.0.11',
    port: 20000,
    runtimeId: '42',
    pid: 42,
    specRevision: 3,
    health: {
      up: true,
      acceptingConnections: true,
      connections: 0,
      busyBackends: 0,
      databaseSizeBytes: 8_000_000,
      role: 'PRIMARY',
      lsn: '0/3000060',
      lagBytes: 0,
      timeline: 1,
      checkedAt: 1000,
      ...health,
    },
  };
}

const ids = (list: InstanceStatus[]): string[] => list.map((s) => s.tenantId);
const single = (): boolean => false;

describe('which instances a periodic report carries', () => {
  it('sends everything first, then only what changed, and an unchanged instance again after the full interval', () => {
    const t = new ReportThrottle(15_000);
    expect(ids(t.due([status('a'), status('b')], 0, single))).toEqual(['a', 'b']);
    // A new look (its own clock moved), nothing else: not sent.
    expect(ids(t.due([status('a', { checkedAt: 6000 }), status('b', { checkedAt: 6000 })], 5000, single))).toEqual([]);
    // b gained a client: sent; a still quiet.
    expect(ids(t.due([status('a', { checkedAt: 11_000 }), status('b', { checkedAt: 11_000, connections: 1 })], 10_000, single))).toEqual(['b']);
    // 15 s after a was last sent: sent again though unchanged, so its health stays fresh.
    expect(ids(t.due([status('a', { checkedAt: 16_000 }), status('b', { checkedAt: 16_000, connections: 1 })], 15_000, single))).toEqual(['a']);
  });

  it('always sends a replicated instance: a failover waits for positions reported after the fence', () => {
    const t = new ReportThrottle(15_000);
    const replicated = (id: string): boolean => id === 'r';
    expect(ids(t.due([status('r'), status('s')], 0, replicated))).toEqual(['r', 's']);
    expect(ids(t.due([status('r'), status('s')], 5000, replicated))).toEqual(['r']);
  });

  it('sends everything again on a new stream, and forgets instances that are gone', () => {
    const t = new ReportThrottle(15_000);
    t.due([status('a'), status('b')], 0, single);
    t.reset();
    expect(ids(t.due([status('a')], 5000, single))).toEqual(['a']);
    // b came back (deleted and made again): it is new to the throttle.
    expect(ids(t.due([status('a'), status('b')], 10_000, single))).toEqual(['b']);
  });

  it("compares everything but the look's clock and a quiet primary's moving archived-through", () => {
    const archive = {
      enabled: true,
      archivedCount: 3,
      lastArchivedWal: '000000010000000000000002',
      lastArchivedAtMs: 900,
      archivedThroughMs: 950,
      failedCount: 0,
      lastFailedWal: '',
      lastFailedAtMs: 0,
      pendingSegments: 0,
      pendingBytes: 0,
      lagSeconds: 0,
    };
    const base = reportFacts(status('a', { archive }));
    expect(reportFacts(status('a', { archive: { ...archive, archivedThroughMs: 5000 }, checkedAt: 5000 }))).toBe(base);
    expect(reportFacts(status('a', { archive: { ...archive, archivedCount: 4, lastArchivedWal: '000000010000000000000003' } }))).not.toBe(base);
    expect(reportFacts(status('a', { lsn: '0/3000100' }))).not.toBe(reportFacts(status('a')));
    expect(reportFacts({ ...status('a'), health: undefined })).not.toBe(reportFacts(status('a')));
  });
});
