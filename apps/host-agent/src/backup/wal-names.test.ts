import { describe, expect, it } from 'vitest';
import { tryParseLsn as parseLsn } from '@pgs/tenancy';
import { segmentEndLsn, timelineHex } from './wal-names.js';

const MB16 = 16n * 1024n * 1024n;

describe('segment names', () => {
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

describe('timelines', () => {
  it('spells a timeline as WAL file names do', () => {
    expect(timelineHex(2)).toBe('00000002');
    expect(timelineHex(26)).toBe('0000001A');
  });
});
