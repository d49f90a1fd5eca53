import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markReceivedWalForArchive, parseHistorySwitch, segmentsBeforeSwitch } from './received-wal.js';

const MB16 = 16n * 1024n * 1024n;

describe('the old timeline a promoted standby received', () => {
  it('reads where a timeline began from its history file (the last line names the parent)', () => {
    expect(parseHistorySwitch('1\t0/7000148\tno recovery target specified\n', 2)).toEqual({ parent: 1, switchLsn: 0x7000148n });
    expect(parseHistorySwitch('1\t0/7000148\tno recovery target specified\n\n2\t1/2A0000A0\tno recovery target specified\n', 3)).toEqual({
      parent: 2,
      switchLsn: 0x12a0000a0n,
    });
    expect(parseHistorySwitch('', 2)).toBeUndefined();
    expect(parseHistorySwitch('3\t0/7000148\tx\n', 2)).toBeUndefined();
  });

  it('picks the complete segments of the parent before the switch, not the switch segment, recycled files or other timelines', () => {
    const names = [
      '000000010000000000000004',
      '000000010000000000000005',
      '000000010000000000000006',
      // the switch is in 07 (archived by PostgreSQL as .partial); 08 and 09 are recycled files
      '000000010000000000000007.partial',
      '000000010000000000000008',
      '000000010000000000000009',
      '000000020000000000000007',
      '00000002.history',
      '000000010000000000000004.00000028.backup',
      'archive_status',
    ];
    expect(segmentsBeforeSwitch(names, 1, 0x7000148n, MB16)).toEqual(['000000010000000000000004', '000000010000000000000005', '000000010000000000000006']);
  });
});

describe('marking them for archiving in pg_wal', () => {
  let dir = '';
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('turns the .done of each received segment into .ready and leaves the rest as it was', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-received-wal-'));
    const wal = path.join(dir, 'pg_wal');
    const status = path.join(wal, 'archive_status');
    fs.mkdirSync(status, { recursive: true });
    // Sparse files of a segment's size: the size is how the segment size is read.
    const segment = (name: string) => {
      fs.writeFileSync(path.join(wal, name), '');
      fs.truncateSync(path.join(wal, name), Number(MB16));
    };
    for (const n of ['000000010000000000000005', '000000010000000000000006', '000000010000000000000008', '000000020000000000000007']) segment(n);
    fs.writeFileSync(path.join(wal, '00000002.history'), '1\t0/7000148\tno recovery target specified\n');
    for (const n of ['000000010000000000000005.done', '000000010000000000000006.done', '000000010000000000000007.partial.done', '00000002.history.done']) {
      fs.writeFileSync(path.join(status, n), '');
    }

    expect(markReceivedWalForArchive(dir, 2)).toEqual(['000000010000000000000005', '000000010000000000000006']);
    expect(fs.readdirSync(status).sort()).toEqual([
      '000000010000000000000005.ready',
      '000000010000000000000006.ready',
      '000000010000000000000007.partial.done',
      '00000002.history.done',
    ]);
    // Again (a second promotion answer): nothing left to mark.
    expect(markReceivedWalForArchive(dir, 2)).toEqual([]);
  });

  it('marks nothing on a server that never changed timeline', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgs-received-wal-'));
    fs.mkdirSync(path.join(dir, 'pg_wal', 'archive_status'), { recursive: true });
    expect(markReceivedWalForArchive(dir, 1)).toEqual([]);
  });
});
