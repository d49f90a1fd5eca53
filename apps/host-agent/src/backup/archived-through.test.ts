import { describe, expect, it } from 'vitest';
import { ArchivedThrough, parseLsn, segmentEndLsn } from './archived-through.js';

const MB16 = 16n * 1024n * 1024n;

describe('WAL positions and segment names', () => {
  it('parses an LSN as PostgreSQL prints it, and refuses anything else', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('')).toBeUndefined();
    expect(parseLsn('16-B374D848')).toBeUndefined();
  });

  it('gives the end of a segment whatever its timeline, for 16 MiB and other segment sizes', () => {
    expect(segmentEndLsn('000000010000000000000001', MB16)).toBe(parseLsn('0/2000000'));
    expect(segmentEndLsn('00000002000000000000000E', MB16)).toBe(parseLsn('0/F000000'));
    // The low half counts to 2^32 / size, then the high half moves: FF of 16 MiB is the last of 0/.
    expect(segmentEndLsn('0000000100000000000000FF', MB16)).toBe(parseLsn('1/0'));
    expect(segmentEndLsn('0000000300000016000000B3', MB16)).toBe(parseLsn('16/B4000000'));
    expect(segmentEndLsn('000000010000000000000003', 64n * 1024n * 1024n)).toBe(parseLsn('0/10000000'));
  });

  it('is undefined for the other files the archiver takes', () => {
    expect(segmentEndLsn('00000002.history', MB16)).toBeUndefined();
    expect(segmentEndLsn('00000001000000000000000D.partial', MB16)).toBeUndefined();
    expect(segmentEndLsn('000000010000000000000002.00000028.backup', MB16)).toBeUndefined();
    expect(segmentEndLsn('', MB16)).toBeUndefined();
  });
});

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
