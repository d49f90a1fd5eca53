import { describe, expect, it } from 'vitest';
import { sqlPrepareOf } from './sql-prepare.js';

describe('sqlPrepareOf', () => {
  it.each([
    ['PREPARE ins AS insert into t values ($1)', { kind: 'prepare', name: 'ins' }],
    ['prepare Ins (int, text) as select $1, $2;', { kind: 'prepare', name: 'ins' }],
    ['  /* c */ -- d\n PREPARE "Mixed ""Q"" Case" AS select 1', { kind: 'prepare', name: 'Mixed "Q" Case' }],
    ["PREPARE p AS select 'a;b', $$x;y$$", { kind: 'prepare', name: 'p' }],
    ['DEALLOCATE ins', { kind: 'deallocate', name: 'ins' }],
    ['deallocate prepare "Ins";', { kind: 'deallocate', name: 'Ins' }],
    ['DEALLOCATE PREPARE allx', { kind: 'deallocate', name: 'allx' }],
  ])('%s', (sql, want) => {
    expect(sqlPrepareOf(sql)).toMatchObject(want);
  });

  it('keeps the whole Query as the text to run again', () => {
    const sql = 'PREPARE q (int) AS select $1 + 1; -- done';
    expect(sqlPrepareOf(sql)).toEqual({ kind: 'prepare', name: 'q', text: sql });
  });

  it('is undefined for other statements and for DEALLOCATE ALL (read as dropping every statement elsewhere)', () => {
    for (const sql of [
      'select 1',
      'EXECUTE ins(1)',
      "select 'prepare x as'",
      'DEALLOCATE ALL',
      'deallocate prepare all;',
      '-- prepare p as select 1\nselect 1',
    ])
      expect(sqlPrepareOf(sql)).toBeUndefined();
  });

  it('is unknown for what it cannot follow with certainty', () => {
    for (const sql of [
      'PREPARE p AS select 1; select 2',
      'select 1; DEALLOCATE p',
      "PREPARE TRANSACTION 'tx1'",
      'PREPARE U&"d\\0061t" AS select 1',
      `PREPARE ${'x'.repeat(64)} AS select 1`,
      'DEALLOCATE p q',
      'DEALLOCATE',
    ])
      expect(sqlPrepareOf(sql), sql).toEqual({ kind: 'unknown' });
  });
});
