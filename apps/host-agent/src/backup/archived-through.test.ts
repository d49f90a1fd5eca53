import { describe, expect, it } from 'vitest';
import { ArchivedThrough } from './archived-through.js';
import { tryParseLsn as parseLsn } from '@pgs/tenancy';

const MB16 = 16n * 1024n * 1024n;

describe('the time through which every commit is archived', () => {
  const lsn = (text: string): bigint => parseLsn(text)!;

  it('is the newest look whose insert position the archived segment reaches, not when the archiver last finished', () => {
    const a = new ArchivedThrough();
    // Writing into segment 1; nothing archived yet.
    expect(a.observe(1000, lsn('0/1100000'), '', MB16)).toBe(0);
    expect(a.observe(2000, lsn('0/1A00000'), '', MB16)).toBe(0);
    // Segment 1 closed and archived at 3000 while the writer went on in segment 2: the looks at
    // 1000 and 2000 are covered, the one at 3000 is not (its commits wait in segment 2).
    expect(a.observe(3000, lsn('0/2300000'), '000000010000000000000001', MB16)).toBe(2000);
    expect(a.observe(4000, lsn('0/2400000'), '000000010000000000000001', MB16)).toBe(2000);
    // Segment 2 archived, and the primary idles at the start of segment 3: now is covered.
    expect(a.observe(5000, lsn('0/3000000'), '000000010000000000000002', MB16)).toBe(5000);
    expect(a.observe(6000, lsn('0/3000000'), '000000010000000000000002', MB16)).toBe(6000);
  });

  it('keeps its end when the newest archived file is a timeline history or a partial segment, and never moves back', () => {
    const a = new ArchivedThrough();
    expect(a.observe(1000, lsn('0/5000000'), '000000010000000000000004', MB16)).toBe(1000);
    expect(a.observe(2000, lsn('0/5800000'), '00000002.history', MB16)).toBe(1000);
    expect(a.observe(3000, lsn('0/5900000'), '000000010000000000000005.partial', MB16)).toBe(1000);
    expect(a.observe(4000, lsn('0/6000000'), '000000020000000000000005', MB16)).toBe(4000);
    // pg_stat_archiver reset (or read from a freshly started server): the known end stays.
    expect(a.observe(5000, lsn('0/6000000'), '', MB16)).toBe(5000);
  });

  it('under a long backlog keeps a bounded number of looks and still never claims an unarchived time', () => {
    const a = new ArchivedThrough();
    let through = 0;
    // 2,000 looks a second apart, each 1 MiB further on, with nothing archived.
    for (let i = 0; i < 2000; i++) through = a.observe(i * 1000, BigInt(i) * 1024n * 1024n + 1n, '', MB16);
    expect(through).toBe(0);
    // Archived up to the end of segment 100 (LSN 101 * 16 MiB): the looks up to position 1616 MiB
    // are covered, but the oldest looks were dropped, so the answer is at most the true one.
    through = a.observe(2_000_000, 3000n * 1024n * 1024n, '000000010000000000000064', MB16);
    expect(through).toBeLessThanOrEqual(1615_000);
    expect(through).toBeGreaterThan(1_000_000);
  });
});
