import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { BackendFailureReporter, failureKind, type BackendFailureNote } from './backend-failure-report.js';

const note = (tenantId: string, kind: BackendFailureNote['kind'], at: number): BackendFailureNote => ({ tenantId, address: '127.0.0.1', port: 5432, kind, at });

describe('BackendFailureReporter', () => {
  it('batches a turn of failures into one report and sends at most one per tenant and kind per gap', async () => {
    let now = 1000;
    const sent: BackendFailureNote[][] = [];
    const r = new BackendFailureReporter({ send: async (b) => void sent.push(b), log: pino({ level: 'silent' }), minGapMs: 1000, clock: () => now });
    r.note(note('a', 'refused', 1000));
    r.note(note('a', 'refused', 1001));
    r.note(note('a', 'timeout', 1002));
    r.note(note('b', 'refused', 1003));
    await new Promise((res) => setImmediate(res));
    expect(sent).toHaveLength(1);
    expect(sent[0]?.map((f) => `${f.tenantId}/${f.kind}`)).toEqual(['a/refused', 'a/timeout', 'b/refused']);
    now = 1999;
    r.note(note('a', 'refused', 1999));
    await new Promise((res) => setImmediate(res));
    expect(sent).toHaveLength(1);
    now = 2000;
    r.note(note('a', 'refused', 2000));
    await new Promise((res) => setImmediate(res));
    expect(sent).toHaveLength(2);
  });

  it('a coordinator that cannot be reached loses the report, never the router', async () => {
    const r = new BackendFailureReporter({ send: async () => Promise.reject(new Error('unavailable')), log: pino({ level: 'silent' }) });
    r.note(note('a', 'refused', 1));
    await new Promise((res) => setImmediate(res));
  });
});

describe('failureKind', () => {
  it('refused, timed out, or not a connect failure', () => {
    expect(failureKind(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('refused');
    expect(failureKind(new Error('connect to 10.0.0.1:5432 timed out after 2000 ms'))).toBe('timeout');
    expect(failureKind(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBeUndefined();
  });
});
