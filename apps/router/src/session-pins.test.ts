import { describe, expect, it } from 'vitest';
import { encodeQuery, ProtocolError } from '@pgs/wire-protocol';
import { blankLiterals, SessionPins, sqlEffects, sqlEffectsAt, sqlTextIfMaybe } from './session-pins.js';

describe('sqlEffects', () => {
  it.each([
    ['SET search_path = app', ['set']],
    ['set session statement_timeout to 5', ['set']],
    ['SET ROLE reader', ['set']],
    ["select set_config('app.user', 'x', false)", ['set']],
    ['LISTEN chan', ['listen']],
    ['select pg_advisory_lock(1)', ['advisory_lock']],
    ['SELECT pg_try_advisory_lock_shared(1, 2)', ['advisory_lock']],
    ['CREATE TEMP TABLE t (x int)', ['temp_table']],
    ['create global temporary table t (x int)', ['temp_table']],
    ['SELECT 1 AS x INTO TEMP t', ['temp_table']],
    ['DECLARE c CURSOR WITH HOLD FOR SELECT 1', ['hold_cursor']],
    ['PREPARE p AS SELECT 1', ['prepare']],
    ['/* lead */ SET x.y = 1; select 1', ['set']],
  ])('%s pins %j', (sql, reasons) => {
    expect(sqlEffects(sql).pins).toEqual(reasons);
  });

  it.each([
    'SET LOCAL search_path = app',
    'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    'SET CONSTRAINTS ALL DEFERRED',
    "select set_config('app.user', 'x', true)",
    'select pg_advisory_xact_lock(1)',
    'CREATE TEMP TABLE t (x int) ON COMMIT DROP',
    'DECLARE c CURSOR FOR SELECT 1',
    "select 'SET x = 1; LISTEN y'",
    'select 1 -- ; SET x = 1',
    'select $$ ; LISTEN y $$',
    'select "set" from t',
    'UPDATE t SET x = 1',
  ])('%s does not pin', (sql) => {
    expect(sqlEffects(sql).pins).toEqual([]);
  });

  it('reads unpinning statements and which drop prepared statements', () => {
    expect(sqlEffects('RESET ALL').unpins).toEqual(['set']);
    expect(sqlEffects('UNLISTEN *').unpins).toEqual(['listen']);
    expect(sqlEffects('UNLISTEN chan').unpins).toEqual([]);
    expect(sqlEffects('select pg_advisory_unlock_all()').unpins).toEqual(['advisory_lock']);
    expect(sqlEffects('DISCARD TEMP').unpins).toEqual(['temp_table']);
    expect(sqlEffects('CLOSE ALL').unpins).toEqual(['hold_cursor']);
    expect(sqlEffects('DEALLOCATE ALL')).toEqual({ pins: [], unpins: ['prepare'], dropsPrepared: true });
    const all = sqlEffects('discard all');
    expect(all.unpins.sort()).toEqual(['advisory_lock', 'hold_cursor', 'listen', 'prepare', 'set', 'temp_table']);
    expect(all.dropsPrepared).toBe(true);
    // Pinned again in the same text: stays pinned.
    expect(sqlEffects('DISCARD ALL; SET x.y = 1')).toMatchObject({ pins: ['set'] });
    expect(sqlEffects('DISCARD ALL; SET x.y = 1').unpins).not.toContain('set');
  });

  it('blanks literals but keeps statement separators outside them', () => {
    expect(blankLiterals("select 'a;b'; select 1").split(';')).toHaveLength(2);
    expect(blankLiterals("select 'it''s'")).toBe("select ''");
  });
});

describe('SessionPins', () => {
  it('is pinned while any kind of state is held and reports changes', () => {
    const pins = new SessionPins();
    expect(pins.apply(sqlEffects('SET a.b = 1'))).toBe(true);
    expect(pins.apply(sqlEffects('LISTEN c'))).toBe(false);
    expect(pins.reasons.sort()).toEqual(['listen', 'set']);
    expect(pins.apply(sqlEffects('RESET ALL'))).toBe(false);
    expect(pins.pinned).toBe(true);
    expect(pins.apply(sqlEffects('UNLISTEN *'))).toBe(true);
    expect(pins.pinned).toBe(false);
  });
});

describe('sqlEffectsAt (the words looked for in the bytes, the text decoded only when one is there)', () => {
  it.each([
    'SELECT abalance FROM pgbench_accounts WHERE aid = 42;',
    'SeT search_path = app',
    'select 1; LISTEN chan',
    'sElEcT PG_ADVISORY_LOCK(1)',
    'CREATE TEMPORARY TABLE t (a int)',
    'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
    'prepare q as select 1',
    'DEALLOCATE ALL',
    'DISCARD ALL',
    'CLOSE ALL',
    "SELECT 'ünïcödé', 'ſet' -- ſ is no s",
    'ſet x = 1',
    'SELECT 1 se',
    '',
  ])('agrees with sqlEffects on the decoded text: %s', (sql) => {
    const msg = encodeQuery(sql);
    expect(sqlEffectsAt(msg, 5, 'Query')).toEqual(sqlEffects(sql));
  });

  it('decodes no text that holds none of the words, and the text whole when one is there', () => {
    expect(sqlTextIfMaybe(encodeQuery('SELECT abalance FROM pgbench_accounts WHERE aid = 42;'), 5, 'Query')).toBeUndefined();
    expect(sqlTextIfMaybe(encodeQuery("SELECT 'ünï' ; SET a.b = 1"), 5, 'Query')).toBe("SELECT 'ünï' ; SET a.b = 1");
  });

  it('refuses a text without its NUL as decoding does', () => {
    const msg = encodeQuery('SELECT 1').subarray(0, -1);
    expect(() => sqlEffectsAt(msg, 5, 'Query')).toThrow(ProtocolError);
    expect(() => sqlEffectsAt(msg, 5, 'Query')).toThrow('Query: missing NUL terminator');
  });
});
