import { CLOSE, encodeParse, encodeQuery, encodeTarget } from '@pgs/wire-protocol';
import { describe, expect, it } from 'vitest';
import { SessionState, setsOnly } from './session-state.js';

const parse = (name: string, sql: string): Buffer => encodeParse(name, sql, Buffer.from([0, 0]));
const closeStatement = (name: string): Buffer => encodeTarget(CLOSE, { kind: 'S', name });

/** A simple Query answered by the server: an error first when `fails`, then ReadyForQuery `status`. */
function run(s: SessionState, sql: string, status = 'I', fails = false): void {
  s.query(encodeQuery(sql));
  if (fails) s.error();
  s.ready(status);
}

describe('setsOnly', () => {
  it.each([
    ['SET search_path = app', true],
    ["set application_name = 'a;b'; RESET work_mem", true],
    ['SET a.b = 1; select 1', false],
    ['select 1', false],
    ['', false],
    ['-- just a comment', false],
    ["set x.y = 'select'", true],
  ])('%s → %s', (sql, want) => {
    expect(setsOnly(sql)).toBe(want);
  });
});

describe('SessionState', () => {
  it('is idle between transactions with every request answered, not inside one or with replies due', () => {
    const s = new SessionState();
    expect(s.idle).toBe(true);
    s.query(encodeQuery('BEGIN'));
    expect(s.idle).toBe(false);
    s.ready('T');
    expect(s.idle).toBe(false);
    run(s, 'COMMIT');
    expect(s.idle).toBe(true);
    // Extended protocol: nothing idle until the Sync's ReadyForQuery.
    s.parse(parse('', 'select 1'));
    s.unsynced();
    expect(s.idle).toBe(false);
    s.syncPoint();
    s.parseComplete();
    expect(s.idle).toBe(false);
    s.ready('I');
    expect(s.idle).toBe(true);
    expect(s.blockers).toEqual([]);
  });

  it('keeps SETs run between transactions, in order, to replay; drops those that failed; RESET ALL forgets them', () => {
    const s = new SessionState();
    run(s, "SET statement_timeout = '5s'");
    run(s, 'SET work_mem = nonsense', 'I', true);
    run(s, "set application_name = 'x'; reset work_mem");
    expect(s.replay().sets).toEqual(["SET statement_timeout = '5s'", "set application_name = 'x'; reset work_mem"]);
    expect(s.blockers).toEqual([]);
    run(s, 'RESET ALL');
    expect(s.replay().sets).toEqual(['RESET ALL']);
  });

  it('a SET it cannot replay (in a transaction, beside other statements, set_config) blocks carrying', () => {
    const inTxn = new SessionState();
    run(inTxn, 'BEGIN', 'T');
    run(inTxn, 'SET search_path = app', 'T');
    run(inTxn, 'COMMIT');
    expect(inTxn.blockers).toEqual(['set']);
    const mixed = new SessionState();
    run(mixed, 'SET search_path = app; select 1');
    expect(mixed.blockers).toEqual(['set']);
    const config = new SessionState();
    run(config, "select set_config('app.user', 'x', false)");
    expect(config.blockers).toEqual(['set']);
    // DISCARD ALL drops everything, the unreplayable SET too.
    run(config, 'DISCARD ALL');
    expect(config.blockers).toEqual([]);
  });

  it('names temporary tables, LISTEN, advisory locks, held cursors and SQL PREPARE it cannot follow as blockers', () => {
    const s = new SessionState();
    run(s, 'CREATE TEMP TABLE t (x int)');
    run(s, 'LISTEN chan');
    run(s, 'select pg_advisory_lock(1)');
    expect(s.blockers.sort()).toEqual(['advisory_lock', 'listen', 'temp_table']);
    run(s, 'DISCARD ALL');
    expect(s.blockers).toEqual([]);
    // Inside a transaction block, or beside another statement: not followed.
    run(s, 'BEGIN', 'T');
    run(s, 'PREPARE p AS select 1', 'T');
    run(s, 'COMMIT');
    expect(s.blockers).toEqual(['prepare']);
    const t = new SessionState();
    run(t, 'PREPARE p AS select 1; select 1');
    expect(t.blockers).toEqual(['prepare']);
    const u = new SessionState();
    run(u, 'BEGIN', 'T');
    run(u, 'DEALLOCATE p', 'T');
    expect(u.blockers).toEqual(['prepare']);
  });

  it('keeps SQL PREPAREs run alone between transactions to replay after the SETs; DEALLOCATE and Close forget them', () => {
    const s = new SessionState();
    run(s, 'SET search_path = app');
    run(s, 'PREPARE ins (int) AS insert into t values ($1)');
    run(s, 'PREPARE bad AS select nonsense(', 'I', true);
    run(s, 'prepare "Two" AS select 2');
    expect(s.blockers).toEqual([]);
    expect(s.replay()).toEqual({
      sets: ['SET search_path = app'],
      prepares: ['PREPARE ins (int) AS insert into t values ($1)', 'prepare "Two" AS select 2'],
      parses: [],
    });
    // A failed DEALLOCATE changes nothing; a DEALLOCATE of a protocol-level statement forgets it too
    // (one namespace on the server), and a Close forgets a SQL-prepared one.
    run(s, 'DEALLOCATE nope', 'I', true);
    const a = parse('a', 'select 1');
    s.parse(a);
    s.syncPoint();
    s.parseComplete();
    s.ready('I');
    expect(s.replay().parses).toEqual([a]);
    run(s, 'DEALLOCATE a');
    expect(s.replay().parses).toEqual([]);
    s.close(closeStatement('Two'));
    s.syncPoint();
    s.closeComplete();
    s.ready('I');
    run(s, 'deallocate prepare INS');
    expect(s.replay().prepares).toEqual([]);
    run(s, 'PREPARE again AS select 3');
    run(s, 'DISCARD ALL');
    expect(s.replay().prepares).toEqual([]);
    expect(s.blockers).toEqual([]);
  });

  it('a PREPARE sent while another request is still due is not followed', () => {
    const s = new SessionState();
    s.query(encodeQuery('select pg_sleep(1)'));
    s.query(encodeQuery('PREPARE p AS select 1'));
    s.ready('I');
    s.ready('I');
    expect(s.blockers).toEqual(['prepare']);
    expect(s.replay().prepares).toEqual([]);
  });

  it('keeps named statements the server confirmed, forgets closed ones, not failed or unnamed ones', () => {
    const s = new SessionState();
    const a = parse('a', 'select 1');
    s.parse(a);
    s.parse(parse('', 'select 2'));
    s.parse(parse('bad', 'select nonsense('));
    s.syncPoint();
    s.parseComplete();
    s.parseComplete();
    s.error();
    s.ready('I');
    expect(s.replay().parses).toEqual([a]);
    // A Close confirmed by CloseComplete forgets it.
    s.parse(parse('b', 'select 3'));
    s.close(closeStatement('a'));
    s.syncPoint();
    s.parseComplete();
    s.closeComplete();
    s.ready('I');
    expect(s.replay().parses).toEqual([parse('b', 'select 3')]);
    // DEALLOCATE ALL drops every one of them.
    run(s, 'DEALLOCATE ALL');
    expect(s.replay().parses).toEqual([]);
  });

  it('a message it cannot read blocks carrying; carried() starts afresh with the state kept', () => {
    const s = new SessionState();
    run(s, "SET statement_timeout = '5s'");
    s.query(Buffer.from([0x51, 0, 0, 0, 6, 0x41]));
    expect(s.blockers).toEqual(['unreadable']);
    const t = new SessionState();
    run(t, "SET statement_timeout = '5s'");
    t.query(encodeQuery('select 1'));
    t.carried();
    expect(t.idle).toBe(true);
    expect(t.replay().sets).toEqual(["SET statement_timeout = '5s'"]);
  });
});
