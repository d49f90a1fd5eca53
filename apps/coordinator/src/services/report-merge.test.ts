import { describe, expect, it } from 'vitest';
import type { InstanceReportView } from '../transport/mappers/agent-mapper.js';
import { aHealthView } from '../testing/records.js';
import { WaitingReports } from './report-merge.js';

const report = (tenantId: string, over: Partial<InstanceReportView> = {}): InstanceReportView => ({
  tenantId,
  realization: 'REALIZED',
  state: 'RUNNING',
  reason: '',
  address: '127.0.0.1',
  port: 5432,
  specRevision: 1,
  health: aHealthView(),
  recovery: undefined,
  ...over,
});

describe('reports waiting for one stream', () => {
  it('keeps one report per steady instance however many full reports arrive while they wait', () => {
    const w = new WaitingReports();
    for (let round = 1; round <= 16; round++) w.add(['a', 'b', 'c'].map((id) => report(id, { specRevision: round })));
    const taken = w.take();
    expect(taken.map((r) => `${r.tenantId}:${r.specRevision}`)).toEqual(['a:16', 'b:16', 'c:16']);
    expect([w.size, w.take()]).toEqual([0, []]);
  });

  it('keeps every report that is not steady, in order, with the newer report after it', () => {
    const w = new WaitingReports();
    w.add([report('a', { realization: 'FAILED', reason: 'disk full' }), report('b')]);
    w.add([report('a', { realization: 'FAILED', reason: 'disk full again' }), report('b', { port: 6000 })]);
    w.add([report('a', { specRevision: 2 }), report('c', { state: 'DELETED' })]);
    w.add([report('a', { specRevision: 3 }), report('c')]);
    expect(w.take().map((r) => `${r.tenantId}:${r.realization}:${r.reason || r.state}:${r.specRevision}:${r.port}`)).toEqual([
      'a:FAILED:disk full:1:5432',
      'a:FAILED:disk full again:1:5432',
      'a:REALIZED:RUNNING:3:5432',
      'b:REALIZED:RUNNING:1:6000',
      'c:REALIZED:DELETED:1:5432',
      'c:REALIZED:RUNNING:1:5432',
    ]);
  });

  it('keeps a recovery result', () => {
    const w = new WaitingReports();
    const recovery = { restoreId: 'r1', ok: true, errorCode: '', message: '', lsn: '0/1', commitTime: 1, timeline: 2 };
    w.add([report('a', { recovery })]);
    w.add([report('a')]);
    expect(w.take().map((r) => r.recovery?.restoreId ?? '-')).toEqual(['r1', '-']);
  });
});
