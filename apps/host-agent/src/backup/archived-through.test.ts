import { describe, expect, it } from 'vitest';
import { tryParseLsn } from '@pgs/tenancy';
import { ArchivedThrough, type PrimaryLook } from './archived-through.js';

const MB16 = 16n * 1024n * 1024n;
const lsn = (text: string): bigint => tryParseLsn(text)!;

/** A look at `atMs` at `insert`, with `archived` the last archived file; busy unless told (a transaction holds an id). */
function look(atMs: number, insert: string, archived: string, quiet?: { nextXid: string }): PrimaryLook {
  return { atMs, insertLsn: lsn(insert), lastArchivedWal: archived, segmentBytes: MB16, xidHolders: quiet ? 0 : 1, nextXid: quiet?.nextXid ?? '0' };
}

describe('the time through which every commit is archived', () => {
  it('is the newest look whose insert position the archived segment reaches, not when the archiver last finished', () => {
    const a = new ArchivedThrough();
    // Writing into segment 1; nothing archived yet.
    expect(a.observe(look(1000, '0/1100000', ''))).toBe(0);
    expect(a.observe(look(2000, '0/1A00000', ''))).toBe(0);
    // Segment 1 closed and archived at 3000 while the writer went on in segment 2: the looks at
    // 1000 and 2000 are covered, the one at 3000 is not (its commits wait in segment 2).
    expect(a.observe(look(3000, '0/2300000', '000000010000000000000001'))).toBe(2000);
    expect(a.observe(look(4000, '0/2400000', '000000010000000000000001'))).toBe(2000);
    // Segment 2 archived, and the primary idles right after the switch: the insert position is
    // just past segment 3's page header, where nothing was written yet, so now is covered.
    expect(a.observe(look(5000, '0/3000028', '000000010000000000000002'))).toBe(5000);
    expect(a.observe(look(6000, '0/3000028', '000000010000000000000002'))).toBe(6000);
  });

  it('keeps its end when the newest archived file is a timeline history or a partial segment, and never moves back', () => {
    const a = new ArchivedThrough();
    expect(a.observe(look(1000, '0/5000000', '000000010000000000000004'))).toBe(1000);
    expect(a.observe(look(2000, '0/5800000', '00000002.history'))).toBe(1000);
    expect(a.observe(look(3000, '0/5900000', '000000010000000000000005.partial'))).toBe(1000);
    expect(a.observe(look(4000, '0/6000000', '000000020000000000000005'))).toBe(4000);
    // pg_stat_archiver reset (or read from a freshly started server): the known end stays.
    expect(a.observe(look(5000, '0/6000000', ''))).toBe(5000);
  });

  it('moves on while a quiet server writes records that are no commit, and stops at the first look after a transaction', () => {
    const a = new ArchivedThrough();
    // The last commit, then a quiet look inside segment 3 (nothing holds an id; xmax 700).
    expect(a.observe(look(1000, '0/3100000', '000000010000000000000002'))).toBe(0);
    expect(a.observe(look(2000, '0/3100100', '000000010000000000000002', { nextXid: '700' }))).toBe(0);
    // Segment 3 switched and archived; a standby snapshot (no commit) already went into segment 4.
    // Still quiet with the same xmax: nothing committed since the look at 2000, so this one is covered.
    expect(a.observe(look(3000, '0/4000060', '000000010000000000000003', { nextXid: '700' }))).toBe(3000);
    expect(a.observe(look(9000, '0/40000C8', '000000010000000000000003', { nextXid: '700' }))).toBe(9000);
    // A transaction finished (xmax 701): its commit may be anywhere after the last look, in segment 4.
    expect(a.observe(look(10_000, '0/4000200', '000000010000000000000003', { nextXid: '701' }))).toBe(9000);
    expect(a.observe(look(11_000, '0/4000200', '000000010000000000000003', { nextXid: '701' }))).toBe(9000);
    // Segment 4 archived: the looks in it are covered. A look that saw a transaction holding an id
    // breaks the chain too: the quiet one after it is bound by its own position, in segment 5.
    expect(a.observe(look(12_000, '0/4000300', '000000010000000000000004'))).toBe(12_000);
    expect(a.observe(look(13_000, '0/5000400', '000000010000000000000004', { nextXid: '701' }))).toBe(12_000);
    expect(a.observe(look(14_000, '0/5000400', '000000010000000000000005', { nextXid: '701' }))).toBe(14_000);
  });

  it('under a long backlog keeps a bounded number of looks and still never claims an unarchived time', () => {
    const a = new ArchivedThrough();
    let through = 0;
    // 2,000 busy looks a second apart, each 1 MiB further on, with nothing archived.
    for (let i = 0; i < 2000; i++) {
      through = a.observe({
        atMs: i * 1000,
        insertLsn: BigInt(i) * 1024n * 1024n + 4096n,
        lastArchivedWal: '',
        segmentBytes: MB16,
        xidHolders: 1,
        nextXid: '0',
      });
    }
    expect(through).toBe(0);
    // Archived up to the end of segment 100 (LSN 101 * 16 MiB): the looks up to position 1616 MiB
    // are covered, but the oldest looks were dropped, so the answer is at most the true one.
    through = a.observe({
      atMs: 2_000_000,
      insertLsn: 3000n * 1024n * 1024n,
      lastArchivedWal: '000000010000000000000064',
      segmentBytes: MB16,
      xidHolders: 1,
      nextXid: '0',
    });
    expect(through).toBeLessThanOrEqual(1615_000);
    expect(through).toBeGreaterThan(1_000_000);
  });
});
